from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from starlabel.catalogue import (
    CatalogueError,
    CatalogueWriter,
    Column,
    StaleLockWarning,
    read_catalogue,
)

COLUMNS = [
    Column("source_id", "int64", None, "Gaia DR3 source_id"),
    Column("teff", "float32", "K", "effective temperature"),
    Column("logg", "float32", "cm/s2", "log surface gravity (log of cm/s2)"),
    Column("flag", "int16", None, "quality flag bits, see the COMMENT cards"),
    Column("ok", "bool", None, "True when every label passed its cuts"),
    Column("star", "<U20", None, "survey star identifier"),
]
FINGERPRINT = {"model": "abc123", "store": "def456", "options": {"batch": 64}}
FLAG_DOC = (
    "flag bit 0: S/N below the training range; flag bit 1: labels outside the training set "
    "convex hull; flag bit 2: auxiliary data missing"
)
HEADER = {
    "MODEL": ("cnn-v1", "model name"),
    "nparts": (4, "number of parts"),
    "SCALE": (1.5, "a float"),
    "TRAINED": (True, "a bool"),
    "COMMENT_FLAGS": (FLAG_DOC, ""),
    "HISTORY1": ("written by the catalogue tests", ""),
}
SIZES = [5, 7, 0, 3]  # part 2 is empty
FORMATS = ["fits", "parquet"]


def part(index: int, n: int | None = None) -> dict[str, np.ndarray]:
    n = SIZES[index] if n is None else n
    rng = np.random.default_rng(index)
    teff = rng.normal(5000, 500, n).astype(np.float32)
    teff[::3] = np.nan
    return {
        "source_id": np.arange(n, dtype=np.int64) + 2**60 + 1000 * index,
        "teff": teff,
        "logg": rng.normal(4, 0.5, n),  # float64: cast to float32
        "flag": rng.integers(0, 2**15 - 1, n).astype(np.int16),
        "ok": rng.random(n) < 0.5,
        "star": np.array([f"2M{index:02d}{i:012d}+x" for i in range(n)]),
    }


def expected() -> dict[str, np.ndarray]:
    parts = [part(i) for i in range(len(SIZES))]
    out = {c.name: np.concatenate([p[c.name] for p in parts]).astype(c.dtype) for c in COLUMNS}
    return out


def writer(out: Path, **kwargs: object) -> CatalogueWriter:
    options: dict = {"n_parts": len(SIZES), "fingerprint": FINGERPRINT, "header": HEADER, **kwargs}
    return CatalogueWriter(out, COLUMNS, **options)


def write_all(out: Path, order: list[int] | None = None, **kwargs: object) -> Path:
    with writer(out, **kwargs) as w:
        for i in order if order is not None else range(len(SIZES)):
            w.write_part(i, part(i))
        assert not out.exists()
        return w.finish()


def suffix(fmt: str) -> str:
    return ".fits" if fmt == "fits" else ".parquet"


# ------------------------------------------------------------------------------------------------ round trip
@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_out_of_order(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"cat{suffix(fmt)}"
    assert write_all(out, order=[3, 0, 2, 1]) == out
    assert out.is_file()
    assert not (tmp_path / f"{out.name}.parts").exists()
    assert not (tmp_path / f"{out.name}.lock").exists()
    assert not (tmp_path / f"{out.name}.tmp").exists()

    columns, meta = read_catalogue(out)
    want = expected()
    assert list(columns) == [c.name for c in COLUMNS]
    for c in COLUMNS:
        got = columns[c.name]
        assert got.dtype == np.dtype(c.dtype), (c.name, got.dtype)
        assert got.dtype.isnative
        np.testing.assert_array_equal(got, want[c.name])
    assert np.isnan(columns["teff"]).sum() == np.isnan(want["teff"]).sum() > 0
    assert columns["source_id"][0] == 2**60  # int64 beyond float precision survives
    assert isinstance(columns["star"][0], str)
    assert meta["format"] == fmt and meta["n_rows"] == sum(SIZES)
    assert meta["units"] == {c.name: c.unit for c in COLUMNS}
    assert meta["descriptions"] == {c.name: c.description for c in COLUMNS}
    header = meta["header"]
    assert header["MODEL"] == "cnn-v1" and header["NPARTS"] == 4 and header["SCALE"] == 1.5
    assert header["TRAINED"] is True
    assert " ".join(meta["comments"]) == FLAG_DOC
    assert meta["history"] == ["written by the catalogue tests"]
    assert meta["fingerprint"] == FINGERPRINT


def test_fits_is_valid_and_readable_by_astropy(tmp_path: Path) -> None:
    from astropy.io import fits
    from astropy.table import Table

    out = write_all(tmp_path / "cat.fits", order=[1, 3, 0, 2])
    assert out.stat().st_size % 2880 == 0
    with fits.open(out) as hdus:
        hdus.verify("exception")
        assert len(hdus) == 2
        hdr = hdus[1].header
        assert hdr["XTENSION"] == "BINTABLE" and hdr["NAXIS2"] == sum(SIZES) and hdr["TFIELDS"] == len(COLUMNS)
        assert [hdr[f"TFORM{n}"] for n in range(1, 7)] == ["K", "E", "E", "I", "L", "20A"]
        assert hdr["TUNIT2"] == "K" and "TUNIT1" not in hdr
        assert hdr["TCOMM2"] == "effective temperature"
        assert hdr.comments["TTYPE2"] == "effective temperature"
        assert hdr["MODEL"] == "cnn-v1" and hdr.comments["MODEL"] == "model name"
        assert hdr["EXTNAME"] == "CATALOGUE"
        comments = [str(c) for c in hdr["COMMENT"]]
        assert len(comments) >= 2 and all(len(c) <= 72 for c in comments)
        assert " ".join(comments) == FLAG_DOC
        assert list(hdr["HISTORY"]) == ["written by the catalogue tests"]
        assert json.loads(hdr["SLFPRINT"]) == FINGERPRINT
        raw = hdus[1].data
        np.testing.assert_array_equal(raw["ok"], expected()["ok"])
    table = Table.read(out)
    assert table.colnames == [c.name for c in COLUMNS]
    assert str(table["teff"].unit) == "K"
    assert table["logg"].unit.to_string() == "cm / s2"
    assert table["source_id"].unit is None
    assert table["star"][0] == expected()["star"][0]
    assert table.meta["MODEL"] == "cnn-v1"


def test_parquet_schema_metadata_and_row_groups(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    out = write_all(tmp_path / "cat.pq")
    meta = pq.ParquetFile(out).metadata
    assert meta.num_row_groups == 3  # one per non-empty part
    assert [meta.row_group(i).num_rows for i in range(3)] == [5, 7, 3]
    schema = pq.read_schema(out)
    assert schema.names == [c.name for c in COLUMNS]
    assert schema.field("teff").metadata[b"unit"] == b"K"
    assert schema.field("teff").metadata[b"description"] == b"effective temperature"
    assert b"unit" not in schema.field("source_id").metadata
    assert json.loads(schema.metadata[b"starlabel.fingerprint"]) == FINGERPRINT
    header = json.loads(schema.metadata[b"starlabel.header"])
    assert ["MODEL", "cnn-v1", "model name"] in header
    assert ["COMMENT_FLAGS", FLAG_DOC, ""] in header


# ---------------------------------------------------------------------------------------------------- resume
@pytest.mark.parametrize("fmt", FORMATS)
def test_resume_gives_the_same_bytes(tmp_path: Path, fmt: str) -> None:
    (tmp_path / "ref").mkdir()
    reference = write_all(tmp_path / "ref" / f"cat{suffix(fmt)}")
    out = tmp_path / f"cat{suffix(fmt)}"
    with writer(out) as first:
        assert first.parts_dir == tmp_path / f"cat{suffix(fmt)}.parts"
        assert first.done() == set()
        first.write_part(2, part(2))
        first.write_part(0, part(0))
        assert first.done() == {0, 2}
    assert not out.exists() and not Path(f"{out}.lock").exists()
    with writer(out) as second:
        assert second.done() == {0, 2}
        for i in sorted(set(range(len(SIZES))) - second.done()):
            second.write_part(i, part(i))
        assert not out.exists()
        second.finish()
    assert out.read_bytes() == reference.read_bytes()


def test_different_inputs_are_refused_and_overwrite_starts_over(tmp_path: Path) -> None:
    out = tmp_path / "cat.fits"
    with writer(out) as w:
        w.write_part(1, part(1))
    with pytest.raises(CatalogueError) as info:
        writer(out, fingerprint={**FINGERPRINT, "model": "other"})
    message = str(info.value)
    assert "interrupted run with different inputs" in message and str(out) + ".parts" in message
    assert "fingerprint (model)" in message and "--overwrite" in message
    with pytest.raises(CatalogueError, match=r"number of parts \(4 then, 5 now\)"):
        writer(out, n_parts=5)
    with pytest.raises(CatalogueError, match="columns"):
        CatalogueWriter(out, COLUMNS[:-1], n_parts=4, fingerprint=FINGERPRINT)
    assert not Path(f"{out}.lock").exists()  # refused writers release the lock
    with writer(out, fingerprint={"model": "other"}, overwrite=True) as w:
        assert w.done() == set()
        w.write_part(0, part(0))
    with writer(out, fingerprint={"model": "other"}, header={}) as w:  # the header is not part of the identity
        assert w.done() == {0}


def test_missing_parts_are_listed(tmp_path: Path) -> None:
    out = tmp_path / "cat.parquet"
    with CatalogueWriter(out, COLUMNS, n_parts=30, fingerprint={}) as w:
        w.write_part(1, part(1))
        with pytest.raises(CatalogueError, match=r"29 of 30 parts are missing: 0, 2, 3, 4, 5, 6, 7, 8, 9, 10, \.\.\."):
            w.finish()
    assert not out.exists()


def test_write_part_checks_the_table(tmp_path: Path) -> None:
    w = writer(tmp_path / "cat.fits")
    table = part(0)
    bad = {k: v for k, v in table.items() if k not in ("teff", "ok")} | {"TEFF": table["teff"], "extra": table["ok"]}
    with pytest.raises(CatalogueError, match=r"part 0: .*missing: teff, ok; unexpected: TEFF, extra\. Expected: "):
        w.write_part(0, bad)
    with pytest.raises(CatalogueError, match=r"columns differ in length: .*teff=4"):
        w.write_part(0, table | {"teff": table["teff"][:4]})
    with pytest.raises(CatalogueError, match=r"column 'flag' \(int16\): got float64 values"):
        w.write_part(0, table | {"flag": np.zeros(5)})
    with pytest.raises(CatalogueError, match=r"column 'flag' \(int16\): values outside \[-32768, 32767\]"):
        w.write_part(0, table | {"flag": np.full(5, 40000)})
    with pytest.raises(CatalogueError, match=r"column 'star' \(<U20\): a value is longer than 20 characters"):
        w.write_part(0, table | {"star": np.array(["x" * 21] * 5)})
    with pytest.raises(CatalogueError, match=r"column 'star' \(<U20\): FITS strings must be ASCII"):
        w.write_part(0, table | {"star": np.array(["é"] * 5)})
    with pytest.raises(CatalogueError, match=r"column 'ok' \(bool\): got int64 values"):
        w.write_part(0, table | {"ok": np.ones(5, dtype=np.int64)})
    with pytest.raises(CatalogueError, match=r"part index 4 is out of range; this catalogue has parts 0 to 3"):
        w.write_part(4, table)
    with pytest.raises(CatalogueError, match="out of range"):
        w.write_part(-1, table)
    assert w.done() == set()
    w.write_part(0, table | {"flag": [1, 2, 3, 4, 5], "star": np.array([b"a", b"b", b"c", b"d", b"e"])})
    assert w.done() == {0}
    assert [p.name for p in w.parts_dir.iterdir() if p.name.endswith(".tmp")] == []
    w.close()
    with pytest.raises(CatalogueError, match="closed writer"):
        w.write_part(1, part(1))


@pytest.mark.parametrize("name", ["cat.csv", "cat.fits.gz", "cat"])
def test_unknown_suffix_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(CatalogueError, match=r"one of the suffixes \.fits, \.fit, \.parquet, \.pq"):
        writer(tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_bad_columns_and_header_are_refused(tmp_path: Path) -> None:
    out = tmp_path / "cat.fits"
    with pytest.raises(CatalogueError, match=r"dtype 'int8' is not allowed"):
        CatalogueWriter(out, [Column("a", "int8")], n_parts=1, fingerprint={})
    with pytest.raises(CatalogueError, match="duplicate column names: a"):
        CatalogueWriter(out, [Column("a", "int64"), Column("a", "bool")], n_parts=1, fingerprint={})
    with pytest.raises(CatalogueError, match=r"header key 'LONGKEYWORD' is not a FITS keyword .*'COMMENT'"):
        writer(out, header={"LONGKEYWORD": (1, "")})
    with pytest.raises(CatalogueError, match="reserved for the table structure"):
        writer(out, header={"TTYPE1": ("x", "")})
    with pytest.raises(CatalogueError, match="JSON-serialisable"):
        writer(out, fingerprint={"x": object()})
    assert list(tmp_path.iterdir()) == []


def test_existing_output_needs_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "cat.fits"
    out.write_bytes(b"old")
    with pytest.raises(CatalogueError, match="already exists; use --overwrite or another --out"):
        writer(out)
    assert out.read_bytes() == b"old" and not Path(f"{out}.lock").exists()
    stale_parts = tmp_path / "cat.fits.parts"
    stale_parts.mkdir()
    (stale_parts / "part-000000.npz").write_bytes(b"junk")
    with writer(out, overwrite=True) as w:
        assert not out.exists() and w.done() == set()
        for i in range(len(SIZES)):
            w.write_part(i, part(i))
        w.finish()
    np.testing.assert_array_equal(read_catalogue(out)[0]["source_id"], expected()["source_id"])


def test_many_parts_stream(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    n_parts, rows = 50, 2000
    for name in ("big.fits", "big.parquet"):
        out = tmp_path / name
        with CatalogueWriter(out, COLUMNS, n_parts=n_parts, fingerprint={"n": n_parts}) as w:
            for i in range(n_parts):
                w.write_part(i, part(i, rows))
            w.finish()
        columns, meta = read_catalogue(out)
        assert meta["n_rows"] == n_parts * rows
        assert columns["source_id"][rows * 7 + 3] == 2**60 + 7000 + 3
        assert columns["star"][-1] == f"2M49{rows - 1:012d}+x"
    assert pq.ParquetFile(tmp_path / "big.parquet").metadata.num_row_groups == n_parts


# ------------------------------------------------------------------------------------------------------ lock
def dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    return int(done.stdout)


def test_lock_refuses_a_second_writer(tmp_path: Path) -> None:
    import os

    out = tmp_path / "cat.parquet"
    first = writer(out)
    lock = Path(f"{out}.lock")
    assert json.loads(lock.read_text())["pid"] == os.getpid()
    with pytest.raises(CatalogueError) as info:
        writer(out)
    assert str(info.value) == (
        f"another prediction is writing {out} (pid {os.getpid()}); wait for it or remove the stale lock {lock}"
    )
    assert lock.exists()  # the refused writer leaves the holder's lock alone
    first.close()
    assert not lock.exists()
    with writer(out) as again:
        assert again.done() == set()


def test_stale_lock_is_taken_over(tmp_path: Path) -> None:
    import socket

    out = tmp_path / "cat.fits"
    lock = Path(f"{out}.lock")
    pid = dead_pid()
    lock.write_text(json.dumps({"pid": pid, "host": socket.gethostname()}))
    with pytest.warns(StaleLockWarning, match=f"taking over the lock of pid {pid}"):
        w = writer(out)
    assert json.loads(lock.read_text())["pid"] != pid
    w.close()
    assert not lock.exists()
    lock.write_text(json.dumps({"pid": pid, "host": "some-other-host"}))  # cannot tell: refused
    with pytest.raises(CatalogueError, match=f"pid {pid} on host some-other-host"):
        writer(out)


def test_killed_writer_is_resumed(tmp_path: Path) -> None:
    out = tmp_path / "cat.fits"
    reference = tmp_path / "ref.fits"
    write_all(reference)
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_catalogue import part, writer
        from pathlib import Path
        w = writer(Path({str(out)!r}))
        w.write_part(3, part(3))
        w.write_part(1, part(1))
        os._exit(1)
        """
    )
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert killed.returncode == 1, killed.stderr
    assert Path(f"{out}.lock").exists() and not out.exists()
    with pytest.warns(StaleLockWarning):
        w = writer(out)
    with w:
        assert w.done() == {1, 3}
        for i in (0, 2):
            w.write_part(i, part(i))
        w.finish()
    assert out.read_bytes() == reference.read_bytes()
    assert not Path(f"{out}.lock").exists() and not w.parts_dir.exists()


# ---------------------------------------------------------------------------------------------------- reader
def test_reader_refuses_other_files(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="no such catalogue file"):
        read_catalogue(tmp_path / "nope.fits")
    (tmp_path / "x.fits").write_text("hello")
    with pytest.raises(CatalogueError, match="neither a FITS nor a Parquet file"):
        read_catalogue(tmp_path / "x.fits")

"""The seeded generator ``tests/data/starlabel_gaia/make_rvs.py``: reproducible bytes, the layouts it claims."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest


def test_two_runs_write_identical_bytes(rvs_maker: ModuleType, tmp_path: Path) -> None:
    writers = ("write_bulk", "write_datalink_csv", "write_datalink_ecsv", "write_zip")
    first = [getattr(rvs_maker, w)(tmp_path / "a") for w in writers]
    second = [getattr(rvs_maker, w)(tmp_path / "b") for w in writers]
    for one, two in zip(first, second, strict=True):
        assert one.name == two.name
        assert rvs_maker.md5(one) == rvs_maker.md5(two), one.name
    assert rvs_maker.text_md5(first[0]) == rvs_maker.EXPECTED_BULK_TEXT_MD5


def test_main_writes_every_layout(rvs_maker: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert rvs_maker.main([str(tmp_path)]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names[-2:] == ["RvsMeanSpectrum_000000-003111.csv.gz", "gaia_dr3_rvs_bundle.zip"]
    assert {Path(n).suffix for n in names} == {".csv", ".ecsv", ".fits", ".xml", ".gz", ".zip"}
    assert rvs_maker.main([]) == 2
    capsys.readouterr()


def test_bulk_layout(rvs_maker: ModuleType, tmp_path: Path) -> None:
    raw = rvs_maker.write_bulk(tmp_path).read_bytes()
    assert raw[:2] == b"\x1f\x8b" and raw[4:8] == b"\x00\x00\x00\x00"  # gzip, mtime 0
    lines = gzip.decompress(raw).decode().splitlines()
    header = [line for line in lines if line.startswith("#")]
    assert header[:4] == ["# %ECSV 1.0", "# ---", "# delimiter: ','", "# datatype:"]
    assert "#   subtype: 'float32[null]'" in header
    rows = [line for line in lines if not line.startswith("#")]
    assert rows[0] == ",".join(rvs_maker.COLUMNS) and len(rows) == 1 + rvs_maker.N_SOURCES
    first = rows[1].split('"')
    assert len(first) == 5 and first[1].startswith("[") and first[1].count(",") == 2400
    truth = rvs_maker.truth()
    assert np.all(truth["source_id"] > 2**53) and np.all(np.diff(truth["source_id"]) > 0)
    assert np.all((truth["source_id"] >> 43) <= 3111)


def test_zip_members(rvs_maker: ModuleType, tmp_path: Path) -> None:
    ids = rvs_maker.truth()["source_id"]
    with zipfile.ZipFile(rvs_maker.write_zip(tmp_path, (0, 4))) as bundle:
        assert bundle.namelist() == [
            f"RVS-Gaia DR3 {ids[0]}.csv",
            f"XP_SAMPLED-Gaia DR3 {ids[0]}.csv",
            f"RVS-Gaia DR3 {ids[4]}.csv",
        ]
        assert bundle.read(bundle.namelist()[0]) == rvs_maker.datalink_csv_text(0)

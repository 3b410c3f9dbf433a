"""Fast inflating (isal) reads what zlib reads, damage included; a bulk file read in parts equals one read whole."""

from __future__ import annotations

import gzip
import io
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

import starlabel_gaia.rvs_stream as rvs_stream
from starlabel.containers import Spectra, concat_spectra
from starlabel_gaia.rvs import GaiaRvsDr3
from starlabel_gaia.rvs_batch import RvsBatch
from starlabel_gaia.rvs_spectra import derive
from starlabel_gaia.rvs_stream import TextStream


def stream_result(data: bytes, fast: ModuleType | None, monkeypatch: pytest.MonkeyPatch, seekable: bool = True):
    """The text, damage and tail a TextStream delivers with ``fast`` as the fast inflater."""
    monkeypatch.setattr(rvs_stream, "FAST_INFLATE", fast)
    handle = io.BytesIO(data)
    if not seekable:
        handle.seekable = lambda: False  # type: ignore[method-assign]
    stream = TextStream(handle)
    text = b"".join(stream.chunks())
    return text, stream.damage, stream.tail


@pytest.fixture(scope="module")
def compressed() -> bytes:
    rng = np.random.default_rng(3)
    lines = [",".join(f"{v:.7f}" for v in rng.random(300)).encode() for _ in range(400)]
    return gzip.compress(b"\n".join(lines) + b"\n", compresslevel=1, mtime=0)


@pytest.mark.parametrize("damage", ["none", "truncated", "flipped", "crc", "trailing"])
def test_isal_delivers_what_zlib_delivers(compressed: bytes, damage: str, monkeypatch: pytest.MonkeyPatch) -> None:
    isal = pytest.importorskip("isal.isal_zlib")
    data = bytearray(compressed)
    if damage == "truncated":
        data = data[: len(data) * 2 // 3]
    elif damage == "flipped":
        data[len(data) // 2] ^= 0x5A
    elif damage == "crc":
        data[-6] ^= 0xFF  # the CRC32 of the member
    elif damage == "trailing":
        data += b"garbage after the member"
    expected = stream_result(bytes(data), None, monkeypatch)
    assert stream_result(bytes(data), isal, monkeypatch) == expected
    assert stream_result(bytes(data), isal, monkeypatch, seekable=False)[0] == expected[0]
    if damage == "none":
        assert expected[1] is None and expected[0] == gzip.decompress(compressed)
    else:
        assert expected[1] is not None  # the damage is described (zlib's own words where data are corrupt)
    if damage == "crc":
        assert "incorrect data check" in expected[1]


def test_isal_is_used_when_installed() -> None:
    pytest.importorskip("isal.isal_zlib")
    assert rvs_stream.FAST_INFLATE is not None and rvs_stream.FAST_INFLATE.__name__.startswith("isal")


def test_derive_matches_the_float64_definition() -> None:
    """ivar = 1/err² in float64 from float32 errors, 0 where err or flux is bad or ivar overflows; mask = ivar == 0."""
    tiny, huge = np.float32(1e-45), np.float32(3e38)
    error = np.array([[0.01, 0.0, -0.5, np.nan, np.inf, tiny, huge, 2e-20, 0.5]], dtype=np.float32)
    flux = np.array([[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, np.nan]], dtype=np.float32)
    ivar, mask = derive(flux, error)
    expected = Spectra.ivar_from_sigma(error)
    expected[~np.isfinite(flux)] = 0.0
    assert ivar.dtype == np.float64 and ivar.tobytes() == expected.tobytes()
    np.testing.assert_array_equal(mask, ~np.isfinite(flux) | (expected == 0))
    assert ivar[0, 5] == 1.0 / np.float64(tiny) ** 2 and ivar[0, 7] == 1.0 / np.float64(np.float32(2e-20)) ** 2


@pytest.fixture(scope="module")
def bulk(rvs_maker: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """A 300-row bulk file with rows of the wrong length, a null id, a repeated id and a near-empty spectrum."""
    folder = tmp_path_factory.mktemp("parts")
    source = rvs_maker.write_bulk(folder, n=300, seed=11, wrong_length_rows=(5, 140))
    text = gzip.decompress(source.read_bytes())
    head, _, body = text.partition(b"\nsource_id,")
    header = head + b"\nsource_id," + body.split(b"\n", 1)[0] + b"\n"
    rows = body.split(b"\n", 1)[1].splitlines()
    rows[20] = b"0" + rows[20][rows[20].index(b",") :]  # a null id
    rows[250] = rows[3]  # a repeated id
    start = rows[260].index(b'"[') + 2
    end = rows[260].index(b']"', start)
    tokens = rows[260][start:end].split(b",")
    tokens[5:8] = [b"NULL", b"1.5E0", b"9.9e-1"]  # spellings only the general parser reads
    rows[260] = rows[260][:start] + b",".join(tokens) + rows[260][end:]
    path = folder / "RvsMeanSpectrum_000001-000002.csv.gz"
    path.write_bytes(gzip.compress(header + b"\n".join(rows) + b"\n", mtime=0))
    return path, int(rows[260].split(b",", 1)[0])


@pytest.mark.parametrize("prefetch", [True, False])
def test_parts_concatenate_to_the_whole_read(
    bulk: tuple[Path, int], prefetch: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    import starlabel_gaia.rvs_bulk as rvs_bulk

    path, odd_id = bulk
    reader = GaiaRvsDr3(GaiaRvsDr3.Options(prefetch=prefetch))
    whole = reader.read(path)
    monkeypatch.setattr(rvs_bulk, "BATCH_ROWS", 32)  # several parts, batches cutting Arrow's groups
    monkeypatch.setattr(rvs_bulk, "ARROW_ROWS", 12)
    parts = list(reader.read_parts(path))
    assert len(parts) > 5 and all(not p.problems for p in parts[:-1])
    joined = concat_spectra(parts)
    for name in ("source_id", "flux", "ivar", "mask"):
        assert getattr(joined, name).tobytes() == getattr(whole, name).tobytes(), name
    assert whole.flux.dtype == np.float32 and whole.ivar.dtype == np.float64
    for key, value in whole.meta.items():
        np.testing.assert_array_equal(joined.meta[key], value)
    assert joined.problems == whole.problems
    lines = "\n".join(whole.problems)
    assert lines.count("expected 2401 each; row skipped") == 2
    assert "has a null source_id (0); skipped" in lines and "occur more than once" in lines
    assert len(whole) == 300 - 2 - 1 - sum("valid pixels, fewer than" in p for p in whole.problems)
    odd = whole.flux[np.flatnonzero(whole.source_id == odd_id)[0]]
    assert np.isnan(odd[5]) and odd[6] == np.float32(1.5) and odd[7] == np.float32(0.99)


def test_batch_without_parse_threads_gives_the_same_spectra(bulk: tuple[Path, int]) -> None:
    """A batch readied in the consumer (other layouts) equals one readied where it was parsed."""
    from starlabel_gaia.rvs_bulk import read_bulk
    from starlabel_gaia.rvs_spectra import iter_spectra

    path = bulk[0]
    batch = read_bulk(path, str(path))
    assert isinstance(batch, RvsBatch)
    one = concat_spectra(list(iter_spectra([batch], str(path), 1000)))
    other = GaiaRvsDr3(GaiaRvsDr3.Options()).read(path)
    assert one.ivar.tobytes() == other.ivar.tobytes() and one.problems == other.problems

"""A pytest plugin for plugin authors (registered under the ``pytest11`` entry point).

Fixtures
--------
starlabel_plugins
    A fresh :class:`~starlabel.plugins.Plugins` with the built-in plugins only (entry points off).
starlabel_plugins_factory
    ``factory(*extra, entry_points=False, environ=None)`` → a fresh manager with extra plugin objects
    given as ``(name, plugin)`` pairs.
tiny_grid
    A 41-pixel linear :class:`~starlabel.descriptor.GridSection` (500–520 nm, vacuum).
fake_spectra
    Seeded :class:`~starlabel.containers.Spectra`: 8 stars on ``tiny_grid`` with one absorption line,
    noise, a masked pixel per star.
junk_files
    Paths a reader's ``identify`` must answer False to without raising: empty file, random bytes,
    truncated gzip, text, a directory, a path that does not exist.

Helpers
-------
:func:`component_params` returns ``pytest.param`` objects for every registered component, for
contract tests parametrized over whatever is installed. :func:`real_data` finds a real survey file
under ``$STARLABEL_TEST_DATA`` or skips the test, saying why. :func:`assert_same_store` compares two stores;
:func:`load_script` imports a generator script by path; :func:`edit_fits_card` rewrites one header card of FITS
bytes in place (for corrupt headers astropy refuses to write).
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from starlabel.containers import Spectra
from starlabel.descriptor import GridSection
from starlabel.plugins import Plugins, load_plugins


@pytest.fixture
def starlabel_plugins_factory() -> Callable[..., Plugins]:
    """Factory for fresh plugin managers; nothing is shared between calls."""

    def factory(
        *extra: tuple[str, object], entry_points: bool = False, environ: Mapping[str, str] | None = None
    ) -> Plugins:
        return load_plugins(entry_points=entry_points, extra=extra, environ=environ or {})

    return factory


@pytest.fixture
def starlabel_plugins(starlabel_plugins_factory: Callable[..., Plugins]) -> Plugins:
    """A fresh manager with the built-in plugins and no entry points."""
    return starlabel_plugins_factory()


@pytest.fixture
def tiny_grid() -> GridSection:
    """41 pixels, 500–520 nm in 0.5 nm steps, vacuum."""
    return GridSection(start=500.0, stop=520.0, step=0.5, unit="nm", medium="vacuum")


@pytest.fixture
def fake_spectra(tiny_grid: GridSection) -> Spectra:
    """Eight seeded spectra on ``tiny_grid``: a Gaussian line at 510 nm, S/N 50, pixel 3 masked."""
    rng = np.random.default_rng(1234)
    wave = tiny_grid.wavelength()
    depth = rng.uniform(0.1, 0.6, size=(8, 1))
    flux = 1 - depth * np.exp(-0.5 * ((wave - 510.0) / 0.8) ** 2)
    sigma = np.full_like(flux, 0.02)
    flux = flux + rng.normal(0, sigma)
    mask = np.zeros(flux.shape, dtype=bool)
    mask[:, 3] = True
    ivar = np.where(mask, 0.0, 1 / sigma**2)
    ids = np.arange(8, dtype=np.int64) + 4_000_000_000_000_000_000
    return Spectra(ids, wave, flux, ivar, mask, unit="nm", medium="vacuum", meta={"depth": depth[:, 0]})


@pytest.fixture
def junk_files(tmp_path: Path) -> list[Path]:
    """Files no reader should claim."""
    rng = np.random.default_rng(7)
    empty = tmp_path / "empty.fits"
    empty.write_bytes(b"")
    noise = tmp_path / "noise.fits.gz"
    noise.write_bytes(rng.bytes(4096))
    truncated = tmp_path / "truncated.csv.gz"
    truncated.write_bytes(gzip.compress(b"source_id,flux\n1,2\n" * 100)[:40])
    text = tmp_path / "notes.csv"
    text.write_text("this is not a spectrum\n")
    folder = tmp_path / "folder.fits"
    folder.mkdir()
    return [empty, noise, truncated, text, folder, tmp_path / "missing.fits"]


def component_params(plugins: Plugins | None = None, kinds: tuple[str, ...] | None = None) -> list[Any]:
    """``pytest.param(kind, cls, id=kind:name)`` for every registered component (entry points included)."""
    plugins = plugins or load_plugins()
    return [
        pytest.param(kind, cls, id=f"{kind}:{cls.name}")
        for kind, cls, _ in plugins.components()
        if kinds is None or kind in kinds
    ]


TEST_DATA_ENV = "STARLABEL_TEST_DATA"


def real_data(relative: str) -> Path:
    """Path of a real survey file under ``$STARLABEL_TEST_DATA``; skips the calling test when unavailable."""
    root = os.environ.get(TEST_DATA_ENV)
    if not root:
        pytest.skip(f"{TEST_DATA_ENV} is not set: real survey files unavailable")
    path = Path(root) / relative
    if not path.exists():
        pytest.skip(f"real data file {relative} not found under {TEST_DATA_ENV}={root}")
    return path


def assert_same_store(first: str | Path, second: str | Path) -> None:
    """Assert two complete stores hold identical arrays and attributes (creation and finish times aside)."""
    from starlabel.store import Store

    a, b = Store.open(first), Store.open(second)
    assert a.row_arrays() == b.row_arrays(), (a.row_arrays(), b.row_arrays())
    for name in a.row_arrays():
        np.testing.assert_array_equal(np.asarray(a.array(name)[:]), np.asarray(b.array(name)[:]), err_msg=name)
    meta_a, meta_b = dict(a.meta), dict(b.meta)
    for meta in (meta_a, meta_b):
        meta.pop("created")
        meta["completion"] = {k: v for k, v in meta["completion"].items() if k != "finished"}
    assert meta_a == meta_b


def load_script(path: str | Path) -> ModuleType:
    """Import a standalone script (such as a seeded test-data generator) by path, without touching sys.path."""
    path = Path(path)
    name = "starlabel_script_" + "_".join(path.with_suffix("").parts[-3:]).replace("-", "_")
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path}: not an importable Python file")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def edit_fits_card(data: bytes, hdu: int, key: str, value: str | None) -> bytes:
    """Return FITS bytes with card ``key`` of HDU ``hdu`` rewritten; every other byte stays where it is.

    For tests of readers against corrupt headers, which astropy refuses to write.

    Parameters
    ----------
    data : bytes
        A FITS file (not compressed).
    hdu : int
        0 for the primary header, 1 for the first extension, ...
    key : str
        Keyword of the card (the first card with it).
    value : str or None
        Text written after ``= `` as is (``"1000000000000000000"``, ``"'furlong'"``, ``"junk"``); None blanks
        the card (removes it).

    Raises
    ------
    KeyError
        The file has no such HDU, or the HDU no such card.
    """
    from starlabel.fitspeek import BLOCK, CARD, _data_bytes, _read_header

    offset = 0
    for number in range(hdu + 1):
        header = _read_header(io.BytesIO(data[offset:]))
        if header is None:
            raise KeyError(f"HDU{hdu}: the file has {number} readable HDU(s)")
        cards = offset
        while data[cards : cards + 3] != b"END" or data[cards + 3 : cards + CARD].strip():
            if number == hdu and data[cards : cards + 8].decode("ascii", "replace").strip() == key:
                card = b" " * CARD if value is None else f"{key:<8}= {value:>20}".ljust(CARD).encode("ascii")
                return data[:cards] + card + data[cards + CARD :]
            cards += CARD
        size = _data_bytes(header)
        if size is None:
            raise KeyError(f"HDU{number}: data size cannot be worked out from its header")
        offset = -(-(cards + CARD) // BLOCK) * BLOCK + size
    raise KeyError(f"HDU{hdu} has no card {key!r}")

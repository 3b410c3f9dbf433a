"""``starlabel degrade``: a high-resolution store → the store a lower-resolution target instrument would give.

The source store holds spectra at R = 20000 on an air-wavelength grid in Angstrom; targets are at
R = 5000 on vacuum grids in nm. Spectra are a sloped continuum times two Gaussian lines whose width is
the instrument's, so the spectrum a target instrument would record is known in closed form.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from spectra_helpers import equivalent_width
from toys import NpzPlugin, write_npz

import starlabel.degrade as degrade_module
from starlabel.bundle import BundleError, check_compatible, input_fingerprint
from starlabel.cli import make_cli
from starlabel.degrade import DegradeError, DegradeOptions, degrade, descriptor_path
from starlabel.descriptor import load_descriptor
from starlabel.errors import SimulationError
from starlabel.grid import WavelengthGrid, pixel_edges
from starlabel.ingest import ingest
from starlabel.plugins import Plugins, load_plugins
from starlabel.snr import parse_snr
from starlabel.store import Store, StoreBatch, StoreError, StoreLayout
from starlabel.testing import assert_same_store
from starlabel.train import _check_store
from starlabel.wavelengths import convert_wavelength

FWHM = 2.0 * math.sqrt(2.0 * math.log(2.0))
LINES = (508.0, 511.5)  # vacuum nm
PHOT = {"provider": "table_columns", "name": "phot", "options": {"id_column": "source_id", "columns": {"g": "G"}}}
PLX = {"provider": "table_columns", "name": "plx", "options": {"id_column": "source_id", "columns": {"p": "P"}}}
LABELS = {
    "source": "table_labels",
    "columns": ["teff", "logg"],
    "options": {
        "id_column": "source_id",
        "columns": {"teff": "TEFF", "logg": "LOGG"},
        "units": {"teff": "K", "logg": "dex"},
    },
}


def source_descriptor(**changes: Any) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "name": "toy_high",
        "instrument": {"reader": "toy_npz", "resolution": 20000},
        "grid": {"start": 5050.0, "stop": 5150.0, "step": 0.05, "unit": "Angstrom", "medium": "air"},
        "auxiliary": [PHOT, PLX],
        "labels": LABELS,
        "ingest": {"chunk_rows": 16},
    } | changes


def target_descriptor(**changes: Any) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "name": "toy_low",
        "instrument": {
            "reader": "toy_npz",
            "resolution": 5000,
            "arms": [{"name": "blue", "start": 500.0, "stop": 510.0}, {"name": "red", "start": 510.0, "stop": 514.0}],
        },
        "grid": {"start": 506.0, "stop": 514.0, "step": 0.02, "unit": "nm", "medium": "vacuum"},
        "mask": [{"start": 513.6, "stop": 514.0, "why": "edge"}],
        "normalise": {"method": "none"},
        "auxiliary": [PHOT],
        "labels": LABELS,
        "ingest": {"chunk_rows": 64},
        "data": {"root": ".", "spectra": "spec_*.npz", "labels": "labels.csv", "auxiliary": {"phot": "labels.csv"}},
    } | changes


@pytest.fixture
def plugins() -> Plugins:
    return load_plugins(entry_points=False, extra=[("toy", NpzPlugin())], environ={})


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def model_flux(wave_nm: np.ndarray, depth: np.ndarray, resolution: float, slope: float) -> np.ndarray:
    """(n, P) sloped continuum times unresolved lines at the LINES (vacuum nm) seen at resolving power R.

    ``depth`` is the depth at R = 20000; the equivalent width is the same at every R.
    """
    lines = np.zeros((len(depth), wave_nm.size))
    for k, centre in enumerate(LINES):
        sigma = centre / (resolution * FWHM)
        lines += depth[:, k : k + 1] * resolution / 20000 * np.exp(-0.5 * ((wave_nm - centre) / sigma) ** 2)
    return (1.0 + slope * (wave_nm - 510.0)) * (1.0 - lines)


def source_store(
    folder: Path,
    plugins: Plugins,
    n: int = 40,
    *,
    snr: float | np.ndarray | None = None,
    slope: float = 0.02,
    seed: int = 0,
    name: str = "source.zarr",
) -> tuple[Path, dict[str, np.ndarray]]:
    """Write the R=20000 source store (through the real Store, as ingest would) and return it with its truth."""
    resolved = load_descriptor(write_yaml(folder / "source.yaml", source_descriptor()), plugins)
    grid = WavelengthGrid.from_section(resolved.model.grid)
    vacuum_nm = convert_wavelength(grid.wavelength, grid.unit, grid.medium, "nm", "vacuum")
    rng = np.random.default_rng(seed)
    depth = rng.uniform(0.2, 0.6, (n, 2))
    clean = model_flux(vacuum_nm, depth, 20000, slope)
    sigma = np.broadcast_to(np.asarray(1e-4 if snr is None else 1.0 / np.asarray(snr), dtype=float), (n,))[:, None]
    flux = (clean + sigma * rng.standard_normal(clean.shape)).astype(np.float32)
    ivar = np.broadcast_to(1.0 / sigma**2, flux.shape).astype(np.float32)
    ids = (10**12 + rng.choice(10**6, n, replace=False)).astype(np.int64)
    teff, logg = rng.uniform(4000, 6000, n).astype(np.float32), rng.uniform(1, 5, n).astype(np.float32)
    ok = rng.random((2, n)) > 0.2
    phot, plx = rng.normal(12, 1, (n, 1)).astype(np.float32), rng.normal(1, 0.2, (n, 1)).astype(np.float32)
    phot_missing = rng.random((n, 1)) < 0.2
    phot[phot_missing] = np.nan
    layout = StoreLayout(len(grid), "int", {"phot": ["g"], "plx": ["p"]}, {"teff": "K", "logg": "dex"}, 16)
    store = Store.create(
        folder / name,
        layout,
        descriptor=resolved.resolved(),
        descriptor_hash=resolved.hash(),
        grid=grid.as_dict(),
        plugins=plugins.versions(),
    )
    store.append(
        StoreBatch(
            ids,
            flux,
            ivar,
            np.zeros(flux.shape, bool),
            np.full(n, 100.0, np.float32),
            {"phot": (phot, phot_missing), "plx": (plx, np.zeros((n, 1), bool))},
            {
                "teff": (teff, np.full(n, 50.0, np.float32), ok[0]),
                "logg": (logg, np.full(n, 0.1, np.float32), ok[1]),
            },
        )
    )
    store.set_keep(np.ones(n, bool))
    store.finish({})
    return folder / name, {"ids": ids, "depth": depth, "teff": teff, "logg": logg, "phot": phot, "G": phot}


def target(folder: Path, plugins: Plugins, **changes: Any):  # type: ignore[no-untyped-def]
    return load_descriptor(write_yaml(folder / "target" / "target.yaml", target_descriptor(**changes)), plugins)


def arrays(path: Path, names: tuple[str, ...] = ("flux", "ivar", "mask", "source_id", "snr")) -> dict[str, np.ndarray]:
    store = Store.open(path)
    return {name: np.asarray(store.array(name)[:]) for name in names}


# ------------------------------------------------------------------------------------------------ output
def test_output_is_on_the_target_grid_with_copied_ids_aux_and_labels(tmp_path: Path, plugins: Plugins) -> None:
    source, _ = source_store(tmp_path, plugins)
    goal = target(tmp_path, plugins)
    report = degrade(source, goal, plugins, tmp_path / "out.zarr")
    out, src = Store.open(tmp_path / "out.zarr"), Store.open(source)
    expected = WavelengthGrid.from_section(goal.model.grid)
    assert WavelengthGrid.from_dict(out.meta["grid"]) == expected
    assert (out.meta["grid"]["unit"], out.meta["grid"]["medium"], out.layout.n_pixels) == ("nm", "vacuum", 401)
    assert out.meta["descriptor"] == goal.resolved() and out.descriptor_hash == goal.hash()
    record = out.meta["degraded_from"]
    assert record["store"] == str(source.resolve()) and record["descriptor_hash"] == src.descriptor_hash
    assert (record["resolution"], record["target_resolution"], record["convolved"]) == (20000, 5000, True)
    assert (record["snr"], record["seed"], record["cropped"]) == (None, 0, False)
    assert (report.rows_in, report.rows, report.kept, report.dropped) == (40, 40, 40, 0)
    assert report.covered_fraction == 1.0 and out.complete
    # ids, aux (only the target's entry) and labels are copied exactly
    assert list(out.layout.aux) == ["phot"] and out.layout.aux["phot"] == ["g"]
    assert out.layout.labels == {"teff": "K", "logg": "dex"}
    for name in (
        "source_id",
        "aux/phot",
        "aux/phot_missing",
        "labels/teff",
        "labels/teff_err",
        "labels/teff_ok",
        "labels/logg",
        "labels/logg_ok",
    ):
        np.testing.assert_array_equal(np.asarray(out.array(name)[:]), np.asarray(src.array(name)[:]), err_msg=name)
    # the target's mask region is masked in every spectrum, the rest is not
    data = arrays(tmp_path / "out.zarr")
    region = expected.wavelength >= 513.6
    assert data["mask"][:, region].all() and not data["mask"][:, ~region].any()
    assert (data["ivar"][data["mask"]] == 0).all() and (data["flux"][data["mask"]] == 0).all()
    _check_store(goal, out, ["teff", "logg"])  # `starlabel train TARGET --store OUT` accepts it


def test_line_gets_the_target_fwhm_and_keeps_its_equivalent_width(tmp_path: Path, plugins: Plugins) -> None:
    from scipy.optimize import curve_fit

    source, truth = source_store(tmp_path, plugins, n=3, slope=0.0)
    degrade(source, target(tmp_path, plugins, mask=[]), plugins, tmp_path / "out.zarr")
    wave = WavelengthGrid.from_section(target(tmp_path, plugins).model.grid).wavelength
    flux = arrays(tmp_path / "out.zarr")["flux"]
    src = Store.open(source)
    src_grid = WavelengthGrid.from_dict(src.meta["grid"])
    src_wave = convert_wavelength(src_grid.wavelength, src_grid.unit, src_grid.medium, "nm", "vacuum")
    src_flux = np.asarray(src.array("flux")[:], dtype=float)
    step = 0.02
    for k, centre in enumerate(LINES):
        near, src_near = np.abs(wave - centre) < 0.5, np.abs(src_wave - centre) < 0.5
        for row in range(3):

            def line(x: np.ndarray, depth: float, mu: float, sigma: float) -> np.ndarray:
                return 1.0 - depth * np.exp(-0.5 * ((x - mu) / sigma) ** 2)

            (depth, mu, sigma), _ = curve_fit(line, wave[near], flux[row, near], p0=(0.4, centre, 0.04))
            sigma = math.sqrt(sigma**2 - step**2 / 12)  # rebinning onto 0.02 nm pixels adds step²/12
            assert sigma * FWHM == pytest.approx(centre / 5000, rel=0.03)
            assert abs(mu - centre) < 0.002
            ew_target = equivalent_width(wave[near], flux[row, near])
            ew_source = float(np.sum((1.0 - src_flux[row, src_near]) * np.diff(pixel_edges(src_wave))[src_near]))
            assert ew_target == pytest.approx(ew_source, rel=0.01)
            assert ew_target == pytest.approx(
                truth["depth"][row, k] * centre / (20000 * FWHM) * math.sqrt(2 * math.pi), rel=0.01
            )


def test_equal_resolution_only_resamples(tmp_path: Path, plugins: Plugins) -> None:
    from starlabel.resample import resample

    source, _ = source_store(tmp_path, plugins, n=4)
    goal = target(tmp_path, plugins, mask=[], instrument={"reader": "toy_npz", "resolution": 20000})
    report = degrade(source, goal, plugins, tmp_path / "out.zarr")
    assert not report.convolved and not Store.open(tmp_path / "out.zarr").meta["degraded_from"]["convolved"]
    src = Store.open(source)
    grid = WavelengthGrid.from_dict(src.meta["grid"])
    wave = convert_wavelength(grid.wavelength, grid.unit, grid.medium, "nm", "vacuum")
    expected = resample(
        wave,
        src.array("flux")[:],
        src.array("ivar")[:],
        src.array("mask")[:],
        WavelengthGrid.from_section(goal.model.grid),
    )
    np.testing.assert_allclose(arrays(tmp_path / "out.zarr")["flux"], expected.flux, rtol=1e-6)


# -------------------------------------------------------------------------------------- noise and S/N
def test_ivar_of_degraded_spectra_matches_their_scatter(tmp_path: Path, plugins: Plugins) -> None:
    """The convolution correlates neighbouring pixels; the stored ivar must still be that of the rebinned pixels."""
    noisy, _ = source_store(tmp_path / "a", plugins, n=120, snr=50.0, slope=0.0, seed=5)
    clean, _ = source_store(tmp_path / "b", plugins, n=120, snr=None, slope=0.0, seed=5)
    goal = target(tmp_path, plugins, mask=[])
    degrade(noisy, goal, plugins, tmp_path / "noisy.zarr")
    degrade(clean, goal, plugins, tmp_path / "clean.zarr")
    a, b = arrays(tmp_path / "noisy.zarr"), arrays(tmp_path / "clean.zarr")
    empirical = np.var(a["flux"] - b["flux"], axis=0)  # across 120 stars, per pixel
    ratio = empirical * np.median(a["ivar"], axis=0)
    assert np.median(ratio) == pytest.approx(1.0, abs=0.05)
    # the S/N measured as ingest measures it is the noise the spectra really have
    assert np.median(a["snr"]) == pytest.approx(np.median(1.0 / np.sqrt(empirical)), rel=0.05)


def test_snr_fixed_uniform_already_noisier_and_seeded(
    tmp_path: Path, plugins: Plugins, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scipy import stats

    snr_in = np.full(60, 1000.0)
    snr_in[:8] = 2.0  # these come out of the degrade below S/N 30
    source, _ = source_store(tmp_path, plugins, n=60, snr=snr_in, slope=0.0)
    goal = target(tmp_path, plugins, mask=[])
    degrade(source, goal, plugins, tmp_path / "kept.zarr")
    kept = arrays(tmp_path / "kept.zarr")
    noisier = int((kept["snr"] < 30).sum())
    assert 1 <= noisier <= 8
    report = degrade(source, goal, plugins, tmp_path / "s30.zarr", DegradeOptions(snr=parse_snr("30"), seed=7))
    assert report.already_noisier == noisier and report.snr == "30"
    s30 = arrays(tmp_path / "s30.zarr")
    quiet = kept["snr"] >= 30
    assert np.median(s30["snr"][quiet]) == pytest.approx(30, rel=0.1)
    added = s30["flux"][quiet] - kept["flux"][quiet]  # the noise added, and nothing else
    measured = np.median(np.abs(kept["flux"][quiet]), axis=1) / added.std(axis=1)
    assert np.median(measured) == pytest.approx(30, rel=0.1)
    np.testing.assert_array_equal(s30["flux"][~quiet], kept["flux"][~quiet])  # left as they were
    # uniform: the spread of the measured S/N is that of the distribution
    degrade(source, goal, plugins, tmp_path / "u.zarr", DegradeOptions(snr=parse_snr("uniform:15,45"), seed=7))
    uni = arrays(tmp_path / "u.zarr")
    measured = np.median(np.abs(kept["flux"][quiet]), axis=1) / (uni["flux"] - kept["flux"])[quiet].std(axis=1)
    assert stats.kstest(measured, stats.uniform(15, 30).cdf).pvalue > 0.01
    assert measured.std() == pytest.approx(30 / math.sqrt(12), rel=0.2)
    assert stats.kstest(uni["snr"][quiet], stats.uniform(15, 30).cdf).pvalue > 0.01
    # seeded: same seed, other chunk and block sizes → the same spectra; another seed → other noise
    monkeypatch.setattr(degrade_module, "BLOCK_VALUES", 5 * 2001)
    degrade(
        source,
        target(tmp_path, plugins, mask=[], ingest={"chunk_rows": 16}),
        plugins,
        tmp_path / "c16.zarr",
        DegradeOptions(snr=parse_snr("30"), seed=7),
    )
    np.testing.assert_array_equal(arrays(tmp_path / "c16.zarr")["flux"], s30["flux"])
    degrade(source, goal, plugins, tmp_path / "s8.zarr", DegradeOptions(snr=parse_snr("30"), seed=8))
    assert not np.allclose(arrays(tmp_path / "s8.zarr")["flux"][quiet], s30["flux"][quiet])


# ------------------------------------------------------------------------------------------------- masks
def test_masked_source_pixel_masks_the_target_pixels_covering_it(tmp_path: Path, plugins: Plugins) -> None:
    source, _ = source_store(tmp_path, plugins, n=3)
    src = Store.open(source, "r+")
    grid = WavelengthGrid.from_dict(src.meta["grid"])
    vacuum = convert_wavelength(grid.wavelength, grid.unit, grid.medium, "nm", "vacuum")
    bad = int(np.argmin(np.abs(vacuum - 509.0)))
    mask, ivar = src.array("mask")[:], src.array("ivar")[:]
    mask[0, bad] = True  # a flagged pixel
    ivar[1, bad] = 0.0  # a pixel without variance
    src.group["mask"][:] = mask
    src.group["ivar"][:] = ivar
    goal = target(tmp_path, plugins, mask=[])
    degrade(source, goal, plugins, tmp_path / "out.zarr")
    data = arrays(tmp_path / "out.zarr")
    edges = pixel_edges(WavelengthGrid.from_section(goal.model.grid).wavelength)
    src_edges = pixel_edges(vacuum)
    overlaps = (edges[1:] > src_edges[bad]) & (edges[:-1] < src_edges[bad + 1])
    assert 1 <= overlaps.sum() <= 2
    for row in (0, 1):
        np.testing.assert_array_equal(data["mask"][row], overlaps)
        assert (data["ivar"][row, overlaps] == 0).all() and (data["flux"][row, overlaps] == 0).all()
    assert not data["mask"][2].any()


# ---------------------------------------------------------------------------------------------- refusals
def test_refusals_name_what_is_wrong_and_what_is_allowed(tmp_path: Path, plugins: Plugins) -> None:
    source, _ = source_store(tmp_path, plugins, n=4)
    out = tmp_path / "out.zarr"
    with pytest.raises(DegradeError, match=r"resolution 30000 is higher than the source store's \(20000.*R ≤ 20000"):
        degrade(source, target(tmp_path, plugins, instrument={"reader": "toy_npz", "resolution": 30000}), plugins, out)
    with pytest.raises(DegradeError) as error:
        degrade(source, target(tmp_path, plugins, grid={"start": 500.0, "stop": 514.0, "step": 0.02}), plugins, out)
    message = str(error.value)
    assert "covers only 505.16–514 nm of the target grid 500–514 nm (vacuum)" in message
    assert (
        "443 of 701 target pixels (63.2%); re-run with --crop to restrict the target grid, arms and mask to 505.22–514 nm"
        in message
    )
    wrong = dict(
        LABELS, columns=["teff", "feh"], options={"id_column": "source_id", "columns": {"teff": "T", "feh": "FE"}}
    )
    with pytest.raises(DegradeError, match=r"labels feh .* it holds: teff, logg.*--map feh="):
        degrade(source, target(tmp_path, plugins, labels=wrong), plugins, out)
    with pytest.raises(
        DegradeError, match=r"--map fe=logg: 'fe' is not one of the target's labels.columns; allowed: teff, feh"
    ):
        degrade(source, target(tmp_path, plugins, labels=wrong), plugins, out, DegradeOptions(label_map={"fe": "logg"}))
    other = dict(PHOT, options={"id_column": "source_id", "columns": {"bp": "BP"}})
    extra = {
        "provider": "table_columns",
        "name": "wise",
        "options": {"id_column": "source_id", "columns": {"w1": "W1"}},
    }
    with pytest.raises(DegradeError) as error:
        degrade(source, target(tmp_path, plugins, auxiliary=[other, extra]), plugins, out)
    message = str(error.value)
    assert "phot: options differ" in message and "wise (provider table_columns): not in the store" in message
    assert "The store holds: phot (provider table_columns), plx (provider table_columns)" in message
    assert not out.exists()  # nothing is written before every check passed
    degrade(source, target(tmp_path, plugins), plugins, out)
    with pytest.raises(DegradeError, match="already holds a complete store; pass --overwrite"):
        degrade(source, target(tmp_path, plugins), plugins, out)
    report = degrade(source, target(tmp_path, plugins), plugins, out, DegradeOptions(overwrite=True, seed=3))
    assert report.rows == 4 and Store.open(out).meta["degraded_from"]["seed"] == 3
    with pytest.raises(DegradeError, match="output store must differ"):
        degrade(source, target(tmp_path, plugins), plugins, source, DegradeOptions(overwrite=True))


def test_label_map_takes_target_labels_from_stored_ones(tmp_path: Path, plugins: Plugins) -> None:
    source, truth = source_store(tmp_path, plugins, n=5)
    labels = dict(LABELS, columns=["t_eff"], options={"id_column": "source_id", "columns": {"t_eff": "TEFF"}})
    degrade(
        source,
        target(tmp_path, plugins, labels=labels),
        plugins,
        tmp_path / "out.zarr",
        DegradeOptions(label_map={"t_eff": "teff"}),
    )
    out = Store.open(tmp_path / "out.zarr")
    assert out.layout.labels == {"t_eff": "K"} and out.meta["degraded_from"]["labels"] == {"t_eff": "teff"}
    np.testing.assert_array_equal(out.array("labels/t_eff")[:], truth["teff"])


# -------------------------------------------------------------------------------- crop and compatibility
def test_crop_writes_a_descriptor_that_ingests_to_the_same_inputs(tmp_path: Path, plugins: Plugins) -> None:
    source, truth = source_store(tmp_path, plugins, n=24, slope=0.02)
    wide = {"start": 500.0, "stop": 514.0, "step": 0.02}
    goal = target(tmp_path, plugins, grid=wide, normalise={"method": "chebyshev", "options": {"degree": 2}})
    out = tmp_path / "deg" / "out.zarr"
    report = degrade(source, goal, plugins, out, DegradeOptions(crop=True))
    path = descriptor_path(out)
    assert path == tmp_path / "deg" / "out.zarr.descriptor.yaml" and report.cropped
    cropped = load_descriptor(path, plugins)
    grid = cropped.model.grid
    src = Store.open(source)
    edges = WavelengthGrid.from_dict(src.meta["grid"]).edges()[[0, -1]]
    first, last = convert_wavelength(edges, "Angstrom", "air", "nm", "vacuum")
    kernel = 505.2 * math.sqrt(1 / 5000**2 - 1 / 20000**2) / FWHM  # σ of the convolution kernel, nm
    assert first + 1.28 * kernel <= grid.start - 0.01 < first + 1.28 * kernel + 0.02  # where the kernel is on the grid
    assert (grid.start, grid.stop) == (505.22, 514.0)
    assert (grid.step, grid.unit, grid.medium) == (0.02, "nm", "vacuum")
    assert [(a.name, a.start) for a in cropped.model.instrument.arms] == [("blue", grid.start), ("red", 510.0)]
    assert report.covered_fraction == 443 / 701
    stored = Store.open(out)
    assert stored.meta["descriptor"] == cropped.resolved() and stored.descriptor_hash == cropped.hash()
    assert stored.meta["degraded_from"]["descriptor_yaml"] == path.read_text()
    assert WavelengthGrid.from_dict(stored.meta["grid"]) == WavelengthGrid.from_section(grid)
    _check_store(cropped, stored, ["teff", "logg"])
    # target-instrument spectra of the same stars, ingested with the cropped descriptor
    folder = tmp_path / "target"
    wave = np.arange(499.0, 515.0, 0.004)
    for part in range(2):
        rows = slice(12 * part, 12 * part + 12)
        flux = model_flux(wave, truth["depth"][rows], 5000, 0.02)
        write_npz(folder / f"spec_{part}.npz", truth["ids"][rows], wave, flux, np.full(flux.shape, 1e-4))
    table = ["source_id,G,TEFF,LOGG"] + [
        f"{i},{g},{t},{lg}"
        for i, g, t, lg in zip(truth["ids"], truth["G"][:, 0], truth["teff"], truth["logg"], strict=True)
    ]
    (folder / "labels.csv").write_text("\n".join(table).replace("nan", "") + "\n")
    ingest(cropped, plugins, tmp_path / "ingested.zarr")
    ingested = Store.open(tmp_path / "ingested.zarr")
    card = SimpleNamespace(
        inputs=input_fingerprint(ingested), descriptor={"name": cropped.name, "hash": cropped.hash()}
    )
    check_compatible(card, stored, tmp_path / "bundle")  # type: ignore[arg-type]
    with pytest.raises(BundleError, match="grid"):
        check_compatible(card, src, tmp_path / "bundle")  # type: ignore[arg-type]
    # and the stored inputs are what ingest stores for the target instrument
    a, b = arrays(out), arrays(tmp_path / "ingested.zarr")
    np.testing.assert_array_equal(a["source_id"], b["source_id"])
    np.testing.assert_array_equal(a["mask"], b["mask"])
    good = ~a["mask"]
    assert np.abs(a["flux"] - b["flux"])[good].max() < 5e-4  # lines of depth up to 0.15, continuum 0.86–1.08


def test_crop_of_an_explicit_grid_writes_its_wavelengths_beside_the_descriptor(
    tmp_path: Path, plugins: Plugins
) -> None:
    source, _ = source_store(tmp_path, plugins, n=4)
    wave = 500.0 + 0.02 * np.arange(701) + 1e-3 * np.sin(np.arange(701))  # not linear
    (tmp_path / "target").mkdir()
    np.savetxt(tmp_path / "target" / "pixels.txt", np.column_stack([np.arange(701), wave]), fmt="%.17g")
    grid = {"spacing": "explicit", "file": "pixels.txt", "column": 1}
    out = tmp_path / "out.zarr"
    degrade(source, target(tmp_path, plugins, grid=grid), plugins, out, DegradeOptions(crop=True))
    cropped = load_descriptor(descriptor_path(out), plugins)
    assert (cropped.model.grid.file, cropped.model.grid.column) == ("out.zarr.grid.txt", 0)
    reread = WavelengthGrid.from_section(cropped.model.grid, [tmp_path])
    stored = WavelengthGrid.from_dict(Store.open(out).meta["grid"])
    assert reread == stored and 505.2 < stored.wavelength[0] < 505.25  # as for the linear grid: 505.22
    np.testing.assert_array_equal(stored.wavelength, wave[-len(stored) :])  # the covered pixels, exactly


# ---------------------------------------------------------------------------------------------- resuming
def test_interrupted_run_resumes_to_the_same_store(
    tmp_path: Path, plugins: Plugins, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, _ = source_store(tmp_path, plugins, n=60)
    goal = target(tmp_path, plugins, ingest={"chunk_rows": 16})
    options = DegradeOptions(snr=parse_snr("normal:40,5"), seed=11)
    degrade(source, goal, plugins, tmp_path / "whole" / "out.zarr", options)
    real = degrade_module._commit
    calls = []

    def killed_after_writing_rows(store: Store, batch: StoreBatch, record: dict[str, Any]) -> None:
        calls.append(record["source_row"])
        if len(calls) == 3:
            store.append(batch)  # rows written, the progress record not: the kill comes in between
            raise KeyboardInterrupt
        real(store, batch, record)

    monkeypatch.setattr(degrade_module, "_commit", killed_after_writing_rows)
    out = tmp_path / "cut" / "out.zarr"
    with pytest.raises(KeyboardInterrupt):
        degrade(source, goal, plugins, out, options)
    with pytest.raises(StoreError, match="incomplete"):
        Store.open(out)  # a partial store is never taken as complete
    assert Store.open(out, allow_incomplete=True).n_rows == 48
    with pytest.raises(DegradeError, match="unfinished store of other inputs"):
        degrade(source, goal, plugins, out, DegradeOptions(snr=parse_snr("normal:40,5"), seed=12))
    monkeypatch.setattr(degrade_module, "_commit", real)
    done = []
    report = degrade(source, goal, plugins, out, options, progress=lambda rows, total: done.append((rows, total)))
    assert done == [(48, 60), (60, 60)] and report.rows == 60
    assert_same_store(out, tmp_path / "whole" / "out.zarr")


# --------------------------------------------------------------------------------------------------- CLI
def test_command_line(tmp_path: Path, plugins: Plugins) -> None:
    source, _ = source_store(tmp_path, plugins, n=6)
    goal = tmp_path / "target" / "target.yaml"
    write_yaml(goal, target_descriptor(grid={"start": 500.0, "stop": 514.0, "step": 0.02}))
    runner = CliRunner()
    base = ["degrade", str(source), "--to", str(goal), "--out", str(tmp_path / "out.zarr"), "--quiet"]
    result = runner.invoke(make_cli(), base, obj=plugins)
    assert isinstance(result.exception, DegradeError) and "--crop" in str(result.exception)
    result = runner.invoke(
        make_cli(), [*base, "--crop", "--snr", "20:40", "--seed", "4", "--map", "teff=teff"], obj=plugins
    )
    assert result.exit_code == 0, result.output
    assert "6 of 6 spectra, R 20000 → 5000" in result.output and "S/N uniform:20,40 (seed 4)" in result.output
    assert "out.zarr.descriptor.yaml" in result.output
    result = runner.invoke(make_cli(), [*base, "--crop", "--snr", "fast"], obj=plugins)
    assert isinstance(result.exception, SimulationError) and "allowed: a number" in str(result.exception)
    result = runner.invoke(make_cli(), [*base, "--map", "teff"], obj=plugins)
    assert result.exit_code == 2 and "allowed: TARGET=STORED" in result.output
    assert "degrade" in make_cli().commands

"""``starlabel simulate`` over a toy reader, toy auxiliary providers and a one-line toy synthesizer."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
from astropy.table import Table
from click.testing import CliRunner

from starlabel import hookimpl
from starlabel.cli_simulate import simulate_command
from starlabel.components import AuxiliaryProvider, ComponentOptions, InstrumentReader, Synthesizer
from starlabel.containers import AuxTable, NativeGrid, Population, Spectra
from starlabel.descriptor import ResolvedDescriptor, load_descriptor
from starlabel.errors import SimulationError
from starlabel.plugins import Plugins, load_plugins
from starlabel.population import continuum_flux, mock_population
from starlabel.simulate import simulate
from starlabel.simulate_descriptor import spectra_patterns
from starlabel.snr import parse_snr
from starlabel.wavelengths import C_KMS, vacuum_to_air

LINE_NM = 510.0
"""Vacuum rest wavelength of the toy synthesizer's only line."""


# ------------------------------------------------------------------------------------------- toy components
class SimReaderOptions(ComponentOptions):
    normalised: bool = True
    observed_frame: bool = False
    medium: Literal["vacuum", "air"] = "vacuum"
    flux_unit: str = ""
    text_ids: bool = False


class SimReader(InstrumentReader):
    """Writes and reads sim_NNNNN.npz files (one per write call)."""

    name = "sim_reader"
    Options = SimReaderOptions

    @classmethod
    def identify(cls, path: Path) -> bool:
        return path.name.startswith("sim_") and path.suffix == ".npz"

    def simulation_grid(self) -> NativeGrid:
        o = self.options
        wave = 5000.0 + 0.5 * np.arange(401)  # Å: 500-520 nm in 0.05 nm steps
        return NativeGrid(wave, "Angstrom", o.medium, o.normalised, o.observed_frame, o.flux_unit)

    def simulation_ids(self, population: Population) -> np.ndarray:
        if self.options.text_ids:
            return np.array([f"S{i:020d}" for i in population.source_id])
        return population.source_id

    def write(self, spectra: Spectra, folder: Path) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"sim_{len(list(folder.glob('sim_*.npz'))):05d}.npz"
        np.savez(
            path,
            ids=spectra.source_id,
            wave=spectra.wavelength,
            flux=spectra.flux,
            ivar=spectra.ivar,
            vrad=spectra.meta["vrad"],
            snr=spectra.meta["snr"],
            medium=np.array(spectra.medium),
            unit=np.array(spectra.unit),
        )
        return [path]

    def read(self, path: Path) -> Spectra:
        data = np.load(path, allow_pickle=False)
        return Spectra(
            data["ids"],
            data["wave"],
            data["flux"],
            data["ivar"],
            data["ivar"] == 0,
            unit=str(data["unit"]),
            medium=str(data["medium"]),  # type: ignore[arg-type]
            meta={"vrad": data["vrad"], "snr": data["snr"]},
        )


class SimPhotOptions(ComponentOptions):
    id_column: str = "source_id"


class SimPhot(AuxiliaryProvider):
    """V and K magnitudes from a FITS table."""

    name = "sim_phot"
    Options = SimPhotOptions

    def columns(self) -> list[str]:
        return ["v", "k"]

    def load(self, paths: Sequence[Path]) -> AuxTable:
        table = Table.read(paths[0])
        values = np.column_stack([np.asarray(table["v"], float), np.asarray(table["k"], float)])
        ids = np.asarray(table[self.options.id_column])
        return AuxTable(ids, self.columns(), values, ~np.isfinite(values))

    def simulate(self, population: Population, ids: np.ndarray) -> dict[str, np.ndarray]:
        return {self.options.id_column: ids, "v": population.magnitudes["V"], "k": population.magnitudes["K"]}


class SimBroken(SimPhot):
    """Cannot simulate (the base class says so)."""

    name = "sim_broken"

    def columns(self) -> list[str]:
        return ["x"]

    simulate = AuxiliaryProvider.simulate  # type: ignore[assignment]


class OneLine(Synthesizer):
    """One Gaussian line at 510 nm (vacuum) whose depth grows with [M/H]."""

    name = "one_line"

    def synthesize(self, labels: Mapping[str, np.ndarray], wavelength: np.ndarray, resolution: float) -> np.ndarray:
        unknown = set(labels) - set(self.label_names())
        if unknown:
            raise SimulationError(f"unknown labels {sorted(unknown)}; known: {self.label_names()}")
        depth = (0.5 + 0.2 * np.clip(labels["m_h"], -1.5, 0.5))[:, None]
        sigma = LINE_NM / resolution / 2.3548
        wave = np.broadcast_to(wavelength, (len(depth), np.shape(wavelength)[-1]))
        return 1.0 - depth * np.exp(-0.5 * ((wave - LINE_NM) / sigma) ** 2)


class SimPlugin:
    @hookimpl
    def register_instrument_readers(self) -> list[type]:
        return [SimReader]

    @hookimpl
    def register_auxiliary_providers(self) -> list[type]:
        return [SimPhot, SimBroken]

    @hookimpl
    def register_synthesizers(self) -> list[type]:
        return [OneLine]


@pytest.fixture(scope="module")
def plugins() -> Plugins:
    return load_plugins(
        builtins=("starlabel.defaults", "starlabel_tables.plugin"),
        entry_points=False,
        extra=[("sim", SimPlugin())],
        environ={},
    )


DESCRIPTOR = """\
schema_version: 1
name: sim_survey
description: a toy survey
instrument:
  reader: sim_reader
  resolution: 2000
  options: {{{reader_options}}}
grid: {{start: 501.0, stop: 519.0, step: 0.05, unit: nm, medium: vacuum}}
{rest_frame}auxiliary:
  - provider: sim_phot
    name: phot
    options: {{id_column: survey_id}}
{extra_aux}labels:
  source: table_labels
  columns: [{labels}]
  options:
    id_column: ID
    columns: {{{label_columns}}}
  cuts:
    ranges: {{snr: [50, null]}}
data: {{release: dr1, spectra: "spec/*.fits", labels: "allstar.fits"}}
"""


def write_descriptor(
    folder: Path,
    *,
    labels: Sequence[str] = ("teff", "logg", "feh", "alpha_fe"),
    reader_options: str = "",
    rest_frame: str = "",
    extra_aux: str = "",
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "sim_survey.yaml"
    path.write_text(
        DESCRIPTOR.format(
            reader_options=reader_options,
            rest_frame=rest_frame,
            extra_aux=extra_aux,
            labels=", ".join(labels),
            label_columns=", ".join(f"{name}: {name.upper()}" for name in labels),
        )
    )
    return path


def run(
    path: Path, plugins: Plugins, out: Path, n: int = 40, snr: str = "50", **kwargs: object
) -> tuple[ResolvedDescriptor, object]:
    resolved = load_descriptor(path, plugins)
    options = {"seed": 7, "synthesizer": "one_line", "batch_size": 16} | kwargs
    return resolved, simulate(resolved, n, parse_snr(snr), out, plugins=plugins, **options)  # type: ignore[arg-type]


def read_all(out: Path, reader: SimReader) -> Spectra:
    parts = [reader.read(p) for p in sorted((out / "spectra").glob("sim_*.npz"))]
    return Spectra(
        np.concatenate([p.source_id for p in parts]),
        parts[0].wavelength,
        np.concatenate([p.flux for p in parts]),
        np.concatenate([p.ivar for p in parts]),
        np.concatenate([p.mask for p in parts]),
        parts[0].unit,
        parts[0].medium,
        {k: np.concatenate([p.meta[k] for p in parts]) for k in parts[0].meta},
    )


# ------------------------------------------------------------------------------------------------- tests
def test_files_truth_and_noise(tmp_path: Path, plugins: Plugins) -> None:
    out = tmp_path / "out"
    _, report = run(write_descriptor(tmp_path), plugins, out, n=40, snr="50")
    assert sorted(p.name for p in out.iterdir()) == [
        "auxiliary.fits",
        "sim_survey.yaml",
        "simulate.json",
        "spectra",
        "truth.fits",
    ]
    assert len(list((out / "spectra").iterdir())) == 3  # 40 stars in batches of 16
    population = mock_population(40, 7)
    truth = Table.read(out / "truth.fits")
    np.testing.assert_array_equal(truth["source_id"], population.source_id)
    np.testing.assert_array_equal(truth["population_id"], population.source_id)
    np.testing.assert_array_equal(truth["teff"], population.labels["teff"])
    np.testing.assert_array_equal(truth["feh"], population.labels["m_h"])
    np.testing.assert_array_equal(truth["alpha_fe"], population.labels["alpha_m"])
    np.testing.assert_array_equal(truth["teff_err"], 50.0)
    np.testing.assert_array_equal(truth["alpha_fe_err"], 0.02)
    np.testing.assert_array_equal(truth["mag_V"], population.magnitudes["V"])
    assert set(truth["component"]) <= {"thin", "thick", "halo"}
    for name in ("snr", "vrad", "ra", "dec", "parallax", "distance", "mass", "radius"):
        assert name in truth.colnames
    assert truth["vrad"].unit == "km / s"

    spectra = read_all(out, SimReader())
    np.testing.assert_array_equal(spectra.source_id, population.source_id)
    continuum = np.abs(spectra.wavelength / 10 - LINE_NM) > 1.0
    measured = np.median(spectra.flux[:, continuum] * np.sqrt(spectra.ivar[:, continuum]))
    assert measured == pytest.approx(50.0, rel=0.1)
    scatter = np.std(spectra.flux[:, continuum] - 1.0)
    assert scatter == pytest.approx(1 / 50.0, rel=0.1)
    np.testing.assert_array_equal(spectra.meta["snr"], 50.0)
    np.testing.assert_allclose(spectra.meta["vrad"], population.vrad)
    assert not spectra.mask.any()

    aux = Table.read(out / "auxiliary.fits")
    np.testing.assert_array_equal(aux["survey_id"], population.source_id)
    np.testing.assert_array_equal(aux["v"], population.magnitudes["V"])

    record = json.loads((out / "simulate.json").read_text())
    assert (record["seed"], record["n"], record["snr"], record["synthesizer"]) == (7, 40, "50", "one_line")
    assert record["versions"]["starlabel"] and "plugin:starlabel_tables" in record["versions"]
    assert record["files"]["spectra"] == {
        "count": 3,
        "patterns": ["spectra/sim_*.npz"],
        "first": ["spectra/sim_00000.npz", "spectra/sim_00001.npz", "spectra/sim_00002.npz"],
    }
    assert (record["files"]["truth"], record["files"]["descriptor"]) == ("truth.fits", "sim_survey.yaml")
    assert report.rows == 40 and report.patterns == ["spectra/sim_*.npz"]  # type: ignore[attr-defined]


def test_results_do_not_depend_on_batch_size(tmp_path: Path, plugins: Plugins) -> None:
    path = write_descriptor(tmp_path)
    run(path, plugins, tmp_path / "a", n=30, snr="20:40", batch_size=7)
    run(path, plugins, tmp_path / "b", n=30, snr="20:40", batch_size=30)
    a, b = read_all(tmp_path / "a", SimReader()), read_all(tmp_path / "b", SimReader())
    np.testing.assert_array_equal(a.flux, b.flux)
    np.testing.assert_array_equal(a.meta["snr"], b.meta["snr"])
    assert 20 <= a.meta["snr"].min() and a.meta["snr"].max() <= 40 and np.ptp(a.meta["snr"]) > 5


def test_derived_descriptor_loads_and_maps_labels_and_aux(tmp_path: Path, plugins: Plugins) -> None:
    out = tmp_path / "out"
    run(write_descriptor(tmp_path), plugins, out, n=20)
    derived = load_descriptor(out / "sim_survey.yaml", plugins)
    model = derived.model
    assert model.name == "sim_survey_simulated"
    assert model.labels is not None and model.labels.source == "table_labels" and model.labels.cuts == {}
    assert model.labels.columns == ["teff", "logg", "feh", "alpha_fe"]
    opts = derived.options["labels"]
    assert opts.id_column == "source_id"  # type: ignore[attr-defined]
    assert opts.columns == {n: n for n in model.labels.columns}  # type: ignore[attr-defined]
    assert opts.errors["feh"] == "feh_err"  # type: ignore[attr-defined]
    assert opts.units == {"teff": "K", "logg": "dex", "feh": "dex", "alpha_fe": "dex"}  # type: ignore[attr-defined]
    assert model.data.root == "." and model.data.release is None
    assert model.data.spectra == ["spectra/sim_*.npz"] and model.data.labels == "truth.fits"
    assert model.data.auxiliary == {"phot": "auxiliary.fits"}
    assert [e.key for e in model.auxiliary] == ["phot"]
    assert derived.options["auxiliary[0]"].id_column == "survey_id"  # type: ignore[attr-defined]
    assert model.instrument == load_descriptor(tmp_path / "sim_survey.yaml", plugins).model.instrument

    # the label source reads the truth table back as labels with errors
    source = plugins.label_sources.get("table_labels")(derived.options["labels"])
    table = source.load(out / "truth.fits", model.labels.columns, derived.options["labels.cuts"])
    population = mock_population(20, 7)
    np.testing.assert_array_equal(table.source_id, population.source_id)
    np.testing.assert_array_equal(table.values[:, 1], population.labels["logg"])
    assert table.ok.all()


def test_ingest_reads_the_simulation(tmp_path: Path, plugins: Plugins) -> None:
    from starlabel.ingest import ingest
    from starlabel.store import Store

    out = tmp_path / "out"
    run(write_descriptor(tmp_path), plugins, out, n=24, snr="100")
    derived = load_descriptor(out / "sim_survey.yaml", plugins)
    report = ingest(derived, plugins, tmp_path / "store")  # data.root "." = the descriptor's folder
    assert (report.rows, report.labels_matched, report.aux_matched) == (24, 24, {"phot": 24})
    store = Store.open(tmp_path / "store")
    population = mock_population(24, 7)
    order = np.argsort(population.source_id)
    stored = np.asarray(store.array("source_id")[:])
    np.testing.assert_array_equal(np.sort(stored), population.source_id[order])
    teff = np.asarray(store.array("labels/teff")[:])
    np.testing.assert_allclose(teff[np.argsort(stored)], population.labels["teff"][order], rtol=1e-6)


def test_observed_frame_in_air_shifts_the_line_by_v(tmp_path: Path, plugins: Plugins) -> None:
    out = tmp_path / "out"
    options = "observed_frame: true, medium: air"
    rest = "rest_frame: {source: meta, key: vrad}\n"
    run(write_descriptor(tmp_path, reader_options=options, rest_frame=rest), plugins, out, n=25, snr="3000")
    spectra = read_all(out, SimReader())
    population = mock_population(25, 7)
    assert spectra.medium == "air" and spectra.unit == "Angstrom"
    beta = population.vrad / C_KMS
    expected = vacuum_to_air(LINE_NM * np.sqrt((1 + beta) / (1 - beta)), "nm")  # observed, in air
    wave = spectra.wavelength / 10.0
    measured = []
    for row, centre in enumerate(expected):
        window = np.abs(wave - centre) < 0.6
        depth = 1.0 - spectra.flux[row, window]
        measured.append(np.sum(depth * wave[window]) / np.sum(depth))
    np.testing.assert_allclose(measured, expected, atol=0.003)  # 0.003 nm ≈ 2 km/s
    assert np.ptp(population.vrad) > 100  # the test covers large shifts
    derived = load_descriptor(out / "sim_survey.yaml", plugins)
    assert derived.model.rest_frame is not None and derived.model.rest_frame.key == "vrad"


def test_physical_fluxes_carry_the_continuum_in_the_archive_unit(tmp_path: Path, plugins: Plugins) -> None:
    out = tmp_path / "out"
    options = "normalised: false, flux_unit: '1e-17 erg s-1 cm-2 Angstrom-1'"
    run(write_descriptor(tmp_path, reader_options=options), plugins, out, n=10, snr="10000")
    spectra = read_all(out, SimReader())
    population = mock_population(10, 7)
    continuum = continuum_flux(population, spectra.wavelength / 10.0) * 1e19  # W m-2 nm-1 → 1e-17 erg/s/cm2/Å
    far = np.abs(spectra.wavelength / 10 - LINE_NM) > 1.0
    np.testing.assert_allclose(spectra.flux[:, far], continuum[:, far], rtol=5e-4)
    snr = np.median(spectra.flux[:, far] * np.sqrt(spectra.ivar[:, far]))
    assert snr == pytest.approx(10000, rel=0.1)


def test_text_ids_and_element_labels(tmp_path: Path, plugins: Plugins) -> None:
    out = tmp_path / "out"
    path = write_descriptor(tmp_path, labels=("teff", "m_h", "mg_fe"), reader_options="text_ids: true")
    _, report = run(path, plugins, out, n=12)
    truth = Table.read(out / "truth.fits")
    assert str(truth["source_id"][0]).startswith("S") and "mg_fe" in truth.colnames
    np.testing.assert_array_equal(truth["mg_fe_err"], 0.04)
    assert "mg_fe" in report.unmodelled_labels  # type: ignore[attr-defined]
    aux = Table.read(out / "auxiliary.fits")
    assert list(aux["survey_id"]) == list(truth["source_id"])


def test_unknown_label_is_refused(tmp_path: Path, plugins: Plugins) -> None:
    out = tmp_path / "out"
    with pytest.raises(SimulationError) as caught:
        run(write_descriptor(tmp_path, labels=("teff", "vmicro")), plugins, out)
    message = str(caught.value)
    assert "labels.columns: the simulation cannot provide label(s) 'vmicro'" in message
    assert "teff, logg, m_h (also as mh, fe_h, feh, metallicity), alpha_m (also as alpha_fe)" in message
    assert not out.exists()


def test_non_empty_out_is_refused_and_overwrite_replaces(tmp_path: Path, plugins: Plugins) -> None:
    path = write_descriptor(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(SimulationError, match=r"output folder is not empty \(1 entries: notes.txt\)"):
        run(path, plugins, out)
    with pytest.raises(SimulationError, match="--overwrite replaces a previous simulation, but this folder holds none"):
        run(path, plugins, out, overwrite=True)
    (out / "notes.txt").unlink()
    run(path, plugins, out, n=10)
    with pytest.raises(SimulationError, match="pass --overwrite"):
        run(path, plugins, out, n=10)
    (out / "mine.txt").write_text("kept")
    run(path, plugins, out, n=5, overwrite=True)
    assert len(Table.read(out / "truth.fits")) == 5
    assert len(list((out / "spectra").iterdir())) == 1
    assert (out / "mine.txt").read_text() == "kept"


def test_auxiliary_that_cannot_simulate(tmp_path: Path, plugins: Plugins) -> None:
    path = write_descriptor(tmp_path, extra_aux="  - provider: sim_broken\n")
    out = tmp_path / "out"
    with pytest.raises(SimulationError) as caught:
        run(path, plugins, out)
    assert "auxiliary[1] (sim_broken, provider sim_broken): auxiliary provider 'sim_broken'" in str(caught.value)
    assert "cannot simulate its data" in str(caught.value)
    assert "--skip-auxiliary sim_broken" in str(caught.value)
    _, report = run(path, plugins, out, skip_auxiliary=["sim_broken"])
    assert list(report.skipped_auxiliary) == ["sim_broken"]  # type: ignore[attr-defined]
    derived = load_descriptor(out / "sim_survey.yaml", plugins)
    assert [e.key for e in derived.model.auxiliary] == ["phot"]
    with pytest.raises(SimulationError, match="no such auxiliary entry; entries: phot"):
        run(path, plugins, tmp_path / "other", skip_auxiliary=["nope"])


def test_explicit_grid_file_missing_is_replaced_by_the_native_grid(tmp_path: Path, plugins: Plugins) -> None:
    path = write_descriptor(tmp_path)
    text = path.read_text().replace(
        "grid: {start: 501.0, stop: 519.0, step: 0.05, unit: nm, medium: vacuum}",
        "grid: {spacing: explicit, file: raster.txt, unit: nm, medium: vacuum}",
    )
    path.write_text(text)
    out = tmp_path / "out"
    _, report = run(path, plugins, out, n=5)
    derived = load_descriptor(out / "sim_survey.yaml", plugins)
    assert derived.model.grid.file == "simulated_grid.txt"
    np.testing.assert_allclose(np.loadtxt(out / "simulated_grid.txt"), 500.0 + 0.05 * np.arange(401), rtol=1e-12)
    assert any("raster.txt" in note for note in report.notes)  # type: ignore[attr-defined]
    (tmp_path / "raster.txt").write_text("\n".join(str(505 + 0.1 * i) for i in range(50)))
    run(path, plugins, out, n=5, overwrite=True)
    assert load_descriptor(out / "sim_survey.yaml", plugins).model.grid.file == "raster.txt"
    assert (out / "raster.txt").read_text() == (tmp_path / "raster.txt").read_text()


def test_spectra_patterns(tmp_path: Path) -> None:
    files = [tmp_path / "spectra" / f"MeanSpectrum_{i:06d}-{i + 9:06d}.csv.gz" for i in (0, 10, 20)]
    files += [tmp_path / "spectra" / "sub" / "star-dr1-J0001.fits"]
    assert spectra_patterns(files, tmp_path) == ["spectra/MeanSpectrum_*.csv.gz", "spectra/sub/star-dr1-*.fits"]
    with pytest.raises(SimulationError, match="outside the output folder"):
        spectra_patterns([tmp_path.parent / "x.fits"], tmp_path)


def test_reader_without_simulation_support(tmp_path: Path) -> None:
    from toys import ToyPlugin

    manager = load_plugins(
        builtins=("starlabel.defaults", "starlabel_tables.plugin"),
        entry_points=False,
        extra=[("toy", ToyPlugin()), ("sim", SimPlugin())],
        environ={},
    )
    path = write_descriptor(tmp_path, reader_options="setup: HR10")
    path.write_text(path.read_text().replace("reader: sim_reader", "reader: toy_reader"))
    with pytest.raises(SimulationError, match="instrument reader 'toy_reader' .* cannot simulate its data"):
        run(path, manager, tmp_path / "out")


# --------------------------------------------------------------------------------------------------- CLI
def test_cli_writes_and_prints_the_ingest_command(tmp_path: Path, plugins: Plugins) -> None:
    path = write_descriptor(tmp_path)
    out = tmp_path / "sim"
    args = [str(path), "--n", "12", "--snr", "normal:40,5", "--out", str(out), "--synthesizer", "one_line", "--quiet"]
    result = CliRunner().invoke(simulate_command, args, obj=plugins)
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert f"{out}: 12 spectra in 1 file(s) (spectra/sim_*.npz)" in result.output
    assert f"next: starlabel ingest {out / 'sim_survey.yaml'} --data {out} --store {tmp_path / 'sim_store'}" in (
        result.output
    )
    record = json.loads((out / "simulate.json").read_text())
    assert record["command"].startswith(f"starlabel simulate {path} --n 12 --snr normal:40,5 --out {out} --seed 42")
    again = CliRunner().invoke(simulate_command, args, obj=plugins)
    assert again.exit_code != 0 and isinstance(again.exception, SimulationError)
    assert again.exception.exit_code == 2 and "pass --overwrite" in str(again.exception)


def test_cli_bad_snr(tmp_path: Path, plugins: Plugins) -> None:
    path = write_descriptor(tmp_path)
    args = [str(path), "--n", "5", "--snr", "gauss:3", "--out", str(tmp_path / "x")]
    result = CliRunner().invoke(simulate_command, args, obj=plugins)
    assert isinstance(result.exception, SimulationError) and result.exception.exit_code == 2
    assert "--snr 'gauss:3': not understood; allowed: a number (20), LOW:HIGH (15:25)" in str(result.exception)
    assert not (tmp_path / "x").exists()


def test_main_turns_errors_into_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from starlabel.cli import main

    with pytest.raises(SystemExit) as caught:
        main(["simulate", "nowhere.yaml", "--n", "5", "--snr", "0", "--out", str(tmp_path / "x")])
    assert caught.value.code == 2
    assert "starlabel: error: --snr '0': S/N must be > 0" in capsys.readouterr().err

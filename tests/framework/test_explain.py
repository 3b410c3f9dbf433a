"""Saliency (``starlabel explain``) of a small bundle trained where each label lives in known absorption lines.

The learning store encodes ``teff`` alone in the line at 504 nm, ``m_h`` alone in the line at 510 nm and
both in the line at 516 nm (``learning_helpers``); a trained network's gradients must find them.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from learning_helpers import make_learning_store, write_descriptor

from starlabel.bundle import load_bundle
from starlabel.cli_explain import _spread_ids, explain_command
from starlabel.components import InstrumentReader
from starlabel.data import SplitSpec, rows_in_split
from starlabel.descriptor import load_descriptor
from starlabel.explain import ExplainError, Explanation, explain, load_explanation
from starlabel.lines import LineListError, SpectralLine, read_line_list
from starlabel.plugins import Plugins, load_plugins
from starlabel.predict import make_ensemble
from starlabel.store import Store
from starlabel.train import TrainOptions, train

NETWORK = {
    "architecture": "hybrid_cnn",
    "options": {
        "conv_filters": [4, 8],
        "spectrum_features": 32,
        "aux_layers": [8],
        "head_layers": [32],
        "dropout": 0.0,
    },
}


@pytest.fixture(scope="module")
def plugins() -> Plugins:
    return load_plugins(entry_points=False)


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny networks: one torch thread is fastest, and fair to a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, plugins: Plugins) -> tuple[Path, Path]:
    """(store, bundle): a 2-member small hybrid_cnn trained on 1,200 stars for 8 epochs each."""
    folder = tmp_path_factory.mktemp("explain")
    descriptor = write_descriptor(folder, ensemble=2, epochs=8, batch_size=128, learning_rate=5e-3, network=NETWORK)
    store = make_learning_store(folder, 1200, descriptor=descriptor)
    started = time.perf_counter()
    train(load_descriptor(descriptor, plugins), plugins, store, folder / "bundle", TrainOptions(progress=False))
    seconds = time.perf_counter() - started
    assert seconds < 30, f"training the test bundle took {seconds:.1f} s"
    return store, folder / "bundle"


@pytest.fixture(scope="module")
def explained(trained: tuple[Path, Path], plugins: Plugins) -> Explanation:
    store, bundle = trained
    return explain(bundle, store, plugins)


def near(wavelength: np.ndarray, centres: tuple[float, ...], within: float = 1.5) -> np.ndarray:
    return np.any([np.abs(wavelength - c) <= within for c in centres], axis=0)


# ----------------------------------------------------------------------------------------------- physics
def test_saliency_finds_the_lines_each_label_depends_on(explained: Explanation) -> None:
    w = explained.wavelength
    m_h = w[explained.saliency["m_h"].top_pixels(5)]
    assert near(m_h, (510.0, 516.0)).all(), m_h
    assert not near(m_h, (504.0,)).any(), m_h
    teff = w[explained.saliency["teff"].top_pixels(5)]
    assert near(teff, (504.0, 516.0)).all(), teff
    assert near(teff[:1], (504.0,)).all(), teff


def test_explanation_covers_stars_members_pixels_and_aux(explained: Explanation, trained: tuple[Path, Path]) -> None:
    store = Store.open(trained[0])
    assert explained.members == 2 and explained.labels == ["teff", "m_h"]
    assert explained.source_ids == [str(i) for i in np.asarray(store.array("source_id")[:512]).tolist()]
    np.testing.assert_allclose(explained.wavelength, np.linspace(500.0, 520.0, 81))
    assert explained.unit == "nm" and explained.medium == "vacuum" and explained.aux_columns == ["phot.c1"]
    for name in explained.labels:
        s = explained.saliency[name]
        assert s.mean_grad.shape == s.mean_abs_grad.shape == s.member_std.shape == (81,)
        assert np.all(s.mean_abs_grad >= np.abs(s.mean_grad) - 1e-12) and np.any(s.member_std > 0)
        assert s.aux_grad.shape == (1,) and s.aux_abs_grad[0] > 0
        assert explained.aux_gradients(name) == {"phot.c1": s.aux_grad[0]}
    assert explained.saliency["teff"].unit == "K" and explained.saliency["m_h"].unit == "dex"


def test_gradients_are_with_respect_to_raw_flux_and_aux_in_label_units(
    trained: tuple[Path, Path], plugins: Plugins
) -> None:
    store_path, bundle_path = trained
    store = Store.open(store_path)
    batch = store.read(0, 40)
    row = int(np.flatnonzero(~batch.aux["phot"][1][:, 0])[0])  # a star with its auxiliary value
    one = batch.take(slice(row, row + 1))
    result = explain(bundle_path, store_path, plugins, ids=[str(one.source_id[0])])
    ensemble = make_ensemble(load_bundle(bundle_path, plugins))

    def labels(flux: np.ndarray, aux: np.ndarray) -> np.ndarray:
        x, a = ensemble.inputs(flux, one.mask, aux, one.aux["phot"][1])
        return ensemble.predict(x, a).mean[0]

    flux, aux = one.flux.astype(np.float64), one.aux["phot"][0].astype(np.float64)
    pixel, eps = 16, 1e-3  # 504 nm
    up, down = flux.copy(), flux.copy()
    up[0, pixel] += eps
    down[0, pixel] -= eps
    numeric = (labels(up, aux) - labels(down, aux)) / (2 * eps)
    numeric_aux = (labels(flux, aux + eps) - labels(flux, aux - eps)) / (2 * eps)
    for i, name in enumerate(result.labels):
        np.testing.assert_allclose(result.saliency[name].mean_grad[pixel], numeric[i], rtol=0.05, atol=1e-3)
        np.testing.assert_allclose(result.saliency[name].aux_grad[0], numeric_aux[i], rtol=0.05, atol=1e-3)


def test_masked_pixels_get_zero_gradient(trained: tuple[Path, Path], plugins: Plugins, tmp_path: Path) -> None:
    store_path, bundle_path = trained
    copy = tmp_path / "masked.zarr"
    shutil.copytree(store_path, copy)
    store = Store.open(copy, "r+")
    store.array("mask")[:50, 14:19] = True
    flux = np.asarray(store.array("flux")[:50])
    flux[:, 16] = np.nan  # masked and not finite
    store.array("flux")[:50] = flux
    result = explain(bundle_path, copy, plugins, max_stars=50)
    for name in result.labels:
        s = result.saliency[name]
        assert np.all(s.mean_grad[14:19] == 0) and np.all(s.mean_abs_grad[14:19] == 0)
        assert np.all(np.isfinite(s.mean_grad)) and s.mean_abs_grad[20] > 0


def test_split_takes_the_bundles_held_out_stars(trained: tuple[Path, Path], plugins: Plugins) -> None:
    store_path, bundle_path = trained
    result = explain(bundle_path, store_path, plugins, split="test", max_stars=30)
    store = Store.open(store_path)
    split = load_bundle(bundle_path, plugins).card.split
    spec = SplitSpec(int(split["seed"]), float(split["train"]), float(split["valid"]))
    ids = np.asarray(store.array("source_id")[:])[rows_in_split(store, 0, store.n_rows, "test", spec)]
    assert result.source_ids == [str(i) for i in ids[:30].tolist()] and result.split == "test"


# ------------------------------------------------------------------------------------------- saved files
def test_save_round_trips_and_marks_only_lines_on_the_grid(explained: Explanation, tmp_path: Path) -> None:
    written = explained.save(tmp_path)
    assert sorted(p.name for p in written) == [
        "saliency.json",
        "saliency.npz",
        "saliency_m_h.png",
        "saliency_teff.png",
    ]
    with np.load(tmp_path / "saliency.npz", allow_pickle=False) as data:
        np.testing.assert_array_equal(data["wavelength"], explained.wavelength)
        np.testing.assert_array_equal(data["teff.mean_abs_grad"], explained.saliency["teff"].mean_abs_grad)
        np.testing.assert_array_equal(data["m_h.aux_grad"], explained.saliency["m_h"].aux_grad)
        assert data["aux_columns"].tolist() == ["phot.c1"]
    back = load_explanation(tmp_path)
    for name in explained.labels:
        for key in ("mean_grad", "mean_abs_grad", "member_std", "aux_grad", "aux_abs_grad", "aux_member_std"):
            np.testing.assert_array_equal(getattr(back.saliency[name], key), getattr(explained.saliency[name], key))
    assert back.lines == explained.lines and back.source_ids == explained.source_ids and back.members == 2

    meta = json.loads((tmp_path / "saliency.json").read_text())
    assert meta["reader"] == "gaia_xp_sampled" and meta["stars"]["n"] == 512 and meta["members"] == 2
    assert {e["name"]: e["flux_gradient_unit"] for e in meta["labels"]} == {
        "teff": "K per unit of flux",
        "m_h": "dex per unit of flux",
    }
    notes = {line["note"]: line for line in meta["lines"]}
    assert set(notes) == {"Mg b4", "Mg b2", "Mg b1"}  # the XP list's lines inside 500-520 nm; no Hbeta, no Na D
    mg_b1 = notes["Mg b1"]
    assert (mg_b1["rest_wavelength"], mg_b1["rest_medium"]) == (5183.60, "air")
    assert mg_b1["wavelength"] == pytest.approx(518.504, abs=0.001)  # converted to the grid's nm in vacuum


# ---------------------------------------------------------------------------------------------- errors, CLI
def test_unknown_ids_are_refused_listing_known_ones(trained: tuple[Path, Path], plugins: Plugins) -> None:
    store_path, bundle_path = trained
    first = str(np.asarray(Store.open(store_path).array("source_id")[:1])[0])
    with pytest.raises(
        ExplainError, match=r"no star with source_id 42 in this store \(1200 rows\); available ids include " + first
    ):
        explain(bundle_path, store_path, plugins, ids=[first, "42"])
    with pytest.raises(ExplainError, match="source_id 'abc' is not an integer"):
        explain(bundle_path, store_path, plugins, ids=["abc"])
    with pytest.raises(ExplainError, match="either ids .* or a split"):
        explain(bundle_path, store_path, plugins, ids=[first], split="test")


def test_cli_explain(trained: tuple[Path, Path], plugins: Plugins, tmp_path: Path) -> None:
    store_path, bundle_path = trained
    ids = [str(i) for i in np.asarray(Store.open(store_path).array("source_id")[:3]).tolist()]
    out = tmp_path / "why"
    args = [str(bundle_path), "--store", str(store_path), "--ids", ids[0], f"{ids[1]},{ids[2]}", "--out", str(out)]
    result = CliRunner().invoke(explain_command, [*args, "--no-figures"], obj=plugins)
    assert result.exit_code == 0, result.output
    assert "over 3 star(s) and 2 member(s)" in result.output and "most salient at" in result.output
    assert json.loads((out / "saliency.json").read_text())["stars"]["source_ids"] == ids
    assert not list(out.glob("*.png"))

    bad = CliRunner().invoke(explain_command, [str(bundle_path), "--store", str(store_path), "--ids", "7"], obj=plugins)
    assert bad.exit_code != 0 and isinstance(bad.exception, ExplainError)
    assert "no star with source_id 7" in str(bad.exception)


def test_ids_option_takes_several_values() -> None:
    assert _spread_ids(["B", "--ids", "1", "2,3", "--store", "S"]) == [
        "B",
        "--ids",
        "1",
        "--ids",
        "2",
        "--ids",
        "3",
        "--store",
        "S",
    ]
    assert _spread_ids(["--ids=4,5", "B"]) == ["--ids", "4", "--ids", "5", "B"]
    assert _spread_ids(["B", "--ids"]) == ["B", "--ids"]


# ------------------------------------------------------------------------------------------------ line lists
def test_read_line_list() -> None:
    text = "# source: NIST ASD\n\nwavelength,unit,medium,species,note\n8542.09, Angstrom, air, Ca II, triplet\n1.5888,um,vacuum,Si I,\n"
    assert read_line_list(text, "x.csv") == [
        SpectralLine(8542.09, "Angstrom", "air", "Ca II", "triplet"),
        SpectralLine(1.5888, "um", "vacuum", "Si I", ""),
    ]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("85x2.1,Angstrom,air,Ca II,", "lines.csv: line 3: wavelength '85x2.1' is not a positive finite number"),
        ("-5,Angstrom,air,Ca II,", "lines.csv: line 3: wavelength '-5' is not a positive finite number"),
        ("8542.09,Angstrom,water,Ca II,", "lines.csv: line 3: unknown medium 'water'; allowed: air, vacuum"),
        (
            "8542.09,Angstrom,air,,",
            "lines.csv: line 3: empty species; name the atom and ion (e.g. 'Fe I') or the molecule",
        ),
        ("8542.09,Angstrom,air", "lines.csv: line 3: 3 fields, expected 5 (wavelength,unit,medium,species,note)"),
        ("8542.09,kg,air,Ca II,", "lines.csv: line 3: 'kg' is a mass unit, not a wavelength unit."),
    ],
)
def test_read_line_list_errors(row: str, message: str) -> None:
    with pytest.raises(LineListError) as error:
        read_line_list(f"# comment\nwavelength,unit,medium,species,note\n{row}\n", "lines.csv")
    assert str(error.value).startswith(message)


def test_line_list_header_and_missing_resource() -> None:
    with pytest.raises(
        LineListError,
        match=r"^lines.csv: line 1: expected the header 'wavelength,unit,medium,species,note', got 'w,u'$",
    ):
        read_line_list("w,u\n", "lines.csv")
    with pytest.raises(LineListError, match=r"^lines.csv: no header"):
        read_line_list("# only a comment\n", "lines.csv")

    class Reader(InstrumentReader):
        """A reader whose line list is not shipped."""

        name = "no_lines_here"
        line_list = "nowhere.csv"

        def read(self, path: Path):  # type: ignore[no-untyped-def]
            raise NotImplementedError

    with pytest.raises(LineListError, match=r"nowhere.csv: line list of reader 'no_lines_here' cannot be read"):
        Reader.spectral_lines()
    assert InstrumentReader.spectral_lines() == []

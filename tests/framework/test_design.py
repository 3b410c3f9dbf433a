"""``starlabel design``: coverage of a survey by a training set, and greedy targets that fill its gaps."""

from __future__ import annotations

import ast
import csv
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from starlabel.catalogue import CatalogueWriter, Column, read_catalogue
from starlabel.cli_design import design_command
from starlabel.design import NO_DATA_FLAG, DesignError, DesignOptions, design
from starlabel.plugins import load_plugins
from starlabel.store import Store, StoreBatch, StoreLayout

LABELS = {"teff": "K", "logg": "dex", "m_h": "dex", "alpha_m": "dex"}
P = 16
N_TRAIN, N_POP, N_HOLE, N_BRIGHT, N_NODATA, N_OVERLAP = 1200, 1500, 150, 100, 20, 5
HOLE_MH = -1.7  # the training set has m_h >= -1 only: every survey star below this is in the hole
BRIGHT_G = 6.5  # the training set has g >= 9 only


@dataclass
class Data:
    train: Path
    catalogue: Path
    survey_store: Path
    ids: np.ndarray  # survey ids, catalogue order
    kind: np.ndarray  # "pop", "hole", "bright", "nodata"
    labels: dict[str, np.ndarray]  # true survey labels
    overlap: np.ndarray  # survey ids that are training stars


def draw(rng: np.random.Generator, n: int, m_h: tuple[float, float] = (-1.0, 0.4), g: tuple[float, float] = (9, 15)):
    labels = {
        "teff": rng.uniform(4000, 6500, n),
        "logg": rng.uniform(1.0, 4.5, n),
        "m_h": rng.uniform(*m_h, n),
        "alpha_m": rng.uniform(-0.05, 0.35, n),
    }
    bp_rp = 0.6 + (6500 - labels["teff"]) / 2500 + rng.normal(0, 0.03, n)
    phot = np.stack([rng.uniform(*g, n), bp_rp], axis=1).astype(np.float32)
    return labels, phot


def spectra(rng: np.random.Generator, labels: dict[str, np.ndarray]) -> np.ndarray:
    pix = np.arange(P)
    metal = (0.4 + 0.25 * labels["m_h"])[:, None] * np.exp(-0.5 * ((pix - 5) / 1.5) ** 2)  # weak when metal-poor
    hot = (0.3 * labels["teff"] / 6500)[:, None] * np.exp(-0.5 * ((pix - 11) / 1.0) ** 2)
    return (1 - metal - hot + rng.normal(0, 0.005, (len(labels["teff"]), P))).astype(np.float32)


def write_store(path: Path, ids: np.ndarray, flux: np.ndarray, phot: np.ndarray, labels: dict | None) -> None:
    n = len(ids)
    layout = StoreLayout(P, "int", {"phot": ["g", "bp_rp"]}, LABELS if labels else {}, chunk_rows=256)
    store = Store.create(path, layout, descriptor={"name": "toy"}, descriptor_hash="x", grid={}, plugins={})
    mask = ~np.isfinite(flux)
    batch_labels = {}
    if labels:
        for name, (values, ok) in labels.items():
            batch_labels[name] = (values.astype(np.float32), np.full(n, 0.1, np.float32), ok)
    store.append(
        StoreBatch(
            ids,
            np.nan_to_num(flux),
            np.ones((n, P), np.float32),
            mask,
            np.full(n, 50, np.float32),
            {"phot": (phot, np.zeros((n, 2), bool))},
            batch_labels,
        )
    )
    store.set_keep(np.ones(n, bool))
    store.finish({})


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Data:
    root = tmp_path_factory.mktemp("design")
    rng = np.random.default_rng(3)
    # training set: m_h >= -1 and g >= 9; a few rows unlabelled, some alpha_m missing
    tl, tphot = draw(rng, N_TRAIN)
    tids = np.arange(N_TRAIN, dtype=np.int64) + 2 * 10**15
    ok = {name: np.ones(N_TRAIN, bool) for name in LABELS}
    ok["alpha_m"][::10] = False
    for name in LABELS:
        ok[name][::97] = False
    write_store(root / "train.zarr", tids, spectra(rng, tl), tphot, {n: (tl[n], ok[n]) for n in LABELS})

    # survey: the training population, a metal-poor tail, bright stars, and spectra without data
    parts = [
        draw(rng, N_POP),
        draw(rng, N_HOLE, m_h=(-2.5, HOLE_MH)),
        draw(rng, N_BRIGHT, g=(3.0, BRIGHT_G)),
        draw(rng, N_NODATA),
    ]
    kind = np.repeat(["pop", "hole", "bright", "nodata"], [N_POP, N_HOLE, N_BRIGHT, N_NODATA])
    labels = {n: np.concatenate([p[0][n] for p in parts]) for n in LABELS}
    phot = np.concatenate([p[1] for p in parts])
    n = len(kind)
    ids = np.arange(n, dtype=np.int64) + 10**15
    overlap = tids[1 : N_OVERLAP + 1]  # training row 0 is unlabelled (not a training star)
    ids[np.flatnonzero(kind == "hole")[:N_OVERLAP]] = overlap  # already reference stars: never targets
    flux = spectra(rng, labels)
    flux[kind == "nodata"] = np.nan
    write_store(root / "survey.zarr", ids, flux, phot, None)

    cols = [Column("source_id", "int64")]
    table: dict[str, np.ndarray] = {"source_id": ids}
    for name, unit in LABELS.items():
        pred = labels[name] + rng.normal(0, 0.01 * (100 if name == "teff" else 1), n)
        pred[kind == "nodata"] = np.nan
        table[name], table[f"{name}_err"] = pred, np.full(n, 0.05)
        cols += [Column(name, "float32", unit), Column(f"{name}_err", "float32", unit)]
    table["ood_score"] = rng.uniform(0, 1, n)
    table["flag"] = np.where(kind == "nodata", NO_DATA_FLAG, 0).astype(np.int32)
    table["snr"] = np.full(n, 40.0)
    cols += [Column("ood_score", "float32"), Column("flag", "int32"), Column("snr", "float32")]
    with CatalogueWriter(root / "pred.fits", cols, n_parts=1, fingerprint={}) as writer:
        writer.write_part(0, table)
        writer.finish()
    return Data(root / "train.zarr", root / "pred.fits", root / "survey.zarr", ids, kind, labels, overlap)


def invoke(*args: str):
    return CliRunner().invoke(design_command, [str(a) for a in args], obj=load_plugins(entry_points=False))


def kind_of(data: Data, ids: np.ndarray) -> np.ndarray:
    lookup = dict(zip(data.ids.tolist(), data.kind.tolist(), strict=True))
    return np.array([lookup[i] for i in ids.tolist()])


# ------------------------------------------------------------------------------------------------ tests
def test_first_targets_fill_the_label_hole_and_spread_out(data: Data) -> None:
    result = design(data.train, data.catalogue, DesignOptions(n_targets=30))
    assert list(result.spaces) == ["labels"]
    assert any("input space skipped" in note for note in result.report["notes"])
    space = result.spaces["labels"]
    m_h = space.survey[:, space.dims.index("m_h")]
    kinds = kind_of(data, result.survey_ids)

    top = result.target_rows[:10]
    assert (m_h[top] < HOLE_MH + 0.05).all(), m_h[top]
    assert (result.targets["distance"][:10] > 1).all() and set(result.targets["gap_space"][:10]) == {"labels"}
    z = space.standardise(space.survey[top])
    pairwise = np.sqrt(((z[:, None] - z[None]) ** 2).sum(axis=2))[np.triu_indices(10, 1)]
    assert pairwise.min() > space.threshold  # each pick covers a ball of one threshold: no two in one ball
    train_std = space.train.std(axis=0)
    raw = space.survey[top] / train_std
    assert np.sqrt(((raw[:, None] - raw[None]) ** 2).sum(axis=2))[np.triu_indices(10, 1)].min() > 0.5

    hole, populated = kinds == "hole", np.isin(kinds, ["pop", "bright"])
    assert result.uncovered[hole].mean() >= 0.95
    assert 1 - result.uncovered[populated].mean() >= 0.95
    assert "nodata" not in kinds  # flagged no_data: never used
    assert not set(result.targets["source_id"].tolist()) & set(data.overlap.tolist())
    assert len(set(result.targets["source_id"].tolist())) == 30

    grids = {tuple(g["dims"]): g for g in result.report["cells"]}
    assert set(grids) == {("teff", "logg"), ("m_h", "alpha_m")}
    cells = grids[("m_h", "alpha_m")]["cells"]
    in_hole = [c for c in cells if c["x"][1] is not None and c["x"][1] <= -1.5 and c["n_survey"]]
    assert in_hole and sum(c["n_uncovered"] for c in in_hole) / sum(c["n_survey"] for c in in_hole) >= 0.9
    inside = [c for c in cells if None not in c["x"] and c["x"][0] >= -1.0 and c["x"][1] <= 0.5]  # populated
    assert sum(c["n_survey"] for c in inside) > N_POP / 2
    assert sum(c["n_uncovered"] for c in inside) / sum(c["n_survey"] for c in inside) <= 0.05
    first = result.report["top_cells"][0]
    assert first["dims"] == ["m_h", "alpha_m"] and first["x"][1] <= -1.5 and first["fraction_uncovered"] > 0.9
    assert first["name"].startswith("m_h ") and " & alpha_m" in first["name"]
    labels_report = result.report["spaces"]["labels"]
    assert labels_report["fraction_outside_training_range"]["m_h"] == pytest.approx(hole.mean(), abs=0.01)
    assert labels_report["fraction_outside_training_range"]["teff"] < 0.01


def test_cli_writes_targets_and_coverage(data: Data, tmp_path: Path) -> None:
    out = tmp_path / "design"
    result = invoke(
        "--train", data.train, "--survey", data.catalogue, "--survey-inputs", data.survey_store,
        "--out", out, "--n-targets", 25,
    )  # fmt: skip
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "targets" in result.output and "uncovered" in result.output

    with open(out / "targets.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 25
    assert list(rows[0])[:2] == ["rank", "source_id"]
    assert [int(r["rank"]) for r in rows] == list(range(1, 26))
    ids = np.array([int(r["source_id"]) for r in rows])
    assert len(set(ids.tolist())) == 25

    columns, meta = read_catalogue(out / "targets.fits")
    assert list(columns)[:2] == ["rank", "source_id"]
    assert columns["rank"].tolist() == list(range(1, 26)) and columns["source_id"].tolist() == ids.tolist()
    assert meta["units"]["teff"] == "K" and meta["units"]["m_h"] == "dex" and meta["header"]["EXTNAME"] == "TARGETS"
    np.testing.assert_allclose(columns["m_h"], [float(r["m_h"]) for r in rows], rtol=1e-6)
    assert {"phot.g", "phot.bp_rp", "pca1", "coverage_labels", "coverage_inputs", "ood_score"} <= set(columns)

    report = json.loads((out / "coverage.json").read_text())
    assert report["spaces_used"] == ["labels", "inputs"]
    assert report["parameters"]["n_targets"] == 25 and report["parameters"]["k"] == 5
    assert report["parameters"]["inputs"] == ["phot.g", "phot.bp_rp", "pca1", "pca2", "pca3"]
    assert report["survey"]["n_no_data"] == N_NODATA and report["survey"]["n_in_training"] == N_OVERLAP
    assert report["spaces"]["inputs"]["fraction_uncovered"] > 0.05  # the bright stars and metal-poor spectra
    assert 0.05 < report["overall"]["fraction_uncovered"] < 0.25
    kinds = kind_of(data, ids[:10])
    assert set(kinds) <= {"hole", "bright"} and {"hole", "bright"} <= set(kind_of(data, ids))
    gaps = [r["gap_space"] for r in rows]
    assert any("inputs" in g for g in gaps) and any("labels" in g for g in gaps)
    assert (out / "coverage.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_store_survey_uses_input_space_only(data: Data, tmp_path: Path) -> None:
    out = tmp_path / "design"
    result = invoke("--train", data.train, "--survey", data.survey_store, "--out", out, "--n-targets", 12)
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "label space skipped" in result.output
    report = json.loads((out / "coverage.json").read_text())
    assert report["spaces_used"] == ["inputs"] and "labels" not in report["spaces"]
    assert report["parameters"]["survey_kind"] == "store"
    assert any("label space skipped" in note and "input space only" in note for note in report["notes"])
    assert [g["dims"] for g in report["cells"]] == [["phot.g", "phot.bp_rp"], ["pca1", "pca2"]]
    columns, _ = read_catalogue(out / "targets.fits")
    assert len(columns["rank"]) == 12 and "teff" not in columns and "coverage_labels" not in columns
    assert set(kind_of(data, columns["source_id"][:10])) <= {"hole", "bright"}
    assert "nodata" not in kind_of(data, columns["source_id"])  # no usable pixel: not evaluated
    assert (out / "coverage.png").is_file()


def test_unknown_label_or_input_lists_what_is_available(data: Data, tmp_path: Path) -> None:
    result = invoke("--train", data.train, "--survey", data.catalogue, "--out", tmp_path, "--labels", "teff,mh")
    assert result.exit_code != 0 and isinstance(result.exception, DesignError)
    message = str(result.exception)
    assert "'mh'" in message and "Did you mean m_h?" in message and "teff, logg, m_h, alpha_m" in message

    result = invoke("--train", data.train, "--survey", data.survey_store, "--out", tmp_path, "--inputs", "phot.gg")
    assert isinstance(result.exception, DesignError)
    assert "phot.gg" in str(result.exception) and "phot.g, phot.bp_rp, pca1, pca2, pca3" in str(result.exception)

    with pytest.raises(DesignError, match="give the survey's store as --survey-inputs"):
        design(data.train, data.catalogue, DesignOptions(inputs=["phot.g"]))
    with pytest.raises(DesignError, match="n_targets must be an integer >= 1"):
        design(data.train, data.catalogue, DesignOptions(n_targets=0))


def test_labels_and_inputs_can_be_chosen(data: Data) -> None:
    options = DesignOptions(n_targets=5, labels=["teff", "logg"], inputs=["phot"], survey_inputs=data.survey_store)
    result = design(data.train, data.catalogue, options)
    assert result.spaces["labels"].dims == ["teff", "logg"] and result.spaces["inputs"].dims == ["phot.g", "phot.bp_rp"]
    # without m_h the metal-poor tail is invisible; the bright stars are the gap
    assert set(kind_of(data, result.targets["source_id"])) == {"bright"}


def test_no_data_bit_is_the_predictions_one() -> None:
    # read starlabel.predict's FLAGS without importing it (it pulls in torch)
    source = Path(importlib.util.find_spec("starlabel.predict").origin).read_text()
    flags = next(
        node.value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", None) == "FLAGS"
    )
    assert ast.literal_eval(flags)["no_data"][0] == NO_DATA_FLAG


def test_survey_must_be_a_store_or_a_catalogue(data: Data, tmp_path: Path) -> None:
    with pytest.raises(DesignError, match="neither a store .* nor a catalogue"):
        design(data.train, tmp_path)


def test_greedy_never_picks_a_star_twice() -> None:
    from starlabel.design import _fit_space, _greedy

    rng = np.random.default_rng(1)
    survey = np.repeat(rng.normal(size=(5, 2)), 4, axis=0)  # 5 positions, 4 stars at each
    space = _fit_space("labels", ["a", "b"], [None, None], rng.normal(size=(200, 2)), survey, 5, 0.99)
    rows, scores, _ = _greedy([space], np.ones(20, bool), 20)
    assert sorted(rows.tolist()) == list(range(20))
    assert (np.diff(scores) <= 1e-6).all()  # each pick is the farthest left: scores never increase
    assert len({tuple(survey[r]) for r in rows[:5]}) == 5  # one per position before any duplicate

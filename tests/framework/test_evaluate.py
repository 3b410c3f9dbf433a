"""``starlabel evaluate``: statistics, joins, bins, calibration, errors and figures on synthetic catalogues."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from astropy.table import MaskedColumn, Table
from click.testing import CliRunner
from learning_helpers import make_learning_store

from starlabel.catalogue import CatalogueWriter, Column
from starlabel.cli_evaluate import evaluate_command
from starlabel.errors import MissingColumnError
from starlabel.evaluate import (
    EvaluationError,
    binned_stats,
    evaluate,
    match_rows,
    parse_edges,
    residual_stats,
)
from starlabel.plugins import load_plugins
from starlabel.store import Store

N = 2000
N_DROPPED = 100  # catalogue stars without a truth row
N_TEFF_NULL = 50  # truth rows whose teff is null
SNR_LEVELS = np.array([5.0, 15.0, 25.0, 40.0, 75.0, 150.0])  # one per default S/N bin
TEFF_OFFSET, TEFF_SIGMA, TEFF_TRUTH_ERR = 50.0, 80.0, 60.0  # residual sigma: 100 K
LOGG_OFFSET, LOGG_SIGMA, LOGG_TRUTH_ERR = -0.1, 0.12, 0.05  # residual sigma: 0.13 dex
UNITS = {"teff": "K", "logg": "dex", "m_h": "dex"}


def write_catalogue(path: Path, table: dict[str, np.ndarray]) -> Path:
    """A catalogue shaped like the ones `starlabel predict` writes (one part)."""
    columns = []
    for name, values in table.items():
        if name == "source_id":
            dtype = "int64" if values.dtype.kind in "iu" else f"<U{max(len(str(v)) for v in values)}"
        elif name in ("flag", "flag_boundary"):
            dtype = "int32"
        else:
            dtype = "float32"
        base = name.split("_err")[0]
        columns.append(Column(name, dtype, UNITS.get(base) if name not in ("snr", "ood_score") else None))
    with CatalogueWriter(path, columns, n_parts=1, fingerprint={"test": path.name}) as writer:
        writer.write_part(0, table)
        writer.finish()
    return path


def synthetic(seed: int = 1, err_scale: float = 1.0) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(catalogue columns, truth columns) with known offsets, noise and uncertainties."""
    rng = np.random.default_rng(seed)
    ids = rng.choice(10**9, N, replace=False).astype(np.int64) + 4 * 10**15
    teff, logg, m_h = rng.uniform(3800, 7000, N), rng.uniform(0.5, 5.0, N), rng.uniform(-1.0, 0.4, N)
    m_h_sigma = rng.uniform(0.03, 0.15, N)  # heteroscedastic, no offset, exact truth
    cat = {
        "source_id": ids,
        "teff": teff + TEFF_OFFSET + rng.normal(0, TEFF_SIGMA, N),
        "teff_err": np.full(N, TEFF_SIGMA * err_scale),
        "logg": logg + LOGG_OFFSET + rng.normal(0, LOGG_SIGMA, N),
        "logg_err": np.full(N, LOGG_SIGMA * err_scale),
        "m_h": m_h + rng.normal(0, 1, N) * m_h_sigma,
        "m_h_err": m_h_sigma * err_scale,
        "m_h_err_ensemble": m_h_sigma * err_scale,
        "ood_score": rng.uniform(0, 2, N),
        "flag_boundary": np.zeros(N, np.int32),
        "flag": np.where(rng.random(N) < 0.2, 4, 0).astype(np.int32),
        "snr": rng.choice(SNR_LEVELS, N),
        "masked_fraction": np.zeros(N),
    }
    truth = {
        "ids": ids,
        "teff": teff + rng.normal(0, TEFF_TRUTH_ERR, N),
        "teff_err": np.full(N, TEFF_TRUTH_ERR),
        "logg": logg + rng.normal(0, LOGG_TRUTH_ERR, N),
        "logg_err": np.full(N, LOGG_TRUTH_ERR),
        "m_h": m_h,
    }
    return cat, truth


def write_truth_csv(path: Path, truth: dict[str, np.ndarray], names: dict[str, str], id_name: str) -> Path:
    """The truth as CSV, without the first N_DROPPED stars and with N_TEFF_NULL null teff entries."""
    keep = slice(N_DROPPED, None)
    table = Table()
    table[id_name] = truth["ids"][keep]
    for label, column in names.items():
        values = truth[label][keep]
        mask = np.zeros(len(values), bool)
        if label == "teff":
            mask[:N_TEFF_NULL] = True
        table[column] = MaskedColumn(values, mask=mask)
        if f"{label}_err" in truth:
            table[f"{column}_err"] = truth[f"{label}_err"][keep]
    table.write(path, format="ascii.csv")
    return path


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    folder = tmp_path_factory.mktemp("evaluate")
    cat, truth = synthetic()
    names = {"teff": "T_ref", "logg": "G_ref", "m_h": "FEH_ref"}
    return {
        "folder": folder,
        "cat": cat,
        "truth": truth,
        "catalogue": write_catalogue(folder / "pred.fits", cat),
        "csv": write_truth_csv(folder / "truth.csv", truth, names, "SOURCE"),
        "mapping": {"teff": "T_ref", "logg": "G_ref", "m_h": "FEH_ref"},
    }


@pytest.fixture(scope="module")
def result(case: dict) -> object:
    return evaluate(
        case["catalogue"], case["csv"], out=case["folder"] / "eval", id_column="SOURCE", mapping=case["mapping"],
        figures=False,
    )  # fmt: skip


def used_rows(case: dict, label: str) -> np.ndarray:
    """Catalogue rows with truth for ``label`` (the CSV drops the first N_DROPPED, nulls N_TEFF_NULL teff)."""
    use = np.zeros(N, bool)
    use[N_DROPPED:] = True
    if label == "teff":
        use[N_DROPPED : N_DROPPED + N_TEFF_NULL] = False
    return use


# ------------------------------------------------------------------------------------------- statistics
def test_residual_stats_definitions() -> None:
    d = np.array([1.0, 2.0, 3.0, 4.0, 100.0])
    s = residual_stats(d)
    assert s["n"] == 5 and s["bias"] == 3.0
    assert s["scatter"] == pytest.approx(1.4826 * 1.0)
    assert s["mean"] == pytest.approx(22.0) and s["rms"] == pytest.approx(np.sqrt(np.mean(d**2)))
    assert residual_stats(d[:4]) == {"n": 4, "bias": None, "scatter": None, "mean": None, "rms": None}


def test_binned_stats_edges_and_small_bins() -> None:
    x = np.array([1.0] * 6 + [5.0] * 3 + [np.nan])
    bins = binned_stats(np.arange(10.0), x, (0, 2, 10, np.inf))
    assert [b["n"] for b in bins] == [6, 3, 0]
    assert bins[0]["bias"] == 2.5 and bins[1]["bias"] is None and bins[1]["scatter"] is None
    assert bins[2]["edges"] == [10.0, None]  # infinity as null, valid JSON


def test_parse_edges() -> None:
    assert parse_edges("0,20,inf", "--bins-snr") == (0.0, 20.0, np.inf)
    for bad in ("20,10", "5", "a,b", "0,nan"):
        with pytest.raises(EvaluationError, match="strictly increasing"):
            parse_edges(bad, "--bins-snr")


def test_match_rows_int_and_str_ids() -> None:
    truth = np.array([30, 10, 20, 10], np.int64)
    assert match_rows(np.array([10, 20, 99, 30]), truth).tolist() == [1, 2, -1, 0]  # first occurrence wins
    assert match_rows(np.array(["b", "x"]), np.array(["a", "b"])).tolist() == [1, -1]
    assert match_rows(np.array(["20", "7"]), truth).tolist() == [2, -1]  # int ids compared as text


# ------------------------------------------------------------------------------------------ recovery
def test_recovers_offsets_and_scatter(result: object) -> None:
    labels = result.summary["labels"]
    for name, offset, sigma in (
        ("teff", TEFF_OFFSET, np.hypot(TEFF_SIGMA, TEFF_TRUTH_ERR)),
        ("logg", LOGG_OFFSET, np.hypot(LOGG_SIGMA, LOGG_TRUTH_ERR)),
    ):
        s = labels[name]
        assert abs(s["bias"] - offset) < 3 * sigma / np.sqrt(s["n"]), name
        assert s["scatter"] == pytest.approx(sigma, rel=0.1), name
        assert s["mean"] == pytest.approx(offset, abs=3 * sigma / np.sqrt(s["n"]))
        assert s["rms"] == pytest.approx(np.hypot(offset, sigma), rel=0.1)
        assert s["unit"] == UNITS[name]
    assert abs(labels["m_h"]["bias"]) < 0.01


def test_calibration_of_correct_errors(result: object) -> None:
    labels = result.summary["labels"]
    # m_h: no offset, exact truth without _err column, per-star errors
    cal = labels["m_h"]["calibration"]
    assert cal["frac_abs_z_lt_1"] == pytest.approx(0.683, abs=0.05)
    assert cal["frac_abs_z_lt_2"] == pytest.approx(0.954, abs=0.03)
    assert cal["robust_sigma_z"] == pytest.approx(1.0, abs=0.1)
    # teff/logg: the truth errors add in quadrature; the offset lowers the raw fraction, not the debiased one
    for name in ("teff", "logg"):
        cal = labels[name]["calibration"]
        assert cal["debiased"]["frac_abs_z_lt_1"] == pytest.approx(0.683, abs=0.05), name
        assert cal["frac_abs_z_lt_1"] < cal["debiased"]["frac_abs_z_lt_1"], name


def test_overstated_errors_raise_the_fraction(tmp_path: Path, case: dict) -> None:
    cat, _ = synthetic(err_scale=2.0)
    catalogue = write_catalogue(tmp_path / "pred.parquet", cat)
    summary = evaluate(catalogue, case["csv"], id_column="SOURCE", mapping=case["mapping"], figures=False).summary
    assert summary["labels"]["m_h"]["calibration"]["frac_abs_z_lt_1"] > 0.9
    assert summary["labels"]["logg"]["calibration"]["debiased"]["frac_abs_z_lt_1"] > 0.9
    assert summary["labels"]["m_h"]["calibration"]["robust_sigma_z"] == pytest.approx(0.5, abs=0.05)
    assert (tmp_path / "pred_evaluation" / "summary.json").is_file()  # default --out beside the catalogue


# ------------------------------------------------------------------------------------- counts and bins
def test_missing_truth_rows_are_excluded_and_counted(result: object) -> None:
    s = result.summary
    assert s["rows"] == {
        "catalogue": N, "truth": N - N_DROPPED, "matched": N - N_DROPPED, "unmatched": N_DROPPED,
        "selected": N, "flags_ok": False,
    }  # fmt: skip
    teff, logg = s["labels"]["teff"], s["labels"]["logg"]
    assert (teff["n"], teff["n_unmatched"], teff["n_no_truth"], teff["n_no_prediction"]) == (
        N - N_DROPPED - N_TEFF_NULL, N_DROPPED, N_TEFF_NULL, 0,
    )  # fmt: skip
    assert (logg["n"], logg["n_no_truth"]) == (N - N_DROPPED, 0)
    assert teff["truth_column"] == "T_ref"
    assert s["skipped_labels"] == {}


def test_snr_teff_logg_bins_count_the_right_stars(result: object, case: dict) -> None:
    s = result.summary
    assert s["snr_source"] == "catalogue"
    assert s["bins"]["snr"] == [0.0, 10.0, 20.0, 30.0, 50.0, 100.0, None]
    cat, truth = case["cat"], case["truth"]
    for name in ("teff", "logg", "m_h"):
        use = used_rows(case, name)
        snr_bins = s["labels"][name]["snr_bins"]
        assert [b["n"] for b in snr_bins] == [int((cat["snr"][use] == level).sum()) for level in SNR_LEVELS]
        d = (cat[name] - truth[name])[use & (cat["snr"] == 40.0)]
        assert snr_bins[3]["bias"] == pytest.approx(np.median(d), abs=1e-3 * max(1.0, abs(np.median(d))))
        teff_counts = np.histogram(truth["teff"][used_rows(case, "teff") & use], s["bins"]["teff"][:-1] + [1e9])[0]
        assert [b["n"] for b in s["labels"][name]["teff_bins"]] == teff_counts.tolist()
        logg_edges = [-1e9, *s["bins"]["logg"][1:-1], 1e9]
        logg_counts = np.histogram(truth["logg"][use], logg_edges)[0]
        assert [b["n"] for b in s["labels"][name]["logg_bins"]] == logg_counts.tolist()


def test_flag_subset(result: object, case: dict, tmp_path: Path) -> None:
    flag = case["cat"]["flag"]
    use = used_rows(case, "teff")
    assert result.summary["labels"]["teff"]["flag_zero"]["n"] == int((use & (flag == 0)).sum())
    only = evaluate(
        case["catalogue"], case["csv"], out=tmp_path, id_column="SOURCE", mapping=case["mapping"], flags_ok=True,
        figures=False,
    ).summary  # fmt: skip
    assert only["rows"]["selected"] == int((flag == 0).sum())
    assert only["labels"]["teff"]["n"] == int((use & (flag == 0)).sum())
    assert only["labels"]["teff"]["n_unmatched"] == int((flag[:N_DROPPED] == 0).sum())
    assert "flag_zero" not in only["labels"]["teff"]


# ----------------------------------------------------------------------------------------------- truth
def test_truth_from_store_with_string_ids(tmp_path: Path) -> None:
    store_path = make_learning_store(tmp_path, n=200, string_ids=True, missing=0.1)
    store = Store.open(store_path)
    ids = np.array(np.asarray(store.array("source_id")[:]).tolist())
    teff = np.asarray(store.array("labels/teff")[:], np.float64)
    m_h = np.asarray(store.array("labels/m_h")[:], np.float64)
    teff_ok = np.asarray(store.array("labels/teff_ok")[:])
    rng = np.random.default_rng(5)
    rows = np.arange(30, 200)  # the first 30 store stars are not predicted
    extra = np.array([f"other-{i}" for i in range(20)])  # predicted stars the store does not hold
    n = len(rows) + len(extra)
    cat = {
        "source_id": np.concatenate([ids[rows], extra]),
        "teff": np.concatenate([teff[rows] + 30.0 + rng.normal(0, 40, len(rows)), np.full(20, 5000.0)]),
        "teff_err": np.full(n, 40.0),
        "m_h": np.concatenate([m_h[rows], np.zeros(20)]),
        "m_h_err": np.full(n, 0.05),
        "flag": np.zeros(n, np.int32),
    }
    catalogue = write_catalogue(tmp_path / "pred.fits", cat)
    s = evaluate(catalogue, store_path, out=tmp_path / "ev", figures=False).summary
    assert s["truth_kind"] == "store" and s["snr_source"] == "truth"  # no snr column: the store's
    assert (s["rows"]["matched"], s["rows"]["unmatched"]) == (len(rows), 20)
    t = s["labels"]["teff"]
    assert t["n"] == int(teff_ok[rows].sum()) and t["n_no_truth"] == int((~teff_ok[rows]).sum())
    assert abs(t["bias"] - 30.0) < 3 * np.hypot(40, 0) / np.sqrt(t["n"])
    assert t["unit"] == "K" and s["labels"]["m_h"]["unit"] == "dex"
    assert [b["n"] for b in t["snr_bins"]][-2:] == [0, t["n"]]  # the store's S/N is 100 for every star
    assert "teff_bins" in t and "logg_bins" not in t and "logg" not in s["bins"]  # the store has no logg
    with pytest.raises(EvaluationError, match="Labels in the store: teff, m_h"):
        evaluate(catalogue, store_path, mapping={"teff": "TEFF"}, figures=False)


# -------------------------------------------------------------------------------------------------- CLI
def invoke(args: list[str]) -> object:
    return CliRunner().invoke(evaluate_command, [str(a) for a in args], obj=load_plugins(entry_points=False))


def test_cli_with_csv_map_and_figures(case: dict, tmp_path: Path) -> None:
    import matplotlib.image as mpimg

    out = tmp_path / "cli"
    maps = [x for label, column in case["mapping"].items() for x in ("--map", f"{label}={column}")]
    res = invoke([case["catalogue"], "--truth", case["csv"], "--id-column", "SOURCE", *maps, "--out", out])
    assert res.exit_code == 0, res.output
    assert f"{N - N_DROPPED} of {N} rows matched" in res.output and f"wrote {out}" in res.output
    lines = {line.split()[0]: line.split() for line in res.output.splitlines() if line.startswith("  ")}
    assert lines["teff"][1:3] == ["K", str(N - N_DROPPED - N_TEFF_NULL)]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["labels"]["logg"]["truth_column"] == "G_ref"
    # 3 panels of 4.4 x 4.0 in at 120 dpi; one-to-one panels are 5.0 in wide (colour bar of the hexbin)
    for name, size in (("one_to_one", (480, 1800)), ("residuals_snr", (480, 1584)), ("calibration", (480, 1584))):
        path = out / f"{name}.png"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        image = mpimg.imread(path)
        assert image.shape[:2] == size and image.std() > 0.01, name


def test_cli_unknown_label_in_map(case: dict) -> None:
    res = invoke([case["catalogue"], "--truth", case["csv"], "--id-column", "SOURCE", "--map", "tef=T_ref"])
    assert isinstance(res.exception, EvaluationError) and res.exception.exit_code == 2
    message = str(res.exception)
    assert "no label 'tef'" in message and "Did you mean teff?" in message
    assert "Labels in the catalogue (columns X with an X_err column): teff, logg, m_h" in message


def test_cli_missing_columns_list_the_table(case: dict) -> None:
    res = invoke([case["catalogue"], "--truth", case["csv"], "--id-column", "SOURCE", "--map", "teff=TEFF_X"])
    assert isinstance(res.exception, MissingColumnError)
    assert "no column 'TEFF_X'" in str(res.exception) and "SOURCE, T_ref, T_ref_err, G_ref" in str(res.exception)
    res = invoke([case["catalogue"], "--truth", case["csv"], "--no-figures"])  # default id column source_id
    assert isinstance(res.exception, MissingColumnError)
    assert "no column 'source_id'" in str(res.exception) and "--id-column" in str(res.exception)
    assert "Columns in the file: SOURCE, T_ref" in str(res.exception)


def test_cli_bad_options(case: dict, tmp_path: Path) -> None:
    res = invoke([case["catalogue"], "--truth", case["csv"], "--map", "teff"])
    assert res.exit_code == 2 and "label=column" in res.output
    res = invoke([case["catalogue"], "--truth", case["csv"], "--id-column", "SOURCE", "--bins-snr", "50,20"])
    assert isinstance(res.exception, EvaluationError) and "--bins-snr" in str(res.exception)
    table = tmp_path / "other.csv"
    Table({"SOURCE": case["truth"]["ids"], "x": np.zeros(N)}).write(table, format="ascii.csv")
    res = invoke([case["catalogue"], "--truth", table, "--id-column", "SOURCE", "--no-figures"])
    assert isinstance(res.exception, EvaluationError)
    assert "no truth for any catalogue label (teff, logg, m_h)" in str(res.exception)
    assert "columns in the table: SOURCE, x" in str(res.exception)


def test_binning_label_may_be_mapped_without_being_predicted(case: dict, tmp_path: Path) -> None:
    cat = {k: v for k, v in case["cat"].items() if not k.startswith("logg")}
    catalogue = write_catalogue(tmp_path / "no_logg.fits", cat)
    mapping = {"teff": "T_ref", "logg": "G_ref"}
    s = evaluate(catalogue, case["csv"], id_column="SOURCE", mapping=mapping, figures=False).summary
    assert list(s["labels"]) == ["teff"] and s["skipped_labels"] == {
        "m_h": "no truth column or store label of that name"
    }
    assert sum(b["n"] for b in s["labels"]["teff"]["logg_bins"]) == s["labels"]["teff"]["n"]
    assert s["bin_labels"] == {"teff": "teff", "logg": "logg"}

"""Evaluating a prediction catalogue against reference ("true") labels: numbers, ``summary.json``, figures.

The catalogue is one written by :func:`starlabel.predict.predict` (FITS or Parquet). Its labels are the
columns ``X`` for which a column ``X_err`` exists. The truth is either a starlabel store (its
``labels/<name>``, ``labels/<name>_err`` and ``labels/<name>_ok`` arrays, ``source_id`` and ``snr``) or a
table (FITS, CSV, ECSV, VOTable, Parquet) with an id column and one column per label, optionally with
``<column>_err`` uncertainties.

Rows are joined by source id (int64 or str; integer ids are compared as text when the other side has
string ids). A truth id that occurs more than once is taken at its first occurrence (in a store, among
the rows kept by the duplicate policy). Per label, a catalogue row is used when it has a truth row, the
truth is ok and finite, and the prediction is finite; rows are counted as ``n_unmatched``,
``n_no_truth`` and ``n_no_prediction`` otherwise.

Statistics of the residual ``d = pred − truth`` (see :data:`DEFINITIONS`): ``bias`` (median), ``scatter``
(1.4826 × median absolute deviation around the median), ``mean`` and ``rms``. They are reported (null in
JSON otherwise) where at least :data:`MIN_STARS` stars are used, overall and in bins of S/N, true Teff
and true logg; a bin holds ``lo <= x < hi``, and ``null`` edges in ``summary.json`` stand for ∓infinity.

Uncertainty calibration uses ``z = d / sqrt(err² + truth_err²)`` (a missing or non-finite truth error
counts as 0; rows with a non-finite or zero total error are left out): the fraction of ``|z| < 1``
(0.683 for calibrated Gaussian errors), of ``|z| < 2`` (0.954) and ``median(|z|) / 0.6745`` (1). The
same numbers for ``z`` computed after subtracting the label's bias are given under ``debiased``: they
tell whether the error bars are right apart from a constant offset.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from starlabel.catalogue import read_catalogue
from starlabel.errors import MissingColumnError, StarlabelError
from starlabel.join import IdIndex
from starlabel.suggest import did_you_mean

MIN_STARS = 5
"""Fewest stars for which statistics are reported (overall and per bin)."""

MAD_TO_SIGMA = 1.4826
"""1.4826 × MAD is the standard deviation of a Gaussian."""

INF = float("inf")
DEFAULT_SNR_BINS: tuple[float, ...] = (0.0, 10.0, 20.0, 30.0, 50.0, 100.0, INF)
"""Default S/N bin edges: low S/N in steps of 10, then the usual survey cuts 30, 50 and 100."""
DEFAULT_TEFF_BINS: tuple[float, ...] = (0.0, 4000.0, 4500.0, 5000.0, 5500.0, 6000.0, 6500.0, INF)
"""Default true-Teff bin edges (K): M dwarfs/cool giants below 4000 K, 500 K steps, hot stars above 6500 K."""
DEFAULT_LOGG_BINS: tuple[float, ...] = (-INF, 1.0, 2.0, 3.0, 3.5, 4.0, 4.5, INF)
"""Default true-logg bin edges (dex): upper giant branch, red clump/RGB, subgiants, dwarfs."""

DEFINITIONS = {
    "d": "pred - truth",
    "bias": "median(d)",
    "scatter": "1.4826 * median(|d - median(d)|)",
    "mean": "mean(d)",
    "rms": "sqrt(mean(d**2))",
    "z": "d / sqrt(err**2 + truth_err**2)  (debiased: (d - bias) / ...)",
    "frac_abs_z_lt_1": "fraction of |z| < 1; 0.683 for calibrated Gaussian errors",
    "frac_abs_z_lt_2": "fraction of |z| < 2; 0.954 for calibrated Gaussian errors",
    "robust_sigma_z": "median(|z|) / 0.6745; 1 for calibrated Gaussian errors",
    "bins": f"lo <= x < hi, null edge = -/+infinity; statistics null where n < {MIN_STARS}",
}


class EvaluationError(StarlabelError):
    """An evaluation cannot run as asked: bad catalogue, truth, mapping or options."""

    exit_code = 2


# -------------------------------------------------------------------------------------------------- truth
@dataclass
class Truth:
    """Reference labels, one row per truth star.

    Attributes
    ----------
    source : str
        Path of the store or table.
    kind : str
        ``"store"`` or ``"table"``.
    ids : np.ndarray
        int64 or str source ids.
    labels : dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
        Catalogue label name → (values, errors, ok) as float64, float64 (NaN when unknown), bool.
    columns : dict[str, str]
        Catalogue label name → the store label or table column it was read from.
    units : dict[str, str | None]
        Catalogue label name → unit of the truth.
    available : list[str]
        Every label of the store, or every column of the table (for error messages).
    snr : np.ndarray | None
        The store's S/N per row (None for tables).
    """

    source: str
    kind: str
    ids: np.ndarray
    labels: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
    columns: dict[str, str]
    units: dict[str, str | None]
    available: list[str]
    snr: np.ndarray | None = None


def _check_mapping_labels(
    mapping: Mapping[str, str], labels: Sequence[str], binning: Sequence[str], catalogue: str
) -> None:
    """Every mapped name must be a catalogue label or a binning label (``--teff-label``, ``--logg-label``)."""
    for label, column in mapping.items():
        if label not in labels and label not in binning:
            raise EvaluationError(
                f"--map {label}={column}: {catalogue} has no label {label!r}.{did_you_mean(label, labels)} "
                f"Labels in the catalogue (columns X with an X_err column): {', '.join(labels) or '(none)'}; "
                f"the binning labels {' and '.join(binning)} may be mapped too"
            )


def read_truth_store(path: str | Path, wanted: Sequence[str], mapping: Mapping[str, str] | None = None) -> Truth:
    """Truth labels from a starlabel store (rows dropped by its duplicate policy are left out).

    Parameters
    ----------
    path : str | Path
        Store folder.
    wanted : Sequence[str]
        Label names to read (the catalogue's labels and the binning labels); those the store lacks are
        skipped, unless named in ``mapping``.
    mapping : Mapping[str, str] | None
        Label name → store label name, where they differ.

    Raises
    ------
    EvaluationError
        A mapped store label does not exist.
    """
    from starlabel.store import Store

    store = Store.open(path)
    stored = list(store.layout.labels)
    mapping = dict(mapping or {})
    for label, name in mapping.items():
        if name not in stored:
            raise EvaluationError(
                f"--map {label}={name}: store {path} has no label {name!r}.{did_you_mean(name, stored)} "
                f"Labels in the store: {', '.join(stored) or '(none)'}"
            )
    keep = np.asarray(store.array("keep")[:], dtype=bool)
    raw_ids = np.asarray(store.array("source_id")[:])
    ids = raw_ids.astype(np.int64) if raw_ids.dtype.kind in "iu" else np.array(raw_ids.tolist(), dtype=str)
    labels: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    columns: dict[str, str] = {}
    units: dict[str, str | None] = {}
    for label in wanted:
        name = mapping.get(label, label)
        if name not in stored:
            continue
        values = np.asarray(store.array(f"labels/{name}")[:], dtype=np.float64)[keep]
        errors = np.asarray(store.array(f"labels/{name}_err")[:], dtype=np.float64)[keep]
        ok = np.asarray(store.array(f"labels/{name}_ok")[:], dtype=bool)[keep] & np.isfinite(values)
        labels[label], columns[label], units[label] = (values, errors, ok), name, store.layout.labels[name] or None
    snr = np.asarray(store.array("snr")[:], dtype=np.float64)[keep]
    return Truth(str(path), "store", ids[keep], labels, columns, units, stored, snr)


def read_truth_table(
    path: str | Path, wanted: Sequence[str], id_column: str = "source_id", mapping: Mapping[str, str] | None = None
) -> Truth:
    """Truth labels from a table file (FITS, CSV, ECSV, VOTable, Parquet).

    Parameters
    ----------
    wanted : Sequence[str]
        Label names to read; each from the column ``mapping[label]`` (which must exist) or, when not
        mapped, a column of the same name (case-insensitive) if there is one.
    id_column : str
        Column of the source ids (integers or strings; null ids are dropped).
    mapping : Mapping[str, str] | None
        Label name → column. The uncertainty is read from ``<column>_err`` when present.

    Raises
    ------
    starlabel.errors.MissingColumnError
        No id column, or no mapped column; the message lists the table's columns.
    starlabel.errors.DataFileError
        Unreadable table, float ids, non-numeric label column.
    """
    from starlabel.tables import find_column, float_column, read_table, resolve_column
    from starlabel.tables import id_column as read_ids

    table = read_table(path)
    mapping = dict(mapping or {})
    name = resolve_column(table, id_column, path, "name the id column with --id-column")
    ids, missing_id = read_ids(table, name, path)
    good = ~missing_id
    labels: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    columns: dict[str, str] = {}
    units: dict[str, str | None] = {}
    for label in wanted:
        if label in mapping:
            column = resolve_column(table, mapping[label], path, f"fix --map {label}={mapping[label]}")
        else:
            found = find_column(table.colnames, [label])
            if found is None:
                continue
            column = found
        values, missing = float_column(table, column, path)
        err_name = find_column(table.colnames, [f"{column}_err"])
        errors = float_column(table, err_name, path)[0] if err_name else np.full(len(values), np.nan)
        labels[label] = (values[good], errors[good], ~missing[good])
        columns[label] = column
        unit = table[column].unit
        units[label] = str(unit) if unit is not None else None
    return Truth(str(path), "table", ids[good], labels, columns, units, list(table.colnames))


def is_store(path: str | Path) -> bool:
    """Whether ``path`` is a store folder (a zarr group) rather than a table file."""
    return (Path(path) / "zarr.json").is_file()


# ---------------------------------------------------------------------------------------------- statistics
def _num(value: float) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def residual_stats(d: np.ndarray) -> dict[str, Any]:
    """``n``, ``bias``, ``scatter``, ``mean`` and ``rms`` of residuals ``d`` (stats null when n < MIN_STARS)."""
    d = np.asarray(d, dtype=np.float64)
    out: dict[str, Any] = {"n": int(d.size), "bias": None, "scatter": None, "mean": None, "rms": None}
    if d.size >= MIN_STARS:
        median = float(np.median(d))
        out.update(
            bias=median,
            scatter=_num(MAD_TO_SIGMA * np.median(np.abs(d - median))),
            mean=_num(d.mean()),
            rms=_num(np.sqrt(np.mean(d**2))),
        )
    return out


def calibration_stats(z: np.ndarray) -> dict[str, Any]:
    """``n``, ``frac_abs_z_lt_1``, ``frac_abs_z_lt_2`` and ``robust_sigma_z`` of normalised residuals ``z``."""
    a = np.abs(np.asarray(z, dtype=np.float64))
    out: dict[str, Any] = {"n": int(a.size), "frac_abs_z_lt_1": None, "frac_abs_z_lt_2": None, "robust_sigma_z": None}
    if a.size >= MIN_STARS:
        out.update(
            frac_abs_z_lt_1=float(np.mean(a < 1)),
            frac_abs_z_lt_2=float(np.mean(a < 2)),
            robust_sigma_z=_num(np.median(a) / 0.6745),
        )
    return out


def binned_stats(d: np.ndarray, x: np.ndarray, edges: Sequence[float]) -> list[dict[str, Any]]:
    """:func:`residual_stats` of ``d`` (without mean and rms) in bins ``edges[i] <= x < edges[i+1]``."""
    out = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        stats = residual_stats(d[(x >= lo) & (x < hi)])
        out.append({"edges": [_num(lo), _num(hi)], "n": stats["n"], "bias": stats["bias"], "scatter": stats["scatter"]})
    return out


def parse_edges(text: str | Sequence[float], what: str) -> tuple[float, ...]:
    """Bin edges from ``"0,20,50,inf"`` (or a sequence): at least two, strictly increasing, not NaN.

    Raises
    ------
    EvaluationError
        Naming the option ``what`` and what is allowed.
    """
    try:
        edges = tuple(float(v) for v in (text.split(",") if isinstance(text, str) else text))
    except ValueError:
        edges = ()
    if len(edges) < 2 or any(np.isnan(edges)) or any(b <= a for a, b in zip(edges[:-1], edges[1:], strict=True)):
        raise EvaluationError(
            f"{what} {text!r}: give at least two strictly increasing bin edges separated by commas, "
            f"e.g. 0,20,50,100,inf ('inf' and '-inf' allowed)"
        )
    return edges


# ------------------------------------------------------------------------------------------------- matching
@dataclass
class LabelData:
    """The used rows of one label: predictions, truths, errors and binning values (all float64)."""

    name: str
    unit: str | None
    pred: np.ndarray
    truth: np.ndarray
    err: np.ndarray
    truth_err: np.ndarray
    snr: np.ndarray | None = None
    bins: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def residual(self) -> np.ndarray:
        """``pred − truth``."""
        return self.pred - self.truth

    def z(self, offset: float = 0.0) -> np.ndarray:
        """``(pred − truth − offset) / sqrt(err² + truth_err²)`` where the total error is finite and > 0."""
        sigma = np.sqrt(self.err**2 + np.where(np.isfinite(self.truth_err), self.truth_err, 0.0) ** 2)
        good = np.isfinite(sigma) & (sigma > 0)
        return (self.residual[good] - offset) / sigma[good]


def match_rows(catalogue_ids: np.ndarray, truth_ids: np.ndarray) -> np.ndarray:
    """Row of each catalogue id in the truth (first occurrence), or -1; sort + searchsorted, no loops."""
    if (catalogue_ids.dtype.kind in "UO") != (truth_ids.dtype.kind in "UO"):  # int ids compared as text
        catalogue_ids, truth_ids = catalogue_ids.astype(str), truth_ids.astype(str)
    return IdIndex(truth_ids).lookup(catalogue_ids)


def catalogue_labels(columns: Mapping[str, np.ndarray]) -> list[str]:
    """The catalogue's labels: columns ``X`` with an ``X_err`` column, in file order."""
    return [name for name in columns if f"{name}_err" in columns]


# ---------------------------------------------------------------------------------------------- evaluation
@dataclass
class Evaluation:
    """Result of :func:`evaluate`.

    Attributes
    ----------
    summary : dict[str, Any]
        What ``summary.json`` holds.
    out : Path
        The output folder.
    summary_path : Path
        ``out / "summary.json"``.
    figures : dict[str, Path]
        Figure name (``one_to_one``, ``residuals_snr``, ``calibration``) → PNG path; empty without figures.
    """

    summary: dict[str, Any]
    out: Path
    summary_path: Path
    figures: dict[str, Path] = field(default_factory=dict)


def default_out(catalogue: str | Path) -> Path:
    """``<catalogue stem>_evaluation`` beside the catalogue."""
    path = Path(catalogue)
    return path.with_name(f"{path.stem}_evaluation")


def evaluate(
    catalogue: str | Path,
    truth: str | Path,
    *,
    out: str | Path | None = None,
    id_column: str = "source_id",
    mapping: Mapping[str, str] | None = None,
    bins_snr: str | Sequence[float] = DEFAULT_SNR_BINS,
    bins_teff: str | Sequence[float] = DEFAULT_TEFF_BINS,
    bins_logg: str | Sequence[float] = DEFAULT_LOGG_BINS,
    teff_label: str = "teff",
    logg_label: str = "logg",
    flags_ok: bool = False,
    figures: bool = True,
) -> Evaluation:
    """Compare a prediction catalogue with reference labels; write ``summary.json`` and figures into ``out``.

    Parameters
    ----------
    catalogue : str | Path
        Prediction catalogue (FITS or Parquet) written by ``starlabel predict``.
    truth : str | Path
        A store folder, or a table file (FITS, CSV, ECSV, VOTable, Parquet).
    out : str | Path | None
        Output folder (created); default ``<catalogue stem>_evaluation`` beside the catalogue.
    id_column : str
        The table's source-id column (tables only; a store's is always ``source_id``).
    mapping : Mapping[str, str] | None
        Catalogue label (or ``teff_label``/``logg_label``) → truth column (table) or store label; unmapped
        labels use the same name (case-insensitive for tables).
    bins_snr, bins_teff, bins_logg : str | Sequence[float]
        Bin edges (``"0,20,50,inf"`` or numbers) for S/N, true Teff and true logg.
    teff_label, logg_label : str
        Truth labels binned as Teff and logg; a binning is skipped when the truth lacks the label.
    flags_ok : bool
        Use only catalogue rows with ``flag == 0``. Otherwise every row is used and the overall numbers
        for the ``flag == 0`` rows are added under ``flag_zero``.
    figures : bool
        Draw ``one_to_one.png``, ``residuals_snr.png`` (when there is an S/N) and ``calibration.png``.

    Raises
    ------
    EvaluationError
        No ``source_id`` or no labels in the catalogue, an unknown label in ``mapping``, no label with
        truth, no ``flag`` column with ``flags_ok``, bad bin edges, or id column options with a store.
    starlabel.catalogue.CatalogueError, starlabel.errors.DataFileError, starlabel.store.StoreError
        Unreadable catalogue, table or store; missing table columns.
    """
    edges = {
        "snr": parse_edges(bins_snr, "--bins-snr"),
        "teff": parse_edges(bins_teff, "--bins-teff"),
        "logg": parse_edges(bins_logg, "--bins-logg"),
    }
    cat_path = Path(catalogue)
    columns, meta = read_catalogue(cat_path)
    if "source_id" not in columns:
        raise MissingColumnError(str(cat_path), "source_id", list(columns), "a prediction catalogue starts with it")
    labels = catalogue_labels(columns)
    if not labels:
        raise EvaluationError(
            f"{cat_path}: no label columns (a label X needs a column X_err); columns: {', '.join(columns)}"
        )
    mapping = dict(mapping or {})
    _check_mapping_labels(mapping, labels, (teff_label, logg_label), str(cat_path))
    wanted = list(dict.fromkeys([*labels, teff_label, logg_label]))
    if is_store(truth):
        if id_column != "source_id":
            raise EvaluationError(f"--id-column {id_column}: {truth} is a store, whose ids are always source_id")
        ref = read_truth_store(truth, wanted, mapping)
    else:
        ref = read_truth_table(truth, wanted, id_column, mapping)
    used_labels = [name for name in labels if name in ref.labels]
    if not used_labels:
        what = "labels in the store" if ref.kind == "store" else "columns in the table"
        raise EvaluationError(
            f"{truth}: no truth for any catalogue label ({', '.join(labels)}); map labels to truth columns with "
            f"--map label=column. The {what}: {', '.join(ref.available) or '(none)'}"
        )

    n_rows = len(columns["source_id"])
    selected = np.ones(n_rows, dtype=bool)
    if flags_ok:
        if "flag" not in columns:
            raise MissingColumnError(
                str(cat_path), "flag", list(columns), "--flags-ok needs the catalogue's flag column"
            )
        selected = columns["flag"] == 0
    flag_zero = (columns["flag"] == 0) if ("flag" in columns and not flags_ok) else None

    rows = match_rows(np.asarray(columns["source_id"]), ref.ids)
    matched = rows >= 0
    safe = np.where(matched, rows, 0)

    def truth_of(label: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        values, errors, ok = ref.labels[label]
        if len(values) == 0:
            empty = np.full(n_rows, np.nan)
            return empty, empty, np.zeros(n_rows, bool)
        return values[safe], errors[safe], matched & ok[safe] & np.isfinite(values[safe])

    if "snr" in columns:
        snr_all, snr_source = np.asarray(columns["snr"], np.float64), "catalogue"
    elif ref.snr is not None:
        snr_all = np.where(matched, ref.snr[safe] if len(ref.snr) else np.nan, np.nan)
        snr_source = "truth"
    else:
        snr_all, snr_source = None, None
    binners: dict[str, np.ndarray] = {}
    if snr_all is not None:
        binners["snr"] = snr_all
    for key, label in (("teff", teff_label), ("logg", logg_label)):
        if label in ref.labels:
            values, _, ok = truth_of(label)
            binners[key] = np.where(ok, values, np.nan)

    units = meta.get("units", {})
    summary_labels: dict[str, Any] = {}
    data: dict[str, LabelData] = {}
    for name in used_labels:
        t_val, t_err, t_ok = truth_of(name)
        pred = np.asarray(columns[name], np.float64)
        has_pred = np.isfinite(pred)
        use = selected & t_ok & has_pred
        label = LabelData(
            name,
            units.get(name) or ref.units.get(name),
            pred[use],
            t_val[use],
            np.asarray(columns[f"{name}_err"], np.float64)[use],
            t_err[use],
            snr_all[use] if snr_all is not None else None,
            {key: x[use] for key, x in binners.items()},
        )
        data[name] = label
        entry = _label_summary(label, edges)
        entry = {
            "unit": label.unit,
            "truth_column": ref.columns[name],
            **entry,
            "n_unmatched": int((selected & ~matched).sum()),
            "n_no_truth": int((selected & matched & ~t_ok).sum()),
            "n_no_prediction": int((selected & t_ok & ~has_pred).sum()),
        }
        if flag_zero is not None:
            sub = flag_zero[use]
            part = LabelData(name, label.unit, label.pred[sub], label.truth[sub], label.err[sub], label.truth_err[sub])
            entry["flag_zero"] = _label_summary(part, {})
        summary_labels[name] = entry

    out_dir = Path(out) if out is not None else default_out(cat_path)
    summary: dict[str, Any] = {
        "catalogue": str(cat_path),
        "truth": str(truth),
        "truth_kind": ref.kind,
        "rows": {
            "catalogue": n_rows,
            "truth": int(len(ref.ids)),
            "matched": int(matched.sum()),
            "unmatched": int((~matched).sum()),
            "selected": int(selected.sum()),
            "flags_ok": bool(flags_ok),
        },
        "snr_source": snr_source,
        "bins": {key: [_num(e) for e in edges[key]] for key in ("snr", "teff", "logg") if key in binners},
        "bin_labels": {
            "teff": teff_label if "teff" in binners else None,
            "logg": logg_label if "logg" in binners else None,
        },
        "labels": summary_labels,
        "skipped_labels": {n: "no truth column or store label of that name" for n in labels if n not in ref.labels},
        "definitions": DEFINITIONS,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    summary_path = out_dir / "summary.json"
    summary_path.write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n")
    paths: dict[str, Path] = {}
    if figures:
        from starlabel.evaluate_plots import draw_all

        paths = draw_all(
            list(data.values()), summary_labels, out_dir, {"truth": "truth store"}.get(snr_source or "", snr_source)
        )
    return Evaluation(summary, out_dir, summary_path, paths)


def _label_summary(label: LabelData, edges: Mapping[str, Sequence[float]]) -> dict[str, Any]:
    """Overall residual statistics, calibration (raw and debiased) and binned statistics of one label."""
    d = label.residual
    stats = residual_stats(d)
    calibration = calibration_stats(label.z())
    debiased = calibration_stats(label.z(stats["bias"] or 0.0))
    result: dict[str, Any] = {**stats, "calibration": {**calibration, "debiased": debiased}}
    for key, x in label.bins.items():
        if key in edges:
            result[f"{key}_bins"] = binned_stats(d, x, edges[key])
    return result

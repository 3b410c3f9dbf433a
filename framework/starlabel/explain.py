"""Saliency of a trained bundle: which flux pixels and auxiliary inputs move each predicted label.

For every ensemble member (in eval mode: dropout off), every star and every label, :func:`explain`
computes the gradient of the label, in physical units (``mean · label_std + label_mean``), with respect to

* each *raw* flux pixel fed to the network, on the store's grid: the chain rule runs through the input
  transform (mean spectrum subtracted, divided by the flux scale), so a value is "label change per unit
  of stored flux"; masked or non-finite pixels feed the network a constant and get a gradient of 0;
* each *raw* auxiliary value (through the standardisation with the training mean and std): "label
  change per unit of the column"; missing values get 0.

Per member, gradients are averaged over the stars, signed (``mean_grad``) and in absolute value
(``mean_abs_grad``); then averaged over the members, whose spread (standard deviation across members of
the per-member mean |gradient|) is ``member_std``. The known spectral lines of the store's instrument
reader (:meth:`~starlabel.components.InstrumentReader.spectral_lines`), converted to the grid's unit and
medium, are kept where they fall on the pixels fed to the network.

:meth:`Explanation.save` writes ``saliency.npz`` (arrays, no pickles), ``saliency.json`` (what was
computed, on which stars, units and lines) and one figure ``saliency_<label>.png`` per label;
:func:`load_explanation` reads the first two back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from starlabel.bundle import Bundle, check_compatible, load_bundle
from starlabel.data import SplitSpec, rows_in_split
from starlabel.errors import StarlabelError, UnknownComponentError
from starlabel.grid import WavelengthGrid
from starlabel.store import Store

if TYPE_CHECKING:
    import torch
    from matplotlib.axes import Axes

    from starlabel.plugins import Plugins

SALIENCY_FORMAT = "starlabel-saliency"
SALIENCY_VERSION = 1
ARRAYS_FILE = "saliency.npz"
META_FILE = "saliency.json"
LABEL_ARRAYS = ("mean_grad", "mean_abs_grad", "member_std", "aux_grad", "aux_abs_grad", "aux_member_std")
"""Per-label arrays of :class:`LabelSaliency`, saved as ``<label>.<name>``."""

GAP_FACTOR = 10.0
"""Fed pixels further apart than this many median steps start a new plot panel."""


class ExplainError(StarlabelError):
    """An explanation cannot be computed as asked (unknown star ids, no star, conflicting options)."""

    exit_code = 2


@dataclass
class LabelSaliency:
    """Gradients of one label, averaged over stars and members.

    Attributes
    ----------
    label, unit : str
        The label and its unit.
    mean_grad : numpy.ndarray
        (P,) mean over members of the mean over stars of d label / d flux pixel (label unit per flux unit).
    mean_abs_grad : numpy.ndarray
        (P,) the same with the absolute value of each star's gradient.
    member_std : numpy.ndarray
        (P,) standard deviation across members of their mean |gradient| (0 for one member).
    aux_grad, aux_abs_grad, aux_member_std : numpy.ndarray
        (A,) the same for each raw auxiliary column (label unit per unit of the column).
    """

    label: str
    unit: str
    mean_grad: np.ndarray
    mean_abs_grad: np.ndarray
    member_std: np.ndarray
    aux_grad: np.ndarray
    aux_abs_grad: np.ndarray
    aux_member_std: np.ndarray

    def top_pixels(self, n: int = 5) -> np.ndarray:
        """Indices (into the fed pixels) of the ``n`` largest ``mean_abs_grad``, largest first."""
        order = np.argsort(-self.mean_abs_grad, kind="stable")
        return order[: max(0, n)]


@dataclass(frozen=True)
class MarkedLine:
    """A known spectral line on the explained pixels.

    Attributes
    ----------
    species, note : str
        From the reader's line list.
    wavelength : float
        In the grid's unit and medium.
    rest_wavelength : float
        As listed, in ``rest_unit`` and ``rest_medium``.
    """

    species: str
    note: str
    wavelength: float
    rest_wavelength: float
    rest_unit: str
    rest_medium: str

    def text(self, decimals: int = 2) -> str:
        """Short text for a plot: species and wavelength in the grid's unit (``"Ca II 850.04"``)."""
        return f"{self.species} {self.wavelength:.{max(0, decimals)}f}"


@dataclass
class Explanation:
    """Saliency of every label of a bundle on a set of stars (see the module docstring).

    Attributes
    ----------
    wavelength : numpy.ndarray
        (P,) wavelengths of the grid pixels fed to the network, in network order (arm after arm).
    pixels : numpy.ndarray
        (P,) their indices on the store's grid.
    arm_pixels : tuple of int
        Pixels per arm.
    unit, medium : str
        Of ``wavelength``.
    labels : list of str
        Label names, in output order; ``saliency[label]`` holds the arrays.
    aux_columns : list of str
        Auxiliary columns (``provider.column``), in the order of the ``aux_*`` arrays.
    lines : list of MarkedLine
        Known lines of the instrument reader that fall on the fed pixels.
    reader : str or None
        The store's instrument reader, whose line list was used.
    source_ids : list of str
        Stars used, in the order they were read.
    members : int
        Ensemble members averaged.
    """

    wavelength: np.ndarray
    pixels: np.ndarray
    arm_pixels: tuple[int, ...]
    unit: str
    medium: str
    labels: list[str]
    saliency: dict[str, LabelSaliency]
    aux_columns: list[str]
    lines: list[MarkedLine]
    reader: str | None
    source_ids: list[str]
    members: int
    bundle: str = ""
    store: str = ""
    split: str | None = None
    notes: list[str] = field(default_factory=list)

    def aux_gradients(self, label: str) -> dict[str, float]:
        """Mean d ``label`` / d raw auxiliary value, by column name."""
        return {c: float(g) for c, g in zip(self.aux_columns, self.saliency[label].aux_grad, strict=True)}

    # ------------------------------------------------------------------------------------------ layout
    def segments(self) -> list[np.ndarray]:
        """Indices into the fed pixels of each contiguous stretch of the grid, each sorted by wavelength.

        A new stretch starts where grid pixels are skipped (a gap between arms) or where the wavelength
        step jumps above :data:`GAP_FACTOR` times the median step.
        """
        if self.pixels.size == 0:
            return []
        order = np.argsort(self.pixels, kind="stable")
        index = self.pixels[order]
        wave = self.wavelength[order]
        breaks = np.diff(index) > 1
        if wave.size > 2:
            step = np.diff(wave)
            breaks |= step > GAP_FACTOR * float(np.median(step))
        return np.split(order, np.flatnonzero(breaks) + 1)

    def ranges(self) -> list[tuple[float, float]]:
        """``(first, last)`` wavelength of each of :meth:`segments`."""
        return [(float(self.wavelength[s[0]]), float(self.wavelength[s[-1]])) for s in self.segments()]

    # -------------------------------------------------------------------------------------------- save
    def arrays(self) -> dict[str, np.ndarray]:
        """Everything :meth:`save` puts in ``saliency.npz``."""
        out: dict[str, np.ndarray] = {
            "wavelength": np.asarray(self.wavelength, np.float64),
            "pixels": np.asarray(self.pixels, np.int64),
            "arm_pixels": np.asarray(self.arm_pixels, np.int64),
            "aux_columns": np.asarray(self.aux_columns, dtype=str),
            "labels": np.asarray(self.labels, dtype=str),
        }
        for name in self.labels:
            s = self.saliency[name]
            for key in LABEL_ARRAYS:
                out[f"{name}.{key}"] = np.asarray(getattr(s, key), np.float64)
        return out

    def metadata(self) -> dict[str, Any]:
        """Everything :meth:`save` puts in ``saliency.json``."""
        return {
            "format": SALIENCY_FORMAT,
            "format_version": SALIENCY_VERSION,
            "bundle": self.bundle,
            "store": self.store,
            "reader": self.reader,
            "averaging": (
                "gradient of each label (physical units) with respect to each raw flux pixel and raw auxiliary "
                "value, per star with dropout off; mean (and mean absolute value) over stars per member, then "
                "mean over members; member_std: standard deviation across members of the mean |gradient|; "
                "masked pixels and missing auxiliary values count as 0"
            ),
            "labels": [
                {
                    "name": n,
                    "unit": self.saliency[n].unit,
                    "flux_gradient_unit": _per(self.saliency[n].unit, "unit of flux"),
                    "aux_gradient_unit": _per(self.saliency[n].unit, "unit of the auxiliary column"),
                    "most_salient_wavelengths": [
                        float(self.wavelength[i]) for i in self.saliency[n].top_pixels(5) if self.pixels.size
                    ],
                }
                for n in self.labels
            ],
            "wavelength": {
                "unit": self.unit,
                "medium": self.medium,
                "pixels": int(self.pixels.size),
                "arm_pixels": [int(n) for n in self.arm_pixels],
                "ranges": [list(r) for r in self.ranges()],
            },
            "aux_columns": list(self.aux_columns),
            "lines": [
                {
                    "species": line.species,
                    "note": line.note,
                    "wavelength": line.wavelength,
                    "rest_wavelength": line.rest_wavelength,
                    "rest_unit": line.rest_unit,
                    "rest_medium": line.rest_medium,
                }
                for line in self.lines
            ],
            "stars": {"n": len(self.source_ids), "split": self.split, "source_ids": list(self.source_ids)},
            "members": self.members,
            "notes": list(self.notes),
            "files": {"arrays": ARRAYS_FILE, "figures": {n: figure_name(n) for n in self.labels}},
        }

    def save(self, out_dir: str | Path, *, figures: bool = True) -> list[Path]:
        """Write ``saliency.npz``, ``saliency.json`` and (unless ``figures`` is False) one PNG per label.

        Returns
        -------
        list of pathlib.Path
            The files written.
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        np.savez(out / ARRAYS_FILE, **self.arrays())
        (out / META_FILE).write_text(json.dumps(self.metadata(), indent=1, allow_nan=False) + "\n")
        written = [out / ARRAYS_FILE, out / META_FILE]
        if figures:
            for name in self.labels:
                path = out / figure_name(name)
                plot_saliency(self, name, path)
                written.append(path)
        return written


def figure_name(label: str) -> str:
    """File name of a label's figure: ``saliency_<label>.png`` (characters unsafe in file names → ``_``)."""
    return f"saliency_{re.sub(r'[^A-Za-z0-9_.+-]', '_', label)}.png"


def _per(unit: str, what: str) -> str:
    return f"{unit} per {what}" if unit else f"per {what}"


def load_explanation(folder: str | Path) -> Explanation:
    """Read back what :meth:`Explanation.save` wrote in ``folder``.

    Raises
    ------
    ExplainError
        When a file is missing or not of this format.
    """
    folder = Path(folder)
    meta_path, arrays_path = folder / META_FILE, folder / ARRAYS_FILE
    if not meta_path.is_file() or not arrays_path.is_file():
        raise ExplainError(f"{folder}: no saliency here (needs {META_FILE} and {ARRAYS_FILE}); run `starlabel explain`")
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != SALIENCY_FORMAT:
        raise ExplainError(f"{meta_path}: not a {SALIENCY_FORMAT} file (format {meta.get('format')!r})")
    with np.load(arrays_path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    labels = [str(x) for x in arrays["labels"].tolist()]
    units = {entry["name"]: entry["unit"] for entry in meta["labels"]}
    saliency = {n: LabelSaliency(n, units.get(n, ""), *(arrays[f"{n}.{key}"] for key in LABEL_ARRAYS)) for n in labels}
    return Explanation(
        arrays["wavelength"],
        arrays["pixels"],
        tuple(int(n) for n in arrays["arm_pixels"]),
        meta["wavelength"]["unit"],
        meta["wavelength"]["medium"],
        labels,
        saliency,
        [str(x) for x in arrays["aux_columns"].tolist()],
        [MarkedLine(**line) for line in meta["lines"]],
        meta.get("reader"),
        list(meta["stars"]["source_ids"]),
        int(meta["members"]),
        meta.get("bundle", ""),
        meta.get("store", ""),
        meta["stars"].get("split"),
        list(meta.get("notes", [])),
    )


# ---------------------------------------------------------------------------------------------- compute
def explain(
    bundle_path: str | Path,
    store_path: str | Path,
    plugins: Plugins,
    *,
    ids: Sequence[str | int] | None = None,
    max_stars: int = 512,
    split: str | None = None,
    device: str = "cpu",
    batch_size: int = 256,
) -> Explanation:
    """Gradients of every label of a bundle with respect to its raw inputs, averaged over stars and members.

    Parameters
    ----------
    bundle_path, store_path : path
        A model bundle and a store its inputs fit.
    plugins : Plugins
        To build the architecture and find the store's instrument reader (for its line list).
    ids : sequence of str or int, optional
        Explain these stars (``source_id`` values); otherwise the first ``max_stars`` kept rows.
    max_stars : int
        Stars used when no ``ids`` are given.
    split : {"train", "valid", "test"}, optional
        Take the first ``max_stars`` rows of this split of the bundle's training split (not with ``ids``).
    device : str
        Torch device.
    batch_size : int
        Stars per forward/backward pass.

    Returns
    -------
    Explanation
        Per-label arrays on the fed pixels, auxiliary gradients, the stars used and the known lines that
        fall on the pixels; :meth:`Explanation.save` writes it out.

    Raises
    ------
    starlabel.bundle.BundleError
        The bundle does not fit the store.
    ExplainError
        An id that is not in the store (the message lists some that are), ``ids`` with ``split``,
        ``max_stars`` below 1, or no star to explain.
    """
    import torch

    if ids and split is not None:
        raise ExplainError("give either ids (--ids) or a split (--split), not both")
    if max_stars < 1:
        raise ExplainError(f"max_stars (--max-stars) must be at least 1, got {max_stars}")
    if split is not None and split not in ("train", "valid", "test"):
        raise ExplainError(f"unknown split {split!r}; allowed: train, valid, test")
    bundle = load_bundle(bundle_path, plugins, device)
    store = Store.open(store_path)
    check_compatible(bundle.card, store, Path(bundle_path))
    if ids:
        rows = _rows_of_ids(store, ids)
    else:
        rows = _first_rows(store, bundle, split, max_stars)
    if rows.size == 0:
        where = f"split {split!r} of " if split else ""
        raise ExplainError(f"{store.path}: no star to explain: {where}the store has no kept row")

    grid = WavelengthGrid.from_dict(store.meta["grid"])
    transform = bundle.transform
    pixels = np.asarray(transform.pixels, np.int64)
    norm = bundle.card.normalisation
    labels = bundle.labels
    n_members, n_labels, n_pix, n_aux = len(bundle.members), len(labels), pixels.size, len(transform.aux_columns)
    sums = {k: np.zeros((n_members, n_labels, n_pix)) for k in ("g", "a")}
    aux_sums = {k: np.zeros((n_members, n_labels, n_aux)) for k in ("g", "a")}
    constants = _Constants(
        torch.as_tensor(np.asarray(norm.label_std), dtype=torch.float32, device=device),
        np.asarray(norm.aux_mean, np.float64),
        np.asarray(norm.aux_std, np.float64),
        device,
    )
    source_ids: list[str] = []
    for batch in _batches(store, rows, batch_size):
        source_ids += [str(i) for i in np.asarray(batch["source_id"]).tolist()]
        fed_mask = batch["mask"][:, pixels] | ~np.isfinite(batch["flux"][:, pixels])
        missing = batch["aux_missing"]
        for k, module in enumerate(bundle.members):
            for i, (flux_grad, aux_grad) in enumerate(_gradients(module, transform, batch, constants, pixels)):
                flux_grad = np.where(fed_mask, 0.0, flux_grad)
                aux_grad = np.where(missing, 0.0, aux_grad)
                sums["g"][k, i] += flux_grad.sum(axis=0)
                sums["a"][k, i] += np.abs(flux_grad).sum(axis=0)
                aux_sums["g"][k, i] += aux_grad.sum(axis=0)
                aux_sums["a"][k, i] += np.abs(aux_grad).sum(axis=0)
    n = float(len(source_ids))
    saliency = {}
    for i, name in enumerate(labels):
        per_abs, per_aux_abs = sums["a"][:, i] / n, aux_sums["a"][:, i] / n
        saliency[name] = LabelSaliency(
            name,
            norm.label_units.get(name, ""),
            (sums["g"][:, i] / n).mean(axis=0),
            per_abs.mean(axis=0),
            per_abs.std(axis=0),
            (aux_sums["g"][:, i] / n).mean(axis=0),
            per_aux_abs.mean(axis=0),
            per_aux_abs.std(axis=0),
        )
    wavelength = np.asarray(grid.wavelength[pixels], np.float64)
    explanation = Explanation(
        wavelength,
        pixels,
        tuple(int(p) for p in transform.arm_pixels),
        grid.unit,
        grid.medium,
        labels,
        saliency,
        list(transform.aux_columns),
        [],
        None,
        source_ids,
        n_members,
        str(bundle_path),
        str(store_path),
        split,
    )
    reader, lines, notes = _known_lines(store, plugins, grid, explanation.ranges())
    explanation.reader, explanation.lines, explanation.notes = reader, lines, notes
    return explanation


@dataclass
class _Constants:
    label_std: torch.Tensor
    aux_mean: np.ndarray
    aux_std: np.ndarray
    device: str


def _gradients(
    module: torch.nn.Module, transform: Any, batch: dict[str, np.ndarray], c: _Constants, pixels: np.ndarray
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Label by label, ``(B, P)`` d label / d raw flux on the fed ``pixels`` and ``(B, A)`` d label / d raw aux.

    One member, eval mode (dropout off); labels in physical units. One forward pass, one backward pass
    per label.
    """
    import torch

    module.eval()
    flux = torch.tensor(np.asarray(batch["flux"], np.float32), device=c.device, requires_grad=True)
    mask = torch.as_tensor(np.asarray(batch["mask"], bool), device=c.device)
    raw_aux = np.asarray(batch["aux"], np.float64)
    aux = torch.tensor(raw_aux, device=c.device, requires_grad=True)
    with np.errstate(invalid="ignore"):
        finite = np.isfinite((raw_aux - c.aux_mean) / c.aux_std)
    missing = torch.as_tensor(np.asarray(batch["aux_missing"], bool) | ~finite, device=c.device)
    mean = torch.as_tensor(c.aux_mean, device=c.device)
    std = torch.as_tensor(c.aux_std, device=c.device)
    standard = torch.where(missing, torch.zeros((), dtype=aux.dtype, device=c.device), (aux - mean) / std)
    x = transform.flux(flux, mask)  # the same standardisation as training and prediction, differentiable
    a = transform.aux(standard.float(), missing)
    out, _ = module(x, a)
    out = out * c.label_std
    index = torch.as_tensor(pixels, device=c.device)
    n_labels = out.shape[1]
    for i in range(n_labels):
        gf, ga = torch.autograd.grad(out[:, i].sum(), [flux, aux], retain_graph=i < n_labels - 1, allow_unused=True)
        fed = torch.zeros(flux.shape[0], pixels.size) if gf is None else gf.index_select(1, index)
        ga = torch.zeros(tuple(aux.shape)) if ga is None else ga
        yield (
            np.nan_to_num(fed.detach().cpu().double().numpy(), nan=0.0),
            np.nan_to_num(ga.detach().cpu().double().numpy(), nan=0.0),
        )


# ------------------------------------------------------------------------------------------------ stars
def _first_rows(store: Store, bundle: Bundle, split: str | None, max_stars: int) -> np.ndarray:
    spec = SplitSpec()
    if split is not None:
        s = bundle.card.split
        spec = SplitSpec(int(s["seed"]), float(s["train"]), float(s["valid"]))
    rows: list[np.ndarray] = []
    taken = 0
    for start, stop in store.chunk_ranges():
        mine = np.flatnonzero(rows_in_split(store, start, stop, split, spec))[: max_stars - taken] + start
        rows.append(mine)
        taken += mine.size
        if taken >= max_stars:
            break
    return np.concatenate(rows) if rows else np.zeros(0, np.int64)


def _rows_of_ids(store: Store, ids: Sequence[str | int]) -> np.ndarray:
    """Rows of the given source ids (a kept row where there are several), sorted; unknown ids raise."""
    wanted = list(dict.fromkeys(str(i).strip() for i in ids))
    numeric = store.layout.id_kind != "str"
    keys: list[Any] = wanted
    if numeric:
        bad = [w for w in wanted if not re.fullmatch(r"[+-]?\d+", w)]
        if bad:
            raise ExplainError(
                f"{store.path}: source_id {bad[0]!r} is not an integer; this store's source ids are integers "
                f"(e.g. {', '.join(_example_ids(store, 3))})"
            )
        keys = [int(w) for w in wanted]
    found: dict[Any, tuple[int, bool]] = {}
    lookup = set(keys)
    for start, stop in store.chunk_ranges():
        chunk_ids = np.asarray(store.array("source_id")[start:stop]).tolist()
        keep = np.asarray(store.array("keep")[start:stop])
        for offset, value in enumerate(chunk_ids):
            key = int(value) if numeric else str(value)
            if key in lookup and (key not in found or (keep[offset] and not found[key][1])):
                found[key] = (start + offset, bool(keep[offset]))
    missing = [str(k) for k in keys if k not in found]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise ExplainError(
            f"{store.path}: no star with source_id {shown} in this store ({store.n_rows} rows); "
            f"available ids include {', '.join(_example_ids(store, 5))}"
        )
    return np.sort(np.array([found[k][0] for k in keys], dtype=np.int64))


def _example_ids(store: Store, n: int) -> list[str]:
    return [str(i) for i in np.asarray(store.array("source_id")[:n]).tolist()]


def _batches(store: Store, rows: np.ndarray, batch_size: int) -> Iterator[dict[str, np.ndarray]]:
    """Raw inputs of ``rows`` (sorted), chunk by chunk, at most ``batch_size`` stars at a time."""
    aux_names = list(store.layout.aux)
    for start, stop in store.chunk_ranges():
        local = rows[(rows >= start) & (rows < stop)] - start
        if local.size == 0:
            continue
        batch = store.read(start, stop).take(local)
        n = len(batch)
        aux = np.concatenate([batch.aux[k][0] for k in aux_names], axis=1) if aux_names else np.zeros((n, 0))
        missing = np.concatenate([batch.aux[k][1] for k in aux_names], axis=1) if aux_names else np.zeros((n, 0), bool)
        for first in range(0, n, max(1, batch_size)):
            part = slice(first, first + max(1, batch_size))
            yield {
                "source_id": batch.source_id[part],
                "flux": np.asarray(batch.flux[part], np.float32),
                "mask": np.asarray(batch.mask[part], bool),
                "aux": np.asarray(aux[part], np.float64),
                "aux_missing": np.asarray(missing[part], bool),
            }


# ------------------------------------------------------------------------------------------------ lines
def _known_lines(
    store: Store, plugins: Plugins, grid: WavelengthGrid, ranges: Sequence[tuple[float, float]]
) -> tuple[str | None, list[MarkedLine], list[str]]:
    """The store reader's known lines that fall in ``ranges`` (grid frame), and notes on what was not found."""
    reader = store.meta.get("descriptor", {}).get("instrument", {}).get("reader")
    if not reader:
        return None, [], ["the store's descriptor names no instrument reader: no spectral lines marked"]
    try:
        cls = plugins.readers.get(str(reader))
    except UnknownComponentError:
        return str(reader), [], [f"instrument reader {reader!r} is not installed: no spectral lines marked"]
    listed = cls.spectral_lines()
    if not listed:
        return str(reader), [], [f"instrument reader {reader!r} ships no line list: no spectral lines marked"]
    marked = []
    for line in listed:
        w = line.in_frame(grid.unit, grid.medium)
        if any(lo <= w <= hi for lo, hi in ranges):
            marked.append(MarkedLine(line.species, line.note, w, line.wavelength, line.unit, line.medium))
    return str(reader), sorted(marked, key=lambda m: m.wavelength), []


# ------------------------------------------------------------------------------------------------- plot
_UNIT_TEXT = {"Angstrom": "Å", "angstrom": "Å", "AA": "Å", "micron": "µm", "um": "µm"}


def plot_saliency(explanation: Explanation, label: str, path: str | Path) -> Path:
    """Figure of one label's saliency: mean |gradient| against wavelength, one panel per stretch of the grid.

    The member spread is shaded, the signed mean gradient drawn dashed, known lines marked and named
    above the panels (neighbours closer than a label's width share one name); a bar chart of the
    auxiliary gradients goes below when the network has auxiliary inputs.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    s = explanation.saliency[label]
    segments = explanation.segments()
    has_aux = len(explanation.aux_columns) > 0
    width = 11.0
    fig = Figure(figsize=(width, 6.4 if has_aux and segments else 4.6), layout="constrained")
    spans = [max(float(explanation.wavelength[g[-1]] - explanation.wavelength[g[0]]), 1e-12) for g in segments]
    columns = max(1, len(segments))
    rows = int(bool(segments)) + int(has_aux)
    grid = fig.add_gridspec(
        rows, columns, width_ratios=spans if segments else None, height_ratios=[2.2, 1.0][:rows] if rows == 2 else None
    )
    unit = _UNIT_TEXT.get(explanation.unit, explanation.unit)
    label_unit = s.unit or "label unit"
    title = f"{label}: saliency over {len(explanation.source_ids)} star(s) and {explanation.members} member(s)" + (
        f" ({explanation.reader} lines marked)" if explanation.lines else ""
    )
    fig.suptitle(title, fontsize=11)
    axes: list[Axes] = []
    for j, seg in enumerate(segments):
        ax = fig.add_subplot(grid[0, j], sharey=axes[0] if axes else None)
        axes.append(ax)
        x = explanation.wavelength[seg]
        y = s.mean_abs_grad[seg]
        if explanation.members > 1:
            spread = s.member_std[seg]
            ax.fill_between(
                x,
                np.maximum(y - spread, 0.0),
                y + spread,
                color="tab:blue",
                alpha=0.25,
                lw=0,
                label="member spread (±1σ)",
            )
        ax.plot(x, y, color="tab:blue", lw=1.2, label=f"mean |∂{label}/∂flux|")
        ax.plot(x, s.mean_grad[seg], color="0.45", lw=0.8, ls="--", label=f"mean ∂{label}/∂flux (signed)")
        ax.axhline(0.0, color="0.75", lw=0.6)
        ax.set_xlim(float(x[0]), float(x[-1]) if x.size > 1 else float(x[0]) + 1.0)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=max(3, int(8 * spans[j] / sum(spans)) + 1)))
        ax.tick_params(labelsize=8)
        if j > 0:
            ax.tick_params(labelleft=False)
        panel_inches = width * 0.88 * spans[j] / sum(spans)
        step = float(np.median(np.diff(x))) if x.size > 1 else 1.0
        decimals = int(np.clip(np.ceil(-np.log10(step)), 0, 4)) if step > 0 else 2
        inside = [m for m in explanation.lines if x[0] <= m.wavelength <= x[-1]]
        _mark_lines(ax, inside, float(x[0]), float(x[-1]), panel_inches, decimals)
    if axes:
        axes[0].set_ylabel(f"∂{label}/∂flux\n[{label_unit} per unit flux]", fontsize=9)
        middle = axes[len(axes) // 2]
        middle.set_xlabel(f"wavelength [{unit}, {explanation.medium}]", fontsize=9)
        widest = axes[int(np.argmax(spans))]
        widest.legend(fontsize=7, loc="best", framealpha=0.85)
    if has_aux:
        ax = fig.add_subplot(grid[rows - 1, :])
        names = explanation.aux_columns
        position = np.arange(len(names))
        ax.bar(
            position,
            s.aux_abs_grad,
            color="tab:orange",
            alpha=0.8,
            width=0.5,
            yerr=s.aux_member_std if explanation.members > 1 else None,
            capsize=3,
            label="mean |∂/∂aux|",
        )
        ax.plot(position, s.aux_grad, "k_", markersize=14, mew=1.5, label="mean ∂/∂aux (signed)")
        ax.axhline(0.0, color="0.6", lw=0.6)
        ax.set_xticks(position)
        ax.set_xlim(-0.75, len(names) - 0.25)
        ax.set_xticklabels(
            names, rotation=30 if len(names) > 6 else 0, ha="right" if len(names) > 6 else "center", fontsize=8
        )
        ax.set_ylabel(f"∂{label}/∂aux\n[{label_unit} per unit of the column]", fontsize=9)
        ax.set_title("auxiliary inputs", fontsize=9)
        ax.tick_params(axis="y", labelsize=8)
        ax.legend(fontsize=7, loc="best", framealpha=0.85)
    path = Path(path)
    fig.savefig(path, dpi=110)
    return path


def _mark_lines(
    ax: Axes, lines: Sequence[MarkedLine], lo: float, hi: float, panel_inches: float, decimals: int
) -> None:
    """Dotted verticals at each line; names above the panel, neighbours closer than one name's width grouped.

    ``decimals``: digits of the wavelengths in the names (about those of one pixel step).
    """
    if not lines:
        return
    transform = ax.get_xaxis_transform()
    for m in lines:
        ax.axvline(m.wavelength, color="tab:red", lw=0.7, ls=":", alpha=0.8)
    fontsize = 7.0
    min_gap = (fontsize * 1.35 / 72.0) / max(panel_inches, 0.1) * (hi - lo)
    groups: list[list[MarkedLine]] = [[lines[0]]]
    for m in lines[1:]:
        if m.wavelength - groups[-1][0].wavelength < min_gap:
            groups[-1].append(m)
        else:
            groups.append([m])
    for group in groups:
        species = list(dict.fromkeys(m.species for m in group))
        if len(group) == 1:
            text = group[0].text(decimals)
        elif len(species) == 1:
            text = f"{species[0]} ×{len(group)}"
        else:
            text = "/".join(species)
        centre = float(np.mean([m.wavelength for m in group]))
        ax.text(
            centre,
            1.01,
            text,
            transform=transform,
            rotation=90,
            ha="center",
            va="bottom",
            fontsize=fontsize,
            color="tab:red",
            clip_on=False,
        )

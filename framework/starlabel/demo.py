"""The end-to-end demo: ingest → train → predict → evaluate → explain → design → HTML report.

Every stage writes into one output folder and is skipped when its result is already there, so an
interrupted demo re-run resumes where it stopped (ingest, training and prediction also resume inside a
stage). ``echo`` receives one line per stage.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlabel.descriptor import ResolvedDescriptor
from starlabel.errors import StarlabelError
from starlabel.plugins import Plugins
from starlabel.report import Section, write_report

STAGES = 10


@dataclass
class DemoOptions:
    """Size of the demo's ensemble and what to show."""

    ensemble: int = 2
    epochs: int = 15
    explain_stars: int = 256
    design_targets: int = 100
    progress: bool = True


def _stale(store: Path, resolved: ResolvedDescriptor) -> bool:
    """True when the demo's store exists but was ingested with another descriptor (e.g. an older version)."""
    from starlabel.store import Store

    if not (store / "zarr.json").exists():
        return False
    try:
        return Store.open(store).descriptor_hash != resolved.hash()
    except (StarlabelError, KeyError, OSError, ValueError):
        return False  # not readable as a store: ingest says what is wrong with it


def run_demo(
    resolved: ResolvedDescriptor,
    plugins: Plugins,
    root: Path,
    out: Path,
    options: DemoOptions,
    echo: Callable[[str], None],
) -> Path:
    """Run every stage into ``out`` and return the report's ``index.html``."""
    from starlabel.ingest import ingest
    from starlabel.store_info import store_info

    sections: list[Section] = []
    store = out / "store.zarr"
    if _stale(store, resolved):  # everything in ``out`` derives from the store: start again
        echo(f"[3/{STAGES}] {store} was made with another version of the descriptor: redoing the demo in {out}")
        shutil.rmtree(out)
        out.mkdir(parents=True)
    if (store / "zarr.json").exists() and store_info(store)["complete"]:
        echo(f"[3/{STAGES}] store {store} already complete (use --fresh to redo it)")
    else:
        report = ingest(resolved, plugins, store, data_root=root)
        echo(
            f"[3/{STAGES}] ingested {report.rows} spectra into {store}: {report.kept} kept after duplicates "
            f"({report.duplicate_ids} ids repeated), "
            + ", ".join(f"aux/{k} matched {v}" for k, v in report.aux_matched.items())
            + f", labels matched {report.labels_matched} (all labels ok: {report.labels_complete}); "
            f"{len(report.problems)} problem(s) in {store}/ingest_report.json"
        )
    info = store_info(store)
    echo(
        f"      store: {info['rows']} rows × {info['grid']['n_pixels']} px, {info['masked_fraction']:.2%} masked, "
        + ", ".join(f"{k} ok {v['ok']}" for k, v in info["labels"].items())
    )
    sections.append(_store_section(info, resolved))
    bundle = _train(resolved, plugins, store, out, options, echo, sections)
    test = _predict(plugins, bundle, store, out / "test_predictions.fits", "test", options, echo, 5)
    sections.append(_evaluate(test, store, out, echo))
    sections.append(_explain(plugins, bundle, store, out, options, echo))
    sections.append(_design(plugins, bundle, store, out, options, echo))
    index = write_report(
        out / "report",
        f"starlabel demo: {resolved.name}",
        resolved.model.description or resolved.name,
        sections,
    )
    echo(f"[{STAGES}/{STAGES}] report: {index}")
    return index


def _store_section(info: dict[str, Any], resolved: ResolvedDescriptor) -> Section:
    grid = info["grid"]
    section = Section("Data")
    section.paragraph(
        f"{info['rows']} spectra ({info['kept']} kept after duplicates) on a {grid['n_pixels']}-pixel grid "
        f"{grid['start']:g}–{grid['stop']:g} {grid['unit']}; {info['masked_fraction']:.2%} of pixels masked. "
        f"Auxiliary inputs: {', '.join(info['aux']) or 'none'}."
    )
    section.table(
        ["label", "unit", "stars with a usable label"],
        [[k, v["unit"] or "", v["ok"]] for k, v in info["labels"].items()],
    )
    return section


def _train(
    resolved: ResolvedDescriptor,
    plugins: Plugins,
    store: Path,
    out: Path,
    options: DemoOptions,
    echo: Callable[[str], None],
    sections: list[Section],
) -> Path:
    from starlabel.bundle import read_card
    from starlabel.train import TrainOptions, train

    bundle = out / "bundle"
    if (bundle / "card.json").exists():
        echo(f"[4/{STAGES}] bundle {bundle} already trained")
    else:
        train_options = TrainOptions(
            resume=(bundle / "_work").exists(), epochs=options.epochs, ensemble=options.ensemble, progress=options.progress
        )
        report = train(resolved, plugins, store, bundle, train_options)
        echo(
            f"[4/{STAGES}] trained {len(report.members)} member(s) of {read_card(bundle).architecture.name} "
            f"in {report.seconds:.0f} s: {bundle}"
        )
    card = read_card(bundle)
    section = Section("Model")
    section.paragraph(
        f"{card.architecture.name} ensemble of {card.members} member(s), loss {card.training['loss']}, "
        f"inputs {card.input_spec.arm_pixels} pixels + {card.input_spec.n_aux} auxiliary values; "
        f"descriptor hash {card.descriptor['hash'][:12]}."
    )
    section.table(
        ["member", "epochs", "best epoch", "best validation loss", "training stars"],
        [
            [m["member"], m["epochs_run"], m["best_epoch"], m["best_valid_loss"], m["n_train"]]
            for m in card.training["members"]
        ],
    )
    sections.append(section)
    return bundle


def _predict(
    plugins: Plugins,
    bundle: Path,
    store: Path,
    catalogue: Path,
    split: str | None,
    options: DemoOptions,
    echo: Callable[[str], None],
    stage: int,
) -> Path:
    from starlabel.predict import predict

    what = f"the {split} split" if split else "every star"
    if catalogue.exists():
        echo(f"[{stage}/{STAGES}] catalogue {catalogue} already written ({what})")
        return catalogue
    report = predict(bundle, store, catalogue, plugins, split=split, progress=options.progress)
    flagged = ", ".join(f"{k} {v}" for k, v in report.flagged.items() if v)
    echo(f"[{stage}/{STAGES}] predicted {report.rows} stars ({what}) into {catalogue}; flagged: {flagged or 'none'}")
    return catalogue


def _evaluate(catalogue: Path, store: Path, out: Path, echo: Callable[[str], None]) -> Section:
    from starlabel.errors import StarlabelError
    from starlabel.evaluate import evaluate
    from starlabel.plots import plot_chemistry, plot_kiel

    result = evaluate(catalogue, store, out=out / "evaluation")
    labels = result.summary["labels"]
    echo(f"[6/{STAGES}] held-out test stars, prediction − reference (bias = median, scatter = 1.4826 × MAD):")
    rows = []
    for name, s in labels.items():
        calib = s.get("calibration") or {}
        rows.append([name, s.get("unit") or "", s["n"], s["bias"], s["scatter"], calib.get("frac_abs_z_lt_1")])
        if s["n"] and s["bias"] is not None:
            echo(f"      {name:10s} n {s['n']:6d}  bias {s['bias']:+9.4g}  scatter {s['scatter']:9.4g} {s.get('unit') or ''}")
        else:
            echo(f"      {name:10s} n {s['n']:6d}  (too few labelled test stars)")
    section = Section("Held-out test stars")
    section.paragraph(
        "Stars of the test split were never seen in training. Bias is the median of prediction − reference, "
        "scatter 1.4826 × the median absolute deviation; |z| < 1 is the fraction of stars whose residual is "
        "within the quoted uncertainty (0.683 for calibrated Gaussian errors)."
    )
    section.table(["label", "unit", "n", "bias", "scatter", "|z| < 1"], rows)
    captions = {
        "one_to_one": "Predicted against reference labels.",
        "residuals_snr": "Residuals against S/N: running median and 16–84% band.",
        "calibration": "Uncertainty calibration: z = residual / uncertainty against a unit Gaussian.",
    }
    for name, path in result.figures.items():
        section.figure(path, captions.get(name, name))
    try:
        kiel, _ = plot_kiel(catalogue, out / "evaluation" / "kiel.png")
        section.figure(kiel, "Kiel diagram of the predicted labels (test stars), coloured by metallicity.")
    except StarlabelError as error:  # a descriptor without teff/logg labels has no Kiel diagram
        section.paragraph(f"No Kiel diagram: {error}")
    try:
        chemistry, summary = plot_chemistry(catalogue, out / "evaluation" / "chemistry.png", positions=store)
        section.figure(chemistry, f"[α/M] against [M/H] in Galactocentric R–Z bins ({summary['plotted']} stars).")
    except StarlabelError as error:  # no ra, dec, parallax among the inputs
        section.paragraph(f"No R–Z chemistry map: {error}")
    return section


def _explain(
    plugins: Plugins, bundle: Path, store: Path, out: Path, options: DemoOptions, echo: Callable[[str], None]
) -> Section:
    from starlabel.explain import explain

    folder = out / "explain"
    result = explain(bundle, store, plugins, split="test", max_stars=options.explain_stars)
    paths = result.save(folder)
    echo(f"[7/{STAGES}] gradients of each label over {len(result.source_ids)} test stars: {folder}")
    section = Section("What the network looks at")
    section.paragraph(
        "Mean absolute gradient of each predicted label with respect to each input flux pixel, averaged over "
        "test stars and ensemble members (shaded: spread between members), with the instrument's known lines."
    )
    rows = []
    for name in result.labels:
        top = result.saliency[name].top_pixels(3)
        rows.append([name] + [f"{result.wavelength[i]:.1f} {result.unit}" for i in top])
    section.table(["label", "most salient", "2nd", "3rd"], rows)
    for path in paths:
        if path.suffix == ".png":
            section.figure(path, f"Saliency: {path.stem.removeprefix('saliency_')}")
    return section


def _design(
    plugins: Plugins, bundle: Path, store: Path, out: Path, options: DemoOptions, echo: Callable[[str], None]
) -> Section:
    from starlabel.design import DesignOptions, design, write_design

    survey = _predict(plugins, bundle, store, out / "all_predictions.fits", None, options, echo, 8)
    result = design(store, survey, DesignOptions(n_targets=options.design_targets))
    paths = write_design(result, out / "design")
    report = result.report
    overall = report["overall"]["fraction_uncovered"]
    echo(
        f"[9/{STAGES}] training-set design: {overall:.1%} of the survey stars lie outside the training coverage; "
        f"{report['targets']['n']} ranked targets in {paths['csv']}"
    )
    section = Section("Where the training set falls short")
    section.paragraph(
        "The survey here is every star of the library, with predicted labels; the training set is the stars "
        "with reference labels. Uncovered stars are farther from their 5th-nearest training star than 99% of "
        f"training stars are from theirs: {overall:.1%} overall. The ranked target list ({paths['csv'].name}) "
        "names the stars whose reference labels would best fill the gaps."
    )
    if report.get("notes"):
        section.paragraph("Notes: " + " ".join(report["notes"]))
    section.table(
        ["cell", "training stars", "survey stars", "uncovered", "fraction uncovered"],
        [
            [c["name"], c["n_train"], c["n_survey"], c["n_uncovered"], c["fraction_uncovered"]]
            for c in report["top_cells"]
        ],
    )
    if "png" in paths:
        section.figure(paths["png"], "Training set (shaded) against the survey; chosen targets marked.")
    (out / "design" / "summary.json").write_text(json.dumps({"fraction_uncovered": overall}, indent=1))
    return section

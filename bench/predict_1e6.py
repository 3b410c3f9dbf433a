"""Prediction at scale: ``starlabel predict`` over 10^5 and 10^6 RVS-shaped spectra, time and peak memory.

    python bench/predict_1e6.py [--n 1000000] [--also 100000] [--members 1] [--no-naive] [--workdir DIR]
                                [--keep] [--reuse] [--extra PREDICT_OPTION ...]

1. Writes stores of ``--also`` and ``--n`` spectra shaped like Gaia DR3 RVS (2401 px on 846–870 nm) with
   the 120 auxiliary values of the built-in ``gaia_rvs_dr3`` descriptor (photometry, parallax, XP
   coefficients) and its 4 labels, straight through :class:`starlabel.store.Store` with that descriptor's
   metadata (what ``starlabel ingest`` writes, without parsing archive files). Spectra are
   continuum-normalised flux with absorption lines of star-to-star varying depth (the Ca II triplet and
   weaker lines), noise of S/N 15–300, per-pixel inverse variances and masked edge pixels, in float32,
   so that compression is realistic (about 11 kB a row on disk).
2. Trains ``hybrid_cnn`` (default options, ``--members`` members) for one epoch on a 3000-row store of
   the same layout through the project's own trainer: a real bundle (weights, card, input transform,
   label and input coverage) whose numbers do not matter here.
3. Times ``starlabel predict BUNDLE --store S --out cat.parquet --quiet [--extra ...]`` in a child
   process for each store, with the child's CPU time and peak resident memory (``getrusage`` of a
   one-child wrapper) and its resident memory sampled over the run (flat memory: the same at 10^5 and
   10^6 rows).
4. Baselines in the same run, on the ``--also`` store: ``starlabel predict --lanes 1`` (one network on
   every CPU thread instead of one chunk per thread: how prediction ran before lanes); the bare cost of
   reading the arrays prediction needs (flux, mask, aux, snr, source_id) chunk by chunk; of reading every
   array (``Store.read``, as
   prediction did before it read only what it needs); and the naive prediction (the whole store loaded
   with numpy, then the members run eagerly 1024 rows at a time, label means only).

Prints a table of rows, wall time, spectra/s, CPU time and peak RSS. On a shared machine, compare the
CPU column and run once with ``OMP_NUM_THREADS=1`` as well: torch's threads spin while waiting for a
busy core. The stores are deleted at the end unless ``--keep`` (10^6 + 10^5 rows take about 12 GB).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

# Ca II triplet (vacuum nm) and weaker Fe I, Si I, Ti I, Mg I lines of the RVS window: centre, depth, width (nm)
LINES: tuple[tuple[float, float, float], ...] = (
    (850.035, 0.55, 0.12),
    (854.444, 0.65, 0.16),
    (866.452, 0.60, 0.14),
    (846.8, 0.10, 0.03),
    (847.3, 0.08, 0.03),
    (848.5, 0.12, 0.03),
    (851.6, 0.09, 0.03),
    (852.9, 0.07, 0.03),
    (856.4, 0.11, 0.03),
    (858.5, 0.13, 0.03),
    (859.4, 0.08, 0.03),
    (861.4, 0.10, 0.03),
    (862.3, 0.12, 0.03),
    (863.2, 0.07, 0.03),
    (864.9, 0.09, 0.03),
    (867.5, 0.11, 0.03),
    (868.9, 0.14, 0.03),
    (869.5, 0.06, 0.03),
)
LABEL_UNITS = {"teff": "K"}
"""Units of the generated labels (others: dex)."""
BYTES_PER_ROW = 11_000
"""About what a row takes in the store on disk (flux, ivar, mask, aux, labels; Blosc lz4)."""
WRITE_ROWS = 8192
"""Rows generated and appended at a time (bounded memory while writing a store)."""


# ------------------------------------------------------------------------------------------- descriptor
def write_descriptor(folder: Path) -> Path:
    """The built-in ``gaia_rvs_dr3`` descriptor with a ``network:`` section (hybrid_cnn), written into ``folder``."""
    from starlabel.plugins import load_plugins
    from starlabel.surveys import find_descriptor

    plugins = load_plugins(entry_points=False)
    document = yaml.safe_load(Path(find_descriptor("gaia_rvs_dr3", plugins)).read_text())
    document["name"] = "bench_rvs_predict"
    document["network"] = {"architecture": "hybrid_cnn"}
    document["training"] = dict(document.get("training", {}), batch_size=128, ensemble=1, epochs=1)
    document.pop("data", None)
    path = folder / "bench_rvs_predict.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


# ------------------------------------------------------------------------------------------------ stores
class SpectrumMaker:
    """Seeded RVS-like spectra, auxiliary values and labels, a block of rows at a time."""

    def __init__(
        self,
        wavelength: np.ndarray,
        masked: np.ndarray,
        aux_layout: dict[str, list[str]],
        label_names: list[str],
        seed: int,
        labelled: float = 0.2,
    ) -> None:
        self.wavelength = wavelength
        self.label_names = label_names
        self.labelled = labelled
        self.masked = masked
        self.aux_layout = aux_layout
        self.rng = np.random.default_rng(seed)
        centre = np.array([c for c, _, _ in LINES])
        width = np.array([w for _, _, w in LINES])
        self.depth = np.array([d for _, d, _ in LINES], np.float32)
        # (lines, pixels) Gaussian profiles of unit depth
        self.profiles = np.exp(-0.5 * ((wavelength[None, :] - centre[:, None]) / width[:, None]) ** 2).astype(np.float32)

    def block(self, first_id: int, n: int) -> Any:
        """``n`` rows as a :class:`starlabel.store.StoreBatch`, source ids ``first_id + 7919 * i``."""
        from starlabel.store import StoreBatch

        rng = self.rng
        teff = rng.uniform(3800.0, 7000.0, n)
        logg = rng.uniform(0.5, 5.0, n)
        m_h = rng.normal(-0.2, 0.4, n)
        alpha_m = np.clip(rng.normal(0.1, 0.1, n), -0.2, 0.5)
        strength = (1.0 + 0.6 * m_h + 0.3 * alpha_m)[:, None] * (1.0 - (teff[:, None] - 3800.0) / 6000.0)
        depths = np.clip(self.depth[None, :] * strength * rng.uniform(0.8, 1.2, (n, len(LINES))), 0.0, 0.95)
        flux = 1.0 - depths.astype(np.float32) @ self.profiles
        snr = np.exp(rng.uniform(np.log(15.0), np.log(300.0), n)).astype(np.float32)
        sigma = (1.0 / snr)[:, None] * np.sqrt(np.maximum(flux, 0.05))
        flux += sigma * rng.standard_normal(flux.shape, dtype=np.float32)
        ivar = (1.0 / sigma**2).astype(np.float32)
        mask = np.broadcast_to(self.masked, flux.shape).copy()
        ids = (4_000_000_000_000_000_000 + 7919 * (first_id + np.arange(n))).astype(np.int64)
        aux = {name: self._aux(name, len(columns), n, teff) for name, columns in self.aux_layout.items()}
        ok = rng.random(n) < self.labelled
        physical = {"teff": (teff, 50.0), "logg": (logg, 0.1), "alpha_m": (alpha_m, 0.03)}
        labels = {}
        for name in self.label_names:
            value, err = physical.get(name, (m_h, 0.05))  # any other label: a metallicity-like value
            labels[name] = (np.where(ok, value, np.nan).astype(np.float32), np.full(n, err, np.float32), ok)
        return StoreBatch(ids, flux.astype(np.float32, copy=False), ivar, mask, snr, aux, labels)

    def _aux(self, name: str, k: int, n: int, teff: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rng = self.rng
        colour = (7000.0 - teff) / 2000.0
        if "xp" in name:  # normalised XP coefficients: decaying with order, ~3% of stars without XP
            scale = np.exp(-np.arange(k) % 55 / 12.0)
            values = (rng.standard_normal((n, k)) * scale + colour[:, None] * scale).astype(np.float32)
            missing = np.repeat(rng.random((n, 1)) < 0.03, k, axis=1)
        else:  # magnitudes, colours, parallax: a few per cent missing
            values = (rng.normal(12.0, 1.5, (n, 1)) + colour[:, None] * np.linspace(0, 1, k)).astype(np.float32)
            missing = rng.random((n, k)) < 0.02
        values[missing] = np.nan
        return values, missing


def write_store(path: Path, resolved: Any, plugins: Any, n: int, seed: int, labelled: float = 0.2) -> float:
    """Write an ``n``-row store of ``resolved``'s layout at ``path`` as ``starlabel ingest`` lays it out.

    A fraction ``labelled`` of the rows has reference labels. Returns the seconds taken.
    """
    from starlabel.grid import WavelengthGrid
    from starlabel.store import Store, StoreLayout

    started = time.perf_counter()
    grid = WavelengthGrid.from_section(resolved.model.grid)
    wavelength = np.asarray(grid.wavelength)
    masked = np.zeros(wavelength.size, bool)
    for region in resolved.model.mask:
        masked |= (wavelength >= region.start) & (wavelength <= region.stop)
    aux_layout = {}
    for index, entry in enumerate(resolved.model.auxiliary):
        provider = plugins.auxiliary.get(entry.provider)(resolved.options[f"auxiliary[{index}]"])
        aux_layout[entry.name or entry.provider] = list(provider.columns())
    chunk_rows = int(resolved.model.ingest.chunk_rows)
    label_names = list(resolved.model.labels.columns) if resolved.model.labels is not None else []
    units = {name: LABEL_UNITS.get(name, "dex") for name in label_names}
    layout = StoreLayout(wavelength.size, "int", aux_layout, units, chunk_rows)
    store = Store.create(
        path,
        layout,
        descriptor=resolved.resolved(),
        descriptor_hash=resolved.hash(),
        grid=grid.as_dict(),
        plugins=plugins.versions(),
    )
    maker = SpectrumMaker(wavelength, masked, aux_layout, label_names, seed, labelled)
    step = max(chunk_rows, WRITE_ROWS // chunk_rows * chunk_rows)  # whole chunks per append
    for start in range(0, n, step):
        store.append(maker.block(start, min(step, n - start)))
    store.set_keep(np.ones(n, bool))
    store.finish({"rows_written": n, "generator": "bench/predict_1e6.py"})
    return time.perf_counter() - started


def make_bundle(work: Path, descriptor: Path, members: int) -> Path:
    """Train hybrid_cnn for one epoch on a 3000-row store; return the bundle folder."""
    from starlabel.descriptor import load_descriptor
    from starlabel.plugins import load_plugins
    from starlabel.train import TrainOptions, train

    plugins = load_plugins(entry_points=False)
    resolved = load_descriptor(descriptor, plugins)
    write_store(work / "train.zarr", resolved, plugins, 3000, seed=1, labelled=1.0)
    options = TrainOptions(epochs=1, ensemble=members, progress=False)
    train(resolved, plugins, work / "train.zarr", work / "bundle", options)
    shutil.rmtree(work / "train.zarr", ignore_errors=True)
    return work / "bundle"


# ------------------------------------------------------------------------------------------- measuring
WRAPPER = """
import json, resource, subprocess, sys, threading, time
samples = []
proc = subprocess.Popen(sys.argv[1:])
def sample():
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                samples.append(next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024)
        except (OSError, StopIteration):
            pass
        time.sleep(0.2)
threading.Thread(target=sample, daemon=True).start()
t0 = time.perf_counter()
rc = proc.wait()
elapsed = time.perf_counter() - t0
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
peak, cpu = usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime
print(json.dumps({"rc": rc, "seconds": elapsed, "cpu": cpu, "peak_mb": peak, "samples": samples}))
"""


def measured(command: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``command`` as the only child of a wrapper; its wall time, peak RSS (MB) and sampled RSS."""
    out = subprocess.run(
        [sys.executable, "-c", WRAPPER, *command], capture_output=True, text=True, env=env, check=False
    )
    lines = out.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError(f"no result from {command}: {out.stderr[-2000:]}")
    result = json.loads(lines[-1])
    if result["rc"] != 0:
        raise RuntimeError(f"{command} failed ({result['rc']}): {out.stderr[-4000:]}")
    result["stdout"] = "\n".join(lines[:-1])
    return result


BASELINE_CHILD = """
import json, sys, time
import numpy as np
import torch
from starlabel.bundle import load_bundle
from starlabel.plugins import load_plugins
from starlabel.predict import make_ensemble
from starlabel.store import Store
mode, bundle_path, store_path = sys.argv[1:4]
store = Store.open(store_path)
names = ["flux", "mask", "snr", "source_id", "keep"]
for name in store.layout.aux:
    names += [f"aux/{name}", f"aux/{name}_missing"]
t0 = time.perf_counter()
if mode == "read":  # the bare cost of reading what prediction needs, chunk by chunk
    arrays = [store.array(n) for n in names]
    total = 0
    for start, stop in store.chunk_ranges():
        total += sum(np.asarray(a[start:stop]).nbytes for a in arrays)
    print(json.dumps({"rows": store.n_rows, "bytes": total, "seconds": time.perf_counter() - t0}))
elif mode == "read-all":  # what prediction read before: every array of each chunk (Store.read)
    total = 0
    for start, stop in store.chunk_ranges():
        b = store.read(start, stop)
        parts = [b.source_id, b.flux, b.ivar, b.mask, b.snr, *(x for v in b.aux.values() for x in v)]
        total += sum(np.asarray(x).nbytes for x in parts + [x for v in b.labels.values() for x in v])
    print(json.dumps({"rows": store.n_rows, "bytes": total, "seconds": time.perf_counter() - t0}))
else:  # naive: load everything whole, then the eager model over batches
    bundle = load_bundle(bundle_path, load_plugins(entry_points=False))
    ens = make_ensemble(bundle)
    flux = store.array("flux")[:]
    mask = store.array("mask")[:]
    aux = np.concatenate([store.array(f"aux/{n}")[:] for n in store.layout.aux], axis=1)
    missing = np.concatenate([store.array(f"aux/{n}_missing")[:] for n in store.layout.aux], axis=1)
    means = []
    with torch.no_grad():
        for start in range(0, flux.shape[0], 1024):
            x, a = ens.inputs(flux[start:start + 1024], mask[start:start + 1024], aux[start:start + 1024], missing[start:start + 1024])
            means.append(np.mean([m(x, a)[0].numpy() for m in bundle.members], axis=0))
    print(json.dumps({"rows": int(flux.shape[0]), "seconds": time.perf_counter() - t0}))
"""


def predict_run(starlabel: str, bundle: Path, store: Path, out: Path, extra: list[str]) -> dict[str, Any]:
    """``starlabel predict`` as a child process: its wall time, peak RSS and sampled RSS."""
    out.unlink(missing_ok=True)
    return measured([starlabel, "predict", str(bundle), "--store", str(store), "--out", str(out), "--quiet", *extra])


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _row(what: str, rows: int, seconds: float, result: dict[str, Any], note: str = "") -> str:
    """A table row; ``result`` is what :func:`measured` returned (CPU time and peak RSS of the child)."""
    return (
        f"| {what} | {rows:,} | {seconds:.1f} | {rows / seconds:,.0f} | {result['cpu']:.1f} | "
        f"{result['peak_mb']:,.0f} MB | {note} |"
    )


def run(work: Path, args: argparse.Namespace) -> None:
    from starlabel.descriptor import load_descriptor
    from starlabel.plugins import load_plugins

    starlabel = str(Path(sys.executable).with_name("starlabel"))
    if not Path(starlabel).is_file():
        starlabel = shutil.which("starlabel") or "starlabel"
    descriptor = write_descriptor(work)
    plugins = load_plugins(entry_points=False)
    resolved = load_descriptor(descriptor, plugins)

    t = time.perf_counter()
    bundle = make_bundle(work, descriptor, args.members)
    print(f"bundle: hybrid_cnn, {args.members} member(s), trained 1 epoch on 3000 rows ({time.perf_counter() - t:.0f} s)", flush=True)

    sizes = sorted({n for n in (args.also, args.n) if n > 0})
    need, free = sum(sizes) * BYTES_PER_ROW, shutil.disk_usage(work).free
    if need > 0.9 * free:
        raise SystemExit(f"{work}: the stores need about {need / 1e9:.0f} GB, {free / 1e9:.0f} GB are free; use --workdir")
    stores = {}
    for n in sizes:
        path = work / f"store_{n}.zarr"
        if args.reuse and path.is_dir():
            stores[n] = path
            print(f"store of {n:,} rows: {_dir_bytes(path) / 1e9:.2f} GB on disk, reused", flush=True)
            continue
        seconds = write_store(path, resolved, plugins, n, seed=n)
        stores[n] = path
        print(f"store of {n:,} rows: {_dir_bytes(path) / 1e9:.2f} GB on disk, written in {seconds:.0f} s", flush=True)

    lines = []
    results = {}
    for n in sizes:
        r = predict_run(starlabel, bundle, stores[n], work / f"cat_{n}.parquet", args.extra)
        results[n] = r
        samples = r["samples"]
        at = [f"{samples[int(q * (len(samples) - 1))]:,.0f}" for q in (0.25, 0.5, 0.75)] if samples else []
        flat = f"RSS at 25/50/75% of the run: {' / '.join(at)} MB" if at else ""
        lines.append(_row("starlabel predict → parquet", n, r["seconds"], r, flat))
        print(lines[-1], flush=True)
    base_n = sizes[0]
    one_lane = predict_run(starlabel, bundle, stores[base_n], work / "cat_one_lane.parquet", [*args.extra, "--lanes", "1"])
    lines.append(_row("baseline: starlabel predict --lanes 1 (one network on every thread, as before lanes)", base_n, one_lane["seconds"], one_lane))
    print(lines[-1], flush=True)
    baselines = [
        ("read", "baseline: read what prediction needs (flux, mask, aux, snr, ids), chunk by chunk, no model"),
        ("read-all", "baseline: read every array of each chunk (Store.read: also ivar and labels), no model"),
    ]
    if not args.no_naive:
        baselines.append(("naive", "baseline: naive (whole store in memory, eager members at 1024 rows, mean only)"))
    for mode, what in baselines:
        result = measured([sys.executable, "-c", BASELINE_CHILD, mode, str(bundle), str(stores[base_n])])
        info = json.loads(result["stdout"].splitlines()[-1])
        note = (
            f"{info['bytes'] / 1e6 / info['seconds']:,.0f} MB/s of arrays"
            if "bytes" in info
            else "no uncertainties, OOD score, flags or catalogue"
        )
        lines.append(_row(what, base_n, info["seconds"], result, note))
        print(lines[-1], flush=True)

    print()
    print(
        f"| prediction, hybrid_cnn × {args.members}, RVS-shaped (2401 px + 120 aux) | rows | wall s | spectra/s | "
        "CPU s | peak RSS | notes |"
    )
    print("|---|---:|---:|---:|---:|---:|---|")
    for line in lines:
        print(line)
    if len(sizes) == 2:
        a, b = (results[n]["peak_mb"] for n in sizes)
        print(f"\npeak RSS {sizes[1]:,} rows / {sizes[0]:,} rows: {b / a:.2f}× (flat memory: about 1)")
    threads = os.environ.get("OMP_NUM_THREADS", "unset")
    print(
        f"machine: {os.cpu_count()} cores (OMP_NUM_THREADS {threads}), Python {sys.version.split()[0]}, numpy {np.__version__}; "
        f"ru_maxrss of this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="rows of the large store")
    parser.add_argument("--also", type=int, default=100_000, help="rows of the small store (and the baselines)")
    parser.add_argument("--members", type=int, default=1, help="ensemble members of the bundle")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive baseline (it holds a whole store in memory)")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="further `starlabel predict` options")
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the stores, bundle and catalogues")
    parser.add_argument("--reuse", action="store_true", help="use the stores already in --workdir (from --keep)")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="starlabel-bench-predict-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        run(work, args)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

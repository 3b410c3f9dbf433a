"""Ingest rate and loader memory on RVS-shaped spectra, each beside a baseline measured in the same run.

    python bench/ingest.py [--n 100000] [--per-file 5000] [--baseline-n 1000] [--workdir DIR] [--keep]

1. Writes ``n`` Gaia DR3 RVS spectra (2401 px) as bulk ``RvsMeanSpectrum_*.csv.gz`` files (gzipped ECSV,
   arrays as JSON text, exactly the archive layout; the project's seeded generator formats the values).
2. Times ``starlabel ingest`` of all of them into a zarr store (read, grid check, mask, store write) and, on
   one file of ``baseline-n`` rows, the naive baseline: astropy ``Table.read`` plus per-row parsing of
   the array columns into numpy, and the bare gzip decompression of the same bytes with the standard
   library's ``zlib`` (the reference of the speed goal) and with ``isal`` (python-isal, which the reader
   uses when it is installed).
3. Streams one epoch over the store with the torch loader in a child process, with a shuffle buffer of
   half the store (the store is twice the buffer) and with a small buffer, sampling the resident memory;
   the baseline loads the arrays whole. Prints a table of rates and peak RSS.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "data" / "starlabel_gaia"))
import make_rvs  # noqa: E402

DESCRIPTOR = """\
schema_version: 1
name: bench_rvs
instrument: {reader: gaia_rvs_dr3, resolution: 11500}
grid: {start: 846.0, stop: 870.0, step: 0.01, unit: nm, medium: vacuum}
mask: [{start: 846.0, stop: 846.5, why: edge noise}, {start: 869.8, stop: 870.0, why: edge noise}]
normalise: {method: none}
ingest: {chunk_rows: 1024}
data: {root: data, spectra: "RvsMeanSpectrum_*.csv.gz"}
"""


def write_files(folder: Path, n: int, per_file: int, base_rows: int = 200) -> tuple[list[Path], int]:
    """Bulk files with ``n`` unique ids: ``base_rows`` formatted rows reused with new ids. Returns paths, text bytes."""
    text = make_rvs._bulk_text(base_rows, make_rvs.SEED, ())
    head, _, body = text.partition(b"\nsource_id,")
    header = head + b"\nsource_id," + body.split(b"\n", 1)[0] + b"\n"
    rows = [line.split(b",", 1)[1] for line in body.split(b"\n", 1)[1].splitlines()]
    folder.mkdir(parents=True, exist_ok=True)
    paths, text_bytes, next_id = [], 0, 5_000_000_000_000_000_000
    for index, start in enumerate(range(0, n, per_file)):
        count = min(per_file, n - start)
        path = folder / f"RvsMeanSpectrum_{index:06d}-{index:06d}.csv.gz"
        with gzip.GzipFile(path, "wb", compresslevel=1, mtime=0) as handle:
            handle.write(header)
            text_bytes += len(header)
            for i in range(count):
                line = b"%d," % (next_id + 17 * (start + i)) + rows[(start + i) % base_rows] + b"\n"
                handle.write(line)
                text_bytes += len(line)
        paths.append(path)
    return paths, text_bytes


def baseline_astropy(path: Path) -> int:
    """The naive reader: astropy's ECSV reader, then every row's arrays parsed one by one."""
    from astropy.table import Table

    table = Table.read(path, format="ascii.ecsv")
    flux = np.empty((len(table), 2401), np.float32)
    error = np.empty_like(flux)
    for i, row in enumerate(table):
        flux[i] = np.array([np.nan if v is None else v for v in _values(row["flux"])], dtype=np.float32)
        error[i] = np.array([np.nan if v is None else v for v in _values(row["flux_error"])], dtype=np.float32)
    return len(table)


def _values(cell: object) -> list[object]:
    if isinstance(cell, str):  # astropy left the JSON text alone
        return json.loads(cell.replace("NaN", "null"))
    return list(np.ma.filled(np.ma.asarray(cell, dtype=float), np.nan))


def decompress_only(path: Path, module: object = zlib) -> int:
    """Bytes of text in the gzip file, inflated in 1 MB steps with ``module`` (``zlib`` or a module like it)."""
    inflater = module.decompressobj(wbits=31)  # type: ignore[attr-defined]
    total = 0
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            total += len(inflater.decompress(block))
    return total


STREAM_CHILD = """
import sys, threading, time, json
import numpy as np
mode, path, buffer_rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
samples = []
def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20
def sample(stop):
    while not stop.is_set():
        samples.append(rss_mb()); time.sleep(0.05)
stop = threading.Event(); threading.Thread(target=sample, args=(stop,), daemon=True).start()
from starlabel.store import Store
store = Store.open(path)
n = store.n_rows
checkpoints = {}
t0 = time.perf_counter()
if mode == "stream":
    from starlabel.data import StoreDataset, make_loader
    seen = 0
    for batch in make_loader(StoreDataset(path, None, buffer_rows=buffer_rows), batch_size=256):
        seen += len(batch["row"])
        for q in (0.25, 0.5, 0.75):
            if q not in checkpoints and seen >= q * n:
                checkpoints[q] = rss_mb()
    assert seen == int(store.array("keep")[:].sum()), seen
else:
    arrays = [np.asarray(store.array(name)[:]) for name in ("flux", "ivar", "mask")]
    seen = n
checkpoints[1.0] = rss_mb()
elapsed = time.perf_counter() - t0
stop.set()
with open("/proc/self/status") as f:  # VmHWM: this process's peak (ru_maxrss would carry the parent's over exec)
    peak = next(int(l.split()[1]) for l in f if l.startswith("VmHWM")) / 1024
print(json.dumps({"rows": seen, "seconds": elapsed, "peak_mb": peak, "at": checkpoints}))
"""


def stream(mode: str, store: Path, buffer_rows: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", STREAM_CHILD, mode, str(store), str(buffer_rows)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--per-file", type=int, default=5000)
    parser.add_argument("--baseline-n", type=int, default=1000)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the generated files and store")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="starlabel-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        run(work, args)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def run(work: Path, args: argparse.Namespace) -> None:
    from starlabel.descriptor import load_descriptor
    from starlabel.ingest import ingest
    from starlabel.plugins import load_plugins

    t = time.perf_counter()
    files, text_bytes = write_files(work / "data", args.n, args.per_file)
    gz_bytes = sum(p.stat().st_size for p in files)
    print(
        f"wrote {args.n} spectra in {len(files)} files: {gz_bytes / 1e9:.2f} GB gzip, {text_bytes / 1e9:.2f} GB text "
        f"({time.perf_counter() - t:.0f} s)",
        flush=True,
    )
    small, small_text = write_files(work / "baseline", args.baseline_n, args.baseline_n)

    (work / "bench.yaml").write_text(DESCRIPTOR)
    plugins = load_plugins(environ={})
    resolved = load_descriptor(work / "bench.yaml", plugins)
    t = time.perf_counter()
    report = ingest(resolved, plugins, work / "store.zarr")
    ingest_s = time.perf_counter() - t
    # the generator's row 13 of every 200 is a deliberately sparse spectrum, reported and skipped
    assert report.rows + len(report.problems) == args.n and not report.files_failed, report.to_dict()["files_failed"]
    store_bytes = sum(p.stat().st_size for p in (work / "store.zarr").rglob("*") if p.is_file())

    t = time.perf_counter()
    decompressed = decompress_only(small[0])
    decompress_s = time.perf_counter() - t
    try:
        from isal import isal_zlib
    except ImportError:
        isal_zlib, isal_s = None, 0.0
    else:
        t = time.perf_counter()
        decompress_only(small[0], isal_zlib)
        isal_s = time.perf_counter() - t
    t = time.perf_counter()
    rows = baseline_astropy(small[0])
    baseline_s = time.perf_counter() - t
    assert rows == args.baseline_n

    print()
    print("| ingest of RVS bulk files (2401 px) | spectra | seconds | spectra/s | MB/s gzip | MB/s text |")
    print("|---|---:|---:|---:|---:|---:|")
    print(
        f"| starlabel ingest → zarr store | {args.n} | {ingest_s:.1f} | {args.n / ingest_s:,.0f} | "
        f"{gz_bytes / 1e6 / ingest_s:.1f} | {text_bytes / 1e6 / ingest_s:.1f} |"
    )
    gz_small = small[0].stat().st_size
    print(
        f"| baseline: astropy Table.read + per-row parsing | {rows} | {baseline_s:.1f} | {rows / baseline_s:,.0f} | "
        f"{gz_small / 1e6 / baseline_s:.1f} | {small_text / 1e6 / baseline_s:.1f} |"
    )
    print(
        f"| bare gzip decompression, stdlib zlib (same bytes) | {rows} | {decompress_s:.2f} | "
        f"{rows / decompress_s:,.0f} | {gz_small / 1e6 / decompress_s:.1f} | {decompressed / 1e6 / decompress_s:.1f} |"
    )
    if isal_zlib is not None:
        print(
            f"| bare gzip decompression, isal (same bytes) | {rows} | {isal_s:.2f} | {rows / isal_s:,.0f} | "
            f"{gz_small / 1e6 / isal_s:.1f} | {decompressed / 1e6 / isal_s:.1f} |"
        )
    else:
        print("| bare gzip decompression, isal | – | – | – | – | – (isal not installed) |")
    print(
        f"\ningest at {(args.n / ingest_s) / (rows / decompress_s):.0%} of the bare stdlib decompression rate; "
        f"speed-up over the baseline: {(args.n / ingest_s) / (rows / baseline_s):.1f}×; "
        f"store {store_bytes / 1e9:.2f} GB on disk for {args.n * 2401 * 9 / 1e9:.2f} GB of float32 flux+ivar and bool mask"
    )

    half = args.n // 2
    print()
    print(
        "| one epoch over the store (torch loader) | buffer rows | seconds | rows/s | RSS at 25% | 50% | 75% | end | peak RSS |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, mode, buffer_rows in (
        ("stream, buffer = half the store", "stream", half),
        ("stream, small buffer", "stream", 4096),
        ("baseline: load flux, ivar, mask whole", "load", 0),
    ):
        r = stream(mode, work / "store.zarr", buffer_rows)
        at = r["at"]
        cells = " | ".join(f"{at[k]:,.0f} MB" if k in at else "–" for k in ("0.25", "0.5", "0.75", "1.0"))
        print(
            f"| {label} | {buffer_rows or '–'} | {r['seconds']:.1f} | {r['rows'] / r['seconds']:,.0f} | {cells} | "
            f"{r['peak_mb']:,.0f} MB |",
            flush=True,
        )
    print(
        f"\nmachine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
        f"numpy {np.__version__}; ru_maxrss of this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB"
    )


if __name__ == "__main__":
    io.DEFAULT_BUFFER_SIZE = 1 << 20
    main()

"""Write small label/aux tables (FITS and CSV) with known values, seeded.

Run ``python make_tables.py OUTDIR`` or call :func:`write`. Ids sit above 2**53 so any pass through
float64 would corrupt them; row 3 has a null id, row 5 a null Teff, row 6 a NaN error.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np

N = 12
BASE_ID = 4_611_686_018_427_387_904 + 1  # 2**62 + 1: not representable in float64


def columns(seed: int = 20261124) -> dict[str, np.ndarray]:
    """The table content, as plain arrays (NaN for missing floats, -1 for the null id)."""
    rng = np.random.default_rng(seed)
    ids = BASE_ID + np.arange(N, dtype=np.int64) * 7
    teff = rng.uniform(3800, 6500, N).round(1)
    logg = rng.uniform(1.0, 4.8, N).round(3)
    snr = rng.uniform(20, 300, N).round(1)
    teff_err = rng.uniform(20, 150, N).round(1)
    gmag = rng.uniform(8, 16, N).round(4)
    teff[5] = np.nan
    teff_err[6] = np.nan
    return {"source_id": ids, "TEFF": teff, "TEFF_ERR": teff_err, "LOGG": logg, "SNR": snr, "G": gmag}


def write(folder: str | Path) -> dict[str, Path]:
    """Write ``labels.fits`` (id null via TNULL), ``labels.csv`` (empty field) and ``labels.parquet`` (null)."""
    from astropy.io import fits
    from astropy.table import MaskedColumn, Table

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    data = columns()
    ids = data["source_id"].copy()
    ids[3] = -1
    cols = [fits.Column(name="source_id", format="K", null=-1, array=ids)]
    cols += [fits.Column(name=k, format="D", array=v) for k, v in data.items() if k != "source_id"]
    fits_path = folder / "labels.fits"
    fits.BinTableHDU.from_columns(cols).writeto(fits_path, overwrite=True)
    csv_path = folder / "labels.csv"
    lines = [",".join(data)]
    for i in range(N):
        row = ["" if i == 3 else str(ids[i])]
        row += ["" if np.isnan(v[i]) else repr(float(v[i])) for k, v in data.items() if k != "source_id"]
        lines.append(",".join(row))
    csv_path.write_text("\n".join(lines) + "\n")
    parquet_path = folder / "labels.parquet"
    table = Table({k: v for k, v in data.items() if k != "source_id"})
    table.add_column(MaskedColumn(data["source_id"], mask=np.arange(N) == 3, name="source_id"), index=0)
    table.write(parquet_path, format="parquet", overwrite=True)
    return {"fits": fits_path, "csv": csv_path, "parquet": parquet_path}


def checksum() -> str:
    """md5 of the generated content, to catch a generator that stops being deterministic."""
    digest = hashlib.md5()
    for key, value in columns().items():
        digest.update(key.encode() + value.tobytes())
    return digest.hexdigest()


if __name__ == "__main__":
    print(write(sys.argv[1] if len(sys.argv) > 1 else "."))

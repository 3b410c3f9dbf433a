"""Write tiny, seeded Gaia DR3 RVS mean-spectrum files in the layouts the Gaia archive publishes.

- :func:`write_bulk`: ``RvsMeanSpectrum_000000-003111.csv.gz``, gzip-compressed ECSV with one row per
  source (``source_id, solution_id, ra, dec, flux, flux_error, combined_transits, combined_ccds,
  deblended_ccds``; arrays as quoted JSON ``"[...]"``, missing elements ``NaN`` in even rows and ``null``
  in odd rows; one value below 1e-3 in Java's ``E`` notation).
- :func:`write_datalink_csv`: ``RVS-Gaia DR3 <source_id>.csv``, DataLink INDIVIDUAL CSV, 2401 rows
  (one per pixel), missing values as empty fields, exactly like the real samples.
- :func:`write_datalink_ecsv`, :func:`write_datalink_fits`, :func:`write_datalink_votable`: the
  INDIVIDUAL ECSV/FITS/VOTable variants (table of ``wavelength, flux, flux_error``, scalars in the
  metadata), modelled on the archive's XP_SAMPLED products: for RVS these layouts are unconfirmed.
- :func:`write_zip`: a DataLink bundle with RVS members and one XP_SAMPLED member.

:func:`truth` returns the arrays written (float32 as stored). Source ids lie above 2**53 in HEALPix
level-8 pixels 1024-3111, so ``source_id >> 43`` matches the bulk file name. Row :data:`LOW_VALID_ROW`
has only 901 valid pixels; edge pixels are NaN in some rows (never interior).

Usage::

    python make_rvs.py OUTDIR     # writes every file into OUTDIR and checks the md5 of the bulk file

Tests call the ``write_*`` functions into a temporary folder; no generated file is committed.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import sys
import zipfile
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

SEED = 20240611
N_SOURCES = 50
N_PIXELS = 2401
BULK_NAME = "RvsMeanSpectrum_000000-003111.csv.gz"
LOW_VALID_ROW = 13
"""Row whose spectrum keeps only 901 valid pixels (the default ``min_valid_pixels`` is 1000)."""
EXPONENT_CELL = (3, 1200)
"""(row, pixel) whose flux_error (9.5e-4) the bulk file writes as ``9.5E-4``, as Java does below 1e-3."""
EXPECTED_BULK_TEXT_MD5 = "e82990edb99729c4c5e4a912384756ce"
"""md5 of the (decompressed) text :func:`write_bulk` writes with default arguments, checked by :func:`main`
(the gzip bytes are reproducible too, but may differ between zlib builds)."""
COLUMNS = (
    "source_id",
    "solution_id",
    "ra",
    "dec",
    "flux",
    "flux_error",
    "combined_transits",
    "combined_ccds",
    "deblended_ccds",
)
CA_TRIPLET_NM = (850.035, 854.444, 866.452)
ZIP_DATE = (2024, 5, 28, 23, 59, 0)

_DECLARATIONS = (
    (
        "source_id",
        "int64",
        None,
        None,
        "Unique source identifier (unique within a particular Data Release)",
        "meta.id;meta.main",
    ),
    ("solution_id", "int64", None, None, "Solution Identifier", "meta.version"),
    ("ra", "float64", None, "deg", "Right ascension", "pos.eq.ra;meta.main"),
    ("dec", "float64", None, "deg", "Declination", "pos.eq.dec;meta.main"),
    ("flux", "string", "float32[null]", None, "Normalised flux of the RVS mean spectrum", "phot.flux;em.wl"),
    ("flux_error", "string", "float32[null]", None, "Uncertainty on the normalised flux", "stat.error;phot.flux"),
    ("combined_transits", "int16", None, None, "Number of transits combined", "meta.number"),
    ("combined_ccds", "int16", None, None, "Number of CCD spectra combined", "meta.number"),
    ("deblended_ccds", "int16", None, None, "Number of deblended CCD spectra", "meta.number"),
)


def wavelength() -> np.ndarray:
    """The 2401 grid wavelengths, ``846 + 0.01 i`` nm."""
    return 846.0 + 0.01 * np.arange(N_PIXELS)


@lru_cache(maxsize=4)
def _truth(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    pixels = np.sort(rng.choice(np.arange(1024, 3112), n, replace=False)).astype(np.int64)
    source_id = (pixels << 43) | rng.integers(0, 2**43, n, dtype=np.int64)
    wave = wavelength()
    depth = rng.uniform(0.2, 0.7, (n, len(CA_TRIPLET_NM)))
    lines = sum(depth[:, [k]] * np.exp(-0.5 * ((wave - c) / 0.12) ** 2) for k, c in enumerate(CA_TRIPLET_NM))
    snr = rng.uniform(20.0, 300.0, (n, 1))
    flux_error = (rng.uniform(0.8, 1.2, (n, N_PIXELS)) / snr).astype(np.float32)
    flux = (1.0 - lines + rng.standard_normal((n, N_PIXELS)) / snr).astype(np.float32)
    for row in range(n):
        if row % 5 == 1:
            flux[row, : 1 + row % 8] = flux_error[row, : 1 + row % 8] = np.nan
        if row % 7 == 2:
            flux[row, -(1 + row % 18) :] = flux_error[row, -(1 + row % 18) :] = np.nan
    if n > LOW_VALID_ROW:
        flux[LOW_VALID_ROW, 500:2000] = flux_error[LOW_VALID_ROW, 500:2000] = np.nan
    if n > EXPONENT_CELL[0]:
        flux_error[EXPONENT_CELL] = np.float32(9.5e-4)
    return {
        "source_id": source_id,
        "solution_id": np.full(n, 375316653866487564, dtype=np.int64),
        "ra": rng.uniform(0.0, 360.0, n),
        "dec": rng.uniform(-90.0, 90.0, n),
        "flux": flux,
        "flux_error": flux_error,
        "combined_transits": rng.integers(5, 60, n).astype(np.int16),
        "combined_ccds": rng.integers(20, 150, n).astype(np.int16),
        "deblended_ccds": rng.integers(0, 10, n).astype(np.int16),
    }


def truth(n: int = N_SOURCES, seed: int = SEED) -> dict[str, np.ndarray]:
    """The values every writer writes (copies): ids int64, flux/flux_error float32 (n, 2401), ..."""
    return {key: value.copy() for key, value in _truth(n, seed).items()}


def java_float(value: float) -> str:
    """A float32 as Java's ``Float.toString`` writes it: shortest digits, ``E`` notation below 1e-3."""
    value32 = np.float32(value)
    if value32 != 0 and abs(value32) < 1e-3:
        return np.format_float_scientific(value32, trim="0", exp_digits=1).replace("e", "E").replace("E+", "E")
    return np.format_float_positional(value32, trim="0")


@lru_cache(maxsize=8)
def _cells(n: int, seed: int, column: str) -> tuple[tuple[str, ...], ...]:
    """Every value of ``column`` formatted (``""`` where NaN), per row: formatted once, shared by writers."""
    data = _truth(n, seed)[column]
    return tuple(tuple("" if np.isnan(v) else java_float(v) for v in row) for row in data)


def _bulk_text(n: int, seed: int, wrong_length_rows: Iterable[int]) -> bytes:
    data = _truth(n, seed)
    wrong = set(wrong_length_rows)
    out = io.StringIO()
    out.write("# %ECSV 1.0\n# ---\n# delimiter: ','\n# datatype:\n")
    for name, datatype, subtype, unit, description, ucd in _DECLARATIONS:
        out.write(f"# -\n#   name: {name}\n#   datatype: {datatype}\n")
        if subtype:
            out.write(f"#   subtype: '{subtype}'\n")
        if unit:
            out.write(f"#   unit: {unit}\n")
        out.write(f"#   description: {description}\n#   meta:\n#     ucd: {ucd}\n")
    out.write(",".join(COLUMNS) + "\n")
    flux_cells, error_cells = _cells(n, seed, "flux"), _cells(n, seed, "flux_error")
    for row in range(n):
        missing = "null" if row % 2 else "NaN"
        arrays = []
        for cells in (flux_cells[row], error_cells[row]):
            values = [cell or missing for cell in cells]
            if row in wrong:
                values = values[:-1]
            arrays.append('"[' + ",".join(values) + ']"')
        out.write(
            f"{data['source_id'][row]},{data['solution_id'][row]},{float(data['ra'][row])!r},{float(data['dec'][row])!r},"
            f"{arrays[0]},{arrays[1]},{data['combined_transits'][row]},{data['combined_ccds'][row]},"
            f"{data['deblended_ccds'][row]}\n"
        )
    return out.getvalue().encode("ascii")


def write_bulk(
    directory: str | Path,
    *,
    n: int = N_SOURCES,
    seed: int = SEED,
    name: str = BULK_NAME,
    wrong_length_rows: Sequence[int] = (),
    compress: bool = True,
) -> Path:
    """Write the bulk file (gzip ECSV, or plain text with ``compress=False``) and return its path.

    Parameters
    ----------
    directory : str or Path
        Existing or new folder.
    n, seed : int
        Number of sources and seed (see :func:`truth`).
    name : str
        File name.
    wrong_length_rows : sequence of int
        Rows whose flux and flux_error arrays lose their last value (2400 instead of 2401).
    compress : bool
        gzip the text (``mtime=0`` and no file name in the gzip header, so the bytes are reproducible).
    """
    text = _bulk_text(n, seed, tuple(wrong_length_rows))
    path = Path(directory) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if not compress:
        path.write_bytes(text)
        return path
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=6) as handle:
        handle.write(text)
    path.write_bytes(buffer.getvalue())
    return path


def datalink_name(source_id: int, suffix: str, product: str = "RVS") -> str:
    """``RVS-Gaia DR3 <source_id>.<suffix>``, the archive's DataLink file name."""
    return f"{product}-Gaia DR3 {source_id}.{suffix}"


def datalink_csv_text(index: int, n: int = N_SOURCES, seed: int = SEED) -> bytes:
    """The DataLink INDIVIDUAL CSV of source ``index``: a header line and 2401 rows, one per pixel."""
    data = _truth(n, seed)
    fixed = (
        f"{data['source_id'][index]},{data['solution_id'][index]},{float(data['ra'][index])!r},{float(data['dec'][index])!r}",
        f"{data['combined_transits'][index]},{data['combined_ccds'][index]},{data['deblended_ccds'][index]}",
    )
    flux, error = _cells(n, seed, "flux")[index], _cells(n, seed, "flux_error")[index]
    lines = [",".join(COLUMNS[:4]) + ",wavelength,flux,flux_error," + ",".join(COLUMNS[6:])]
    for i, w in enumerate(wavelength()):
        lines.append(f"{fixed[0]},{round(float(w), 2)!r},{flux[i]},{error[i]},{fixed[1]}")
    return ("\n".join(lines) + "\n").encode("ascii")


def write_datalink_csv(directory: str | Path, index: int = 0, *, n: int = N_SOURCES, seed: int = SEED) -> Path:
    """Write ``RVS-Gaia DR3 <id>.csv`` of source ``index`` and return its path."""
    path = Path(directory) / datalink_name(int(_truth(n, seed)["source_id"][index]), "csv")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(datalink_csv_text(index, n, seed))
    return path


def datalink_ecsv_text(index: int, n: int = N_SOURCES, seed: int = SEED) -> bytes:
    """The INDIVIDUAL ECSV of source ``index`` (table wavelength/flux/flux_error, scalars in ``meta``)."""
    data = _truth(n, seed)
    head = [
        "# %ECSV 1.0",
        "# ---",
        "# delimiter: ','",
        "# datatype:",
        "# -",
        "#   name: wavelength",
        "#   datatype: float64",
        "#   unit: nm",
        "#   description: wavelength",
        "#   meta:",
        "#     ucd: em.wl",
        "# -",
        "#   name: flux",
        "#   datatype: float32",
        "#   description: Normalised flux of the RVS mean spectrum",
        "# -",
        "#   name: flux_error",
        "#   datatype: float32",
        "#   description: Uncertainty on the normalised flux",
        "# meta:",
        f"#   source_id: {data['source_id'][index]}",
        f"#   solution_id: {data['solution_id'][index]}",
        f"#   spatialLocation: [{float(data['ra'][index])!r}, {float(data['dec'][index])!r}]",
        "#   spectralCoverageBoundsStart: 846.0",
        "#   spectralCoverageBoundsStop: 870.0",
        "#   DataModel: Spectrum 1.01",
        "#   Publisher: ESA/Gaia/DPAC",
        "wavelength,flux,flux_error",
    ]
    flux, error = _cells(n, seed, "flux")[index], _cells(n, seed, "flux_error")[index]
    rows = [f"{round(float(w), 2)!r},{flux[i] or 'nan'},{error[i] or 'nan'}" for i, w in enumerate(wavelength())]
    return ("\n".join(head + rows) + "\n").encode("ascii")


def write_datalink_ecsv(directory: str | Path, index: int = 0, *, n: int = N_SOURCES, seed: int = SEED) -> Path:
    """Write ``RVS-Gaia DR3 <id>.ecsv`` of source ``index`` and return its path."""
    path = Path(directory) / datalink_name(int(_truth(n, seed)["source_id"][index]), "ecsv")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(datalink_ecsv_text(index, n, seed))
    return path


def write_datalink_fits(directory: str | Path, index: int = 0, *, n: int = N_SOURCES, seed: int = SEED) -> Path:
    """Write ``RVS-Gaia DR3 <id>.fits``: empty primary HDU, 2401-row BINTABLE, scalars as header strings."""
    from astropy.io import fits

    data = _truth(n, seed)
    source_id = int(data["source_id"][index])
    table = fits.BinTableHDU.from_columns(
        [
            fits.Column(name="wavelength", format="D", unit="nm", array=wavelength()),
            fits.Column(name="flux", format="E", array=data["flux"][index]),
            fits.Column(name="flux_error", format="E", array=data["flux_error"][index]),
        ]
    )
    for key, value in (
        ("SOURCEID", str(source_id)),
        ("SOLUTION", str(data["solution_id"][index])),
        ("POS", f"({float(data['ra'][index])!r}, {float(data['dec'][index])!r})"),
        ("WAVESTAR", "846.0"),
        ("WAVEEND", "870.0"),
    ):
        table.header[key] = value
    primary = fits.PrimaryHDU()
    primary.header["COMMENT"] = "Dummy header; see following table extension"
    path = Path(directory) / datalink_name(source_id, "fits")
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList([primary, table]).writeto(path, overwrite=True)
    return path


def write_datalink_votable(
    directory: str | Path, index: int = 0, *, n: int = N_SOURCES, seed: int = SEED, binary: bool = False
) -> Path:
    """Write ``RVS-Gaia DR3 <id>.xml``: a 2401-row table, scalars as ``PARAM`` s (TABLEDATA or BINARY2)."""
    from astropy.io.votable import tree

    Field, Param, Resource, VOTableFile = tree.Field, tree.Param, tree.Resource, tree.VOTableFile
    Table = getattr(tree, "TableElement", None) or tree.Table  # renamed in astropy 6

    data = _truth(n, seed)
    source_id = int(data["source_id"][index])
    vot = VOTableFile(version="1.4")
    resource = Resource()
    vot.resources.append(resource)
    table = Table(vot)
    resource.tables.append(table)
    table.params.extend(
        [
            Param(vot, name="source_id", datatype="long", value=str(source_id), ucd="meta.id;meta.main"),
            Param(vot, name="solution_id", datatype="long", value=str(data["solution_id"][index])),
            Param(
                vot,
                name="spatialLocation",
                datatype="double",
                arraysize="2",
                value=f"{float(data['ra'][index])!r} {float(data['dec'][index])!r}",
            ),
            Param(vot, name="spectralCoverageBoundsStart", datatype="double", value="846.0"),
            Param(vot, name="spectralCoverageBoundsStop", datatype="double", value="870.0"),
        ]
    )
    table.fields.extend(
        [
            Field(vot, name="wavelength", datatype="double", unit="nm"),
            Field(vot, name="flux", datatype="float"),
            Field(vot, name="flux_error", datatype="float"),
        ]
    )
    table.create_arrays(N_PIXELS)
    table.array["wavelength"] = wavelength()
    table.array["flux"] = data["flux"][index]
    table.array["flux_error"] = data["flux_error"][index]
    table.format = "binary2" if binary else "tabledata"
    path = Path(directory) / datalink_name(source_id, "xml")
    path.parent.mkdir(parents=True, exist_ok=True)
    vot.to_xml(str(path))
    return path


def _xp_sampled_csv(source_id: int) -> bytes:
    """A small stand-in for an XP_SAMPLED DataLink CSV (343 rows), to sit in the bundle beside RVS files."""
    lines = ["source_id,solution_id,ra,dec,wavelength,flux,flux_error"]
    lines += [f"{source_id},1,10.0,-5.0,{336.0 + 2 * i!r},1.0E-17,1.0E-18" for i in range(343)]
    return ("\n".join(lines) + "\n").encode("ascii")


def write_zip(
    directory: str | Path,
    indices: Sequence[int] = (0, 1, 2),
    *,
    name: str = "gaia_dr3_rvs_bundle.zip",
    ecsv_indices: Sequence[int] = (),
    with_xp: bool = True,
    n: int = N_SOURCES,
    seed: int = SEED,
) -> Path:
    """Write a DataLink bundle: ``RVS-Gaia DR3 <id>.csv`` for ``indices``, ``.ecsv`` for ``ecsv_indices``
    and, with ``with_xp``, one ``XP_SAMPLED-Gaia DR3 <id>.csv`` member (fixed dates: reproducible bytes)."""
    ids = _truth(n, seed)["source_id"]
    members = [(datalink_name(int(ids[i]), "csv"), datalink_csv_text(i, n, seed)) for i in indices]
    members += [(datalink_name(int(ids[i]), "ecsv"), datalink_ecsv_text(i, n, seed)) for i in ecsv_indices]
    if with_xp:
        members.insert(1, (datalink_name(int(ids[0]), "csv", "XP_SAMPLED"), _xp_sampled_csv(int(ids[0]))))
    path = Path(directory) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as bundle:
        for member, payload in members:
            info = zipfile.ZipInfo(member, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            bundle.writestr(info, payload)
    return path


def md5(path: str | Path) -> str:
    """md5 of a file's bytes."""
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def text_md5(path: str | Path) -> str:
    """md5 of a gzip file's decompressed bytes."""
    return hashlib.md5(gzip.decompress(Path(path).read_bytes())).hexdigest()


def main(argv: list[str]) -> int:
    """Write every layout into ``argv[0]``; check the bulk text's md5 against :data:`EXPECTED_BULK_TEXT_MD5`."""
    if len(argv) != 1:
        print(__doc__)
        return 2
    out = Path(argv[0])
    paths = [
        write_bulk(out),
        write_datalink_csv(out),
        write_datalink_ecsv(out),
        write_datalink_fits(out),
        write_datalink_votable(out),
        write_zip(out),
    ]
    for path in paths:
        print(f"{md5(path)}  {path}")
    if text_md5(paths[0]) != EXPECTED_BULK_TEXT_MD5:
        print(
            f"bulk text md5 differs from the expected {EXPECTED_BULK_TEXT_MD5}: numpy's generator or formatting changed"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

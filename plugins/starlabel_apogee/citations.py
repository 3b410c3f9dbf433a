"""What to cite for APOGEE DR17 products."""

from __future__ import annotations

APOGEE_CITATION = (
    "Abdurro'uf et al. 2022, ApJS 259, 35 (SDSS DR17); Majewski et al. 2017, AJ 154, 94 (APOGEE); "
    "Nidever et al. 2015, AJ 150, 173 (APOGEE data reduction)"
)
"""apStar, apVisit: the release, the survey and the reduction pipeline."""

ASPCAP_CITATION = APOGEE_CITATION + "; García Pérez et al. 2016, AJ 151, 144 (ASPCAP)"
"""aspcapStar and allStar labels: the above plus the ASPCAP fitting pipeline."""

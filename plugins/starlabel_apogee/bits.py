"""APOGEE DR17 bitmask definitions used by the readers and the allStar label source.

Source of every bit number and of the "bad" sets below: the bitmask classes of the APOGEE pipeline,
``python/apogee/utils/bitmask.py`` in github.com/sdss/apogee (``PixelBitMask``, ``AspcapBitMask``,
``StarBitMask``, ``ExtratargBitMask``; commit 226253020967ef86266f391a843753f3b096cc40), which is what the
DR17 page https://www.sdss4.org/dr17/irspec/apogee-bitmasks/ is generated from. Bits a class marks with
``level = 1`` are the pipeline's own "BAD" set.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

APOGEE_PIXMASK: dict[str, int] = {
    "BADPIX": 0,  # bad in the bad-pixel mask or strong persistence jump (BAD)
    "CRPIX": 1,  # cosmic ray (BAD)
    "SATPIX": 2,  # saturated (BAD)
    "UNFIXABLE": 3,  # unfixable (BAD)
    "BADDARK": 4,  # bad from the dark frame (BAD)
    "BADFLAT": 5,  # bad from the flat frame (BAD)
    "BADERR": 6,  # very high error (BAD)
    "NOSKY": 7,  # no sky available from sky fibres (BAD)
    "LITTROW_GHOST": 8,  # in the Littrow ghost (warn)
    "PERSIST_HIGH": 9,  # high-persistence region (warn)
    "PERSIST_MED": 10,  # medium-persistence region (warn)
    "PERSIST_LOW": 11,  # low-persistence region (warn)
    "SIG_SKYLINE": 12,  # near a sky line with significant flux (warn)
    "SIG_TELLURIC": 13,  # near a significant telluric line (warn)
    "NOT_ENOUGH_PSF": 14,  # < 50 % of the PSF in good pixels (BAD)
    "FERRE_MASK": 16,  # masked in the ASPCAP (FERRE) fit
}
"""APOGEE_PIXMASK (HDU3 of apStar and apVisit): name → bit."""

PIXMASK_BAD: tuple[str, ...] = (
    "BADPIX",
    "CRPIX",
    "SATPIX",
    "UNFIXABLE",
    "BADDARK",
    "BADFLAT",
    "BADERR",
    "NOSKY",
    "NOT_ENOUGH_PSF",
)
"""The pipeline's BAD pixel bits (``PixelBitMask.badval()`` = 16639 = 0x40FF)."""

ASPCAPFLAG: dict[str, int] = {
    "TEFF_WARN": 0,
    "LOGG_WARN": 1,
    "VMICRO_WARN": 2,
    "M_H_WARN": 3,
    "ALPHA_M_WARN": 4,
    "C_M_WARN": 5,
    "N_M_WARN": 6,
    "STAR_WARN": 7,
    "CHI2_WARN": 8,
    "COLORTE_WARN": 9,
    "ROTATION_WARN": 10,
    "SN_WARN": 11,  # S/N < 70
    "SPEC_HOLE_WARN": 12,
    "ATMOS_HOLE_WARN": 13,
    "VSINI_WARN": 14,
    "TEFF_BAD": 16,
    "LOGG_BAD": 17,
    "VMICRO_BAD": 18,
    "M_H_BAD": 19,
    "ALPHA_M_BAD": 20,
    "C_M_BAD": 21,
    "N_M_BAD": 22,
    "STAR_BAD": 23,  # any of TEFF, LOGG, CHI2, COLORTE, ROTATION, SN bad, or a GRIDEDGE_BAD
    "CHI2_BAD": 24,
    "COLORTE_BAD": 25,
    "ROTATION_BAD": 26,
    "SN_BAD": 27,  # S/N < 50
    "SPEC_HOLE_BAD": 28,
    "ATMOS_HOLE_BAD": 29,
    "VSINI_BAD": 30,
    "NO_ASPCAP_RESULT": 31,
    "MISSING_APSTAR": 32,
    "NO_GRID": 33,
    "BAD_FRAC_LOWSNR": 34,
    "BAD_FRAC_BADPIX": 35,
    "FERRE_FAIL": 36,
    "PROBLEM_TARGET": 40,
    "MULTIPLE_SUSPECT": 41,
}
"""APOGEE_ASPCAPFLAG (allStar ``ASPCAPFLAG``, int64): name → bit."""

STARFLAG: dict[str, int] = {
    "BAD_PIXELS": 0,  # > 20 % bad pixels (BAD)
    "COMMISSIONING": 1,
    "BRIGHT_NEIGHBOR": 2,
    "VERY_BRIGHT_NEIGHBOR": 3,  # neighbour > 100x brighter (BAD)
    "LOW_SNR": 4,
    "PERSIST_HIGH": 9,
    "PERSIST_MED": 10,
    "PERSIST_LOW": 11,
    "PERSIST_JUMP_POS": 12,
    "PERSIST_JUMP_NEG": 13,
    "SUSPECT_RV_COMBINATION": 16,
    "SUSPECT_BROAD_LINES": 17,
    "BAD_RV_COMBINATION": 18,  # (BAD)
    "RV_REJECT": 19,
    "RV_SUSPECT": 20,
    "MULTIPLE_SUSPECT": 21,
    "RV_FAIL": 22,  # (BAD)
    "SUSPECT_ROTATION": 23,
    "MTPFLUX_LT_75": 24,
    "MTPFLUX_LT_50": 25,
}
"""APOGEE_STARFLAG (allStar ``STARFLAG``, OR over visits): name → bit."""

STARFLAG_BAD: tuple[str, ...] = ("BAD_PIXELS", "VERY_BRIGHT_NEIGHBOR", "BAD_RV_COMBINATION", "RV_FAIL")
"""The pipeline's BAD star bits (``StarBitMask`` level 1)."""

EXTRATARG: dict[str, int] = {
    "NOT_MAIN": 0,
    "COMMISSIONING": 1,
    "TELLURIC": 2,
    "APO1M": 3,
    "DUPLICATE": 4,  # non-primary (not highest S/N) duplicate of the same APOGEE_ID
}
"""APOGEE2_EXTRATARG (allStar ``EXTRATARG``): name → bit."""


def bit_value(bits: Iterable[str | int], names: Mapping[str, int], what: str) -> int:
    """OR of ``bits`` given as names (case-insensitive) of ``names`` or as bit numbers 0-63.

    Raises
    ------
    ValueError
        An unknown name or a bit number outside 0-63; the message lists the known names.
    """
    value = 0
    for bit in bits:
        if isinstance(bit, bool):
            raise ValueError(f"{what}: {bit!r} is neither a bit name nor a bit number")
        if isinstance(bit, int):
            if not 0 <= bit <= 63:
                raise ValueError(f"{what}: bit number {bit} outside 0-63")
            value |= 1 << bit
            continue
        key = str(bit).strip().upper()
        if key not in names:
            raise ValueError(f"{what}: unknown bit name {bit!r}; known: {', '.join(names)}")
        value |= 1 << names[key]
    return value

"""The Gaia (E)DR3 parallax zero point of Lindegren et al. 2021 (A&A 649, A4), vectorised.

``Z5(G, ν_eff, β)`` for 5-parameter solutions (``astrometric_params_solved = 31``) and ``Z6(G, pseudocolour,
β)`` for 6-parameter ones (95) are sums ``Σ q_jk(G) c_j(colour) b_k(β)`` (paper, Eqs. A.1-A.3):

- colour functions, with the effective wavenumber (5p: ``nu_eff_used_in_astrometry``; 6p: ``pseudocolour``)
  in µm⁻¹: ``c0 = 1``, ``c1 = clamp(ν − 1.48, −0.24, 0.24)``, ``c2 = min(0.24, max(0, 1.48 − ν))³``,
  ``c3 = min(0, ν − 1.24)``, ``c4 = max(0, ν − 1.72)``;
- latitude functions of the ecliptic latitude β: ``b0 = 1``, ``b1 = sin β``, ``b2 = sin²β − 1/3``;
- ``q_jk(G)`` tabulated at 13 G nodes (Tables 9 and 10 of the paper, in µas), linearly interpolated in G
  and held constant beyond the first and last nodes.

Valid for 6 < G < 21, 1.1 < ν_eff < 1.9 (5p) and 1.24 < pseudocolour < 1.72 (6p). There is no zero point for
2-parameter solutions (3), which have no parallax. The coefficients are those of the paper, as also
distributed in the reference implementation ``gaiadr3-zeropoint`` 0.1.0 (files ``z5_200720.txt``,
``z6_200720.txt``); this module is an independent implementation checked against it.

Use: ``corrected parallax = parallax − Z`` (both in mas).
"""

from __future__ import annotations

import numpy as np

G_NODES = np.array([6.0, 10.8, 11.2, 11.8, 12.2, 12.9, 13.1, 15.9, 16.1, 17.5, 19.0, 20.0, 21.0])
"""G magnitudes at which the coefficients are tabulated (both tables)."""

# (j, k) of each table column: q_jk multiplies c_j(colour) * b_k(sin beta).
Z5_TERMS: tuple[tuple[int, int], ...] = ((0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (2, 0), (3, 0), (4, 0))
Z5_COEFFICIENTS = np.array(
    [  # µas; Lindegren et al. 2021, Table 9 (5-parameter solutions)
        [-26.98, -9.62, 27.40, -25.1, -0.0, -1257, 0, 0],
        [-27.23, -3.07, 23.04, 35.3, 15.7, -1257, 0, 0],
        [-30.33, -9.23, 9.08, -88.4, -11.8, -1257, 0, 0],
        [-33.54, -10.08, 13.28, -126.7, 11.6, -1257, 0, 0],
        [-13.65, -0.07, 9.35, -111.4, 40.6, -1257, 0, 0],
        [-19.53, -1.64, 15.86, -66.8, 20.6, -1257, 0, 0],
        [-37.99, 2.63, 16.14, -5.7, 14.0, -1257, 107.9, 104.3],
        [-38.33, 5.61, 15.42, 0, 18.7, -1189, 243.8, 155.2],
        [-31.05, 2.83, 8.59, 0, 15.5, -1404, 105.5, 170.7],
        [-29.18, -0.09, 2.41, 0, 24.5, -1165, 189.7, 325.0],
        [-18.40, 5.98, -6.46, 0, 5.5, 0, 0, 276.6],
        [-12.65, -4.57, -7.46, 0, 97.9, 0, 0, 0],
        [-18.22, -15.24, -18.54, 0, 128.2, 0, 0, 0],
    ]
)
Z6_TERMS: tuple[tuple[int, int], ...] = ((0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (2, 0))
Z6_COEFFICIENTS = np.array(
    [  # µas; Lindegren et al. 2021, Table 10 (6-parameter solutions)
        [-27.85, -7.78, 27.47, -32.1, 14.4, 9.5, -67],
        [-28.91, -3.57, 22.92, 7.7, 12.6, 1.6, -572],
        [-26.72, -8.74, 9.36, -30.3, 5.6, 17.2, -1104],
        [-29.04, -9.69, 13.63, -49.4, 36.3, 17.7, -1129],
        [-12.39, -2.16, 10.23, -92.6, 19.8, 27.6, -365],
        [-18.99, -1.93, 15.90, -57.2, -8.0, 19.9, -554],
        [-38.29, 2.59, 16.20, -10.5, 1.4, 0.4, -960],
        [-36.83, 4.20, 15.76, 22.3, 11.1, 10.0, -1367],
        [-28.37, 1.99, 9.28, 50.4, 17.2, 13.7, -1351],
        [-24.68, -1.37, 3.52, 86.8, 19.8, 21.3, -1380],
        [-15.32, 4.01, -6.03, 29.2, 14.1, 0.4, -563],
        [-13.73, -10.92, -8.30, -74.4, 196.4, -42.0, 536],
        [-29.53, -20.34, -18.74, -39.5, 326.8, -262.3, 1598],
    ]
)
G_RANGE = (6.0, 21.0)
NU_EFF_RANGE = (1.1, 1.9)
PSEUDOCOLOUR_RANGE = (1.24, 1.72)
FIVE_PARAMETER, SIX_PARAMETER = 31, 95


def _colour_basis(nu: np.ndarray) -> list[np.ndarray]:
    """``c0 … c4`` of the paper at effective wavenumber ``nu`` (µm⁻¹)."""
    return [
        np.ones_like(nu),
        np.clip(nu - 1.48, -0.24, 0.24),
        np.minimum(0.24, np.maximum(0.0, 1.48 - nu)) ** 3,
        np.minimum(0.0, nu - 1.24),
        np.maximum(0.0, nu - 1.72),
    ]


def _table_sum(g: np.ndarray, nu: np.ndarray, sin_beta: np.ndarray, table: np.ndarray, terms: tuple) -> np.ndarray:
    """``Σ q_jk(G) c_j(ν) b_k(β)`` in µas, q linearly interpolated in G (constant outside the nodes)."""
    node = np.clip(np.searchsorted(G_NODES, g, side="right") - 1, 0, len(G_NODES) - 2)
    h = np.clip((g - G_NODES[node]) / (G_NODES[node + 1] - G_NODES[node]), 0.0, 1.0)
    q = (1 - h)[:, None] * table[node] + h[:, None] * table[node + 1]
    c = _colour_basis(nu)
    b = [np.ones_like(sin_beta), sin_beta, sin_beta**2 - 1.0 / 3.0]
    return np.sum([q[:, i] * c[j] * b[k] for i, (j, k) in enumerate(terms)], axis=0)


def zero_point(
    g: np.ndarray,
    nu_eff: np.ndarray,
    pseudocolour: np.ndarray,
    ecl_lat: np.ndarray,
    params_solved: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Parallax zero point Z (mas) and whether each source is inside the calibrated range.

    Parameters
    ----------
    g : numpy.ndarray
        ``phot_g_mean_mag`` (mag).
    nu_eff, pseudocolour : numpy.ndarray
        ``nu_eff_used_in_astrometry`` (used for 5p) and ``pseudocolour`` (used for 6p), µm⁻¹; NaN where null.
    ecl_lat : numpy.ndarray
        Ecliptic latitude (degrees).
    params_solved : numpy.ndarray
        ``astrometric_params_solved``: 31 (5p), 95 (6p); anything else gets no zero point.

    Returns
    -------
    z : numpy.ndarray
        Z in mas, extrapolated outside the valid range as the paper's recipe does (coefficients held at
        the end nodes, colour functions clamped); NaN for 2p/other solutions and NaN inputs.
    valid : numpy.ndarray
        True where 6 < G < 21 and the colour is inside its range (5p: 1.1 < ν_eff < 1.9; 6p: 1.24 <
        pseudocolour < 1.72), with all inputs finite.
    """
    g, nu_eff, pseudocolour, ecl_lat = (np.asarray(a, dtype=np.float64) for a in (g, nu_eff, pseudocolour, ecl_lat))
    solved = np.asarray(params_solved)
    five, six = solved == FIVE_PARAMETER, solved == SIX_PARAMETER
    colour = np.where(five, nu_eff, pseudocolour)
    sin_beta = np.sin(np.deg2rad(ecl_lat))
    z = np.full(g.shape, np.nan)
    for chosen, table, terms in ((five, Z5_COEFFICIENTS, Z5_TERMS), (six, Z6_COEFFICIENTS, Z6_TERMS)):
        if chosen.any():
            z[chosen] = 1e-3 * _table_sum(g[chosen], colour[chosen], sin_beta[chosen], table, terms)
    finite = np.isfinite(g) & np.isfinite(colour) & np.isfinite(sin_beta) & (five | six)
    z[~finite] = np.nan
    in_g = (g > G_RANGE[0]) & (g < G_RANGE[1])
    in_colour = np.where(
        five,
        (colour > NU_EFF_RANGE[0]) & (colour < NU_EFF_RANGE[1]),
        (colour > PSEUDOCOLOUR_RANGE[0]) & (colour < PSEUDOCOLOUR_RANGE[1]),
    )
    return z, finite & in_g & in_colour

"""Writing float32 values as the Gaia archive's text files do, vectorised: shortest round-trip decimals.

The archive (Java) writes every float32 with the fewest significant digits that read back as the same
float32 (``Float.toString``): positional between 1e-3 and 1e7 (``0.9834557``, ``1.0``, ``123.5``), else
scientific with a capital ``E`` and no ``+`` or leading zero in the exponent (``9.5E-4``, ``3.3061049E-16``,
``1.0E7``); the mantissa and the positional form always have a fraction digit. Missing (non-finite)
elements of the ECSV arrays (subtype ``float32[null]``) are written ``null``.

:func:`format_rows` does this for a whole (N, P) array at once with numpy (no Python loop over values;
about 3 times faster than numpy's own float32-to-text cast, which is not Java-styled): the shortest
number of significant digits p (1 … 9) is found by bisection, a p being accepted when the decimal
``m · 10^(e-p+1)`` nearest to the value, computed in float64, lies within half the gap to the float32
neighbour on its side (less a 1e-7 safety margin, far above float64 rounding), so that any correctly
rounded parser (and :mod:`starlabel_gaia.rvs_floats`) reads back the very same float32. The margin only
matters above 2**24, where a short decimal can be exactly the midpoint between two float32 values (a
tie, which Java may write): there one more digit is written, still exact. Values sharing
a sign, digit count and exponent share one text layout, filled in one numpy assignment per piece.
"""

from __future__ import annotations

import numpy as np

MAX_DIGITS = 9
"""Significant digits that always identify a float32."""
_POW10 = 10.0 ** np.arange(-70, 71, dtype=np.float64)
_POW10_INT = 10 ** np.arange(19, dtype=np.int64)
_PLACE = (10 ** np.arange(MAX_DIGITS - 1, -1, -1)).astype(np.int32)
_WIDTH = 20
"""Longest text: ``-0.00`` and 9 digits (14), ``-d.dddddddd`` and ``E-45`` (15)."""
_CHUNK = 16384
"""Values formatted per step (keeps the work arrays small)."""
_TIE_MARGIN = 1e-7
"""Fraction of half a float32 gap kept clear of the midpoint (float64 rounding is ~1e-9 of it)."""


def _pow10(k: np.ndarray) -> np.ndarray:
    return _POW10[np.clip(k, -70, 70) + 70]


def shortest_decimal(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shortest decimal of each finite, non-zero float32: ``|v| = m · 10^(e - p + 1)``.

    Parameters
    ----------
    values : numpy.ndarray
        1-D float32, finite and non-zero.

    Returns
    -------
    m : numpy.ndarray
        int64 significand of ``p`` digits (no trailing zero unless p = 1).
    p : numpy.ndarray
        int64 number of significant digits, 1 … 9.
    e : numpy.ndarray
        int64 decimal exponent of the first digit.
    """
    x = np.abs(np.asarray(values, dtype=np.float32))
    a = x.astype(np.float64)
    e = np.floor(np.log10(a)).astype(np.int64)
    e[a < _pow10(e)] -= 1
    e[a >= _pow10(e + 1)] += 1
    half = 0.5 * (1.0 - _TIE_MARGIN)
    above = half * (np.nextafter(x, np.float32(np.inf)).astype(np.float64) - a)
    below = half * (a - np.nextafter(x, np.float32(0)).astype(np.float64))

    def nearest(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scale = _pow10(p - 1 - e)
        m = np.rint(a * scale)
        candidate = m / scale
        return m, np.where(candidate >= a, candidate - a <= above, a - candidate <= below)

    # more digits never move the nearest decimal further away: bisect on p (4 passes for 1 ... 9)
    low = np.ones(a.size, dtype=np.int64)
    high = np.full(a.size, MAX_DIGITS, dtype=np.int64)
    while np.any(open_ := low < high):
        middle = (low + high) // 2
        _, ok = nearest(middle)
        high = np.where(open_ & ok, middle, high)
        low = np.where(open_ & ~ok, middle + 1, low)
    m_float, _ = nearest(high)
    m, p = m_float.astype(np.int64), high
    over = m >= _POW10_INT[p]  # 9.99… rounded up to 10…: one more leading digit
    m[over] //= 10
    e[over] += 1
    for _ in range(MAX_DIGITS - 1):  # trailing zeros (after such a carry)
        trailing = (p > 1) & (m % 10 == 0)
        if not trailing.any():
            break
        m[trailing] //= 10
        p[trailing] -= 1
    return m, p, e


def _template(sign: int, p: int, e: int) -> list[bytes | tuple[int, int]]:
    """Pieces of the text of a value with ``p`` significant digits and exponent ``e``: constant bytes, or
    ``(first, stop)`` slices of its digits."""
    pieces: list[bytes | tuple[int, int]] = [b"-"] if sign else []
    if e < -3 or e >= 7:  # d.dddE-x
        pieces += [(0, 1), b"."]
        pieces += [(1, p)] if p > 1 else [b"0"]
        pieces.append(f"E{e}".encode())
    elif e < 0:  # 0.00ddd
        pieces += [b"0." + b"0" * (-e - 1), (0, p)]
    else:  # ddd.ddd, ddd00.0
        whole = e + 1
        pieces += [(0, min(p, whole))]
        if p < whole:
            pieces.append(b"0" * (whole - p))
        pieces += [b".", (whole, p) if p > whole else b"0"]
    return pieces


def format_values(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Format 1-D float32 ``values`` into a character matrix.

    Returns
    -------
    chars : numpy.ndarray
        (n, width + 1) uint8: each value's text, left-aligned, followed by a comma.
    lengths : numpy.ndarray
        int64 characters of each value's text (without the comma).
    """
    values = np.asarray(values, dtype=np.float32).ravel()
    n = values.size
    finite = np.isfinite(values)
    regular = finite & (values != 0)
    m = np.zeros(n, dtype=np.int64)
    p = np.ones(n, dtype=np.int64)
    e = np.zeros(n, dtype=np.int64)
    if regular.any():
        m[regular], p[regular], e[regular] = shortest_decimal(values[regular])
    # the p significant digits, left-aligned ASCII (m < 10^9 fits int32)
    shift = _POW10_INT[MAX_DIGITS - p].astype(np.int32)
    run = ((m.astype(np.int32) * shift)[:, None] // _PLACE[None, :] % 10 + 48).astype(np.uint8)
    sign = (np.signbit(values) & finite).astype(np.int64)

    chars = np.zeros((n, _WIDTH + 1), dtype=np.uint8)
    lengths = np.zeros(n, dtype=np.int64)
    key = np.where(finite, sign + 2 * p + 32 * (e + 100), -1)  # one text layout per key
    order = np.argsort(key, kind="stable")
    for group in np.split(order, np.flatnonzero(np.diff(key[order])) + 1):
        first = group[0]
        pieces = [b"null"] if not finite[first] else _template(int(sign[first]), int(p[first]), int(e[first]))
        column = 0
        for piece in pieces:
            if isinstance(piece, bytes):
                chars[group, column : column + len(piece)] = np.frombuffer(piece, dtype=np.uint8)
                column += len(piece)
            else:
                chars[group, column : column + piece[1] - piece[0]] = run[group, piece[0] : piece[1]]
                column += piece[1] - piece[0]
        chars[group, column] = ord(",")
        lengths[group] = column
    return chars, lengths


def format_rows(values: np.ndarray) -> list[bytes]:
    """Each row of (N, P) ``values`` as ``v1,v2,…`` (float32 shortest decimals, ``null`` where not finite).

    Parameters
    ----------
    values : numpy.ndarray
        (N, P) array; converted to float32 first.

    Returns
    -------
    list of bytes
        N texts, without brackets.
    """
    values = np.asarray(values, dtype=np.float32)
    if values.ndim != 2:
        raise ValueError(f"values must be 2-D (N, P), got shape {values.shape}")
    n_rows, n_cols = values.shape
    if n_cols == 0:
        return [b""] * n_rows
    out: list[bytes] = []
    rows_per_step = max(1, _CHUNK // n_cols)
    columns = np.arange(_WIDTH + 1)[None, :]
    for begin in range(0, n_rows, rows_per_step):
        block = values[begin : begin + rows_per_step]
        chars, lengths = format_values(block.ravel())
        text = chars[columns <= lengths[:, None]].tobytes()
        ends = np.cumsum((lengths + 1).reshape(block.shape[0], n_cols).sum(axis=1))
        starts = np.concatenate(([0], ends[:-1]))
        out.extend(text[s : t - 1] for s, t in zip(starts.tolist(), ends.tolist(), strict=True))
    return out

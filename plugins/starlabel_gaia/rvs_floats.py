"""Fast parsing of comma-separated decimal numbers with numpy alone (the arrays of Gaia bulk files).

``numpy.fromstring(text, sep=",")`` and ``numpy.loadtxt`` convert about 5 million numbers per second;
a Gaia RVS bulk row holds 4802 of them. :func:`parse_lists` parses plain decimals (``-?d+.d+``, at most
4 integer and 11 fraction digits: every float32 written positionally above 1e-3, as the archive writes
them) four to five times as fast, exactly: each number is read as the integer of its digits and divided once
by a power of ten, so the float64 result is the correctly rounded value of the decimal text.

How: the text is searched once for ``.`` and ``,``; a 16-byte window aligned on each token's decimal
point is gathered, bytes outside the token are masked with a pattern chosen by the token's digit counts,
and the digits are combined pairwise through ``uint16`` and ``uint32`` views (SIMD-within-a-register),
then in float64. ``null``, ``NaN`` and ``nan`` are first rewritten, at equal length, into markers that
no writer produces (``00.0``, ``00.``) and come back as NaN; exponents (``9.5E-4``, as Java writes
floats below 1e-3) become zeros and are applied by one exact division. Anything else (spaces,
``Infinity``, longer fractions) falls back to :func:`numpy.fromstring`, then to Python's ``float``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

_INT_DIGITS = 4
_FRACTION_DIGITS = 11
_WINDOW = _INT_DIGITS + 1 + _FRACTION_DIGITS  # 16 bytes: 4 lanes of 4 digits, the point in lane 1
_PAD = 32
_COMMA, _MINUS, _POINT, _ZERO = 44, 45, 46, 48
Buffer = bytes | bytearray | memoryview


def _patterns() -> np.ndarray:
    """0xFF where a token with ``i`` integer and ``f`` fraction digits has a digit, row ``i * 12 + f``."""
    table = np.zeros(((_INT_DIGITS + 1) * (_FRACTION_DIGITS + 1), _WINDOW), dtype=np.uint8)
    for i in range(_INT_DIGITS + 1):
        for f in range(_FRACTION_DIGITS + 1):
            row = table[i * (_FRACTION_DIGITS + 1) + f]
            row[_INT_DIGITS - i : _INT_DIGITS] = 0xFF
            row[_INT_DIGITS + 1 : _INT_DIGITS + 1 + f] = 0xFF
    return table


_PATTERNS = _patterns()
_WINDOW_DTYPE = np.dtype((np.void, _WINDOW))
_POW10 = np.array([10.0**k for k in range(23)])
"""Powers of ten exactly representable in float64."""


def parse_lists(texts: Sequence[Buffer]) -> tuple[np.ndarray, np.ndarray]:
    """Parse several comma-separated lists of numbers at once.

    Parameters
    ----------
    texts : sequence of bytes-like
        Each a list such as ``b"0.99,1.01,NaN"`` (brackets already removed); ``memoryview`` slices of a
        larger buffer are fine and are not copied before the parse. ``null``, ``NaN``, ``nan`` and empty
        elements are missing values (NaN).

    Returns
    -------
    values : numpy.ndarray
        float64, the values of every parseable list, concatenated in order.
    counts : numpy.ndarray
        int64, per list: its number of values, 0 for an empty text, -1 when it cannot be parsed (its
        values are then left out of ``values``).
    """
    counts = np.zeros(len(texts), dtype=np.int64)
    filled = [i for i, text in enumerate(texts) if not _blank(text)]
    if not filled:
        return np.zeros(0, dtype=np.float64), counts
    parts = [texts[i] for i in filled]
    fast = _parse_fast(parts)
    if fast is not None:
        values, points = fast
        ends = np.cumsum(np.fromiter((len(p) + 1 for p in parts), dtype=np.int64, count=len(parts))) - 1
        counts[filled] = np.diff(np.searchsorted(points, ends), prepend=0)
        return values, counts
    pieces = []
    for i in filled:
        parsed = parse_one(texts[i])
        counts[i] = -1 if parsed is None else parsed.size
        if parsed is not None:
            pieces.append(parsed)
    return (np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float64)), counts


def parse_one(text: Buffer) -> np.ndarray | None:
    """Parse one comma-separated list the slow, general way; None when an element is not a number."""
    text = bytes(text)
    if not text.strip():
        return np.zeros(0, dtype=np.float64)
    fast = _parse_fast([text])
    if fast is not None:
        return fast[0]
    cleaned = text.replace(b"null", b"nan")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            values = np.fromstring(cleaned, dtype=np.float64, sep=",")  # type: ignore[call-overload]
        if values.size == cleaned.count(b",") + 1:
            return values
    except (ValueError, DeprecationWarning):
        pass
    out = []
    for token in text.split(b","):
        token = token.strip()
        if token.lower() in (b"", b"null", b"nan", b"-nan", b"+nan"):
            out.append(np.nan)
            continue
        try:
            out.append(float(token))
        except ValueError:
            return None
    return np.array(out, dtype=np.float64)


def _blank(text: Buffer) -> bool:
    """True for an empty or all-whitespace text (without copying a long one)."""
    if not len(text):
        return True
    return text[0] in b" \t\r\n" and not bytes(text).strip()


def _rewrite_letters(body: np.ndarray) -> list[tuple[int, int]] | None:
    """Rewrite the letters of ``body`` (writable bytes) in place so that every token is a plain decimal.

    ``null``/``NaN``/``nan`` become their markers; an exponent (``E-4``, ``e+05``) becomes zeros and is
    returned as ``(position of the E, exponent)`` for the caller to apply. Returns None when another
    letter is found (the text is then not for the fast path).
    """
    letters = np.flatnonzero(body > ord("9"))
    if letters.size == 0:
        return []
    first = np.ones(letters.size, dtype=bool)
    first[1:] = np.diff(letters) != 1
    starts = letters[first]
    lengths = np.diff(np.append(np.flatnonzero(first), letters.size))
    lower = body | 0x20  # ASCII lower case (digits and punctuation are not compared)
    three, four, one = starts[lengths == 3], starts[lengths == 4], starts[lengths == 1]
    if three.size + four.size + one.size != starts.size:
        return None
    ok = np.all((lower[three] == ord("n")) & (lower[three + 1] == ord("a")) & (lower[three + 2] == ord("n")))
    ok &= np.all(
        (lower[four] == ord("n"))
        & (lower[four + 1] == ord("u"))
        & (lower[four + 2] == ord("l"))
        & (lower[four + 3] == ord("l"))
    )
    ok &= np.all(lower[one] == ord("e"))
    if not ok:
        return None
    for begin, marker in ((three, b"00."), (four, b"00.0")):
        for offset, char in enumerate(marker):
            body[begin + offset] = char
    exponents = []
    for position in one.tolist():
        digits = position + 1 + (position + 1 < body.size and body[position + 1] in (43, _MINUS))
        stop = digits
        while stop < body.size and stop - digits < 4 and 48 <= body[stop] <= 57:
            stop += 1
        if stop == digits or stop - digits > 3:
            return None
        exponent = int(bytes(body[digits:stop]))
        exponents.append((position, -exponent if body[position + 1] == _MINUS else exponent))
        body[position:stop] = _ZERO
    return exponents


def _parse_fast(parts: Sequence[Buffer]) -> tuple[np.ndarray, np.ndarray] | None:
    """Vectorised parse of ``-?d+.d+`` tokens of ``parts`` joined by commas.

    Returns (values, offsets of the decimal points in the joined text), or None when the text is not
    for the fast path.
    """
    size = sum(len(part) for part in parts) + len(parts) - 1
    if size <= 0:
        return None
    work = np.empty(size + 2 * _PAD, dtype=np.uint8)
    work[:_PAD] = work[_PAD + size :] = 0
    body = work[_PAD : _PAD + size]
    position = 0
    for part in parts:
        if position:
            body[position] = _COMMA
            position += 1
        body[position : position + len(part)] = np.frombuffer(part, dtype=np.uint8)
        position += len(part)
    lettered = body.max() > ord("9")
    exponents = _rewrite_letters(body) if lettered else []
    if exponents is None:
        return None
    marks = np.flatnonzero((body & 0xFD) == _COMMA)  # ',' (44) and '.' (46)
    if marks.size % 2 == 0:
        return None
    kinds = body[marks]
    if not (np.all(kinds[0::2] == _POINT) and np.all(kinds[1::2] == _COMMA)):
        return None
    points, commas = marks[0::2], marks[1::2]
    starts = np.empty_like(points)
    starts[0], starts[1:] = 0, commas + 1
    ends = np.empty_like(points)
    ends[:-1], ends[-1] = commas, size
    negative = body[starts] == _MINUS
    int_digits = points - starts - negative
    fraction_digits = ends - points - 1
    if int_digits.max() > _INT_DIGITS or fraction_digits.max() > _FRACTION_DIGITS:
        return None
    if np.any(int_digits + fraction_digits == 0):
        return None
    if lettered:  # the markers "00." and "00.0"
        missing = np.flatnonzero((int_digits == 2) & (body[starts + negative] == _ZERO))

    body -= np.uint8(_ZERO)  # digits become 0-9, everything else wraps above 9
    windows = np.ndarray(shape=(size + _PAD,), dtype=_WINDOW_DTYPE, buffer=work, strides=(1,))
    windows = windows[points + (_PAD - _INT_DIGITS)].view(np.uint8).reshape(-1, _WINDOW)
    windows &= np.take(_PATTERNS, int_digits * (_FRACTION_DIGITS + 1) + fraction_digits, axis=0)
    if windows.max() > 9:  # the windows cover every byte of every token but its sign: all must be digits
        return None
    pairs = windows.view("<u2")
    pairs = ((pairs & 0xFF) * 10 + (pairs >> 8)).astype("<u2", copy=False)  # 2 digits per uint16
    quads = pairs.view("<u4")
    quads = (quads & 0xFFFF) * 100 + (quads >> 16)  # 4 digits per uint32: int, .ddd, dddd, dddd
    # Every term and partial sum is an integer below 1e15 < 2**53, so the sum is exact in any order.
    lanes = quads.astype(np.float64)
    mantissa = lanes[:, 0] * 1e11
    mantissa += lanes[:, 1] * 1e8
    mantissa += lanes[:, 2] * 1e4
    mantissa += lanes[:, 3]
    values = mantissa / 1e11  # one correctly rounded division
    if exponents:
        position, exponent = np.array(exponents, dtype=np.int64).T
        token = np.searchsorted(points, position) - 1
        scale = _FRACTION_DIGITS - exponent
        if np.any(np.abs(scale) > 22):
            return None
        down = scale >= 0
        values[token[down]] = mantissa[token[down]] / _POW10[scale[down]]
        values[token[~down]] = mantissa[token[~down]] * _POW10[-scale[~down]]
    np.negative(values, out=values, where=negative)
    if lettered:
        values[missing] = np.nan
    return values, points

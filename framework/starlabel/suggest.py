"""Close-match suggestions for unknown names."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(name: str, choices: Iterable[str], cutoff: float = 0.6) -> str | None:
    """Return the choice closest to ``name``, or None when nothing is close enough.

    Parameters
    ----------
    name : str
        The name the user wrote.
    choices : iterable of str
        The names that exist.
    cutoff : float
        Minimum :class:`difflib.SequenceMatcher` ratio for a suggestion.
    """
    matches = difflib.get_close_matches(name, list(choices), n=1, cutoff=cutoff)
    return matches[0] if matches else None


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``" Did you mean X?"`` for the closest choice, or an empty string."""
    best = closest(name, choices)
    return f" Did you mean {best}?" if best else ""

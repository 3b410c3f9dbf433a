"""Deterministic train / validation / test splits from a seeded hash of the source id.

A star's split depends only on its id, the seed and the fractions: never on row order, file order or
the number of workers, so the same star lands in the same split in every store and every run.
"""

from __future__ import annotations

import hashlib

import numpy as np

TRAIN, VALID, TEST = 0, 1, 2
SPLIT_NAMES = {"train": TRAIN, "valid": VALID, "test": TEST}
_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser, vectorised on uint64 (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def unit_hash(source_id: np.ndarray, seed: int | str) -> np.ndarray:
    """A number in [0, 1) per id, uniform over ids, fixed by (id, seed)."""
    seed_word = np.uint64(int.from_bytes(hashlib.blake2b(str(seed).encode(), digest_size=8).digest(), "little"))
    if source_id.dtype.kind in "iu":
        words = source_id.astype(np.int64).view(np.uint64)
    else:
        words = np.array(
            [int.from_bytes(hashlib.blake2b(str(s).encode(), digest_size=8).digest(), "little") for s in source_id],
            dtype=np.uint64,
        )
    mixed = _splitmix64(_splitmix64(words ^ seed_word))
    return (mixed >> np.uint64(11)).astype(np.float64) / float(2**53)


def assign_splits(source_id: np.ndarray, seed: int, train: float, valid: float) -> np.ndarray:
    """Split code per id: 0 train, 1 valid, 2 test (the rest after train and valid)."""
    u = unit_hash(source_id, seed)
    return np.where(u < train, TRAIN, np.where(u < train + valid, VALID, TEST)).astype(np.int8)


def member_splits(source_id: np.ndarray, seed: int, train: float, valid: float, member: int) -> np.ndarray:
    """Split code per id for ensemble member ``member``: the test split is the one :func:`assign_splits`
    gives (shared by every member, so the held-out stars stay held out); the remaining stars are divided
    between train and valid by a second hash seeded by ``(seed, member)``, in the ratio ``train : valid``.
    """
    codes = assign_splits(source_id, seed, train, valid)
    u = unit_hash(source_id, f"{seed}/member/{member}")
    fit = codes != TEST
    codes[fit] = np.where(u[fit] < train / (train + valid), TRAIN, VALID)
    return codes

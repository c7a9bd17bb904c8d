"""``random``: a seeded random split of each user's interactions."""

from __future__ import annotations

from typing import Any

import numpy as np

from recframe.api import ConfigError, Dataset, Split, lexsort_stable, positions_in_groups
from recframe_splitters._common import (
    TEST,
    TRAIN,
    VALID,
    check_keys,
    get_int,
    get_ratios,
    make_split,
    require_rows,
    round_half_up,
    user_codes,
)


def holdout_sizes(sizes: np.ndarray, valid: float, test: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-user (n_valid, n_test) for users with ``sizes`` interactions.

    ``n_test = round(n * test)`` and ``n_valid = round(n * valid)`` (halves up),
    but every user keeps at least one train row, and a positive ratio gets at
    least one row when the user has enough: test first (n >= 2), then valid
    (when >= 2 rows remain after test). So 1 row: train; 2 rows: train + test
    (train + valid if test is 0); 3 rows at 0.8/0.1/0.1: one of each.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    n_test = round_half_up(sizes * test)
    if test > 0:
        n_test = np.where(sizes >= 2, np.maximum(n_test, 1), n_test)
    n_test = np.minimum(n_test, np.maximum(sizes - 1, 0))
    rest = sizes - n_test
    n_valid = round_half_up(sizes * valid)
    if valid > 0:
        n_valid = np.where(rest >= 2, np.maximum(n_valid, 1), n_valid)
    n_valid = np.minimum(n_valid, np.maximum(rest - 1, 0))
    return n_valid, n_test


def _pooled_parts(n: int, valid: float, test: float, seed: int) -> np.ndarray:
    """Train/valid/test labels for ``n`` rows shuffled as one pool."""
    n_valid, n_test = holdout_sizes(np.array([n]), valid, test)
    order = np.random.default_rng(seed).permutation(n)
    part = np.full(n, TRAIN, dtype=np.int8)
    part[order[n - int(n_test[0]):]] = TEST
    part[order[n - int(n_test[0]) - int(n_valid[0]): n - int(n_test[0])]] = VALID
    return part


def build_random(cfg: Any) -> Any:
    """Per-user random split.

    Parameters:
        ratios ([train, valid, test], default [0.8, 0.1, 0.1]): non-negative,
            summing to 1. Applied per user with :func:`holdout_sizes`.
        seed (int >= 0, default 0): the shuffle seed. The same data and seed
            give the same split.
        per_user (bool, default true): false splits the rows as one pool (each
            row lands in train/valid/test with the ratios' shares, rounded half
            up), as click-log (CTR) studies do, so a user may be absent from
            train; true applies the ratios within each user.
    """
    check_keys(cfg, "random", ("ratios", "seed", "per_user"))
    _, valid, test = get_ratios(cfg, "random")
    seed = get_int(cfg, "seed", 0, "random")
    per_user = cfg.get("per_user", True)
    if not isinstance(per_user, bool):
        raise ConfigError(f"split.per_user must be true or false, got {per_user!r}")

    def random_split(ds: Dataset) -> Split:
        require_rows(ds, "random")
        df = ds.interactions
        if not per_user:
            return make_split(ds, _pooled_parts(len(df), valid, test, seed), "random")
        keys = np.random.default_rng(seed).random(len(df))
        return make_split(ds, per_user_parts(user_codes(df), keys, valid, test), "random")

    return random_split


def per_user_parts(codes: np.ndarray, keys: np.ndarray, valid: float, test: float
                   ) -> np.ndarray:
    """Train/valid/test labels of rows whose users are ``codes`` (0..n-1): each user's
    rows ordered by the random ``keys``, the last ones held out by
    :func:`holdout_sizes`."""
    order = lexsort_stable((keys, codes))  # by user, shuffled within each user
    sorted_codes = codes[order]
    pos = positions_in_groups(sorted_codes)
    sizes = np.bincount(codes)
    n_valid, n_test = holdout_sizes(sizes, valid, test)
    n = sizes[sorted_codes]
    nt, nv = n_test[sorted_codes], n_valid[sorted_codes]
    part_sorted = np.where(pos >= n - nt, TEST, np.where(pos >= n - nt - nv, VALID, TRAIN))
    part = np.empty(len(codes), dtype=np.int8)
    part[order] = part_sorted
    return part

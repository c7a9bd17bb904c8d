"""``temporal``: one global time cut for all users."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from recframe.api import DataError, Dataset, Split
from recframe_splitters._common import (
    TEST,
    TRAIN,
    VALID,
    check_keys,
    get_ratios,
    log,
    make_split,
    require_rows,
    require_timestamps,
    round_half_up,
)


def _kth_smallest(ts: pd.Series) -> Callable[[int], Any]:
    """``k -> sorted(ts)[k]`` (0-based), as the pandas scalar ``ts`` holds there.

    Numeric and datetime columns use ``np.argpartition`` (linear time, no full sort
    of the column); other dtypes sort once.
    """
    arr = ts.to_numpy()
    if arr.dtype.kind in "iufmM":
        def kth(k: int) -> Any:
            return ts.iloc[int(np.argpartition(arr, k)[k])]
        return kth
    ordered = ts.sort_values(kind="stable").reset_index(drop=True)
    return lambda k: ordered.iloc[k]


def temporal_sizes(n: int, valid: float, test: float) -> tuple[int, int]:
    """Rows held out for validation and test from ``n`` rows in time order: the
    ratios rounded half up, at least one row for a non-zero ratio, at least one
    training row left."""
    n_test = int(round_half_up(n * test))
    if test > 0:
        n_test = max(n_test, 1)
    n_test = min(n_test, n - 1)
    n_valid = int(round_half_up(n * valid))
    if valid > 0:
        n_valid = max(n_valid, 1)
    return max(min(n_valid, n - 1 - n_test), 0), n_test


def build_temporal(cfg: Any) -> Any:
    """Global temporal split: the latest interactions (over all users) are held out.

    Parameters:
        ratios ([train, valid, test], default [0.8, 0.1, 0.1]): the last
            ``round(N * test)`` interactions by time form test, the
            ``round(N * valid)`` before them valid (at least one each when the
            ratio is positive), the rest train.

    Interactions sharing the test boundary timestamp all join test, and valid
    is then counted back from the first test row; ties at the valid boundary
    join valid.

    So ``max(train ts) < min(valid ts)`` and ``max(valid ts) < min(test ts)``;
    train can be slightly smaller than the ratios ask. Users
    are not balanced: a user can be only in train, or only in test.
    """
    check_keys(cfg, "temporal", ("ratios",))
    _, valid, test = get_ratios(cfg, "temporal")

    def temporal(ds: Dataset) -> Split:
        require_rows(ds, "temporal")
        ts = require_timestamps(ds, "temporal")
        n = len(ts)
        n_valid, n_test = temporal_sizes(n, valid, test)
        kth = _kth_smallest(ts)
        part = np.full(n, TRAIN, dtype=np.int8)
        is_test = np.zeros(n, dtype=bool)
        if n_test > 0:
            test_cut = kth(n - n_test)
            is_test = (ts >= test_cut).to_numpy(dtype=bool)
            part[is_test] = TEST
            log.info("split 'temporal': test from %s", test_cut)
        # valid is counted back from where test really starts (after boundary ties)
        n_before = int((~is_test).sum())
        n_valid = min(n_valid, n_before - 1)
        if n_valid > 0:
            valid_cut = kth(n_before - n_valid)
            is_valid = (ts >= valid_cut).to_numpy(dtype=bool) & ~is_test
            part[is_valid] = VALID
            log.info("split 'temporal': valid from %s", valid_cut)
        if not (part == TRAIN).any():
            raise DataError(
                f"split 'temporal': no interaction is earlier than the first cut "
                f"({ts.nunique()} distinct timestamps in {n} rows), so train would be empty. "
                f"Lower the valid/test ratios or use split=random."
            )
        return make_split(ds, part, "temporal")

    return temporal

"""``leave_one_out``: hold out each user's last event(s) by time."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from recframe.api import Dataset, Split, lexsort_stable
from recframe_splitters._common import (
    TEST,
    TRAIN,
    VALID,
    check_keys,
    get_int,
    log,
    make_split,
    positions_in_groups,
    require_rows,
    require_timestamps,
    user_codes,
)


def build_leave_one_out(cfg: Any) -> Any:
    """Per user, the last ``n_test`` events go to test and the ``n_valid`` before to valid.

    Events are ordered by timestamp, ties by original row order. Users with
    fewer than ``n_test + n_valid + 1`` events stay entirely in train (they
    are counted in the log), so every evaluated user has a train history.

    Parameters:
        n_test (int >= 1, default 1): events per user held out for test.
        n_valid (int >= 0, default 1): events per user held out for validation.
    """
    check_keys(cfg, "leave_one_out", ("n_test", "n_valid"))
    n_test = get_int(cfg, "n_test", 1, "leave_one_out", minimum=1)
    n_valid = get_int(cfg, "n_valid", 1, "leave_one_out", minimum=0)

    def leave_one_out(ds: Dataset) -> Split:
        require_rows(ds, "leave_one_out")
        ts = require_timestamps(ds, "leave_one_out")
        codes = user_codes(ds.interactions)
        n = len(codes)
        try:  # by user, then time, then row
            order = lexsort_stable((ts.to_numpy(), codes))
        except TypeError:  # timestamps numpy cannot order (e.g. mixed objects): pandas can
            keys = pd.DataFrame({"u": codes, "t": ts.array, "p": np.arange(n)})
            order = keys.sort_values(["u", "t", "p"], kind="stable")["p"].to_numpy()
        sorted_codes = codes[order]
        pos = positions_in_groups(sorted_codes)
        sizes = np.bincount(codes)
        size = sizes[sorted_codes]
        eligible = size >= n_test + n_valid + 1
        part_sorted = np.where(
            eligible & (pos >= size - n_test),
            TEST,
            np.where(eligible & (pos >= size - n_test - n_valid), VALID, TRAIN),
        )
        part = np.empty(n, dtype=np.int8)
        part[order] = part_sorted
        short = int((sizes < n_test + n_valid + 1).sum())
        log.info(
            "split 'leave_one_out': %d of %d users have fewer than %d events and stay in "
            "train only", short, len(sizes), n_test + n_valid + 1,
        )
        return make_split(ds, part, "leave_one_out")

    return leave_one_out

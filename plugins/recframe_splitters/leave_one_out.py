"""``leave_one_out``: hold out each user's last event(s) by time."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from recframe.api import DataError, Dataset, Split, lexsort_stable, positions_in_groups
from recframe_splitters._common import (
    TEST,
    TRAIN,
    VALID,
    check_keys,
    get_int,
    log,
    make_split,
    require_rows,
    require_timestamps,
    user_codes,
)

#: the "most users too short" check needs this many users (a handful says nothing)
MIN_USERS_CHECKED = 20


def build_leave_one_out(cfg: Any) -> Any:
    """Per user, the last ``n_test`` events go to test and the ``n_valid`` before to valid.

    Events are ordered by timestamp, ties by original row order. Users with
    fewer than ``n_test + n_valid + 1`` events stay entirely in train (they
    are counted in the log), so every evaluated user has a train history. When more
    than half of the users (of at least :data:`MIN_USERS_CHECKED`) have no more than
    ``n_test`` events, i.e. holding out their last events would leave them no train
    item, the data does not suit leave-one-out: a :class:`DataError` says so.

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
        check_history_lengths(ds, sizes, n_test)
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


def check_history_lengths(ds: Dataset, sizes: np.ndarray, n_test: int) -> None:
    """A :class:`DataError` when most users have too few events to hold out ``n_test``."""
    n_users = len(sizes)
    short = int((sizes <= n_test).sum())
    if n_users < MIN_USERS_CHECKED or 2 * short <= n_users:
        return
    raise DataError(
        f"split 'leave_one_out': {short} of {n_users} users ({100 * short / n_users:.0f}%) "
        f"of {ds.source or ds.name} have at most {n_test} interaction(s) (n_test={n_test}): "
        f"holding out their last events would leave them no train item, so leave-one-out "
        f"cannot evaluate most users. Use split=random, or keep users with enough "
        f"history (preprocess=implicit_5core, or a kcore step with a higher user "
        f"minimum); check that the user column is right (one id per user, not per row).")

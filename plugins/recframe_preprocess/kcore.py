"""``kcore``: keep the dense core where every user and item has enough interactions."""

from __future__ import annotations

from typing import Any

import numpy as np

from recframe.api import ITEM, USER, Dataset
from recframe_preprocess._params import check_keys, get_int, log, report_dropped
from recframe_preprocess.clean import id_codes


def build_kcore(cfg: Any) -> Any:
    """Iteratively drop users with < ``user_min`` and items with < ``item_min`` interactions.

    Dropping a user can push an item below its threshold and vice versa, so
    the filter repeats until nothing changes (a fixed point: applying the step
    again is a no-op). Counts are rows, so run ``dedup`` first if repeated
    user-item pairs should count once.

    Parameters:
        user_min (int >= 0, default 5): minimum interactions per user.
        item_min (int >= 0, default 5): minimum interactions per item.

    Only the interactions are filtered; ``items`` / ``users`` feature frames
    are kept as they are.
    """
    check_keys(cfg, "kcore", ("user_min", "item_min"))
    user_min = get_int(cfg, "user_min", 5, "kcore")
    item_min = get_int(cfg, "item_min", 5, "kcore")

    def kcore(ds: Dataset) -> Dataset:
        df = ds.interactions
        ucodes, n_users = id_codes(df[USER])
        icodes, n_items = id_codes(df[ITEM])
        ucount = np.bincount(ucodes, minlength=n_users)
        icount = np.bincount(icodes, minlength=n_items)
        users_before, items_before = int((ucount > 0).sum()), int((icount > 0).sum())
        alive = np.ones(len(df), dtype=bool)
        n_alive, rounds = len(df), 0
        while True:
            rounds += 1
            if rounds > 1:
                ucount = np.bincount(ucodes[alive], minlength=n_users)
                icount = np.bincount(icodes[alive], minlength=n_items)
            new = alive & (ucount >= user_min)[ucodes] & (icount >= item_min)[icodes]
            n_new = int(new.sum())
            if n_new == n_alive:
                break
            alive, n_alive = new, n_new
        out = df if n_alive == len(df) else df.take(np.flatnonzero(alive))
        log.info(
            "preprocess 'kcore': fixed point after %d round(s); users %d -> %d, items %d -> %d",
            rounds, users_before, int((ucount > 0).sum()), items_before, int((icount > 0).sum()),
        )
        report_dropped(
            "kcore", len(df), len(out), f"user_min={user_min}, item_min={item_min}"
        )
        return ds.with_interactions(out)

    return kcore

"""``kcore``: keep the dense core where every user and item has enough interactions."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from recframe.api import ITEM, USER, Dataset
from recframe_preprocess._params import check_keys, get_int, log, report_dropped


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
        ucodes, uniq_u = pd.factorize(df[USER], use_na_sentinel=False)
        icodes, uniq_i = pd.factorize(df[ITEM], use_na_sentinel=False)
        alive = np.ones(len(df), dtype=bool)
        rounds = 0
        while True:
            rounds += 1
            ucount = np.bincount(ucodes[alive], minlength=len(uniq_u))
            icount = np.bincount(icodes[alive], minlength=len(uniq_i))
            new = alive & (ucount[ucodes] >= user_min) & (icount[icodes] >= item_min)
            if new.sum() == alive.sum():
                break
            alive = new
        out = df[alive]
        log.info(
            "preprocess 'kcore': fixed point after %d round(s); users %d -> %d, items %d -> %d",
            rounds, len(uniq_u), len(np.unique(ucodes[alive])),
            len(uniq_i), len(np.unique(icodes[alive])),
        )
        report_dropped(
            "kcore", len(df), len(out), f"user_min={user_min}, item_min={item_min}"
        )
        return ds.with_interactions(out)

    return kcore

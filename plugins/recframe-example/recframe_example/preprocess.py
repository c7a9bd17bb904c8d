"""``cap_user_history``: keep each user's most recent ``max_per_user`` interactions.

Heavy users can hold a large share of all interactions and dominate training;
capping their history is a common remedy. A pure step: the input is never
modified and surviving rows keep their index labels and order.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from recframe.api import TIMESTAMP, USER, ConfigError, Dataset

log = logging.getLogger(__name__)


def build_cap_user_history(cfg: Any) -> Any:
    """Build the step from its ``preprocess`` entry.

    Parameters:
        max_per_user (int >= 1, default 50): interactions kept per user: the
            latest by timestamp (ties and missing timestamps: later rows count
            as more recent; missing timestamps are oldest), or the last rows
            when the data has no timestamps.
    """
    unknown = sorted(set(map(str, cfg)) - {"name", "max_per_user"}) if cfg else []
    if unknown:
        raise ConfigError(f"preprocess step 'cap_user_history': unknown key(s) {unknown}; "
                          f"allowed: max_per_user")
    cap = cfg.get("max_per_user", 50) if cfg else 50
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
        raise ConfigError(f"preprocess step 'cap_user_history': max_per_user must be an "
                          f"integer >= 1, got {cap!r}")

    def cap_user_history(ds: Dataset) -> Dataset:
        df = ds.interactions
        position = np.arange(len(df))
        order = pd.DataFrame({"user": df[USER].to_numpy(), "position": position})
        if ds.has_timestamps:
            order["time"] = df[TIMESTAMP].to_numpy()
            order = order.sort_values(["time", "position"], kind="stable", na_position="first")
        # rank 0 = the user's most recent interaction
        newest_first = order.groupby("user", sort=False, dropna=False).cumcount(ascending=False)
        keep = np.zeros(len(df), dtype=bool)
        keep[order["position"].to_numpy()[newest_first.to_numpy() < cap]] = True
        out = df[keep]
        log.info("preprocess 'cap_user_history': dropped %d of %d rows (max_per_user=%d); "
                 "%d left", len(df) - len(out), len(df), cap, len(out))
        return ds.with_interactions(out)

    return cap_user_history

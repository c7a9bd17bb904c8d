"""Cleaning steps: ``drop_invalid`` and ``dedup``.

Both return pure functions ``Dataset -> Dataset``: the input frame is never
modified and surviving rows keep their original index label and order, so
later errors can point at source rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from recframe.api import ITEM, RATING, TIMESTAMP, USER, Dataset
from recframe_preprocess._params import check_keys, report_dropped


def _invalid(values: pd.Series) -> np.ndarray:
    """Null everywhere; additionally +-inf for numeric columns."""
    if pd.api.types.is_numeric_dtype(values.dtype):
        as_float = values.to_numpy(dtype="float64", na_value=np.nan)
        return ~np.isfinite(as_float)
    return values.isna().to_numpy(dtype=bool)


def build_drop_invalid(cfg: Any) -> Any:
    """Drop rows with a null user/item id, or a null/NaN/inf rating or timestamp.

    Ratings and timestamps are checked only if present. Numeric columns drop
    NaN and +-inf; other dtypes (e.g. datetimes) drop nulls (NaT). Nothing is
    coerced: a non-numeric rating column is left as it is. No parameters.
    """
    check_keys(cfg, "drop_invalid", ())

    def drop_invalid(ds: Dataset) -> Dataset:
        df = ds.interactions
        bad_ids = df[USER].isna().to_numpy(dtype=bool) | df[ITEM].isna().to_numpy(dtype=bool)
        bad = bad_ids.copy()
        reasons = [f"{int(bad_ids.sum())} null ids"]
        for col in (RATING, TIMESTAMP):
            if col in df.columns:
                bad_col = _invalid(df[col])
                reasons.append(f"{int(bad_col.sum())} invalid {col}s")
                bad |= bad_col
        out = df[~bad]
        report_dropped("drop_invalid", len(df), len(out), ", ".join(reasons))
        return ds.with_interactions(out)

    return drop_invalid


def build_dedup(cfg: Any) -> Any:
    """Keep one row per (user, item) pair.

    With timestamps the latest event is kept (ties: the last occurrence in
    row order; missing timestamps count as oldest); without timestamps the
    last occurrence. Surviving rows keep their original order and index.
    No parameters.
    """
    check_keys(cfg, "dedup", ())

    def dedup(ds: Dataset) -> Dataset:
        df = ds.interactions
        n = len(df)
        if ds.has_timestamps:
            # stable sort: among equal timestamps the original row order is kept
            order = (
                df[TIMESTAMP]
                .reset_index(drop=True)
                .sort_values(kind="stable", na_position="first")
                .index.to_numpy()
            )
        else:
            order = np.arange(n)
        dup_sorted = df[[USER, ITEM]].iloc[order].duplicated(keep="last").to_numpy()
        keep = np.ones(n, dtype=bool)
        keep[order[dup_sorted]] = False
        out = df[keep]
        report_dropped("dedup", n, len(out), "repeated user-item pairs")
        return ds.with_interactions(out)

    return dedup

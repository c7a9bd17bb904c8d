"""Cleaning steps: ``drop_invalid`` and ``dedup``.

Both return pure functions ``Dataset -> Dataset``: the input frame is never
modified and surviving rows keep their original index label and order, so
later errors can point at source rows.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from recframe.api import ITEM, LABEL, RATING, TIMESTAMP, USER, Dataset, stable_argsort
from recframe_preprocess._params import check_keys, report_dropped

log = logging.getLogger(__name__)


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


def id_codes(values: pd.Series) -> tuple[np.ndarray, int]:
    """Int64 codes of an id column (equal ids, equal codes; missing is one more id)
    and their upper bound. Integer ids of a compact range are offset, not hashed."""
    arr = values.to_numpy() if isinstance(values.dtype, np.dtype) and \
        values.dtype.kind in "iu" else None
    if arr is not None and len(arr):
        lo, hi = int(arr.min()), int(arr.max())
        if hi - lo < max(2 * len(arr), 1 << 20):
            return (arr - arr.dtype.type(lo)).astype(np.int64, copy=False), hi - lo + 1
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    return codes.astype(np.int64, copy=False), max(len(uniques), 1)


def pair_codes(users: pd.Series, items: pd.Series) -> np.ndarray:
    """One int64 per row, equal exactly when the rows' (user, item) pairs are equal."""
    u, _ = id_codes(users)
    i, n_items = id_codes(items)
    if u.max(initial=0) < (2**62) // n_items:
        return u * n_items + i
    codes, _ = pd.MultiIndex.from_arrays([u, i]).factorize()
    return codes.astype(np.int64, copy=False)


def _repeated_rows_to_drop(df: pd.DataFrame, has_timestamps: bool) -> np.ndarray:
    """Positions of the rows ``dedup`` drops: all but the latest row of each repeated pair.

    The pairs are grouped by one stable sort of their codes; only the (usually few)
    rows of repeated pairs are then ordered by ``(timestamp, position)``, missing
    timestamps first, and the last of each pair is kept.
    """
    key = pair_codes(df[USER], df[ITEM])
    order = stable_argsort(key)  # grouped by pair, row order within a pair
    ordered = key[order]
    same = ordered[1:] == ordered[:-1]
    if not same.any():
        return np.zeros(0, dtype=np.int64)
    repeated = np.zeros(len(key), dtype=bool)
    repeated[1:] = same
    repeated[:-1] |= same
    rows = order[repeated]
    groups = pd.Series(ordered[repeated])
    if has_timestamps:
        sub = pd.DataFrame({"g": groups, "t": df[TIMESTAMP].take(rows).array, "r": rows})
        sub = sub.sort_values(["g", "t", "r"], na_position="first", kind="stable")
        rows, groups = sub["r"].to_numpy(), sub["g"]
    last = ~groups.duplicated(keep="last").to_numpy()
    return rows[~last]


def build_dedup(cfg: Any) -> Any:
    """Keep one row per (user, item) pair.

    With timestamps the latest event is kept (ties: the last occurrence in
    row order; missing timestamps count as oldest); without timestamps the
    last occurrence. Surviving rows keep their original order and index.
    No parameters.

    Labeled impressions (a ``label`` column, the CTR protocol) pass unchanged: a
    repeated (user, item) impression is data there (shown twice, clicked once), so
    the step logs that it keeps them rather than drop logged rows.
    """
    check_keys(cfg, "dedup", ())

    def dedup(ds: Dataset) -> Dataset:
        df = ds.interactions
        if LABEL in df.columns:
            log.info("dedup: labeled impressions are kept as logged (repeats are data)")
            return ds
        n = len(df)
        drop = _repeated_rows_to_drop(df, ds.has_timestamps)
        if len(drop) == 0:
            report_dropped("dedup", n, n, "repeated user-item pairs")
            return ds.with_interactions(df)
        keep = np.ones(n, dtype=bool)
        keep[drop] = False
        out = df.take(np.flatnonzero(keep))
        report_dropped("dedup", n, len(out), "repeated user-item pairs")
        return ds.with_interactions(out)

    return dedup

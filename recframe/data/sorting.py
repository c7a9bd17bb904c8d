"""Fast stable orderings of large key columns (tens of millions of rows).

``np.argsort(kind="stable")`` and ``np.lexsort`` are comparison sorts of row
indices: at 20M rows they take several seconds per key. Integer keys of a
bounded range are sorted here instead by packing ``(key - min) << b | row`` into
one int64 and sorting those values with ``np.sort`` (vectorized, SIMD): the row
number in the low bits makes the result stable, and the packed values are
distinct. Other keys fall back to numpy's own sorts, so the results are always
exactly those of ``np.argsort(kind="stable")`` / ``np.lexsort``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["lexsort_stable", "positions_in_groups", "stable_argsort"]


def _as_sortable(values: np.ndarray | pd.Series) -> np.ndarray:
    """A numpy array ordering like ``values``: datetimes as int64, bools as uint8."""
    arr = values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values)
    if arr.dtype.kind in "mM":
        return arr.view(np.int64)
    if arr.dtype.kind == "b":
        return arr.view(np.uint8)
    return arr


def _packed_order(arr: np.ndarray) -> np.ndarray | None:
    """Stable argsort of integer ``arr`` by one ``np.sort`` of packed int64 values, or None
    when the key range and the row count do not fit in 63 bits together."""
    n = len(arr)
    lo, hi = int(arr.min()), int(arr.max())
    row_bits = max(1, (n - 1).bit_length())
    if (hi - lo).bit_length() + row_bits > 63:
        return None
    # (arr - lo) is in [0, hi - lo] even if the int64 subtraction wraps around
    packed = (arr - arr.dtype.type(lo)).astype(np.int64, copy=False)
    packed <<= row_bits
    packed |= np.arange(n, dtype=np.int64)
    packed.sort()
    packed &= (1 << row_bits) - 1
    return packed


def stable_argsort(values: np.ndarray | pd.Series) -> np.ndarray:
    """``np.argsort(values, kind="stable")``, faster for integer and float keys.

    Integers (and datetimes, bools) of a range that fits use one packed ``np.sort``;
    floats use the unstable default sort when the sorted keys hold neither ties
    nor NaN (then every order is the stable one), else the stable sort.
    """
    arr = _as_sortable(values)
    n = len(arr)
    if n < 2:
        return np.arange(n, dtype=np.intp)
    if arr.dtype.kind in "iu":
        order = _packed_order(arr)
        if order is not None:
            return order.astype(np.intp, copy=False)
    elif arr.dtype.kind == "f":
        order = np.argsort(arr)
        ordered = arr[order]
        if not np.isnan(ordered[-1]) and not (ordered[1:] == ordered[:-1]).any():
            return order
    return np.argsort(arr, kind="stable")


def lexsort_stable(keys: Sequence[np.ndarray | pd.Series]) -> np.ndarray:
    """``np.lexsort(keys)``: order by the last key, then the one before, ..., then row.

    Least-significant key first, as ``np.lexsort``; each pass is a
    :func:`stable_argsort` of the key gathered in the current order.
    """
    keys = [_as_sortable(k) for k in keys]
    if not keys:
        raise ValueError("lexsort_stable needs at least one key")
    order = stable_argsort(keys[0])
    for key in keys[1:]:
        order = order[stable_argsort(key[order])]
    return order


def positions_in_groups(sorted_codes: np.ndarray) -> np.ndarray:
    """0-based position of each row within its run of equal codes (input sorted by code),
    e.g. each interaction's index in its user's time-ordered history."""
    n = len(sorted_codes)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    lengths = np.diff(np.r_[starts, n])
    return np.arange(n) - np.repeat(starts, lengths)

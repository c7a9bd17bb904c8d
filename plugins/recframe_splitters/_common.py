"""Shared helpers of the splitters: parameter checks and building the Split."""

from __future__ import annotations

import logging
import numbers
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from recframe.api import (
    TIMESTAMP,
    USER,
    ConfigError,
    DataError,
    Dataset,
    Split,
    check_known_keys,
    is_finite_number,
    read_key,
)

log = logging.getLogger("recframe_splitters")

TRAIN, VALID, TEST = 0, 1, 2


def where(split: str) -> str:
    return f"split {split!r}"


def check_keys(cfg: Any, split: str, allowed: Iterable[str]) -> None:
    """Reject keys the splitter does not know (``name`` is always allowed)."""
    check_known_keys(cfg, where(split), allowed, f"{{name: {split}}}")


def _get(cfg: Any, key: str, default: Any, split: str) -> Any:
    return read_key(cfg, key, default, where(split))


_is_number = is_finite_number


def get_int(cfg: Any, key: str, default: int, split: str, minimum: int = 0) -> int:
    value = _get(cfg, key, default, split)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ConfigError(f"{where(split)}: {key} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def get_ratios(cfg: Any, split: str, default: Sequence[float] = (0.8, 0.1, 0.1)) -> tuple:
    """``ratios: [train, valid, test]``: three non-negative numbers summing to 1."""
    value = _get(cfg, "ratios", list(default), split)
    expected = "a list of 3 non-negative numbers [train, valid, test] summing to 1"
    if (
        isinstance(value, str)
        or not isinstance(value, Sequence)
        or len(value) != 3
        or not all(_is_number(v) for v in value)
    ):
        raise ConfigError(f"{where(split)}: ratios must be {expected}, got {_show(value)}")
    ratios = tuple(float(v) for v in value)
    if any(r < 0 for r in ratios):
        raise ConfigError(f"{where(split)}: ratios must be {expected}, got {list(ratios)}")
    if abs(sum(ratios) - 1.0) > 1e-6:
        raise ConfigError(
            f"{where(split)}: ratios must be {expected}; {list(ratios)} sums to {sum(ratios):g}"
        )
    return ratios


def _show(value: Any) -> str:
    if isinstance(value, Sequence) and not isinstance(value, str):
        return repr(list(value))
    return repr(value)


def round_half_up(x: Any) -> Any:
    """Round halves up (0.5 -> 1), unlike Python's and numpy's half-to-even."""
    return np.floor(np.asarray(x, dtype="float64") + 0.5 + 1e-9).astype(np.int64)


def require_rows(ds: Dataset, split: str) -> None:
    if len(ds.interactions) == 0:
        raise DataError(
            f"{where(split)}: dataset {ds.name!r} has no interactions to split; "
            f"check the preprocess steps (e.g. kcore thresholds)."
        )


def require_timestamps(ds: Dataset, split: str) -> pd.Series:
    """The timestamp column; DataError if it is absent or has missing values."""
    df = ds.interactions
    if not ds.has_timestamps:
        raise DataError(
            f"split {split!r} needs a timestamp column; your data has columns "
            f"{[str(c) for c in df.columns]}; use split=random"
        )
    ts = df[TIMESTAMP]
    n_missing = int(ts.isna().sum())
    if n_missing:
        raise DataError(
            f"split {split!r}: {n_missing} interaction(s) have a missing timestamp; "
            f"add the drop_invalid preprocess step or use split=random"
        )
    return ts


def user_codes(df: pd.DataFrame) -> np.ndarray:
    codes, _ = pd.factorize(df[USER], use_na_sentinel=False)
    return codes


def make_split(ds: Dataset, part: np.ndarray, split: str) -> Split:
    """Build the Split from one part label (TRAIN/VALID/TEST) per interaction row.

    Boolean masks keep the original index and row order in every part, and
    each row lands in exactly one part.
    """
    df = ds.interactions
    parts = [ds.with_interactions(df.take(np.flatnonzero(part == k)))
             for k in (TRAIN, VALID, TEST)]
    sizes = [len(p) for p in parts]
    log.info(
        "split %r: train %d, valid %d, test %d interactions", split, *sizes,
    )
    for label, size in zip(("valid", "test"), sizes[1:], strict=True):
        if size == 0:
            log.warning("split %r: the %s part is empty", split, label)
    return Split(train=parts[0], valid=parts[1], test=parts[2], name=split)

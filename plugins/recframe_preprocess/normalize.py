"""``normalize``: rescale numeric columns of the interactions or a feature frame."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from recframe.api import DataError, Dataset
from recframe_preprocess._params import check_keys, get_choice, get_str_list, log

METHODS = ("minmax", "zscore")
TARGETS = ("interactions", "items", "users")


def _scale(col: pd.Series, method: str) -> pd.Series:
    values = col.to_numpy(dtype="float64", na_value=np.nan)
    if np.isnan(values).all():  # nothing to scale (also avoids all-NaN warnings)
        return pd.Series(values, index=col.index, name=col.name)
    if method == "minmax":
        lo, hi = np.nanmin(values), np.nanmax(values)
        spread = hi - lo
        center = lo
    else:
        center, spread = np.nanmean(values), np.nanstd(values)  # population std (ddof=0)
    # a constant column becomes zeros (NaN stays NaN): no division by zero
    scaled = (values - center) / spread if spread > 0 else (values - center) * 0.0
    return pd.Series(scaled, index=col.index, name=col.name)


def normalize_settings(cfg: Any) -> tuple[list[str], str, str]:
    """``(columns, method, target)`` of a ``normalize`` step, checked."""
    check_keys(cfg, "normalize", ("columns", "method", "target"))
    columns = get_str_list(cfg, "columns", "normalize")
    method = get_choice(cfg, "method", "minmax", METHODS, "normalize")
    target = get_choice(cfg, "target", "interactions", TARGETS, "normalize")
    return columns, method, target


def build_normalize(cfg: Any) -> Any:
    """Rescale numeric ``columns`` of one frame.

    Parameters:
        columns (list of str, required): the columns to rescale.
        method (minmax | zscore, default minmax): ``minmax`` maps to [0, 1];
            ``zscore`` subtracts the mean and divides by the population
            standard deviation. A constant column becomes all zeros.
        target (interactions | items | users, default interactions): which
            frame of the dataset holds the columns.

    Missing values stay missing and are ignored by the statistics. Rows are
    never dropped. Unknown or non-numeric columns fail with :class:`DataError`.
    """
    columns, method, target = normalize_settings(cfg)

    def normalize(ds: Dataset) -> Dataset:
        frame = getattr(ds, target)
        if frame is None:
            raise DataError(
                f"preprocess step 'normalize': target {target!r} but dataset "
                f"{ds.name!r} has no {target} feature frame."
            )
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise DataError(
                f"preprocess step 'normalize': column(s) {missing} not in the {target} frame; "
                f"available columns: {[str(c) for c in frame.columns]}"
            )
        not_numeric = [
            c for c in columns
            if not pd.api.types.is_numeric_dtype(frame[c].dtype)
            or pd.api.types.is_bool_dtype(frame[c].dtype)
        ]
        if not_numeric:
            raise DataError(
                f"preprocess step 'normalize': column(s) {not_numeric} of the {target} frame "
                f"are not numeric ({', '.join(str(frame[c].dtype) for c in not_numeric)})."
            )
        out = frame.assign(**{c: _scale(frame[c], method) for c in columns})
        log.info(
            "preprocess 'normalize': %s-scaled %s of %s; dropped 0 rows",
            method, columns, target,
        )
        return replace(ds, **{target: out})

    return normalize

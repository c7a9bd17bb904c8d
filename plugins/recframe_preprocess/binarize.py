"""``binarize``: turn explicit ratings into implicit feedback."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from recframe.api import LABEL, RATING, DataError, Dataset
from recframe_preprocess._params import check_keys, get_bool, get_number, report_dropped

log = logging.getLogger(__name__)


def build_binarize(cfg: Any) -> Any:
    """Keep interactions with ``rating >= threshold`` and set their rating to 1.0.

    Parameters:
        threshold (number, default 4.0): the smallest rating that counts as positive.
        keep_negatives (bool, default false): if true no row is dropped; positives
            get rating 1.0 and all other rows (including missing ratings) 0.0,
            for models trained on labelled points.

    Data without a rating column is implicit feedback: the step logs so (a warning)
    and keeps every row as a positive. Non-numeric ratings are a :class:`DataError`.
    Labeled impressions (a 0/1 ``label`` column: the CTR protocol) are already
    binary: the step logs so and keeps every row (it never drops an unclicked
    impression, which the click model needs). So is implicit data without ratings
    whose loader says every row is a positive (``Dataset.meta["implicit"]``, e.g.
    ``seq_txt``): every row is kept.
    """
    check_keys(cfg, "binarize", ("threshold", "keep_negatives"))
    threshold = get_number(cfg, "threshold", 4.0, "binarize")
    keep_negatives = get_bool(cfg, "keep_negatives", False, "binarize")

    def binarize(ds: Dataset) -> Dataset:
        df = ds.interactions
        if LABEL in df.columns:
            log.info("binarize: the data is labeled (column %r); rows kept as they are", LABEL)
            return ds
        if not ds.has_ratings and ds.meta.get("implicit", False):
            log.info("binarize: %s is implicit (every row a positive); rows kept as they are",
                     ds.name)
            return ds
        if not ds.has_ratings:
            log.warning(
                "binarize: %s has no rating column (columns %s): treated as implicit "
                "feedback, every interaction a positive; rows kept as they are. To binarize "
                "ratings, map the rating column with dataset.columns.rating.",
                ds.source or ds.name, list(df.columns))
            return ds
        ratings = df[RATING]
        if not pd.api.types.is_numeric_dtype(ratings.dtype) or pd.api.types.is_bool_dtype(
            ratings.dtype
        ):
            raise DataError(
                f"preprocess step 'binarize' needs numeric ratings; column {RATING!r} has "
                f"dtype {ratings.dtype}."
            )
        positive = (ratings >= threshold).to_numpy(dtype=bool, na_value=False)
        if keep_negatives:
            out = df.assign(**{RATING: np.where(positive, 1.0, 0.0)})
            why = f"threshold={threshold:g}, keep_negatives: {int(positive.sum())} positives"
        else:
            out = df.take(np.flatnonzero(positive)).assign(**{RATING: 1.0})
            why = f"rating < {threshold:g}"
        report_dropped("binarize", len(df), len(out), why)
        return ds.with_interactions(out)

    return binarize

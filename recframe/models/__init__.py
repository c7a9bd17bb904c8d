"""Model contract shared by every model plugin."""

from recframe.models.base import (
    SEQUENCE_ROWS,
    FoldInNotSupported,
    RecModel,
    TrainFormat,
    dense_history,
    least_squares_fold_in,
)

__all__ = [
    "SEQUENCE_ROWS", "FoldInNotSupported", "RecModel", "TrainFormat", "dense_history",
    "least_squares_fold_in",
]

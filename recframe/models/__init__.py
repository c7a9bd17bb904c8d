"""Model contract shared by every model plugin."""

from recframe.models.base import (
    FoldInNotSupported,
    RecModel,
    TrainFormat,
    dense_history,
    least_squares_fold_in,
)

__all__ = [
    "FoldInNotSupported", "RecModel", "TrainFormat", "dense_history", "least_squares_fold_in",
]

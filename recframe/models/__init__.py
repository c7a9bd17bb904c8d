"""Model contract shared by every model plugin."""

from recframe.models.base import (
    SEQUENCE_ROWS,
    FoldInNotSupported,
    RecModel,
    TrainFormat,
    UnknownTrainFormat,
    check_train_format,
    dense_history,
    history_matmul,
    least_squares_fold_in,
)
from recframe.models.ctr import CTRModel
from recframe.models.fields import FieldEmbedding, FieldLinear

__all__ = [
    "SEQUENCE_ROWS", "FoldInNotSupported", "RecModel", "TrainFormat", "dense_history",
    "history_matmul", "UnknownTrainFormat", "check_train_format",
    "least_squares_fold_in", "CTRModel", "FieldEmbedding", "FieldLinear",
]

"""Model contract shared by every model plugin."""

from recframe.models.base import RecModel, TrainFormat, dense_history

__all__ = ["RecModel", "TrainFormat", "dense_history"]

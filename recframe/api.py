"""The public API for plugin authors: import everything a plugin needs from here."""

from recframe.data import (
    ITEM,
    RATING,
    TIMESTAMP,
    USER,
    DataInfo,
    Dataset,
    FeatureSpec,
    RecData,
    Split,
)
from recframe.errors import ConfigError, DataError, RecframeError
from recframe.eval import MetricInput
from recframe.models import RecModel, TrainFormat, dense_history
from recframe.plugin import (
    DatasetSpec,
    MetricSpec,
    ModelSpec,
    PreprocessorSpec,
    SplitterSpec,
    hookimpl,
)

__all__ = [
    "ITEM", "RATING", "TIMESTAMP", "USER",
    "ConfigError", "DataError", "DataInfo", "Dataset", "DatasetSpec", "FeatureSpec",
    "MetricInput", "MetricSpec", "ModelSpec", "PreprocessorSpec", "RecData", "RecModel",
    "RecframeError", "Split", "SplitterSpec", "TrainFormat", "dense_history", "hookimpl",
]

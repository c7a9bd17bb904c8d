"""Data types and encoding."""

from recframe.data.encode import DataInfo, Events, FeatureSpec, RecData, encode
from recframe.data.fields import FieldSpec
from recframe.data.types import ITEM, LABEL, RATING, TIMESTAMP, USER, Dataset, Split

__all__ = [
    "ITEM", "LABEL", "RATING", "TIMESTAMP", "USER",
    "DataInfo", "Dataset", "Events", "FeatureSpec", "FieldSpec", "RecData", "Split", "encode",
]

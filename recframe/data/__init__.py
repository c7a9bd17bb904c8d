"""Data types and encoding."""

from recframe.data.encode import DataInfo, Events, FeatureSpec, RecData, encode
from recframe.data.types import ITEM, RATING, TIMESTAMP, USER, Dataset, Split

__all__ = [
    "ITEM", "RATING", "TIMESTAMP", "USER",
    "DataInfo", "Dataset", "Events", "FeatureSpec", "RecData", "Split", "encode",
]

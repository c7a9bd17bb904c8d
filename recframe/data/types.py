"""Raw data types: :class:`Dataset` (pandas frames) and :class:`Split`."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from recframe.errors import DataError

USER, ITEM, RATING, TIMESTAMP = "user_id", "item_id", "rating", "timestamp"
#: the 0/1 click label of logged impressions (the CTR protocol)
LABEL = "label"
REQUIRED_COLUMNS = (USER, ITEM)
OPTIONAL_COLUMNS = (RATING, TIMESTAMP)


@dataclass(frozen=True)
class Dataset:
    """Interactions plus optional feature frames.

    ``interactions`` has columns ``user_id, item_id`` and optionally ``rating``
    and ``timestamp``. ``items`` / ``users`` are feature frames indexed by
    ``item_id`` / ``user_id``. ``source`` says where the data came from (used
    in error messages and the protocol record). Frozen: preprocessors return
    new instances via :meth:`with_interactions`.
    """

    interactions: pd.DataFrame
    items: pd.DataFrame | None = None
    users: pd.DataFrame | None = None
    name: str = "dataset"
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [c for c in REQUIRED_COLUMNS if c not in self.interactions.columns]
        if missing:
            raise DataError(
                f"{self.source or self.name}: interactions lack column(s) {missing}; "
                f"have {list(self.interactions.columns)}. Map your columns to "
                f"{list(REQUIRED_COLUMNS)} (for the csv dataset: dataset.columns.*)."
            )

    @property
    def has_timestamps(self) -> bool:
        return TIMESTAMP in self.interactions.columns

    @property
    def has_ratings(self) -> bool:
        return RATING in self.interactions.columns

    def with_interactions(self, interactions: pd.DataFrame, **changes: Any) -> Dataset:
        return replace(self, interactions=interactions, **changes)

    def __len__(self) -> int:
        return len(self.interactions)


@dataclass(frozen=True)
class Split:
    """Train/valid/test parts of one :class:`Dataset`, sharing feature frames."""

    train: Dataset
    valid: Dataset
    test: Dataset
    name: str = ""
    #: a cold-start split says what it holds out of train: ``"items"`` (some items occur
    #: only in valid/test) or ``"users"`` (some users do); ``""`` for an ordinary split.
    #: The evaluator then reports cold and warm targets separately (docs/cold_start.md).
    cold_start: str = ""

    def parts(self) -> dict[str, Dataset]:
        return {"train": self.train, "valid": self.valid, "test": self.test}

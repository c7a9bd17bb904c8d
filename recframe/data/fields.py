"""Typed feature fields: declarations, encoded specs, and fitting on the train part.

A *field* is one input of a feature-aware model (a click model, a content
model): a column of the interaction rows (owner ``context``), of the item
feature frame (owner ``item``) or of the user feature frame (owner ``user``).
Its kind says how it is encoded:

``categorical``
    one value per row; ``int64`` codes, ``0`` = padding/missing, ``1`` = out of
    vocabulary (unseen in train, or rarer than ``min_count``), ``2..`` = values.
``multi_categorical``
    several values per row (a list column, or a string cut at ``sep``, e.g.
    ``Action|Comedy``); ``int64 [N, max_len]`` codes, right-padded with ``0``.
``numeric``
    a number; ``float32`` after normalization fitted on train (``standard``,
    ``minmax``, ``log`` = ``log1p`` then standard, ``none``); missing -> ``0``
    after normalization. ``buckets > 0`` turns it into quantile buckets (a
    ``categorical`` field in the encoded schema).
``text``
    free text; never put in batches (the text-embedding stage reads it).
``sequence``
    the user's time-ordered behaviour before the row (the items of the user's
    earlier positive rows, never the row itself or anything later);
    ``int64 [N, max_len]`` codes of the field it ``shares`` (``item_id``),
    left-padded with ``0`` (most recent last).

Vocabularies and statistics are fitted on the train part only
(:func:`fit_fields`); valid/test values the train part never had map to the
out-of-vocabulary code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FieldKind = Literal["categorical", "multi_categorical", "numeric", "text", "sequence"]
Owner = Literal["user", "item", "context"]
FIELD_KINDS: tuple[str, ...] = ("categorical", "multi_categorical", "numeric", "text", "sequence")
OWNERS: tuple[str, ...] = ("user", "item", "context")
NORMALIZATIONS: tuple[str, ...] = ("standard", "minmax", "log", "none")
PAD, OOV = 0, 1  # reserved codes of categorical, multi-valued and sequence fields


@dataclass(frozen=True)
class FieldSpec:
    """One encoded field, as models see it in ``DataInfo.fields``.

    ``kind`` is ``categorical``, ``multi_categorical``, ``numeric`` or
    ``sequence`` (text fields are listed with kind ``text`` but never batched).
    ``vocab_size``: rows of an embedding table for the field's codes (padding
    ``0`` and out-of-vocabulary ``1`` included). ``max_len``: padded length of
    multi-valued and sequence fields. ``shares``: a sequence field's codes are
    those of this field (its embedding table may be shared, as DIN does).
    ``pooling``: how a multi-valued field becomes one vector (``mean``/``sum``).
    """

    name: str
    kind: str
    owner: str
    vocab_size: int = 0
    max_len: int = 0
    shares: str | None = None
    pooling: str = "mean"

    @property
    def is_batched(self) -> bool:
        return self.kind != "text"

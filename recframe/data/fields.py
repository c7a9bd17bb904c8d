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
    ``minmax``, ``log`` = ``log1p(max(x, 0))`` then standard, as Criteo's
    integer counts are usually transformed (its few negatives count as 0),
    ``none``); missing -> ``0`` after normalization. ``buckets > 0`` turns it
    into quantile buckets (a ``categorical`` field in the encoded schema).
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

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

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


# -- declarations ---------------------------------------------------------------------
DECL_KEYS: tuple[str, ...] = (
    "name", "kind", "owner", "sep", "min_count", "max_len", "normalize", "buckets", "pooling",
    "shares", "column",
)
DEFAULT_MAX_LEN = 64  # multi-valued fields: longest train list, at most this
DEFAULT_SEQUENCE_LEN = 20


@dataclass(frozen=True)
class FieldDecl:
    """A declared field (``Dataset.meta["fields"]`` or ``dataset.fields`` in config).

    ``column`` is the source column (default: ``name``). See the module docstring
    for kinds and encodings; :func:`parse_decl` checks every key.
    """

    name: str
    kind: str
    owner: str
    column: str
    sep: str | None = None
    min_count: int = 1
    max_len: int = 0
    normalize: str = "standard"
    buckets: int = 0
    pooling: str = "mean"
    shares: str | None = None


def _suggest(value: str, choices: tuple[str, ...]) -> str:
    import difflib

    close = difflib.get_close_matches(value, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def parse_decl(raw: Mapping[str, Any], where: str, owners: Mapping[str, str]) -> FieldDecl:
    """Check one field declaration and fill its defaults.

    ``where`` names it in errors (``dataset.fields.genres``); ``owners`` maps a
    column name to the frame holding it (``user``/``item``/``context``), used when
    the declaration has no ``owner``.
    """
    from recframe.errors import ConfigError

    unknown = [k for k in raw if k not in DECL_KEYS]
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {unknown}{_suggest(str(unknown[0]), DECL_KEYS)}; "
            f"a field declaration takes {list(DECL_KEYS)}.")
    name = raw.get("name")
    if not name:
        raise ConfigError(f"{where}: a field needs a `name`.")
    kind = raw.get("kind")
    if kind not in FIELD_KINDS:
        raise ConfigError(
            f"{where}.kind: {kind!r} is not a field kind{_suggest(str(kind), FIELD_KINDS)}; "
            f"use one of {list(FIELD_KINDS)}.")
    column = str(raw.get("column") or name)
    owner = raw.get("owner")
    if owner is None:
        owner = "context" if kind == "sequence" else owners.get(column)
        if owner is None:
            raise ConfigError(
                f"{where}: no column {column!r} in the interactions, item or user frames "
                f"(columns: {sorted(owners)}); set `column` to the source column, or `owner`.")
    if owner not in OWNERS:
        raise ConfigError(f"{where}.owner: {owner!r} is not one of {list(OWNERS)}.")
    normalize = str(raw.get("normalize") or "standard")
    if normalize not in NORMALIZATIONS:
        raise ConfigError(
            f"{where}.normalize: {normalize!r} is not one of {list(NORMALIZATIONS)}.")
    pooling = str(raw.get("pooling") or "mean")
    if pooling not in ("mean", "sum"):
        raise ConfigError(f"{where}.pooling: {pooling!r} is not one of ['mean', 'sum'].")
    ints = {}
    for key, default, low in (("min_count", 1, 1), ("max_len", 0, 0), ("buckets", 0, 0)):
        value = raw.get(key, default)
        value = default if value is None else value
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{where}.{key}: expected an integer >= {low}, got {value!r}.")
        ints[key] = value
    shares = raw.get("shares")
    if kind == "sequence" and shares is None:
        shares = "item_id"
    sep = raw.get("sep")
    return FieldDecl(str(name), str(kind), str(owner), column, None if sep is None else str(sep),
                     ints["min_count"], ints["max_len"], normalize, ints["buckets"], pooling,
                     None if shares is None else str(shares))

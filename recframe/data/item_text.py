"""The item-text stage: one text per item from its features, encoded once, cached on disk.

Every model family reaches pretrained text embeddings through this module: ID-embedding
models through ``model.item_text`` (:mod:`recframe.models.item_text`), the content model
through its ``minilm`` block. The text of an item comes from a **template**:

``auto``
    the item's free-text columns (titles, descriptions) joined with ``". "``, then one
    ``"<field>: <values>"`` phrase per categorical column (``"release_date: 1995-01-01"``;
    ``Action|Comedy`` multi-values read ``"Action, Comedy"``) and per group of 0/1 flag
    columns sharing a prefix (``genre_action`` and ``genre_comedy`` set read
    ``"genre: action, comedy"``). On MovieLens-100K: ``"Toy Story (1995). release_date:
    1995-01-01. genre: animation, childrens, comedy"``.
a format string
    ``"{title}. {description}"``: any item feature column by name; a missing value
    reads as an empty string.

Items whose text is empty are reported (how many, the first ids) and keep the ID path:
their text vector is a zero row, so a text-enhanced model falls back to its ID
embedding for them.
"""

from __future__ import annotations

import logging
import re
import string
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from recframe.data import text_encoders
from recframe.data.encode import RecData
from recframe.errors import ConfigError, DataError

log = logging.getLogger(__name__)

AUTO_TEMPLATE = "auto"
_FLAG = re.compile(r"^(?P<prefix>[A-Za-z][A-Za-z0-9]*)_(?P<value>.+)$")


@dataclass(frozen=True)
class TextSettings:
    """How item texts are built and encoded (the config group ``text``)."""

    encoder: str = text_encoders.DEFAULT_ENCODER
    template: str = AUTO_TEMPLATE
    cache_dir: str | None = None
    batch_size: int = 64
    device: str = "cpu"

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> TextSettings:
        """Settings from the ``text`` config node (missing keys keep their defaults)."""
        if cfg is None:
            return cls()
        known = {"encoder", "template", "cache_dir", "batch_size", "device"}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise ConfigError(f"text.{unknown[0]} is not a text setting; known: "
                              f"{', '.join(sorted(known))}")
        values = {k: cfg[k] for k in known if k in cfg and cfg[k] is not None}
        if "batch_size" in values and (not isinstance(values["batch_size"], int)
                                       or values["batch_size"] < 1):
            raise ConfigError(f"text.batch_size must be a positive integer, got "
                              f"{values['batch_size']!r}")
        return cls(**{k: (str(v) if k != "batch_size" else int(v)) for k, v in values.items()})


@dataclass
class ItemTextVectors:
    """``vectors[i]``: the L2-normalized embedding of item ``i``'s text (zeros: no text)."""

    vectors: np.ndarray
    has_text: np.ndarray
    encoder: str
    template: str
    encode_seconds: float

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def record(self) -> dict[str, Any]:
        """What ``results.json`` keeps about the stage."""
        return {"encoder": self.encoder, "template": self.template, "dim": self.dim,
                "items_with_text": int(self.has_text.sum()),
                "items_without_text": int((~self.has_text).sum()),
                "encode_seconds": round(self.encode_seconds, 3)}


def _flag_groups(frame: pd.DataFrame) -> dict[str, list[str]]:
    """Prefix -> 0/1 numeric columns named ``<prefix>_<value>`` (at least two per prefix)."""
    groups: dict[str, list[str]] = {}
    for column in frame.columns:
        match = _FLAG.match(str(column))
        if match is None or not pd.api.types.is_numeric_dtype(frame[column]):
            continue
        values = pd.unique(frame[column].dropna())
        if len(values) and np.isin(values, (0, 1)).all():
            groups.setdefault(match["prefix"], []).append(column)
    return {p: cols for p, cols in groups.items() if len(cols) >= 2}


def _join(parts: list[pd.Series], sep: str) -> pd.Series:
    joined = parts[0]
    for part in parts[1:]:
        glue = np.where((joined != "") & (part != ""), sep, "")
        joined = joined + glue + part
    return joined


def _strings(frame: pd.DataFrame, column: str) -> pd.Series:
    return frame[column].astype("string").fillna("").str.strip()


def auto_texts(data: RecData) -> pd.Series:
    """The ``auto`` template's text of every item (see the module docstring)."""
    n = data.info.n_items
    frame = data.item_features
    if frame is None:
        return pd.Series([""] * n, dtype="string")
    kinds = {spec.name: spec.kind for spec in data.info.item_features}
    parts: list[pd.Series] = [_strings(frame, c) for c, k in kinds.items()
                              if k == "text" and c in frame]
    for column, kind in kinds.items():
        if kind == "categorical" and column in frame:
            values = _strings(frame, column).str.replace("|", ", ", regex=False)
            parts.append(pd.Series(np.where(values != "", column + ": " + values, ""),
                                   dtype="string", index=frame.index))
    for prefix, columns in _flag_groups(frame).items():
        flags = frame[columns].to_numpy(dtype=np.float64, na_value=0.0) > 0
        names = np.array([c[len(prefix) + 1:].replace("_", " ") for c in columns], dtype=object)
        listed = [", ".join(names[row]) for row in flags]
        parts.append(pd.Series([f"{prefix}: {v}" if v else "" for v in listed],
                               dtype="string", index=frame.index))
    if not parts:
        return pd.Series([""] * n, dtype="string")
    return _join(parts, ". ").reset_index(drop=True)


def item_texts(data: RecData, template: str = AUTO_TEMPLATE) -> list[str]:
    """One text per item index, from ``template`` (``auto`` or a format string)."""
    if template == AUTO_TEMPLATE:
        return auto_texts(data).astype(str).tolist()
    frame = data.item_features
    fields = [f for _, f, _, _ in string.Formatter().parse(template) if f]
    if frame is None:
        raise DataError(f"text.template {template!r} names item columns, but dataset "
                        f"{data.info.name!r} has no item features")
    missing = [f for f in fields if f not in frame]
    if missing:
        raise ConfigError(f"text.template names column {missing[0]!r}, which the item "
                          f"features of {data.info.name!r} lack; columns: "
                          f"{', '.join(map(str, frame.columns))}")
    values = {f: _strings(frame, f).tolist() for f in fields}
    empty = np.zeros(len(frame), dtype=bool)
    if fields:
        empty = np.logical_and.reduce([_strings(frame, f).to_numpy() == "" for f in fields])
    texts = [template.format(**{f: values[f][i] for f in fields}).strip() for i in
             range(len(frame))]
    return ["" if e else t for t, e in zip(texts, empty, strict=True)]


def join_text_columns(frame: pd.DataFrame, columns: Sequence[str], sep: str = ". "
                      ) -> list[str]:
    """One text per row: the non-missing values of ``columns`` joined with ``sep``."""
    if not columns:
        return [""] * len(frame)
    return _join([_strings(frame, c) for c in columns], sep).astype(str).tolist()


def item_text_vectors(data: RecData, settings: TextSettings | None = None, *,
                      loader: text_encoders.Loader | None = None) -> ItemTextVectors:
    """Encode every item's text (cached per dataset, encoder and texts); items without
    text get a zero row and are reported. A dataset without any item text is an error."""
    settings = settings or TextSettings()
    texts = item_texts(data, settings.template)
    has_text = np.array([bool(t.strip()) for t in texts], dtype=bool)
    if not has_text.any():
        raise DataError(
            f"dataset {data.info.name!r} has no item text (no title/description column, no "
            f"categorical or flag features to describe items) for text.template="
            f"{settings.template!r}; text-enhanced models need some. Use model.item_text=none, "
            f"or a dataset with item features.")
    if not has_text.all():
        ids = data.item_ids[np.flatnonzero(~has_text)[:5]].astype(str).tolist()
        log.warning("%d of %d items have no text (e.g. %s): they keep the ID path",
                    int((~has_text).sum()), len(texts), ", ".join(ids))
    start = time.perf_counter()
    vectors = text_encoders.embed_texts(
        texts, encoder=settings.encoder, dataset=data.info.name, cache_dir=settings.cache_dir,
        batch_size=settings.batch_size, device=settings.device,
        loader=loader or _load_checked)
    seconds = time.perf_counter() - start
    log.info("item text: %d items, %d-d %s vectors in %.1f s", len(texts), vectors.shape[1],
             settings.encoder, seconds)
    return ItemTextVectors(vectors, has_text, settings.encoder, settings.template, seconds)


def _load_checked(encoder: str, device: str) -> text_encoders.Encoder:
    """The encoder, after checking its packages are installed: called on a cache miss
    only, so cached embeddings are read without the encoder's dependencies."""
    problem = text_encoders.missing_dependency(encoder)
    if problem:
        raise ConfigError(f"text.encoder: {problem}")
    return text_encoders.load_encoder(encoder, device)

"""Fit typed fields on the train part and encode rows and id tables with them.

:func:`declared_fields` merges what a dataset declares (``Dataset.meta["fields"]``),
what the config adds (``dataset.fields``) and what can be inferred from the
feature frames; :class:`FieldEncoder` fits vocabularies and statistics on the
train rows only (row-weighted: a value seen in many train impressions counts
many times, as the click-model literature and FuxiCTR count) and encodes any
rows, or one row per user/item, with them. Sequence fields are built by
:func:`sequence_codes` from the log itself.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from recframe.data.fields import (
    DEFAULT_MAX_LEN,
    DEFAULT_SEQUENCE_LEN,
    OOV,
    PAD,
    FieldDecl,
    FieldSpec,
    parse_decl,
)
from recframe.data.sorting import lexsort_stable
from recframe.data.types import ITEM, LABEL, RATING, TIMESTAMP, USER, Dataset
from recframe.errors import ConfigError, DataError

log = logging.getLogger(__name__)
CANONICAL = (USER, ITEM, RATING, TIMESTAMP, LABEL)


def _owners(ds: Dataset) -> dict[str, str]:
    owners: dict[str, str] = {}
    for owner, frame in (("context", ds.interactions), ("item", ds.items), ("user", ds.users)):
        if frame is None:
            continue
        names = list(frame.columns) + ([frame.index.name] if frame.index.name else [])
        for col in names:
            owners.setdefault(str(col), owner)
    owners[USER], owners[ITEM] = "user", "item"
    return owners


def _plain(value: Any) -> Any:
    try:
        from omegaconf import OmegaConf

        if OmegaConf.is_config(value):
            return OmegaConf.to_container(value, resolve=True)
    except ImportError:  # pragma: no cover
        pass
    return value


def _config_decls(cfg_fields: Any) -> list[tuple[str, dict[str, Any]]]:
    """``dataset.fields`` as (where, declaration): a list of mappings, or a mapping of
    name -> declaration (``{genres: {kind: multi_categorical, sep: "|"}}``)."""
    cfg_fields = _plain(cfg_fields)
    if cfg_fields is None:
        return []
    if isinstance(cfg_fields, Mapping):
        out = []
        for name, decl in cfg_fields.items():
            if not isinstance(decl, Mapping):
                raise ConfigError(
                    f"dataset.fields.{name}: expected a mapping like {{kind: categorical}}, "
                    f"got {decl!r}.")
            out.append((f"dataset.fields.{name}", {"name": name, **decl}))
        return out
    if isinstance(cfg_fields, Sequence) and not isinstance(cfg_fields, str):
        bad = next((i for i, d in enumerate(cfg_fields) if not isinstance(d, Mapping)), None)
        if bad is not None:
            raise ConfigError(f"dataset.fields[{bad}]: expected a mapping like {{name: genres, "
                              f"kind: categorical}}, got {cfg_fields[bad]!r}.")
        return [(f"dataset.fields[{i}]", dict(d)) for i, d in enumerate(cfg_fields)]
    raise ConfigError(f"dataset.fields: expected a mapping or a list, got {cfg_fields!r}.")


def _infer_kind(series: pd.Series, n_ids: int) -> str:
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return "numeric"
    sample = series.dropna().head(100)
    if len(sample) and sample.map(lambda v: isinstance(v, (list, tuple, np.ndarray))).all():
        return "multi_categorical"
    n_unique = series.astype("string").nunique()
    return "text" if n_unique > max(50, n_ids // 2) else "categorical"


#: separators :func:`multi_value_sep` recognizes in string columns (MovieLens genres)
MULTI_VALUE_SEPS: tuple[str, ...] = ("|",)


def multi_value_sep(series: pd.Series, sample: int = 2000) -> str | None:
    """The separator of a multi-valued string column (``Action|Comedy``), or None.

    A column is multi-valued when at least a quarter of its non-empty values
    hold the separator and its pieces repeat across rows: at most half as many
    distinct pieces as pieces (genres, tags; a free-text column that happens to
    hold ``|`` has mostly distinct pieces). Looks at the first ``sample`` values.
    """
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return None
    values = series.dropna().head(sample)
    if not len(values) or not values.map(lambda v: isinstance(v, str)).all():
        return None
    text = values.astype("string").str.strip()
    text = text[text != ""]
    for sep in MULTI_VALUE_SEPS:
        if len(text) < 2 or text.str.contains(sep, regex=False).mean() < 0.25:
            continue
        pieces = text.str.split(sep, regex=False).explode().str.strip()
        pieces = pieces[pieces != ""]
        if len(pieces) and pieces.nunique() <= 0.5 * len(pieces):
            return sep
    return None


def declared_fields(ds: Dataset, cfg_fields: Any = None, *, infer: bool = True
                    ) -> list[FieldDecl]:
    """The dataset's fields: declared by the loader, then by config (a config entry
    updates the keys of the loader's field of the same name, or adds a field), then
    ``user_id``/``item_id`` (unless ``meta["id_fields"]`` is False), then, with
    ``infer``, every other column of the feature frames (and of labeled
    interactions) by its dtype."""
    owners = _owners(ds)
    raw: dict[str, tuple[str, dict[str, Any]]] = {}
    for i, decl in enumerate(ds.meta.get("fields") or []):
        raw[str(decl.get("name"))] = (f"{ds.name}: meta['fields'][{i}]", dict(decl))
    for where, decl in _config_decls(cfg_fields):
        name = str(decl.get("name"))
        base = raw[name][1] if name in raw else {}
        raw[name] = (where, {**base, **decl})  # config keys update the loader's declaration
    if ds.meta.get("id_fields", True):
        raw.setdefault(USER, ("user_id", {"name": USER, "kind": "categorical", "owner": "user"}))
        raw.setdefault(ITEM, ("item_id", {"name": ITEM, "kind": "categorical", "owner": "item"}))
    if infer:
        labeled = LABEL in ds.interactions.columns
        frames = [("item", ds.items), ("user", ds.users)]
        if labeled:
            frames.append(("context", ds.interactions))
        covered = {str(d.get("column") or n) for n, (_, d) in raw.items()}
        for owner, frame in frames:
            if frame is None:
                continue
            for col in frame.columns:
                if col in CANONICAL or str(col) in covered or str(col) in raw:
                    continue
                decl = {"name": str(col), "kind": _infer_kind(frame[col], len(frame)),
                        "owner": owner}
                sep = multi_value_sep(frame[col]) if decl["kind"] != "numeric" else None
                if sep is not None:
                    decl.update(kind="multi_categorical", sep=sep)
                    log.info("fields: %s column %r holds values like %r: inferred "
                             "multi_categorical (sep %r); declare dataset.fields.%s.kind to "
                             "override", owner, col, str(frame[col].dropna().iloc[0]), sep, col)
                raw[str(col)] = (f"inferred {owner} column {col!r}", decl)
    decls = [parse_decl(d, where, owners) for where, d in raw.values()]
    decls.sort(key=lambda d: (d.name != USER, d.name != ITEM))  # ids first, stable otherwise
    names = {d.name for d in decls}
    for d in decls:
        if d.kind == "sequence":
            if d.shares not in names:
                raise ConfigError(
                    f"field {d.name!r}: a sequence field shares the codes of another field, "
                    f"but {d.shares!r} is not a field (fields: {sorted(names)}).")
            shared = next(x for x in decls if x.name == d.shares)
            if shared.kind != "categorical":
                raise ConfigError(
                    f"field {d.name!r}: a sequence field shares the codes of a categorical "
                    f"field (e.g. item_id), but {d.shares!r} is {shared.kind}.")
            if not ds.has_timestamps and not ds.meta.get("ordered", False):
                raise DataError(
                    f"field {d.name!r}: a sequence field needs the order of events, but "
                    f"{ds.source or ds.name} has no timestamp column and does not say its "
                    f"rows are in time order; map a timestamp column (dataset.columns."
                    f"timestamp) or drop the field.")
    return decls


# -- fitting and encoding -------------------------------------------------------------
def _missing(values: pd.Series) -> np.ndarray:
    miss = values.isna().to_numpy().copy()
    if values.dtype == object or pd.api.types.is_string_dtype(values):
        miss |= (values.astype("string").fillna("") == "").to_numpy(dtype=bool)
    return miss


def _as_strings(values: pd.Series) -> pd.Series:
    if pd.api.types.is_float_dtype(values):
        # 3.0 and 3 are one category: integral floats print as integers
        arr = values.to_numpy(dtype=np.float64, na_value=np.nan)
        integral = np.isfinite(arr) & (arr == np.round(arr))
        text = values.astype("string")
        text[integral] = pd.Series(arr[integral].astype(np.int64), index=values.index[integral]
                                   ).astype("string")
        return text
    return values.astype("string")


def _lists(values: pd.Series, decl: FieldDecl) -> tuple[np.ndarray, np.ndarray]:
    """A multi-valued column as (row lengths, flat string values)."""
    if values.dtype == object and values.dropna().map(
            lambda v: isinstance(v, (list, tuple, np.ndarray))).any():
        lists = values.map(lambda v: list(v) if isinstance(v, (list, tuple, np.ndarray))
                           else ([] if v is None or (isinstance(v, float) and np.isnan(v))
                                 else [v]))
    else:
        if decl.sep is None:
            raise ConfigError(
                f"field {decl.name!r} is multi_categorical but column {decl.column!r} holds "
                f"plain values and the field has no `sep`; set its separator, e.g. "
                f"dataset.fields.{decl.name}.sep='|'.")
        text = values.astype("string").fillna("")
        lists = text.str.split(decl.sep, regex=False)
    # one row per value, labelled by its row's position (explode keeps the index)
    flat = lists.reset_index(drop=True).explode()
    flat = flat[flat.notna()]
    flat_s = flat.astype("string").str.strip()
    keep = (flat_s != "").to_numpy()  # empty pieces ("a||b", "") are missing, not values
    row = flat.index.to_numpy(dtype=np.int64)[keep]
    flat_s = flat_s[keep]
    lengths = np.bincount(row, minlength=len(values)).astype(np.int64)
    return lengths, flat_s.to_numpy(dtype=object)


def _numeric(values: pd.Series, decl: FieldDecl, source: str) -> np.ndarray:
    try:
        return pd.to_numeric(values, errors="raise").to_numpy(dtype=np.float64,
                                                                na_value=np.nan)
    except (TypeError, ValueError):
        coerced = pd.to_numeric(values, errors="coerce")
        bad = coerced.isna() & values.notna()
        first = values[bad].iloc[0] if bad.any() else None
        raise DataError(
            f"{source}: field {decl.name!r} is numeric but column {decl.column!r} holds "
            f"{first!r} (row {int(np.flatnonzero(bad.to_numpy())[0])}); declare it "
            f"categorical (dataset.fields.{decl.name}.kind=categorical) or fix the data."
        ) from None


@dataclass
class FittedField:
    """What one field learned from the train rows."""

    decl: FieldDecl
    vocab: pd.Index | None = None
    stats: dict[str, float] = field(default_factory=dict)
    edges: np.ndarray | None = None
    max_len: int = 0

    def spec(self, vocab_sizes: Mapping[str, int]) -> FieldSpec:
        d = self.decl
        if d.kind == "numeric" and self.edges is not None:
            return FieldSpec(d.name, "categorical", d.owner, len(self.edges) + 3)
        if d.kind in ("categorical", "multi_categorical"):
            return FieldSpec(d.name, d.kind, d.owner, len(self.vocab) + 2,
                             self.max_len if d.kind == "multi_categorical" else 0,
                             pooling=d.pooling)
        if d.kind == "sequence":
            return FieldSpec(d.name, "sequence", d.owner, vocab_sizes[d.shares], self.max_len,
                             shares=d.shares)
        return FieldSpec(d.name, d.kind, d.owner)


def _vocab(values: np.ndarray, min_count: int) -> tuple[pd.Index, int]:
    counts = pd.Series(values).value_counts()
    kept = counts[counts >= min_count]
    return pd.Index(sorted(kept.index.astype(str))), int(len(counts) - len(kept))


def _sorted_index(values: pd.Index) -> pd.Index:
    try:
        return pd.Index(values).sort_values()
    except TypeError:
        return pd.Index(values.astype(str)).sort_values()


def _codes(vocab: pd.Index, values: np.ndarray) -> np.ndarray:
    pos = vocab.get_indexer(pd.Index(values.astype(str) if len(values) else values))
    return np.where(pos >= 0, pos + 2, OOV).astype(np.int64)


class FieldEncoder:
    """Fields fitted on train rows; encodes rows of any part and per-entity tables."""

    def __init__(self, decls: Sequence[FieldDecl], source: str = "") -> None:
        self.decls = list(decls)
        self.fitted: dict[str, FittedField] = {}
        self.source = source
        self.folded: dict[str, int] = {}

    # values of a field for rows (users/items looked up in their frames)
    @staticmethod
    def column(decl: FieldDecl, rows: pd.DataFrame, users: pd.DataFrame | None,
               items: pd.DataFrame | None) -> pd.Series:
        if decl.owner == "context":
            frame, key = rows, None
        elif decl.owner == "user":
            frame, key = users, USER
        else:
            frame, key = items, ITEM
        if key is not None and decl.column == key:
            return rows[key].reset_index(drop=True)
        if frame is None or (decl.column not in frame.columns):
            raise DataError(
                f"field {decl.name!r} ({decl.owner} field) reads column {decl.column!r}, "
                f"which the {decl.owner if decl.owner != 'context' else 'interaction'} data "
                f"does not have; have {[] if frame is None else list(frame.columns)}. Fix "
                f"the field's `column`/`owner` in dataset.fields.")
        if key is None:
            return frame[decl.column].reset_index(drop=True)
        table = frame if frame.index.name == key else frame.set_index(key)
        table = table[~table.index.duplicated(keep="last")]
        return table[decl.column].reindex(rows[key].to_numpy()).reset_index(drop=True)

    def fit(self, train: Dataset) -> FieldEncoder:
        rows = train.interactions
        for decl in self.decls:
            if decl.kind in ("text", "sequence"):
                self.fitted[decl.name] = FittedField(
                    decl, max_len=decl.max_len or DEFAULT_SEQUENCE_LEN)
                continue
            fitted = FittedField(decl)
            if decl.kind == "categorical" and decl.column in (USER, ITEM) \
                    and decl.owner == ("user" if decl.column == USER else "item"):
                # id fields keep the raw ids (no string round trip: cheap at any size)
                counts = rows[decl.column].value_counts()
                kept = counts[counts >= decl.min_count].index
                fitted.vocab = _sorted_index(kept)
                fitted.stats = {"raw_ids": 1.0}
                self.folded[decl.name] = int(len(counts) - len(kept))
                self.fitted[decl.name] = fitted
                continue
            values = self.column(decl, rows, train.users, train.items)
            if decl.kind == "categorical":
                present = values[~_missing(values)]
                fitted.vocab, self.folded[decl.name] = _vocab(
                    _as_strings(present).to_numpy(dtype=object), decl.min_count)
            elif decl.kind == "multi_categorical":
                lengths, flat = _lists(values, decl)
                fitted.vocab, self.folded[decl.name] = _vocab(flat, decl.min_count)
                longest = int(lengths.max()) if len(lengths) else 1
                fitted.max_len = decl.max_len or max(1, min(longest, DEFAULT_MAX_LEN))
            else:  # numeric
                x = _numeric(values, decl, self.source)
                x = x[np.isfinite(x)]
                if decl.normalize == "log":
                    x = np.log1p(np.maximum(x, 0.0))
                if decl.buckets:
                    qs = np.quantile(x, np.linspace(0, 1, decl.buckets + 1)[1:-1]) if len(x) \
                        else np.zeros(0)
                    fitted.edges = np.unique(qs)
                else:
                    fitted.stats = {
                        "mean": float(x.mean()) if len(x) else 0.0,
                        "std": float(x.std()) if len(x) > 1 and x.std() > 0 else 1.0,
                        "min": float(x.min()) if len(x) else 0.0,
                        "max": float(x.max()) if len(x) else 1.0,
                    }
            self.fitted[decl.name] = fitted
        folded = {k: v for k, v in self.folded.items() if v}
        if folded:
            log.info("fields: values below min_count folded into out-of-vocabulary: %s", folded)
        return self

    def specs(self) -> tuple[FieldSpec, ...]:
        sizes = {n: len(f.vocab) + 2 for n, f in self.fitted.items() if f.vocab is not None}
        return tuple(self.fitted[d.name].spec(sizes) for d in self.decls)

    def encode_values(self, name: str, values: pd.Series) -> np.ndarray:
        """One field's codes/values for ``values`` (the field's column, row-aligned)."""
        f = self.fitted[name]
        d = f.decl
        miss = _missing(values)
        if d.kind == "categorical" and f.stats.get("raw_ids"):
            pos = f.vocab.get_indexer(values.to_numpy())
            out = np.where(pos >= 0, pos + 2, OOV).astype(np.int64)
            out[miss] = PAD
            return out
        if d.kind == "categorical":
            out = np.zeros(len(values), dtype=np.int64)
            present = ~miss
            out[present] = _codes(f.vocab, _as_strings(values[present]).to_numpy(dtype=object))
            return out
        if d.kind == "multi_categorical":
            lengths, flat = _lists(values, d)
            codes = _codes(f.vocab, flat)
            starts = np.cumsum(lengths) - lengths
            pos = np.arange(len(flat)) - np.repeat(starts, lengths)
            row = np.repeat(np.arange(len(values)), lengths)
            keep = pos < f.max_len  # longer lists keep their first max_len values
            out = np.zeros((len(values), f.max_len), dtype=np.int64)
            out[row[keep], pos[keep]] = codes[keep]
            return out
        x = _numeric(values, d, self.source)
        if d.normalize == "log":
            x = np.log1p(np.maximum(x, 0.0))
        if f.edges is not None:
            out = (np.searchsorted(f.edges, x, side="right") + 2).astype(np.int64)
            out[~np.isfinite(x)] = PAD
            return out
        s = f.stats
        if d.normalize in ("standard", "log"):
            x = (x - s["mean"]) / s["std"]
        elif d.normalize == "minmax":
            x = (x - s["min"]) / ((s["max"] - s["min"]) or 1.0)
        return np.where(np.isfinite(x), x, 0.0).astype(np.float32)

    def encode_rows(self, rows: pd.DataFrame, users: pd.DataFrame | None,
                    items: pd.DataFrame | None) -> dict[str, np.ndarray]:
        """Every batched non-sequence field for ``rows`` (row-aligned arrays)."""
        out = {}
        for d in self.decls:
            if d.kind in ("text", "sequence"):
                continue
            out[d.name] = self.encode_values(d.name, self.column(d, rows, users, items))
        return out

    def encode_table(self, owner: str, ids: pd.Index, frame: pd.DataFrame | None
                     ) -> dict[str, np.ndarray]:
        """The ``owner``'s (user/item) batched fields, one row per id of ``ids``."""
        key = USER if owner == "user" else ITEM
        rows = pd.DataFrame({key: np.asarray(ids)})
        users, items = (frame, None) if owner == "user" else (None, frame)
        out = {}
        for d in self.decls:
            if d.owner != owner or d.kind in ("text", "sequence"):
                continue
            out[d.name] = self.encode_values(d.name, self.column(d, rows, users, items))
        return out


def history_before(users: np.ndarray, times: np.ndarray, item_codes: np.ndarray,
                   positive: np.ndarray, is_target: np.ndarray, max_len: int
                   ) -> np.ndarray:
    """The last ``max_len`` positive items of each target row's user strictly before it.

    Rows are events of one or more parts: ``users`` (int), ``times`` (sortable: a
    timestamp, or the row's position in a time-ordered log), ``item_codes`` (the
    shared field's codes), ``positive`` (which events count as behaviour, e.g.
    clicked rows) and ``is_target`` (rows that get a sequence). An event counts
    for a target row when it has the same user and a strictly smaller time, so
    a row never sees itself, an event logged at the same moment, or anything later.
    Returns ``int64 [n_targets, max_len]`` (target rows in their given order),
    left-padded with 0, most recent last. Vectorised: one sort and a gather.
    """
    n = len(users)
    order = lexsort_stable((times, users))
    u, t = users[order], times[order]
    pos = positive[order].astype(np.int64)
    # exclusive count of positives before each row within its (user, time) group start
    new_group = np.ones(n, dtype=bool)
    new_group[1:] = (u[1:] != u[:-1]) | (t[1:] != t[:-1])
    new_user = np.ones(n, dtype=bool)
    new_user[1:] = u[1:] != u[:-1]
    before = np.cumsum(pos) - pos  # positives before this row (all users)
    group_start = np.maximum.accumulate(np.where(new_group, np.arange(n), 0))
    user_start = np.maximum.accumulate(np.where(new_user, np.arange(n), 0))
    k_end = before[group_start]  # positives strictly earlier than the row's time
    k_user = before[user_start]  # positives before the user's first row
    pos_items = item_codes[order][pos.astype(bool)]
    idx = k_end[:, None] - max_len + np.arange(max_len)[None, :]
    valid = idx >= k_user[:, None]
    gathered = np.where(valid, pos_items[np.clip(idx, 0, max(len(pos_items) - 1, 0))]
                        if len(pos_items) else 0, 0)
    result = np.zeros((n, max_len), dtype=np.int64)
    result[order] = gathered
    return result[is_target]

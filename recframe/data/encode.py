"""Encode a :class:`Split` into contiguous integer ids: :class:`RecData`."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recframe.data.field_encoding import FieldEncoder, declared_fields, history_before
from recframe.data.fields import FieldSpec as FieldSpec_
from recframe.data.sorting import lexsort_stable, stable_argsort
from recframe.data.types import ITEM, LABEL, TIMESTAMP, USER, Split
from recframe.errors import DataError

log = logging.getLogger(__name__)
Part = Literal["train", "valid", "test"]
PARTS: tuple[Part, ...] = ("train", "valid", "test")


@dataclass(frozen=True)
class FeatureSpec:
    """One encoded feature column: ``numeric`` (float) or ``categorical`` (codes)."""

    name: str
    kind: Literal["numeric", "categorical", "text"]
    cardinality: int = 0


@dataclass(frozen=True)
class DataInfo:
    """What a model may know about the data: sizes and feature specs."""

    n_users: int
    n_items: int
    has_timestamps: bool = False
    has_ratings: bool = False
    item_features: tuple[FeatureSpec, ...] = ()
    user_features: tuple[FeatureSpec, ...] = ()
    n_train: int = 0
    name: str = ""
    #: typed feature fields (recframe.data.fields), fitted on the train part
    fields: tuple[FieldSpec_, ...] = ()
    #: True when the rows carry a 0/1 ``label`` (logged impressions: the CTR protocol)
    has_labels: bool = False
    #: train interactions of each user (index = user), for settings chosen from the data
    #: (e.g. a sequence model's ``max_seq_len: auto``); ``None`` when not known
    train_history_lengths: np.ndarray | None = field(default=None, compare=False, repr=False)
    #: ``"items"`` / ``"users"`` under a cold-start split (``Split.cold_start``), else ``""``
    cold_start: str = ""


@dataclass(frozen=True)
class Events:
    """Encoded interactions of one part, sorted by user then time."""

    users: np.ndarray
    items: np.ndarray
    timestamps: np.ndarray | None


@dataclass
class LabeledRows:
    """The labeled rows (impressions) of one part, in their logged order.

    ``users``: the user index of each row, or ``n_users + k`` for the ``k``-th
    distinct user with no train rows (so per-user metrics group every user);
    ``items``: item index; ``labels``: float32 0/1; ``fields``: every batched
    field, row-aligned (see :mod:`recframe.data.fields` for the encodings).
    """

    users: np.ndarray
    items: np.ndarray
    labels: np.ndarray
    fields: dict[str, np.ndarray]
    #: each row's index label in the loaded interactions frame (e.g. to look up a
    #: simulator's true click probability, ``Dataset.meta["true_probability"]``)
    row_index: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, rows: np.ndarray) -> LabeledRows:
        """The rows at positions ``rows``, as labeled rows of their own."""
        return LabeledRows(self.users[rows], self.items[rows], self.labels[rows],
                           {k: v[rows] for k, v in self.fields.items()},
                           None if self.row_index is None else self.row_index[rows])

    def take(self, rows: np.ndarray) -> dict[str, Any]:
        """One batch as numpy arrays (``fields`` nested), in the batch layout."""
        return {"label": self.labels[rows], "users": self.users[rows],
                "items": self.items[rows],
                "fields": {k: v[rows] for k, v in self.fields.items()}}


@dataclass
class RecData:
    """An encoded split: int ids, one user x item CSR per part, histories, features."""

    info: DataInfo
    user_ids: pd.Index
    item_ids: pd.Index
    events: dict[str, Events]
    item_features: pd.DataFrame | None = None
    user_features: pd.DataFrame | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    #: labeled impressions per part (the CTR protocol); empty for positive-only data
    labeled: dict[str, LabeledRows] = field(default_factory=dict)
    #: the fields fitted on train (None when no model asked for fields)
    field_encoder: FieldEncoder | None = field(default=None, repr=False)
    _csr: dict[str, sp.csr_matrix] = field(default_factory=dict, repr=False)
    _tables: dict[str, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)
    _frames: dict[str, pd.DataFrame | None] = field(default_factory=dict, repr=False)

    # -- matrices ------------------------------------------------------------
    def matrix(self, part: str) -> sp.csr_matrix:
        """Binary user x item CSR of one part (float32, duplicates collapsed)."""
        if part not in self._csr:
            ev = self.events[part]
            data = np.ones(len(ev.users), dtype=np.float32)
            m = sp.csr_matrix(
                (data, (ev.users, ev.items)), shape=(self.info.n_users, self.info.n_items)
            )
            m.sum_duplicates()
            m.data[:] = 1.0
            self._csr[part] = m
        return self._csr[part]

    @property
    def train(self) -> sp.csr_matrix:
        return self.matrix("train")

    @property
    def valid(self) -> sp.csr_matrix:
        return self.matrix("valid")

    @property
    def test(self) -> sp.csr_matrix:
        return self.matrix("test")

    def seen(self, part: str) -> sp.csr_matrix:
        """Items to mask when ranking for ``part``: train for valid, train+valid for test."""
        if part == "valid":
            return self.train
        if part == "test":
            key = "train+valid"
            if key not in self._csr:
                m = (self.train + self.valid).tocsr()
                m.data[:] = 1.0
                self._csr[key] = m
            return self._csr[key]
        raise ValueError(f"no seen-mask for part {part!r}")

    def history(self, parts: tuple[str, ...] = ("train",)) -> tuple[np.ndarray, np.ndarray]:
        """Per-user time-ordered item sequences of the given parts, as (indptr, items)."""
        users = np.concatenate([self.events[p].users for p in parts])
        items = np.concatenate([self.events[p].items for p in parts])
        ts_list = [self.events[p].timestamps for p in parts]
        order_keys = [np.concatenate([np.full(len(self.events[p].users), i) for i, p in
                                      enumerate(parts)])]
        if all(t is not None for t in ts_list):
            ts = np.concatenate(ts_list)  # type: ignore[arg-type]
            # stable: by user, then time, then part, then original position
            order = np.lexsort((order_keys[0], ts, users))
        else:
            order = np.lexsort((order_keys[0], users))
        users, items = users[order], items[order]
        indptr = np.zeros(self.info.n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(users, minlength=self.info.n_users), out=indptr[1:])
        return indptr, items

    def item_feature_matrix(self) -> np.ndarray | None:
        """Numeric item features (e.g. genre flags) as ``[n_items, F]`` float32, or None."""
        specs = [f.name for f in self.info.item_features if f.kind == "numeric"]
        if self.item_features is None or not specs:
            return None
        return self.item_features[specs].to_numpy(dtype=np.float32)

    def field_table(self, owner: str) -> dict[str, np.ndarray]:
        """The batched fields owned by ``owner`` (``user``/``item``), one row per user/item
        index. The user table also holds each sequence field as of the end of the train
        part (the user's last positive train items), for ranking all items."""
        if owner not in ("user", "item"):
            raise ValueError(f"field tables exist for 'user' and 'item', not {owner!r}")
        if owner in self._tables:  # encoded once, or given (RecData.with_item_field)
            return self._tables[owner]
        if self.field_encoder is None:
            return {}
        if owner not in self._tables:
            ids = self.user_ids if owner == "user" else self.item_ids
            table = self.field_encoder.encode_table(owner, ids, self._frames.get(owner))
            if owner == "user":
                table.update(self._train_sequences())
            self._tables[owner] = table
        return self._tables[owner]

    def with_item_field(self, spec: FieldSpec_, values: np.ndarray) -> RecData:
        """A copy of this data with one more item-owned field: ``spec`` is appended to
        ``info.fields`` and ``values[i]`` (item ``i``'s value) to the item field table.
        The logged rows do not carry it; click models look it up by item
        (``CTRModel.row_fields``). The item-text stage adds ``item_text`` this way."""
        if spec.owner != "item":
            raise ValueError(f"with_item_field adds item-owned fields, not {spec.owner!r}")
        taken = [f.name for f in self.info.fields]
        if spec.name in taken:
            raise DataError(f"the data already has a field named {spec.name!r}; rename that "
                            f"field (dataset.fields) so the item-owned {spec.kind} field "
                            f"{spec.name!r} can be added")
        if len(values) != self.info.n_items:
            raise ValueError(f"field {spec.name!r}: {len(values)} values for "
                             f"{self.info.n_items} items")
        table = {**self.field_table("item"), spec.name: values}
        info = dataclasses.replace(self.info, fields=(*self.info.fields, spec))
        return dataclasses.replace(self, info=info, _tables={**self._tables, "item": table})

    def multi_hot(self, owner: str, names: list[str] | tuple[str, ...] | None = None
                  ) -> tuple[sp.csr_matrix, list[str]]:
        """The ``owner``'s (``user``/``item``) multi-valued fields as one 0/1 CSR
        ``[n, sum of vocabularies]`` (padding and out-of-vocabulary codes get no
        column), and the field names in column order. ``names``: which fields
        (default: every multi-valued field of the owner)."""
        specs = [f for f in self.info.fields
                 if f.owner == owner and f.kind == "multi_categorical"
                 and (names is None or f.name in names)]
        n = self.info.n_users if owner == "user" else self.info.n_items
        table = self.field_table(owner)
        blocks = []
        for f in specs:
            codes = table[f.name]
            rows, cols = np.nonzero(codes >= 2)
            m = sp.csr_matrix((np.ones(len(rows), dtype=np.float32),
                               (rows, codes[rows, cols] - 2)), shape=(n, f.vocab_size - 2))
            m.sum_duplicates()
            m.data[:] = 1.0
            blocks.append(m)
        matrix = sp.hstack(blocks, format="csr") if blocks else sp.csr_matrix((n, 0))
        return matrix, [f.name for f in specs]

    def _train_sequences(self) -> dict[str, np.ndarray]:
        """Each sequence field as of the end of the train part: every user's last
        ``max_len`` train events (clicked rows for labeled data), left-padded with 0."""
        encoder = self.field_encoder
        seqs = [d for d in encoder.decls if d.kind == "sequence"] if encoder else []
        if not seqs:
            return {}
        indptr, items = self.history(("train",))
        out = {}
        for d in seqs:
            length = encoder.fitted[d.name].max_len
            item_table = self.field_table("item")
            codes = (item_table[d.shares][items] if d.shares in item_table else
                     encoder.encode_values(d.shares, pd.Series(np.asarray(self.item_ids)[items])))
            idx = indptr[1:, None] - length + np.arange(length)[None, :]
            valid = idx >= indptr[:-1, None]
            out[d.name] = np.where(valid, codes[np.clip(idx, 0, max(len(codes) - 1, 0))]
                                   if len(codes) else 0, 0)
        return out

    def item_popularity(self) -> np.ndarray:
        """Number of training users per item."""
        return np.asarray(self.train.sum(axis=0)).ravel()


def _feature_frame(frame: pd.DataFrame | None, ids: pd.Index, key: str,
                   skip: set[str] | frozenset[str] = frozenset()
                   ) -> tuple[pd.DataFrame | None, tuple[FeatureSpec, ...]]:
    if frame is None or frame.empty:
        return None, ()
    if frame.index.name != key and key in frame.columns:
        frame = frame.set_index(key)
    frame = frame[[c for c in frame.columns if c not in skip]]
    if frame.columns.empty:
        return None, ()
    frame = frame[~frame.index.duplicated(keep="last")]
    aligned = frame.reindex(ids)
    specs: list[FeatureSpec] = []
    out = {}
    for col in aligned.columns:
        s = aligned[col]
        if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            out[col] = s.astype("float32").fillna(0.0).to_numpy()
            specs.append(FeatureSpec(str(col), "numeric"))
        else:
            codes, uniques = pd.factorize(s.astype("string"), sort=True)
            out[col] = s.astype("string").to_numpy()
            if len(uniques) > max(50, len(ids) // 2):  # nearly unique strings: free text
                specs.append(FeatureSpec(str(col), "text"))
                continue
            specs.append(FeatureSpec(str(col), "categorical", len(uniques) + 1))
            out[f"{col}__code"] = (codes + 1).astype("int64")  # 0 = missing
    result = pd.DataFrame(out, index=pd.RangeIndex(len(ids)))
    return result, tuple(specs)


def _sorted_ids(values: pd.Series, column: str) -> pd.Index:
    """Distinct ids, sorted; ids of mixed types (e.g. 1 and "a") are a clear error."""
    unique = pd.Index(pd.unique(values))
    try:
        return unique.sort_values()
    except TypeError:
        kinds = sorted({type(v).__name__ for v in unique[:1000]})
        raise DataError(
            f"column {column!r} mixes id types ({', '.join(kinds)}); ids must be all "
            f"integers or all strings. Convert them in your loader or data file."
        ) from None


def encode(split: Split, *, fields: Any = None, with_fields: bool = False) -> RecData:
    """Map raw ids to contiguous ints and build per-part events.

    Users are those with at least one training interaction; valid/test rows of
    users without training history are dropped (counted in ``meta``), since no
    model can rank for them by their history. A cold-user split
    (``split.cold_start == "users"``) keeps them: every user of any part gets an
    index, and the cold ones have no train row. Items are every item seen in any
    part, so held-out
    items never seen in training still count as relevant.

    Labeled data (a ``label`` column: logged impressions) keeps every row in
    ``RecData.labeled`` and its clicked rows (label 1) as the events, so the
    ranking protocol runs on the same split. Typed fields are fitted on the train
    part (``fields`` is ``dataset.fields`` from the config) for labeled data, or
    when ``with_fields`` (a model asks for fields).
    """
    full_parts = split.parts()
    labeled = LABEL in full_parts["train"].interactions.columns
    parts = ({name: ds.with_interactions(ds.interactions[ds.interactions[LABEL] == 1])
              for name, ds in full_parts.items()} if labeled else full_parts)
    train = full_parts["train"].interactions
    if len(train) == 0:
        raise DataError(
            "the training part is empty after splitting; check the split ratios and "
            "the preprocessing filters (k-core, binarize threshold)."
        )
    all_items = pd.concat([p.interactions[ITEM] for p in full_parts.values()], ignore_index=True)
    cold_start = getattr(split, "cold_start", "") or ""
    if cold_start == "users":  # users of valid/test only keep an index (no train row)
        all_users = pd.concat([p.interactions[USER] for p in full_parts.values()],
                              ignore_index=True)
        user_ids = _sorted_ids(all_users, "user_id")
    else:
        user_ids = _sorted_ids(train[USER], "user_id")
    item_ids = _sorted_ids(all_items, "item_id")
    has_ts = all(p.has_timestamps for p in parts.values())
    events: dict[str, Events] = {}
    dropped: dict[str, int] = {}
    for name, ds in parts.items():
        df = ds.interactions
        u = user_ids.get_indexer(df[USER])
        i = item_ids.get_indexer(df[ITEM])
        keep = u >= 0
        dropped[name] = int((~keep).sum())
        ts = df[TIMESTAMP].to_numpy()[keep] if has_ts else None
        u, i = u[keep], i[keep]
        order = lexsort_stable((ts, u)) if ts is not None else stable_argsort(u)
        events[name] = Events(
            u[order].astype(np.int64, copy=False),
            i[order].astype(np.int64, copy=False),
            ts[order] if ts is not None else None,
        )
    if any(dropped.values()):
        log.warning(
            "dropped %d valid and %d test interactions of users with no training history",
            dropped["valid"], dropped["test"],
        )
    decls = declared_fields(split.train, fields)
    # multi-valued columns are fields only (not one categorical value of the joined list)
    multi = {d.column for d in decls if d.kind == "multi_categorical"}
    items, item_specs = _feature_frame(split.train.items, item_ids, ITEM, multi)
    users, user_specs = _feature_frame(split.train.users, user_ids, USER, multi)
    encoder = None
    if labeled or with_fields:
        encoder = FieldEncoder(decls, split.train.source or split.train.name).fit(split.train)
        log.info("fields (fitted on train): %s", ", ".join(
            f"{f.name} ({f.kind}, {f.owner}"
            + (f", {f.vocab_size} codes" if f.vocab_size else "")
            + (f", max_len {f.max_len}" if f.max_len else "") + ")"
            for f in encoder.specs()))
    labeled_rows = (_labeled_rows(full_parts, encoder, user_ids, item_ids, has_ts)
                    if labeled and encoder is not None else {})
    info = DataInfo(
        n_users=len(user_ids),
        n_items=len(item_ids),
        has_timestamps=has_ts,
        has_ratings=split.train.has_ratings,
        item_features=item_specs,
        user_features=user_specs,
        n_train=len(events["train"].users),
        name=split.train.name,
        fields=encoder.specs() if encoder is not None else (),
        has_labels=labeled,
        train_history_lengths=np.bincount(events["train"].users, minlength=len(user_ids)),
        cold_start=cold_start,
    )
    return RecData(
        info=info,
        user_ids=user_ids,
        item_ids=item_ids,
        events=events,
        item_features=items,
        user_features=users,
        meta={"dropped_eval_interactions_without_train_user": dropped},
        labeled=labeled_rows,
        field_encoder=encoder,
        _frames={"user": split.train.users, "item": split.train.items},
    )


def _labeled_rows(parts: dict[str, Any], encoder: FieldEncoder, user_ids: pd.Index,
                  item_ids: pd.Index, has_ts: bool) -> dict[str, LabeledRows]:
    """Every labeled row of each part with its fields; sequence fields from the log.

    A row of part ``p`` sees the clicked rows of its user strictly before it in
    parts up to ``p`` (train rows see train rows only; test rows also see valid and
    earlier test rows), so no training feature reads a held-out label.
    """
    names = list(PARTS)
    frames = [parts[p].interactions for p in names]
    sizes = [len(f) for f in frames]
    part_of = np.repeat(np.arange(len(names)), sizes)
    all_rows = pd.concat(frames, ignore_index=False)
    raw_users = all_rows[USER].to_numpy()
    users = user_ids.get_indexer(raw_users).astype(np.int64)
    unknown = users < 0
    if unknown.any():
        codes, _ = pd.factorize(raw_users[unknown])
        users[unknown] = len(user_ids) + codes
    items = item_ids.get_indexer(all_rows[ITEM].to_numpy()).astype(np.int64)
    labels = all_rows[LABEL].to_numpy(dtype=np.float32)
    train = parts["train"]
    row_fields = encoder.encode_rows(all_rows.reset_index(drop=True), train.users, train.items)
    seq_decls = [d for d in encoder.decls if d.kind == "sequence"]
    if seq_decls:
        times = (all_rows[TIMESTAMP].to_numpy() if has_ts
                 else np.asarray(all_rows.index, dtype=np.int64))
        positive = labels == 1
        for d in seq_decls:
            codes = row_fields[d.shares]  # the shared field's codes, already encoded
            length = encoder.fitted[d.name].max_len
            seq = np.zeros((len(all_rows), length), dtype=np.int64)
            for p in range(len(names)):
                upto = part_of <= p
                target = part_of[upto] == p
                seq[part_of == p] = history_before(users[upto], times[upto], codes[upto],
                                                   positive[upto], target, length)
            row_fields[d.name] = seq
    out = {}
    for p, name in enumerate(names):
        sel = part_of == p
        out[name] = LabeledRows(users[sel], items[sel], labels[sel],
                                {k: v[sel] for k, v in row_fields.items()},
                                np.asarray(all_rows.index)[sel])
    return out

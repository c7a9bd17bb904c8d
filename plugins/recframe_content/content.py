"""Content-based recommender: cosine between a user profile and item feature vectors."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from recframe.api import (
    ConfigError,
    DataError,
    DataInfo,
    RecData,
    RecModel,
    TrainFormat,
    describe_blocks,
    feature_blocks,
)
from recframe.api import text_encoders as embeddings
from recframe_content.features import BLOCK_KIND, BLOCKS, VectorParams, columns_of, item_vectors

log = logging.getLogger(__name__)

DECAY_UNITS = ("interactions", "seconds")
STORAGE = ("auto", "dense", "sparse")
#: ``storage: auto`` keeps item vectors dense up to this many cells, or when denser than 10%
_DENSE_CELLS = 1 << 24


def _sparse_tensor(m: sp.csr_matrix) -> torch.Tensor:
    """A coalesced sparse COO tensor (``torch.sparse.mm`` works on it on CPU and GPU)."""
    coo = m.tocoo()
    indices = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    values = torch.from_numpy(coo.data.astype(np.float32))
    return torch.sparse_coo_tensor(indices, values, size=m.shape, check_invariants=True).coalesce()


class ContentBased(RecModel):
    """Content-based filtering with a profile of the items a user consumed.

    Lops, de Gemmis & Semeraro, "Content-based Recommender Systems: State of
    the Art and Trends", in Recommender Systems Handbook, Springer 2011
    (vector-space profile, cosine matching); pretrained text embeddings as
    item representations follow Reimers & Gurevych, "Sentence-BERT: Sentence
    Embeddings using Siamese BERT-Networks", EMNLP 2019.

    Item vectors ``x_i`` come from item features only (see
    :mod:`recframe_content.features`) and are L2-normalized. The profile of
    user ``u`` with consumed items ``H_u`` (train history for validation,
    train + valid for test) is the weighted mean

    .. math:: p_u = \\sum_{j \\in H_u} w_{uj}\\, x_j \\,/\\, \\sum_j w_{uj}, \\qquad
        w_{uj} = 2^{-\\Delta_{uj} / h}

    with ``w = 1`` (plain mean) when ``decay_half_life`` ``h`` is null, else
    ``Delta`` = how many interactions ago (``decay_unit: interactions``) or
    seconds before the user's latest interaction (``seconds``) ``j`` was
    consumed. The score is the cosine plus an optional popularity prior:

    .. math:: s(u, i) = \\cos(p_u, x_i) + \\beta\\,
        \\frac{\\log(1 + \\mathrm{pop}_i)}{\\log(1 + \\max_j \\mathrm{pop}_j)}

    (``popularity_blend`` ``beta``; 0 = pure content). Nothing is learned
    from interactions except that prior, so items nobody has interacted with
    yet (cold start) are ranked by their features like any other. The prior
    is 0 for such items, so for cold-start catalogues use ``popularity_blend:
    0`` (pure content); with a prior the model is a feature-augmented
    popularity hybrid. With ``decay_unit: seconds`` an item's time is its
    latest train/valid interaction with the user.
    """

    train_format = TrainFormat.FIT
    needs = frozenset({"item_features"})
    #: a cold item is ranked by its features like any other (cold users are not: with
    #: no history the profile is empty and only the popularity prior is left)
    scores_cold_items = True

    def __init__(self, n_items: int, vectors: VectorParams, *, decay_half_life: float | None,
                 decay_unit: str = "interactions", max_seq_len: int = 200,
                 popularity_blend: float = 0.0, storage: str = "auto") -> None:
        super().__init__()
        self.n_items = n_items
        self.vectors = vectors
        self.decay_half_life = decay_half_life
        self.decay_unit = decay_unit
        self.max_seq_len = max_seq_len if decay_half_life is not None else 0
        self.popularity_blend = popularity_blend
        self.storage = storage
        # the only fitted state: normalized log popularity (used when popularity_blend > 0)
        self.register_buffer("popularity_prior", torch.zeros(n_items))
        # derived from item features in prepare(), not saved in checkpoints
        self.register_buffer("item_vectors", None, persistent=False)
        self.register_buffer("item_vectors_t", None, persistent=False)
        self.register_buffer("event_keys", None, persistent=False)
        self.register_buffer("event_times", None, persistent=False)

    # -- data-dependent tensors ---------------------------------------------------------
    def prepare(self, data: RecData) -> None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
        x = item_vectors(data, self.vectors, device=device)
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
        x = (sp.diags(np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)) @ x)
        x = sp.csr_matrix(x, dtype=np.float32)
        if (norms == 0).any():
            log.warning("content: %d of %d items have no feature and score 0",
                        int((norms == 0).sum()), len(norms))
        cells = x.shape[0] * x.shape[1]
        sparse = self.storage == "sparse" or (
            self.storage == "auto" and cells > _DENSE_CELLS and x.nnz < 0.1 * cells)
        target = self.popularity_prior.device
        if sparse:
            self.item_vectors = _sparse_tensor(x).to(target)
            self.item_vectors_t = _sparse_tensor(x.T.tocsr()).to(target)
        else:
            self.item_vectors = torch.from_numpy(x.toarray()).to(target)
            self.item_vectors_t = None
        if self.decay_half_life is not None and self.decay_unit == "seconds":
            self._index_event_times(data)

    def _index_event_times(self, data: RecData) -> None:
        """Sorted ``user * n_items + item`` keys of train + valid events and their latest time."""
        parts = [data.events[p] for p in ("train", "valid")]
        if any(ev.timestamps is None for ev in parts):
            raise DataError("content: decay_unit=seconds needs timestamps; the data has none "
                            "(use decay_unit=interactions)")
        keys = np.concatenate([ev.users * self.n_items + ev.items for ev in parts])
        times = np.concatenate([np.asarray(ev.timestamps, dtype=np.float64) for ev in parts])
        order = np.lexsort((times, keys))
        keys, times = keys[order], times[order]
        last = np.r_[keys[1:] != keys[:-1], True]  # latest time per (user, item)
        target = self.popularity_prior.device
        self.event_keys = torch.from_numpy(keys[last]).to(target)
        self.event_times = torch.from_numpy(times[last]).to(target)

    def fit(self, data: RecData) -> None:
        log_pop = np.log1p(data.item_popularity().astype(np.float64))
        top = log_pop.max(initial=0.0)
        prior = log_pop / top if top > 0 else log_pop
        self.popularity_prior.copy_(torch.from_numpy(prior).float())

    # -- scoring --------------------------------------------------------------------------
    def _history_weights(self, users: torch.Tensor, context: Mapping[str, torch.Tensor]
                         ) -> torch.Tensor:
        """``[B, n_items]`` weights of each consumed item in the user's profile."""
        batch = len(users)
        device = self.popularity_prior.device
        if self.decay_half_life is None:
            rows = context["seen_rows"].to(device)
            cols = context["seen_cols"].to(device)
            weights = torch.zeros(batch, self.n_items, device=device)
            weights[rows, cols] = 1.0
            return weights
        seq = context["seq"].to(device)  # [B, L] most recent last, left-padded with -1
        valid = seq >= 0
        items = seq.clamp(min=0)
        if self.decay_unit == "interactions":
            length = seq.shape[1]
            age = (length - 1 - torch.arange(length, device=device)).double()
            # left padding: the last column is the most recent item of every user
            age = age.unsqueeze(0).expand(batch, -1)
        else:
            keys = users.to(device).unsqueeze(1) * self.n_items + items
            idx = torch.searchsorted(self.event_keys, keys).clamp(max=len(self.event_keys) - 1)
            found = valid & (self.event_keys[idx] == keys)
            times = torch.where(found, self.event_times[idx],
                                torch.full_like(self.event_times[idx], -math.inf))
            latest = times.max(dim=1, keepdim=True).values
            age = torch.where(found, latest - times, torch.zeros_like(times))
            valid = found
        w = torch.exp2(-age / float(self.decay_half_life))
        w = torch.where(valid, w, torch.zeros_like(w)).float()
        weights = torch.zeros(batch, self.n_items, device=device)
        return weights.scatter_add_(1, items, w)

    def score(self, users: torch.Tensor, context: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.item_vectors is None:
            raise RuntimeError("ContentBased.score called before prepare(data)")
        weights = self._history_weights(users, context)
        weights = weights / weights.sum(dim=1, keepdim=True).clamp_min(1e-12)
        if self.item_vectors_t is None:  # dense [n_items, D]
            profile = weights @ self.item_vectors
            profile = profile / profile.norm(dim=1, keepdim=True).clamp_min(1e-12)
            scores = profile @ self.item_vectors.T
        else:  # sparse: x^T w^T, then x p^T
            profile = torch.sparse.mm(self.item_vectors_t, weights.T.contiguous()).T
            profile = profile / profile.norm(dim=1, keepdim=True).clamp_min(1e-12)
            scores = torch.sparse.mm(self.item_vectors, profile.T.contiguous()).T.contiguous()
        if self.popularity_blend:
            scores = scores + self.popularity_blend * self.popularity_prior
        return scores


# -- build: validate model.* -----------------------------------------------------------------

_KEYS = {
    "name", "batch_size", "lr", "weight_decay", "item_vectors", "block_weights",
    "numeric_columns", "categorical_columns", "text_columns", "tfidf_min_df", "tfidf_max_df",
    "tfidf_max_features", "tfidf_sublinear_tf", "encoder", "embedding_batch_size",
    "embedding_cache_dir", "decay_half_life", "decay_unit", "max_seq_len", "popularity_blend",
    "storage", "text_block",
}
AUTO = "auto"
#: what ``item_vectors: auto`` builds from text columns (``model.text_block``)
TEXT_BLOCKS = ("tfidf", "minilm")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _str_list(cfg: Any, key: str, default: Any) -> list[str] | None:
    value = cfg.get(key, default)
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    try:
        items = list(value)
    except TypeError:
        items = None
    if items is None or not all(isinstance(v, str) for v in items):
        raise ConfigError(f"model.{key} must be a name or a list of names, got {value!r}")
    return items


def _columns(info: DataInfo, cfg: Any, key: str, kind: str) -> tuple[str, ...]:
    """The columns of one feature kind a block reads: all of them by default, or the named
    ones. Text blocks may also name categorical columns (their raw strings, e.g. tags)."""
    available = columns_of(info, kind)
    allowed = available + (columns_of(info, "categorical") if kind == "text" else [])
    chosen = _str_list(cfg, key, None)
    if chosen is None:
        return tuple(available)
    unknown = [c for c in chosen if c not in allowed]
    if unknown:
        raise ConfigError(
            f"model.{key}: {unknown} are not {kind} item features of dataset "
            f"{info.name!r}; available: {allowed}")
    return tuple(chosen)


def _is_auto(cfg: Any) -> bool:
    """``model.item_vectors`` is ``auto`` (the default): every block the data has."""
    return (_str_list(cfg, "item_vectors", AUTO) or []) == [AUTO]


def _blocks(info: DataInfo, cfg: Any, columns: Mapping[str, tuple[str, ...]]) -> list[str]:
    """``model.item_vectors``: ``auto`` = every block whose columns the data has (text
    through ``model.text_block``); an explicit list must name blocks the data has."""
    kinds = {f.name: f.kind for f in info.item_features}
    kinds.update({f.name: f.kind for f in info.fields
                  if f.owner == "item" and f.kind == "multi_categorical"})
    if _is_auto(cfg):
        text_block = cfg.get("text_block", "tfidf")
        if text_block not in TEXT_BLOCKS:
            raise ConfigError(f"model.text_block must be one of {list(TEXT_BLOCKS)} (how "
                              f"item_vectors=auto turns text columns into a block), "
                              f"got {text_block!r}")
        blocks = [b for b in ("numeric", "categorical", text_block) if columns[BLOCK_KIND[b]]]
        if blocks:
            return blocks
        if kinds:
            raise ConfigError(
                f"model.numeric_columns/categorical_columns/text_columns select none of the "
                f"item features of dataset {info.name!r} ({kinds}); set them to null (all "
                f"columns) or name some")
        raise ConfigError(
            f"model 'content' ranks items by their features, but dataset {info.name!r} has "
            f"no item feature at all (numeric, categorical, multi-valued or text). Load some "
            f"(dataset.item_features={{path: items.csv, key: item_id}}; a column like "
            f"Action|Comedy as dataset.fields={{genres: {{kind: multi_categorical, sep: "
            f"'|'}}}}), or use a model that needs no features (e.g. pop, itemknn, bpr, ease, "
            f"sasrec; lightfm_style and mlp_ctr run on ids alone)")
    blocks = _str_list(cfg, "item_vectors", None) or []
    bad = [b for b in blocks if b not in BLOCKS]
    if not blocks or bad or len(set(blocks)) != len(blocks):
        raise ConfigError(f"model.item_vectors must be auto (every block the data has) or a "
                          f"non-empty list of distinct blocks from {list(BLOCKS)}, got "
                          f"{cfg.get('item_vectors')!r}")
    for b in blocks:
        if not columns[BLOCK_KIND[b]]:
            raise ConfigError(
                f"model.item_vectors lists {b!r}, but dataset {info.name!r} has no "
                f"{BLOCK_KIND[b]} item feature for it (or model.{BLOCK_KIND[b]}_columns "
                f"selects none); its item features are {kinds or 'none'}. Drop {b!r} from "
                f"the list, or use model.item_vectors=auto (every block the data has)")
    return blocks


def build_content(info: DataInfo, cfg: Any) -> ContentBased:
    """Validate ``model.*`` and build :class:`ContentBased`."""
    unknown = sorted(set(cfg.keys()) - _KEYS) if hasattr(cfg, "keys") else []
    if unknown:
        raise ConfigError(f"model: unknown key(s) {unknown} for model 'content'; "
                          f"known: {sorted(_KEYS - {'name'})}")
    columns = {kind: _columns(info, cfg, f"{kind}_columns", kind)
               for kind in ("numeric", "categorical", "text")}
    blocks = _blocks(info, cfg, columns)
    raw_weights = cfg.get("block_weights", {"categorical": 2.0})
    weights = [1.0] * len(blocks)
    if raw_weights is not None:
        try:
            pairs = dict(raw_weights).items()
        except (TypeError, ValueError):
            pairs = None
        if pairs is None or not all(k in BLOCKS and _is_number(w) and w > 0 for k, w in pairs):
            raise ConfigError(f"model.block_weights must be null or a mapping block -> positive "
                              f"weight (blocks: {list(BLOCKS)}; missing = 1), e.g. "
                              f"{{categorical: 2}}; got {raw_weights!r}")
        given = dict(pairs)
        weights = [float(given.get(b, 1.0)) for b in blocks]
    numeric, categorical, text = columns["numeric"], columns["categorical"], columns["text"]
    min_df = cfg.get("tfidf_min_df", 1)
    if not _is_int(min_df) or min_df < 1:
        raise ConfigError(f"model.tfidf_min_df must be an integer >= 1, got {min_df!r}")
    max_df = cfg.get("tfidf_max_df", 1.0)
    if not _is_number(max_df) or not 0 < max_df <= 1:
        raise ConfigError(f"model.tfidf_max_df must be a share in (0, 1], got {max_df!r}")
    max_features = cfg.get("tfidf_max_features", None)
    if max_features is not None and (not _is_int(max_features) or max_features < 1):
        raise ConfigError(f"model.tfidf_max_features must be null or an integer >= 1, "
                          f"got {max_features!r}")
    sublinear = cfg.get("tfidf_sublinear_tf", True)
    if not isinstance(sublinear, bool):
        raise ConfigError(f"model.tfidf_sublinear_tf must be true or false, got {sublinear!r}")
    encoder = cfg.get("encoder", embeddings.DEFAULT_ENCODER)
    if not isinstance(encoder, str) or not encoder:
        raise ConfigError(f"model.encoder must be an encoder name or directory, got {encoder!r}")
    if "minilm" in blocks:
        problem = embeddings.missing_dependency(encoder)
        if problem:
            key = "text_block" if _is_auto(cfg) else "encoder"
            raise ConfigError(f"model.{key}: minilm needs the encoder; {problem}")
    emb_batch = cfg.get("embedding_batch_size", 64)
    if not _is_int(emb_batch) or emb_batch < 1:
        raise ConfigError(f"model.embedding_batch_size must be an integer >= 1, got {emb_batch!r}")
    cache_dir = cfg.get("embedding_cache_dir", None)
    if cache_dir is not None and not isinstance(cache_dir, str):
        raise ConfigError(f"model.embedding_cache_dir must be null or a path, got {cache_dir!r}")
    half_life = cfg.get("decay_half_life", None)
    if half_life is not None and (not _is_number(half_life) or half_life <= 0):
        raise ConfigError(f"model.decay_half_life must be null (plain mean) or a positive "
                          f"number, got {half_life!r}")
    unit = cfg.get("decay_unit", "interactions")
    if unit not in DECAY_UNITS:
        raise ConfigError(f"model.decay_unit must be one of {list(DECAY_UNITS)}, got {unit!r}")
    if half_life is not None and unit == "seconds" and not info.has_timestamps:
        raise ConfigError(f"model.decay_unit=seconds needs timestamps, which dataset "
                          f"{info.name!r} lacks; use decay_unit=interactions")
    max_seq_len = cfg.get("max_seq_len", 200)
    if not _is_int(max_seq_len) or max_seq_len < 1:
        raise ConfigError(f"model.max_seq_len must be an integer >= 1, got {max_seq_len!r}")
    beta = cfg.get("popularity_blend", 3.0)
    if not _is_number(beta) or beta < 0:
        raise ConfigError(f"model.popularity_blend must be a number >= 0, got {beta!r}")
    storage = cfg.get("storage", "auto")
    if storage not in STORAGE:
        raise ConfigError(f"model.storage must be one of {list(STORAGE)}, got {storage!r}")
    if _is_auto(cfg):
        log.info("content: item_vectors=auto chose blocks %s (weights %s) from the item "
                 "features of %r: %s", blocks, weights, info.name,
                 describe_blocks(feature_blocks(info, "item")))
    vectors = VectorParams(
        blocks=tuple(blocks), weights=tuple(float(w) for w in weights),
        numeric_columns=numeric, categorical_columns=categorical, text_columns=text,
        tfidf_min_df=int(min_df), tfidf_max_df=float(max_df),
        tfidf_max_features=None if max_features is None else int(max_features),
        tfidf_sublinear_tf=sublinear, encoder=encoder, embedding_batch_size=int(emb_batch),
        embedding_cache_dir=cache_dir,
    )
    model = ContentBased(info.n_items, vectors,
                         decay_half_life=None if half_life is None else float(half_life),
                         decay_unit=unit, max_seq_len=int(max_seq_len),
                         popularity_blend=float(beta), storage=storage)
    if _is_auto(cfg):
        # recorded in results.json (data_choices) where the runner supports it
        model.data_choices = {"item_vectors": {
            "value": list(blocks),
            "why": f"auto: every block the item features of {info.name!r} provide "
                   f"({describe_blocks(feature_blocks(info, 'item'))})"}}
    return model

"""The semantic-ID stage of TIGER: item embeddings -> RQ-VAE codes -> unique code tuples.

Rajput et al., "Recommender Systems with Generative Retrieval", NeurIPS 2023, section 3.1.
Each item's embedding comes from its text (the core's item-text stage,
:func:`recframe.api.item_text_vectors`) or, for catalogues without text, from a truncated
SVD of the train item-user matrix (the item's collaborative signal: its left singular
vector scaled by the singular values, L2-normalised). The RQ-VAE turns it into
``levels`` codes; items sharing all of them get one more code numbering them (the
collision level), so every placed item has a unique tuple. The tuples are cached on disk
per dataset, embeddings and settings (atomic write), so a sweep trains the RQ-VAE once.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from recframe.api import (
    ConfigError,
    DataError,
    RecData,
    TextSettings,
    atomic_write,
    item_text_vectors,
    item_texts,
    text_encoders,
)
from recframe_generative.rqvae import train_rqvae

log = logging.getLogger(__name__)

SOURCES = ("auto", "text", "svd")
MISSING = ("exclude", "error")


@dataclass(frozen=True)
class SemanticIdSettings:
    """``model.semantic_ids`` (conf/model/tiger.yaml explains each key)."""

    source: str = "auto"
    levels: int = 3
    codebook_size: int = 256
    collision_codes: int = 512
    latent_dim: int = 32
    hidden: tuple[int, ...] = (256, 128)
    beta: float = 0.25
    epochs: int = 50
    batch_size: int = 1024
    lr: float = 1e-3
    kmeans_iters: int = 20
    svd_dim: int = 64
    missing: str = "exclude"
    seed: int = 0
    cache_dir: str | None = None
    text: TextSettings = field(default_factory=TextSettings)

    def key(self) -> dict[str, Any]:
        """What the cached codes depend on, besides the embeddings."""
        out = asdict(self)
        for k in ("cache_dir", "text", "missing", "collision_codes"):
            out.pop(k)
        return out


@dataclass
class SemanticIds:
    """``codes[i]``: item ``i``'s tuple (``levels`` codes + its collision number), or a
    row of ``-1`` when the item could not be placed (no embedding)."""

    codes: np.ndarray
    source: str
    stats: dict[str, Any]


# -- embeddings ---------------------------------------------------------------
def has_any_text(data: RecData, settings: TextSettings) -> bool:
    """Whether the item-text template yields text for at least one item (no encoding)."""
    if data.item_features is None:
        return False
    try:
        return any(t.strip() for t in item_texts(data, settings.template))
    except (ConfigError, DataError):
        return False


def svd_embeddings(data: RecData, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the truncated SVD ``U S`` of the train item-user matrix, L2-normalised,
    and which items have one (at least one train interaction)."""
    matrix = sp.csr_matrix(data.train.T, dtype=np.float64)
    matrix.data[:] = 1.0
    n_items, n_users = matrix.shape
    has = np.diff(matrix.indptr) > 0
    k = max(1, min(dim, min(n_items, n_users) - 1))
    if k >= min(n_items, n_users) - 1 or min(n_items, n_users) < 3:
        u, s, _ = np.linalg.svd(matrix.toarray(), full_matrices=False)
        u, s = u[:, :k], s[:k]
    else:
        from scipy.sparse.linalg import svds

        v0 = np.random.default_rng(seed).uniform(-1, 1, min(n_items, n_users))
        u, s, _ = svds(matrix, k=k, v0=v0)
    x = u * s
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = np.where(norms > 0, x / np.maximum(norms, 1e-12), 0.0)
    return x.astype(np.float32), has & (norms[:, 0] > 0)


def item_embeddings(data: RecData, settings: SemanticIdSettings
                    ) -> tuple[np.ndarray, np.ndarray, str]:
    """``(embeddings, placed mask, source used)`` for the RQ-VAE."""
    source = settings.source
    if source == "auto":
        source = "text" if has_any_text(data, settings.text) else "svd"
    if source == "text":
        if not has_any_text(data, settings.text):
            raise DataError(
                f"model.semantic_ids.source=text: dataset {data.info.name!r} has no item text "
                f"under text.template={settings.text.template!r}, so the RQ-VAE has nothing to "
                f"quantise. Use model.semantic_ids.source=svd (learned item embeddings from "
                f"the train interactions) or source=auto.")
        vectors = item_text_vectors(data, settings.text)
        x, placed = vectors.vectors.astype(np.float32), vectors.has_text.copy()
    else:
        x, placed = svd_embeddings(data, settings.svd_dim, settings.seed)
    unplaced = int((~placed).sum())
    if unplaced:
        ids = data.item_ids[np.flatnonzero(~placed)[:5]].astype(str).tolist()
        what = "no text" if source == "text" else "no train interaction (no learned embedding)"
        if settings.missing == "error" or unplaced == len(placed):
            raise DataError(
                f"{unplaced} of {len(placed)} items have {what} (e.g. {', '.join(ids)}), so the "
                f"RQ-VAE cannot give them a semantic ID (model.semantic_ids.source={source}). "
                f"Set model.semantic_ids.missing=exclude to leave them out of generation (they "
                f"get the padding score), use source=text on a dataset with item text, or "
                f"filter such items in preprocessing.")
        log.warning("semantic IDs: %d of %d items have %s (e.g. %s); they get no semantic ID "
                    "and are never generated", unplaced, len(placed), what, ", ".join(ids))
    return x, placed, source


# -- collision level and usage --------------------------------------------------
def add_collision_level(codes: np.ndarray) -> np.ndarray:
    """``codes`` ``[N, L]`` plus a last column numbering the rows that share a tuple
    (0, 1, ... in row order), so every row's ``L + 1`` tuple is unique."""
    n = codes.shape[0]
    if n == 0:
        return np.zeros((0, codes.shape[1] + 1), dtype=np.int64)
    order = np.lexsort(codes.T[::-1])  # rows sorted by tuple, ties in row order
    ordered = codes[order]
    new_group = np.ones(n, dtype=bool)
    new_group[1:] = (ordered[1:] != ordered[:-1]).any(1)
    starts = np.flatnonzero(new_group)
    group = np.cumsum(new_group) - 1
    rank = np.arange(n) - starts[group]
    extra = np.empty(n, dtype=np.int64)
    extra[order] = rank
    return np.concatenate([codes.astype(np.int64), extra[:, None]], axis=1)


def usage_stats(codes: np.ndarray, codebook_size: int) -> dict[str, Any]:
    """Codes used per level, how many items collide and the largest collision group."""
    levels = codes.shape[1] - 1
    used = [int(np.unique(codes[:, level]).size) for level in range(levels)]
    collided = codes[:, -1]
    _, counts = np.unique(codes[:, :levels], axis=0, return_counts=True) if len(codes) else (
        None, np.zeros(0, dtype=np.int64))
    return {
        "items": int(len(codes)),
        "codes_used_per_level": used,
        "codebook_size": codebook_size,
        "distinct_prefixes": int(len(counts)),
        # items that needed a collision number other than 0
        "collision_rate": round(float((collided > 0).mean()) if len(codes) else 0.0, 6),
        "max_collisions": int(counts.max()) if len(counts) else 0,
    }


def check_collision_range(stats: dict[str, Any], collision_codes: int, dataset: str) -> None:
    """A code tuple shared by more items than the collision level can number is an error."""
    if stats["max_collisions"] > collision_codes:
        raise DataError(
            f"semantic IDs of {dataset!r}: {stats['max_collisions']} items share one code "
            f"tuple, more than the collision level's {collision_codes} codes can number "
            f"(codebook too small for the catalogue: {stats['items']} items, "
            f"{stats['codes_used_per_level']} codes used per level). Raise "
            f"model.semantic_ids.collision_codes to at least {stats['max_collisions']}, or "
            f"model.semantic_ids.codebook_size / levels, or train the RQ-VAE longer "
            f"(model.semantic_ids.epochs).")


# -- the stage, cached ------------------------------------------------------------
def default_cache_dir() -> Path:
    """``<user cache dir>/recframe/semantic_ids`` (next to the text-embedding cache)."""
    return text_encoders.default_cache_dir().parent / "semantic_ids"


def _cache_path(settings: SemanticIdSettings, dataset: str, x: np.ndarray,
                placed: np.ndarray, source: str) -> Path:
    h = hashlib.sha256()
    h.update(json.dumps({**settings.key(), "source": source}, sort_keys=True).encode())
    # rounded: an SVD computed with another thread count differs in the last bits
    h.update(np.ascontiguousarray(np.round(x, 4), dtype=np.float32).tobytes())
    h.update(placed.tobytes())
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in dataset) or "data"
    root = Path(settings.cache_dir) if settings.cache_dir else default_cache_dir()
    return root / f"{safe}-{source}-{h.hexdigest()[:16]}.npz"


def build_semantic_ids(data: RecData, settings: SemanticIdSettings) -> SemanticIds:
    """Every item's semantic ID (``-1`` rows: items left out), read from the cache or
    computed (embeddings, RQ-VAE, collision level), with its usage statistics."""
    start = time.perf_counter()
    x, placed, source = item_embeddings(data, settings)
    path = _cache_path(settings, data.info.name, x, placed, source)
    train_record: dict[str, Any] = {}
    cached = False
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as archive:
                base = archive["codes"]
                train_record = json.loads(str(archive["record"]))
            cached = base.shape == (len(x), settings.levels)
        except (OSError, ValueError, KeyError):
            log.warning("ignoring unreadable semantic-ID cache %s", path)
    if not cached:
        rows = torch.from_numpy(x[placed])
        model, train_record = train_rqvae(
            rows, hidden=settings.hidden, latent_dim=settings.latent_dim,
            levels=settings.levels, codebook_size=settings.codebook_size, beta=settings.beta,
            epochs=settings.epochs, batch_size=settings.batch_size, lr=settings.lr,
            kmeans_iters=settings.kmeans_iters, seed=settings.seed)
        base = np.full((len(x), settings.levels), -1, dtype=np.int64)
        base[placed] = model.codes(rows).numpy()
        buffer = io.BytesIO()
        np.savez(buffer, codes=base, record=np.array(json.dumps(train_record)))
        atomic_write(path, lambda tmp: tmp.write_bytes(buffer.getvalue()))
    codes = np.full((len(x), settings.levels + 1), -1, dtype=np.int64)
    codes[placed] = add_collision_level(base[placed])
    stats = usage_stats(codes[placed], settings.codebook_size)
    stats.update({"source": source, "items_without_semantic_id": int((~placed).sum()),
                  "levels": settings.levels + 1, "rqvae": train_record, "cached": cached,
                  "seconds": round(time.perf_counter() - start, 3)})
    check_collision_range(stats, settings.collision_codes, data.info.name)
    log.info("semantic IDs (%s, %s): %d items, codes used per level %s of %d, collision rate "
             "%.4f, max collisions %d%s", source, "cached" if cached else "trained",
             stats["items"], stats["codes_used_per_level"], settings.codebook_size,
             stats["collision_rate"], stats["max_collisions"],
             f", {stats['items_without_semantic_id']} items left out"
             if stats["items_without_semantic_id"] else "")
    return SemanticIds(codes, source, stats)

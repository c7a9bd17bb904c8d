"""Item vectors from item features, block by block.

Blocks (``model.item_vectors``):

- ``numeric``: the numeric item columns (e.g. ML-100K's ``genre_*`` flags), each
  divided by its largest absolute value so 0/1 flags stay 0/1 and counts or
  years cannot dominate; missing values are 0.
- ``categorical``: one-hot of each categorical column (``<col>__code``, code 0 =
  missing gets no entry), and multi-hot of each multi-valued item field
  (``RecData.multi_hot``: ``Action|Comedy`` sets two columns).
- ``tfidf``: TF-IDF of the item's text columns joined (titles, tags), see
  :mod:`recframe_content.tfidf`.
- ``minilm``: pretrained sentence embeddings of the same texts, see
  :mod:`recframe.data.text_encoders`.

Each block's rows are L2-normalized and scaled by ``sqrt(w_b / sum(w))`` before
the blocks are concatenated, so for items with every block non-zero the cosine
of two item vectors is the ``w``-weighted mean of the per-block cosines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recframe.api import DataError, DataInfo, RecData, feature_blocks, join_text_columns
from recframe.api import text_encoders as embeddings
from recframe_content.tfidf import tfidf_matrix

BLOCKS = ("numeric", "categorical", "tfidf", "minilm")
#: which feature kind feeds each block
BLOCK_KIND = {"numeric": "numeric", "categorical": "categorical", "tfidf": "text",
              "minilm": "text"}


@dataclass(frozen=True)
class VectorParams:
    """How item vectors are built (validated ``model.*`` keys)."""

    blocks: tuple[str, ...] = ("numeric",)
    weights: tuple[float, ...] = (1.0,)
    numeric_columns: tuple[str, ...] = ()
    categorical_columns: tuple[str, ...] = ()
    text_columns: tuple[str, ...] = ()
    tfidf_min_df: int = 1
    tfidf_max_df: float = 1.0
    tfidf_max_features: int | None = None
    tfidf_sublinear_tf: bool = True
    encoder: str = embeddings.DEFAULT_ENCODER
    embedding_batch_size: int = 64
    embedding_cache_dir: str | None = None


def multi_valued(info: DataInfo) -> list[str]:
    """Item fields with several values per item (e.g. genres ``Action|Comedy``)."""
    return list(feature_blocks(info, "item").get("multi_categorical", ()))


def columns_of(info: DataInfo, kind: str) -> list[str]:
    """Names of the item feature columns of one kind (``numeric``/``categorical``/``text``);
    ``categorical`` includes the multi-valued item fields (one column per value)."""
    blocks = feature_blocks(info, "item")
    flat = list(blocks.get(kind, ()))
    return flat + (multi_valued(info) if kind == "categorical" else [])


def _frame(data: RecData) -> pd.DataFrame:
    if data.item_features is None:
        if multi_valued(data.info):  # only multi-valued fields: an empty frame
            return pd.DataFrame(index=pd.RangeIndex(data.info.n_items))
        raise DataError(f"dataset {data.info.name!r} has no item features; the content "
                        f"model needs some (numeric flags, categories or text)")
    return data.item_features


def numeric_block(frame: pd.DataFrame, columns: Sequence[str]) -> sp.csr_matrix:
    """Numeric columns, each scaled by its largest absolute value (missing = 0)."""
    values = frame[list(columns)].to_numpy(dtype=np.float64, na_value=np.nan)
    values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    scale = np.abs(values).max(axis=0)
    values = values / np.where(scale > 0, scale, 1.0)
    return sp.csr_matrix(values)


def categorical_block(frame: pd.DataFrame, columns: Sequence[str]) -> sp.csr_matrix:
    """One-hot of the categorical codes of ``columns`` side by side (code 0 = missing)."""
    n = len(frame)
    parts = []
    for col in columns:
        codes = frame[f"{col}__code"].to_numpy(dtype=np.int64)
        width = int(codes.max(initial=0))
        rows = np.flatnonzero(codes > 0)
        parts.append(sp.csr_matrix((np.ones(len(rows)), (rows, codes[rows] - 1)),
                                   shape=(n, max(width, 1))))
    return sp.hstack(parts, format="csr") if parts else sp.csr_matrix((n, 0))


def _normalize_rows(m: sp.csr_matrix) -> sp.csr_matrix:
    m = sp.csr_matrix(m, dtype=np.float64)
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return (sp.diags(inv) @ m).tocsr()


def build_block(name: str, data: RecData, p: VectorParams, device: str = "cpu"
                ) -> sp.csr_matrix:
    """One block's raw ``[n_items, d]`` matrix."""
    frame = _frame(data)
    if name == "numeric":
        return numeric_block(frame, p.numeric_columns)
    if name == "categorical":
        multi = [c for c in p.categorical_columns if c in multi_valued(data.info)]
        flat = categorical_block(frame, [c for c in p.categorical_columns if c not in multi])
        if not multi:
            return flat
        return sp.hstack([flat, data.multi_hot("item", multi)[0]], format="csr")
    texts = join_text_columns(frame, p.text_columns)
    if name == "tfidf":
        matrix, _ = tfidf_matrix(texts, min_df=p.tfidf_min_df, max_df=p.tfidf_max_df,
                                 max_features=p.tfidf_max_features,
                                 sublinear_tf=p.tfidf_sublinear_tf)
        return matrix
    if name == "minilm":
        dense = embeddings.embed_texts(
            texts, encoder=p.encoder, dataset=data.info.name, cache_dir=p.embedding_cache_dir,
            batch_size=p.embedding_batch_size, device=device)
        return sp.csr_matrix(dense)
    raise ValueError(f"unknown item vector block {name!r}; expected one of {BLOCKS}")


def item_vectors(data: RecData, p: VectorParams, device: str = "cpu") -> sp.csr_matrix:
    """``[n_items, D]`` float32 CSR: the weighted, row-normalized blocks side by side.

    Rows are unit length when every block of the item is non-zero; an item
    without any feature is a zero row (it scores 0 for everybody).
    """
    total = float(sum(p.weights))
    parts = []
    for name, weight in zip(p.blocks, p.weights, strict=True):
        block = _normalize_rows(build_block(name, data, p, device))
        if block.shape[0] != data.info.n_items:
            raise DataError(f"item vector block {name!r} has {block.shape[0]} rows for "
                            f"{data.info.n_items} items")
        parts.append(block * np.sqrt(weight / total))
    out = sp.hstack(parts, format="csr").astype(np.float32)
    out.eliminate_zeros()
    return out

"""TF-IDF document vectors with scipy.sparse (no scikit-learn dependency).

Same conventions as scikit-learn's ``TfidfVectorizer`` defaults, so numbers
are comparable: lower-cased tokens of two or more word characters
(``(?u)\\b\\w\\w+\\b``), smoothed inverse document frequency

    idf(t) = ln((1 + n) / (1 + df(t))) + 1

(Salton & Buckley, "Term-weighting approaches in automatic text retrieval",
IP&M 24(5), 1988), optional sublinear term frequency ``1 + ln(tf)`` and
L2-normalized rows. Tokenizing is vectorized with pandas string methods; the
counting is one sparse matrix build.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

TOKEN_PATTERN = re.compile(r"(?u)\b\w\w+\b")


def tokenize(docs: Sequence[str | None]) -> tuple[np.ndarray, np.ndarray]:
    """Flat ``(document index, token)`` arrays of all lower-cased tokens."""
    series = pd.Series(list(docs), dtype="object").fillna("").astype(str).str.lower()
    tokens = series.str.findall(TOKEN_PATTERN).explode().dropna()
    return tokens.index.to_numpy(dtype=np.int64), tokens.to_numpy(dtype=object)


def tfidf_matrix(docs: Sequence[str | None], *, min_df: int = 1, max_df: float = 1.0,
                 max_features: int | None = None, sublinear_tf: bool = False
                 ) -> tuple[sp.csr_matrix, list[str]]:
    """``[len(docs), vocabulary]`` float32 CSR of L2-normalized TF-IDF rows, and the vocabulary.

    ``min_df``: keep tokens in at least this many documents; ``max_df``: drop
    tokens in more than this share of documents (stop words); ``max_features``:
    keep the tokens with the highest document frequency (ties: alphabetical).
    Documents without any kept token get an all-zero row.
    """
    n_docs = len(docs)
    doc_idx, tokens = tokenize(docs)
    if len(tokens) == 0:
        return sp.csr_matrix((n_docs, 0), dtype=np.float32), []
    codes, vocab = pd.factorize(pd.Series(tokens), sort=True)
    counts = sp.csr_matrix(
        (np.ones(len(codes), dtype=np.float64), (doc_idx, codes)),
        shape=(n_docs, len(vocab)),
    )
    counts.sum_duplicates()
    df = np.bincount(counts.indices, minlength=len(vocab))
    keep = (df >= min_df) & (df <= max_df * n_docs)
    kept = np.flatnonzero(keep)
    if max_features is not None and len(kept) > max_features:
        total = np.asarray(counts.sum(axis=0)).ravel()
        order = np.lexsort((kept, -total[kept]))  # most frequent first, then alphabetical
        kept = np.sort(kept[order[:max_features]])
    counts = counts[:, kept].tocsr()
    df = df[kept]
    if sublinear_tf:
        counts.data = 1.0 + np.log(counts.data)
    idf = np.log((1.0 + n_docs) / (1.0 + df)) + 1.0
    weighted = (counts @ sp.diags(idf)).tocsr()
    norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    normalized = (sp.diags(inv) @ weighted).tocsr().astype(np.float32)
    return normalized, [str(t) for t in np.asarray(vocab)[kept]]

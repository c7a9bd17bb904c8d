"""EASE: an embarrassingly shallow linear item-item autoencoder (closed form)."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from recframe.api import (
    ConfigError,
    DataInfo,
    RecData,
    RecModel,
    TrainFormat,
    check_fits_in_memory,
    float_param,
    history_matmul,
    int_param,
)

# Cells of the sparse block product kept at once while building the Gram matrix.
_GRAM_CELLS = 1 << 24


def _dense_gram(x: sp.spmatrix) -> np.ndarray:
    """``X^T X`` of the binary users x items ``x`` as a dense float64 array, a block of
    item rows at a time (each block a bounded sparse product)."""
    x = sp.csr_matrix(x, dtype=np.float64)
    xt = x.T.tocsr()
    n = x.shape[1]
    gram = np.empty((n, n), dtype=np.float64)
    step = max(1, _GRAM_CELLS // max(n, 1))
    for start in range(0, n, step):  # a loop over blocks of rows, not over items
        end = min(n, start + step)
        (xt[start:end] @ x).toarray(out=gram[start:end])
    return gram


class EASE(RecModel):
    """Item-item weights from a ridge regression with a zero diagonal, in closed form.

    Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019.
    With the binary training matrix ``X`` (users x items),

        ``min_B ||X - X B||_F^2 + l2 ||B||_F^2``  subject to  ``diag(B) = 0``

    has the solution ``P = (X^T X + l2 I)^-1``, ``B = I - P diag(1 / diag(P))``
    (so ``B[i, j] = -P[i, j] / P[j, j]`` off the diagonal). Scores are
    ``s_u = h_u B`` for the user's history row ``h_u``.

    ``B`` is a dense ``[n_items, n_items]`` float32 buffer (``4 n_items^2``
    bytes); the fit adds one float64 working matrix (``8 n_items^2`` bytes,
    factorized and inverted in place), so ``build`` refuses catalogues above
    ``max_items``.
    """

    train_format = TrainFormat.FIT
    scores_from_history = True  # scores = history x item-item weights: new users too

    def __init__(self, n_items: int, l2: float = 250.0) -> None:
        super().__init__()
        self.n_items = n_items
        self.l2 = l2
        self.register_buffer("weights", torch.zeros(n_items, n_items))

    def fit(self, data: RecData) -> None:
        """Solve in float64 with one ``n_items^2`` working matrix: the Gram matrix is
        accumulated densely block by block (never as a sparse product with ``n_items^2``
        entries), then factorized, inverted and turned into ``B`` in place."""
        self.fit_statistic(_dense_gram(data.train), data)

    #: privacy=dp_stats perturbs the Gram matrix (recframe.privacy.stats)
    private_statistic = "gram"

    def fit_statistic(self, gram_matrix: np.ndarray, data: RecData) -> None:
        """Solve from a given ``X^T X`` (float64, overwritten-safe copy taken)."""
        gram = torch.from_numpy(np.array(gram_matrix, dtype=np.float64)).to(
            self.weights.device)
        gram.diagonal().add_(self.l2)
        torch.linalg.cholesky(gram, out=gram)
        precision = torch.cholesky_inverse(gram, out=gram)  # P = G^-1
        # B[i, j] = -P[i, j] / P[j, j], diagonal 0
        precision.div_(precision.diagonal().clone().unsqueeze(0)).neg_()
        precision.diagonal().zero_()
        self.weights.copy_(precision)  # float64 -> float32 without a second n^2 copy

    def score(self, users: torch.Tensor, context: dict[str, torch.Tensor]) -> torch.Tensor:
        return history_matmul(context, len(users), self.weights)


def build_ease(info: DataInfo, cfg: Any) -> EASE:
    l2 = float_param(cfg, "l2", 250.0, strict=True)
    max_items = int_param(cfg, "max_items", 30000)
    if info.n_items > max_items:
        gib = 4 * info.n_items**2 / 2**30
        raise ConfigError(
            f"model.max_items: EASE stores a dense n_items x n_items matrix; this dataset has "
            f"{info.n_items} items ({gib:.1f} GiB in float32, plus twice that in float64 "
            f"while fitting), "
            f"above model.max_items={max_items}. Raise model.max_items if memory allows, or "
            f"filter rare items (e.g. preprocess=implicit_5core)."
        )
    check_fits_in_memory(
        "ease", 12 * info.n_items**2,
        f"12 bytes x n_items^2 = 12 x {info.n_items}^2: float32 weights and a float64 "
        f"working matrix", "Filter rare items (e.g. preprocess=implicit_5core, or a kcore "
        "step with a higher item_min) or use a model without item x item state (bpr, ials).")
    return EASE(info.n_items, l2)

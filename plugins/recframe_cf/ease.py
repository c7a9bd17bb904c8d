"""EASE: an embarrassingly shallow linear item-item autoencoder (closed form)."""

from __future__ import annotations

from typing import Any

import torch

from recframe.api import (
    ConfigError,
    DataInfo,
    RecData,
    RecModel,
    TrainFormat,
    dense_history,
    float_param,
    int_param,
)


class EASE(RecModel):
    """Item-item weights from a ridge regression with a zero diagonal, in closed form.

    Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019.
    With the binary training matrix ``X`` (users x items),

        ``min_B ||X - X B||_F^2 + l2 ||B||_F^2``  subject to  ``diag(B) = 0``

    has the solution ``P = (X^T X + l2 I)^-1``, ``B = I - P diag(1 / diag(P))``
    (so ``B[i, j] = -P[i, j] / P[j, j]`` off the diagonal). Scores are
    ``s_u = h_u B`` for the user's history row ``h_u``.

    ``B`` is a dense ``[n_items, n_items]`` float32 buffer (``4 n_items^2``
    bytes; the fit needs about three times that in float64), so ``build``
    refuses catalogues above ``max_items``.
    """

    train_format = TrainFormat.FIT
    scores_from_history = True  # scores = history x item-item weights: new users too

    def __init__(self, n_items: int, l2: float = 250.0) -> None:
        super().__init__()
        self.n_items = n_items
        self.l2 = l2
        self.register_buffer("weights", torch.zeros(n_items, n_items))

    def fit(self, data: RecData) -> None:
        x = data.train
        gram = torch.from_numpy((x.T @ x).toarray()).to(self.weights.device, torch.float64)
        gram.diagonal().add_(self.l2)
        precision = torch.cholesky_inverse(torch.linalg.cholesky(gram))  # P = G^-1
        weights = -precision / precision.diagonal().unsqueeze(0)  # B[i, j] = -P[i, j] / P[j, j]
        weights.diagonal().zero_()
        self.weights.copy_(weights.float())

    def score(self, users: torch.Tensor, context: dict[str, torch.Tensor]) -> torch.Tensor:
        history = dense_history(context, len(users), self.n_items, dtype=self.weights.dtype)
        return history @ self.weights


def build_ease(info: DataInfo, cfg: Any) -> EASE:
    l2 = float_param(cfg, "l2", 250.0, strict=True)
    max_items = int_param(cfg, "max_items", 30000)
    if info.n_items > max_items:
        gib = 4 * info.n_items**2 / 2**30
        raise ConfigError(
            f"model.max_items: EASE stores a dense n_items x n_items matrix; this dataset has "
            f"{info.n_items} items ({gib:.1f} GiB in float32, about 3x that while fitting), "
            f"above model.max_items={max_items}. Raise model.max_items if memory allows, or "
            f"filter rare items (e.g. preprocess=implicit_5core)."
        )
    return EASE(info.n_items, l2)

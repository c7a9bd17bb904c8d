"""``example``: item-to-item co-occurrence with asymmetric cosine, fitted in closed form.

A minimal but real recommender. With ``X`` the binary user x item training
matrix, ``C = X^T X`` counts how many users consumed both ``i`` and ``j`` and
``n_i = C_ii`` how many consumed ``i``. The item-item similarity is the
asymmetric cosine of Aiolli ("Efficient top-N recommendation for very large
scale binary rated datasets", RecSys 2013)::

    S_ij = C_ij / (n_i ** alpha * n_j ** (1 - alpha) + shrink),   S_ii = 0

and a user's score for item ``j`` sums the similarities from the items in the
user's history: ``s(u, j) = sum_{i in H_u} S_ij``. ``alpha = 0.5`` is the
plain cosine. A tiny log-popularity prior breaks ties (users whose history
co-occurs with nothing), so the model is never worse than random on them.

``S`` is a dense ``[n_items, n_items]`` buffer, so this suits catalogues up to
a few ten thousand items. Being a buffer, it is saved in checkpoints.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from recframe.api import ConfigError, DataInfo, RecData, RecModel, TrainFormat, dense_history


class CoOccurrence(RecModel):
    """Closed-form item-item model; see the module docstring for the formula."""

    train_format = TrainFormat.FIT  # fit(data) once, no gradient steps

    def __init__(self, n_items: int, alpha: float = 0.5, shrink: float = 10.0,
                 pop_tiebreak: float = 1e-3) -> None:
        super().__init__()
        self.n_items = n_items
        self.alpha = alpha
        self.shrink = shrink
        self.pop_tiebreak = pop_tiebreak
        # Persistent buffers: filled by fit(), saved and restored with the checkpoint.
        self.register_buffer("similarity", torch.zeros(n_items, n_items))
        self.register_buffer("prior", torch.zeros(n_items))

    def fit(self, data: RecData) -> None:
        """Compute ``S`` from the training interactions (``data.train``, binary CSR)."""
        x = data.train.astype(np.float64)
        co = (x.T @ x).toarray()
        counts = np.diag(co).copy()
        np.fill_diagonal(co, 0.0)
        denom = np.outer(counts**self.alpha, counts ** (1.0 - self.alpha)) + self.shrink
        self.similarity.copy_(torch.from_numpy(co / denom).float())
        pop = np.log1p(counts)
        self.prior.copy_(torch.from_numpy(self.pop_tiebreak * pop / max(pop.max(), 1.0)).float())

    def score(self, users: torch.Tensor, context: dict[str, torch.Tensor]) -> torch.Tensor:
        """``history @ S + prior``; the history is the batch's already-seen items."""
        history = dense_history(context, len(users), self.n_items)
        return history @ self.similarity + self.prior


def _number(cfg: Any, key: str, default: float, low: float, high: float | None = None) -> float:
    value = cfg.get(key, default)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= low
    if not ok or (high is not None and value > high):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ConfigError(f"model.{key} must be a number {bound}, got {value!r}")
    return float(value)


def build_example(info: DataInfo, cfg: Any) -> CoOccurrence:
    """Build from the ``model`` config node (``conf/model/example.yaml``); validate it first."""
    return CoOccurrence(
        info.n_items,
        alpha=_number(cfg, "alpha", 0.5, 0.0, 1.0),
        shrink=_number(cfg, "shrink", 10.0, 0.0),
        pop_tiebreak=_number(cfg, "pop_tiebreak", 1e-3, 0.0),
    )

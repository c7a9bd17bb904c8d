"""BPR-MF: matrix factorization trained with Bayesian Personalized Ranking."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from recframe.api import (
    ConfigError,
    DataInfo,
    RecModel,
    TrainFormat,
    dense_history,
    least_squares_fold_in,
)


class BPRMF(RecModel):
    """Matrix factorization with the BPR pairwise loss.

    Rendle, Freudenthaler, Gantner & Schmidt-Thieme, "BPR: Bayesian
    Personalized Ranking from Implicit Feedback", UAI 2009. Score
    ``s(u, i) = <p_u, q_i>``; loss ``-log sigmoid(s(u, i) - s(u, j))`` over a
    positive ``i`` and sampled negatives ``j``, plus L2 on the embeddings of
    the batch (``reg``).
    """

    train_format = TrainFormat.PAIRS

    def __init__(self, n_users: int, n_items: int, embedding_dim: int = 64,
                 reg: float = 0.0, num_negatives: int = 1, init_std: float = 0.01) -> None:
        super().__init__()
        self.user_emb = nn.Embedding(n_users, embedding_dim)
        self.item_emb = nn.Embedding(n_items, embedding_dim)
        nn.init.normal_(self.user_emb.weight, std=init_std)
        nn.init.normal_(self.item_emb.weight, std=init_std)
        self.reg = reg
        self.num_negatives = num_negatives

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        u = self.user_emb(batch["users"])  # [B, d]
        pos = self.item_emb(batch["pos"])  # [B, d]
        neg = self.item_emb(batch["neg"])  # [B, n, d]
        pos_score = (u * pos).sum(-1, keepdim=True)  # [B, 1]
        neg_score = (u.unsqueeze(1) * neg).sum(-1)  # [B, n]; cheaper than a bmm on CPU
        loss = -nn.functional.logsigmoid(pos_score - neg_score).mean()
        if self.reg:
            l2 = u.pow(2).sum(-1).mean() + pos.pow(2).sum(-1).mean() + neg.pow(2).sum(-1).mean()
            loss = loss + self.reg * l2
        return loss

    def score(self, users: torch.Tensor, context: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.user_emb(users) @ self.item_emb.weight.T

    def score_new_users(self, context: dict[str, torch.Tensor]) -> torch.Tensor:
        """Least-squares fold-in of a user vector from the history's item factors."""
        q = self.item_emb.weight
        history = dense_history(context, len(context["users"]), q.shape[0])
        return least_squares_fold_in(q, history, reg=0.1) @ q.T


def build_bpr(info: DataInfo, cfg: Any) -> BPRMF:
    dim = cfg.get("embedding_dim", 64)
    if not isinstance(dim, int) or dim < 1:
        raise ConfigError(f"model.embedding_dim must be a positive integer, got {dim!r}")
    reg = cfg.get("reg", 0.0)
    if not isinstance(reg, (int, float)) or reg < 0:
        raise ConfigError(f"model.reg must be a non-negative number, got {reg!r}")
    n_neg = cfg.get("num_negatives", 1)
    if not isinstance(n_neg, int) or n_neg < 1:
        raise ConfigError(f"model.num_negatives must be a positive integer, got {n_neg!r}")
    return BPRMF(info.n_users, info.n_items, dim, float(reg), n_neg,
                 float(cfg.get("init_std", 0.01)))

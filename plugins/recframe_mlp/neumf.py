"""NeuMF: neural collaborative filtering (GMF + MLP towers), pointwise BCE."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from recframe.api import DataInfo, RecModel, TrainFormat, float_param, int_param, layers_param
from recframe_mlp._tower import SplitMLP


class NeuMF(RecModel):
    """Neural Matrix Factorization.

    He, Liao, Zhang, Nie, Hu & Chua, "Neural Collaborative Filtering", WWW 2017.
    Two towers with separate embeddings: GMF ``g = p_u * q_i`` (element-wise) and
    MLP ``m = MLP([p'_u, q'_i])`` (ReLU layers ``hidden``); the logit is
    ``s(u, i) = h^T [g, m] + b``. Trained pointwise with binary cross-entropy on
    each observed (u, i) (label 1) and ``num_negatives`` sampled unobserved items
    (label 0, the paper uses 4), plus ``reg`` x the mean squared L2 norm of the
    batch's embeddings. No GMF/MLP pre-training (the paper's optional step); all
    weights are trained jointly from a small normal initialisation.

    Scoring all items: the GMF part is one matmul ``(p_u * h_g) @ Q^T``; the MLP's
    first layer splits into a user and an item part, so only ``relu(a_u + c_i)``
    and the deeper layers are evaluated per (user, item), in chunks of items.
    """

    per_user_parameters = ("gmf_user.weight", "mlp_user.weight")

    train_format = TrainFormat.POINTS
    #: item tables ``model.item_text`` can make text-aware (attribute -> row of item 0)
    item_embeddings = {"gmf_item": 0, "mlp_item": 0}

    def __init__(self, n_users: int, n_items: int, gmf_dim: int = 32, mlp_dim: int = 32,
                 hidden: list[int] | None = None, dropout: float = 0.0, reg: float = 0.001,
                 num_negatives: int = 4, init_std: float = 0.01) -> None:
        super().__init__()
        hidden = hidden or [64, 32, 16]
        self.gmf_user = nn.Embedding(n_users, gmf_dim)
        self.gmf_item = nn.Embedding(n_items, gmf_dim)
        self.mlp_user = nn.Embedding(n_users, mlp_dim)
        self.mlp_item = nn.Embedding(n_items, mlp_dim)
        for emb in (self.gmf_user, self.gmf_item, self.mlp_user, self.mlp_item):
            nn.init.normal_(emb.weight, std=init_std)
        self.mlp = SplitMLP(mlp_dim, mlp_dim, hidden, dropout)
        self.head = nn.Linear(gmf_dim + hidden[-1], 1)
        self.gmf_dim = gmf_dim
        self.reg = reg
        self.num_negatives = num_negatives

    def logits(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        gmf = self.gmf_user(users) * self.gmf_item(items)
        mlp = self.mlp(self.mlp_user(users), self.mlp_item(items))
        return self.head(torch.cat([gmf, mlp], dim=-1)).squeeze(-1)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        users, items = batch["users"], batch["items"]
        loss = nn.functional.binary_cross_entropy_with_logits(
            self.logits(users, items), batch["labels"])
        if self.reg:
            embs = (self.gmf_user(users), self.gmf_item(items),
                    self.mlp_user(users), self.mlp_item(items))
            loss = loss + self.reg * sum(e.pow(2).sum(-1).mean() for e in embs)
        return loss

    def score(self, users: torch.Tensor, context: dict[str, torch.Tensor]) -> torch.Tensor:
        w = self.head.weight[0]
        gmf = (self.gmf_user(users) * w[: self.gmf_dim]) @ self.gmf_item.weight.T
        mlp = self.mlp.score_all(self.mlp_user(users), self.mlp_item.weight, w[self.gmf_dim :])
        return gmf + mlp + self.head.bias


def build_neumf(info: DataInfo, cfg: Any) -> NeuMF:
    return NeuMF(
        info.n_users, info.n_items,
        gmf_dim=int_param(cfg, "gmf_dim", 32),
        mlp_dim=int_param(cfg, "mlp_dim", 32),
        hidden=layers_param(cfg, "hidden", [64, 32, 16]),
        dropout=float_param(cfg, "dropout", 0.0, maximum=0.99),
        reg=float_param(cfg, "reg", 0.001),
        num_negatives=int_param(cfg, "num_negatives", 4),
        init_std=float_param(cfg, "init_std", 0.01, strict=True),
    )

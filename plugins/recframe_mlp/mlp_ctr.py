"""Deep CTR-style MLP over id embeddings and user/item side features, pointwise BCE."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from recframe.api import (
    DataInfo,
    FeatureSpec,
    RecData,
    RecModel,
    TrainFormat,
    feature_specs,
    float_param,
    int_param,
    layers_param,
)
from recframe_mlp._tower import SplitMLP, code_table, module_device, numeric_table


class _SideFeatures(nn.Module):
    """Id embedding + side features of one entity type (users or items) as one vector.

    ``[e_id, W x_num, e_cat_1, ..., e_cat_C]`` when ``project_numeric`` (item
    genre flags), else ``[e_id, e_cat_1, ..., e_cat_C, x_num]`` (a few user numbers
    such as age, z-scored). The numeric matrix and categorical codes are loaded by
    :meth:`load` from the encoded feature frame (non-persistent buffers).
    """

    def __init__(self, n: int, specs: tuple[FeatureSpec, ...], id_dim: int, feature_dim: int,
                 project_numeric: bool, init_std: float) -> None:
        super().__init__()
        self.n = n
        self.specs = specs
        self.n_numeric = sum(s.kind == "numeric" for s in specs)
        cats = [s for s in specs if s.kind == "categorical"]
        self.ids = nn.Embedding(n, id_dim)
        self.cats = nn.ModuleList(nn.Embedding(s.cardinality, feature_dim) for s in cats)
        for emb in (self.ids, *self.cats):
            nn.init.normal_(emb.weight, std=init_std)
        self.project = (nn.Linear(self.n_numeric, feature_dim, bias=False)
                        if project_numeric and self.n_numeric else None)
        numeric_out = feature_dim if self.project is not None else self.n_numeric
        self.dim = id_dim + feature_dim * len(cats) + numeric_out
        self.register_buffer("numeric", torch.zeros(n, self.n_numeric), persistent=False)
        self.register_buffer("codes", torch.zeros(n, len(cats), dtype=torch.long),
                             persistent=False)

    def load(self, frame: Any, device: torch.device) -> None:
        self.numeric = numeric_table(frame, self.specs, self.n, "zscore").to(device)
        self.codes = code_table(frame, self.specs, self.n).to(device)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        parts = [self.ids(idx)]
        num = self.numeric[idx]
        if self.project is not None:
            parts.append(self.project(num))
        codes = self.codes[idx]
        parts += [emb(codes[..., c]) for c, emb in enumerate(self.cats)]
        if self.project is None and self.n_numeric:
            parts.append(num)
        return torch.cat(parts, dim=-1)

    def all(self) -> torch.Tensor:
        return self(torch.arange(self.n, device=self.ids.weight.device))


class MLPCTR(RecModel):
    """A deep CTR model: MLP over concatenated id embeddings and side features.

    The embedding-and-MLP design of Covington, Adams & Sargin, "Deep Neural
    Networks for YouTube Recommendations", RecSys 2016, and of the deep part of
    Cheng et al., "Wide & Deep Learning for Recommender Systems", DLRS 2016.
    Input ``x = [e_u, user categorical embeddings, z-scored user numerics,
    e_i, W (item numerics, e.g. genre flags), item categorical embeddings]``;
    ``s(u, i) = h^T MLP(x) + b`` with ReLU layers ``hidden``. Trained pointwise
    with binary cross-entropy on positives (label 1) and ``num_negatives``
    sampled unobserved items (label 0), plus ``reg`` x the mean squared L2 norm
    of the batch's id embeddings. Scoring all items splits the first layer into
    a user and an item part and evaluates the rest in chunks of items.
    """

    train_format = TrainFormat.POINTS
    needs = frozenset({"item_features", "user_features"})

    def __init__(self, info: DataInfo, item_specs: tuple[FeatureSpec, ...],
                 user_specs: tuple[FeatureSpec, ...], embedding_dim: int = 32,
                 feature_dim: int = 16, hidden: list[int] | None = None, dropout: float = 0.0,
                 reg: float = 0.001, num_negatives: int = 4, init_std: float = 0.01) -> None:
        super().__init__()
        hidden = hidden or [128, 64]
        self.users = _SideFeatures(info.n_users, user_specs, embedding_dim, feature_dim,
                                   project_numeric=False, init_std=init_std)
        self.items = _SideFeatures(info.n_items, item_specs, embedding_dim, feature_dim,
                                   project_numeric=True, init_std=init_std)
        self.mlp = SplitMLP(self.users.dim, self.items.dim, hidden, dropout)
        self.head = nn.Linear(hidden[-1], 1)
        self.reg = reg
        self.num_negatives = num_negatives

    def prepare(self, data: RecData) -> None:
        device = module_device(self)
        self.users.load(data.user_features, device)
        self.items.load(data.item_features, device)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        users, items = batch["users"], batch["items"]
        logits = self.head(self.mlp(self.users(users), self.items(items))).squeeze(-1)
        loss = nn.functional.binary_cross_entropy_with_logits(logits, batch["labels"])
        if self.reg:
            loss = loss + self.reg * (self.users.ids(users).pow(2).sum(-1).mean()
                                      + self.items.ids(items).pow(2).sum(-1).mean())
        return loss

    def score(self, users: torch.Tensor, context: dict[str, torch.Tensor]) -> torch.Tensor:
        scores = self.mlp.score_all(self.users(users), self.items.all(), self.head.weight[0])
        return scores + self.head.bias


def build_mlp_ctr(info: DataInfo, cfg: Any) -> MLPCTR:
    max_card = int_param(cfg, "max_cardinality", 100)
    return MLPCTR(
        info,
        item_specs=feature_specs(info, cfg, "item", max_card),
        user_specs=feature_specs(info, cfg, "user", max_card),
        embedding_dim=int_param(cfg, "embedding_dim", 32),
        feature_dim=int_param(cfg, "feature_dim", 16),
        hidden=layers_param(cfg, "hidden", [128, 64]),
        dropout=float_param(cfg, "dropout", 0.0, maximum=0.99),
        reg=float_param(cfg, "reg", 0.001),
        num_negatives=int_param(cfg, "num_negatives", 4),
        init_std=float_param(cfg, "init_std", 0.01, strict=True),
    )

"""LightGCN: linear neighbourhood propagation on the user-item graph, trained with BPR."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from recframe.api import (
    DataInfo,
    RecData,
    RecframeError,
    RecModel,
    TrainFormat,
    float_param,
    int_param,
)
from recframe_cf._sparse import symmetric_matmul, to_csr


class LightGCN(RecModel):
    """Light graph convolution: embeddings smoothed over the normalized bipartite graph.

    He, Deng, Wang, Li, Zhang & Wang, "LightGCN: Simplifying and Powering Graph
    Convolution Network for Recommendation", SIGIR 2020. With the user-item
    adjacency ``A = [[0, R], [R^T, 0]]`` of the training matrix ``R`` and its
    degree matrix ``D``, ``A_hat = D^-1/2 A D^-1/2``; layer ``k`` is
    ``E^(k) = A_hat E^(k-1)`` from the free ("ego") embeddings ``E^(0)``, and
    the final embeddings are the layer mean ``E = mean_{k=0..K} E^(k)``.
    Score ``s(u, i) = <e_u, e_i>``; loss is BPR
    ``-log sigmoid(s(u, i) - s(u, j))`` over a positive ``i`` and sampled
    negatives ``j``, plus ``reg / 2`` times the squared L2 norm of the batch's
    ego embeddings (averaged over the batch), as in the paper.

    ``A_hat`` is built in ``prepare`` as a non-persistent sparse buffer. In
    eval mode the propagated embeddings are computed once and cached, keyed on
    a counter bumped by every ``loss`` call and on the embedding tables' version
    counters (so optimizer steps and checkpoint loads both invalidate it).
    """

    train_format = TrainFormat.PAIRS
    #: why privacy=dpsgd refuses it (recframe.privacy.dpsgd)
    private_training_unsupported = (
        "its full-graph propagation mixes every user's interactions into every "
        "embedding in each step, so one user's data reaches all users' gradients and "
        "clipping per user does not bound it (per-user sensitivity is unbounded)")
    #: item tables ``model.item_text`` can make text-aware (attribute -> row of item 0)
    item_embeddings = {"item_emb": 0}

    def __init__(self, n_users: int, n_items: int, embedding_dim: int = 64, layers: int = 3,
                 reg: float = 1e-4, num_negatives: int = 2, init_std: float = 0.1) -> None:
        super().__init__()
        self.n_users, self.n_items, self.layers = n_users, n_items, layers
        self.embedding_dim, self.init_std = embedding_dim, init_std
        self.user_emb = nn.Embedding(n_users, embedding_dim)
        self.item_emb = nn.Embedding(n_items, embedding_dim)
        nn.init.normal_(self.user_emb.weight, std=init_std)
        nn.init.normal_(self.item_emb.weight, std=init_std)
        self.reg = reg
        self.num_negatives = num_negatives
        self.register_buffer("adjacency", None, persistent=False)
        self._steps = 0  # bumped by loss(): training changed the embeddings
        self._cache: tuple[tuple[Any, ...], torch.Tensor, torch.Tensor] | None = None

    def prepare(self, data: RecData) -> None:
        x = data.train.tocoo()
        n_users, n_items = self.n_users, self.n_items
        deg_u = np.asarray(data.train.sum(axis=1), dtype=np.float64).ravel()
        deg_i = np.asarray(data.train.sum(axis=0), dtype=np.float64).ravel()
        weight = 1.0 / np.sqrt(deg_u[x.row] * deg_i[x.col])  # both degrees >= 1 on an edge
        rows = np.concatenate([x.row, n_users + x.col]).astype(np.int64)
        cols = np.concatenate([n_users + x.col, x.row]).astype(np.int64)
        values = np.concatenate([weight, weight]).astype(np.float32)
        size = n_users + n_items
        adjacency = to_csr(torch.sparse_coo_tensor(
            torch.from_numpy(np.stack([rows, cols])), torch.from_numpy(values), (size, size),
            check_invariants=True,
        ))
        self.adjacency = adjacency.to(self.user_emb.weight.device)
        self._cache = None

    def propagate(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Final (layer-mean) user and item embeddings over the whole graph."""
        if self.adjacency is None:
            raise RecframeError("LightGCN.prepare(data) must run before training or scoring")
        ego = torch.cat([self.user_emb.weight, self.item_emb.weight])
        total, layer = ego, ego
        for _ in range(self.layers):
            layer = symmetric_matmul(self.adjacency, layer)
            total = total + layer
        final = total / (self.layers + 1)
        return final[: self.n_users], final[self.n_users:]

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        self._steps += 1
        self._cache = None
        users_f, items_f = self.propagate()
        users, pos, neg = batch["users"], batch["pos"], batch["neg"]
        u, p, n = users_f[users], items_f[pos], items_f[neg]  # [B, d], [B, d], [B, m, d]
        pos_score = (u * p).sum(-1, keepdim=True)
        neg_score = (u.unsqueeze(1) * n).sum(-1)
        loss = -nn.functional.logsigmoid(pos_score - neg_score).mean()
        if self.reg:
            u0, p0, n0 = self.user_emb(users), self.item_emb(pos), self.item_emb(neg)
            l2 = (u0.pow(2).sum(-1) + p0.pow(2).sum(-1) + n0.pow(2).sum(-1).mean(-1)).mean()
            loss = loss + 0.5 * self.reg * l2
        return loss

    def train(self, mode: bool = True) -> LightGCN:
        self._cache = None
        return super().train(mode)

    def _final_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.training:
            return self.propagate()
        # every parameter's storage and version: the tables, and a text projection
        # when model.item_text=add makes the item table ID + projected text
        key = (self._steps, id(self.adjacency),
               *((p.data_ptr(), p._version) for p in self.parameters()))
        if self._cache is None or self._cache[0] != key:
            with torch.no_grad():
                users_f, items_f = self.propagate()
            self._cache = (key, users_f, items_f)
        return self._cache[1], self._cache[2]

    def score(self, users: torch.Tensor, context: dict[str, torch.Tensor]) -> torch.Tensor:
        users_f, items_f = self._final_embeddings()
        return users_f[users] @ items_f.T


def build_lightgcn(info: DataInfo, cfg: Any) -> LightGCN:
    return LightGCN(
        info.n_users, info.n_items,
        embedding_dim=int_param(cfg, "embedding_dim", 64),
        layers=int_param(cfg, "layers", 3, minimum=0),
        reg=float_param(cfg, "reg", 1e-4),
        num_negatives=int_param(cfg, "num_negatives", 2),
        init_std=float_param(cfg, "init_std", 0.1, strict=True),
    )

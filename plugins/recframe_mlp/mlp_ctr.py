"""Deep CTR-style MLP over typed field embeddings, pointwise BCE."""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

import recframe_mlp._tower as tower
from recframe.api import (
    ITEM,
    USER,
    CTRModel,
    DataInfo,
    FieldEmbedding,
    describe_blocks,
    field_names_param,
    float_param,
    int_param,
    layers_param,
)

log = logging.getLogger(__name__)
IDS = (USER, ITEM)


class MLPCTR(CTRModel):
    """A deep CTR model: MLP over the concatenated field vectors.

    The embedding-and-MLP design of Covington, Adams & Sargin, "Deep Neural
    Networks for YouTube Recommendations", RecSys 2016, and of the deep part of
    Cheng et al., "Wide & Deep Learning for Recommender Systems", DLRS 2016.
    Input ``x = [v_1, ..., v_F, h_1, ..., h_S]``: one vector per batched field
    (:class:`recframe.api.FieldEmbedding`: the user and item ids, their
    categorical, multi-valued and numeric features, context fields) and, as
    YouTube's "watch vector", the masked mean of each sequence field's item
    embeddings (shared with the item id field). ``s = h^T MLP(x) + b`` with ReLU
    layers ``hidden``. Trained with binary cross-entropy: on the logged labels
    when the data has them, else on positives (label 1) and ``num_negatives``
    sampled unobserved items (label 0); plus ``reg`` x the mean squared L2 norm
    of the rows' field vectors. Scoring all items splits the first layer into a
    user part and an item part (the field vectors of the other side are zero)
    and evaluates the rest in chunks of items. Data without any feature gives
    an MLP over the two id embeddings (NCF's MLP tower, He et al., WWW 2017);
    free-text fields are not batched, so not used.
    """

    def __init__(self, info: DataInfo, embedding_dim: int = 32, hidden: list[int] | None = None,
                 dropout: float = 0.0, reg: float = 0.001, num_negatives: int = 4,
                 init_std: float = 0.01, include: tuple[str, ...] | None = None,
                 exclude: tuple[str, ...] = ()) -> None:
        super().__init__(info, num_negatives=num_negatives, reg=reg)
        hidden = hidden or [128, 64]
        self.embedding = FieldEmbedding(info.fields, embedding_dim, include=include,
                                        exclude=exclude, init_std=init_std)
        width = (self.embedding.num_fields + len(self.embedding.sequence_names)) * embedding_dim
        self.first = nn.Linear(width, hidden[0])
        rest: list[nn.Module] = [nn.ReLU(), nn.Dropout(dropout)]
        for width_in, width_out in zip(hidden[:-1], hidden[1:], strict=True):
            rest += [nn.Linear(width_in, width_out), nn.ReLU(), nn.Dropout(dropout)]
        self.rest = nn.Sequential(*rest)
        self.head = nn.Linear(hidden[-1], 1)
        self.max_width = max(hidden)
        for owner in ("item", "user"):
            used: dict[str, tuple[str, ...]] = {}
            for f in self.embedding.specs:
                if f.owner == owner and f.name not in IDS:
                    used[f.kind] = (*used.get(f.kind, ()), f.name)
            if used:
                log.info("mlp_ctr: %s fields of %r: %s", owner, info.name, describe_blocks(used))
            else:
                log.info("mlp_ctr: no %s feature fields in %r: the %s side is its id "
                         "embedding only", owner, info.name, owner)

    def inputs(self, fields: dict[str, torch.Tensor]) -> torch.Tensor:
        """The MLP input ``[B, (F + S) * dim]``: field vectors, then pooled sequences."""
        parts = [self.embedding(fields).flatten(1)]
        for name in self.embedding.sequence_names:
            emb, mask = self.embedding.sequence(name, fields[name])
            parts.append(emb.sum(1) / mask.sum(1, keepdim=True).clamp_min(1).to(emb.dtype))
        return torch.cat(parts, dim=1)

    def logits(self, fields: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head(self.rest(self.first(self.inputs(fields)))).squeeze(-1)

    def score(self, users: torch.Tensor, context: dict[str, torch.Tensor]) -> torch.Tensor:
        """``[B, n_items]`` with the first layer split: ``W x = W x_user + W x_item``,
        where ``x_user`` holds the user's (and sequence) field vectors with zeros for
        item and context fields, and ``x_item`` the item's (unknown context fields
        embed to zero either way); the rest in item chunks of bounded size."""
        device = self.head.weight.device
        users = users.to(device)
        items = torch.arange(self.n_items, device=device)
        user_fields = self.owner_fields("user", users)
        user_fields.update(self.zero_fields(len(users), ("item", "context"), device))
        item_fields = self.owner_fields("item", items)
        item_fields.update(self.zero_fields(self.n_items, ("user", "context"), device))
        u = self.first(self.inputs(user_fields))  # [B, h1], bias included
        i = self.inputs(item_fields) @ self.first.weight.T  # [n, h1]
        head = self.head.weight[0]
        chunk = max(1, tower.MAX_CELLS // max(1, len(u) * self.max_width))
        out = [self.rest(u[:, None, :] + i[None, s : s + chunk, :]) @ head
               for s in range(0, len(i), chunk)]
        return torch.cat(out, dim=1) + self.head.bias


def build_mlp_ctr(info: DataInfo, cfg: Any) -> MLPCTR:
    return MLPCTR(
        info,
        embedding_dim=int_param(cfg, "embedding_dim", 32),
        hidden=layers_param(cfg, "hidden", [128, 64]),
        dropout=float_param(cfg, "dropout", 0.0, maximum=0.99),
        reg=float_param(cfg, "reg", 0.001),
        num_negatives=int_param(cfg, "num_negatives", 4),
        init_std=float_param(cfg, "init_std", 0.01, strict=True),
        include=field_names_param(cfg, "fields", None),
        exclude=field_names_param(cfg, "exclude_fields", []) or (),
    )

"""DeepFM: an FM and an MLP sharing one embedding."""

from __future__ import annotations

from typing import Any

import torch

from recframe.api import (
    CTRModel,
    DataInfo,
    FieldEmbedding,
    FieldLinear,
    float_param,
    layers_param,
)
from recframe_ctr._common import Common, common_params, glorot_linears, tower
from recframe_ctr.fm import fm_interaction


class DeepFM(CTRModel):
    """DeepFM: ``logit = FM(x) + MLP([v_1, ..., v_F])`` over one shared embedding.

    Guo, Tang, Ye, Li & He, "DeepFM: A Factorization-Machine based Neural
    Network for CTR Prediction", IJCAI 2017: the FM component (first-order
    weights plus pairwise inner products, Rendle 2010) models low-order
    interactions, a ReLU MLP (``hidden``, ``dropout``) over the concatenated
    field vectors models high-order ones; both read the same field vectors, and
    their outputs are summed before the sigmoid.
    """

    def __init__(self, info: DataInfo, common: Common, hidden: list[int],
                 dropout: float) -> None:
        super().__init__(info, num_negatives=common.num_negatives, reg=common.reg)
        kw = {"include": common.include, "exclude": common.exclude,
              "init_std": common.init_std}
        self.embedding = FieldEmbedding(info.fields, common.embedding_dim, **kw)
        self.linear = FieldLinear(info.fields, **kw)
        self.mlp = tower(self.embedding.num_fields * common.embedding_dim, hidden, dropout)
        glorot_linears(self)

    def logits(self, fields: dict[str, torch.Tensor]) -> torch.Tensor:
        emb = self.embedding(fields)
        deep = self.mlp(emb.flatten(1)).squeeze(-1)
        return self.linear(fields) + fm_interaction(emb) + deep


def build_deepfm(info: DataInfo, cfg: Any) -> DeepFM:
    return DeepFM(info, common_params(info, cfg),
                  hidden=layers_param(cfg, "hidden", [300, 300, 300]),
                  dropout=float_param(cfg, "dropout", 0.0, maximum=0.99))

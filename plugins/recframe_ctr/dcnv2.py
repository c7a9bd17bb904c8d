"""DCN-V2: full-rank cross network plus an MLP."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from recframe.api import (
    ConfigError,
    CTRModel,
    DataInfo,
    FieldEmbedding,
    choice_param,
    float_param,
    int_param,
    layers_param,
)
from recframe_ctr._common import Common, common_params, glorot_linears, tower

STRUCTURES = ("parallel", "stacked", "crossnet_only")


class CrossNetV2(nn.Module):
    """``x_{l+1} = x_0 * (W_l x_l + b_l) + x_l`` with full-rank ``W_l`` (Wang et al.,
    WWW 2021, eq. 1; FuxiCTR's ``CrossNetV2``)."""

    def __init__(self, dim: int, layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(dim, dim) for _ in range(layers))

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        x = x0
        for layer in self.layers:
            x = x0 * layer(x) + x
        return x


class DCNv2(CTRModel):
    """DCN-V2: explicit bounded-degree crosses of the concatenated field vectors.

    Wang, Shivanna, Cheng, Jain, Lin, Hong & Chi, "DCN V2: Improved Deep & Cross
    Network and Practical Lessons for Web-scale Learning to Rank Systems", WWW
    2021. ``x_0 = [v_1, ..., v_F]``; ``cross_layers`` full-rank cross layers
    (:class:`CrossNetV2`); ``structure``: ``parallel`` (the cross network and a
    ReLU MLP both read ``x_0``, their outputs concatenated into a linear
    logit), ``stacked`` (the MLP reads the cross network's output) or
    ``crossnet_only``. The low-rank mixture of experts (DCN-Mix) is not included.
    """

    def __init__(self, info: DataInfo, common: Common, structure: str, cross_layers: int,
                 hidden: list[int], dropout: float) -> None:
        super().__init__(info, num_negatives=common.num_negatives, reg=common.reg)
        self.embedding = FieldEmbedding(info.fields, common.embedding_dim,
                                        include=common.include, exclude=common.exclude,
                                        init_std=common.init_std)
        dim = self.embedding.num_fields * common.embedding_dim
        self.structure = structure
        self.cross = CrossNetV2(dim, cross_layers)
        if structure == "crossnet_only":
            self.mlp = None
            self.head = nn.Linear(dim, 1)
        elif structure == "stacked":
            self.mlp = tower(dim, hidden, dropout, out_dim=None)
            self.head = nn.Linear(hidden[-1], 1)
        else:
            self.mlp = tower(dim, hidden, dropout, out_dim=None)
            self.head = nn.Linear(dim + hidden[-1], 1)
        glorot_linears(self)

    def logits(self, fields: dict[str, torch.Tensor]) -> torch.Tensor:
        x0 = self.embedding(fields).flatten(1)
        crossed = self.cross(x0)
        if self.mlp is None:
            out = crossed
        elif self.structure == "stacked":
            out = self.mlp(crossed)
        else:
            out = torch.cat([crossed, self.mlp(x0)], dim=-1)
        return self.head(out).squeeze(-1)


def build_dcnv2(info: DataInfo, cfg: Any) -> DCNv2:
    structure = choice_param(cfg, "structure", "parallel", STRUCTURES)
    hidden = layers_param(cfg, "hidden", [500, 500, 500], allow_empty=True)
    if structure != "crossnet_only" and not hidden:
        raise ConfigError(f"model.hidden is empty, but structure {structure!r} needs an MLP; "
                          f"give layer widths or set model.structure=crossnet_only")
    return DCNv2(info, common_params(info, cfg), structure,
                 cross_layers=int_param(cfg, "cross_layers", 3), hidden=hidden,
                 dropout=float_param(cfg, "dropout", 0.0, maximum=0.99))

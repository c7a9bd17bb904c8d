"""AutoInt: multi-head self-attention over the field vectors."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from recframe.api import (
    ConfigError,
    CTRModel,
    DataInfo,
    FieldEmbedding,
    FieldLinear,
    bool_param,
    float_param,
    int_param,
    layers_param,
)
from recframe_ctr._common import Common, common_params, glorot_linears, tower


class InteractingLayer(nn.Module):
    """One interacting layer of AutoInt (Song et al., CIKM 2019): multi-head
    self-attention across fields, ``e'_m = ReLU(sum_h softmax_k(<W_Q^h e_m, W_K^h e_k>)
    W_V^h e_k  (heads concatenated) + W_Res e_m)``. ``use_scale`` divides the inner
    products by ``sqrt(head_dim)`` (the paper does not); ``W_Res`` is the identity when
    the input and output widths agree (FuxiCTR's ``MultiHeadSelfAttention``)."""

    def __init__(self, in_dim: int, attention_dim: int, num_heads: int, dropout: float,
                 use_residual: bool, use_scale: bool, layer_norm: bool) -> None:
        super().__init__()
        self.num_heads, self.head_dim = num_heads, attention_dim // num_heads
        self.qkv = nn.Linear(in_dim, 3 * attention_dim, bias=False)
        self.residual = (None if not use_residual else nn.Identity() if in_dim == attention_dim
                         else nn.Linear(in_dim, attention_dim, bias=False))
        self.scale = self.head_dim ** -0.5 if use_scale else 1.0
        self.dropout = dropout
        self.norm = nn.LayerNorm(attention_dim) if layer_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, f, _ = x.shape
        q, k, v = (t.view(b, f, self.num_heads, self.head_dim).transpose(1, 2)
                   for t in self.qkv(x).chunk(3, dim=-1))
        out = nn.functional.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0, scale=self.scale)
        out = out.transpose(1, 2).reshape(b, f, -1)
        if self.residual is not None:
            out = out + self.residual(x)
        if self.norm is not None:
            out = self.norm(out)
        return torch.relu(out)


class AutoInt(CTRModel):
    """AutoInt: stacked multi-head self-attention learns high-order field interactions.

    Song, Shi, Xiao, Duan, Xu, Zhang & Tang, "AutoInt: Automatic Feature
    Interaction Learning via Self-Attentive Neural Networks", CIKM 2019. The
    field vectors pass through ``attention_layers`` interacting layers
    (:class:`InteractingLayer`: ``num_heads`` heads, ``attention_dim`` wide in
    all, residual connections); the flattened output feeds a linear logit.
    ``hidden`` non-empty adds a ReLU MLP over the field vectors (the paper's
    AutoInt+), ``use_wide`` a first-order term.
    """

    def __init__(self, info: DataInfo, common: Common, attention_layers: int,
                 num_heads: int, attention_dim: int, use_residual: bool, use_scale: bool,
                 layer_norm: bool, hidden: list[int], dropout: float, use_wide: bool) -> None:
        super().__init__(info, num_negatives=common.num_negatives, reg=common.reg)
        kw = {"include": common.include, "exclude": common.exclude,
              "init_std": common.init_std}
        self.embedding = FieldEmbedding(info.fields, common.embedding_dim, **kw)
        n_fields, d = self.embedding.num_fields, common.embedding_dim
        self.attention = nn.Sequential(*(
            InteractingLayer(d if i == 0 else attention_dim, attention_dim, num_heads,
                             dropout, use_residual, use_scale, layer_norm)
            for i in range(attention_layers)))
        self.head = nn.Linear(n_fields * attention_dim, 1)
        self.mlp = tower(n_fields * d, hidden, dropout) if hidden else None
        self.linear = FieldLinear(info.fields, **kw) if use_wide else None
        glorot_linears(self)

    def logits(self, fields: dict[str, torch.Tensor]) -> torch.Tensor:
        emb = self.embedding(fields)
        out = self.head(self.attention(emb).flatten(1)).squeeze(-1)
        if self.mlp is not None:
            out = out + self.mlp(emb.flatten(1)).squeeze(-1)
        if self.linear is not None:
            out = out + self.linear(fields)
        return out


def build_autoint(info: DataInfo, cfg: Any) -> AutoInt:
    heads = int_param(cfg, "num_heads", 2)
    attention_dim = int_param(cfg, "attention_dim", 64)
    if attention_dim % heads:
        raise ConfigError(f"model.attention_dim ({attention_dim}) must be a multiple of "
                          f"model.num_heads ({heads}): each head gets attention_dim / "
                          f"num_heads units")
    return AutoInt(
        info, common_params(info, cfg),
        attention_layers=int_param(cfg, "attention_layers", 3), num_heads=heads,
        attention_dim=attention_dim,
        use_residual=bool_param(cfg, "use_residual", True),
        use_scale=bool_param(cfg, "use_scale", False),
        layer_norm=bool_param(cfg, "layer_norm", False),
        hidden=layers_param(cfg, "hidden", [], allow_empty=True),
        dropout=float_param(cfg, "dropout", 0.0, maximum=0.99),
        use_wide=bool_param(cfg, "use_wide", False),
    )

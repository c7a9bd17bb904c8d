"""Factorization machines over typed fields."""

from __future__ import annotations

from typing import Any

import torch

from recframe.api import CTRModel, DataInfo, FieldEmbedding, FieldLinear
from recframe_ctr._common import Common, common_params


def fm_interaction(emb: torch.Tensor) -> torch.Tensor:
    """``sum_{f < g} <v_f, v_g>`` of ``emb [B, F, d]`` in ``O(F d)``: ``0.5 * sum_d
    ((sum_f v_f)^2 - sum_f v_f^2)`` (Rendle, ICDM 2010, Lemma 3.1). ``[B]``."""
    square_of_sum = emb.sum(dim=1).pow(2)
    sum_of_squares = emb.pow(2).sum(dim=1)
    return 0.5 * (square_of_sum - sum_of_squares).sum(dim=-1)


class FM(CTRModel):
    """Factorization machine: ``logit = b + sum_f w_f(x_f) + sum_{f<g} <v_f, v_g>``.

    Rendle, "Factorization Machines", ICDM 2010: every pair of fields interacts
    through the inner product of their factor vectors (the field vectors of
    :class:`recframe.api.FieldEmbedding`: a multi-valued field's pooled vector,
    ``x v_f`` for a number), computed in ``O(k n)`` by :func:`fm_interaction`.
    """

    def __init__(self, info: DataInfo, common: Common) -> None:
        super().__init__(info, num_negatives=common.num_negatives, reg=common.reg)
        kw = {"include": common.include, "exclude": common.exclude,
              "init_std": common.init_std}
        self.embedding = FieldEmbedding(info.fields, common.embedding_dim, **kw)
        self.linear = FieldLinear(info.fields, **kw)

    def logits(self, fields: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.linear(fields) + fm_interaction(self.embedding(fields))


def build_fm(info: DataInfo, cfg: Any) -> FM:
    return FM(info, common_params(info, cfg))

"""Logistic regression over typed fields."""

from __future__ import annotations

from typing import Any

import torch

from recframe.api import CTRModel, DataInfo, FieldLinear
from recframe_ctr._common import Common, common_params


class LogisticRegression(CTRModel):
    """Logistic regression: ``logit = b + sum_f w_f(x_f)`` (one weight per code of a
    categorical field, pooled over multi-valued fields, ``x * w_f`` for numbers).

    The first CTR baseline of the literature (e.g. Richardson, Dominowska &
    Ragno, "Predicting Clicks: Estimating the Click-Through Rate for New Ads",
    WWW 2007; McMahan et al., "Ad Click Prediction: a View from the Trenches",
    KDD 2013), and FuxiCTR's ``LR`` model. It sees no feature interaction.
    """

    def __init__(self, info: DataInfo, common: Common) -> None:
        super().__init__(info, num_negatives=common.num_negatives, reg=common.reg)
        self.linear = FieldLinear(info.fields, include=common.include,
                                  exclude=common.exclude, init_std=common.init_std)

    def logits(self, fields: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.linear(fields)


def build_lr(info: DataInfo, cfg: Any) -> LogisticRegression:
    return LogisticRegression(info, common_params(info, cfg))

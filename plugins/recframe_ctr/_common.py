"""What every model of the CTR zoo shares: its common config keys, an MLP tower and
the Dice activation of DIN."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from recframe.api import (
    ConfigError,
    DataInfo,
    field_names_param,
    float_param,
    int_param,
)

#: defaults shared by the zoo. FuxiCTR's model_zoo templates (e.g. DeepFM_base,
#: DCNv2_base, AutoInt_base in config/model_config/*.yaml) use embedding_dim 40, batch
#: size 10000, Adam at 1e-3 and no regularization; its Criteo benchmark
#: (benchmarks/FM_criteo_x4_001) uses embedding_dim 16, as the AutoInt paper does. We
#: keep 16 and a batch of 4096 (fits a laptop, still a large-batch CTR recipe).
EMBEDDING_DIM = 16
INIT_STD = 1e-4  # FuxiCTR's FeatureEmbedding default, N(0, 1e-4^2)
NUM_NEGATIVES = 4


@dataclass(frozen=True)
class Common:
    """The keys every zoo model reads (see conf/model/<name>.yaml)."""

    embedding_dim: int
    init_std: float
    include: tuple[str, ...] | None
    exclude: tuple[str, ...]
    reg: float
    num_negatives: int


def common_params(info: DataInfo, cfg: Any, embedding_dim: int = EMBEDDING_DIM,
                  init_std: float = INIT_STD) -> Common:
    """Read and check the shared keys: ``embedding_dim``, ``init_std``, ``fields``
    (null = every batched field), ``exclude_fields``, ``reg``, ``num_negatives``."""
    exclude = field_names_param(cfg, "exclude_fields", []) or ()
    return Common(
        embedding_dim=int_param(cfg, "embedding_dim", embedding_dim),
        init_std=float_param(cfg, "init_std", init_std, strict=True),
        include=field_names_param(cfg, "fields", None),
        exclude=exclude,
        reg=float_param(cfg, "reg", 0.0),
        num_negatives=int_param(cfg, "num_negatives", NUM_NEGATIVES),
    )


def activation(name: str, units: int) -> nn.Module:
    if name == "relu":
        return nn.ReLU()
    if name == "prelu":
        return nn.PReLU(units)
    if name == "dice":
        return Dice(units)
    if name == "sigmoid":
        return nn.Sigmoid()
    raise ConfigError(f"unknown activation {name!r}; use relu, prelu, dice or sigmoid")


ACTIVATIONS = ("relu", "prelu", "dice", "sigmoid")


def glorot_linears(module: nn.Module) -> None:
    """Every ``nn.Linear`` of ``module``: Xavier-normal weights (Glorot & Bengio,
    AISTATS 2010) and zero biases, as FuxiCTR's ``BaseModel.reset_parameters``
    initializes its zoo (fuxictr 2.3.10, fuxictr/pytorch/models/rank_model.py).
    ``experiments/bench/fuxictr_compare.py`` measured DeepFM at 0.7759 test AUC with
    torch's default init against FuxiCTR's 0.7802 (``experiments/results/bench.json`` at
    commit 5e0b2f7), and at 0.7812 against 0.7794 with this one (commit 0f7ae63).
    Embeddings keep their own init (``init_std``)."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            nn.init.xavier_normal_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def tower(in_dim: int, hidden: list[int], dropout: float = 0.0, act: str = "relu",
          out_dim: int | None = 1) -> nn.Sequential:
    """``[Linear -> activation -> Dropout] * len(hidden)``, then ``Linear(.., out_dim)``
    unless ``out_dim`` is None (FuxiCTR's ``MLP_Block`` without batch norm)."""
    layers: list[nn.Module] = []
    width = in_dim
    for h in hidden:
        layers += [nn.Linear(width, h), activation(act, h)]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = h
    if out_dim is not None:
        layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


class Dice(nn.Module):
    """Dice, the data-adaptive activation of DIN (Zhou et al., "Deep Interest Network
    for Click-Through Rate Prediction", KDD 2018):
    ``f(s) = p(s) s + (1 - p(s)) alpha s`` with ``p(s) = sigmoid((s - E[s]) /
    sqrt(Var[s] + eps))``, mean and variance over the mini-batch in training and
    their running averages at inference (batch normalization without affine terms),
    ``eps = 1e-8`` as in the paper, ``alpha`` learned per unit (initially 0).
    """

    def __init__(self, units: int, eps: float = 1e-8, momentum: float = 0.1) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(units))
        self.eps, self.momentum = eps, momentum
        self.register_buffer("running_mean", torch.zeros(units))
        self.register_buffer("running_var", torch.ones(units))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch_stats = self.training and x.shape[0] > 1  # one row has no variance
        norm = nn.functional.batch_norm(x, self.running_mean, self.running_var,
                                        training=batch_stats, momentum=self.momentum,
                                        eps=self.eps)
        p = torch.sigmoid(norm)
        return x * (self.alpha + p * (1 - self.alpha))  # = p x + (1 - p) alpha x

"""The training objective of the sequence models: full softmax or sampled softmax.

One config block, shared by ``sasrec``, ``gru4rec``, ``bert4rec`` and ``hstu``::

    model.loss: {name: sampled_softmax, num_negatives: 128, temperature: 0.05,
                 negatives: uniform, logq_correction: false, l2_norm: true}

``model.loss: ce`` (a plain string, the default of the older models) is the full
softmax over the catalogue. Sampled softmax (Jean, Cho, Memisevic & Bengio, "On
Using Very Large Target Vocabulary for Neural Machine Translation", ACL 2015)
scores each trained position's positive against ``num_negatives`` negatives
shared by the batch (one ``[N, d] x [d, k]`` product, not ``k`` per position):

- ``negatives: uniform``: drawn uniformly from the catalogue;
- ``popularity``: drawn with probability ``q(i)`` proportional to the item's
  training count + 1;
- ``in_batch``: the batch's own positives (all of them, or ``num_negatives``
  drawn without replacement), i.e. negatives distributed like the training
  targets, with ``q(i)`` estimated by the same training counts.

``logq_correction`` subtracts ``log q(i)`` from every candidate's logit (Yi et
al., "Sampling-Bias-Corrected Neural Modeling for Large Corpus Item
Recommendations", RecSys 2019), which undoes the popularity bias of
``popularity`` and ``in_batch`` negatives; under ``uniform`` it is a constant
and changes nothing. A negative equal to the row's positive (an *accidental
hit*) is masked out. ``l2_norm`` scores by cosine similarity of the L2-normalised
output and item embeddings, divided by ``temperature``, with no item bias (the
HSTU paper's setting: Zhai et al., ICML 2024); the model's scores at test time
use the same similarity, so training and ranking agree.

The legacy SASRec keys (``loss: sampled`` with ``num_negatives``, ``sampling``
and ``logq_correction`` beside it) still read as a ``sampled_softmax`` block
with ``temperature: 1`` and no normalisation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.nn import functional as F

from recframe.api import ConfigError

LOSSES = ("ce", "sampled_softmax")
NEGATIVES = ("uniform", "popularity", "in_batch")


@dataclass(frozen=True)
class LossSettings:
    """A validated ``model.loss`` block (see the module docstring)."""

    name: str = "ce"
    num_negatives: int = 128
    temperature: float = 1.0
    negatives: str = "uniform"
    logq_correction: bool = False
    l2_norm: bool = False

    @property
    def sampled(self) -> bool:
        return self.name == "sampled_softmax"


def _block(value: Any) -> dict[str, Any]:
    if isinstance(value, DictConfig):
        return dict(OmegaConf.to_container(value, resolve=True))  # type: ignore[arg-type]
    return dict(value)


def _legacy_keys(cfg: Any) -> dict[str, Any]:
    """SASRec's older flat keys beside ``loss: ce|sampled``, validated where they are."""
    if cfg is None:
        return {}
    k = cfg.get("num_negatives", 256)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"model.num_negatives must be an integer >= 1, got {k!r}")
    sampling = cfg.get("sampling", "uniform")
    if sampling not in ("uniform", "popularity"):
        raise ConfigError(f"model.sampling must be one of uniform, popularity, got "
                          f"{sampling!r}")
    logq = cfg.get("logq_correction", False)
    if not isinstance(logq, bool):
        raise ConfigError(f"model.logq_correction must be true or false, got {logq!r}")
    return {"num_negatives": k, "negatives": sampling, "logq_correction": logq}


def loss_settings(cfg: Any, n_items: int, default: Mapping[str, Any] | None = None,
                  ) -> LossSettings:
    """``model.loss`` of ``cfg`` as :class:`LossSettings`, validated against a catalogue of
    ``n_items`` items. ``default`` is the model's block when the config has none."""
    raw = cfg.get("loss", None) if cfg is not None else None
    if raw is None:
        raw = dict(default) if default else "ce"
    if isinstance(raw, str):
        legacy = _legacy_keys(cfg)
        if raw == "sampled":  # the legacy SASRec keys
            raw = {"name": "sampled_softmax", "temperature": 1.0, "l2_norm": False, **legacy}
        else:
            raw = {"name": raw}
    elif isinstance(raw, (Mapping, DictConfig)):
        raw = _block(raw)
    else:
        raise ConfigError(f"model.loss must be a loss name ({', '.join(LOSSES)}) or a block "
                          f"{{name: sampled_softmax, num_negatives: ...}}, got {raw!r}")
    known = {f.name for f in fields(LossSettings)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"model.loss has unknown key(s) {', '.join(unknown)}; the block "
                          f"takes {', '.join(sorted(known))} (docs/generative.md)")
    name = raw.get("name", "ce")
    if name not in LOSSES:
        raise ConfigError(f"model.loss.name must be one of {', '.join(LOSSES)}, got {name!r}; "
                          f"ce is the full softmax over all items, sampled_softmax scores "
                          f"the positive against sampled negatives")
    base = LossSettings()
    temperature = raw.get("temperature", 0.05 if name == "sampled_softmax" else 1.0)
    if (isinstance(temperature, bool) or not isinstance(temperature, (int, float))
            or not math.isfinite(temperature) or temperature <= 0):
        raise ConfigError(f"model.loss.temperature must be a number > 0 (logits are divided "
                          f"by it), got {temperature!r}; the HSTU paper uses 0.05 with "
                          f"l2_norm: true, 1.0 leaves the logits unscaled")
    negatives = raw.get("negatives", base.negatives)
    if negatives not in NEGATIVES:
        raise ConfigError(f"model.loss.negatives: unknown negative sampler {negatives!r}; "
                          f"use one of {', '.join(NEGATIVES)}")
    k = raw.get("num_negatives", base.num_negatives)
    if name == "sampled_softmax" and (isinstance(k, bool) or not isinstance(k, int)
                                      or not 1 <= k <= n_items - 1):
        raise ConfigError(f"model.loss.num_negatives must be an integer from 1 to "
                          f"{n_items - 1} (the catalogue has {n_items} items and a "
                          f"negative must differ from the positive), got {k!r}; lower it, "
                          f"or use model.loss=ce, the full softmax over all items")
    flags = {}
    for key in ("logq_correction", "l2_norm"):
        value = raw.get(key, name == "sampled_softmax" and key == "l2_norm")
        if not isinstance(value, bool):
            raise ConfigError(f"model.loss.{key} must be true or false, got {value!r}")
        flags[key] = value
    return LossSettings(name=name, num_negatives=int(k), temperature=float(temperature),
                        negatives=negatives, **flags)


def sampled_softmax_loss(h: torch.Tensor, targets: torch.Tensor, negatives: torch.Tensor,
                         weight: torch.Tensor, bias: torch.Tensor | None,
                         log_q: torch.Tensor | None, temperature: float = 1.0,
                         l2_norm: bool = False) -> torch.Tensor:
    """Mean sampled-softmax cross-entropy of ``N`` positions against ``k`` shared negatives.

    ``h`` ``[N, d]`` outputs, ``targets`` ``[N]`` and ``negatives`` ``[k]`` item ids,
    ``weight`` ``[n_items, d]`` item embeddings, ``bias`` ``[n_items]`` or None,
    ``log_q`` ``[n_items]`` (the logQ correction; None for none). Logit of item
    ``i`` for row ``n``: ``s(n, i) / temperature - log q(i)``, where ``s`` is the dot
    product plus bias, or the cosine similarity under ``l2_norm``. Negatives equal to
    the row's positive are masked out.
    """
    pos_w, neg_w = weight[targets], weight[negatives]
    if l2_norm:
        h, pos_w, neg_w = F.normalize(h, dim=-1), F.normalize(pos_w, dim=-1), F.normalize(
            neg_w, dim=-1)
    pos = (h * pos_w).sum(-1)  # [N]
    neg = h @ neg_w.T  # [N, k]
    if bias is not None:
        pos, neg = pos + bias[targets], neg + bias[negatives]
    if temperature != 1.0:
        pos, neg = pos / temperature, neg / temperature
    if log_q is not None:
        pos, neg = pos - log_q[targets], neg - log_q[negatives]
    neg = neg.masked_fill(negatives.unsqueeze(0) == targets.unsqueeze(1), -torch.inf)
    logits = torch.cat([pos.unsqueeze(1), neg], dim=1)
    return F.cross_entropy(logits, torch.zeros_like(targets))


class SequenceObjective(nn.Module):
    """The loss and the matching scores of a sequence model's outputs (see the module
    docstring). Holds ``log q(i)`` of the training counts as a non-persistent buffer."""

    def __init__(self, settings: LossSettings, n_items: int) -> None:
        super().__init__()
        self.settings = settings
        self.n_items = n_items
        self.register_buffer("log_q", torch.full((n_items,), -math.log(n_items)),
                             persistent=False)

    def set_counts(self, counts: np.ndarray) -> None:
        """``q(i)`` proportional to ``counts + 1`` (training counts per item)."""
        counts = np.asarray(counts, dtype=np.float64) + 1.0
        log_q = torch.from_numpy(np.log(counts / counts.sum())).float()
        self.log_q = log_q.to(self.log_q.device)

    @property
    def uses_bias(self) -> bool:
        return not self.settings.l2_norm

    def logits(self, h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """Scores of all items ``[..., n_items]`` for outputs ``h`` ``[..., d]``: the
        similarity the loss trains (no logQ term: that is a training correction)."""
        s = self.settings
        if s.l2_norm:
            out = F.normalize(h, dim=-1) @ F.normalize(weight, dim=-1).T
        else:
            out = h @ weight.T + bias
        return out / s.temperature if s.temperature != 1.0 else out

    def sample(self, targets: torch.Tensor) -> torch.Tensor:
        """``k`` negative item ids ``[k]`` for a batch whose positives are ``targets``."""
        s, k = self.settings, self.settings.num_negatives
        if s.negatives == "popularity":
            return torch.multinomial(self.log_q.exp(), k, replacement=True)
        if s.negatives == "in_batch":
            if k >= len(targets):
                return targets
            return targets[torch.randperm(len(targets), device=targets.device)[:k]]
        return torch.randint(self.n_items, (k,), device=targets.device)

    def forward(self, h: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor,
                bias: torch.Tensor) -> torch.Tensor:
        """Mean loss of outputs ``h`` ``[N, d]`` for item ids ``targets`` ``[N]``."""
        s = self.settings
        if not s.sampled:
            return F.cross_entropy(self.logits(h, weight, bias), targets)
        log_q = self.log_q if s.logq_correction else None
        return sampled_softmax_loss(h, targets, self.sample(targets), weight,
                                    bias if self.uses_bias else None, log_q,
                                    s.temperature, s.l2_norm)

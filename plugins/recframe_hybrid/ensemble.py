"""Weighted ensemble of other registered models over per-user normalized scores."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import OmegaConf
from torch import nn

from recframe.api import (
    ConfigError,
    DataInfo,
    RecData,
    RecModel,
    TrainFormat,
    build_model,
    fit_model,
)

#: keys of a component entry read by the ensemble; every other key goes to the component
ENSEMBLE_KEYS = ("weight", "epochs", "lr", "weight_decay", "batch_size", "seed")
NORMALIZATIONS = ("zscore", "minmax", "rank")


@dataclass(frozen=True)
class ComponentPlan:
    """How one component is trained and weighted."""

    name: str
    weight: float
    epochs: int
    lr: float
    weight_decay: float
    batch_size: int
    seed: int


class _OnDevice(RecModel):
    """Trains a component with ``fit_model`` wherever the component lives.

    ``fit_model`` feeds CPU batches; the ensemble's ``fit`` runs after Lightning
    moved the whole model to its device, so batches are moved here.
    """

    def __init__(self, model: RecModel) -> None:
        super().__init__()
        self.model = model
        self.train_format = model.train_format  # type: ignore[misc]
        self.num_negatives = int(getattr(model, "num_negatives", 1))
        self.max_seq_len = int(getattr(model, "max_seq_len", 0))

    def prepare(self, data: RecData) -> None:
        self.model.prepare(data)

    def fit(self, data: RecData) -> None:
        self.model.fit(data)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        device = next(self.model.parameters()).device
        return self.model.loss({k: v.to(device) for k, v in batch.items()})


def normalize(scores: torch.Tensor, how: str) -> torch.Tensor:
    """Per-row (per-user) normalization of ``[B, n_items]`` scores over all items.

    ``zscore``: ``(s - mean) / std``; ``minmax``: ``(s - min) / (max - min)`` in
    [0, 1]; ``rank``: the item's rank position scaled to [0, 1] (best = 1), ties
    broken by item index. Constant rows become 0.
    """
    scores = scores.float()
    if how == "zscore":
        std = scores.std(dim=1, keepdim=True, unbiased=False)
        return (scores - scores.mean(dim=1, keepdim=True)) / std.clamp_min(1e-12)
    if how == "minmax":
        low = scores.min(dim=1, keepdim=True).values
        span = scores.max(dim=1, keepdim=True).values - low
        return (scores - low) / span.clamp_min(1e-12)
    order = scores.argsort(dim=1, stable=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(scores.shape[1], device=scores.device)
                   .expand_as(order).contiguous())
    return ranks.float() / max(1, scores.shape[1] - 1)


class Ensemble(RecModel):
    """Weighted sum of the per-user normalized scores of two or more models.

    A linear score-fusion meta-model (CombSUM with score normalization: Fox &
    Shaw, "Combination of Multiple Searches", TREC-2 1994; Lee, SIGIR 1997):
    ``s(u, i) = sum_c w_c * norm(s_c(u, .))_i`` where ``norm`` is ``zscore``,
    ``minmax`` or ``rank`` over all items of the user's row (items the user saw
    are included; the evaluator masks them afterwards).

    Components are built at construction (child modules, so a checkpoint holds
    all of their weights) and trained one after another in :meth:`fit` with
    ``recframe.api.fit_model`` (closed form once, or ``epochs`` of Adam steps
    with the component's ``lr``/``weight_decay``/``batch_size``/``seed``).
    """

    train_format = TrainFormat.FIT

    def __init__(self, info: DataInfo, components: list[RecModel], plans: list[ComponentPlan],
                 normalization: str = "zscore") -> None:
        super().__init__()
        self.info = info
        self.components = nn.ModuleList(components)
        self.plans = plans
        self.normalization = normalization
        self.max_seq_len = max(int(getattr(c, "max_seq_len", 0)) for c in components)

    def prepare(self, data: RecData) -> None:
        for component in self.components:
            component.prepare(data)

    def fit(self, data: RecData) -> None:
        for component, plan in zip(self.components, self.plans, strict=True):
            if plan.weight == 0:
                continue  # never scored
            fit_model(_OnDevice(component), data, epochs=plan.epochs, lr=plan.lr,
                      weight_decay=plan.weight_decay, batch_size=plan.batch_size,
                      seed=plan.seed)
            component.train(self.training)  # fit_model leaves it in eval mode

    def score(self, users: torch.Tensor, context: dict[str, torch.Tensor]) -> torch.Tensor:
        total: torch.Tensor | None = None
        for component, plan in zip(self.components, self.plans, strict=True):
            if plan.weight == 0:
                continue
            ctx = context
            seq_len = int(getattr(component, "max_seq_len", 0))
            if "seq" in context and seq_len:
                ctx = {**context, "seq": context["seq"][:, -seq_len:]}
            part = plan.weight * normalize(component.score(users, ctx), self.normalization)
            total = part if total is None else total + part
        assert total is not None  # at least one non-zero weight (checked at build)
        return total


def _number(value: Any, key: str, minimum: float, strict: bool = False,
            integer: bool = False) -> Any:
    ok = (not isinstance(value, bool) and isinstance(value, int if integer else (int, float))
          and math.isfinite(value) and (value > minimum if strict else value >= minimum))
    if not ok:
        what = "an integer" if integer else "a number"
        raise ConfigError(f"{key} must be {what} {'>' if strict else '>='} {minimum}, "
                          f"got {value!r}")
    return value


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def build_ensemble(info: DataInfo, cfg: Any) -> Ensemble:
    normalization = cfg.get("normalization", "zscore")
    if normalization not in NORMALIZATIONS:
        raise ConfigError(f"model.normalization must be one of {list(NORMALIZATIONS)}, "
                          f"got {normalization!r}")
    entries = _plain(cfg.get("components"))
    if (not isinstance(entries, Sequence) or isinstance(entries, str) or len(entries) < 2):
        raise ConfigError("model.components must be a list of at least 2 models, e.g. "
                          "[{name: ease, weight: 0.5}, {name: bpr, weight: 0.5, epochs: 20}], "
                          f"got {entries!r}")
    base_seed = _number(cfg.get("seed", 0), "model.seed", 0, integer=True)
    components, plans = [], []
    for i, entry in enumerate(entries):
        key = f"model.components[{i}]"
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            raise ConfigError(f"{key} must be a mapping with a model `name` (and `weight`, "
                              f"training and model parameters), got {entry!r}")
        plan = ComponentPlan(
            name=entry["name"],
            weight=float(_number(entry.get("weight", 1.0), f"{key}.weight", 0.0)),
            epochs=_number(entry.get("epochs", 20), f"{key}.epochs", 1, integer=True),
            lr=float(_number(entry.get("lr", 1e-3), f"{key}.lr", 0.0, strict=True)),
            weight_decay=float(_number(entry.get("weight_decay", 0.0), f"{key}.weight_decay",
                                       0.0)),
            batch_size=_number(entry.get("batch_size", 1024), f"{key}.batch_size", 1,
                               integer=True),
            seed=_number(base_seed + i if entry.get("seed") is None else entry["seed"],
                         f"{key}.seed", 0, integer=True),
        )
        params = OmegaConf.create({k: v for k, v in entry.items() if k not in ENSEMBLE_KEYS})
        try:
            component = build_model(plan.name, info, params)
        except ConfigError as exc:
            raise type(exc)(f"{key} ({plan.name}): {exc}") from None
        missing = _missing_needs(component, info)
        if missing:
            raise ConfigError(f"{key} ({plan.name}) needs {', '.join(missing)}, which the "
                              f"dataset does not provide.")
        components.append(component)
        plans.append(plan)
    if not any(p.weight > 0 for p in plans):
        raise ConfigError("model.components[i].weight: at least one component weight must be "
                          f"> 0, got {[p.weight for p in plans]}")
    return Ensemble(info, components, plans, normalization)


def _missing_needs(model: RecModel, info: DataInfo) -> list[str]:
    have = {"timestamps": info.has_timestamps, "item_features": bool(info.item_features),
            "user_features": bool(info.user_features)}
    return sorted(n for n in getattr(model, "needs", ()) if not have.get(n, True))

"""Run settings checked before training, where Lightning would only fail mid-run.

Lightning reads some Trainer and callback arguments first at the end of an epoch
(an assertion, a division by zero, a missing monitored metric) and some data
problems show only as a missing validation metric. These checks turn each into a
coded :class:`~recframe.errors.ConfigError` / :class:`~recframe.errors.DataError`
(docs/errors.md, E872 and E878-E882) before any model trains.
"""

from __future__ import annotations

import math
from typing import Any

from omegaconf import DictConfig

from recframe.errors import ConfigError, DataError, closest
from recframe.pipeline import Plan

#: Trainer arguments that must be whole numbers: (smallest value, None allowed)
_TRAINER_INTS = {"max_epochs": (-1, True), "min_epochs": (0, True), "max_steps": (-1, False),
                 "min_steps": (0, True), "check_val_every_n_epoch": (1, True),
                 "num_sanity_val_steps": (-1, False), "log_every_n_steps": (1, True),
                 "accumulate_grad_batches": (1, False)}


def check_trainer(node: Any) -> None:
    """The Trainer's counting arguments, checked before Lightning reads them (it fails
    on some only mid-training, with an assertion or a division by zero)."""
    for key, (minimum, nullable) in _TRAINER_INTS.items():
        if key not in node:
            continue
        value = node.get(key)
        if value is None and nullable:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(f"trainer.{key} must be a whole number >= {minimum}"
                              + (" or null" if nullable else "") + f", got {value!r}")
    for key in ("limit_train_batches", "limit_val_batches", "limit_test_batches",
                "val_check_interval"):
        value = node.get(key) if key in node else None
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                math.isfinite(value) and value >= 0) or (isinstance(value, float) and value > 1):
            raise ConfigError(f"trainer.{key} must be a whole number of batches or a fraction "
                              f"in [0, 1], got {value!r}")


def positive_int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value < 2**31:
        raise ConfigError(f"{key} must be a whole number >= 1, got {value!r}")
    return value


def check_validation(cfg: DictConfig, exp: Any) -> None:
    """Early stopping and checkpointing watch a validation metric: with no validation
    interaction at all (tiny data, a split without a valid share) fail here, saying so,
    instead of Lightning's "metric ... is not available" traceback after training."""
    counts = exp.prepared.counts
    if counts.get("n_valid", 0) > 0 or counts.get("n_valid_impressions", 0) > 0:
        return
    watching = sorted(name for name, node in (cfg.get("callbacks") or {}).items()
                      if node is not None and str(node.get("monitor", "")).startswith("val/"))
    if not watching:
        return
    raise DataError(
        f"no user has a validation interaction after splitting ({counts.get('n_users')} "
        f"users: {counts.get('n_train')} train, 0 valid, {counts.get('n_test')} test "
        f"interactions), but callbacks {', '.join(watching)} watch val/{exp.plan.monitor}. "
        f"Give users more interactions (the random split holds one out for validation "
        f"only from users with at least 3; check split.ratios), or train without model "
        f"selection (callbacks=none, a fixed trainer.max_epochs).")


#: callback arguments Lightning reads only mid-training: key -> (kind, detail)
_CALLBACK_ARGS = {"patience": ("int", 0), "min_delta": ("number", None),
                  "mode": ("choice", ("min", "max")), "save_top_k": ("int", -1),
                  "every_n_epochs": ("int", 0), "check_finite": ("bool", None),
                  "auto_insert_metric_name": ("bool", None), "verbose": ("bool", None),
                  "filename": ("str", None), "dirpath": ("str", None)}


def check_callbacks(cfg: DictConfig, plan: Plan) -> None:
    """Each callback's ``monitor`` names a metric the run logs, and its counting and
    mode arguments have the right type, before training (Lightning would fail at the
    end of the first epoch, or while loading the best checkpoint)."""
    for name, node in (cfg.get("callbacks") or {}).items():
        if node is None or not hasattr(node, "items"):
            continue
        for key, (kind, detail) in _CALLBACK_ARGS.items():
            if key not in node or (node.get(key) is None and kind == "str"):
                continue
            value = node.get(key)
            if not _arg_ok(kind, detail, value):
                want = {"int": f"a whole number >= {detail}", "number": "a finite number",
                        "choice": f"one of {detail}", "bool": "true or false",
                        "str": "a string or null"}[kind]
                raise ConfigError(f"callbacks.{name}.{key} must be {want}, got {value!r}")
        if "monitor" not in node:
            continue
        monitor = node.get("monitor")
        known = [f"val/{k}" for k in plan_keys(plan)] + ["train/loss"]
        if monitor not in known:
            hint = closest(str(monitor), known)
            raise ConfigError(
                f"callbacks.{name}.monitor={monitor!r} is not a metric this run logs."
                + (f" Did you mean {hint!r}?" if hint else "")
                + f" It follows metrics.monitor by default (val/${{metrics.monitor}}); "
                f"logged: {', '.join(known[:12])}{', ...' if len(known) > 12 else ''}.")


def _arg_ok(kind: str, detail: Any, value: Any) -> bool:
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool) and value >= detail
    if kind == "number":
        return (isinstance(value, (int, float)) and not isinstance(value, bool)
                and math.isfinite(value))
    if kind == "choice":
        return isinstance(value, str) and value in detail
    if kind == "bool":
        return isinstance(value, bool)
    return isinstance(value, str)


def plan_keys(plan: Plan) -> list[str]:
    """The validation metric keys the run logs (``ndcg@10``, ``warm/ndcg@10``, ``auc``)."""
    evaluator = plan.pointwise if plan.protocol == "ctr" else plan.evaluator
    keys = list(evaluator.keys) if evaluator is not None else []  # a property of both
    if plan.monitor not in keys:
        keys.insert(0, plan.monitor)
    return keys

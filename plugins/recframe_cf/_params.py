"""Validation of model hyperparameters: each failure is a ConfigError naming ``model.<key>``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from recframe.api import ConfigError


def int_param(cfg: Any, key: str, default: int, *, low: int = 1) -> int:
    """An integer ``>= low`` (booleans are rejected)."""
    value = cfg.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"model.{key} must be an integer >= {low}, got {value!r}")
    return int(value)


def float_param(cfg: Any, key: str, default: float, *, low: float = 0.0,
                strict: bool = False, high: float | None = None) -> float:
    """A number in ``[low, high]`` (``(low, high]`` when ``strict``)."""
    value = cfg.get(key, default)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        ok = (value > low if strict else value >= low) and (high is None or value <= high)
        ok = ok and value == value  # not NaN
    if not ok:
        bound = f"> {low}" if strict else f">= {low}"
        if high is not None:
            bound += f" and <= {high}"
        raise ConfigError(f"model.{key} must be a number {bound}, got {value!r}")
    return float(value)


def choice_param(cfg: Any, key: str, default: str, choices: Sequence[str]) -> str:
    """One of ``choices``."""
    value = cfg.get(key, default)
    if value not in choices:
        raise ConfigError(f"model.{key} must be one of {list(choices)}, got {value!r}")
    return str(value)

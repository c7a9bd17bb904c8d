"""Validation helpers for model hyperparameters: every error names ``model.<key>``.

Part of the public plugin API (re-exported by :mod:`recframe.api`), so plugins
do not each write their own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from recframe.data.encode import DataInfo, FeatureSpec
from recframe.errors import ConfigError


def int_param(cfg: Any, key: str, default: int, minimum: int = 1) -> int:
    """An integer ``>= minimum`` (booleans rejected)."""
    value = cfg.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"model.{key} must be an integer >= {minimum}, got {value!r}")
    return value


def float_param(cfg: Any, key: str, default: float, minimum: float = 0.0,
                maximum: float = math.inf, strict: bool = False) -> float:
    """A finite number in ``[minimum, maximum]`` (``(minimum, maximum]`` when ``strict``)."""
    value = cfg.get(key, default)
    ok = (not isinstance(value, bool) and isinstance(value, (int, float))
          and math.isfinite(value) and value <= maximum
          and (value > minimum if strict else value >= minimum))
    if not ok:
        bound = f"> {minimum}" if strict else f">= {minimum}"
        upper = f" and <= {maximum}" if math.isfinite(maximum) else ""
        raise ConfigError(f"model.{key} must be a number {bound}{upper}, got {value!r}")
    return float(value)


def layers_param(cfg: Any, key: str, default: Sequence[int], allow_empty: bool = False
                 ) -> list[int]:
    """A list of positive layer widths, e.g. ``[64, 32, 16]``."""
    value = cfg.get(key, default)
    ok = (isinstance(value, Sequence) and not isinstance(value, (str, bytes))
          and (allow_empty or len(value) > 0)
          and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value))
    if not ok:
        raise ConfigError(f"model.{key} must be a {'' if allow_empty else 'non-empty '}list "
                          f"of positive integers (layer widths), got {value!r}")
    return [int(v) for v in value]


def columns_param(cfg: Any, key: str, specs: tuple[FeatureSpec, ...],
                  max_cardinality: int) -> tuple[FeatureSpec, ...]:
    """The feature columns a model uses.

    ``null`` (default): every numeric column and every categorical column with at
    most ``max_cardinality`` codes; free-text columns are never used. A list
    names the columns explicitly (numeric or categorical; text is an error).
    """
    value = cfg.get(key, None)
    usable = {s.name: s for s in specs if s.kind in ("numeric", "categorical")}
    if value is None:
        return tuple(s for s in usable.values()
                     if s.kind == "numeric" or s.cardinality <= max_cardinality)
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not all(
            isinstance(v, str) for v in value):
        raise ConfigError(f"model.{key} must be null (all suitable columns) or a list of "
                          f"column names, got {value!r}")
    unknown = [v for v in value if v not in usable]
    if unknown:
        raise ConfigError(
            f"model.{key}: unknown or unusable column(s) {unknown}; numeric/categorical "
            f"columns of this dataset: {sorted(usable) or 'none'}")
    return tuple(usable[v] for v in dict.fromkeys(value))


def choice_param(cfg: Any, key: str, default: str, choices: tuple[str, ...]) -> str:
    value = cfg.get(key, default)
    if value not in choices:
        raise ConfigError(f"model.{key} must be one of {list(choices)}, got {value!r}")
    return str(value)


def bool_param(cfg: Any, key: str, default: bool) -> bool:
    value = cfg.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"model.{key} must be true or false, got {value!r}")
    return value


def feature_specs(info: DataInfo, cfg: Mapping[str, Any] | Any, which: str,
                  max_cardinality: int) -> tuple[FeatureSpec, ...]:
    """Selected ``item``/``user`` feature columns of ``info`` (see :func:`columns_param`)."""
    specs = info.item_features if which == "item" else info.user_features
    return columns_param(cfg, f"{which}_feature_columns", specs, max_cardinality)

"""Validation helpers for plugin parameters: every error names the key.

Documented with examples in docs/plugin_parameters.md. Each helper reads one key of a
config node (a ``DictConfig`` or a dict), returns it with the right Python type, and
raises a :class:`recframe.errors.ConfigError` (E304/E305) that names the key, the
expected type or range and the value it got.

The ``*_param`` helpers read model hyperparameters (errors name ``model.<key>``);
:func:`check_known_keys`, :func:`read_key` and :func:`is_finite_number` serve any
config block a plugin reads, such as one preprocessing step or a splitter (errors
name the block as the caller words it, e.g. ``preprocess step 'binarize'``).
Part of the public plugin API (re-exported by :mod:`recframe.api`), so plugins
do not each write their own.
"""

from __future__ import annotations

import copy
import difflib
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
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


def field_names_param(cfg: Any, key: str, default: Any = None) -> tuple[str, ...] | None:
    """``model.<key>``: ``null`` or a list of field names (e.g. ``fields`` and
    ``exclude_fields``, the ``include``/``exclude`` of ``recframe.api.FieldEmbedding``)."""
    value = cfg.get(key, default)
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not all(
            isinstance(v, str) for v in value):
        raise ConfigError(f"model.{key} must be null or a list of field names, got {value!r}")
    return tuple(value)


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
    """One of ``choices`` (e.g. a solver or a loss name)."""
    value = cfg.get(key, default)
    if value not in choices:
        raise ConfigError(f"model.{key} must be one of {list(choices)}, got {value!r}")
    return str(value)


def bool_param(cfg: Any, key: str, default: bool) -> bool:
    """``true`` or ``false`` (not 0/1, not a string)."""
    value = cfg.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"model.{key} must be true or false, got {value!r}")
    return value


def feature_specs(info: DataInfo, cfg: Mapping[str, Any] | Any, which: str,
                  max_cardinality: int) -> tuple[FeatureSpec, ...]:
    """Selected ``item``/``user`` feature columns of ``info`` (see :func:`columns_param`)."""
    specs = info.item_features if which == "item" else info.user_features
    return columns_param(cfg, f"{which}_feature_columns", specs, max_cardinality)


def check_known_keys(cfg: Any, where: str, allowed: Iterable[str], example: str) -> None:
    """Reject keys of the config block ``cfg`` outside ``allowed`` (``name`` is always
    allowed), suggesting the closest allowed key; ``where`` names the block and
    ``example`` shows its expected shape (e.g. ``{name: binarize, ...}``)."""
    allowed = sorted(allowed)
    if cfg is None:
        return
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"{where}: expected a mapping like {example}, got {cfg!r}")
    for key in cfg:
        key = str(key)
        if key == "name" or key in allowed:
            continue
        msg = (f"{where}: unknown key {key!r}; allowed keys: "
               f"{', '.join(allowed) if allowed else '(none besides name)'}.")
        close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        if close:
            msg += f" Did you mean {close[0]!r}?"
        raise ConfigError(msg)


def read_key(cfg: Any, key: str, default: Any, where: str) -> Any:
    """``cfg.get(key, default)`` (a ``DictConfig`` or a dict; ``None`` gives the default),
    with an unreadable value (an unresolvable interpolation, ``???``) as a ConfigError."""
    if cfg is None:
        return default
    try:
        return cfg.get(key, default)
    except Exception as exc:
        raise ConfigError(f"{where}: cannot read {key!r}: {exc}") from exc


def is_finite_number(value: Any) -> bool:
    """A real, finite number that is not a boolean."""
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(float(value)))


#: the block of a model's config that the core reads, not the model: the training
#: budget the model needs (``trainer.max_epochs``/``min_epochs`` and
#: ``callbacks.early_stopping.patience`` default to it; a value set there wins)
TRAINING_BUDGET_KEY = "training"
TRAINING_BUDGET_KEYS = ("max_epochs", "min_epochs", "patience")


#: keys of a model's config that the core reads, not the model: the training budget
#: and the item-text switch (``recframe.models.item_text``)
ITEM_TEXT_KEY = "item_text"  # recframe.models.item_text
CORE_MODEL_KEYS = (TRAINING_BUDGET_KEY, ITEM_TEXT_KEY)


def model_build_config(model_cfg: Any) -> Any:
    """``model_cfg`` as the model's builder sees it: without the core's keys (the
    ``training`` block, validated here, and ``item_text``), so builders that reject
    unknown keys need not know them."""
    if model_cfg is None or not any(k in model_cfg for k in CORE_MODEL_KEYS):
        return model_cfg
    if TRAINING_BUDGET_KEY in model_cfg:
        budget = read_key(model_cfg, TRAINING_BUDGET_KEY, None, "model")
        check_known_keys(budget, "model.training", TRAINING_BUDGET_KEYS,
                         "{max_epochs: 200, min_epochs: 10, patience: 10}")
        for key in TRAINING_BUDGET_KEYS:
            value = read_key(budget, key, None, "model.training")
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < (0 if key == "min_epochs" else 1)):
                raise ConfigError(f"model.training.{key} must be a positive integer (or "
                                  f"null), got {value!r}")
    from omegaconf import DictConfig, open_dict

    if isinstance(model_cfg, DictConfig):
        trimmed = copy.copy(model_cfg)  # keeps its parent: interpolations still resolve
        with open_dict(trimmed):
            for key in CORE_MODEL_KEYS:
                if key in trimmed:
                    del trimmed[key]
        return trimmed
    return {k: v for k, v in dict(model_cfg).items() if k not in CORE_MODEL_KEYS}

"""Reading and validating the parameters of one preprocessing step.

Every step is built from one entry of the ``preprocess`` list, e.g.
``{name: binarize, threshold: 4.0}``. The helpers here read a value with
``cfg.get(key, default)`` (works for omegaconf ``DictConfig`` and plain dicts)
and raise :class:`ConfigError` naming the step, the key, what was expected and
what was given, so a typo fails before any data is touched.
"""

from __future__ import annotations

import logging
import numbers
from collections.abc import Iterable, Sequence
from typing import Any

from recframe.api import (
    ConfigError,
    DataError,
    check_known_keys,
    is_finite_number,
    read_key,
)

log = logging.getLogger("recframe_preprocess")


def where(step: str) -> str:
    return f"preprocess step {step!r}"


def check_keys(cfg: Any, step: str, allowed: Iterable[str]) -> None:
    """Reject keys the step does not know (``name`` is always allowed)."""
    check_known_keys(cfg, where(step), allowed, f"{{name: {step}, ...}}")


def _get(cfg: Any, key: str, default: Any, step: str) -> Any:
    return read_key(cfg, key, default, where(step))


_is_number = is_finite_number


def get_number(cfg: Any, key: str, default: float, step: str) -> float:
    value = _get(cfg, key, default, step)
    if not _is_number(value):
        raise ConfigError(f"{where(step)}: {key} must be a finite number, got {value!r}")
    return float(value)


def get_int(cfg: Any, key: str, default: int, step: str, minimum: int = 0) -> int:
    value = _get(cfg, key, default, step)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"{where(step)}: {key} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{where(step)}: {key} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def get_bool(cfg: Any, key: str, default: bool, step: str) -> bool:
    value = _get(cfg, key, default, step)
    if not isinstance(value, bool):
        raise ConfigError(f"{where(step)}: {key} must be true or false, got {value!r}")
    return value


def get_choice(cfg: Any, key: str, default: str, choices: Sequence[str], step: str) -> str:
    value = _get(cfg, key, default, step)
    if value not in choices:
        raise ConfigError(
            f"{where(step)}: {key} must be one of {', '.join(choices)}, got {value!r}"
        )
    return str(value)


def get_str_list(cfg: Any, key: str, step: str) -> list[str]:
    """A required, non-empty list of strings (a single string is accepted as one item)."""
    value = _get(cfg, key, None, step)
    if isinstance(value, str):
        value = [value]
    if (
        value is None
        or not isinstance(value, Sequence)
        or len(value) == 0
        or not all(isinstance(v, str) for v in value)
    ):
        raise ConfigError(
            f"{where(step)}: {key} must be a non-empty list of column names, got {value!r}"
        )
    return [str(v) for v in value]


def report_dropped(step: str, before: int, after: int, why: str) -> None:
    """Log how many rows a step dropped; fail if it dropped every row."""
    log.info(
        "preprocess %r: dropped %d of %d rows (%s); %d left", step, before - after, before, why,
        after,
    )
    if after == 0 and before > 0:
        raise DataError(
            f"{where(step)} removed every interaction ({before} rows, {why}). "
            f"Check its parameters or the steps before it."
        )

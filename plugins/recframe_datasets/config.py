"""Small helpers to read the ``dataset`` config node (a DictConfig or a plain mapping)."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from recframe.api import ConfigError, DataError


def opt(cfg: Any, key: str, default: Any = None) -> Any:
    """``cfg[key]`` or ``default`` when the key is absent, null or ``???`` (missing)."""
    if cfg is None:
        return default
    try:
        value = cfg.get(key, default)
    except Exception:  # omegaconf raises on interpolation / missing-value errors
        return default
    return default if value is None or value == "???" else value


def require(cfg: Any, key: str, what: str, where: str = "dataset") -> Any:
    """``cfg[key]``; a :class:`ConfigError` naming ``<where>.<key>`` when it is unset."""
    value = opt(cfg, key)
    if value is None or value == "":
        raise ConfigError(f"config key `{where}.{key}` is required: {what}, e.g. "
                          f"`{where}.{key}=...`")
    return value


def plain(value: Any) -> Any:
    """Turn (nested) DictConfig/ListConfig values into plain dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): plain(value[k]) for k in value}
    if isinstance(value, (list, tuple)) or type(value).__name__ == "ListConfig":
        return [plain(v) for v in value]
    return value


def suggest(name: str, choices: Iterable[Any]) -> str:
    """`` Did you mean 'x'?`` for the closest choice, or an empty string."""
    match = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.5)
    return f" Did you mean {match[0]!r}?" if match else ""


def check_keys(cfg: Any, allowed: Iterable[str], where: str = "dataset") -> None:
    """Raise a :class:`ConfigError` for keys of ``cfg`` outside ``allowed`` (typos)."""
    if cfg is None:
        return
    allowed = set(allowed)
    for key in cfg:
        if str(key) not in allowed:
            raise ConfigError(
                f"unknown config key `{where}.{key}`. Known keys: "
                f"{', '.join(sorted(allowed))}.{suggest(str(key), allowed)}"
            )


def existing_file(value: Any, key: str, *, also_under: Path | None = None) -> Path:
    """Resolve a file path from config (``~`` expanded, relative to the working directory,
    then to ``also_under``); a :class:`DataError` with the absolute paths tried."""
    raw = Path(str(value)).expanduser()
    candidates = [raw.resolve()]
    if also_under is not None and not raw.is_absolute():
        candidates.append((also_under / raw).resolve())
    for cand in candidates:
        if cand.is_file():
            return cand
    tried = " or ".join(str(c) for c in candidates)
    hint = " (it is a directory)" if candidates[0].is_dir() else ""
    raise DataError(f"file not found: {tried}{hint} (config key `{key}`={str(value)!r}).")


def settings_from_cfg(cls: type, cfg: Any) -> Any:
    """An instance of the settings dataclass ``cls`` from ``dataset.*`` (generators).

    Unknown keys are a :class:`ConfigError` (``name`` and ``fields``, which the core
    reads, are allowed); each value takes its field's default type: a bool field
    ``bool(value)``, a number field a number (a bool, or a fractional value for an
    int field, is an error); then ``cls.validate()`` checks the combination.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    check_keys(cfg, {"name", "fields", *fields})
    values = {}
    for name, f in fields.items():
        raw = opt(cfg, name, f.default)
        kind = type(f.default)
        if kind is bool:
            values[name] = bool(raw)
            continue
        if isinstance(raw, bool) or (kind is int and isinstance(raw, float)
                                     and not raw.is_integer()):
            raise ConfigError(f"`dataset.{name}` must be a {kind.__name__}, got {raw!r}")
        try:
            values[name] = kind(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"`dataset.{name}` must be a {kind.__name__}, "
                              f"got {raw!r}") from None
    params = cls(**values)
    params.validate()
    return params

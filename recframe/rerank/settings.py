"""The validated ``rerank`` config node (``conf/rerank/llm.yaml`` documents each key)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from omegaconf import OmegaConf

from recframe.errors import ConfigError
from recframe.params import check_known_keys
from recframe.rerank.backend import MODES

TARGETS = ("yes_no", "title")
#: keys of ``conf/rerank/llm.yaml``; a third-party backend reads its own under ``options``
KEYS = ("backend", "model", "mode", "target", "top_n", "max_users", "history_items",
        "bootstrap", "shuffle", "seed", "cache", "cache_dir", "max_new_tokens", "context_length",
        "batch_size", "device", "base_url", "api_key_env", "timeout_s", "retries",
        "backoff_s", "title_column", "fake_rule", "fake_output", "options")


def _int(node: Mapping[str, Any], key: str, default: int | None, minimum: int,
         optional: bool = False) -> int | None:
    value = node.get(key, default)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        hint = " or null" if optional else ""
        raise ConfigError(f"rerank.{key} must be an integer >= {minimum}{hint}, got {value!r}")
    return value


def _float(node: Mapping[str, Any], key: str, default: float) -> float:
    value = node.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(
            value) or value < 0:
        raise ConfigError(f"rerank.{key} must be a number >= 0, got {value!r}")
    return float(value)


def _choice(node: Mapping[str, Any], key: str, default: str, choices: tuple[str, ...]) -> str:
    value = node.get(key, default)
    if value not in choices:
        raise ConfigError(f"rerank.{key}={value!r}: choose one of {list(choices)}")
    return str(value)


@dataclass(frozen=True)
class RerankSettings:
    """What the LLM stage does; see ``conf/rerank/llm.yaml``."""

    backend: str
    mode: str = "pointwise"
    target: str = "yes_no"
    top_n: int = 20
    max_users: int | None = None
    history_items: int = 20
    bootstrap: int = 3
    shuffle: bool = True
    seed: int = 0
    cache: bool = True
    cache_dir: str | None = None
    max_new_tokens: int = 120
    batch_size: int = 20
    title_column: str = "auto"
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def repeats(self) -> int:
        """Prompts per user in listwise mode (pointwise scores do not depend on order)."""
        return self.bootstrap if self.mode == "listwise" else 1


def read_settings(node: Any) -> RerankSettings:
    """Check the ``rerank`` node (unknown keys, types, ranges) and read it."""
    plain = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
    plain = dict(plain or {})
    check_known_keys(plain, "rerank", KEYS, "{name: llm, backend: fake, top_n: 20}")
    backend = plain.get("backend")
    if not isinstance(backend, str) or not backend:
        raise ConfigError("rerank.backend must name an LLM backend, e.g. rerank.backend=smollm2 "
                          "(`recframe plugins` lists them)")
    shuffle = plain.get("shuffle", True)
    if not isinstance(shuffle, bool):
        raise ConfigError(f"rerank.shuffle must be true or false, got {shuffle!r}")
    cache = plain.get("cache", True)
    if not isinstance(cache, bool):
        raise ConfigError(f"rerank.cache must be true or false, got {cache!r}")
    cache_dir = plain.get("cache_dir")
    title_column = plain.get("title_column", "auto")
    if not isinstance(title_column, str):
        raise ConfigError(f"rerank.title_column must be a column name or auto, got "
                          f"{title_column!r}")
    return RerankSettings(
        backend=backend,
        mode=_choice(plain, "mode", "pointwise", MODES),
        target=_choice(plain, "target", "yes_no", TARGETS),
        top_n=_int(plain, "top_n", 20, 2),  # type: ignore[arg-type]
        max_users=_int(plain, "max_users", None, 1, optional=True),
        history_items=_int(plain, "history_items", 20, 0),  # type: ignore[arg-type]
        bootstrap=_int(plain, "bootstrap", 3, 1),  # type: ignore[arg-type]
        shuffle=shuffle,
        seed=_int(plain, "seed", 0, 0),  # type: ignore[arg-type]
        cache=cache,
        cache_dir=str(cache_dir) if cache_dir else None,
        max_new_tokens=_int(plain, "max_new_tokens", 120, 1),  # type: ignore[arg-type]
        batch_size=_int(plain, "batch_size", 20, 1),  # type: ignore[arg-type]
        title_column=title_column,
        raw=plain,
    )


def backend_float(node: Mapping[str, Any], key: str, default: float) -> float:
    """A non-negative number of the ``rerank`` node (for backends: timeouts, backoff)."""
    return _float(node, key, default)


def backend_int(node: Mapping[str, Any], key: str, default: int | None, minimum: int = 0,
                optional: bool = False) -> int | None:
    """An integer of the ``rerank`` node (for backends: retries, context length)."""
    return _int(node, key, default, minimum, optional)

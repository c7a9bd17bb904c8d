"""``metrics.names`` entries: a registered metric's name, or a mapping that gives a
metric parameters.

::

    metrics:
      names: [ndcg, recall, {name: recall, denominator: min_k}]   # -> recall_min_k@K
      ks: [10, 20]

A mapping holds ``name`` (the registered metric), optionally ``label`` (its key in
results: ``<label>@<k>``; default: the name and the parameter values joined by ``_``)
and the metric's parameters, which its :attr:`MetricSpec.configure` validates and
binds. A metric without ``configure`` takes no parameters.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from recframe.errors import ConfigError
from recframe.plugin.specs import MetricSpec

_LABEL = re.compile(r"^[A-Za-z_][\w-]*$")
_RESERVED = ("name", "label")


def _default_label(name: str, params: Mapping[str, Any]) -> str:
    parts = [name, *(re.sub(r"[^\w-]+", "-", str(v)).strip("-") for v in params.values())]
    return "_".join(p for p in parts if p)


def configured_metric(spec: MetricSpec, params: Mapping[str, Any], label: str | None,
                      where: str) -> MetricSpec:
    """``spec`` with ``params`` bound by its ``configure``, registered under ``label``.

    The configured spec has no pointwise form (parameters apply to ranking metrics)
    and its description ends with the parameters, which the protocol record shows."""
    if not params:
        return spec if label in (None, spec.name) else dataclasses.replace(spec, name=label)
    if spec.configure is None:
        raise ConfigError(
            f"{where}: metric {spec.name!r} takes no parameters, got "
            f"{', '.join(sorted(params))}. Name it alone (`{spec.name}`); the metrics that "
            f"take parameters say so in their description (`recframe plugins`).")
    fn = spec.configure(dict(params), where)
    if not callable(fn):
        raise TypeError(f"metric {spec.name!r}: configure() must return fn(inp, k), got "
                        f"{type(fn).__name__}")
    shown = ", ".join(f"{k}={v}" for k, v in params.items())
    return dataclasses.replace(
        spec, name=label or _default_label(spec.name, params), fn=fn, pointwise=None,
        description=f"{spec.description} [{shown}]".strip())


def resolve_metrics(entries: Any, registry: Any, key: str = "metrics.names"
                    ) -> dict[str, MetricSpec]:
    """``{key in results: spec}`` for the ``metrics.names`` list ``entries`` (names or
    mappings, see the module doc), looked up in the metrics ``registry``. Errors name
    the entry (``metrics.names[2]``)."""
    if isinstance(entries, (str, Mapping, DictConfig)) or not isinstance(
            entries, (Sequence, ListConfig)):
        entries = [entries]
    out: dict[str, MetricSpec] = {}
    for i, entry in enumerate(entries):
        where = f"{key}[{i}]"
        if isinstance(entry, DictConfig):
            entry = OmegaConf.to_container(entry, resolve=True)
        if isinstance(entry, Mapping):
            if "name" not in entry:
                raise ConfigError(
                    f"{where}: a metric with parameters is a mapping with a `name`, e.g. "
                    f"{{name: recall, denominator: min_k}}; got {entry!r}")
            label = entry.get("label")
            if label is not None and (not isinstance(label, str) or not _LABEL.match(label)):
                raise ConfigError(
                    f"{where}.label must be a name of letters, digits, '_' or '-' (its results "
                    f"read <label>@<k>), got {label!r}")
            params = {k: v for k, v in entry.items() if k not in _RESERVED}
            spec = registry.get(str(entry["name"]), key=f"{where}.name")
            spec = configured_metric(spec, params, label, where)
        else:
            spec = registry.get(str(entry), key=key)
        if spec.name in out:
            raise ConfigError(
                f"{where}: the key {spec.name!r} is already taken by another entry of {key}; "
                f"give this one a `label` of its own, e.g. {{name: ..., label: "
                f"{spec.name}_2, ...}}")
        out[spec.name] = spec
    return out

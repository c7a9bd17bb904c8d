"""Lazy references: a spec names its builder by import path, imported when a run asks.

A plugin registers specs at every start of ``recframe`` (``recframe plugins``,
``recframe run --help``, every run). Importing each model's module there would
import torch for all of them; instead a spec can hold ``lazy("pkg.module:attr")``,
and :meth:`recframe.plugin.registry.Registry.get` swaps it for the real object the
first time that name is asked for, so ``spec.build is build_bpr`` after ``get``.
A :class:`Lazy` is also callable, so code that calls it directly works too.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from dataclasses import dataclass
from typing import Any

from recframe.errors import PluginLoadError

_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


@dataclass(frozen=True)
class Lazy:
    """``"package.module:attribute"``: an object imported on first use (E840, E841)."""

    target: str

    def __post_init__(self) -> None:
        if not isinstance(self.target, str) or not _TARGET.match(self.target):
            raise PluginLoadError(
                f"lazy({self.target!r}): a lazy reference is 'package.module:attribute' "
                f"(e.g. lazy('recframe_cf.bpr:build_bpr')), an absolute module path, a colon, "
                f"then the name inside the module."
            )

    def resolve(self) -> Any:
        """Import the module and return the attribute (E840 when either is missing)."""
        module_name, attr = self.target.split(":", 1)
        try:
            value: Any = importlib.import_module(module_name)
            for part in attr.split("."):
                value = getattr(value, part)
        except (ImportError, AttributeError) as exc:
            raise PluginLoadError(
                f"lazy reference {self.target!r} does not resolve: {type(exc).__name__}: "
                f"{exc}. Fix the module path or name in the plugin's spec, or install the "
                f"missing package."
            ) from exc
        return value

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"lazy({self.target!r})"


def lazy(target: str) -> Any:
    """A reference to ``"package.module:attribute"`` that is imported on first use.

    Use it for a spec's ``build``/``load``/``fn``/``pointwise``/``check`` so that
    registering a plugin does not import torch, Lightning or pandas::

        registry.add(ModelSpec(name="bpr", build=lazy("recframe_cf.bpr:build_bpr")))
    """
    return Lazy(target)


def resolve_spec(spec: Any, plugin: str) -> Any:
    """``spec`` with every :class:`Lazy` field replaced by the object it names."""
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(spec):
        value = getattr(spec, f.name)
        if isinstance(value, Lazy):
            try:
                changes[f.name] = value.resolve()
            except PluginLoadError as exc:
                raise PluginLoadError(
                    f"plugin {plugin!r}, {type(spec).__name__} {spec.name!r}, field "
                    f"{f.name!r}: {exc}"
                ) from exc.__cause__
    return dataclasses.replace(spec, **changes) if changes else spec

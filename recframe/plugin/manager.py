"""Load plugins from the ``recframe`` entry-point group and build registries."""

from __future__ import annotations

import functools
import importlib.metadata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from recframe.errors import PluginLoadError
from recframe.plugin import hookspecs
from recframe.plugin.registry import Registrar, Registry
from recframe.plugin.specs import (
    DatasetSpec,
    LLMBackendSpec,
    MetricSpec,
    ModelSpec,
    PreprocessorSpec,
    SplitterSpec,
)

ENTRY_POINT_GROUP = "recframe"
hookimpl = pluggy.HookimplMarker("recframe")

KINDS: dict[str, tuple[str, type]] = {
    # registry attribute -> (hook name, spec type)
    "datasets": ("recframe_register_datasets", DatasetSpec),
    "preprocessors": ("recframe_register_preprocessors", PreprocessorSpec),
    "splitters": ("recframe_register_splitters", SplitterSpec),
    "models": ("recframe_register_models", ModelSpec),
    "metrics": ("recframe_register_metrics", MetricSpec),
    "llm_backends": ("recframe_register_llm_backends", LLMBackendSpec),
}
SINGULAR = {
    "datasets": "dataset",
    "preprocessors": "preprocessor",
    "splitters": "splitter",
    "models": "model",
    "metrics": "metric",
    "llm_backends": "LLM backend",
}


@dataclass(frozen=True)
class PluginInfo:
    """An installed plugin: its name and the distribution that ships it."""

    name: str
    distribution: str = ""
    version: str = ""
    searchpaths: tuple[str, ...] = field(default_factory=tuple)


class PluginManager:
    """Holds the pluggy manager and one registry per kind.

    ``PluginManager()`` loads every installed plugin through entry points
    (first-party ones included). Tests pass ``load_entry_points=False`` and
    their own ``plugins`` to get an isolated manager.
    """

    def __init__(
        self,
        plugins: Iterable[Any] = (),
        *,
        load_entry_points: bool = True,
    ) -> None:
        self.pm = pluggy.PluginManager("recframe")
        self.pm.add_hookspecs(hookspecs)
        self._infos: dict[str, PluginInfo] = {}
        if load_entry_points:
            self._load_entry_points()
        for plugin in plugins:
            name = getattr(plugin, "__name__", None) or type(plugin).__name__
            self.pm.register(plugin, name=name)
            self._infos[name] = PluginInfo(name=name)
        self.pm.check_pending()
        self.datasets: Registry[DatasetSpec] = Registry("dataset", DatasetSpec)
        self.preprocessors: Registry[PreprocessorSpec] = Registry(
            "preprocessor", PreprocessorSpec
        )
        self.splitters: Registry[SplitterSpec] = Registry("splitter", SplitterSpec)
        self.models: Registry[ModelSpec] = Registry("model", ModelSpec)
        self.metrics: Registry[MetricSpec] = Registry("metric", MetricSpec)
        self.llm_backends: Registry[LLMBackendSpec] = Registry("LLM backend", LLMBackendSpec)
        for attr, (hook_name, _spec_type) in KINDS.items():
            self._collect(hook_name, getattr(self, attr))
        self._collect_searchpaths()

    def _load_entry_points(self) -> None:
        # Like pluggy's load_setuptools_entrypoints, but each load is wrapped so
        # a broken plugin names itself and its distribution.
        for dist in importlib.metadata.distributions():
            for ep in dist.entry_points:
                if ep.group != ENTRY_POINT_GROUP:
                    continue
                if self.pm.get_plugin(ep.name) is not None or self.pm.is_blocked(ep.name):
                    continue
                dist_name = dist.metadata["name"]
                try:
                    plugin = ep.load()
                    self.pm.register(plugin, name=ep.name)
                except Exception as exc:
                    raise PluginLoadError(
                        f"plugin {ep.name!r} (entry point {ep.value!r} of distribution "
                        f"{dist_name} {dist.version}) failed to load: "
                        f"{type(exc).__name__}: {exc}. Fix or uninstall that package "
                        f"(`pip uninstall {dist_name}`)."
                    ) from exc
                self._infos[ep.name] = PluginInfo(ep.name, dist_name, dist.version)

    def _plugin_name(self, impl: Any) -> str:
        return impl.plugin_name

    def _collect(self, hook_name: str, registry: Registry[Any]) -> None:
        hook = getattr(self.pm.hook, hook_name)
        for impl in hook.get_hookimpls():
            name = self._plugin_name(impl)
            try:
                impl.function(registry=Registrar(registry, name))
            except PluginLoadError:
                raise
            except Exception as exc:
                if exc.__class__.__module__.startswith("recframe.errors"):
                    raise
                raise PluginLoadError(
                    f"plugin {name!r} failed in {hook_name}: {type(exc).__name__}: {exc}"
                ) from exc

    def _collect_searchpaths(self) -> None:
        for impl in self.pm.hook.recframe_config_searchpath.get_hookimpls():
            name = self._plugin_name(impl)
            result = impl.function()
            if not result:
                continue
            paths = (result,) if isinstance(result, str) else tuple(result)
            info = self._infos.get(name, PluginInfo(name))
            self._infos[name] = PluginInfo(
                info.name, info.distribution, info.version, info.searchpaths + paths
            )

    # -- queries -----------------------------------------------------------
    def plugins(self) -> list[PluginInfo]:
        return [self._infos[n] for n in sorted(self._infos)]

    def searchpaths(self) -> list[tuple[str, str]]:
        """(plugin name, search path) for every plugin that ships config."""
        return [(p.name, s) for p in self.plugins() for s in p.searchpaths]

    def registered_by(self, plugin: str) -> dict[str, list[str]]:
        """Names each kind's registry holds from ``plugin``."""
        out: dict[str, list[str]] = {}
        for attr in KINDS:
            reg: Registry[Any] = getattr(self, attr)
            names = [n for n in reg.names() if reg.plugin_of(n) == plugin]
            if names:
                out[attr] = names
        return out


@functools.lru_cache(maxsize=1)
def default_manager() -> PluginManager:
    """The process-wide manager over all installed plugins (loaded once)."""
    return PluginManager()

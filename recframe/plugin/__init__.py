"""Plugin system: pluggy hook specs, spec types, registries and the manager."""

from recframe.plugin.lazyref import Lazy, lazy
from recframe.plugin.manager import PluginManager, default_manager, hookimpl
from recframe.plugin.specs import (
    DatasetSpec,
    LLMBackendSpec,
    MetricSpec,
    ModelSpec,
    PreprocessorSpec,
    SplitterSpec,
)

__all__ = [
    "DatasetSpec",
    "Lazy",
    "LLMBackendSpec",
    "MetricSpec",
    "ModelSpec",
    "PluginManager",
    "PreprocessorSpec",
    "SplitterSpec",
    "default_manager",
    "hookimpl",
    "lazy",
]

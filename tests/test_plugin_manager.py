"""The plugin manager: entry-point loading, attribution, duplicates, unknown names."""

from __future__ import annotations

import types

import pytest

from recframe.api import DatasetSpec, MetricSpec, ModelSpec, hookimpl
from recframe.errors import DuplicateNameError, PluginLoadError, UnknownNameError
from recframe.plugin import PluginManager


def _toy_plugin(name: str, model_names: list[str]) -> types.SimpleNamespace:
    @hookimpl
    def recframe_register_models(registry):
        for m in model_names:
            registry.add(ModelSpec(name=m, build=lambda info, cfg: None, family="toy"))

    plugin = types.SimpleNamespace(recframe_register_models=recframe_register_models)
    plugin.__name__ = name
    return plugin


def test_builtin_plugins_load_through_entry_points():
    pm = PluginManager()
    builtin = {"datasets", "preprocess", "splitters", "cf", "metrics", "mlp", "seq", "content",
               "hybrid"}
    assert builtin <= {p.name for p in pm.plugins()}
    assert all(p.distribution == "recframe" for p in pm.plugins() if p.name in builtin)
    assert {"pop", "bpr"} <= set(pm.models.names())
    assert {"recall", "precision", "ndcg", "mrr", "hit", "map"} <= set(pm.metrics.names())
    assert {"ml-100k", "csv", "synthetic"} <= set(pm.datasets.names())
    assert {"random", "temporal", "leave_one_out"} <= set(pm.splitters.names())
    assert {"drop_invalid", "dedup", "binarize", "kcore", "normalize"} <= set(
        pm.preprocessors.names())
    assert pm.models.plugin_of("bpr") == "cf"
    assert {"bpr", "pop"} <= set(pm.registered_by("cf")["models"])


def test_isolated_manager_registers_in_test_plugins_only():
    pm = PluginManager([_toy_plugin("toy", ["a", "b"])], load_entry_points=False)
    assert pm.models.names() == ["a", "b"]
    assert pm.models.plugin_of("a") == "toy"
    assert len(pm.metrics) == 0


def test_duplicate_name_names_both_plugins():
    with pytest.raises(DuplicateNameError) as err:
        PluginManager([_toy_plugin("first", ["same"]), _toy_plugin("second", ["same"])],
                      load_entry_points=False)
    assert "'first'" in str(err.value) and "'second'" in str(err.value)
    assert "'same'" in str(err.value)


def test_duplicate_of_builtin_name_is_rejected():
    with pytest.raises(DuplicateNameError, match="'cf'"):
        PluginManager([_toy_plugin("mine", ["bpr"])])


def test_unknown_name_lists_available_and_suggests_closest():
    pm = PluginManager()
    with pytest.raises(UnknownNameError) as err:
        pm.models.get("bpt", key="model.name")
    msg = str(err.value)
    assert "unknown model 'bpt'" in msg and "model.name" in msg
    assert "pop" in msg and "Did you mean 'bpr'?" in msg


def test_wrong_spec_type_is_rejected():
    @hookimpl
    def recframe_register_metrics(registry):
        registry.add(DatasetSpec(name="oops", load=lambda cfg: None))

    plugin = types.SimpleNamespace(recframe_register_metrics=recframe_register_metrics)
    plugin.__name__ = "confused"
    with pytest.raises(PluginLoadError, match="confused"):
        PluginManager([plugin], load_entry_points=False)


def test_broken_entry_point_names_itself(monkeypatch):
    import importlib.metadata as md

    class FakeEP:
        name, value, group = "broken", "no_such_module_xyz.plugin", "recframe"

        def load(self):
            raise ImportError("No module named 'no_such_module_xyz'")

    class FakeDist:
        metadata = {"name": "recframe-broken"}
        version = "9.9"
        entry_points = [FakeEP()]

    monkeypatch.setattr(md, "distributions", lambda: [FakeDist()])
    with pytest.raises(PluginLoadError) as err:
        PluginManager()
    assert "'broken'" in str(err.value) and "recframe-broken" in str(err.value)
    assert "pip uninstall recframe-broken" in str(err.value)


def test_metric_spec_is_frozen():
    spec = MetricSpec(name="x", fn=lambda inp, k: None)
    with pytest.raises(AttributeError):
        spec.name = "y"  # type: ignore[misc]

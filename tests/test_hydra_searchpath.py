"""A plugin's config groups reach Hydra through the one registered SearchPathPlugin."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch

import recframe.plugin.manager as manager_module
from recframe.api import ModelSpec, RecModel, TrainFormat, hookimpl
from recframe.hydra_app import compose_config
from recframe.plugin import PluginManager
from recframe.runner import run_experiment


class ToyPop(RecModel):
    """An in-test third-party model: popularity with a configurable power."""

    train_format = TrainFormat.FIT

    def __init__(self, n_items: int, power: float) -> None:
        super().__init__()
        self.power = power
        self.register_buffer("scores", torch.zeros(n_items))

    def fit(self, data) -> None:
        pop = data.item_popularity().astype(np.float32)
        self.scores.copy_(torch.from_numpy(pop) ** self.power)

    def score(self, users, context):
        return self.scores.expand(len(users), -1)


@pytest.fixture
def toy_plugin_installed(tmp_path, monkeypatch):
    conf = tmp_path / "toy_conf"
    (conf / "model").mkdir(parents=True)
    (conf / "model" / "toy.yaml").write_text("name: toy\npower: 2.0\n")
    # a plugin may add files but must not shadow core ones:
    (conf / "model" / "bpr.yaml").write_text("name: shadowed\n")

    @hookimpl
    def recframe_register_models(registry):
        registry.add(ModelSpec(name="toy", build=lambda info, cfg: ToyPop(info.n_items,
                                                                          cfg.power)))

    @hookimpl
    def recframe_config_searchpath():
        return f"file://{conf}"

    plugin = types.SimpleNamespace(recframe_register_models=recframe_register_models,
                                   recframe_config_searchpath=recframe_config_searchpath)
    plugin.__name__ = "toyplugin"
    pm = PluginManager([plugin])
    monkeypatch.setattr(manager_module, "default_manager", lambda: pm)
    return pm


def test_plugin_config_group_is_found(toy_plugin_installed):
    cfg = compose_config(["model=toy"])
    assert cfg.model.name == "toy" and cfg.model.power == 2.0
    assert "toyplugin" in {name for name, _ in toy_plugin_installed.searchpaths()}


def test_plugin_cannot_shadow_core_config(toy_plugin_installed):
    assert compose_config(["model=bpr"]).model.name == "bpr"


def test_third_party_model_runs_like_a_builtin(toy_plugin_installed, tmp_path):
    cfg = compose_config(["model=toy", "dataset=synthetic", "dataset.n_users=100",
                          "dataset.n_items=50", "preprocess=none", "logger=none"])
    results = run_experiment(cfg, tmp_path, pm=toy_plugin_installed)
    assert results["status"] == "ok" and results["metrics"]["test"]["ndcg@10"] > 0

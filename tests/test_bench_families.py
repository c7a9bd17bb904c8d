"""Helpers of the families_multi benchmark scripts (experiments/bench/)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "experiments" / "bench"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sampled_config_switches_only_the_evaluation():
    module = _load("sampled_vs_full")
    config = {"seed": 3, "model": {"name": "sasrec"},
              "evaluation": {"protocol": "auto", "candidates": "full", "batch_size": 512}}
    out = module.sampled_config(config, 100, "uniform")
    assert out["evaluation"] == {"protocol": "ranking", "candidates": "sampled",
                                 "num_negatives": 100, "sampling": "uniform", "seed": 3,
                                 "batch_size": 512}
    assert out["model"] == config["model"] and config["evaluation"]["candidates"] == "full"


def test_the_published_reference_is_the_sasrec_papers():
    module = _load("sampled_vs_full")
    _, hr, ndcg = module.PUBLISHED[("amazon-games", "sasrec")]
    assert (hr, ndcg) == (0.7410, 0.5360)

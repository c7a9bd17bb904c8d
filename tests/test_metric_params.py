"""Metrics with parameters from config (``metrics.names: [{name: recall, denominator:
min_k}]``): resolved, validated with messages naming the entry, and the built-in
parameterised recall checked against a brute-force reference."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

import recframe_metrics.plugin
from recframe.errors import ConfigError
from recframe.eval import Evaluator
from recframe.eval.metric_config import resolve_metrics
from recframe.plugin import PluginManager
from tests.test_metrics import KS, N_USERS, full_ranking, make_batch, random_users


@pytest.fixture(scope="module")
def registry():
    return PluginManager([recframe_metrics.plugin], load_entry_points=False).metrics


def truncated_recall(ranked: list[int], relevant: set[int], k: int) -> float:
    """Liang et al. (WWW 2018) Recall@R, in plain Python."""
    if not relevant:
        return 0.0
    return sum(1 for item in ranked[:k] if item in relevant) / min(k, len(relevant))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recall_min_k_matches_brute_force(registry, seed):
    specs = resolve_metrics(OmegaConf.create(
        ["recall", {"name": "recall", "denominator": "min_k"},
         {"name": "recall", "denominator": "relevant", "label": "recall_again"}]), registry)
    assert list(specs) == ["recall", "recall_min_k", "recall_again"]
    scores, relevant, seen = random_users(seed)
    out = Evaluator(specs, KS).evaluate_batch(scores, make_batch(relevant, seen))
    differs = 0
    for u in range(N_USERS):
        ranked = full_ranking(scores[u], seen[u])
        for k in KS:
            want = truncated_recall(ranked, relevant[u], k)
            assert abs(float(out[f"recall_min_k@{k}"][u]) - want) <= 1e-6, (seed, u, k)
            assert float(out[f"recall_again@{k}"][u]) == float(out[f"recall@{k}"][u])
            differs += float(out[f"recall_min_k@{k}"][u]) != float(out[f"recall@{k}"][u])
    assert differs  # users with more relevant items than k tell the two apart


def test_a_run_reports_the_labelled_key_and_records_the_parameters(compose, tmp_path):
    from recframe.runner import run_experiment

    conf = compose("model=pop", "metrics.names=[ndcg,{name: recall, denominator: min_k}]",
                   "metrics.monitor=recall_min_k@10")
    results = run_experiment(conf, tmp_path)
    assert "recall_min_k@10" in results["metrics"]["test"]
    assert "[denominator=min_k]" in results["protocol"]["metrics"]["recall_min_k"]["description"]


@pytest.mark.parametrize("entries,match", [
    ([{"name": "ndcg", "gain": "exp"}], r"metrics.names\[0\]: metric 'ndcg' takes no parameters"),
    ([{"name": "recall", "denominater": "min_k"}],
     r"metrics.names\[0\]: unknown key 'denominater'.*Did you mean 'denominator'"),
    ([{"name": "recall", "denominator": "k"}],
     r"metrics.names\[0\].denominator must be one of \['relevant', 'min_k'\]"),
    ([{"denominator": "min_k"}], r"metrics.names\[0\]: a metric with parameters is a mapping"),
    (["recall", {"name": "recall", "label": "recall"}],
     r"metrics.names\[1\]: the key 'recall' is already taken"),
    ([{"name": "recall", "label": "r@10"}], r"metrics.names\[0\].label must be"),
    ([{"name": "recal", "denominator": "min_k"}],
     r"unknown metric 'recal' \(config key `metrics.names\[0\].name`\)"),
])
def test_bad_entries_name_the_entry(registry, entries, match):
    with pytest.raises(ConfigError, match=match):
        resolve_metrics(OmegaConf.create(entries), registry)


def test_a_configured_metric_has_no_pointwise_form(registry):
    spec = resolve_metrics([{"name": "recall", "denominator": "min_k"}], registry)["recall_min_k"]
    assert spec.pointwise is None and spec.configure is not None
    inp_hits = torch.tensor([[1.0, 1.0, 0.0]])
    from recframe.api import MetricInput

    inp = MetricInput(torch.zeros(1, 3, dtype=torch.long), inp_hits, torch.tensor([5.0]), 3)
    assert float(spec.fn(inp, 2)) == 1.0  # 2 hits of min(2, 5)

"""The LLM re-ranking stage with the deterministic fake backend: parsing, bootstrap,
context fitting, the cache, subsampling, metrics of re-ordered lists, the run record."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from recframe.errors import ConfigError, UnknownNameError
from recframe.plugin import default_manager
from recframe.rerank import RERANK_FILE, parse_ranking, run_stage
from recframe.rerank.bootstrap import borda, shown_orders
from recframe.rerank.cache import DiskCache, request_key
from recframe.rerank.candidates import list_metrics
from recframe.rerank.prompts import fit_history, history_text
from recframe.rerank.stage import subsample
from recframe.rerank.titles import item_titles
from recframe_llm.fake import rule_score

# -- parsing ------------------------------------------------------------------------------


@pytest.mark.parametrize("text, named, status", [
    ("[3] > [1] > [2]", (2, 0, 1), "full"),
    ("Ranking: 2, 3, 1", (1, 2, 0), "full"),
    ("[2] > [2] > [1] > [1]", (1, 0), "partial"),  # duplicates keep the first place
    ("The best is [3].", (2,), "partial"),
    ("[7] > [0] > [3]", (2,), "partial"),  # out of range ids are ignored
    ("I'm sorry, I cannot rank movies.", (), "unparsable"),
    ("", (), "unparsable"),
    ("Heat (1995) is great", (), "unparsable"),  # a year is not an identifier
])
def test_parse_ranking(text, named, status):
    parsed = parse_ranking(text, 3)
    assert parsed.named == named and parsed.status == status


def test_parse_ranking_falls_back_to_titles():
    titles = ["Toy Story (1995)", "Heat (1995)", "Fargo (1996)"]
    parsed = parse_ranking("I would say Fargo (1996), then Toy Story (1995).", 3, titles)
    assert parsed.named == (2, 0) and parsed.status == "partial"


# -- bootstrap ------------------------------------------------------------------------------


def test_shown_orders_are_permutations_fixed_by_seed_and_user():
    users = np.array([4, 9, 11])
    a = shown_orders(users, 6, 3, seed=1)
    assert a.shape == (3, 3, 6)
    assert (np.sort(a, axis=2) == np.arange(6)).all()
    # a user's orders do not depend on which other users are evaluated
    assert (shown_orders(np.array([9]), 6, 3, seed=1)[0] == a[1]).all()
    assert not (shown_orders(users, 6, 3, seed=2) == a).all()
    assert (shown_orders(users, 6, 2, seed=1, shuffle=False) == np.arange(6)).all()


def test_borda_matches_brute_force():
    rng = np.random.default_rng(0)
    rankings = np.stack([np.stack([rng.permutation(5) for _ in range(4)]) for _ in range(6)])
    merged = borda(rankings)
    for u in range(6):
        points = np.zeros(5)
        for ranking in rankings[u]:
            for pos, cand in enumerate(ranking):
                points[cand] += 4 - pos
        expected = sorted(range(5), key=lambda c: (-points[c], c))
        assert merged[u].tolist() == expected


# -- context fitting ---------------------------------------------------------------------


def test_fit_history_drops_the_oldest_items_first():
    history = [f"title {i}" for i in range(10)]
    count = lambda text: len(text.split())  # noqa: E731
    full = count(history_text(history))
    fitted = fit_history(history, history_text, count, full - 4, "here")
    assert fitted.history_dropped >= 2 and fitted.text.endswith("title 9\n")
    assert "title 0" not in fitted.text and count(fitted.text) <= full - 4
    assert fit_history(history, history_text, count, full, "here").history_dropped == 0
    with pytest.raises(ConfigError, match="even without any history"):
        fit_history(history, lambda h: history_text(h) + " x" * 50, count, 20, "here")


# -- cache -------------------------------------------------------------------------------


def test_disk_cache_round_trip_and_corrupt_entry(tmp_path):
    cache = DiskCache(tmp_path)
    key = request_key("fake", "m", "generate", ["prompt"])
    assert key != request_key("fake", "other", "generate", ["prompt"])
    assert cache.get(key) is None
    cache.put(key, {"text": "[1] > [2]"})
    assert cache.get(key) == {"text": "[1] > [2]"} and (cache.hits, cache.misses) == (1, 1)
    (tmp_path / key[:2] / f"{key}.json").write_text("{not json")
    assert cache.get(key) is None
    assert DiskCache(None).get(key) is None


def test_subsample_is_seeded_and_sorted():
    a = subsample(100, 10, seed=3)
    assert len(set(a)) == 10 and (np.diff(a) > 0).all()
    assert (a == subsample(100, 10, seed=3)).all() and not (a == subsample(100, 10, 4)).all()
    assert (subsample(5, 10, 0) == np.arange(5)).all()


# -- metrics of lists -------------------------------------------------------------------------


def _ndcg(ranked, relevant, k):
    dcg = sum(1 / math.log2(i + 2) for i, item in enumerate(ranked[:k]) if item in relevant)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(k, len(relevant))))
    return dcg / ideal


def test_list_metrics_match_brute_force():
    from recframe.pipeline import ranking_evaluator

    pm = default_manager()
    evaluator = ranking_evaluator(OmegaConf.create({"metrics": {"ks": [3, 5]}}),
                                  {n: pm.metrics.get(n) for n in ("ndcg", "recall")})
    rng = np.random.default_rng(1)
    n_items, users = 30, 8
    lists = torch.from_numpy(np.stack([rng.permutation(n_items)[:6] for _ in range(users)]))
    truth = [set(rng.choice(n_items, size=rng.integers(1, 4), replace=False).tolist())
             for _ in range(users)]
    rows = torch.tensor([u for u in range(users) for _ in truth[u]])
    cols = torch.tensor([i for u in range(users) for i in sorted(truth[u])])
    values, _ = list_metrics(evaluator, lists, torch.ones_like(lists, dtype=torch.bool),
                             rows, cols, n_items)
    for u in range(users):
        ranked = lists[u].tolist()
        assert values["ndcg@5"][u] == pytest.approx(_ndcg(ranked, truth[u], 5), abs=1e-6)
        hits3 = len(set(ranked[:3]) & truth[u])
        assert values["recall@3"][u] == pytest.approx(hits3 / min(3, len(truth[u])), abs=1e-6) \
            or values["recall@3"][u] == pytest.approx(hits3 / len(truth[u]), abs=1e-6)


# -- the stage on a trained base model -------------------------------------------------------


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    """Pop on small synthetic data, tested once; stages run on it below."""
    import lightning.pytorch as pl

    from recframe.hydra_app import compose_config
    from recframe.runner import build_experiment

    cfg = compose_config(["dataset=synthetic", "dataset.n_users=120", "dataset.n_items=80",
                          "preprocess=none", "logger=none", "model=pop", "metrics.ks=[5,10]",
                          "callbacks=none"])
    exp = build_experiment(cfg)
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, max_epochs=1,
                         enable_progress_bar=False, enable_model_summary=False,
                         enable_checkpointing=False, default_root_dir=str(
                             tmp_path_factory.mktemp("run")))
    trainer.fit(exp.task, datamodule=exp.datamodule)
    trainer.test(exp.task, datamodule=exp.datamodule, verbose=False)
    return exp


def _node(tmp_path, **kw):
    base = {"name": "llm", "backend": "fake", "top_n": 10, "cache_dir": str(tmp_path / "c"),
            "seed": 0, "history_items": 5}
    base.update(kw)
    return OmegaConf.create(base)


def test_base_arm_is_the_evaluated_list(experiment, tmp_path):
    record, frame = run_stage(_node(tmp_path, fake_rule="base"), experiment, default_manager())
    base = frame[frame.arm == "base"].set_index("user")
    evaluated = experiment.task.test_per_user.set_index("user")
    assert record["users"] == len(evaluated) == len(base)
    for key in ("ndcg@5", "recall@10"):
        np.testing.assert_allclose(base[key].to_numpy(), evaluated.loc[base.index, key],
                                   atol=1e-6)
    # a constant score keeps the base order: both arms equal, p = 1
    reranked = frame[frame.arm == "reranked"].set_index("user")
    np.testing.assert_allclose(reranked["ndcg@10"], base["ndcg@10"])
    assert record["paired"]["ndcg@10"]["p_wilcoxon"] == 1.0


def test_pointwise_reorders_by_the_backend_rule(experiment, tmp_path, monkeypatch):
    # no title column: items are shown as "item <id>" (counted), so the even rule applies
    features = experiment.data.item_features.drop(columns="title")
    monkeypatch.setattr(experiment.data, "item_features", features)
    record, frame = run_stage(_node(tmp_path), experiment, default_manager())
    assert record["untitled_candidates"] > 0 and record["title_column"] == "title"
    # reference: the base top-10 sorted by the rule, stably
    titles, _, _ = item_titles(experiment.data)
    from recframe.rerank.candidates import top_candidates

    eval_set = experiment.datamodule.eval_set("test")
    cands = top_candidates(experiment.model, eval_set, np.arange(len(eval_set)), 10, 64)
    items, valid = cands.items.numpy(), cands.valid.numpy()
    want = items.copy()
    for row, v in zip(want, valid.sum(axis=1), strict=True):  # only unseen items move
        row[:v] = row[:v][np.argsort([-rule_score("even", str(titles[i])) for i in row[:v]],
                                     kind="stable")]
    even_share = np.mean([int(str(t).split()[-1]) % 2 == 0 for t in titles[want[:, :5]].ravel()])
    assert even_share > np.mean([int(str(t).split()[-1]) % 2 == 0
                                 for t in titles[items[:, :5]].ravel()])
    from recframe.rerank.candidates import list_metrics as lm

    ref, _ = lm(experiment.plan.evaluator, torch.from_numpy(want), cands.valid,
                cands.truth_rows, cands.truth_cols, experiment.data.info.n_items)
    got = frame[frame.arm == "reranked"].sort_values("user")
    np.testing.assert_allclose(got["ndcg@10"].to_numpy(), ref["ndcg@10"].numpy(), atol=1e-6)


def test_rerun_is_served_from_the_cache(experiment, tmp_path):
    node = _node(tmp_path, mode="listwise", bootstrap=2, max_users=9)
    first, frame1 = run_stage(node, experiment, default_manager())
    again, frame2 = run_stage(node, experiment, default_manager())
    assert first["prompts"] == 18 and first["prompts_sent"] == 18 - first["cache_hits"]
    assert again["prompts_sent"] == 0 and again["cache_hits"] == again["prompts"] == 18
    assert again["tokens_in"] == 0
    pd.testing.assert_frame_equal(frame1, frame2)


def test_max_users_subsample_is_recorded_and_deterministic(experiment, tmp_path):
    record, frame = run_stage(_node(tmp_path, max_users=7), experiment, default_manager())
    again, frame2 = run_stage(_node(tmp_path, max_users=7), experiment, default_manager())
    assert record["users"] == 7 and record["eligible_users"] > 7
    assert frame.groupby("arm").size().tolist() == [7, 7]
    assert frame["user"].tolist() == frame2["user"].tolist()


@pytest.mark.parametrize("output, status", [("garbage", "unparsable"), ("partial", "partial"),
                                            ("duplicates", "full")])
def test_listwise_outputs_are_counted(experiment, tmp_path, output, status):
    node = _node(tmp_path, mode="listwise", bootstrap=2, max_users=6, fake_output=output,
                 cache=False)
    record, frame = run_stage(node, experiment, default_manager())
    assert record["parsed"][status] == record["prompts"] == 12
    if output == "garbage":  # every answer unparsable: the base order, and counted
        assert record["unparsable"] == 12 and record["users_fallback_to_base"] == 6
        base, reranked = (frame[frame.arm == a].set_index("user") for a in ("base", "reranked"))
        np.testing.assert_allclose(reranked["ndcg@10"], base["ndcg@10"])
    else:
        assert record["users_fallback_to_base"] == 0


def test_listwise_bootstrap_shows_shuffled_orders(experiment, tmp_path):
    from recframe_llm.fake import FakeBackend

    prompts = []
    original = FakeBackend.generate

    def spy(self, system, prompt, max_new_tokens):
        prompts.append(prompt)
        return original(self, system, prompt, max_new_tokens)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(FakeBackend, "generate", spy)
        record, _ = run_stage(_node(tmp_path, mode="listwise", bootstrap=3, max_users=2,
                                    cache=False), experiment, default_manager())
    assert len(prompts) == 6 and record["shuffled"] is True
    assert len(set(prompts[:3])) == 3  # one user's three presentations differ


def test_history_longer_than_the_context_is_truncated_and_counted(experiment, tmp_path):
    record, _ = run_stage(_node(tmp_path, history_items=50, context_length=160,
                                cache=False, max_users=5), experiment, default_manager())
    assert record["history_truncated_users"] > 0 and record["history_dropped_items"] > 0
    with pytest.raises(ConfigError, match="even without any history"):
        run_stage(_node(tmp_path, context_length=20, cache=False, max_users=2),
                  experiment, default_manager())


def test_bad_settings_name_the_key(experiment, tmp_path):
    pm = default_manager()
    with pytest.raises(UnknownNameError, match="rerank.backend"):
        run_stage(_node(tmp_path, backend="nope"), experiment, pm)
    with pytest.raises(ConfigError, match="rerank.top_n"):
        run_stage(_node(tmp_path, top_n=1), experiment, pm)
    with pytest.raises(ConfigError, match="unknown key 'topn'"):
        run_stage(_node(tmp_path, topn=5), experiment, pm)
    with pytest.raises(ConfigError, match="rerank.mode"):
        run_stage(_node(tmp_path, mode="pairwise"), experiment, pm)


def test_run_records_the_stage(compose, tmp_path):
    from recframe.runner import run_experiment

    cfg = compose("model=pop", "rerank=llm", "rerank.backend=fake", "rerank.max_users=20",
                  f"rerank.cache_dir={tmp_path / 'cache'}", "rerank.top_n=10")
    results = run_experiment(cfg, tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["status"] == "ok" and saved["rerank"]["users"] == 20
    assert saved["protocol"]["rerank"]["max_users"] == 20
    assert "20 test users" in saved["protocol"]["rerank"]["subsample"]
    assert set(saved["rerank"]["metrics"]) == {"base", "reranked"}
    assert results["timings"]["rerank"] >= 0
    arms = pd.read_parquet(tmp_path / "run" / RERANK_FILE)
    assert arms.groupby("arm").size().to_dict() == {"base": 20, "reranked": 20}
    assert saved["rerank"]["metrics"]["base"]["ndcg@10"] == pytest.approx(
        arms[arms.arm == "base"]["ndcg@10"].mean())


def test_unknown_backend_fails_before_training(compose, tmp_path):
    from recframe.runner import run_experiment

    cfg = compose("model=pop", "rerank=llm", "rerank.backend=nonexistent")
    with pytest.raises(UnknownNameError, match="rerank.backend"):
        run_experiment(cfg, tmp_path)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["status"] == "failed" and "fit" not in saved.get("timings", {})


def test_report_compares_base_and_reranked(compose, tmp_path):
    from recframe.report import build_report
    from recframe.runner import run_experiment

    cfg = compose("model=pop", "rerank=llm", "rerank.backend=fake", "rerank.max_users=30",
                  "rerank.cache=false", "rerank.top_n=10")
    run_experiment(cfg, tmp_path / "runs" / "a")
    report = build_report(tmp_path / "runs", out_dir=tmp_path / "report", plots=False)
    md = (report.out_dir / "report.md").read_text()
    section = md[md.index("# Re-ranking stages"):]
    assert "fake (fake-even-ranking), pointwise" in section and "30 users" in section
    arms = pd.read_parquet(tmp_path / "runs" / "a" / RERANK_FILE)
    base = arms[arms.arm == "base"]["ndcg@10"].mean()
    reranked = arms[arms.arm == "reranked"]["ndcg@10"].mean()
    assert f"| ndcg@10 | {base:.4f} | {reranked:.4f} | {reranked - base:+.4f}" in section


def test_docs_backend_example_runs(experiment, tmp_path):
    """The backend plugin example of docs/llm_rerank.md registers and re-ranks."""
    import re
    import types
    from pathlib import Path

    from recframe.plugin import PluginManager

    text = (Path(__file__).resolve().parents[1] / "docs" / "llm_rerank.md").read_text()
    section = text[text.index("## Writing a backend plugin"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    module = types.ModuleType("docs_echo_backend")
    exec(compile(code, "docs/llm_rerank.md", "exec"), module.__dict__)
    pm = PluginManager([module])
    assert pm.llm_backends.plugin_of("echo") == "docs_echo_backend"
    record, frame = run_stage(_node(tmp_path, backend="echo", mode="listwise", bootstrap=1,
                                    shuffle=False, max_users=5, cache=False),
                              experiment, pm)
    assert record["parsed"]["full"] == 5 and record["model"] == "echo-1"


def test_missing_extra_fails_before_training(compose, tmp_path, monkeypatch):
    import importlib.util

    from recframe.runner import run_experiment

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "transformers" else real(name, *a))
    cfg = compose("model=pop", "rerank=llm", "rerank.backend=smollm2")
    with pytest.raises(ConfigError, match=r"pip install 'recframe\[llm\]'"):
        run_experiment(cfg, tmp_path)
    assert "fit" not in json.loads((tmp_path / "results.json").read_text()).get("timings", {})


def test_truncation_counts_each_user_once(experiment, tmp_path):
    record, _ = run_stage(_node(tmp_path, mode="listwise", bootstrap=3, history_items=50,
                                context_length=200, max_new_tokens=10, cache=False,
                                max_users=4),
                          experiment, default_manager())
    assert 0 < record["history_truncated_users"] <= 4
    assert record["history_dropped_items"] >= record["history_truncated_users"]


def test_a_context_too_small_for_any_prompt_fails_before_training(compose, tmp_path):
    from recframe.runner import run_experiment

    cfg = compose("model=pop", "rerank=llm", "rerank.backend=fake", "rerank.context_length=20",
                  "rerank.cache=false", "rerank.top_n=10")
    with pytest.raises(ConfigError, match="even without any history"):
        run_experiment(cfg, tmp_path)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["status"] == "failed" and "fit" not in saved.get("timings", {})
    # a context that fits the ten longest titles without history passes the check
    ok = compose("model=pop", "rerank=llm", "rerank.backend=fake", "rerank.context_length=4096",
                 "rerank.cache=false", "rerank.top_n=10", "rerank.max_users=3")
    assert run_experiment(ok, tmp_path / "ok")["status"] == "ok"

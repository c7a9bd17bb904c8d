"""The cold-start protocol: cold_items/cold_users splits, cold/warm views, n/a handling."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from recframe.api import ConfigError, DataError, Dataset, RecModel
from recframe.data.encode import encode
from recframe.eval.cold import ColdStart
from recframe.eval.evaluator import Evaluator
from recframe_splitters.cold import build_cold

TINY = ["dataset.n_users=120", "dataset.n_items=80", "trainer.max_epochs=2",
        "metrics.names=[ndcg,recall,coverage]", "metrics.ks=[5,10]"]


def toy(n_users: int = 150, n_items: int = 90, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    n = 4000
    df = pd.DataFrame({"user_id": rng.integers(0, n_users, n),
                       "item_id": rng.integers(0, n_items, n) * 7 + 3})
    df = df.drop_duplicates().reset_index(drop=True)
    df.index = df.index * 2 + 5  # non-contiguous labels
    items = pd.DataFrame({"item_id": np.arange(n_items) * 7 + 3,
                          "genre": rng.integers(0, 4, n_items).astype(float)})
    return Dataset(df, items=items.set_index("item_id"), name="toy")


def split_of(kind: str, ds: Dataset, **kw):
    return build_cold(kind)(OmegaConf.create({"name": f"cold_{kind}", **kw}))(ds)


# -- the splits -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["items", "users"])
def test_cold_split_properties(kind):
    ds = toy()
    column = "item_id" if kind == "items" else "user_id"
    split = split_of(kind, ds, cold_share=0.2, seed=3)
    parts = [split.train.interactions, split.valid.interactions, split.test.interactions]
    # every interaction lands in exactly one part, unchanged
    index = np.concatenate([p.index.to_numpy() for p in parts])
    assert len(index) == len(ds.interactions) and len(set(index)) == len(index)
    for p in parts:
        pd.testing.assert_frame_equal(p, ds.interactions.loc[p.index])
    train, valid, test = (set(p[column]) for p in parts)
    everyone = set(ds.interactions[column])
    cold = everyone - train
    n = len(everyone)
    assert len(cold) == int(np.floor(n * 0.2 + 0.5))  # round(n * share), halves up
    cold_valid, cold_test = cold & valid, cold & test
    assert not cold_valid & cold_test  # each cold entity wholly in one held-out part
    assert cold_valid | cold_test == cold
    assert abs(len(cold_valid) - len(cold_test)) <= 1  # halves (0.1 : 0.1)
    assert split.cold_start == kind
    # the warm part is split per user like split=random: every warm user keeps train rows
    warm = ds.interactions[~ds.interactions[column].isin(cold)]
    assert set(warm["user_id"]) <= set(parts[0]["user_id"])
    assert len(parts[0]) == pytest.approx(0.8 * len(warm), rel=0.05)


def test_cold_split_is_seeded():
    ds = toy()
    a, b = split_of("items", ds, seed=1), split_of("items", ds, seed=1)
    c = split_of("items", ds, seed=2)
    same = [sorted(p.interactions.index) for p in (a.train, a.valid, a.test)]
    assert same == [sorted(p.interactions.index) for p in (b.train, b.valid, b.test)]
    assert same != [sorted(p.interactions.index) for p in (c.train, c.valid, c.test)]


@pytest.mark.parametrize("share, error, match", [
    (0.0, ConfigError, "strictly between 0 and 1"),
    (1.0, ConfigError, "strictly between 0 and 1"),
    (True, ConfigError, "strictly between 0 and 1"),
    ("a", ConfigError, "split.cold_share"),
    (0.999, DataError, "makes every one cold"),
    (0.001, DataError, "leaving none for test"),
])
def test_bad_cold_share(share, error, match):
    with pytest.raises(error, match=match):
        split_of("items", toy(), cold_share=share)


def test_encode_keeps_cold_items_and_cold_users():
    ds = toy()
    data = encode(split_of("items", ds, seed=0))
    cold = data.item_popularity() == 0
    assert cold.any() and data.info.cold_start == "items"
    assert data.info.n_items == ds.interactions["item_id"].nunique()
    # cold items keep their features
    genres = ds.items["genre"].reindex(data.item_ids).to_numpy()
    np.testing.assert_array_equal(data.item_features["genre"].to_numpy(), genres)
    users = encode(split_of("users", ds, seed=0))
    assert users.info.n_users == ds.interactions["user_id"].nunique()
    assert (users.info.train_history_lengths == 0).sum() == round(0.2 * users.info.n_users)
    assert len(users.events["test"].users) + len(users.events["valid"].users) + len(
        users.events["train"].users) == len(ds.interactions)


# -- the evaluator's views against a brute-force reference ----------------------------


def brute_ndcg_recall(scores, seen, truth, k):
    """Per user: NDCG@k and recall@k from a full sort (seen items excluded)."""
    out = []
    for s, se, tr in zip(scores, seen, truth, strict=True):
        s = s.astype(np.float64).copy()
        s[list(se)] = -np.inf
        order = sorted(range(len(s)), key=lambda i: (-s[i], i))[:k]
        hits = [1.0 if i in tr else 0.0 for i in order]
        dcg = sum(h / np.log2(r + 2) for r, h in enumerate(hits))
        idcg = sum(1 / np.log2(r + 2) for r in range(min(len(tr), k)))
        out.append((dcg / idcg, sum(hits) / min(len(tr), k) if tr else np.nan))
    return np.array(out)


@pytest.mark.parametrize("ranking", ["all", "own"])
def test_views_match_brute_force(ranking):
    from recframe.plugin.manager import default_manager

    pm = default_manager()
    ev = Evaluator({n: pm.metrics.get(n) for n in ("ndcg", "recall")}, [5])
    rng = np.random.default_rng(0)
    n_users, n_items = 12, 30
    cold_items = rng.random(n_items) < 0.3
    scores = rng.random((n_users, n_items)).astype(np.float32)
    seen = [set(rng.choice(n_items, 4, replace=False)) for _ in range(n_users)]
    truth = [set(rng.choice([i for i in range(n_items) if i not in se], 5, replace=False))
             for se in seen]
    batch = {
        "users": torch.arange(n_users),
        "seen_rows": torch.tensor([u for u in range(n_users) for _ in seen[u]]),
        "seen_cols": torch.tensor([i for u in range(n_users) for i in sorted(seen[u])]),
        "truth_rows": torch.tensor([u for u in range(n_users) for _ in truth[u]]),
        "truth_cols": torch.tensor([i for u in range(n_users) for i in sorted(truth[u])]),
    }
    cold = ColdStart("items", torch.from_numpy(cold_items), True, "m", ranking)
    for view in ("cold", "warm"):
        vb, has = cold.view(batch, view)
        got = ev.evaluate_batch(torch.from_numpy(scores.copy()), vb)
        mine = [{i for i in t if cold_items[i] == (view == "cold")} for t in truth]
        other = [{i for i in t if cold_items[i] != (view == "cold")} for t in truth]
        out_of_view = (set(np.flatnonzero(~cold_items if view == "cold" else cold_items))
                       if ranking == "own" else set())
        masked = [se | o | out_of_view for se, o in zip(seen, other, strict=True)]
        ref = brute_ndcg_recall(scores, masked, mine, 5)
        keep = np.array([bool(m) for m in mine])
        np.testing.assert_array_equal(has.numpy(), keep)
        np.testing.assert_allclose(got["ndcg@5"].numpy()[keep], ref[keep, 0], rtol=1e-5)
        np.testing.assert_allclose(got["recall@5"].numpy()[keep], ref[keep, 1], rtol=1e-5)


def test_user_views_split_by_user():
    batch = {"users": torch.tensor([4, 7]), "truth_rows": torch.tensor([0, 0, 1]),
             "truth_cols": torch.tensor([1, 2, 3]), "seen_rows": torch.tensor([1]),
             "seen_cols": torch.tensor([0])}
    cold = ColdStart("users", torch.tensor([False] * 7 + [True]), True)
    vb, has = cold.view(batch, "cold")
    assert has.tolist() == [False, True]
    assert vb["truth_cols"].tolist() == [3]
    vb, has = cold.view(batch, "warm")
    assert has.tolist() == [True, False] and vb["truth_cols"].tolist() == [1, 2]


# -- capabilities ---------------------------------------------------------------------


def test_capability_defaults_and_built_ins():
    from recframe_cf.pop import Pop
    from recframe_content.content import ContentBased

    assert RecModel.scores_cold_items is False and RecModel.scores_cold_users is False
    assert Pop.scores_cold_users and not Pop.scores_cold_items
    assert ContentBased.scores_cold_items and not ContentBased.scores_cold_users


# -- end to end on tiny synthetic data ------------------------------------------------


@pytest.fixture(scope="module")
def cold_runs(tmp_path_factory, one_thread):
    """pop (ID-only for cold items) and lightfm_style (item features) under cold_items."""
    from recframe.hydra_app import compose_config
    from recframe.runner import run_experiment
    from tests.conftest import FAST

    root = tmp_path_factory.mktemp("cold")
    out = {}
    for model in ("pop", "lightfm_style"):
        run_dir = root / model
        out[model] = (run_experiment(compose_config(
            [*FAST, *TINY, f"model={model}", "split=cold_items"]), run_dir), run_dir)
    return root, out


def test_id_only_model_gets_warm_metrics_and_na(cold_runs):
    _, runs = cold_runs
    results, run_dir = runs["pop"]
    test = results["metrics"]["test"]
    assert test["cold/ndcg@10"] is None and test["ndcg@10"] is None
    assert test["coverage@10"] is None  # overall global metrics: n/a too
    assert 0 < test["warm/ndcg@10"] <= 1
    assert "cannot score cold items" in results["not_applicable"]["reason"]
    assert "cold/ndcg@10" in results["not_applicable"]["metrics"]
    assert results["protocol"]["monitor"] == "val/warm/ndcg@10"
    on_disk = json.loads((run_dir / "results.json").read_text())
    assert on_disk["metrics"]["test"]["cold/ndcg@10"] is None
    frame = pd.read_parquet(run_dir / "per_user.parquet")
    assert "warm/ndcg@10" in frame and not any(c.startswith("cold/") for c in frame)
    assert "ndcg@10" not in frame


def test_feature_model_gets_cold_warm_and_overall(cold_runs):
    _, runs = cold_runs
    results, run_dir = runs["lightfm_style"]
    test = results["metrics"]["test"]
    assert all(isinstance(test[k], float) for k in ("ndcg@10", "cold/ndcg@10",
                                                    "warm/ndcg@10", "coverage@10"))
    assert "not_applicable" not in results
    record = results["protocol"]["cold_start"]
    assert record["kind"] == "items" and record["test_cold_targets"] > 0
    frame = pd.read_parquet(run_dir / "per_user.parquet")
    # per-user views: cold values only for users with a cold target, means as reported
    assert frame["cold/ndcg@10"].isna().sum() == len(frame) - record[
        "test_users_with_cold_targets"]
    for key in ("ndcg@10", "cold/ndcg@10", "warm/ndcg@10"):
        assert frame[key].mean() == pytest.approx(test[key], rel=1e-5)


def test_the_log_says_na_once(compose, tmp_path, caplog):
    from recframe.runner import run_experiment

    with caplog.at_level(logging.WARNING):
        run_experiment(compose(*TINY, "model=pop", "split=cold_items",
                               "trainer.max_epochs=1"), tmp_path)
    said = [r for r in caplog.records if "cannot score cold items" in r.getMessage()]
    assert len(said) == 1


def test_report_shows_na_not_zero(cold_runs):
    from recframe.report import build_report

    root, _ = cold_runs
    report = build_report(root, plots=False)
    md = (report.out_dir / "report.md").read_text()
    assert "n/a: not applicable" in md
    table = report.table
    pop_cold = table[(table["model"] == "pop") & (table["metric"] == "cold/ndcg@10")].iloc[0]
    assert pop_cold["not_applicable"] and pop_cold["n_seeds"] == 0
    assert pop_cold["vs_best_n_users"] == 0  # no paired test on an n/a cell
    assert not pop_cold["best"]
    warm = table[(table["metric"] == "warm/ndcg@10")]
    assert not warm["not_applicable"].any() and (warm["n_seeds"] == 1).all()
    # the cold/ndcg table lists pop as n/a
    section = md[md.index("### cold/ndcg"):]
    pop_row = next(line for line in section.splitlines() if line.startswith("| pop"))
    assert "n/a" in pop_row and "0.0000" not in pop_row


def test_monitor_of_a_view_needs_a_cold_split(compose, tmp_path):
    from recframe.runner import run_experiment

    with pytest.raises(ConfigError, match="exists only under a cold-start split"):
        run_experiment(compose(*TINY, "model=pop", "metrics.monitor=warm/ndcg@10"), tmp_path)


def test_feature_bag_drops_ids_of_cold_entities():
    from recframe.api import FeatureSpec
    from recframe_hybrid._features import FeatureBag

    specs = (FeatureSpec("g", "numeric"),)
    bag = FeatureBag(4, specs, 3, 0.1, normalize=True)
    frame = pd.DataFrame({"g": [1.0, 0.0, 1.0, 0.0]})
    bag.load(frame, torch.device("cpu"))
    assert bag.has_features_declared
    before = bag.all().detach().clone()
    bag.drop_ids(np.array([False, False, True, True]))
    after = bag.all().detach()
    torch.testing.assert_close(after[:2], before[:2])  # warm: unchanged
    torch.testing.assert_close(after[2], bag.numeric_emb[0].detach())  # features alone
    torch.testing.assert_close(after[3], torch.zeros(3))  # nothing known: 0, not NaN
    assert not FeatureBag(4, (), 3, 0.1, normalize=True).has_features_declared


def test_cold_users_pop_scores_them_bpr_does_not(compose, tmp_path):
    from recframe.runner import run_experiment

    pop = run_experiment(compose(*TINY, "model=pop", "split=cold_users"), tmp_path / "pop")
    test = pop["metrics"]["test"]
    assert isinstance(test["cold/ndcg@10"], float) and isinstance(test["ndcg@10"], float)
    record = pop["protocol"]["cold_start"]
    assert record["kind"] == "users" and record["test_users_with_cold_targets"] > 0
    assert record["n_cold_users"] == round(0.2 * 120)
    bpr = run_experiment(compose(*TINY, "model=bpr", "split=cold_users",
                                 "trainer.max_epochs=1"), tmp_path / "bpr")
    assert bpr["metrics"]["test"]["cold/ndcg@10"] is None
    assert "cannot score cold users" in bpr["not_applicable"]["reason"]


def test_bad_cold_ranking_names_the_key(compose, tmp_path):
    from recframe.runner import run_experiment

    with pytest.raises(ConfigError, match="evaluation.cold_ranking must be one of"):
        run_experiment(compose(*TINY, "model=pop", "split=cold_items",
                               "evaluation.cold_ranking=cold"), tmp_path)

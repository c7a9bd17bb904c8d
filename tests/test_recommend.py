"""`recframe recommend`: top-K from a run's best checkpoint, for known and new users."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import torch
from rich.console import Console

from recframe.api import FoldInNotSupported, RecModel, least_squares_fold_in
from recframe.errors import ConfigError
from recframe.recommend import load_run, recommend_command, recommend_history, recommend_users
from recframe.runner import run_experiment


@pytest.fixture(scope="module")
def bpr_run(tmp_path_factory):
    from recframe.hydra_app import compose_config
    from tests.conftest import FAST

    run_dir = tmp_path_factory.mktemp("bpr")
    run_experiment(compose_config([*FAST, "model=bpr", "optim.lr=0.01", "trainer.max_epochs=4"]),
                   run_dir)
    return run_dir


def test_known_users_get_unseen_items_ranked_by_score(bpr_run):
    rec = load_run(bpr_run)
    frame = recommend_users(rec, np.array([0, 5]), k=7)
    assert len(frame) == 14 and frame["rank"].tolist()[:7] == list(range(1, 8))
    for uid, rows in frame.groupby("user_id"):
        user = rec.data.user_ids.get_loc(type(rec.data.user_ids[0])(uid))
        seen = set(rec.data.item_ids[rec.history[user].indices].astype(str))
        assert not seen & set(rows["item_id"])
        assert rows["score"].is_monotonic_decreasing


def test_recommendations_match_the_checkpointed_model(bpr_run):
    rec = load_run(bpr_run)
    frame = recommend_users(rec, np.array([3]), k=5)
    scores = rec.exp.model.score(torch.tensor([3]), {})[0]
    scores[torch.from_numpy(rec.history[3].indices.astype(np.int64))] = -torch.inf
    expected = rec.data.item_ids[torch.topk(scores, 5).indices.numpy()].astype(str).tolist()
    assert frame["item_id"].tolist() == expected


def test_all_users_to_parquet(bpr_run, tmp_path):
    out = tmp_path / "recs.parquet"
    assert recommend_command([str(bpr_run), "--all", "--out", str(out), "-k", "3"],
                             Console(file=io.StringIO())) == 0
    frame = pd.read_parquet(out)
    rec = load_run(bpr_run)
    assert frame["user_id"].nunique() == rec.data.info.n_users and len(frame) == 3 * \
        rec.data.info.n_users


def test_new_user_by_least_squares_fold_in(bpr_run):
    rec = load_run(bpr_run)
    history = [str(i) for i in rec.data.item_ids[:3]]
    frame = recommend_history(rec, history, k=5)
    assert len(frame) == 5 and not set(history) & set(frame["item_id"])


def test_least_squares_fold_in_recovers_a_user_vector():
    torch.manual_seed(0)
    p = torch.randn(4, dtype=torch.float64)
    q = torch.randn(50, 4, dtype=torch.float64)
    q = q / (q @ p).unsqueeze(1)  # every item scores exactly 1 under p
    history = torch.zeros(1, 60)
    history[0, :50] = 1
    factors = torch.cat([q, torch.randn(10, 4, dtype=torch.float64)])  # unseen items ignored
    recovered = least_squares_fold_in(factors, history, reg=1e-9)[0].double()
    assert torch.allclose(recovered, p, atol=1e-3)


def test_models_without_fold_in_say_so():
    with pytest.raises(FoldInNotSupported, match="cannot recommend for a new user"):
        RecModel().score_new_users({"users": torch.tensor([-1])})


def test_unknown_ids_and_bad_k_are_clear_errors(bpr_run):
    with pytest.raises(ConfigError, match="unknown user id 'nobody'"):
        recommend_command([str(bpr_run), "--users", "nobody"])
    with pytest.raises(ConfigError, match="-k"):
        recommend_command([str(bpr_run), "--users", "1", "-k", "0"])
    with pytest.raises(ConfigError, match="not a run dir"):
        recommend_command([str(bpr_run.parent), "--users", "1"])


@pytest.mark.parametrize("model", ["ease", "itemknn", "ials"])
def test_fold_in_models_recommend_for_new_users(model, compose, tmp_path):
    run_experiment(compose(f"model={model}"), tmp_path)
    rec = load_run(tmp_path)
    items = [str(i) for i in rec.data.item_ids[[0, 3, 5]]]
    frame = recommend_history(rec, items, k=5)
    assert len(frame) == 5 and np.isfinite(frame["score"]).all()
    assert not set(items) & set(frame["item_id"])


def test_ials_fold_in_matches_its_own_user_step(compose, tmp_path):
    """Folding in a training user's own history reproduces (nearly) its fitted vector."""
    run_experiment(compose("model=ials"), tmp_path)
    rec = load_run(tmp_path)
    user = 4
    items = rec.data.train[user].indices
    context = {"users": torch.tensor([-1]), "seen_rows": torch.zeros(len(items), dtype=torch.long),
               "seen_cols": torch.from_numpy(items.astype(np.int64))}
    folded = rec.exp.model.score_new_users(context)[0]
    fitted = rec.exp.model.score(torch.tensor([user]), {})[0]
    assert torch.corrcoef(torch.stack([folded, fitted]))[0, 1] > 0.99


def test_sequence_model_recommends_for_a_new_user(compose, tmp_path):
    run_experiment(compose("model=sasrec", "split=leave_one_out", "model.max_seq_len=10",
                           "trainer.max_epochs=1"), tmp_path)
    rec = load_run(tmp_path)
    items = [str(i) for i in rec.data.item_ids[[2, 4, 6]]]
    frame = recommend_history(rec, items, k=5)
    assert len(frame) == 5 and not set(items) & set(frame["item_id"])

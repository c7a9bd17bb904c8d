"""Sampled-candidate evaluation: labelled, warned about, batch-size independent."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recframe.errors import ConfigError
from recframe.eval.candidates import CandidateSampler
from recframe.eval.protocol import candidate_policy
from recframe.runner import run_experiment
from recframe.train.batches import EvalUsers


def _matrices(seed=0, n_users=40, n_items=30):
    rng = np.random.default_rng(seed)
    truth = sp.random(n_users, n_items, density=0.1, random_state=rng, format="csr")
    seen = sp.random(n_users, n_items, density=0.3, random_state=rng, format="csr")
    seen = seen - seen.multiply(truth.astype(bool))
    truth.data[:] = 1
    seen.data[:] = 1
    seen.eliminate_zeros()
    return truth.tocsr(), seen.tocsr()


def test_negatives_avoid_seen_and_truth_and_have_the_right_count():
    truth, seen = _matrices()
    sampler = CandidateSampler(30, 5, seed=1)
    users = np.arange(40)
    rows, cols = sampler.sample(users, truth, seen)
    excluded = (truth + seen).toarray() > 0
    assert not excluded[users[rows], cols].any()
    per_user = np.bincount(rows, minlength=40)
    expected = np.diff(truth.indptr) * 5
    assert (per_user <= expected).all() and per_user.sum() >= 0.95 * expected.sum()


def test_negatives_depend_only_on_user_not_batch():
    truth, seen = _matrices(seed=2)
    sampler = CandidateSampler(30, 4, seed=7)
    rows_all, cols_all = sampler.sample(np.arange(40), truth, seen)
    rows_b, cols_b = sampler.sample(np.arange(20, 40), truth, seen)
    mine = cols_all[rows_all >= 20]
    assert np.array_equal(np.sort(mine), np.sort(cols_b))


def test_popularity_sampling_prefers_popular_items():
    truth = sp.csr_matrix(np.ones((200, 1)) @ np.eye(1, 50))  # everyone holds out item 0
    seen = sp.csr_matrix((200, 50))
    pop = np.arange(50, dtype=float)
    rows, cols = CandidateSampler(50, 20, seed=0, popularity=pop).sample(
        np.arange(200), truth, seen)
    assert np.corrcoef(np.bincount(cols, minlength=50)[1:], pop[1:])[0, 1] > 0.9


def test_eval_batches_carry_candidates():
    truth, seen = _matrices()
    batch = EvalUsers(truth, seen, candidates=CandidateSampler(30, 3, 0)).__getitems__(
        list(range(16)))
    assert {"candidate_rows", "candidate_cols"} <= set(batch)
    assert batch["candidate_rows"].dtype == torch.int64


def test_policy_validation():
    assert candidate_policy({"candidates": "full"}) == {"policy": "full"}
    with pytest.raises(ConfigError, match="evaluation.candidates"):
        candidate_policy({"candidates": "some"})
    with pytest.raises(ConfigError, match="evaluation.num_negatives"):
        candidate_policy({"candidates": "sampled", "num_negatives": 0})
    with pytest.raises(ConfigError, match="evaluation.sampling"):
        candidate_policy({"candidates": "sampled", "sampling": "zipf"})


def test_sampled_run_is_labelled_warned_and_batch_independent(compose, tmp_path):
    runs = []
    for bs in (16, 512):
        cfg = compose("model=bpr", "trainer.max_epochs=2", "evaluation=sampled",
                      "evaluation.num_negatives=20", f"evaluation.batch_size={bs}")
        with pytest.warns(UserWarning, match="Krichene"):
            runs.append(run_experiment(cfg, tmp_path / str(bs)))
    assert runs[0]["protocol"]["candidates"]["policy"] == "sampled"
    assert runs[0]["metrics"]["test"] == pytest.approx(runs[1]["metrics"]["test"], abs=1e-7)
    full = run_experiment(compose("model=bpr", "trainer.max_epochs=2"), tmp_path / "full")
    # ranking against 20 negatives per item is far easier than against the catalogue
    assert runs[0]["metrics"]["test"]["hit@10"] > full["metrics"]["test"]["hit@10"]

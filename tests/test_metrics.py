"""The built-in ranking metrics against a brute-force reference and hand-worked numbers.

The reference is plain Python: for each user it ranks the whole catalogue
(seen items removed), takes the top k and counts relevant items rank by rank.
The metric functions are fed through :class:`recframe.eval.Evaluator`, so the
test also covers masking, the single top-k and the hit matrix.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

import recframe_metrics.plugin
from recframe.api import MetricInput
from recframe.eval import Evaluator
from recframe.plugin import PluginManager
from recframe_metrics import ranking

NAMES = ["recall", "precision", "ndcg", "mrr", "hit", "map"]
KS = [1, 5, 10, 20, 60]  # 60 > n_items
N_ITEMS = 50
N_USERS = 64
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def specs():
    pm = PluginManager([recframe_metrics.plugin], load_entry_points=False)
    return {name: pm.metrics.get(name) for name in NAMES}


# -- brute-force reference ------------------------------------------------------


def reference(name: str, ranking_: list[int], relevant: set[int], k: int) -> float:
    """One user's metric from the full ranking (best first), in plain Python."""
    top = ranking_[:k]
    rel = [1 if item in relevant else 0 for item in top]
    n_rel = len(relevant)
    if name == "recall":
        return sum(rel) / n_rel if n_rel else 0.0
    if name == "precision":
        return sum(rel) / k
    if name == "ndcg":
        dcg = sum(r / math.log2(i + 2) for i, r in enumerate(rel))
        idcg = sum(1 / math.log2(i + 2) for i in range(min(n_rel, k)))
        return dcg / idcg if idcg else 0.0
    if name == "mrr":
        for i, r in enumerate(rel):
            if r:
                return 1 / (i + 1)
        return 0.0
    if name == "hit":
        return 1.0 if any(rel) else 0.0
    if name == "map":
        found, total = 0, 0.0
        for i, r in enumerate(rel):
            if r:
                found += 1
                total += found / (i + 1)
        return total / min(n_rel, k) if n_rel else 0.0
    raise AssertionError(name)


def random_users(seed: int, n_users: int = N_USERS, n_items: int = N_ITEMS):
    """Distinct scores per user, relevant sets of size 0..15, disjoint seen sets of 0..30."""
    g = torch.Generator().manual_seed(seed)
    scores = torch.stack([torch.randperm(n_items, generator=g) for _ in range(n_users)]).float()
    relevant: list[set[int]] = []
    seen: list[set[int]] = []
    for u in range(n_users):
        perm = torch.randperm(n_items, generator=g).tolist()
        n_rel = int(torch.randint(0, 16, (1,), generator=g))
        if u == 0:
            n_rel = 0  # always at least one user without relevant items
        elif u == 1:
            n_rel = 15  # and one with more relevant items than most cut-offs
        n_seen = int(torch.randint(0, 31, (1,), generator=g))
        relevant.append(set(perm[:n_rel]))
        seen.append(set(perm[n_rel : n_rel + n_seen]))
    return scores, relevant, seen


def coords(sets: list[set[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    rows = [u for u, s in enumerate(sets) for _ in s]
    cols = [i for s in sets for i in sorted(s)]
    return torch.tensor(rows, dtype=torch.long), torch.tensor(cols, dtype=torch.long)


def make_batch(relevant, seen) -> dict[str, torch.Tensor]:
    seen_rows, seen_cols = coords(seen)
    truth_rows, truth_cols = coords(relevant)
    return {
        "seen_rows": seen_rows,
        "seen_cols": seen_cols,
        "truth_rows": truth_rows,
        "truth_cols": truth_cols,
    }


def full_ranking(scores_row: torch.Tensor, seen: set[int]) -> list[int]:
    items = [i for i in range(scores_row.numel()) if i not in seen]
    return sorted(items, key=lambda i: -float(scores_row[i]))


# -- brute force ----------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_matches_brute_force_reference(specs, seed):
    scores, relevant, seen = random_users(seed)
    assert any(len(r) == 0 for r in relevant)
    assert any(0 < len(r) < 10 for r in relevant)  # fewer relevant items than some k
    out = Evaluator(specs, KS).evaluate_batch(scores, make_batch(relevant, seen))
    assert set(out) == {f"{n}@{k}" for n in NAMES for k in KS}
    for u in range(N_USERS):
        ranked = full_ranking(scores[u], seen[u])
        for name in NAMES:
            for k in KS:
                got = out[f"{name}@{k}"][u]
                want = reference(name, ranked, relevant[u], k)
                assert got.dtype == torch.float32
                assert abs(float(got) - want) <= 1e-6, (seed, u, name, k, float(got), want)


@pytest.mark.parametrize("seed", [0, 1])
def test_values_finite_in_unit_interval_and_zero_without_relevant(specs, seed):
    scores, relevant, seen = random_users(seed)
    out = Evaluator(specs, KS).evaluate_batch(scores, make_batch(relevant, seen))
    empty = torch.tensor([len(r) == 0 for r in relevant])
    for key, v in out.items():
        assert v.shape == (N_USERS,), key
        assert torch.isfinite(v).all(), key
        assert ((v >= 0) & (v <= 1 + 1e-6)).all(), key
        assert (v[empty] == 0).all(), key


@pytest.mark.parametrize("seed", [0, 1])
def test_ndcg_agrees_with_torchmetrics(specs, seed):
    """torchmetrics' retrieval nDCG as a second, independent reference.

    Per query, ``retrieval_normalized_dcg(preds, target, top_k=k)`` zeroes the
    discount past rank ``k`` (any ``k`` is allowed, also one larger than the
    list) and normalises by the DCG of the target sorted by relevance, i.e.
    over ``min(|R_u|, k)`` ideal hits: the same definition as ours. It
    averages over tied scores, so the scores here are distinct; seen items
    are left out of its input, as the evaluator masks them. Users without
    relevant items are skipped: torchmetrics gives them 0 too, but by its own
    convention (undefined score -> 0), not a definition to compare against.
    """
    from torchmetrics.functional.retrieval import retrieval_normalized_dcg

    scores, relevant, seen = random_users(100 + seed)
    out = Evaluator(specs, KS).evaluate_batch(scores, make_batch(relevant, seen))
    checked = 0
    for u in range(N_USERS):
        if not relevant[u]:
            continue
        unseen = [i for i in range(N_ITEMS) if i not in seen[u]]
        preds = scores[u, unseen]
        target = torch.tensor([i in relevant[u] for i in unseen])
        for k in KS:
            want = retrieval_normalized_dcg(preds, target, top_k=k)
            assert abs(float(out[f"ndcg@{k}"][u]) - float(want)) <= 1e-6, (u, k)
            checked += 1
    assert checked > 0


# -- hand-worked examples ---------------------------------------------------------

A, B, C, D, E = range(5)
LOG2_3 = math.log2(3)
LOG2_6 = math.log2(6)


def hand_eval(specs, relevant_per_user: list[set[int]], ks: list[int]) -> dict[str, list[float]]:
    """Five items ranked a > b > c > d > e for every user, nothing seen."""
    n = len(relevant_per_user)
    scores = torch.tensor([[5.0, 4.0, 3.0, 2.0, 1.0]]).repeat(n, 1)
    batch = make_batch(relevant_per_user, [set() for _ in range(n)])
    out = Evaluator(specs, ks).evaluate_batch(scores, batch)
    return {key: v.tolist() for key, v in out.items()}


def test_hand_worked_relevant_b_e(specs):
    # Ranking [a, b, c, d, e], relevant {b, e}: hits at ranks 2 and 5.
    out = hand_eval(specs, [{B, E}], [1, 3, 5])
    expected = {
        # k=1: top [a], no hit. map normaliser min(2, 1) = 1, sum is 0.
        "recall@1": 0.0, "precision@1": 0.0, "ndcg@1": 0.0, "mrr@1": 0.0,
        "hit@1": 0.0, "map@1": 0.0,
        # k=3: top [a, b, c], one hit (b at rank 2).
        "recall@3": 1 / 2,                          # 1 of 2 relevant found
        "precision@3": 1 / 3,                       # 1 hit in 3
        "ndcg@3": (1 / LOG2_3) / (1 + 1 / LOG2_3),  # DCG: rank 2; IDCG: 2 ideal hits
        "mrr@3": 1 / 2,                             # first hit at rank 2
        "hit@3": 1.0,
        "map@3": (1 / 2) / 2,                       # P@2 = 1/2; / min(2, 3)
        # k=5: all of [a, b, c, d, e], hits at ranks 2 and 5.
        "recall@5": 1.0,
        "precision@5": 2 / 5,
        "ndcg@5": (1 / LOG2_3 + 1 / LOG2_6) / (1 + 1 / LOG2_3),
        "mrr@5": 1 / 2,
        "hit@5": 1.0,
        "map@5": (1 / 2 + 2 / 5) / 2,               # (P@2 + P@5) / 2 = 0.45
    }
    for key, want in expected.items():
        assert out[key][0] == pytest.approx(want, abs=1e-7), key
    assert out["map@5"][0] == pytest.approx(0.45, abs=1e-7)
    assert out["ndcg@3"][0] == pytest.approx(0.3868528, abs=1e-6)


def test_hand_worked_more_relevant_than_k(specs):
    # Ranking [a, b, c, d, e], relevant {a, c, d} (3 > k = 2): top [a, b].
    out = hand_eval(specs, [{A, C, D}], [2, 4])
    expected = {
        "recall@2": 1 / 3,
        "precision@2": 1 / 2,
        "ndcg@2": 1 / (1 + 1 / LOG2_3),     # IDCG over min(3, 2) = 2 ideal hits
        "mrr@2": 1.0,                       # a at rank 1
        "hit@2": 1.0,
        "map@2": 1 / 2,                     # P@1 * 1 = 1; / min(3, 2) = 2
        # k=4: top [a, b, c, d], hits at 1, 3, 4.
        "recall@4": 1.0,
        "precision@4": 3 / 4,
        "ndcg@4": (1 + 1 / 2 + 1 / math.log2(5)) / (1 + 1 / LOG2_3 + 1 / 2),
        "mrr@4": 1.0,
        "hit@4": 1.0,
        "map@4": (1 + 2 / 3 + 3 / 4) / 3,   # (P@1 + P@3 + P@4) / min(3, 4)
    }
    for key, want in expected.items():
        assert out[key][0] == pytest.approx(want, abs=1e-7), key


def test_hand_worked_perfect_and_empty(specs):
    # User 0: relevant {a, b} ranked first -> every metric is 1 at k=2 except
    # precision at k=3 (2/3). User 1: no relevant items -> all 0, no NaN.
    out = hand_eval(specs, [{A, B}, set()], [2, 3])
    for name in NAMES:
        assert out[f"{name}@2"] == pytest.approx([1.0, 0.0], abs=1e-7), name
    assert out["precision@3"] == pytest.approx([2 / 3, 0.0], abs=1e-7)
    assert out["ndcg@3"] == pytest.approx([1.0, 0.0], abs=1e-7)
    assert out["map@3"] == pytest.approx([1.0, 0.0], abs=1e-7)


def test_k_larger_than_catalogue(specs):
    # Five items, k = 10 and 100: the evaluator's top-k holds all 5 items. The
    # ranking-based metrics equal their k=5 values (there is no rank 6..k);
    # precision keeps k in the denominator (RecBole's definition): 2 / 10.
    out = hand_eval(specs, [{B, E}, set()], [5, 10, 100])
    for name in ["recall", "ndcg", "mrr", "hit", "map"]:
        assert out[f"{name}@10"] == pytest.approx(out[f"{name}@5"], abs=1e-7), name
        assert out[f"{name}@100"] == pytest.approx(out[f"{name}@5"], abs=1e-7), name
    assert out["precision@10"] == pytest.approx([2 / 10, 0.0], abs=1e-7)
    assert out["precision@100"] == pytest.approx([2 / 100, 0.0], abs=1e-7)
    assert out["recall@10"] == pytest.approx([1.0, 0.0])
    # all relevant items ranked: nDCG/MAP are those of the full list, not of a
    # 10-long ideal list (IDCG uses min(|R|, k) = 2 hits).
    assert out["ndcg@10"][0] == pytest.approx((1 / LOG2_3 + 1 / LOG2_6) / (1 + 1 / LOG2_3))


# -- the functions directly -------------------------------------------------------


def test_functions_accept_kmax_smaller_than_k():
    # MetricInput built by hand with only 3 ranked columns; k = 5 reads them all.
    inp = MetricInput(
        topk=torch.tensor([[0, 1, 2], [2, 1, 0]]),
        hits=torch.tensor([[0.0, 1.0, 1.0], [0.0, 0.0, 0.0]]),
        n_relevant=torch.tensor([2.0, 0.0]),
        n_items=3,
    )
    assert ranking.recall(inp, 5).tolist() == [1.0, 0.0]
    assert ranking.precision(inp, 5).tolist() == pytest.approx([2 / 5, 0.0])
    assert ranking.mrr(inp, 5).tolist() == pytest.approx([1 / 2, 0.0])
    assert ranking.hit(inp, 5).tolist() == [1.0, 0.0]
    assert ranking.map_at_k(inp, 5).tolist() == pytest.approx([(1 / 2 + 2 / 3) / 2, 0.0])
    want_ndcg = (1 / LOG2_3 + 1 / 2) / (1 + 1 / LOG2_3)
    assert ranking.ndcg(inp, 5).tolist() == pytest.approx([want_ndcg, 0.0])


def test_functions_reject_nonpositive_k():
    inp = MetricInput(torch.zeros(1, 2, dtype=torch.long), torch.zeros(1, 2), torch.ones(1), 2)
    for fn in [ranking.recall, ranking.ndcg, ranking.map_at_k]:
        with pytest.raises(ValueError, match="positive"):
            fn(inp, 0)


# -- plugin and config --------------------------------------------------------------


def test_plugin_registers_all_metrics():
    pm = PluginManager([recframe_metrics.plugin], load_entry_points=False)
    assert set(NAMES) <= set(pm.metrics.names())
    for name in NAMES:
        spec = pm.metrics.get(name)
        assert spec.description
        assert spec.higher_is_better
        assert spec.fn.__doc__ and "math::" in spec.fn.__doc__
    assert "Järvelin" in ranking.ndcg.__doc__


def test_default_config_names_registered_metrics(specs):
    cfg = OmegaConf.load(ROOT / "conf" / "metrics" / "default.yaml")
    assert list(cfg.names) == NAMES
    ev = Evaluator({n: specs[n] for n in cfg.names}, list(cfg.ks))
    assert ev.check_key(cfg.monitor) == "ndcg@10"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_same_values_on_cuda(specs):
    scores, relevant, seen = random_users(7)
    batch = make_batch(relevant, seen)
    ev = Evaluator(specs, KS)
    cpu = ev.evaluate_batch(scores, batch)
    gpu = ev.evaluate_batch(scores.cuda(), {k: v.cuda() for k, v in batch.items()})
    for key, v in cpu.items():
        assert gpu[key].is_cuda, key
        torch.testing.assert_close(gpu[key].cpu(), v, rtol=0, atol=1e-6)

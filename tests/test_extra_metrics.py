"""Beyond-accuracy and score-based metrics against plain-Python references.

``coverage``, ``gini`` (global), ``novelty``, ``avg_popularity``, ``ild``,
``auc`` and ``logloss`` (per user) are fed through :class:`recframe.eval.Evaluator`
(masking, one top-k, item counts accumulated over batches) and compared with
brute-force loops over users and items, with hand-worked examples, and end to
end through ``run_experiment`` with the ``beyond_accuracy`` / ``with_ild`` configs.
"""

from __future__ import annotations

import math

import pytest
import torch

import recframe_metrics.plugin
from recframe.eval import Evaluator
from recframe.plugin import PluginManager
from recframe.runner import run_experiment

NAMES = ["coverage", "gini", "novelty", "avg_popularity", "ild", "auc", "logloss"]
KS = [1, 5, 10, 20]
N_ITEMS = 50
N_USERS = 64
N_FEATURES = 6


@pytest.fixture(scope="module")
def specs():
    pm = PluginManager([recframe_metrics.plugin], load_entry_points=False)
    return {name: pm.metrics.get(name) for name in NAMES}


# -- random data and batches ---------------------------------------------------------------


def random_problem(seed: int, tied: bool = False):
    """Scores (distinct unless ``tied``), disjoint relevant / seen sets (seen <= 30 of 50
    items, so every top-20 holds only unseen items), popularity and features."""
    g = torch.Generator().manual_seed(seed)
    if tied:
        scores = torch.randint(0, 6, (N_USERS, N_ITEMS), generator=g).double()
    else:
        scores = torch.stack([torch.randperm(N_ITEMS, generator=g)
                              for _ in range(N_USERS)]).double() / 7.0 - 3.0
    relevant: list[set[int]] = []
    seen: list[set[int]] = []
    for u in range(N_USERS):
        perm = torch.randperm(N_ITEMS, generator=g).tolist()
        n_rel = 0 if u == 0 else int(torch.randint(1, 16, (1,), generator=g))
        n_seen = int(torch.randint(0, 31, (1,), generator=g))
        relevant.append(set(perm[:n_rel]))
        seen.append(set(perm[n_rel : n_rel + n_seen]))
    # a popularity with zeros (cold items) and a heavy head
    popularity = torch.randint(0, 40, (N_ITEMS,), generator=g).double()
    popularity[:5] = 0
    popularity[5] = 500
    features = (torch.rand(N_ITEMS, N_FEATURES, generator=g) < 0.4).float()
    features[7] = 0  # one item without any feature
    return scores, relevant, seen, popularity, features


def coords(sets: list[set[int]], offset: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    rows = [u - offset for u, s in enumerate(sets, start=offset) for _ in s]
    cols = [i for s in sets for i in sorted(s)]
    return torch.tensor(rows, dtype=torch.long), torch.tensor(cols, dtype=torch.long)


def make_batch(relevant, seen) -> dict[str, torch.Tensor]:
    seen_rows, seen_cols = coords(seen)
    truth_rows, truth_cols = coords(relevant)
    return {"seen_rows": seen_rows, "seen_cols": seen_cols,
            "truth_rows": truth_rows, "truth_cols": truth_cols}


def evaluate(specs, names, scores, relevant, seen, popularity, features=None,
             ks=KS, batch_size: int | None = None):
    """Per-user values (concatenated over batches) and global values via the Evaluator."""
    ev = Evaluator({n: specs[n] for n in names}, ks)
    ev.set_item_features(features)
    counts: dict[int, torch.Tensor] = {}
    per_user: dict[str, list[torch.Tensor]] = {}
    step = batch_size or len(relevant)
    for start in range(0, len(relevant), step):
        stop = start + step
        out = ev.evaluate_batch(scores[start:stop], make_batch(relevant[start:stop],
                                                              seen[start:stop]),
                                popularity, counts)
        for key, v in out.items():
            per_user.setdefault(key, []).append(v)
    values = {k: torch.cat(v) for k, v in per_user.items()}
    values.update(ev.finalize_global(counts, len(relevant), popularity))
    return values


# -- brute-force references (plain Python) ----------------------------------------------


def ranked(scores_row: torch.Tensor, seen: set[int]) -> list[int]:
    items = [i for i in range(scores_row.numel()) if i not in seen]
    return sorted(items, key=lambda i: -float(scores_row[i]))


def ref_coverage(tops: list[list[int]], n_items: int) -> float:
    return len({i for top in tops for i in top}) / n_items


def ref_gini(tops: list[list[int]], n_items: int) -> float:
    """Mean absolute difference form: sum_ij |c_i - c_j| / (2 n sum c)."""
    counts = [0] * n_items
    for top in tops:
        for i in top:
            counts[i] += 1
    total = sum(counts)
    if total == 0:
        return 0.0
    diff = sum(abs(a - b) for a in counts for b in counts)
    return diff / (2 * n_items * total)


def ref_novelty(top: list[int], popularity: list[float]) -> float:
    total = sum(popularity) + len(popularity)
    return sum(-math.log2((popularity[i] + 1) / total) for i in top) / len(top)


def ref_avg_popularity(top: list[int], popularity: list[float]) -> float:
    return sum(popularity[i] for i in top) / len(top)


def ref_ild(top: list[int], features: list[list[float]]) -> float:
    def cos(a, b):
        na = math.sqrt(sum(x * x for x in a))
        nb = math.sqrt(sum(x * x for x in b))
        if na == 0 or nb == 0:
            return 0.0
        return sum(x * y for x, y in zip(a, b, strict=True)) / (na * nb)

    pairs = [(i, j) for i in top for j in top if i != j]
    if not pairs:
        return 0.0
    return sum(1 - cos(features[i], features[j]) for i, j in pairs) / len(pairs)


def ref_auc(scores_row: list[float], relevant: set[int], seen: set[int]) -> float:
    pos = [scores_row[i] for i in range(len(scores_row)) if i in relevant and i not in seen]
    neg = [scores_row[i] for i in range(len(scores_row))
           if i not in relevant and i not in seen]
    if not pos or not neg:
        return 0.0
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def ref_logloss(scores_row: list[float], relevant: set[int], seen: set[int]) -> float:
    total, n = 0.0, 0
    for i, s in enumerate(scores_row):
        if i in seen:
            continue
        p = 1 / (1 + math.exp(-s))
        total += -math.log(p) if i in relevant else -math.log(1 - p)
        n += 1
    return total / n if n else 0.0


# -- brute force on random data -------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_brute_force_reference(specs, seed):
    scores, relevant, seen, popularity, features = random_problem(seed)
    out = evaluate(specs, NAMES, scores, relevant, seen, popularity, features)
    assert set(out) == {f"{n}@{k}" for n in NAMES for k in KS}
    pop = popularity.tolist()
    feats = features.tolist()
    for k in KS:
        tops = [ranked(scores[u], seen[u])[:k] for u in range(N_USERS)]
        assert all(len(t) == k for t in tops)
        assert abs(float(out[f"coverage@{k}"]) - ref_coverage(tops, N_ITEMS)) <= 1e-6
        assert abs(float(out[f"gini@{k}"]) - ref_gini(tops, N_ITEMS)) <= 1e-6
        for u in range(N_USERS):
            row = scores[u].tolist()
            want = {
                "novelty": ref_novelty(tops[u], pop),
                "avg_popularity": ref_avg_popularity(tops[u], pop),
                "ild": ref_ild(tops[u], feats),
                "auc": ref_auc(row, relevant[u], seen[u]),
                "logloss": ref_logloss(row, relevant[u], seen[u]),
            }
            for name, value in want.items():
                got = float(out[f"{name}@{k}"][u])
                assert abs(got - value) <= 1e-6 * max(1.0, abs(value)), (seed, u, name, k)


@pytest.mark.parametrize("seed", [0, 1])
def test_auc_with_ties_uses_average_ranks(specs, seed):
    scores, relevant, seen, popularity, _ = random_problem(seed, tied=True)
    out = evaluate(specs, ["auc", "logloss"], scores, relevant, seen, popularity)
    for u in range(N_USERS):
        row = scores[u].tolist()
        assert abs(float(out["auc@10"][u]) - ref_auc(row, relevant[u], seen[u])) <= 1e-6
        assert abs(float(out["logloss@10"][u]) - ref_logloss(row, relevant[u], seen[u])) <= 1e-6


def test_auc_and_logloss_do_not_depend_on_k(specs):
    scores, relevant, seen, popularity, _ = random_problem(5)
    out = evaluate(specs, ["auc", "logloss"], scores, relevant, seen, popularity)
    for name in ("auc", "logloss"):
        for k in KS[1:]:
            assert torch.equal(out[f"{name}@{k}"], out[f"{name}@{KS[0]}"])
    assert float(out["auc@10"][0]) == 0.0  # user 0 has no held-out item


@pytest.mark.parametrize("batch_size", [1, 7, 64])
def test_global_metrics_accumulate_over_batches(specs, batch_size):
    """item_counts summed across batches + finalize_global = brute force over all users,
    whatever the batch size; per-user values do not depend on it either."""
    scores, relevant, seen, popularity, features = random_problem(3)
    whole = evaluate(specs, NAMES, scores, relevant, seen, popularity, features)
    split = evaluate(specs, NAMES, scores, relevant, seen, popularity, features,
                     batch_size=batch_size)
    for key in whole:
        assert torch.allclose(whole[key].double(), split[key].double(), atol=1e-9), key
    for k in KS:
        tops = [ranked(scores[u], seen[u])[:k] for u in range(N_USERS)]
        assert abs(float(split[f"coverage@{k}"]) - ref_coverage(tops, N_ITEMS)) <= 1e-6
        assert abs(float(split[f"gini@{k}"]) - ref_gini(tops, N_ITEMS)) <= 1e-6


def test_global_counts_skip_masked_fillers_when_k_exceeds_candidates(specs):
    """Two items, one seen: the top-2 holds one real item; the filler is not counted."""
    scores = torch.tensor([[1.0, 2.0]])
    out = evaluate(specs, ["coverage", "gini"], scores, [{0}], [{1}],
                   torch.tensor([1.0, 1.0]), ks=[2])
    assert float(out["coverage@2"]) == pytest.approx(0.5)
    assert float(out["gini@2"]) == pytest.approx(0.5)  # counts [1, 0]: (n-1)/n


# -- hand-worked examples -----------------------------------------------------------------

A, B, C, D, E = range(5)


def test_hand_worked_coverage_and_gini(specs):
    # items a..e ranked a > b > c > d > e; top-2 lists: [a, b], [a, c] (b seen), [a, b]
    scores = torch.tensor([[5.0, 4.0, 3.0, 2.0, 1.0]]).repeat(3, 1)
    seen = [set(), {B}, set()]
    out = evaluate(specs, ["coverage", "gini"], scores, [{A}] * 3, seen,
                   torch.ones(5), ks=[2])
    assert float(out["coverage@2"]) == pytest.approx(3 / 5)  # {a, b, c} of 5 items
    # counts a=3, b=2, c=1, d=e=0 -> sorted [0,0,1,2,3], n=5, total 6:
    # sum (2j - 6) c_j = 0*1 + 2*2 + 4*3 = 16 -> 16 / (5 * 6)
    assert float(out["gini@2"]) == pytest.approx(16 / 30)


def test_hand_worked_gini_extremes(specs):
    scores = torch.tensor([[4.0, 3.0, 2.0, 1.0], [1.0, 2.0, 3.0, 4.0]])
    # two users, top-2 [a, b] and [d, c]: all four items once -> perfectly equal
    out = evaluate(specs, ["gini", "coverage"], scores, [{A}, {A}], [set(), set()],
                   torch.ones(4), ks=[2])
    assert float(out["gini@2"]) == pytest.approx(0.0)
    assert float(out["coverage@2"]) == pytest.approx(1.0)
    # same item for everybody at k=1 -> (n - 1) / n
    out = evaluate(specs, ["gini"], scores[:1].repeat(3, 1), [{A}] * 3, [set()] * 3,
                   torch.ones(4), ks=[1])
    assert float(out["gini@1"]) == pytest.approx(3 / 4)


def test_hand_worked_novelty_and_avg_popularity(specs):
    # popularity [3, 1, 0, 0]: p = (4, 2, 1, 1) / 8 -> self-information 1, 2, 3, 3 bits
    popularity = torch.tensor([3.0, 1.0, 0.0, 0.0])
    scores = torch.tensor([[4.0, 1.0, 3.0, 2.0]])  # top-2 = [a, c]
    out = evaluate(specs, ["novelty", "avg_popularity"], scores, [{A}], [set()],
                   popularity, ks=[1, 2])
    assert float(out["novelty@1"][0]) == pytest.approx(1.0)
    assert float(out["novelty@2"][0]) == pytest.approx((1 + 3) / 2)
    assert float(out["avg_popularity@2"][0]) == pytest.approx((3 + 0) / 2)


def test_hand_worked_ild(specs):
    # a = [1, 0], b = [1, 1] / sqrt 2 (given unnormalized), c = [0, 1]
    features = torch.tensor([[1.0, 0.0], [3.0, 3.0], [0.0, 2.0]])
    scores = torch.tensor([[3.0, 2.0, 1.0]])
    out = evaluate(specs, ["ild"], scores, [{A}], [set()], torch.ones(3), features,
                   ks=[1, 2, 3])
    assert float(out["ild@1"][0]) == 0.0  # no pair
    assert float(out["ild@2"][0]) == pytest.approx(1 - 1 / math.sqrt(2))
    # pairs ab, ac, bc: cosines 1/sqrt2, 0, 1/sqrt2
    assert float(out["ild@3"][0]) == pytest.approx(1 - math.sqrt(2) / 3)


def test_hand_worked_auc_and_logloss(specs):
    pop = torch.ones(4)
    # ranking a > b > c > d, held-out b: beats c and d, loses to a -> 2/3
    out = evaluate(specs, ["auc"], torch.tensor([[4.0, 3.0, 2.0, 1.0]]), [{B}], [set()], pop)
    assert float(out["auc@1"][0]) == pytest.approx(2 / 3)
    # d seen (excluded): held-out a ties b (1/2) and beats c (1) -> 3/4
    out = evaluate(specs, ["auc"], torch.tensor([[1.0, 1.0, 0.0, 9.0]]), [{A}], [{D}], pop)
    assert float(out["auc@1"][0]) == pytest.approx(3 / 4)
    # logits 0 everywhere -> each candidate costs ln 2; the seen item is left out
    out = evaluate(specs, ["logloss"], torch.tensor([[0.0, 0.0, 0.0, 50.0]]), [{A}], [{D}],
                   pop)
    assert float(out["logloss@1"][0]) == pytest.approx(math.log(2))
    # confident and right: logit +20 on the positive, -20 on the negatives -> ~0
    out = evaluate(specs, ["logloss"], torch.tensor([[20.0, -20.0, -20.0, 0.0]]), [{A}],
                   [{D}], pop)
    assert float(out["logloss@1"][0]) == pytest.approx(0.0, abs=1e-8)


def test_specs_declare_kind_needs_and_direction(specs):
    assert specs["coverage"].kind == "global" and specs["gini"].kind == "global"
    assert not specs["gini"].higher_is_better
    assert not specs["avg_popularity"].higher_is_better
    assert not specs["logloss"].higher_is_better
    assert specs["novelty"].higher_is_better and specs["auc"].higher_is_better
    assert specs["novelty"].needs == {"item_popularity"}
    assert specs["ild"].needs == {"item_features"}
    assert specs["auc"].needs == specs["logloss"].needs == {"scores"}


# -- end to end ----------------------------------------------------------------------------


def test_run_with_beyond_accuracy_metrics(compose, tmp_path):
    import pandas as pd

    results = run_experiment(compose("model=pop", "metrics=beyond_accuracy"), tmp_path)
    test = results["metrics"]["test"]
    for name in ("ndcg", "recall", "coverage", "gini", "novelty", "avg_popularity"):
        for k in (10, 20):
            assert f"{name}@{k}" in test, name
    # Pop recommends (nearly) the same list to everyone: tiny coverage, high Gini
    assert test["coverage@10"] < min(0.5, test["coverage@20"])  # of 200 items
    assert test["gini@10"] > 0.8
    assert test["avg_popularity@10"] > test["avg_popularity@20"]
    assert test["novelty@10"] < test["novelty@20"]
    per_user = pd.read_parquet(tmp_path / "per_user.parquet")
    assert {"novelty@10", "avg_popularity@10"} <= set(per_user.columns)
    assert per_user["novelty@10"].mean() == pytest.approx(test["novelty@10"], abs=1e-6)


def test_run_with_ild_and_score_metrics(compose, tmp_path):
    cfg = compose("model=pop", "metrics=with_ild")
    results = run_experiment(cfg, tmp_path / "ild")
    test = results["metrics"]["test"]
    assert {"ild@10", "ild@20", "coverage@10", "gini@20"} <= set(test)
    assert 0.0 < test["ild@10"] <= 1.0
    cfg = compose("model=pop", "metrics.names=[ndcg,auc,logloss]")
    test = run_experiment(cfg, tmp_path / "auc")["metrics"]["test"]
    assert test["auc@10"] == test["auc@20"]
    assert 0.5 < test["auc@10"] < 1.0  # popularity carries signal on the planted data
    assert test["logloss@10"] > 0

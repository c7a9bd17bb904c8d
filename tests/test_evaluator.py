"""Evaluator: masking, ground truth, batch-size invariance, validation of ks and keys."""

from __future__ import annotations

import pytest
import torch

import recframe_metrics.plugin
from recframe.api import MetricSpec
from recframe.errors import ConfigError
from recframe.eval import Evaluator, PerUserAccumulator
from recframe.plugin import PluginManager

NAMES = ["recall", "precision", "ndcg", "mrr", "hit", "map"]
KS = [1, 5, 10, 20, 60]


@pytest.fixture(scope="module")
def specs():
    pm = PluginManager([recframe_metrics.plugin], load_entry_points=False)
    return {name: pm.metrics.get(name) for name in NAMES}


def random_interactions(seed: int, n_users: int, n_items: int, max_seen: int, max_truth: int):
    """Random scores plus disjoint seen / truth sets as (global) row/col coordinates."""
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(n_users, n_items, generator=g)
    seen_r, seen_c, truth_r, truth_c = [], [], [], []
    for u in range(n_users):
        perm = torch.randperm(n_items, generator=g)
        n_seen = int(torch.randint(0, max_seen + 1, (1,), generator=g))
        n_truth = int(torch.randint(0, max_truth + 1, (1,), generator=g))
        seen_r += [u] * n_seen
        seen_c += perm[:n_seen].tolist()
        truth_r += [u] * n_truth
        truth_c += perm[n_seen : n_seen + n_truth].tolist()
    t = lambda x: torch.tensor(x, dtype=torch.long)  # noqa: E731
    return scores, {
        "seen_rows": t(seen_r),
        "seen_cols": t(seen_c),
        "truth_rows": t(truth_r),
        "truth_cols": t(truth_c),
    }


def slice_batch(coords: dict[str, torch.Tensor], start: int, stop: int):
    """The coordinates of users [start, stop), with rows local to that batch."""
    out = {}
    for part in ("seen", "truth"):
        rows, cols = coords[f"{part}_rows"], coords[f"{part}_cols"]
        keep = (rows >= start) & (rows < stop)
        out[f"{part}_rows"] = rows[keep] - start
        out[f"{part}_cols"] = cols[keep]
    return out


def probe_spec(record: list):
    """A metric that records the MetricInput it gets and returns zeros."""

    def fn(inp, k):
        record.append(inp)
        return torch.zeros(inp.topk.shape[0])

    return MetricSpec(name="probe", fn=fn)


# -- masking and ground truth --------------------------------------------------------


def test_seen_items_never_ranked_and_truth_from_truth_coords():
    n_users, n_items = 30, 40
    scores, coords = random_interactions(0, n_users, n_items, max_seen=20, max_truth=8)
    # Seen items get the highest scores: without masking they would fill the top.
    scores[coords["seen_rows"], coords["seen_cols"]] += 100.0
    record: list = []
    Evaluator({"probe": probe_spec(record)}, [10]).evaluate_batch(scores, coords)
    inp = record[0]
    assert inp.topk.shape == (n_users, 10)
    assert inp.n_items == n_items
    seen = [set() for _ in range(n_users)]
    truth = [set() for _ in range(n_users)]
    for r, c in zip(coords["seen_rows"].tolist(), coords["seen_cols"].tolist(), strict=True):
        seen[r].add(c)
    for r, c in zip(coords["truth_rows"].tolist(), coords["truth_cols"].tolist(), strict=True):
        truth[r].add(c)
    for u in range(n_users):
        top = inp.topk[u].tolist()
        assert not seen[u] & set(top), u
        # the top 10 of the unseen items, best first
        unseen = [i for i in range(n_items) if i not in seen[u]]
        want = sorted(unseen, key=lambda i: -float(scores[u, i]))[:10]
        assert top == want, u
        assert inp.hits[u].tolist() == [1.0 if i in truth[u] else 0.0 for i in top]
        assert float(inp.n_relevant[u]) == len(truth[u])
    assert inp.hits.dtype == torch.float32


def test_topk_capped_at_catalogue_size():
    record: list = []
    ev = Evaluator({"probe": probe_spec(record)}, [5, 100])
    empty = torch.empty(0, dtype=torch.long)
    batch = {"seen_rows": empty, "seen_cols": empty, "truth_rows": empty, "truth_cols": empty}
    out = ev.evaluate_batch(torch.randn(3, 7), batch)
    assert record[0].topk.shape == (3, 7)
    assert set(out) == {"probe@5", "probe@100"}


def test_masking_does_not_modify_callers_scores():
    scores, coords = random_interactions(1, 5, 20, max_seen=5, max_truth=3)
    before = scores.clone()
    record: list = []
    Evaluator({"probe": probe_spec(record)}, [3]).evaluate_batch(scores, coords)
    assert torch.equal(scores, before)


@pytest.mark.parametrize("disposable", [False, True])
@pytest.mark.parametrize("where", ["none", "seen", "unseen", "both"])
def test_nan_count_is_exact_whether_or_not_scores_are_restored(specs, disposable, where):
    """``stats["nan_scores"]`` counts every NaN cell, masked (seen) or not, and
    ``scores_disposable`` changes neither the count nor any metric value."""
    scores, coords = random_interactions(3, 6, 40, max_seen=8, max_truth=3)
    seen_r, seen_c = coords["seen_rows"], coords["seen_cols"]
    seen = torch.zeros_like(scores, dtype=torch.bool)
    seen[seen_r, seen_c] = True
    if where in ("seen", "both"):
        scores[seen_r[:3], seen_c[:3]] = float("nan")
    if where in ("unseen", "both"):
        free = (~seen).nonzero()[:2]
        scores[free[:, 0], free[:, 1]] = float("nan")
    expected = int(torch.isnan(scores).sum())
    ev = Evaluator(specs, [5])
    reference = ev.evaluate_batch(scores.clone(), coords)
    stats: dict = {}
    out = ev.evaluate_batch(scores, coords, stats=stats, scores_disposable=disposable)
    assert int(stats["nan_scores"]) == expected
    assert disposable or where == "none" or torch.isnan(scores).sum() == expected  # restored
    assert reference and set(out) == set(reference)
    for key, value in reference.items():
        torch.testing.assert_close(out[key], value, equal_nan=True)


# -- batch size never changes a number --------------------------------------------------


def evaluate_in_batches(ev: Evaluator, scores, coords, batch_size: int):
    acc = PerUserAccumulator()
    n_users = scores.shape[0]
    for start in range(0, n_users, batch_size):
        stop = min(start + batch_size, n_users)
        values = ev.evaluate_batch(scores[start:stop], slice_batch(coords, start, stop))
        acc.update(torch.arange(start, stop), values)
    return acc.tensors()


@pytest.mark.parametrize("tied", [False, True], ids=["distinct", "tied"])
def test_batch_size_does_not_change_per_user_values(specs, tied):
    n_users, n_items = 97, 50
    scores, coords = random_interactions(2, n_users, n_items, max_seen=30, max_truth=15)
    if tied:
        scores = torch.round(scores)  # a handful of distinct values: many exact ties
    ev = Evaluator(specs, KS)
    users_full, full = evaluate_in_batches(ev, scores, coords, 97)
    for bs in (7, 1):
        users, values = evaluate_in_batches(ev, scores, coords, bs)
        assert torch.equal(users, users_full)
        assert set(values) == set(full)
        for key in full:
            assert values[key].shape == (n_users,)
            assert torch.equal(values[key], full[key]), (bs, key)


def test_per_user_accumulator_frame_sorted_by_user():
    acc = PerUserAccumulator()
    acc.update(torch.tensor([3, 1]), {"ndcg@10": torch.tensor([0.3, 0.1])})
    acc.update(torch.tensor([2, 0]), {"ndcg@10": torch.tensor([0.2, 0.0])})
    users, values = acc.tensors()
    frame = PerUserAccumulator.to_frame(users, values)
    assert frame["user"].tolist() == [0, 1, 2, 3]
    assert frame["ndcg@10"].tolist() == pytest.approx([0.0, 0.1, 0.2, 0.3])
    acc.reset()
    assert acc.tensors()[0].numel() == 0


# -- validation -------------------------------------------------------------------------


@pytest.mark.parametrize("ks", [[0], [-1], ["a"], [], [10, 0], [True], [2.5]])
def test_rejects_bad_ks(specs, ks):
    with pytest.raises(ConfigError, match="metrics.ks"):
        Evaluator(specs, ks)


def test_rejects_empty_metrics():
    with pytest.raises(ConfigError, match="empty"):
        Evaluator({}, [10])


def test_ks_sorted_and_deduplicated(specs):
    ev = Evaluator({"ndcg": specs["ndcg"]}, [20, 10, 20])
    assert ev.ks == [10, 20]
    assert ev.max_k == 20
    assert ev.keys == ["ndcg@10", "ndcg@20"]


def test_check_key_unknown_metric_lists_available_and_suggests(specs):
    ev = Evaluator(specs, [10, 20])
    with pytest.raises(ConfigError) as err:
        ev.check_key("ndgc@10", config_key="metrics.monitor")
    msg = str(err.value)
    assert "'ndgc'" in msg
    assert "metrics.monitor" in msg
    assert "Did you mean 'ndcg'?" in msg
    for name in NAMES:
        assert name in msg


def test_check_key_k_not_computed(specs):
    ev = Evaluator(specs, [10, 20])
    with pytest.raises(ConfigError, match=r"K=5 is not among metrics.ks=\[10, 20\]"):
        ev.check_key("ndcg@5")
    with pytest.raises(ConfigError, match="NAME@K"):
        ev.check_key("ndcg")
    assert ev.check_key("recall@20") == "recall@20"

"""CTR-protocol metrics (plugins/recframe_metrics/ctr.py) against scikit-learn and
brute-force loops, on data with many ties and single-class users."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import log_loss, roc_auc_score

from recframe.api import ConfigError, DataError, PointwiseInput
from recframe.eval import Evaluator
from recframe.plugin import default_manager
from recframe_metrics import ctr, score_based


def _input(users, logits, labels) -> PointwiseInput:
    return PointwiseInput.build(torch.as_tensor(np.asarray(users), dtype=torch.long),
                                torch.as_tensor(np.asarray(logits), dtype=torch.float64),
                                torch.as_tensor(np.asarray(labels), dtype=torch.float64))


def _random(seed: int, n: int = 400, n_users: int = 25, decimals: int = 1):
    """Logits rounded to ``decimals`` (many ties), labels with a signal, some one-class users."""
    g = np.random.default_rng(seed)
    users = g.integers(0, n_users, n) * 7 + 3  # sparse, non-contiguous user ids
    logits = np.round(g.normal(size=n), decimals)
    labels = (g.random(n) < 1 / (1 + np.exp(-logits))).astype(np.float64)
    return users, logits, labels


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


# -- brute-force references --------------------------------------------------------------


def _pairwise_auc(logits: np.ndarray, labels: np.ndarray) -> float:
    """AUC by comparing every positive with every negative (ties 1/2)."""
    pos, neg = logits[labels == 1], logits[labels == 0]
    if len(pos) == 0 or len(neg) == 0:
        return math.nan
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0) + 0.5 * (diff == 0)).mean())


def _loop_gauc(users, logits, labels) -> tuple[float, dict[int, float]]:
    per_user, num, den = {}, 0.0, 0.0
    for u in np.unique(users):
        m = users == u
        if labels[m].min() == labels[m].max():
            per_user[int(u)] = math.nan
            continue
        a = roc_auc_score(labels[m], logits[m])
        per_user[int(u)] = a
        num += m.sum() * a
        den += m.sum()
    return (num / den if den else math.nan), per_user


def _loop_ece(probs, labels, n_bins: int = 15) -> float:
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    total = 0.0
    for b in range(n_bins):
        lo, hi = edges[b], edges[b + 1]
        m = (probs > lo) & (probs <= hi) if b else (probs >= lo) & (probs <= hi)
        if m.sum():
            total += m.sum() / len(probs) * abs(probs[m].mean() - labels[m].mean())
    return total


# -- auc ----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_auc_equals_sklearn_with_ties(seed):
    users, logits, labels = _random(seed)
    value, per_user = ctr.auc(_input(users, logits, labels))
    assert per_user is None
    assert value.dtype == torch.float64 and value.dim() == 0
    assert value.item() == pytest.approx(roc_auc_score(labels, logits), abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-3, 3), st.integers(0, 1)), min_size=2, max_size=60))
def test_auc_matches_pairwise_counting(rows):
    logits = np.array([r[0] / 2 for r in rows], dtype=np.float64)  # heavy ties
    labels = np.array([r[1] for r in rows], dtype=np.float64)
    value, _ = ctr.auc(_input(np.zeros(len(rows)), logits, labels))
    expected = _pairwise_auc(logits, labels)
    if math.isnan(expected):
        assert math.isnan(value.item())
    else:
        assert value.item() == pytest.approx(expected, abs=1e-12)
        assert value.item() == pytest.approx(roc_auc_score(labels, logits), abs=1e-12)


def test_auc_of_equal_logits_is_one_half():
    labels = np.array([0, 1, 1, 0, 1, 0, 0], dtype=np.float64)
    value, _ = ctr.auc(_input(np.arange(7) % 2, np.full(7, 0.3), labels))
    assert value.item() == 0.5
    value, per_user = ctr.gauc(_input(np.arange(7) % 2, np.full(7, 0.3), labels))
    assert value.item() == 0.5 and torch.equal(per_user, torch.full((2,), 0.5,
                                                                     dtype=torch.float64))


def test_auc_perfect_and_reversed_and_one_class():
    labels = np.array([0, 0, 1, 1], dtype=np.float64)
    assert ctr.auc(_input(np.zeros(4), [0.0, 1, 2, 3], labels))[0].item() == 1.0
    assert ctr.auc(_input(np.zeros(4), [3.0, 2, 1, 0], labels))[0].item() == 0.0
    assert math.isnan(ctr.auc(_input(np.zeros(3), [1.0, 2, 3], np.ones(3)))[0].item())
    assert math.isnan(ctr.auc(_input([], [], []))[0].item())


def test_auc_does_not_depend_on_row_order():
    users, logits, labels = _random(11)
    perm = np.random.default_rng(1).permutation(len(users))
    a = ctr.auc(_input(users, logits, labels))[0]
    b = ctr.auc(_input(users[perm], logits[perm], labels[perm]))[0]
    assert a.item() == pytest.approx(b.item(), abs=1e-12)


# -- gauc ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_gauc_equals_per_user_loop(seed):
    users, logits, labels = _random(seed, n=300, n_users=40)
    inp = _input(users, logits, labels)
    value, per_user = ctr.gauc(inp)
    expected, loop = _loop_gauc(users, logits, labels)
    assert value.item() == pytest.approx(expected, abs=1e-12)
    assert per_user.shape == inp.user_index.shape and per_user.dtype == torch.float64
    got = dict(zip(inp.user_index.tolist(), per_user.tolist(), strict=True))
    assert got.keys() == loop.keys()
    n_nan = 0
    for u, a in loop.items():
        if math.isnan(a):
            n_nan += 1
            assert math.isnan(got[u]), u
        else:
            assert got[u] == pytest.approx(a, abs=1e-12), u
    assert n_nan > 0  # the data does hold single-class users


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(-2, 2), st.integers(0, 1)),
                min_size=1, max_size=50))
def test_gauc_property(rows):
    users = np.array([r[0] for r in rows])
    logits = np.array([r[1] * 0.5 for r in rows], dtype=np.float64)
    labels = np.array([r[2] for r in rows], dtype=np.float64)
    value, per_user = ctr.gauc(_input(users, logits, labels))
    expected, loop = _loop_gauc(users, logits, labels)
    if math.isnan(expected):
        assert math.isnan(value.item())
    else:
        assert value.item() == pytest.approx(expected, abs=1e-12)
    np.testing.assert_allclose(per_user.numpy(), [loop[u] for u in sorted(loop)], atol=1e-12)


def test_single_class_users_are_nan_and_left_out_of_gauc():
    # user 0: both classes, AUC 1 (3 rows); user 1: clicks only; user 2: no click (5 rows)
    users = [0, 0, 0, 1, 1, 2, 2, 2, 2, 2]
    logits = [0.1, 0.5, 0.9, 0.0, 0.2, 1.0, 2.0, 3.0, 4.0, 5.0]
    labels = [0, 1, 1, 1, 1, 0, 0, 0, 0, 0]
    value, per_user = ctr.gauc(_input(users, logits, labels))
    assert value.item() == 1.0  # the single-class users' weights do not dilute the mean
    assert per_user[0].item() == 1.0
    assert math.isnan(per_user[1].item()) and math.isnan(per_user[2].item())
    value, per_user = ctr.gauc(_input([1, 1, 2], [0.0, 1.0, 2.0], [1, 1, 0]))
    assert math.isnan(value.item()) and torch.isnan(per_user).all()


def test_gauc_weights_users_by_impressions():
    # user 0: 2 rows AUC 1; user 1: 4 rows AUC 0 -> (2 * 1 + 4 * 0) / 6
    users = [0, 0, 1, 1, 1, 1]
    logits = [0.0, 1.0, 3.0, 3.0, 1.0, 1.0]
    labels = [0, 1, 0, 0, 1, 1]
    value, per_user = ctr.gauc(_input(users, logits, labels))
    assert per_user.tolist() == [1.0, 0.0]
    assert value.item() == pytest.approx(2 / 6)


# -- logloss ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_logloss_equals_sklearn_and_per_user_loop(seed):
    users, logits, labels = _random(seed, decimals=2)
    inp = _input(users, logits, labels)
    value, per_user = ctr.logloss(inp)
    assert value.item() == pytest.approx(log_loss(labels, _sigmoid(logits)), rel=1e-10)
    for pos, u in enumerate(inp.user_index.tolist()):
        m = users == u
        p = _sigmoid(logits[m])
        ref = -np.mean(labels[m] * np.log(p) + (1 - labels[m]) * np.log(1 - p))
        assert per_user[pos].item() == pytest.approx(ref, rel=1e-10)


def test_logloss_is_finite_for_saturated_logits():
    value, per_user = ctr.logloss(_input([0, 0, 1, 1], [800.0, -800.0, 800.0, -800.0],
                                         [1, 0, 0, 1]))
    assert torch.isfinite(value) and torch.isfinite(per_user).all()
    assert per_user.tolist() == [0.0, 800.0]
    assert value.item() == 400.0


# -- calibration --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_ece_equals_brute_force_loop(seed):
    users, logits, labels = _random(seed, n=500)
    inp = _input(users, logits * 2, labels)
    value, per_user = ctr.ece(inp)
    assert per_user is None
    assert value.item() == pytest.approx(_loop_ece(_sigmoid(logits * 2), labels), abs=1e-12)


def test_ece_bins_are_right_closed_and_zero_is_in_the_first():
    # sigmoid(-inf) = 0 goes to the first bin; p exactly 0.2 (the upper edge of bin 2,
    # 0.2 = sigmoid(-log 4) in float64) to bin 2, not bin 3
    on_edge = -1.3862943611198906
    logits = [-math.inf, on_edge, 0.0]
    bins = ctr.reliability_bins(_input([0, 0, 0], logits, [0, 0, 1]))
    p = torch.sigmoid(torch.tensor(on_edge, dtype=torch.float64)).item()
    assert p == bins["upper"][2] == bins["lower"][3]
    assert bins["count"][0] == 1 and bins["count"][2] == 1 and bins["count"][7] == 1
    assert bins["mean_predicted"][2] == p and bins["mean_predicted"][0] == 0.0


def test_ece_of_a_calibrated_model_is_zero_and_of_a_wrong_one_is_the_gap():
    # every prediction 0.5 and half the rows clicked: calibrated
    assert ctr.ece(_input(np.zeros(4), np.zeros(4), [0, 1, 0, 1]))[0].item() == 0.0
    # every prediction sigmoid(2) in one bin, no click: ECE = sigmoid(2)
    value = ctr.ece(_input(np.zeros(4), np.full(4, 2.0), np.zeros(4)))[0].item()
    assert value == pytest.approx(_sigmoid(np.float64(2.0)))


def test_pcoc_and_calibration_gap():
    users, logits, labels = _random(3)
    inp = _input(users, logits, labels)
    expected = _sigmoid(logits).mean() / labels.mean()
    assert ctr.pcoc(inp).item() == pytest.approx(expected, rel=1e-12)
    gap, per_user = ctr.calibration_gap(inp)
    assert per_user is None and gap.item() == pytest.approx(abs(expected - 1), rel=1e-10)
    # predicting twice the click rate: PCOC 2, gap 1
    inp = _input(np.zeros(4), np.zeros(4), [1, 0, 0, 0])
    assert ctr.pcoc(inp).item() == 2.0 and ctr.calibration_gap(inp)[0].item() == 1.0
    assert math.isnan(ctr.pcoc(_input([0, 1], [0.0, 1.0], [0, 0])).item())


def test_reliability_bins_are_plain_json_and_agree_with_ece():
    users, logits, labels = _random(5)
    inp = _input(users, logits * 3, labels)
    bins = ctr.reliability_bins(inp)
    text = json.dumps(bins, allow_nan=False)  # no NaN: empty bins are null
    assert json.loads(text) == bins
    assert len(bins["lower"]) == len(bins["upper"]) == len(bins["count"]) == 15
    assert bins["lower"][0] == 0.0 and bins["upper"][-1] == 1.0
    assert bins["upper"][:-1] == bins["lower"][1:]
    assert sum(bins["count"]) == len(users)
    probs = _sigmoid(logits * 3)
    for b, (lo, hi, c) in enumerate(zip(bins["lower"], bins["upper"], bins["count"],
                                        strict=True)):
        m = (probs > lo) & (probs <= hi) if b else (probs <= hi)
        assert c == m.sum()
        if c:
            assert bins["mean_predicted"][b] == pytest.approx(probs[m].mean())
            assert bins["observed"][b] == pytest.approx(labels[m].mean())
        else:
            assert bins["mean_predicted"][b] is None and bins["observed"][b] is None
    assert bins["ece"] == pytest.approx(ctr.ece(inp)[0].item(), abs=1e-12)
    assert bins["pcoc"] == pytest.approx(ctr.pcoc(inp).item())
    assert ctr.reliability_bins(inp, n_bins=4)["count"].__len__() == 4
    with pytest.raises(ConfigError, match="n_bins"):
        ctr.reliability_bins(inp, n_bins=0)


# -- input checks and registration ----------------------------------------------------------


@pytest.mark.parametrize("fn", [ctr.auc, ctr.gauc, ctr.logloss, ctr.ece, ctr.calibration_gap])
def test_non_binary_labels_are_a_data_error(fn):
    with pytest.raises(DataError, match="label"):
        fn(_input([0, 0], [0.1, 0.2], [0.0, 0.7]))


def test_metrics_run_on_the_device_of_the_input():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    users, logits, labels = _random(2)
    cpu = _input(users, logits, labels)
    gpu = PointwiseInput(*(t.cuda() for t in (cpu.users, cpu.logits, cpu.labels,
                                              cpu.user_index, cpu.row_user)))
    for fn in (ctr.auc, ctr.gauc, ctr.logloss, ctr.ece, ctr.calibration_gap):
        a, pa = fn(cpu)
        b, pb = fn(gpu)
        assert b.device.type == "cuda"
        assert a.item() == pytest.approx(b.item(), abs=1e-12, nan_ok=True)
        if pa is not None:
            np.testing.assert_allclose(pa.numpy(), pb.cpu().numpy(), atol=1e-12)


def test_registered_specs():
    pm = default_manager()
    auc, logloss = pm.metrics.get("auc"), pm.metrics.get("logloss")
    assert auc.fn is score_based.auc and auc.pointwise is ctr.auc and auc.higher_is_better
    assert logloss.fn is score_based.logloss and logloss.pointwise is ctr.logloss
    assert not logloss.higher_is_better
    assert "CTR" in auc.description and "CTR" in logloss.description
    assert pm.metrics.get("gauc").pointwise is ctr.gauc and pm.metrics.get("gauc").higher_is_better
    assert pm.metrics.get("ece").pointwise is ctr.ece
    assert not pm.metrics.get("ece").higher_is_better
    assert pm.metrics.get("calibration_gap").pointwise is ctr.calibration_gap
    assert not pm.metrics.get("calibration_gap").higher_is_better


@pytest.mark.parametrize("name", ["gauc", "ece", "calibration_gap"])
def test_ctr_only_metrics_fail_clearly_under_ranking(name):
    spec = default_manager().metrics.get(name)
    assert spec.kind == "pointwise"
    scores = torch.rand(3, 5)
    batch = {"seen_rows": torch.tensor([0]), "seen_cols": torch.tensor([1]),
             "truth_rows": torch.tensor([0, 1, 2]), "truth_cols": torch.tensor([2, 3, 4])}
    # the ranking Evaluator may refuse the metric when built or when it calls ``fn``
    with pytest.raises(ConfigError, match=rf"{name}.*evaluation=ctr"):
        Evaluator({name: spec}, [2]).evaluate_batch(scores, batch)
    with pytest.raises(ConfigError, match=rf"{name}.*evaluation=ctr"):
        spec.fn(None, 2)

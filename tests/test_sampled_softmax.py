"""The shared sequence-model loss (recframe_seq._loss) against a loop-based reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from recframe.api import ConfigError, DataInfo
from recframe.plugin.manager import default_manager
from recframe_seq._loss import (
    LossSettings,
    SequenceObjective,
    loss_settings,
    sampled_softmax_loss,
)


def reference_loss(h, targets, negatives, weight, bias, log_q, temperature, l2_norm) -> float:
    """Sampled softmax written out one row and one candidate at a time."""
    total = 0.0
    for n in range(len(targets)):
        def logit(item: int, n: int = n) -> float:
            u, w = h[n].tolist(), weight[item].tolist()
            if l2_norm:
                nu, nw = math.sqrt(sum(x * x for x in u)), math.sqrt(sum(x * x for x in w))
                s = sum(a * b for a, b in zip(u, w, strict=True)) / (max(nu, 1e-12)
                                                                    * max(nw, 1e-12))
            else:
                s = sum(a * b for a, b in zip(u, w, strict=True))
                s += float(bias[item]) if bias is not None else 0.0
            s /= temperature
            return s - (float(log_q[item]) if log_q is not None else 0.0)

        pos = int(targets[n])
        terms = [logit(pos)] + [logit(int(j)) for j in negatives if int(j) != pos]
        top = max(terms)
        log_sum = top + math.log(sum(math.exp(t - top) for t in terms))
        total += log_sum - terms[0]
    return total / len(targets)


@pytest.mark.parametrize("l2_norm", [False, True])
@pytest.mark.parametrize("logq", [False, True])
@pytest.mark.parametrize("temperature", [1.0, 0.05])
def test_sampled_softmax_matches_the_loop(l2_norm, logq, temperature):
    g = torch.Generator().manual_seed(0)
    n_items, d = 9, 4
    h = torch.randn(5, d, generator=g, dtype=torch.float64)
    weight = torch.randn(n_items, d, generator=g, dtype=torch.float64)
    bias = torch.randn(n_items, generator=g, dtype=torch.float64)
    counts = torch.tensor([5.0, 1, 1, 3, 8, 2, 1, 1, 4], dtype=torch.float64)
    log_q = (counts / counts.sum()).log() if logq else None
    targets = torch.tensor([0, 3, 3, 7, 8])
    negatives = torch.tensor([3, 1, 0, 3, 5, 8])  # accidental hits for rows 0, 1, 2, 4
    got = sampled_softmax_loss(h, targets, negatives, weight, None if l2_norm else bias,
                               log_q, temperature, l2_norm)
    want = reference_loss(h, targets, negatives, weight, None if l2_norm else bias, log_q,
                          temperature, l2_norm)
    assert float(got) == pytest.approx(want, rel=1e-10)


def test_logq_term_changes_the_loss_only_for_non_uniform_q():
    g = torch.Generator().manual_seed(1)
    h, weight = torch.randn(4, 3, generator=g), torch.randn(6, 3, generator=g)
    targets, negatives = torch.tensor([0, 1, 2, 3]), torch.tensor([4, 5, 0])
    plain = sampled_softmax_loss(h, targets, negatives, weight, None, None)
    uniform = sampled_softmax_loss(h, targets, negatives, weight, None,
                                   torch.full((6,), -math.log(6)))
    skewed = sampled_softmax_loss(h, targets, negatives, weight, None,
                                  torch.tensor([0.5, 0.1, 0.1, 0.1, 0.1, 0.1]).log())
    torch.testing.assert_close(plain, uniform)
    assert not torch.allclose(plain, skewed)


def test_every_negative_an_accidental_hit_leaves_the_positive_alone():
    h, weight = torch.randn(2, 3), torch.randn(4, 3)
    loss = sampled_softmax_loss(h, torch.tensor([1, 1]), torch.tensor([1, 1, 1]), weight,
                                None, None)
    assert float(loss) == pytest.approx(0.0, abs=1e-6)


def test_objective_samplers_and_full_softmax():
    torch.manual_seed(0)
    targets = torch.tensor([2, 2, 5, 7, 1])
    in_batch = SequenceObjective(LossSettings("sampled_softmax", 3, negatives="in_batch"), 10)
    neg = in_batch.sample(targets)
    assert len(neg) == 3 and set(neg.tolist()) <= set(targets.tolist())
    assert torch.equal(SequenceObjective(LossSettings("sampled_softmax", 9,
                                                      negatives="in_batch"), 10
                                         ).sample(targets), targets)
    pop = SequenceObjective(LossSettings("sampled_softmax", 2000, negatives="popularity"), 4)
    pop.set_counts(np.array([99, 0, 0, 0]))  # q = (100, 1, 1, 1) / 103
    share = (pop.sample(targets) == 0).float().mean()
    assert 0.93 < float(share) < 0.99
    uni = SequenceObjective(LossSettings("sampled_softmax", 50), 10).sample(targets)
    assert uni.min() >= 0 and uni.max() < 10
    # ce: the full softmax over the catalogue, the default of the older models
    ce = SequenceObjective(LossSettings(), 6)
    h, weight, bias = torch.randn(3, 4), torch.randn(6, 4), torch.randn(6)
    torch.testing.assert_close(ce(h, torch.tensor([0, 4, 5]), weight, bias),
                               torch.nn.functional.cross_entropy(h @ weight.T + bias,
                                                                 torch.tensor([0, 4, 5])))


def test_scores_use_the_similarity_the_loss_trains():
    settings = LossSettings("sampled_softmax", 3, temperature=0.05, l2_norm=True)
    obj = SequenceObjective(settings, 5)
    h, weight, bias = torch.randn(2, 4), torch.randn(5, 4), torch.randn(5)
    want = (torch.nn.functional.normalize(h, dim=-1)
            @ torch.nn.functional.normalize(weight, dim=-1).T) / 0.05
    torch.testing.assert_close(obj.logits(h, weight, bias), want)


def test_settings_from_config_block_string_and_legacy_keys():
    s = loss_settings(OmegaConf.create({"loss": {"name": "sampled_softmax",
                                                 "num_negatives": 64}}), 100)
    assert s == LossSettings("sampled_softmax", 64, 0.05, "uniform", False, True)
    assert loss_settings(OmegaConf.create({"loss": "ce"}), 100) == LossSettings()
    legacy = loss_settings(OmegaConf.create({"loss": "sampled", "num_negatives": 7,
                                             "sampling": "popularity",
                                             "logq_correction": True}), 100)
    assert legacy == LossSettings("sampled_softmax", 7, 1.0, "popularity", True, False)


@pytest.mark.parametrize(("block", "match"), [
    ({"name": "bpr"}, "model.loss.name must be one of ce, sampled_softmax"),
    ({"name": "sampled_softmax", "temperature": 0}, "model.loss.temperature must be a number > 0"),
    ({"name": "sampled_softmax", "temperature": -1.0}, "temperature must be a number > 0"),
    ({"name": "sampled_softmax", "num_negatives": 30}, "from 1 to 29"),
    ({"name": "sampled_softmax", "num_negatives": 0}, "from 1 to 29"),
    ({"name": "sampled_softmax", "negatives": "zipf"}, "unknown negative sampler 'zipf'"),
    ({"name": "sampled_softmax", "num_negative": 5}, "unknown key"),
    ({"name": "sampled_softmax", "num_negatives": 5, "l2_norm": "yes"},
     "model.loss.l2_norm must be true or false"),
])
@pytest.mark.parametrize("model", ["sasrec", "gru4rec", "bert4rec", "hstu"])
def test_bad_loss_blocks_fail_with_the_key_and_the_fix(block, match, model):
    spec = default_manager().models.get(model)
    with pytest.raises(ConfigError, match=match):
        spec.build(DataInfo(n_users=5, n_items=30, has_timestamps=True),
                   OmegaConf.create({"name": model, "loss": block}))


@pytest.mark.parametrize("model", ["sasrec", "gru4rec", "bert4rec", "hstu"])
@pytest.mark.parametrize("negatives", ["uniform", "popularity", "in_batch"])
def test_every_sequence_model_trains_with_every_sampler(model, negatives):
    torch.manual_seed(0)
    spec = default_manager().models.get(model)
    m = spec.build(DataInfo(n_users=5, n_items=30, has_timestamps=True), OmegaConf.create({
        "name": model, "max_seq_len": 6, "embedding_dim": 16,
        "loss": {"name": "sampled_softmax", "num_negatives": 8, "negatives": negatives,
                 "logq_correction": negatives != "uniform"}}))
    m.train_rows = "recent"
    seq = torch.tensor([[-1, -1, -1, -1, 2, 5, 1], [0, 1, 2, 3, 4, 5, 6]])
    loss = m.loss({"users": torch.arange(2), "seq": seq})
    assert torch.isfinite(loss) and loss > 0
    loss.backward()
    assert m.trained_positions > 0

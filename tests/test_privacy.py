"""Privacy: per-user gradients, the DP-SGD step, user sampling, mechanisms and the audit."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from omegaconf import OmegaConf

from recframe.errors import ConfigError
from recframe.models.base import TrainFormat
from recframe.privacy.batches import UserSampledBatches
from recframe.privacy.grads import PerUserGradients, _user_slice
from recframe.privacy.settings import read_privacy
from recframe.privacy.stats import analytic_gaussian_sigma, capped_matrix

pytest.importorskip("opacus")


def _train(n_users: int = 12, n_items: int = 9, seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_users, n_items)) < 0.4).astype(np.float32)
    dense[:, 0] = 1.0  # every user has a positive
    dense[:, -1] = 0.0  # and a negative to sample
    return sp.csr_matrix(dense)


def _bpr(n_users: int, n_items: int, reg: float = 0.0):
    from recframe_cf.bpr import BPRMF

    torch.manual_seed(0)
    model = BPRMF(n_users, n_items, embedding_dim=4, reg=reg, init_std=0.3)
    return model


def _batch(train: sp.csr_matrix, fmt: TrainFormat = TrainFormat.PAIRS, m: int = 3):
    batches = UserSampledBatches(fmt, train.shape[0], users_per_step=train.shape[0], seed=1,
                                 train=train, examples_per_user=m, num_negatives=2)
    return batches[0]


def test_user_batches_group_each_users_own_examples():
    train = _train()
    batch = _batch(train)
    users, pos, neg = batch["users"], batch["pos"], batch["neg"]
    assert users.shape == pos.shape == (train.shape[0], 3) and neg.shape == (12, 3, 2)
    assert (users == users[:, :1]).all()  # one user per group
    dense = train.toarray()
    assert dense[users.numpy(), pos.numpy()].all()  # positives are the user's own
    assert not dense[users.numpy()[..., None].repeat(2, -1), neg.numpy()].any()


def test_poisson_user_sampling_rate():
    train = _train(n_users=400, n_items=30)
    batches = UserSampledBatches(TrainFormat.PAIRS, 400, users_per_step=40, seed=0,
                                 train=train, examples_per_user=1)
    assert batches.sample_rate == pytest.approx(0.1) and len(batches) == 10
    sizes = []
    for epoch in range(5):
        batches.set_epoch(epoch)
        sizes += [len(batches[b]["users"]) for b in range(len(batches))]
    assert np.mean(sizes) == pytest.approx(40, rel=0.1)
    assert np.std(sizes) > 2  # Poisson: the batch size varies (not fixed-size batches)


@pytest.mark.parametrize("reg", [0.0, 0.1])
def test_per_user_gradients_vmap_and_loop_equal_autograd(reg):
    train = _train()
    model = _bpr(*train.shape, reg=reg)
    batch = _batch(train)
    vm = PerUserGradients(model, "vmap")
    vm.attach(batch)
    got_vmap = {n: p.grad_sample.clone() for n, p in model.named_parameters()}
    lp = PerUserGradients(model, "loop")
    losses = lp.attach(batch)
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.grad_sample, got_vmap[name], rtol=1e-5, atol=1e-6)
    # brute force: autograd of the model's own (fused) loss on user i's examples alone
    for i in range(len(batch["users"])):
        model.zero_grad()
        loss = model.loss(_user_slice(batch, i))
        loss.backward()
        assert losses[i] == pytest.approx(float(loss), rel=1e-5)
        for p in model.parameters():
            torch.testing.assert_close(p.grad_sample[i], p.grad, rtol=1e-5, atol=1e-6)


def test_sasrec_per_user_gradients_vmap_equal_autograd():
    """SASRec's functional_loss (no trimming, masked mean) runs under vmap and gives
    each user the gradient of the model's own loss on that user's sequence."""
    from recframe_seq.sasrec import SASRec

    torch.manual_seed(0)
    model = SASRec(n_items=30, max_seq_len=8, embedding_dim=8, num_blocks=1, ffn_dim=16,
                   dropout=0.0)
    model.train_rows = "recent"
    seq = torch.randint(0, 30, (5, 1, 9))
    seq[0, 0, :4] = -1  # left padding of different lengths
    seq[2, 0, :7] = -1
    batch = {"users": torch.arange(5).view(5, 1), "seq": seq}
    grads = PerUserGradients(model, "vmap")
    losses = grads.attach(batch)
    assert grads.mode == "vmap"
    for i in range(5):
        model.zero_grad()
        loss = model.loss(_user_slice(batch, i))  # trims padding, boolean-indexes targets
        loss.backward()
        assert losses[i] == pytest.approx(float(loss), rel=1e-5)
        for name, p in model.named_parameters():
            expected = p.grad if p.grad is not None else torch.zeros_like(p)
            torch.testing.assert_close(p.grad_sample[i], expected, rtol=1e-4, atol=1e-6,
                                       msg=name)


def _dpsgd(model, train, epsilon, clip, users_per_step, user_state="shared"):
    from recframe.privacy.dpsgd import DPSGD

    settings = read_privacy(OmegaConf.create({
        "name": "dpsgd", "epsilon": epsilon, "delta": "auto", "max_grad_norm": clip,
        "users_per_step": users_per_step, "examples_per_user": 3, "accountant": "rdp",
        "grad_sample": "vmap", "audit_users": 0.0, "user_state": user_state}))
    info = type("D", (), {"info": type("I", (), {"n_users": train.shape[0]})(),
                          "train": train})()
    return DPSGD(settings, model, info, seed=0, max_epochs=2, model_name="bpr",
                 batch_kwargs={"train": train, "num_negatives": 2})


def _step(dp, model, batch):
    opt = dp.wrap_optimizer(torch.optim.SGD(model.parameters(), lr=1.0))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt.zero_grad()
    dp.grads.attach(batch)
    grads = {n: p.grad_sample.clone() for n, p in model.named_parameters()}
    opt.step()
    return before, grads


def test_dp_step_without_noise_is_the_sum_of_clipped_user_gradients_over_expected_users():
    train = _train()
    model = _bpr(*train.shape)
    dp = _dpsgd(model, train, None, 0.05, users_per_step=6)  # no noise, tight clipping
    batch = dp.batches[0]
    before, grads = _step(dp, model, batch)
    norms = torch.sqrt(sum(g.flatten(1).pow(2).sum(1) for g in grads.values()))
    factor = (0.05 / (norms + 1e-6)).clamp(max=1.0)
    for name, p in model.named_parameters():
        expected = (factor.view(-1, *[1] * (grads[name].dim() - 1)) * grads[name]).sum(0)
        torch.testing.assert_close(before[name] - p.detach(), expected / dp.expected_users,
                                   rtol=1e-4, atol=1e-7)
    assert dp.noise_multiplier == 0 and dp.epsilon() == math.inf


def test_local_user_state_clips_and_noises_only_the_shared_parameters():
    """user_state=local: the user table steps by each user's own unclipped gradient
    (rows of users not drawn stay put), the item table by the clipped, noised sum."""
    train = _train(n_users=40, n_items=9)
    model = _bpr(*train.shape)
    dp = _dpsgd(model, train, 1.0, 0.05, users_per_step=10, user_state="local")
    assert dp.noise_multiplier > 0
    opt = dp.wrap_optimizer(torch.optim.SGD(model.parameters(), lr=1.0))
    assert all(p is not model.user_emb.weight for g in opt.param_groups for p in g["params"])
    batch = dp.batches[0]
    drawn = torch.unique(batch["users"])
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt.zero_grad()
    dp.grads.attach(batch)
    user_grads = model.user_emb.weight.grad_sample.clone()
    item_grads = model.item_emb.weight.grad_sample.clone()
    # the DPSGD step (what the training loop calls), on this batch
    for p in dp.local.values():
        p.grad = p.grad_sample.sum(0) / dp.expected_users
        del p.grad_sample
    opt.step()
    dp.local_optimizer.step()
    moved = before["user_emb.weight"] - model.user_emb.weight.detach()
    torch.testing.assert_close(moved, user_grads.sum(0) / dp.expected_users)  # unclipped
    others = torch.ones(train.shape[0], dtype=torch.bool)
    others[drawn] = False
    assert torch.equal(moved[others], torch.zeros_like(moved[others]))  # no noise
    # the item table: each user's item gradient clipped on its own norm (the user rows
    # do not count), summed, plus Gaussian noise of std sigma * C / expected users
    item_moved = before["item_emb.weight"] - model.item_emb.weight.detach()
    norms = item_grads.flatten(1).norm(dim=1)
    factor = (0.05 / (norms + 1e-6)).clamp(max=1.0).view(-1, 1, 1)
    noise = item_moved - (factor * item_grads).sum(0) / dp.expected_users
    expected_norm = dp.noise_multiplier * 0.05 / dp.expected_users * math.sqrt(noise.numel())
    assert 0.6 * expected_norm < float(noise.norm()) < 1.4 * expected_norm
    assert dp.record()["local_parameters"] == ["user_emb.weight"]


def test_local_user_state_needs_per_user_parameters():
    from recframe_seq.sasrec import SASRec

    train = _train()
    model = SASRec(n_items=9, max_seq_len=4, embedding_dim=4, ffn_dim=4)
    with pytest.raises(ConfigError, match="no per-user parameters"):
        _dpsgd(model, train, 1.0, 1.0, users_per_step=4, user_state="local")
    with pytest.raises(ConfigError, match="user_state must be one of"):
        _dpsgd(_bpr(*train.shape), train, 1.0, 1.0, users_per_step=4, user_state="mine")


def test_dp_noise_and_accountant_reach_the_target_epsilon():
    train = _train(n_users=200, n_items=20)
    model = _bpr(*train.shape)
    dp = _dpsgd(model, train, 2.0, 1.0, users_per_step=20)
    assert dp.noise_multiplier > 0.5
    opt = dp.wrap_optimizer(torch.optim.SGD(model.parameters(), lr=0.1))
    for epoch in range(2):
        dp.batches.set_epoch(epoch)
        for b in range(len(dp.batches)):
            opt.zero_grad()
            dp.grads.attach(dp.batches[b])
            opt.step()
    assert len(dp.accountant.history) or dp.accountant.history == []
    assert dp.epsilon() == pytest.approx(2.0, abs=0.05)  # planned steps: spent = target


def test_bad_privacy_settings_are_coded_errors():
    def read(**kw):
        base = {"name": "dpsgd", "epsilon": 1.0, "max_grad_norm": 1.0, "users_per_step": 8,
                "examples_per_user": 2}
        return read_privacy(OmegaConf.create({**base, **kw}))

    with pytest.raises(ConfigError, match="epsilon must be > 0"):
        read(epsilon=0)
    with pytest.raises(ConfigError, match="delta must be in"):
        read(delta=1.0)
    with pytest.raises(ConfigError, match="clipping bound"):
        read(max_grad_norm=-1)
    assert read(epsilon=None).epsilon == math.inf


def test_analytic_gaussian_is_tight_and_below_the_classic_bound():
    from scipy.stats import norm

    for eps, delta in [(0.5, 1e-5), (1.0, 1e-3), (4.0, 1e-3)]:
        sigma = analytic_gaussian_sigma(eps, delta)
        prof = norm.cdf(0.5 / sigma - eps * sigma) - math.exp(eps) * norm.cdf(
            -0.5 / sigma - eps * sigma)
        assert prof <= delta * 1.0001 and prof >= delta * 0.99
        if eps < 1:
            assert sigma <= math.sqrt(2 * math.log(1.25 / delta)) / eps


def test_capped_matrix_keeps_at_most_cap_of_each_users_items():
    train = _train(n_users=30, n_items=40)
    capped, n_capped = capped_matrix(train, 5, seed=0)
    lengths = np.diff(capped.indptr)
    assert lengths.max() <= 5 and n_capped == int((np.diff(train.indptr) > 5).sum())
    assert (capped.multiply(train) != capped).nnz == 0  # a subset of the user's items


def test_mia_auc_equals_the_pairwise_count():
    from recframe.privacy.audit import AuditInput
    from recframe_privacy.mia import auc, mia_auc

    rng = np.random.default_rng(0)
    members = rng.integers(0, 6, 40).astype(float)  # many ties
    non = rng.integers(0, 5, 30).astype(float)
    brute = np.mean([(a > b) + 0.5 * (a == b) for a in members for b in non])
    assert auc(members, non) == pytest.approx(brute)
    out = mia_auc(AuditInput(members, non, seed=3))
    assert out["ci95"][0] <= out["value"] <= out["ci95"][1]
    assert auc(np.ones(5), np.ones(4)) == 0.5


@pytest.mark.slow  # a full run (~30 s on 2 cores)
def test_dpsgd_run_records_epsilon_and_the_audit(compose, tmp_path):
    from recframe.runner import run_experiment

    cfg = compose("model=bpr", "privacy=dpsgd", "privacy.epsilon=4", "trainer.max_epochs=2",
                  "privacy.users_per_step=32", "metrics.names=[ndcg,mia_auc]")
    results = run_experiment(cfg, tmp_path / "run")
    priv = results["privacy"]
    assert priv["epsilon"] == pytest.approx(4.0, abs=0.1)
    assert len(priv["epsilon_per_epoch"]) == 2
    assert priv["epsilon_per_epoch"][0]["epsilon"] < priv["epsilon"]
    assert priv["grad_sample"] == "vmap" and priv["steps"] == priv["planned_steps"]
    assert 0.0 <= results["metrics"]["audit"]["mia_auc"] <= 1.0
    assert results["protocol"]["counts"]["audit_held_out_users"] == 30

    from recframe.report import build_report

    report = build_report(tmp_path, tmp_path / "report")
    text = (tmp_path / "report" / "report.md").read_text()
    assert "Privacy-utility frontier" in text and "| bpr | dpsgd | 4.00 |" in text
    assert (tmp_path / "report" / "privacy_frontier.png") in report.files


def test_private_training_refuses_lightgcn_and_closed_form(compose, tmp_path):
    from recframe.runner import run_experiment

    with pytest.raises(ConfigError, match="per-user sensitivity is unbounded"):
        run_experiment(compose("model=lightgcn", "privacy=dpsgd"), tmp_path / "a")
    with pytest.raises(ConfigError, match="privacy=dp_stats"):
        run_experiment(compose("model=pop", "privacy=dpsgd"), tmp_path / "b")


@pytest.mark.slow  # a full run (~30 s on 2 cores)
@pytest.mark.parametrize("model", ["pop", "ease", "itemknn"])
def test_dp_stats_fits_closed_form_models(compose, tmp_path, model):
    from recframe.runner import run_experiment

    results = run_experiment(compose(f"model={model}", "privacy=dp_stats",
                                     "privacy.epsilon=1"), tmp_path / model)
    assert results["status"] == "ok"
    assert results["privacy"]["statistic"] in ("item_counts", "gram")
    assert results["privacy"]["sigma"] > 0


def test_k_anonymize_every_combination_holds_k_users():
    import pandas as pd

    from recframe_preprocess.kanon import k_anonymize

    rng = np.random.default_rng(0)
    n = 300
    users = pd.DataFrame({"age": rng.integers(18, 70, n),
                          "gender": rng.choice(["M", "F"], n),
                          "zip": [f"{z:05d}" for z in rng.integers(0, 99999, n)]})
    for k in (2, 5, 20):
        out, rec = k_anonymize(users, ["age", "gender", "zip"], k, 0.02)
        kept = out[out["age"] >= 0]
        sizes = kept.groupby(["age", "gender", "zip"]).size()
        assert sizes.min() >= k and rec["k_achieved"] == sizes.min()
        assert rec["suppressed_users"] <= int(0.02 * n)
        assert rec["entropy_lost_bits"] > 0
        assert out["age"].dtype == users["age"].dtype  # numeric columns stay numeric


def test_k_anonymize_on_ml100k(ml100k_dir):
    from recframe_datasets.movielens import read_users
    from recframe_preprocess.kanon import k_anonymize

    users = read_users(ml100k_dir / "u.user")
    _, rec = k_anonymize(users, list(users.columns), 10, 0.02)
    assert rec["k_achieved"] >= 10
    assert rec["levels"] == {"age": 2, "gender": 0, "occupation": 2, "zip": 5}
    assert rec["suppressed_users"] == 6 and rec["entropy_lost_bits"] == pytest.approx(16.4821)

"""Collaborative-filtering models (recframe_cf): itemknn, ease, ials, lightgcn and multvae beat Pop
on planted data, match brute-force references, survive checkpoint reloads, and validate
their parameters."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from recframe.api import fit_model
from recframe.errors import ConfigError
from recframe.pipeline import prepare, resolve
from recframe.plugin.manager import default_manager
from recframe.runner import run_experiment

# Extra overrides for the 8-epoch FAST runs (closed-form models need none).
MODELS: dict[str, list[str]] = {
    "itemknn": [],
    "ease": [],
    "ials": [],
    "lightgcn": ["model.lr=0.01", "model.batch_size=512"],
    # 300 users: 32-user batches give an 8-epoch run 80 steps (the paper's 500 would give 8)
    "multvae": ["model.batch_size=32", "model.lr=0.003"],
}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def synthetic():
    """The FAST synthetic split, encoded once for the direct (no-runner) checks."""
    from recframe.hydra_app import compose_config
    from tests.conftest import FAST

    cfg = compose_config([*FAST, "model=pop"])
    return prepare(cfg, resolve(cfg, default_manager())).data


def _build(name: str, info, **params):
    from tests.conftest import REPO

    cfg = OmegaConf.merge(OmegaConf.load(REPO / "conf" / "model" / f"{name}.yaml"), params)
    return default_manager().models.get(name).build(info, cfg)


def _fitted(name: str, data, **params):
    torch.manual_seed(0)
    model = _build(name, data.info, **params)
    fit_model(model, data, epochs=2, lr=0.01, batch_size=512)
    return model.eval()


def _context(data, users: torch.Tensor) -> dict[str, torch.Tensor]:
    seen = data.train[users.numpy()].tocoo()
    return {"seen_rows": torch.from_numpy(seen.row).long(),
            "seen_cols": torch.from_numpy(seen.col).long()}


def _scores(model, data, users: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.score(users, _context(data, users))


# -- quality and the score contract -------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_beats_pop_on_planted_structure(name, compose, tmp_path, pop_ndcg):
    results = run_experiment(compose(f"model={name}", *MODELS[name]), tmp_path)
    ndcg = results["metrics"]["test"]["ndcg@10"]
    assert ndcg > 1.5 * pop_ndcg, (name, ndcg, pop_ndcg)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_score_shape_dtype_finite_and_batch_independent(name, synthetic):
    model = _fitted(name, synthetic)
    users = torch.arange(0, 60, 2)
    scores = _scores(model, synthetic, users)
    assert scores.shape == (len(users), synthetic.info.n_items)
    assert scores.dtype == torch.float32 and torch.isfinite(scores).all()
    # a user's scores do not depend on who else is in the batch
    alone = torch.cat([_scores(model, synthetic, users[i:i + 7]) for i in range(0, len(users), 7)])
    torch.testing.assert_close(alone, scores, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["itemknn", "ease", "ials"])
def test_fitted_state_survives_a_state_dict_round_trip(name, synthetic):
    model = _fitted(name, synthetic)
    fresh = _build(name, synthetic.info)
    fresh.load_state_dict(model.state_dict())
    fresh.eval()
    users = torch.arange(50)
    assert torch.equal(_scores(fresh, synthetic, users), _scores(model, synthetic, users))


# -- closed forms against brute-force references ------------------------------------------


def _shrunk_cosine(x: np.ndarray, shrink: float) -> np.ndarray:
    co = x.T @ x
    norms = np.sqrt(np.diag(co))
    sim = co / (np.outer(norms, norms) + shrink + 1e-12)
    np.fill_diagonal(sim, 0.0)
    return sim


@pytest.mark.parametrize("normalize", [False, True])
def test_itemknn_without_pruning_matches_brute_force_scores(synthetic, normalize):
    n_items, shrink = synthetic.info.n_items, 3.0
    model = _fitted("itemknn", synthetic, neighbours=n_items, shrink=shrink, normalize=normalize)
    x = synthetic.train.toarray().astype(np.float64)
    sim = _shrunk_cosine(x, shrink)
    if normalize:
        sim /= np.maximum(sim.sum(1, keepdims=True), 1e-12)
    expected = torch.from_numpy(x[:40] @ sim).float()
    torch.testing.assert_close(_scores(model, synthetic, torch.arange(40)), expected,
                               rtol=1e-4, atol=1e-5)


def test_itemknn_keeps_each_items_largest_similarities(synthetic):
    k, shrink = 15, 3.0
    model = _fitted("itemknn", synthetic, neighbours=k, shrink=shrink, normalize=False)
    sim = _shrunk_cosine(synthetic.train.toarray().astype(np.float64), shrink)
    top = -np.sort(-sim, axis=1)[:, :k]  # compared as sorted values: ties may swap items
    np.testing.assert_allclose(model.neighbour_sims.numpy(), top, rtol=1e-5, atol=1e-7)
    kept = np.take_along_axis(sim, model.neighbour_items.numpy(), axis=1)
    np.testing.assert_allclose(kept, top, rtol=1e-5, atol=1e-7)


def test_ease_matches_the_closed_form(synthetic):
    l2 = 50.0
    model = _fitted("ease", synthetic, l2=l2)
    x = synthetic.train.toarray().astype(np.float64)
    p = np.linalg.inv(x.T @ x + l2 * np.eye(x.shape[1]))
    b = np.eye(x.shape[1]) - p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    torch.testing.assert_close(model.weights, torch.from_numpy(b).float(), rtol=1e-4, atol=1e-5)
    assert torch.all(model.weights.diagonal() == 0)


def _ials_reference(x: np.ndarray, items: np.ndarray, alpha: float, reg: float) -> np.ndarray:
    """One user half-sweep solved user by user, straight from Hu et al.'s equations."""
    f = items.shape[1]
    out = np.zeros((x.shape[0], f))
    for u in range(x.shape[0]):
        c = 1.0 + alpha * x[u]
        a = items.T @ (c[:, None] * items) + reg * np.eye(f)
        out[u] = np.linalg.solve(a, items.T @ (c * x[u]))
    return out


def test_ials_exact_solver_matches_per_user_solves(synthetic, monkeypatch):
    import recframe_cf.ials as ials

    monkeypatch.setattr(ials, "_CHUNK_CELLS", 8 * 8 * 20)  # many small chunks
    alpha, reg = 4.0, 2.0
    torch.manual_seed(0)
    model = _build("ials", synthetic.info, factors=8, iterations=1, alpha=alpha, reg=reg)
    items0 = model.item_factors.double().numpy().copy()
    model.double()
    model.fit(synthetic)
    x = synthetic.train.toarray().astype(np.float64)
    users = _ials_reference(x, items0, alpha, reg)
    items = _ials_reference(x.T, users, alpha, reg)
    np.testing.assert_allclose(model.user_factors.numpy(), users, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(model.item_factors.numpy(), items, rtol=1e-6, atol=1e-8)


def test_ials_cg_converges_to_the_exact_solution(synthetic):
    params = {"factors": 8, "iterations": 3, "alpha": 4.0, "reg": 2.0}
    exact = _fitted("ials", synthetic, **params)
    cg = _fitted("ials", synthetic, solver="cg", cg_steps=16, **params)
    torch.testing.assert_close(cg.user_factors, exact.user_factors, rtol=1e-3, atol=1e-4)
    few = _fitted("ials", synthetic, solver="cg", cg_steps=2, **params)
    users = torch.arange(60)
    assert torch.isfinite(_scores(few, synthetic, users)).all()


# -- LightGCN ---------------------------------------------------------------------------


def test_lightgcn_adjacency_is_symmetric_normalized(synthetic):
    model = _build("lightgcn", synthetic.info)
    model.prepare(synthetic)
    adj = model.adjacency.to_dense().double().numpy()
    x = synthetic.train.toarray().astype(np.float64)
    n_users = x.shape[0]
    a = np.block([[np.zeros((n_users, n_users)), x], [x.T, np.zeros((x.shape[1],) * 2)]])
    deg = a.sum(1)
    inv = np.where(deg > 0, 1.0 / np.sqrt(np.maximum(deg, 1e-12)), 0.0)
    np.testing.assert_allclose(adj, inv[:, None] * a * inv[None, :], rtol=1e-6, atol=1e-7)
    assert "adjacency" not in model.state_dict()


def test_lightgcn_gradient_through_propagation_is_exact(synthetic):
    model = _build("lightgcn", synthetic.info, embedding_dim=4, layers=2)
    model.prepare(synthetic)
    model.double()
    users_f, items_f = model.propagate()
    (users_f.sum() + (items_f ** 2).sum()).backward()
    got = model.item_emb.weight.grad.clone()
    model.zero_grad()
    dense = model.adjacency.to_dense()
    ego = torch.cat([model.user_emb.weight, model.item_emb.weight])
    total, layer = ego, ego
    for _ in range(2):
        layer = dense @ layer
        total = total + layer
    final = total / 3
    n_users = synthetic.info.n_users
    (final[:n_users].sum() + (final[n_users:] ** 2).sum()).backward()
    torch.testing.assert_close(got, model.item_emb.weight.grad)


def test_lightgcn_eval_cache_follows_training_and_checkpoint_loads(synthetic):
    model = _fitted("lightgcn", synthetic)
    users = torch.arange(30)

    def fresh() -> torch.Tensor:
        users_f, items_f = model.propagate()
        return (users_f[users] @ items_f.T).detach()

    first = _scores(model, synthetic, users)
    assert model._cache is not None  # cached in eval mode
    torch.testing.assert_close(first, fresh())
    state = {k: v.clone() for k, v in model.state_dict().items()}
    # a training step moves the embeddings: the cache must not serve stale scores
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    batch = {"users": users, "pos": torch.zeros(30, dtype=torch.long),
             "neg": torch.ones(30, 1, dtype=torch.long)}
    model.loss(batch).backward()
    opt.step()
    model.eval()
    second = _scores(model, synthetic, users)
    assert not torch.allclose(first, second)
    torch.testing.assert_close(second, fresh())
    # loading a checkpoint in eval mode (Lightning's test(ckpt_path="best")) as well
    model.load_state_dict(state)
    torch.testing.assert_close(_scores(model, synthetic, users), first)


# -- parameter validation -----------------------------------------------------------------


@pytest.mark.parametrize(("name", "key", "value"), [
    ("itemknn", "neighbours", 0),
    ("itemknn", "neighbours", 2.5),
    ("itemknn", "shrink", -1.0),
    ("itemknn", "normalize", "yes"),
    ("ease", "l2", 0.0),
    ("ease", "l2", "big"),
    ("ease", "max_items", 0),
    ("ials", "factors", 0),
    ("ials", "iterations", True),
    ("ials", "alpha", -1.0),
    ("ials", "reg", 0.0),
    ("ials", "solver", "lu"),
    ("ials", "cg_steps", 0),
    ("ials", "init_std", 0.0),
    ("lightgcn", "embedding_dim", 0),
    ("lightgcn", "layers", -1),
    ("lightgcn", "reg", -1e-4),
    ("lightgcn", "num_negatives", 0),
    ("lightgcn", "init_std", -0.1),
    ("multvae", "hidden_dim", 0),
    ("multvae", "latent_dim", 1.5),
    ("multvae", "dropout", 1.0),
    ("multvae", "anneal_cap", -0.1),
    ("multvae", "total_anneal_steps", -1),
])
def test_bad_parameters_raise_config_error_naming_the_key(name, key, value, synthetic):
    with pytest.raises(ConfigError, match=rf"model\.{key}"):
        _build(name, synthetic.info, **{key: value})


@pytest.mark.parametrize("name", sorted(MODELS))
def test_code_defaults_match_the_shipped_config(name, synthetic):
    def hyper(model) -> dict:
        return {k: v for k, v in vars(model).items()
                if not k.startswith("_") and isinstance(v, (bool, int, float, str))}

    bare = default_manager().models.get(name).build(synthetic.info, OmegaConf.create({}))
    assert hyper(bare) == hyper(_build(name, synthetic.info))


def test_ease_refuses_catalogues_above_max_items(synthetic):
    with pytest.raises(ConfigError, match=r"model\.max_items.*dense"):
        _build("ease", synthetic.info, max_items=synthetic.info.n_items - 1)


def test_lightgcn_zero_layers_is_matrix_factorization(synthetic):
    model = _fitted("lightgcn", synthetic, layers=0)
    users = torch.arange(10)
    expected = model.user_emb.weight[users] @ model.item_emb.weight.T
    torch.testing.assert_close(_scores(model, synthetic, users), expected.detach())


@pytest.mark.parametrize("num_negatives", [1, 3])
def test_bpr_hand_written_backward_matches_autograd(num_negatives):
    """BPR's loss has its own backward; value and gradients must equal autograd's,
    repeated users/items in the batch included (their rows accumulate)."""
    from recframe_cf.bpr import BPRMF, _BPRLoss

    torch.manual_seed(0)
    model = BPRMF(30, 20, embedding_dim=8, init_std=0.5, num_negatives=num_negatives)
    batch = {"users": torch.randint(0, 30, (64,)), "pos": torch.randint(0, 20, (64,)),
             "neg": torch.randint(0, 20, (64, num_negatives))}
    results = []
    for loss_fn in (model.loss, model.reference_loss):
        model.zero_grad(set_to_none=True)
        loss = loss_fn(batch)
        loss.backward()
        results.append((loss.detach(), model.user_emb.weight.grad.clone(),
                        model.item_emb.weight.grad.clone()))
    (loss, grad_u, grad_i), (ref_loss, ref_u, ref_i) = results
    torch.testing.assert_close(loss, ref_loss)
    torch.testing.assert_close(grad_u, ref_u)
    torch.testing.assert_close(grad_i, ref_i)
    assert grad_i.abs().sum() > 0 and grad_u.abs().sum() > 0
    # and through torch's numerical gradient check, in float64
    model = model.double()
    check = torch.autograd.gradcheck(
        lambda uw, iw: _BPRLoss.apply(uw, iw, batch["users"][:5], batch["pos"][:5],
                                      batch["neg"][:5]),
        (model.user_emb.weight.detach().clone().requires_grad_(),
         model.item_emb.weight.detach().clone().requires_grad_()))
    assert check


@pytest.mark.parametrize("num_negatives", [1, 3])
def test_bpr_sparse_gradients_equal_the_dense_ones(num_negatives):
    """model.sparse_grad: sparse COO rows that sum to the dense gradient (L2 term too),
    and one SparseAdam step moves only the rows the batch touched."""
    from recframe_cf.bpr import BPRMF

    batch = {"users": torch.tensor([0, 3, 3, 7]), "pos": torch.tensor([1, 1, 4, 5]),
             "neg": torch.tensor([[2] * num_negatives, [5] * num_negatives,
                                  [6] * num_negatives, [1] * num_negatives])}
    grads = []
    for sparse in (False, True):
        torch.manual_seed(0)
        model = BPRMF(10, 9, embedding_dim=4, init_std=0.5, reg=0.1,
                      num_negatives=num_negatives, sparse_grad=sparse)
        model.loss(batch).backward()
        grads.append((model.user_emb.weight.grad, model.item_emb.weight.grad))
    (dense_u, dense_i), (sparse_u, sparse_i) = grads
    assert sparse_u.is_sparse and sparse_i.is_sparse
    torch.testing.assert_close(sparse_u.to_dense(), dense_u)
    torch.testing.assert_close(sparse_i.to_dense(), dense_i)
    before = model.user_emb.weight.detach().clone()
    torch.optim.SparseAdam(model.parameters(), lr=0.1).step()
    moved = (model.user_emb.weight.detach() != before).any(1).nonzero().flatten().tolist()
    assert moved == [0, 3, 7]


@pytest.mark.parametrize("per_user", [3, 40])  # sparse path (< 5% seen) and dense path
def test_history_matmul_equals_the_dense_product(per_user):
    from recframe.api import dense_history, history_matmul

    gen = torch.Generator().manual_seed(0)
    batch, n_items = 16, 200
    rows = torch.arange(batch).repeat_interleave(per_user)
    cols = torch.stack([torch.randperm(n_items, generator=gen)[:per_user]
                        for _ in range(batch)]).reshape(-1)
    context = {"seen_rows": rows, "seen_cols": cols}
    weights = torch.randn(n_items, 7, generator=gen)
    expected = dense_history(context, batch, n_items) @ weights
    torch.testing.assert_close(history_matmul(context, batch, weights), expected)
    # a user with no history gets zeros, not an error
    torch.testing.assert_close(history_matmul(context, batch + 2, weights)[-2:],
                               torch.zeros(2, 7))


def test_multvae_loss_matches_the_dense_formula(synthetic):
    """Mult-VAE's loss from coordinates (sparse first layer, gathered likelihood) equals
    the paper's dense formula: -sum_i x_ui log softmax(f(z))_i + beta KL, beta annealed."""
    from recframe.train.batches import MatrixBatches

    model = _build("multvae", synthetic.info, dropout=0.0, hidden_dim=16, latent_dim=4,
                   total_anneal_steps=100, anneal_cap=0.2)
    batch = MatrixBatches(synthetic.train, 40, seed=0)[0]
    x = torch.from_numpy(synthetic.train[batch["users"].numpy()].toarray())
    model.anneal_step.fill_(3)
    torch.manual_seed(1)
    loss = model.loss(batch)

    torch.manual_seed(1)
    h = torch.tanh(torch.nn.functional.normalize(x, dim=1) @ model.enc_in + model.enc_in_bias)
    mu, logvar = model.enc_out(h).chunk(2, dim=-1)
    z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
    nll = -(torch.log_softmax(model._decode(z), dim=-1) * x).sum(1).mean()
    kl = (-0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum(1)).mean()
    torch.testing.assert_close(loss, nll + 3 / 100 * kl)  # beta = min(cap, step / total)
    assert int(model.anneal_step) == 4  # one training step taken
    model.anneal_step.fill_(1000)
    assert model.beta() == 0.2  # capped
    model.eval()  # scoring decodes mu, with no dropout and no step counted
    torch.testing.assert_close(model.score(batch["users"], batch),
                               model._decode(mu).detach(), rtol=1e-5, atol=1e-5)
    assert int(model.anneal_step) == 1000


def test_item_item_models_refuse_what_would_not_fit(monkeypatch):
    """E940: ease and itemknn compare their formula with the memory available."""
    import recframe.models.memory as memory
    from recframe.api import DataInfo
    from recframe.errors import ConfigError
    from recframe_cf.ease import build_ease
    from recframe_cf.itemknn import build_itemknn

    info = DataInfo(n_users=10, n_items=20_000)
    monkeypatch.setattr(memory, "available_memory", lambda: 12 * 20_000**2 - 1)
    with pytest.raises(ConfigError, match=r"'ease' needs about 4\.5 GiB"):
        build_ease(info, OmegaConf.create({"max_items": 30_000}))
    assert build_itemknn(info, OmegaConf.create({"neighbours": 50})) is not None
    monkeypatch.setattr(memory, "available_memory", lambda: 12 * 20_000 * 50)
    with pytest.raises(ConfigError, match="'itemknn' needs about"):
        build_itemknn(info, OmegaConf.create({"neighbours": 50}))

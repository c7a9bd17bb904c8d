"""MLP models (recframe_mlp): neumf and mlp_ctr beat Pop on planted data; scoring is
consistent with training; parameters are validated."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from recframe.errors import ConfigError
from recframe.pipeline import prepare, resolve
from recframe.plugin.manager import default_manager
from recframe.runner import run_experiment

MODELS = {
    "neumf": ["model.lr=0.005"],
    "mlp_ctr": [],
}


def _built(compose, name: str, *overrides: str):
    cfg = compose(f"model={name}", *overrides)
    plan = resolve(cfg, default_manager())
    data = prepare(cfg, plan).data
    model = plan.model.build(data.info, cfg.model)
    model.prepare(data)
    return model, data


def _context(data, users: torch.Tensor) -> dict[str, torch.Tensor]:
    seen = data.train[users.numpy()].tocoo()
    return {"seen_rows": torch.from_numpy(seen.row).long(),
            "seen_cols": torch.from_numpy(seen.col).long()}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_beats_pop_on_planted_structure(name, compose, tmp_path, pop_ndcg):
    results = run_experiment(compose(f"model={name}", *MODELS[name]), tmp_path)
    ndcg = results["metrics"]["test"]["ndcg@10"]
    assert ndcg > 1.1 * pop_ndcg, (name, ndcg, pop_ndcg)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_score_all_items_matches_pairwise_logits(name, compose, monkeypatch):
    import recframe_mlp._tower as tower

    monkeypatch.setattr(tower, "MAX_CELLS", 1000)  # many item chunks
    model, data = _built(compose, name, "model.dropout=0.3")
    model.eval()
    users = torch.arange(0, 40, 3)
    with torch.no_grad():
        scores = model.score(users, _context(data, users))
        assert scores.shape == (len(users), data.info.n_items)
        assert scores.dtype == torch.float32 and torch.isfinite(scores).all()
        u = users.repeat_interleave(data.info.n_items)
        i = torch.arange(data.info.n_items).repeat(len(users))
        if name == "neumf":
            pairwise = model.logits(u, i)
        else:  # the crossed rows' fields, context unknown (as CTRModel.score builds them)
            rows = model.owner_fields("user", u)
            rows.update(model.owner_fields("item", i))
            rows.update(model.zero_fields(len(u), ("context",), u.device))
            pairwise = model.logits(rows)
    torch.testing.assert_close(scores, pairwise.reshape(len(users), -1), rtol=1e-4, atol=1e-5)


def test_loss_is_finite_and_trains(compose):
    for name in MODELS:
        model, data = _built(compose, name)
        batch = {"users": torch.tensor([0, 1, 2, 0]), "items": torch.tensor([3, 4, 5, 6]),
                 "labels": torch.tensor([1.0, 1.0, 0.0, 0.0])}
        loss = model.loss(batch)
        loss.backward()
        assert torch.isfinite(loss)
        mlp = model.mlp if name == "neumf" else nn.ModuleList([model.first, model.rest, model.head])
        assert all(p.grad is not None for p in mlp.parameters())


def test_mlp_ctr_fields(compose):
    model, data = _built(compose, "mlp_ctr")
    names = set(model.embedding.field_names)
    assert {"user_id", "item_id", "category", "age", "segment"} <= names
    assert {f"genre_{j}" for j in range(8)} <= names
    assert names == {f.name for f in data.info.fields if f.kind != "text"}
    chosen, _ = _built(compose, "mlp_ctr", "model.fields=[item_id,category]")
    assert chosen.embedding.field_names == ("item_id", "category")
    dropped, _ = _built(compose, "mlp_ctr", "model.exclude_fields=[category,age]")
    assert not {"category", "age"} & set(dropped.embedding.field_names)


@pytest.mark.parametrize(("name", "override", "key"), [
    ("neumf", "model.hidden=[]", "model.hidden"),
    ("neumf", "model.gmf_dim=0", "model.gmf_dim"),
    ("neumf", "model.num_negatives=0", "model.num_negatives"),
    ("neumf", "model.dropout=1.5", "model.dropout"),
    ("neumf", "model.reg=-1", "model.reg"),
    ("mlp_ctr", "model.fields=[nope]", "model.fields"),
    ("mlp_ctr", "model.exclude_fields=[nope]", "model.exclude_fields"),
    ("mlp_ctr", "model.hidden=[64,x]", "model.hidden"),
    ("mlp_ctr", "model.embedding_dim=1.5", "model.embedding_dim"),
])
def test_bad_parameters_name_the_key(name, override, key, compose):
    cfg = compose(f"model={name}", override)
    pm = default_manager()
    plan = resolve(cfg, pm)
    info = prepare(cfg, plan).data.info
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        pm.models.get(name).build(info, cfg.model)


pytestmark = pytest.mark.usefixtures("one_thread")

"""Hybrid models (recframe_hybrid): lightfm_style (BPR and WARP) beats Pop on planted data;
the ensemble trains its components, fuses normalized scores, reloads from a checkpoint
and validates its components."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from recframe.errors import ConfigError
from recframe.pipeline import prepare, resolve
from recframe.plugin.manager import default_manager
from recframe.runner import run_experiment
from recframe_hybrid.ensemble import normalize

BPR_A = {"name": "bpr", "weight": 0.5, "epochs": 25, "lr": 0.01, "embedding_dim": 32, "seed": 0}
BPR_B = {"name": "bpr", "weight": 0.5, "epochs": 25, "lr": 0.01, "embedding_dim": 48, "seed": 1}


def _ensemble_cfg(compose, components, *overrides: str):
    cfg = compose("model=ensemble", *overrides)
    cfg.model.components = OmegaConf.create(components)
    return cfg


def _data(compose):
    cfg = compose("model=lightfm_style")
    return prepare(cfg, resolve(cfg, default_manager())).data


def _context(data, users: torch.Tensor) -> dict[str, torch.Tensor]:
    seen = data.train[users.numpy()].tocoo()
    return {"seen_rows": torch.from_numpy(seen.row).long(),
            "seen_cols": torch.from_numpy(seen.col).long()}


@pytest.mark.parametrize("overrides", [["model.loss=bpr", "model.num_negatives=1"], []],
                         ids=["bpr", "warp"])
def test_lightfm_style_beats_pop(overrides, compose, tmp_path, pop_ndcg):
    results = run_experiment(compose("model=lightfm_style", *overrides), tmp_path)
    ndcg = results["metrics"]["test"]["ndcg@10"]
    assert ndcg > 1.1 * pop_ndcg, (ndcg, pop_ndcg)


def test_lightfm_style_scores_and_features(compose):
    data = _data(compose)
    cfg = compose("model=lightfm_style", "model.loss=warp", "model.num_negatives=5")
    model = default_manager().models.get("lightfm_style").build(data.info, cfg.model)
    model.prepare(data)
    assert {s.name for s in model.items.specs} == {"category", *(f"genre_{j}" for j in range(8))}
    assert {s.name for s in model.users.specs} == {"age", "segment"}
    assert float(model.users.numeric.max()) == pytest.approx(1.0)  # max-abs scaled age
    users = torch.arange(10)
    scores = model.score(users, _context(data, users))
    assert scores.shape == (10, data.info.n_items)
    assert scores.dtype == torch.float32 and torch.isfinite(scores).all()
    # the item representation is the normalized sum of id and feature embeddings
    items = model.items
    i = 7
    weight = 1.0 + items.numeric[i].abs().sum() + len(items.cats)
    expect = items.ids.weight[i] + items.numeric[i] @ items.numeric_emb + sum(
        emb.weight[items.codes[i, c]] for c, emb in enumerate(items.cats))
    torch.testing.assert_close(items(torch.tensor([i]))[0], expect / weight)
    batch = {"users": torch.tensor([0, 1]), "pos": torch.tensor([2, 3]),
             "neg": torch.tensor([[4, 5, 6, 7, 8], [9, 10, 11, 12, 13]])}
    loss = model.loss(batch)
    loss.backward()
    assert torch.isfinite(loss) and loss >= 0


def test_lightfm_style_without_user_features(compose):
    data = _data(compose)
    cfg = compose("model=lightfm_style", "model.use_user_features=false",
                  "model.use_biases=false", "model.item_feature_columns=[genre_0]")
    model = default_manager().models.get("lightfm_style").build(data.info, cfg.model)
    model.prepare(data)
    assert model.users.specs == () and model.item_bias is None
    assert model.items.numeric.shape == (data.info.n_items, 1)
    assert torch.isfinite(model.score(torch.arange(3), {})).all()


def test_normalizations():
    scores = torch.tensor([[3.0, 1.0, 2.0, 2.0], [5.0, 5.0, 5.0, 5.0]])
    z = normalize(scores, "zscore")
    torch.testing.assert_close(z[0].mean(), torch.tensor(0.0))
    torch.testing.assert_close(z[0].std(unbiased=False), torch.tensor(1.0))
    assert torch.equal(z[1], torch.zeros(4))
    mm = normalize(scores, "minmax")
    torch.testing.assert_close(mm[0], torch.tensor([1.0, 0.0, 0.5, 0.5]))
    rk = normalize(scores, "rank")
    torch.testing.assert_close(rk[0], torch.tensor([1.0, 0.0, 1 / 3, 2 / 3]))
    for out in (z, mm, rk):
        assert torch.isfinite(out).all()


def test_ensemble_of_two_bprs_beats_one(compose, tmp_path, pop_ndcg):
    both = run_experiment(_ensemble_cfg(compose, [BPR_A, BPR_B]), tmp_path / "both")
    alone = run_experiment(_ensemble_cfg(compose, [BPR_A, {**BPR_B, "weight": 0}]),
                           tmp_path / "alone")
    assert both["status"] == "ok" and both["epochs_run"] == 1
    ens, one = (r["metrics"]["test"]["ndcg@10"] for r in (both, alone))
    assert one > 1.1 * pop_ndcg, (one, pop_ndcg)
    assert ens >= one, (ens, one)


def test_ensemble_reloads_from_checkpoint(compose):
    cfg = _ensemble_cfg(compose, [{**BPR_A, "epochs": 2},
                                  {"name": "pop", "weight": 0.3}], "model.normalization=rank")
    data = _data(compose)
    spec = default_manager().models.get("ensemble")
    model = spec.build(data.info, cfg.model)
    model.prepare(data)
    model.fit(data)
    users = torch.arange(20)
    ctx = _context(data, users)
    scores = model.score(users, ctx)
    assert scores.shape == (20, data.info.n_items) and torch.isfinite(scores).all()
    fresh = spec.build(data.info, cfg.model)
    fresh.load_state_dict(model.state_dict())
    fresh.prepare(data)
    fresh.eval()
    torch.testing.assert_close(fresh.score(users, ctx), scores)


@pytest.mark.parametrize(("components", "override", "key"), [
    ([BPR_A], None, "model.components"),
    ([BPR_A, {**BPR_B, "weight": "heavy"}], None, r"model\.components\[1\]\.weight"),
    ([BPR_A, {**BPR_B, "weight": -1}], None, r"model\.components\[1\]\.weight"),
    ([{**BPR_A, "weight": 0}, {**BPR_B, "weight": 0.0}], None, r"model\.components\[i\]\.weight"),
    ([BPR_A, {**BPR_B, "epochs": 0}], None, r"model\.components\[1\]\.epochs"),
    ([BPR_A, {"weight": 1}], None, r"model\.components\[1\]"),
    ([BPR_A, {**BPR_B, "embedding_dim": -3}], None, r"model\.components\[1\].*embedding_dim"),
    ([BPR_A, {**BPR_B, "name": "bprr"}], None, "bpr"),
    ([BPR_A, BPR_B], "model.normalization=softmax", "model.normalization"),
])
def test_ensemble_validation(components, override, key, compose):
    cfg = _ensemble_cfg(compose, components, *([override] if override else []))
    info = _data(compose).info
    with pytest.raises(ConfigError, match=key):
        default_manager().models.get("ensemble").build(info, cfg.model)


pytestmark = pytest.mark.usefixtures("one_thread")


def test_lightfm_style_sums_the_values_of_a_multi_valued_field():
    """Genres ``a|b`` declared multi_categorical: an item's vector is
    (id + E[a] + E[b]) / 3, each value one feature of weight 1 (LightFM)."""
    import numpy as np
    import pandas as pd
    import torch
    from omegaconf import OmegaConf

    from recframe.api import Dataset, Split
    from recframe.data import encode
    from recframe_hybrid.lightfm_style import build_lightfm_style

    items = pd.DataFrame({"genres": ["a|b", "b", ""]}, index=pd.Index([0, 1, 2], name="item_id"))
    rows = pd.DataFrame({"user_id": [0, 0, 1], "item_id": [0, 1, 2]})
    ds = Dataset(rows, items=items, meta={"fields": [
        {"name": "genres", "kind": "multi_categorical", "sep": "|"}]})
    empty = ds.with_interactions(rows.iloc[:0])
    data = encode(Split(ds, empty, empty), with_fields=True)
    model = build_lightfm_style(data.info, OmegaConf.create({"embedding_dim": 4}))
    model.prepare(data)
    bag = model.items
    e = bag.multi_emb[0].weight
    codes = data.field_table("item")["genres"]
    a, b = codes[0]
    want0 = (bag.ids.weight[0] + e[a] + e[b]) / 3
    want2 = bag.ids.weight[2] / 1
    got = bag(torch.tensor([0, 2]))
    torch.testing.assert_close(got[0], want0)
    torch.testing.assert_close(got[1], want2)
    assert np.array_equal(codes[1][codes[1] > 0], [b])  # "b" shares item 0's code

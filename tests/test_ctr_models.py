"""Click models over typed fields: the field layers (FieldEmbedding, FieldLinear), the
CTRModel base (POINTS rows from field tables, score == predict on crossed rows) and
the recframe_ctr zoo (lr, fm, deepfm, dcnv2, autoint, din) plus mlp_ctr."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

import recframe_ctr.plugin as ctr_plugin
from recframe.api import (
    ConfigError,
    CTRModel,
    DataInfo,
    FieldEmbedding,
    FieldLinear,
    FieldSpec,
    TrainFormat,
)
from recframe_ctr.din import ActivationUnit
from recframe_ctr.fm import fm_interaction
from recframe_mlp.mlp_ctr import build_mlp_ctr

N_USERS, N_ITEMS = 7, 11
FIELDS = (
    FieldSpec("user_id", "categorical", "user", vocab_size=N_USERS + 2),
    FieldSpec("age", "numeric", "user"),
    FieldSpec("item_id", "categorical", "item", vocab_size=N_ITEMS + 2),
    FieldSpec("genres", "multi_categorical", "item", vocab_size=6, max_len=3, pooling="mean"),
    FieldSpec("hour", "categorical", "context", vocab_size=5),
    FieldSpec("tags", "multi_categorical", "item", vocab_size=5, max_len=2, pooling="sum"),
    FieldSpec("hist", "sequence", "context", vocab_size=N_ITEMS + 2, max_len=4,
              shares="item_id"),
    FieldSpec("title", "text", "item"),
)
VECTOR_NAMES = ("user_id", "age", "item_id", "genres", "hour", "tags")


def _batch(n: int = 5, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    genres = torch.randint(0, 6, (n, 3), generator=g)
    genres[0] = 0  # a row of padding only
    genres[1] = torch.tensor([3, 0, 0])
    return {
        "user_id": torch.randint(0, N_USERS + 2, (n,), generator=g),
        "age": torch.randn(n, generator=g),
        "item_id": torch.randint(1, N_ITEMS + 2, (n,), generator=g),
        "genres": genres,
        "hour": torch.tensor([0, *torch.randint(1, 5, (n - 1,), generator=g).tolist()]),
        "tags": torch.randint(0, 5, (n, 2), generator=g),
        "hist": torch.tensor([[0, 0, 3, 4]] * n),
    }


# -- FieldEmbedding ----------------------------------------------------------------------


def test_field_embedding_shapes_order_and_padding():
    emb = FieldEmbedding(FIELDS, 8, init_std=0.1)
    assert emb.field_names == VECTOR_NAMES and emb.num_fields == 6
    assert emb.sequence_names == ("hist",)
    batch = _batch()
    out = emb(batch)
    assert out.shape == (5, 6, 8)
    cols = {n: out[:, j] for j, n in enumerate(emb.field_names)}
    # categorical: the field's own rows; padding code 0 -> zeros
    torch.testing.assert_close(cols["item_id"], emb.lookup("item_id", batch["item_id"]))
    assert torch.equal(cols["hour"][0], torch.zeros(8))
    assert cols["hour"][1:].abs().sum(-1).gt(0).all()
    # two fields with the same code use different rows
    same = torch.ones(1, dtype=torch.long) * 2
    assert not torch.equal(emb.lookup("user_id", same), emb.lookup("item_id", same))
    # numeric: value * a learned vector
    torch.testing.assert_close(cols["age"], batch["age"][:, None] * emb.numeric_weight[0])


def test_field_embedding_pools_multi_values_by_mean_or_sum_ignoring_padding():
    emb = FieldEmbedding(FIELDS, 4, init_std=0.1)
    batch = _batch(6)
    out = emb(batch)
    genres, tags = out[:, 3], out[:, 5]
    assert torch.equal(genres[0], torch.zeros(4))  # all padding -> zeros
    torch.testing.assert_close(genres[1], emb.lookup("genres", torch.tensor(3)))
    for r in range(6):
        codes = batch["genres"][r][batch["genres"][r] > 0]
        want = emb.lookup("genres", codes).mean(0) if len(codes) else torch.zeros(4)
        torch.testing.assert_close(genres[r], want)
        codes = batch["tags"][r][batch["tags"][r] > 0]
        torch.testing.assert_close(tags[r], emb.lookup("tags", codes).sum(0))
    # padding never trains
    out.sum().backward()
    assert torch.equal(emb.embedding.weight.grad[0], torch.zeros(4))


def test_sequence_uses_the_shared_table():
    emb = FieldEmbedding(FIELDS, 4, init_std=0.1)
    codes = torch.tensor([[0, 0, 3, 4], [0, 5, 6, 7]])
    seq, mask = emb.sequence("hist", codes)
    assert seq.shape == (2, 4, 4) and mask.dtype == torch.bool
    assert mask.tolist() == [[False, False, True, True], [False, True, True, True]]
    torch.testing.assert_close(seq, emb.lookup("item_id", codes))
    assert torch.equal(seq[0, :2], torch.zeros(2, 4))
    # the shared table exists even when the shared field is not an output
    only = FieldEmbedding(FIELDS, 4, include=["user_id", "hist"])
    assert only.field_names == ("user_id",)
    assert only.sequence("hist", codes)[0].shape == (2, 4, 4)


def test_include_exclude_and_unknown_names():
    emb = FieldEmbedding(FIELDS, 4, exclude=["age", "hist"])
    assert emb.field_names == ("user_id", "item_id", "genres", "hour", "tags")
    assert emb.sequence_names == ()
    assert FieldEmbedding(FIELDS, 4, include=["tags", "user_id"]).field_names == (
        "user_id", "tags")
    with pytest.raises(ConfigError, match="nope"):
        FieldEmbedding(FIELDS, 4, include=["nope"])
    with pytest.raises(ConfigError, match="title"):  # text fields are never batched
        FieldEmbedding(FIELDS, 4, exclude=["title"])


def test_default_init_is_small_normal():
    emb = FieldEmbedding(FIELDS, 16)
    w = emb.embedding.weight[1:].detach()
    assert 0.5e-4 < float(w.std()) < 2e-4  # FuxiCTR's N(0, 1e-4^2)


def test_field_linear_sums_first_order_weights():
    lin = FieldLinear(FIELDS, init_std=0.1)
    with torch.no_grad():
        lin.bias.fill_(0.5)
    batch = _batch()
    w = lin.weights
    want = torch.full((5,), 0.5)
    for name in ("user_id", "item_id", "hour"):
        want = want + w.lookup(name, batch[name])[:, 0]
    g = w.lookup("genres", batch["genres"])[..., 0]
    n = (batch["genres"] > 0).sum(1).clamp_min(1)
    want = want + g.sum(1) / n + w.lookup("tags", batch["tags"])[..., 0].sum(1)
    want = want + batch["age"] * w.numeric_weight[0, 0]
    torch.testing.assert_close(lin(batch), want)
    assert lin(batch).shape == (5,)


# -- CTRModel ----------------------------------------------------------------------------


def _info(has_labels: bool = False, fields=FIELDS) -> DataInfo:
    return DataInfo(n_users=N_USERS, n_items=N_ITEMS, fields=tuple(fields),
                    has_labels=has_labels, name="toy")


class FakeData:
    """What CTRModel.prepare reads of RecData: ``info`` and ``field_table(owner)``."""

    def __init__(self, info: DataInfo, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.info = info
        hist = rng.integers(2, N_ITEMS + 2, (N_USERS, 4))
        hist[0] = 0  # a user without history
        hist[1, :2] = 0
        self.tables = {
            "user": {"user_id": np.arange(2, N_USERS + 2), "age": rng.normal(
                size=N_USERS).astype(np.float32), "hist": hist},
            "item": {"item_id": np.arange(2, N_ITEMS + 2),
                     "genres": rng.integers(0, 6, (N_ITEMS, 3)),
                     "tags": rng.integers(0, 5, (N_ITEMS, 2))},
        }

    def field_table(self, owner: str) -> dict[str, np.ndarray]:
        return self.tables[owner]


class ToyCTR(CTRModel):
    """Sum of a linear term and a bilinear form of the pooled history with each field."""

    def __init__(self, info: DataInfo) -> None:
        super().__init__(info, num_negatives=2, reg=0.01)
        self.emb = FieldEmbedding(info.fields, 4, init_std=0.3)
        self.linear = FieldLinear(info.fields, init_std=0.3)

    def logits(self, fields):
        e = self.emb(fields)
        seq, mask = self.emb.sequence("hist", fields["hist"])
        h = seq.sum(1)
        return self.linear(fields) + (e.sum(1) * h).sum(-1) + e[:, 0].mul(e[:, 2]).sum(-1)


def test_train_format_follows_labels():
    assert ToyCTR(_info(True)).train_format is TrainFormat.LABELED
    model = ToyCTR(_info(False))
    assert model.train_format is TrainFormat.POINTS and model.num_negatives == 2


def test_no_batched_field_is_a_config_error():
    only_seq = [f for f in FIELDS if f.kind in ("sequence", "text")]
    with pytest.raises(ConfigError, match="dataset.fields"):
        ToyCTR(_info(fields=only_seq))


def test_point_rows_come_from_the_tables_without_the_target_in_the_history():
    data = FakeData(_info())
    model = ToyCTR(data.info)
    model.prepare(data)
    users, items = torch.tensor([2, 2, 3]), torch.tensor([0, 5, 1])
    target = int(data.tables["user"]["hist"][2, 3]) - 2  # an item in user 2's history
    items[0] = target
    fields = model.point_fields(users, items)
    assert fields["item_id"].tolist() == (items + 2).tolist()
    assert fields["hour"].tolist() == [0, 0, 0]
    assert fields["genres"].shape == (3, 3)
    hist = torch.as_tensor(data.tables["user"]["hist"][[2, 2, 3]])
    assert not (fields["hist"][0] == target + 2).any()  # the label is not in the input
    assert torch.equal(fields["hist"][1:], torch.where(hist[1:] == (items[1:, None] + 2), 0,
                                                       hist[1:]))
    batch = {"users": users, "items": items, "labels": torch.tensor([1.0, 0.0, 0.0])}
    loss = model.loss(batch)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(model.logits(fields),
                                                               batch["labels"])
    torch.testing.assert_close(loss, bce + 0.01 * model.embedding_penalty(fields))


@pytest.mark.parametrize("chunk", [5, 1 << 15])
def test_score_equals_predict_on_the_crossed_rows(chunk, monkeypatch):
    data = FakeData(_info(True))
    model = ToyCTR(data.info)
    model.prepare(data)
    model.eval()
    monkeypatch.setattr(ToyCTR, "score_chunk_rows", chunk)
    users = torch.tensor([0, 3, 1])
    scores = model.score(users, {})
    assert scores.shape == (3, N_ITEMS) and scores.dtype == torch.float32
    u = users.repeat_interleave(N_ITEMS)
    i = torch.arange(N_ITEMS).repeat(3)
    tables = {k: torch.as_tensor(v) for o in ("user", "item")
              for k, v in data.tables[o].items()}
    rows = {k: tables[k][u] for k in ("user_id", "age", "hist")}
    rows.update({k: tables[k][i] for k in ("item_id", "genres", "tags")})
    rows["hour"] = torch.zeros(len(u), dtype=torch.long)
    with torch.no_grad():
        want = model.predict({"fields": rows, "label": torch.zeros(len(u))})
    torch.testing.assert_close(scores, want.view(3, N_ITEMS))
    assert scores.std() > 0


# -- the zoo -----------------------------------------------------------------------------

BUILDERS = {name: build for name, build, _ in ctr_plugin.MODELS}
BUILDERS["mlp_ctr"] = build_mlp_ctr
# small versions of every model (the shipped defaults are FuxiCTR-sized)
SMALL: dict[str, dict] = {
    "lr": {},
    "fm": {"embedding_dim": 8},
    "deepfm": {"embedding_dim": 8, "hidden": [32, 16]},
    "dcnv2": {"embedding_dim": 8, "hidden": [32], "cross_layers": 2},
    "dcnv2_stacked": {"embedding_dim": 8, "hidden": [32], "cross_layers": 2,
                      "structure": "stacked"},
    "autoint": {"embedding_dim": 8, "attention_dim": 8, "num_heads": 2, "attention_layers": 2},
    "din": {"embedding_dim": 8, "attention_hidden": [16], "hidden": [32, 16]},
    "mlp_ctr": {"embedding_dim": 8, "hidden": [32, 16], "reg": 0.0},
}


def _build(key: str, info: DataInfo, **extra) -> CTRModel:
    name = key.split("_stacked")[0]
    return BUILDERS[name](info, {**SMALL[key], **extra})


def test_every_model_is_registered_with_its_config(compose):
    from recframe.plugin import default_manager

    pm = default_manager()
    for name in ("lr", "fm", "deepfm", "dcnv2", "autoint", "din"):
        spec = pm.models.get(name)
        assert spec.family == "ctr" and "fields" in spec.needs
        cfg = compose(f"model={name}", fast=False)
        assert cfg.model.name == name and cfg.model.batch_size == 4096
        assert cfg.model.get("embedding_dim", 16) == 16
    assert "fields" in pm.models.get("mlp_ctr").needs


def test_fm_fast_formula_equals_the_pairwise_sum():
    emb = torch.randn(6, 5, 3, dtype=torch.float64)
    brute = sum((emb[:, f] * emb[:, g]).sum(-1) for f in range(5) for g in range(f + 1, 5))
    torch.testing.assert_close(fm_interaction(emb), brute)
    model = _build("fm", _info(True))
    batch = _batch()
    e = model.embedding(batch)
    pairs = sum((e[:, f] * e[:, g]).sum(-1) for f in range(e.shape[1])
                for g in range(f + 1, e.shape[1]))
    torch.testing.assert_close(model.logits(batch), model.linear(batch) + pairs)


@pytest.mark.parametrize("training", [True, False])
def test_din_attention_ignores_padded_positions(training):
    torch.manual_seed(0)
    unit = ActivationUnit(4, [8], "dice").train(training)
    query = torch.randn(3, 4)
    keys = torch.randn(3, 5, 4)
    mask = torch.tensor([[False, False, True, True, True], [False, False, False, False, True],
                         [False] * 5])
    garbage = torch.where(mask[..., None], keys, torch.randn(3, 5, 4) * 100)
    clean = torch.where(mask[..., None], keys, 0.0)
    w = unit.weights(query, garbage, mask)
    assert torch.equal(w[~mask], torch.zeros(int((~mask).sum())))
    assert not torch.equal(w[mask], torch.zeros(int(mask.sum())))
    torch.testing.assert_close(unit.weights(query, clean, mask), w)
    torch.testing.assert_close(unit(query, garbage, mask), unit(query, clean, mask))
    assert torch.equal(unit(query, garbage, mask)[2], torch.zeros(4))  # empty history
    # no softmax: the interest grows with the number of relevant behaviours
    twice = unit(query, torch.cat([keys, keys], 1), torch.cat([mask, mask], 1)).detach()
    if not training:
        torch.testing.assert_close(twice, 2 * unit(query, keys, mask).detach())


def test_din_needs_a_sequence_field_and_names_the_fix():
    no_seq = [f for f in FIELDS if f.kind != "sequence"]
    with pytest.raises(ConfigError, match=r"sequence field.*dataset\.fields"):
        _build("din", _info(fields=no_seq))
    with pytest.raises(ConfigError, match="sequence_fields"):
        _build("din", _info(), sequence_fields=["user_id"])
    with pytest.raises(ConfigError, match="exclude_fields"):
        _build("din", _info(), exclude_fields=["hist"])


def test_bad_parameters_name_the_key():
    info = _info()
    cases = [("dcnv2", {"structure": "diagonal"}, "model.structure"),
             ("dcnv2", {"hidden": []}, "model.hidden"),
             ("autoint", {"attention_dim": 9}, "model.attention_dim"),
             ("fm", {"embedding_dim": 0}, "model.embedding_dim"),
             ("fm", {"fields": ["nope"]}, "model.fields"),
             ("lr", {"exclude_fields": "age"}, "model.exclude_fields"),
             ("din", {"attention_activation": "tanh"}, "model.attention_activation")]
    for key, extra, where in cases:
        with pytest.raises(ConfigError, match=where.replace(".", r"\.")):
            _build(key, info, **extra)


@pytest.mark.parametrize("key", sorted(SMALL))
@pytest.mark.parametrize("has_labels", [True, False])
def test_score_equals_predict_on_crossed_rows(key, has_labels, monkeypatch):
    import recframe_mlp._tower as tower

    monkeypatch.setattr(CTRModel, "score_chunk_rows", 13)  # many item chunks
    monkeypatch.setattr(tower, "MAX_CELLS", 100)
    torch.manual_seed(0)
    data = FakeData(_info(has_labels))
    model = _build(key, data.info, init_std=0.3)
    assert model.train_format is (TrainFormat.LABELED if has_labels else TrainFormat.POINTS)
    model.prepare(data)
    model.eval()
    users = torch.tensor([0, 3, 1, 6])
    u = users.repeat_interleave(N_ITEMS)
    i = torch.arange(N_ITEMS).repeat(len(users))
    rows = model.owner_fields("user", u)
    rows.update(model.owner_fields("item", i))
    rows.update(model.zero_fields(len(u), ("context",), u.device))
    with torch.no_grad():
        scores = model.score(users, {})
        want = model.predict({"fields": rows, "label": torch.zeros(len(u))})
    assert scores.shape == (len(users), N_ITEMS) and scores.dtype == torch.float32
    torch.testing.assert_close(scores, want.view(len(users), N_ITEMS), rtol=1e-4, atol=1e-5)
    assert float(scores.std()) > 0


@pytest.mark.parametrize("key", sorted(SMALL))
def test_new_users_are_scored_as_unknown_users(key):
    """A user unknown at training time (the membership audit's held-out users,
    ``recframe recommend`` for a new user) gets every user field unknown (code 0):
    the crossed rows with zero user fields, the same ranking for everyone."""
    torch.manual_seed(0)
    data = FakeData(_info(False))
    model = _build(key, data.info, init_std=0.3)
    model.prepare(data)
    model.eval()
    n = 3
    i = torch.arange(N_ITEMS).repeat(n)
    rows = model.zero_fields(len(i), ("user", "context"), i.device)
    rows.update(model.owner_fields("item", i))
    with torch.no_grad():
        scores = model.score_new_users({"users": torch.full((n,), -1)})
        want = model.predict({"fields": rows, "label": torch.zeros(len(i))})
        known = model.score(torch.tensor([0, 3, 1]), {})
    torch.testing.assert_close(scores, want.view(n, N_ITEMS), rtol=1e-4, atol=1e-5)
    assert torch.equal(scores[0], scores[1]) and float(scores.std()) > 0
    assert not torch.allclose(scores, known)  # the user fields of known users count


# -- every model learns planted click data -------------------------------------------------

V = 12  # values per categorical field (codes 2..V+1)
PLANTED = (
    FieldSpec("a", "categorical", "user", vocab_size=V + 2),
    FieldSpec("b", "categorical", "item", vocab_size=V + 2),
    FieldSpec("c", "categorical", "context", vocab_size=V + 2),
    FieldSpec("m", "multi_categorical", "item", vocab_size=8, max_len=3, pooling="mean"),
    FieldSpec("x", "numeric", "context"),
    FieldSpec("hist", "sequence", "context", vocab_size=V + 2, max_len=4, shares="b"),
)


def _planted(n: int, seed: int, first_order: bool) -> tuple[dict[str, torch.Tensor],
                                                             torch.Tensor, torch.Tensor]:
    """Rows, labels and the true logits: ``logit = <A_a, B_b> (+ w_a + w_b + 0.8 x
    + 0.7 mean_j <B_hist_j, B_b>)``. The latent vectors are centred over the values, so
    with ``first_order=False`` no single field says anything about the label (pure
    pairwise data, which logistic regression cannot fit)."""
    g = np.random.default_rng(seed)
    lat = np.random.default_rng(123)  # the same planted model for every sample
    a_vec, b_vec = (lat.normal(size=(V, 4)) for _ in range(2))
    a_vec -= a_vec.mean(0)
    b_vec -= b_vec.mean(0)
    w_a, w_b = lat.normal(size=V), lat.normal(size=V)
    a, b, c = (g.integers(0, V, n) for _ in range(3))
    hist = g.integers(0, V, (n, 4))
    length = g.integers(0, 5, n)
    pad = np.arange(4)[None, :] < (4 - length)[:, None]  # left padding
    x = g.normal(size=n)
    logit = 0.9 * (a_vec[a] * b_vec[b]).sum(1)
    if first_order:
        sim = (b_vec[hist] * b_vec[b][:, None]).sum(-1)
        seq = np.where(pad, 0.0, sim).sum(1) / np.maximum(length, 1)
        logit = logit + w_a[a] + w_b[b] + 0.8 * x + 0.7 * seq
    labels = (g.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    fields = {"a": a + 2, "b": b + 2, "c": c + 2, "m": np.where(g.random((n, 3)) < 0.5, 0,
                                                                g.integers(2, 8, (n, 3))),
              "x": x.astype(np.float32), "hist": np.where(pad, 0, hist + 2)}
    return ({k: torch.as_tensor(v) for k, v in fields.items()}, torch.as_tensor(labels),
            torch.as_tensor(logit))


def _auc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    ranks = torch.empty(len(scores), dtype=torch.float64)
    ranks[scores.argsort()] = torch.arange(1, len(scores) + 1, dtype=torch.float64)
    pos = labels > 0.5
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _fit_auc(key: str, first_order: bool, steps: int = 300) -> tuple[float, float]:
    """(test AUC of the trained model, AUC of the true logits) on planted data."""
    torch.manual_seed(0)
    info = DataInfo(n_users=1, n_items=1, fields=PLANTED, has_labels=True, name="planted")
    model = _build(key, info)
    train, y, _ = _planted(20_000, 1, first_order)
    test, y_test, truth = _planted(5_000, 2, first_order)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    g = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(y), (256,), generator=g)
        loss = model.loss({"label": y[idx], "fields": {k: v[idx] for k, v in train.items()}})
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        logits = model.predict({"fields": test, "label": y_test})
    return _auc(logits, y_test), _auc(truth, y_test)


@functools.cache
def _lr_auc() -> float:
    return _fit_auc("lr", first_order=True)[0]


@pytest.mark.parametrize("key", sorted(SMALL))
def test_every_model_learns_planted_click_data(key):
    auc, best = _fit_auc(key, first_order=True)  # best: ~0.90, lr ~0.81, others ~0.86-0.88
    assert 0.75 < auc <= best + 0.01, (key, auc, best)
    if key != "lr":  # the feature-interaction models also fit the pairwise part
        assert auc > _lr_auc() + 0.02, (key, auc, _lr_auc())


def test_fm_beats_lr_on_pure_pairwise_data():
    lr_auc, best = _fit_auc("lr", first_order=False)
    fm_auc, _ = _fit_auc("fm", first_order=False)
    assert best > 0.7  # there is something to learn
    assert lr_auc < 0.56, lr_auc  # no single field carries signal
    assert fm_auc > lr_auc + 0.1 and fm_auc > 0.65, (fm_auc, lr_auc, best)


pytestmark = pytest.mark.usefixtures("one_thread")


# -- conformance (recframe.testing) --------------------------------------------------------

CONFORMANCE: dict[str, list[str]] = {
    "lr": ["model.batch_size=512", "model.lr=0.01"],
    "fm": ["model.embedding_dim=8", "model.batch_size=512"],
    "deepfm": ["model.embedding_dim=8", "model.hidden=[16]", "model.batch_size=512"],
    "dcnv2": ["model.embedding_dim=8", "model.hidden=[16]", "model.cross_layers=2",
              "model.batch_size=512"],
    "autoint": ["model.embedding_dim=8", "model.attention_dim=8", "model.attention_layers=1",
                "model.batch_size=512"],
    "din": ["dataset=synthetic_seq", "model.embedding_dim=8", "model.hidden=[16]",
            "model.attention_hidden=[8]", "model.batch_size=512"],
}
SEQ_FIELD = {"name": "hist", "kind": "sequence", "shares": "item_id", "max_len": 5}


def _synthetic_plugin(tmp_path, name: str, labeled: bool = False, history: bool = False):
    """A plugin with dataset ``name``: the synthetic data, plus a declared sequence field
    ``hist`` (the user's earlier items, which DIN needs) when ``history``, and as labeled
    impressions (each interaction clicked, plus as many unclicked rows pairing users
    with shuffled items) when ``labeled``."""
    import dataclasses
    import types

    import pandas as pd
    from omegaconf import OmegaConf

    from recframe.api import LABEL, DatasetSpec, hookimpl
    from recframe.plugin import default_manager
    from recframe.testing import compose

    conf = tmp_path / "conf" / "dataset"
    conf.mkdir(parents=True)
    node = OmegaConf.to_container(compose("dataset=synthetic").dataset)
    OmegaConf.save({**node, "name": name}, conf / f"{name}.yaml")
    synthetic = default_manager().datasets.get("synthetic")

    def load(cfg):
        ds = synthetic.load({**OmegaConf.to_container(cfg), "name": "synthetic"})
        if history:
            ds = dataclasses.replace(ds, meta={**ds.meta, "fields": [SEQ_FIELD]})
        if labeled:
            pos = ds.interactions.drop(columns=["rating"], errors="ignore").assign(
                **{LABEL: 1})
            neg = pos.assign(**{LABEL: 0, "item_id": np.random.default_rng(0).permutation(
                pos["item_id"].to_numpy())})
            ds = ds.with_interactions(pd.concat([pos, neg], ignore_index=True))
        return ds

    plugin = types.SimpleNamespace(
        recframe_register_datasets=hookimpl(lambda registry: registry.add(
            DatasetSpec(name=name, load=load))),
        recframe_config_searchpath=hookimpl(lambda: f"file://{tmp_path / 'conf'}"))
    plugin.__name__ = f"{name}_plugin"
    return plugin


@pytest.mark.parametrize("name", sorted(CONFORMANCE))
def test_model_conforms(name, tmp_path):
    from recframe.testing import check_model, plugin_manager

    pm = (plugin_manager(_synthetic_plugin(tmp_path, "synthetic_seq", history=True))
          if name == "din" else None)
    report = check_model(name, pm=pm, overrides=["trainer.max_epochs=1", *CONFORMANCE[name]])
    assert report.checked[-1] == "sampled"


@pytest.mark.parametrize("name", ["fm", "din"])
def test_labeled_training_conforms_under_the_ranking_protocol(name, tmp_path):
    """TrainFormat.LABELED end to end through the kit. The kit evaluates by ranking,
    so the run is told to rank (evaluation.protocol=ranking)."""
    from recframe.testing import check_model, plugin_manager

    pm = plugin_manager(_synthetic_plugin(tmp_path, "synthetic_labeled", labeled=True,
                                          history=True))
    overrides = [o for o in CONFORMANCE[name] if not o.startswith("dataset=")]
    report = check_model(name, pm=pm, overrides=[
        "trainer.max_epochs=1", "dataset=synthetic_labeled", "evaluation.protocol=ranking",
        *overrides])
    assert report.checked[-1] == "sampled"


def test_ctr_protocol_run_reports_click_metrics(tmp_path):
    from recframe.testing import plugin_manager, run

    pm = plugin_manager(_synthetic_plugin(tmp_path, "synthetic_labeled", labeled=True))
    results = run("model=fm", "dataset=synthetic_labeled", "preprocess=none",
                  "logger=none", "trainer.max_epochs=3", "model.batch_size=512",
                  "model.lr=0.01", pm=pm)
    test = results["metrics"]["test"]
    assert 0.55 < test["auc"] <= 1.0 and np.isfinite(test["logloss"]), test


def test_din_activation_unit_equals_the_mlp_on_the_concatenated_inputs():
    """The split first layer gives the paper's MLP([q, k, q - k, q * k]) exactly."""
    import torch

    from recframe_ctr.din import ActivationUnit

    torch.manual_seed(0)
    unit = ActivationUnit(8, [16, 4], "dice").eval()
    for p in unit.parameters():
        torch.nn.init.normal_(p, std=0.5)
    query, keys = torch.randn(5, 8), torch.randn(5, 7, 8)
    mask = torch.rand(5, 7) > 0.3
    want = torch.zeros(5, 7)
    want[mask] = unit.mlp(ActivationUnit.unit_inputs(query, keys)[mask]).squeeze(-1)
    torch.testing.assert_close(unit.weights(query, keys, mask), want, rtol=1e-5, atol=1e-5)

"""Click models over typed fields: the field layers (FieldEmbedding, FieldLinear), the
CTRModel base (POINTS rows from field tables, score == predict on crossed rows) and
the recframe_ctr zoo (lr, fm, deepfm, dcnv2, autoint, din) plus mlp_ctr."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recframe.api import (
    ConfigError,
    CTRModel,
    DataInfo,
    FieldEmbedding,
    FieldLinear,
    FieldSpec,
    TrainFormat,
)

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

"""``model.item_text=field``: click models read the item text vector as a dense field."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from recframe.data.encode import DataInfo, Events, RecData
from recframe.data.fields import FieldSpec
from recframe.errors import ConfigError, DataError
from recframe.models.fields import FieldEmbedding, FieldLinear
from recframe.testing import run
from tests.test_item_text import fake_encoder  # noqa: F401  (a pytest fixture)

ITEM = FieldSpec("item_id", "categorical", "item", vocab_size=5)
TEXT = FieldSpec("item_text", "dense", "item", max_len=3)


def test_dense_field_is_a_linear_projection_and_a_zero_vector_embeds_to_zero():
    layer = FieldEmbedding([TEXT, ITEM], dim=4, init_std=0.1)
    assert layer.field_names == ("item_text", "item_id")
    x = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    out = layer({"item_id": torch.tensor([2, 3]), "item_text": x})
    assert out.shape == (2, 2, 4)
    (weight,) = layer.dense_weight
    assert torch.allclose(out[:, 0], x @ weight)
    assert torch.equal(out[1, 0], torch.zeros(4))
    assert torch.allclose(out[:, 1], layer.lookup("item_id", torch.tensor([2, 3])))
    out.sum().backward()
    assert torch.allclose(weight.grad, x.sum(0, keepdim=True).T.expand(3, 4))


def test_first_order_term_of_a_dense_field_is_a_dot_product():
    linear = FieldLinear([TEXT], init_std=0.1)
    x = torch.tensor([[1.0, -1.0, 0.5]])
    (w,) = linear.weights.dense_weight
    assert torch.allclose(linear({"item_text": x}), (x @ w).squeeze(-1) + linear.bias)


def test_a_dense_field_without_length_is_a_data_error():
    with pytest.raises(DataError, match="its vector length and must be >= 1"):
        FieldEmbedding([FieldSpec("item_text", "dense", "item")], dim=4)


def _data() -> RecData:
    events = Events(np.array([0, 1]), np.array([1, 2]), None)
    info = DataInfo(n_users=2, n_items=3, name="toy", fields=(ITEM,))
    data = RecData(info, pd.Index(["u0", "u1"]), pd.Index(["a", "b", "c"]),
                   {p: events for p in ("train", "valid", "test")})
    data._tables["item"] = {"item_id": np.array([2, 3, 4])}
    return data


def test_with_item_field_adds_spec_and_table_and_leaves_the_original_alone():
    data = _data()
    vectors = np.arange(9, dtype=np.float32).reshape(3, 3)
    out = data.with_item_field(TEXT, vectors)
    assert out.info.fields == (ITEM, TEXT)
    assert np.array_equal(out.field_table("item")["item_text"], vectors)
    assert np.array_equal(out.field_table("item")["item_id"], [2, 3, 4])
    assert data.info.fields == (ITEM,) and "item_text" not in data.field_table("item")
    with pytest.raises(DataError, match="already has a field named 'item_id'"):
        data.with_item_field(FieldSpec("item_id", "dense", "item", max_len=3), vectors)


SMALL_CTR = ("dataset=synthetic_ctr", "dataset.n_users=150", "dataset.n_items=40",
             "dataset.n_rows=3000", "logger=none", "callbacks=none", "trainer.max_epochs=1",
             "trainer.min_epochs=1", "text.encoder=fake")


@pytest.mark.parametrize("model", ["lr", "deepfm", "din"])
def test_click_models_train_on_logged_rows_with_the_text_field(model, fake_encoder,  # noqa: F811
                                                               tmp_path):
    results = run(f"model={model}", "model.item_text=field", f"text.cache_dir={tmp_path}",
                  *SMALL_CTR)
    assert results["status"] == "ok"
    assert results["item_text"]["mode"] == "field" and results["item_text"]["dim"] == 26
    fields = {f["name"]: f for f in results["protocol"]["fields"]}
    assert fields["item_text"]["kind"] == "dense" and fields["item_text"]["max_len"] == 26
    assert 0.0 < results["metrics"]["test"]["auc"] < 1.0


def test_a_ranking_run_with_the_text_field_scores_cold_items(fake_encoder, tmp_path):  # noqa: F811
    results = run("model=deepfm", "model.item_text=field", f"text.cache_dir={tmp_path}",
                  "split=cold_items", "dataset=synthetic", "dataset.n_users=120",
                  "dataset.n_items=80", "preprocess=none", "logger=none", "callbacks=none",
                  "trainer.max_epochs=1", "trainer.min_epochs=1", "text.encoder=fake")
    assert results["status"] == "ok" and "not_applicable" not in results
    test = results["metrics"]["test"]
    assert all(np.isfinite(test[k]) for k in ("cold/ndcg@10", "warm/ndcg@10")), test
    assert results["protocol"]["cold_start"]["test_cold_targets"] > 0


def test_models_that_would_not_read_the_field_say_so(fake_encoder, tmp_path):  # noqa: F811
    with pytest.raises(ConfigError, match=r"model 'bpr' reads no typed fields.*init or add"):
        run("model=bpr", "model.item_text=field", f"text.cache_dir={tmp_path}",
            "dataset=synthetic", "dataset.n_users=120", "dataset.n_items=80",
            "preprocess=none", "logger=none", "callbacks=none", "text.encoder=fake")
    with pytest.raises(ConfigError, match=r"leaves the 'item_text' field out"):
        run("model=deepfm", "model.item_text=field", "model.exclude_fields=[item_text]",
            f"text.cache_dir={tmp_path}", *SMALL_CTR)

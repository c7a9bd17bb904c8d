"""The item-text stage and the ``model.item_text`` switch (init / add)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from recframe.data import text_encoders
from recframe.data.encode import DataInfo, FeatureSpec
from recframe.data.item_text import ItemTextVectors, TextSettings, item_text_vectors, item_texts
from recframe.errors import ConfigError, DataError
from recframe.models.item_text import TextAwareEmbedding, _principal_components, item_text_mode
from recframe.testing import run
from tests.test_content_model import FakeEncoder as BagOfLetters


class _Data:
    """The parts of RecData the text stage reads."""

    def __init__(self, frame: pd.DataFrame | None, specs: tuple[FeatureSpec, ...]):
        n = 3 if frame is None else len(frame)
        self.item_features = frame
        self.item_ids = pd.Index([f"i{k}" for k in range(n)])
        self.info = DataInfo(name="toy", n_users=1, n_items=n, item_features=specs)


def _movies() -> _Data:
    frame = pd.DataFrame({
        "title": pd.array(["Toy Story (1995)", "Heat (1995)", None], dtype="string"),
        "release_date": pd.array(["1995-01-01", None, "1996-01-01"], dtype="string"),
        "genre_action": np.array([0, 1, 0], dtype=np.float32),
        "genre_childrens": np.array([1, 0, 0], dtype=np.float32),
        "year": np.array([1995, 1995, 1996], dtype=np.float32),
    })
    specs = (FeatureSpec("title", "text"), FeatureSpec("release_date", "categorical"),
             FeatureSpec("genre_action", "numeric"), FeatureSpec("genre_childrens", "numeric"),
             FeatureSpec("year", "numeric"))
    return _Data(frame, specs)


def test_auto_template_joins_text_categories_and_flag_groups():
    assert item_texts(_movies()) == [
        "Toy Story (1995). release_date: 1995-01-01. genre: childrens",
        "Heat (1995). genre: action",
        "release_date: 1996-01-01",
    ]


def test_format_template_and_its_errors():
    assert item_texts(_movies(), "{title}!") == ["Toy Story (1995)!", "Heat (1995)!", ""]
    with pytest.raises(ConfigError, match=r"text.template names column 'plot'.*columns: title"):
        item_texts(_movies(), "{plot}")


def test_items_without_text_get_zero_rows_and_a_dataset_without_text_fails(tmp_path, caplog):
    settings = TextSettings(encoder="fake", template="{title}", cache_dir=str(tmp_path))
    text = item_text_vectors(_movies(), settings, loader=lambda name, device: BagOfLetters())
    assert text.has_text.tolist() == [True, True, False]
    assert np.abs(text.vectors[2]).sum() == 0 and np.allclose(
        np.linalg.norm(text.vectors[:2], axis=1), 1)
    assert "1 of 3 items have no text (e.g. i2)" in caplog.text
    assert text.record()["items_without_text"] == 1
    with pytest.raises(DataError, match="has no item text"):
        item_text_vectors(_Data(None, ()), TextSettings(encoder="fake"),
                          loader=lambda n, d: BagOfLetters())


def test_text_settings_reject_unknown_keys_and_modes():
    with pytest.raises(ConfigError, match="text.encodr is not a text setting"):
        TextSettings.from_config({"encodr": "x"})
    with pytest.raises(ConfigError, match="model.item_text must be one of none, init, add"):
        item_text_mode({"item_text": "concat"})
    assert item_text_mode({}) == "none"


def _text(n_items: int = 4, dim: int = 6, with_text=(True, True, False, True)) -> ItemTextVectors:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(n_items, dim)).astype(np.float32)
    has = np.array(with_text)
    vectors[~has] = 0
    return ItemTextVectors(vectors, has, "fake", "auto", 0.0)


def test_add_mode_table_is_id_plus_projected_text_and_padding_stays_zero():
    base = nn.Embedding(5, 3, padding_idx=0)
    emb = TextAwareEmbedding.replacing(base, "add", item_offset=1)
    text = _text()
    emb.attach(text)
    proj = emb.text_projection.weight  # [3, 6]
    expected = base.weight.detach().clone()
    expected[1:] += torch.from_numpy(text.vectors) @ proj.detach().T
    assert torch.allclose(emb.weight, expected, atol=1e-6)
    ids = torch.tensor([[0, 1, 4], [2, 3, 0]])
    assert torch.allclose(emb(ids), emb.weight[ids], atol=1e-6)
    assert emb.weight[0].abs().sum() == 0  # padding row: no ID, no text
    assert set(emb.state_dict()) == {"weight", "text_projection.weight"}
    emb(ids).sum().backward()
    assert proj.grad is not None and proj.grad.abs().sum() > 0  # the projection trains


def test_init_mode_starts_rows_with_text_from_its_principal_components_once():
    torch.manual_seed(0)
    base = nn.Embedding(4, 3)
    emb = TextAwareEmbedding.replacing(base, "init", item_offset=0)
    text = _text()
    emb.attach(text)
    rows = np.flatnonzero(text.has_text)
    expected = _principal_components(torch.from_numpy(text.vectors[rows]), 3,
                                     float(base.weight[rows].detach().std()))
    assert torch.allclose(emb.weight[rows], expected, atol=1e-5)
    assert torch.equal(emb.weight[2], base.weight[2])  # no text: random init kept
    assert abs(float(emb.weight[rows].std()) - float(base.weight[rows].detach().std())) < 1e-4
    with torch.no_grad():
        emb.weight[0] += 1.0
    trained = emb.weight.detach().clone()
    emb.attach(text)  # prepared again (a test after fit): trained weights are kept
    assert torch.equal(emb.weight, trained)
    assert set(emb.state_dict()) == {"weight"}


def test_principal_components_are_those_of_numpy():
    x = torch.from_numpy(np.random.default_rng(1).normal(size=(20, 5)).astype(np.float32))
    got = _principal_components(x, 2, 1.0).numpy()
    c = x.numpy() - x.numpy().mean(0)
    _, _, vt = np.linalg.svd(c, full_matrices=False)
    ref = c @ vt[:2].T
    ref *= 1.0 / ref.std(ddof=1)
    assert np.allclose(np.abs(got), np.abs(ref), atol=1e-4)  # up to each component's sign


@pytest.fixture
def fake_encoder(monkeypatch):
    monkeypatch.setattr(text_encoders, "missing_dependency", lambda encoder: None)
    monkeypatch.setattr(text_encoders, "load_encoder", lambda name, device: BagOfLetters())


SMALL = ("dataset=synthetic", "dataset.n_users=120", "dataset.n_items=80", "preprocess=none",
         "logger=none", "callbacks=none", "trainer.max_epochs=2", "trainer.min_epochs=1")


@pytest.mark.parametrize("model", ["bpr", "neumf", "lightgcn"])
def test_id_models_train_with_text_added_and_record_the_stage(model, fake_encoder, tmp_path):
    results = run(f"model={model}", "model.item_text=add", f"text.cache_dir={tmp_path}",
                  "text.encoder=fake", *SMALL)
    assert results["status"] == "ok"
    stage = results["item_text"]
    assert stage["mode"] == "add" and stage["encoder"] == "fake" and stage["dim"] == 26
    assert stage["items_with_text"] == 80 and stage["items_without_text"] == 0
    assert np.isfinite(results["metrics"]["test"]["ndcg@10"])


def test_sequence_model_with_text_init(fake_encoder, tmp_path):
    results = run("model=sasrec", "model.item_text=init", "split=leave_one_out",
                  f"text.cache_dir={tmp_path}", "text.encoder=fake", *SMALL)
    assert results["item_text"]["mode"] == "init"
    assert results["status"] == "ok"


def test_a_model_without_item_tables_says_which_switch_to_use(fake_encoder, tmp_path):
    with pytest.raises(ConfigError, match=r"model 'pop' declares no item embedding table"):
        run("model=pop", "+model.item_text=add", f"text.cache_dir={tmp_path}", *SMALL)


def test_plain_models_record_no_text_stage():
    results = run("model=pop", *SMALL)
    assert results["item_text"] is None


def test_cached_vectors_are_read_without_the_encoder_packages(tmp_path, monkeypatch):
    settings = TextSettings(encoder="fake", template="{title}", cache_dir=str(tmp_path))
    monkeypatch.setattr(text_encoders, "load_encoder", lambda name, device: BagOfLetters())
    monkeypatch.setattr(text_encoders, "missing_dependency", lambda encoder: None)
    first = item_text_vectors(_movies(), settings)
    monkeypatch.setattr(text_encoders, "missing_dependency",
                        lambda encoder: "sentence-transformers is not installed")
    again = item_text_vectors(_movies(), settings)  # the same texts: read from the cache
    assert np.array_equal(first.vectors, again.vectors)
    other = TextSettings(encoder="fake", template="{title}!", cache_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="text.encoder: sentence-transformers is not installed"):
        item_text_vectors(_movies(), other)  # other texts: a cache miss needs the encoder

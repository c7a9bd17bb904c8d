"""Feature-aware models adapt to the item features a dataset has (issue 17).

``content`` (``item_vectors: auto``) uses every block the data provides, a
MovieLens-latest-style ``genres`` column (``Action|Comedy``) becomes a multi-hot
block without a declaration, and a dataset without any item feature is a clear
error; ``lightfm_style`` and ``mlp_ctr`` run on ids alone.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from recframe.api import (
    ConfigError,
    Dataset,
    Split,
    build_model,
    feature_blocks,
    fit_model,
)
from recframe.data import encode
from recframe.data.field_encoding import multi_value_sep
from recframe.pipeline import check_compatible
from recframe.plugin.manager import default_manager
from recframe_content.content import build_content
from recframe_datasets.csv_loader import load_csv

CONF = Path(__file__).resolve().parents[1] / "conf" / "model"
GENRES = ["Action", "Comedy", "Drama", "Horror", "Romance", "Sci-Fi"]


def model_cfg(name: str, **values):
    """The model's yaml defaults plus overrides, as Hydra would give them."""
    return OmegaConf.merge(OmegaConf.load(CONF / f"{name}.yaml"), values)


def latest_small_csv(tmp_path: Path, n_items: int = 90, n_users: int = 40) -> Path:
    """ratings.csv + movies.csv shaped like ml-latest-small: items have only a title
    and pipe-separated genres. Users 0..14 watch Action/Sci-Fi items, the others
    Comedy/Romance ones (a planted genre taste)."""
    rng = np.random.default_rng(0)
    kinds = [["Action", "Action|Sci-Fi", "Sci-Fi|Horror"],  # i % 3 == 0
             ["Comedy", "Comedy|Romance", "Romance|Drama"],  # i % 3 == 1
             ["Drama", "Horror|Drama", "Drama|Comedy"]]  # i % 3 == 2 (nobody watches)
    movies_df = pd.DataFrame({
        "movieId": np.arange(1, n_items + 1),
        "title": [f"Movie {i} word{i % 5} ({1990 + i % 20})" for i in range(n_items)],
        "genres": [kinds[i % 3][(i // 3) % 3] for i in range(n_items)]})
    action = np.arange(0, n_items, 3)
    comedy = np.arange(1, n_items, 3)
    rows = []
    for u in range(n_users):
        pool = action if u < n_users // 2 else comedy
        for t, i in enumerate(rng.choice(pool, size=12, replace=False)):
            rows.append({"userId": u + 1, "movieId": int(i) + 1, "rating": 4.0,
                         "timestamp": 1_000_000 + 100 * u + t})
    movies_df.to_csv(tmp_path / "movies.csv", index=False)
    pd.DataFrame(rows).to_csv(tmp_path / "ratings.csv", index=False)
    return tmp_path / "ratings.csv"


def load_latest(path: Path) -> Dataset:
    return load_csv(OmegaConf.create({
        "path": str(path),
        "columns": {"user_id": "userId", "item_id": "movieId", "rating": "rating",
                    "timestamp": "timestamp"},
        "item_features": {"path": "movies.csv", "key": "movieId"},
    }))


def whole(ds: Dataset) -> Split:
    """Everything in train (valid/test: one row each, unused)."""
    one = ds.with_interactions(ds.interactions.iloc[:1])
    return Split(ds, one, one)


def item_dataset(items: pd.DataFrame | None, n_users: int = 6, n_items: int = 8) -> Dataset:
    """Every item interacted with (item i by user i % n_users), plus random rows."""
    rng = np.random.default_rng(1)
    rows = pd.DataFrame({"user_id": np.r_[np.arange(n_items) % n_users,
                                          np.repeat(np.arange(n_users), 3)],
                         "item_id": np.r_[np.arange(n_items),
                                          rng.integers(0, n_items, size=3 * n_users)]})
    rows = rows.drop_duplicates(ignore_index=True)
    return Dataset(rows, items=items, name="toy")


def profile_scores(model, seen: list[int]) -> torch.Tensor:
    """Scores for a user whose profile is the items ``seen``."""
    cols = torch.tensor(seen)
    with torch.no_grad():
        return model.score(torch.tensor([0]), {"users": torch.tensor([0]),
                                               "seen_rows": torch.zeros_like(cols),
                                               "seen_cols": cols})[0]


# -- ml-latest-small style: title + pipe-separated genres ----------------------------------


def test_pipe_genres_are_inferred_multi_valued_and_titles_text(tmp_path):
    ds = load_latest(latest_small_csv(tmp_path))
    data = encode(whole(ds), with_fields=True)
    blocks = feature_blocks(data.info, "item")
    assert blocks == {"multi_categorical": ("genres",), "text": ("title",)}
    matrix, names = data.multi_hot("item")
    assert names == ["genres"] and matrix.shape == (data.info.n_items, len(GENRES))


def test_content_runs_on_title_and_genres_with_default_config(tmp_path, caplog):
    ds = load_latest(latest_small_csv(tmp_path))
    data = encode(whole(ds), with_fields=True)
    cfg = model_cfg("content", popularity_blend=0.0)
    with caplog.at_level(logging.INFO, logger="recframe_content.content"):
        model = build_content(data.info, cfg)
    assert model.vectors.blocks == ("categorical", "tfidf")
    assert model.vectors.categorical_columns == ("genres",)
    assert "chose blocks ['categorical', 'tfidf']" in caplog.text
    assert model.data_choices["item_vectors"]["value"] == ["categorical", "tfidf"]
    fit_model(model, data)
    # the genre block decides: a profile of Action|Sci-Fi items ranks the other
    # Action/Sci-Fi items above every Comedy/Romance-only item
    genres = ds.items.reindex(data.item_ids)["genres"].to_numpy()
    action = np.array(["Action" in g or "Sci-Fi" in g for g in genres])
    seen = list(np.flatnonzero(action)[:3])
    scores = profile_scores(model, seen).numpy()
    others = np.setdiff1d(np.flatnonzero(action), seen)
    plain_comedy = np.flatnonzero(np.array([set(g.split("|")) <= {"Comedy", "Romance"}
                                            for g in genres]))
    assert len(others) and len(plain_comedy)
    assert scores[others].mean() > scores[plain_comedy].max()


def test_content_run_through_the_cli_config(tmp_path):
    """The whole pipeline (``dataset=csv``, default model config) on the same files."""
    from recframe.testing import run

    path = latest_small_csv(tmp_path)
    results = run("model=content", "dataset=csv", f"dataset.path={path}",
                  "dataset.columns.user_id=userId", "dataset.columns.item_id=movieId",
                  "dataset.item_features={path: movies.csv, key: movieId}",
                  "preprocess=none", "logger=none",
                  "split=random", run_dir=tmp_path / "run")
    assert results["status"] == "ok"
    assert results["metrics"]["test"]["ndcg@10"] > 0
    fields = {f["name"]: f["kind"] for f in results["protocol"]["fields"]}
    assert fields["genres"] == "multi_categorical"


def test_declared_categorical_overrides_the_inference(tmp_path):
    ds = load_latest(latest_small_csv(tmp_path))
    data = encode(whole(ds), fields={"genres": {"kind": "categorical"}}, with_fields=True)
    assert "multi_categorical" not in feature_blocks(data.info, "item")


@pytest.mark.parametrize(("values", "sep"), [
    (["Action|Comedy", "Comedy", "Drama|Action", "Action|Drama|Comedy"], "|"),
    (["Action", "Comedy", "Drama", "Action"], None),  # no separator
    (["a|b", "c|d", "e|f", "g|h"], None),  # pieces never repeat: not a set of tags
    (["The Matrix | 1999 cut", "Alien", "Heat", "Up"], None),  # one title holds "|"
])
def test_multi_value_separator_inference(values, sep):
    assert multi_value_sep(pd.Series(values)) == sep


# -- other feature layouts ----------------------------------------------------------------


def test_content_with_only_a_categorical_item_feature():
    items = pd.DataFrame({"item_id": range(8), "studio": list("aabbccdd")})
    data = encode(whole(item_dataset(items)), with_fields=True)
    model = build_content(data.info, model_cfg("content", popularity_blend=0.0))
    assert model.vectors.blocks == ("categorical",)
    fit_model(model, data)
    scores = profile_scores(model, [0])
    assert scores[1] > 0 and scores[2:].abs().max() == 0  # only item 1 shares studio "a"


def test_content_with_only_text():
    # more than 50 distinct strings: free text (fewer would be a categorical column)
    titles = [f"title{i} {'space' if i < 4 else 'love'} story" for i in range(60)]
    items = pd.DataFrame({"item_id": range(60), "title": titles})
    data = encode(whole(item_dataset(items, n_users=60, n_items=60)), with_fields=True)
    assert feature_blocks(data.info, "item") == {"text": ("title",)}
    model = build_content(data.info, model_cfg("content", popularity_blend=0.0))
    assert model.vectors.blocks == ("tfidf",)
    fit_model(model, data)
    scores = profile_scores(model, [0, 1])
    assert scores[2:4].min() > scores[4:].max()  # "space" titles beat "love" titles


def test_no_item_features_is_a_clear_error():
    data = encode(whole(item_dataset(None)), with_fields=True)
    with pytest.raises(ConfigError, match=r"'toy' has no item feature at all.*pop.*bpr"):
        build_content(data.info, model_cfg("content"))
    spec = default_manager().models.get("content")
    models = [default_manager().models.get(n) for n in default_manager().models.names()]
    with pytest.raises(ConfigError, match=r"needs item features.*'toy'.*without them:.*pop"):
        check_compatible(spec, data, models)


def test_an_explicit_block_the_data_lacks_names_item_vectors():
    items = pd.DataFrame({"item_id": range(8), "studio": list("aabbccdd")})
    data = encode(whole(item_dataset(items)), with_fields=True)
    with pytest.raises(ConfigError, match=r"model\.item_vectors lists 'numeric'.*'toy'"):
        build_content(data.info, model_cfg("content", item_vectors=["numeric"]))
    with pytest.raises(ConfigError, match="model.text_block"):
        build_content(data.info, model_cfg("content", text_block="bert"))


# -- hybrid and click models on ids only ---------------------------------------------------


@pytest.mark.parametrize("name", ["lightfm_style", "mlp_ctr"])
def test_hybrid_models_train_on_ids_only(name, caplog):
    data = encode(whole(item_dataset(None)), with_fields=True)
    spec = default_manager().models.get(name)
    check_compatible(spec, data)  # no item features: still compatible
    with caplog.at_level(logging.INFO):
        model = build_model(name, data.info, model_cfg(name, batch_size=8))
    assert "only" in caplog.text  # says it runs on ids only
    before = [p.detach().clone() for p in model.parameters()]
    fit_model(model, data, epochs=1, batch_size=8, lr=0.01)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    with torch.no_grad():
        users = torch.arange(data.info.n_users)
        scores = model.score(users, {"users": users})
    assert scores.shape == (data.info.n_users, data.info.n_items)
    assert torch.isfinite(scores).all()


@pytest.mark.parametrize("name", ["lightfm_style", "mlp_ctr"])
def test_hybrid_models_use_the_genres(name, tmp_path, caplog):
    data = encode(whole(load_latest(latest_small_csv(tmp_path))), with_fields=True)
    with caplog.at_level(logging.INFO):
        build_model(name, data.info, model_cfg(name))
    assert "genres" in caplog.text

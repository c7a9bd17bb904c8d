"""The out-of-core engine (``data.engine=duckdb``) gives the in-memory path's split row for
row; its shard directories are checked before they are read (docs/scaling.md)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from recframe.data.ooc import random_keys
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

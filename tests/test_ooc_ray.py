"""``data.engine=ray``: a local Ray instance of 2 workers writes the same shards, row for
row, as the in-memory path and ``data.engine=duckdb`` (docs/scaling.md)."""

from __future__ import annotations

import json
import socket

import numpy as np
import pandas as pd
import pytest

from recframe.errors import ConfigError
from tests.test_ooc import _prepare, assert_same

ray = pytest.importorskip("ray")
RAY = ("data.engine=ray", "data.ray.num_workers=2")


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance with 2 CPUs for the module (the engine reuses it)."""
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 << 20,
             log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_cluster_fails_fast_with_the_fix(compose, tmp_path):
    import time

    t = time.perf_counter()
    with pytest.raises(ConfigError, match="no Ray cluster can be reached") as info:
        _prepare(compose, "dataset=synthetic", "data.engine=ray",
                 f"data.ray.address=ray://127.0.0.1:{_closed_port()}",
                 "data.ray.connect_timeout_s=2", f"data.shard_dir={tmp_path}/s")
    assert time.perf_counter() - t < 30
    assert "ray start --head" in str(info.value) and "data.ray.address=null" in str(info.value)
    assert not (tmp_path / "s").exists() or not any((tmp_path / "s").iterdir())


@pytest.mark.parametrize(("override", "text"), [
    ("data.ray.num_workers=0", "data.ray.num_workers must be"),
    ("+data.ray.workers=2", "data.ray has unknown key"),
    ("split=temporal", "no partitioned form for split temporal"),
])
def test_bad_ray_settings_are_refused_before_reading(compose, override, text):
    from recframe.pipeline import resolve
    from recframe.plugin.manager import default_manager

    conf = compose("dataset=synthetic", *RAY, override)
    with pytest.raises(ConfigError, match=text):
        resolve(conf, default_manager())


@pytest.mark.slow
@pytest.mark.parametrize("split", ["random", "leave_one_out"])
@pytest.mark.parametrize("preprocess", ["implicit", "implicit_5core"])
def test_ml100k_identical_on_ray(compose, tmp_path, ml100k_dir, local_ray, preprocess, split):
    overrides = ("dataset=ml-100k", f"preprocess={preprocess}", f"split={split}")
    a = _prepare(compose, *overrides)
    b = _prepare(compose, *overrides, "data.engine=duckdb", f"data.shard_dir={tmp_path}/d")
    c = _prepare(compose, *overrides, *RAY, f"data.shard_dir={tmp_path}/r")
    assert c.raw_meta["data_engine"]["engine"] == "ray"
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert manifest["engine"] == "ray" and manifest["ray"]["partitions"] == 2
    assert_same(a, c)
    assert_same(b, c)
    assert not list(tmp_path.glob(".r.ray"))  # staging removed


@pytest.mark.slow
def test_parquet_log_with_string_ids_and_ties_identical_on_ray(compose, tmp_path, local_ray):
    """A Parquet log scanned in several row groups: string ids (some non-ASCII),
    repeated pairs, time ties, ratings below the threshold, 5-core."""
    rng = np.random.default_rng(0)
    n = 8000
    users = np.array([f"u{k}" for k in range(150)] + ["é1", "Z", "ü"])
    frame = pd.DataFrame({"u": users[rng.integers(0, len(users), n)],
                          "i": [f"i{k}" for k in rng.integers(0, 90, n)],
                          "r": rng.integers(1, 6, n).astype(float),
                          "t": rng.integers(0, 400, n)})
    path = tmp_path / "log.parquet"
    frame.to_parquet(path, row_group_size=1500)
    overrides = ("dataset=csv", f"dataset.path={path}", "dataset.columns.user_id=u",
                 "dataset.columns.item_id=i", "dataset.columns.rating=r",
                 "dataset.columns.timestamp=t", "preprocess=implicit_5core")
    memory = {}
    for split in ("random", "leave_one_out"):
        memory[split] = a = _prepare(compose, *overrides, f"split={split}")
        c = _prepare(compose, *overrides, f"split={split}", *RAY, "data.shard_rows=500",
                     f"data.shard_dir={tmp_path}/{split}")
        assert_same(a, c)
    # either engine reuses the other's shards (same fingerprint, same layout)
    again = _prepare(compose, *overrides, "split=random", "data.engine=duckdb",
                     f"data.shard_dir={tmp_path}/random")
    assert again.raw_meta["shards"]["reused"]
    assert_same(memory["random"], again)
    other = _prepare(compose, *overrides, "split=random", "split.seed=4", *RAY,
                     f"data.shard_dir={tmp_path}/seed4")
    from recframe.pipeline import fingerprint

    assert fingerprint(other.data) != fingerprint(memory["random"].data)  # not vacuous


@pytest.mark.slow
def test_ml100k_bpr_metrics_identical_on_ray(compose, tmp_path, ml100k_dir, local_ray):
    """A full BPR run (2 epochs) on the Ray engine's shards gives the pandas metrics."""
    from recframe.runner import run_experiment

    for engine in ("pandas", "ray"):
        conf = compose("dataset=ml-100k", "preprocess=implicit", "model=bpr",
                       "trainer.max_epochs=2", "logger=none", f"data.engine={engine}",
                       "data.ray.num_workers=2", f"data.shard_dir={tmp_path}/shards",
                       fast=False)
        run_experiment(conf, tmp_path / engine)
    rec = [json.loads((tmp_path / e / "results.json").read_text()) for e in ("pandas", "ray")]
    assert rec[1]["protocol"]["data_engine"]["engine"] == "ray"
    assert rec[0]["protocol"]["data_fingerprint"] == rec[1]["protocol"]["data_fingerprint"]
    assert rec[0]["metrics"]["test"] == rec[1]["metrics"]["test"]
    assert rec[0]["metrics"]["test"]


@pytest.mark.slow
def test_a_worker_error_is_the_duckdb_error_and_nothing_is_written(compose, tmp_path,
                                                                  local_ray):
    """A recframe error raised inside a Ray worker (leave_one_out on users with one event
    each) reaches the caller as the duckdb engine raises it (counted in the worker's user
    range: 30 of 30 users there, 60 of 60 under duckdb); no manifest, no staging."""
    from recframe.errors import DataError

    path = tmp_path / "log.parquet"
    pd.DataFrame([[u, u % 7, 5.0, u] for u in range(60)],
                 columns=["u", "i", "r", "t"]).to_parquet(path)
    overrides = ("dataset=csv", f"dataset.path={path}", "dataset.columns.user_id=u",
                 "dataset.columns.item_id=i", "dataset.columns.rating=r",
                 "dataset.columns.timestamp=t", "preprocess=none", "split=leave_one_out")
    messages = []
    for engine in (("data.engine=duckdb",), RAY):
        with pytest.raises(DataError) as info:
            _prepare(compose, *overrides, *engine, f"data.shard_dir={tmp_path}/s")
        messages.append(str(info.value))
    assert messages[0].replace("60 of 60", "30 of 30") == messages[1]
    assert not (tmp_path / "s" / "manifest.json").exists()
    assert not (tmp_path / ".s.ray").exists()

"""The ``anonymize`` preprocessor: keyed-hash ids, consistent everywhere, key never on disk."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from recframe.api import ConfigError, Dataset
from recframe.runner import run_experiment
from recframe_preprocess.anonymize import DEFAULT_KEY_ENV, build_anonymize, hash_ids

KEY = "k3y-0f9c2b7e5d1a4c8e-not-in-any-output"
BIN = Path(sys.executable).parent / "recframe"


def cfg(**kw):
    return OmegaConf.create({"name": "anonymize", **kw})


@pytest.fixture
def key_env(monkeypatch):
    monkeypatch.setenv(DEFAULT_KEY_ENV, KEY)
    return KEY


def dataset(string_ids: bool, users_as_column: bool = False) -> Dataset:
    users = ["alice", "bob", "carol", "dave"] if string_ids else [101, 202, 303, 404]
    items = ["x", "y", "z"] if string_ids else [7, 8, 9]
    inter = pd.DataFrame({
        "user_id": [users[i] for i in (0, 0, 1, 2, 2, 2, 3)],
        "item_id": [items[i] for i in (0, 1, 1, 0, 1, 2, 2)],
        "rating": [5.0, 3.0, 4.0, 1.0, 2.0, 5.0, 4.0],
        "timestamp": [1, 2, 3, 4, 5, 6, 7],
    }, index=[10, 11, 12, 13, 14, 15, 16])
    user_frame = pd.DataFrame({"age": [20, 30, 40, 50]},
                              index=pd.Index(users, name="user_id"))
    if users_as_column:
        user_frame = user_frame.reset_index()
    item_frame = pd.DataFrame({"genre": ["a", "b", "c"]}, index=pd.Index(items, name="item_id"))
    return Dataset(inter, items=item_frame, users=user_frame, name="toy")


def frame_ids(frame: pd.DataFrame, col: str) -> list:
    return list(frame[col]) if col in frame.columns else list(frame.index)


@pytest.mark.parametrize("string_ids", [False, True])
@pytest.mark.parametrize("users_as_column", [False, True])
def test_user_ids_replaced_consistently_and_nothing_raw_survives(key_env, string_ids,
                                                                 users_as_column):
    ds = dataset(string_ids, users_as_column)
    before = copy.deepcopy(ds.interactions)
    out = build_anonymize(cfg())(ds)
    pd.testing.assert_frame_equal(ds.interactions, before)  # pure
    raw_users = set(ds.interactions["user_id"])
    new = out.interactions
    assert list(new.index) == list(ds.interactions.index)
    pd.testing.assert_frame_equal(new.drop(columns="user_id"),
                                  ds.interactions.drop(columns="user_id"))
    assert not raw_users & set(new["user_id"])
    assert all(isinstance(u, str) and len(u) == 16 for u in new["user_id"])
    # one raw id <-> one hash (a bijection on the ids present)
    pairs = set(zip(ds.interactions["user_id"], new["user_id"], strict=True))
    assert len(pairs) == len(raw_users) == new["user_id"].nunique()
    # the users frame is re-keyed with the same hashes, rows still aligned
    mapping = dict(pairs)
    old_ids = frame_ids(ds.users, "user_id")
    new_ids = frame_ids(out.users, "user_id")
    assert new_ids == [mapping[u] for u in old_ids]
    assert out.users["age"].tolist() == ds.users["age"].tolist()
    if not users_as_column:
        assert out.users.index.name == "user_id"
    assert not raw_users & set(new_ids)
    # items untouched by default
    pd.testing.assert_series_equal(new["item_id"], ds.interactions["item_id"])
    assert out.items is ds.items


def test_items_option_rekeys_item_ids_and_item_frame(key_env):
    ds = dataset(string_ids=True)
    out = build_anonymize(cfg(items=True))(ds)
    raw_items = set(ds.interactions["item_id"])
    mapping = dict(zip(ds.interactions["item_id"], out.interactions["item_id"], strict=True))
    assert not raw_items & set(out.interactions["item_id"])
    assert list(out.items.index) == [mapping[i] for i in ds.items.index]
    assert out.items.index.name == "item_id"
    # user 'x' and item 'x' would not collide: the id spaces are separated
    assert hash_ids(["x"], KEY.encode(), "user")[0] != hash_ids(["x"], KEY.encode(), "item")[0]


def test_features_still_join_after_encoding(key_env):
    from recframe.data.encode import encode
    from recframe.data.types import Split

    ds = build_anonymize(cfg())(dataset(string_ids=False))
    data = encode(Split(ds, ds.with_interactions(ds.interactions.iloc[:0]),
                        ds.with_interactions(ds.interactions.iloc[:0])))
    ages = dict(zip(dataset(False).users.index, dataset(False).users["age"], strict=True))
    raw_of = dict(zip(ds.interactions["user_id"], dataset(False).interactions["user_id"],
                      strict=True))
    for code, hashed in enumerate(data.user_ids):
        assert data.user_features["age"].iloc[code] == ages[raw_of[hashed]]


def test_deterministic_for_a_key_and_different_for_another(monkeypatch):
    ds = dataset(string_ids=False)
    monkeypatch.setenv(DEFAULT_KEY_ENV, "first")
    a = build_anonymize(cfg())(ds).interactions["user_id"]
    b = build_anonymize(cfg())(ds).interactions["user_id"]
    pd.testing.assert_series_equal(a, b)
    monkeypatch.setenv(DEFAULT_KEY_ENV, "second")
    c = build_anonymize(cfg())(ds).interactions["user_id"]
    assert not set(a) & set(c)


def test_custom_key_env_and_length(monkeypatch):
    monkeypatch.delenv(DEFAULT_KEY_ENV, raising=False)
    monkeypatch.setenv("MY_SECRET", "abc")
    out = build_anonymize(cfg(key_env="MY_SECRET", length=32))(dataset(True))
    assert {len(u) for u in out.interactions["user_id"]} == {32}


def test_missing_ids_stay_missing(key_env):
    values = pd.Series([1.0, np.nan, 1.0, 2.0])
    out = hash_ids(values, b"k", "user")
    assert out[0] == out[2] and out[0] != out[3] and out[1] is None


def test_no_key_is_a_config_error_saying_how_to_set_it(monkeypatch):
    monkeypatch.delenv(DEFAULT_KEY_ENV, raising=False)
    with pytest.raises(ConfigError, match=f"environment variable {DEFAULT_KEY_ENV} is not set"):
        build_anonymize(cfg())
    monkeypatch.setenv(DEFAULT_KEY_ENV, "")
    with pytest.raises(ConfigError, match="export RECFRAME_ANON_KEY="):
        build_anonymize(cfg())


def test_key_in_config_is_refused_without_echoing_it(key_env):
    with pytest.raises(ConfigError, match="do not put the key in the config") as err:
        build_anonymize(cfg(key="hunter2-secret"))
    assert "hunter2-secret" not in str(err.value)


@pytest.mark.parametrize("bad, fragment", [
    ({"items": "yes"}, "items must be true or false"),
    ({"length": 4}, "length must be an integer >= 8"),
    ({"length": 65}, "length must be an integer in"),
    ({"key_env": 3}, "key_env must be the name of an environment variable"),
    ({"users": False}, "nothing to anonymize"),
    ({"salt": "x"}, "unknown key 'salt'"),
])
def test_bad_parameters(key_env, bad, fragment):
    with pytest.raises(ConfigError, match=fragment):
        build_anonymize(cfg(**bad))


def test_registered_and_config_composes():
    from recframe.hydra_app import compose_config
    from recframe.plugin import PluginManager

    assert PluginManager().preprocessors.get("anonymize").build is build_anonymize
    conf = compose_config(["preprocess=implicit_anonymized"])
    steps = OmegaConf.to_container(conf.preprocess)
    assert [s["name"] for s in steps] == ["dedup", "binarize", "anonymize"]
    assert "key" not in steps[-1] and steps[-1]["key_env"] == DEFAULT_KEY_ENV


# --------------------------------------------------------------------------- real runs


def files_containing(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def check_per_user(run_dir: Path, raw_ids: list[str]) -> None:
    per_user = pd.read_parquet(run_dir / "per_user.parquet")
    assert len(per_user) > 0
    users = set(per_user["user_id"])
    assert not users & set(raw_ids)
    assert all(len(u) == 16 and all(c in "0123456789abcdef" for c in u) for u in users)
    data = (run_dir / "per_user.parquet").read_bytes()
    assert not [r for r in raw_ids[:20] if r.encode() in data]


def test_key_never_written_by_a_run(compose, tmp_path, key_env):
    cfg = compose("preprocess=implicit_anonymized", "model=pop", "dataset.string_ids=true",
                  "dataset.n_users=120", "dataset.n_items=80")
    run_dir = tmp_path / "run"
    results = run_experiment(cfg, run_dir)
    assert results["status"] == "ok"
    assert files_containing(run_dir, KEY.encode()) == []
    record = json.loads((run_dir / "results.json").read_text())
    assert record["protocol"]["preprocess"][-1] == {
        "name": "anonymize", "key_env": DEFAULT_KEY_ENV, "items": False, "length": 16}
    check_per_user(run_dir, [f"u{i}" for i in range(100, 120)])


@pytest.mark.slow
def test_key_never_written_by_the_cli(tmp_path):
    env = {**os.environ, "RECFRAME_OUTPUT_DIR": str(tmp_path / "out"), "WANDB_MODE": "offline",
           DEFAULT_KEY_ENV: KEY}
    out = subprocess.run(
        [str(BIN), "run", "dataset=synthetic", "preprocess=implicit_anonymized", "model=pop",
         "dataset.string_ids=true", "dataset.n_users=120", "dataset.n_items=80",
         "logger=csv"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert KEY not in out.stdout + out.stderr
    run_dir = next((tmp_path / "out").rglob("results.json")).parent
    assert (run_dir / ".hydra" / "config.yaml").exists()
    assert files_containing(tmp_path / "out", KEY.encode()) == []
    check_per_user(run_dir, [f"u{i}" for i in range(100, 120)])

"""Bad input fails before any training starts, with a message that says how to fix it.

Each case runs the real pipeline (`run_experiment` on a composed config) and
checks the error text, the failed `results.json`, and that no checkpoint exists.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recframe.errors import ConfigError, DataError, RecframeError, UnknownNameError
from recframe.runner import run_experiment


def _fails_before_training(cfg, run_dir: Path, error: type, *fragments: str) -> str:
    with pytest.raises(error) as info:
        run_experiment(cfg, run_dir)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    record = json.loads((run_dir / "results.json").read_text())
    assert record["status"] == "failed" and record["error"]["user_error"]
    assert not (run_dir / "checkpoints").exists()
    return message


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ratings.csv"
    path.write_text(text)
    return path


GOOD_ROWS = "".join(f"{u},{i},4,{u * 100 + i}\n" for u in range(1, 6) for i in range(1, 8))


def test_missing_data_dir_says_where_it_looked(compose, tmp_path, monkeypatch):
    monkeypatch.delenv("RECFRAME_DATA_DIR", raising=False)
    cfg = compose("dataset=ml-100k", f"dataset.path={tmp_path / 'nowhere'}",
                  "dataset.download=false", fast=False)
    _fails_before_training(cfg, tmp_path / "run", DataError, str(tmp_path / "nowhere"))


def test_missing_data_dir_without_path_names_the_settings(compose, tmp_path, monkeypatch):
    monkeypatch.delenv("RECFRAME_DATA_DIR", raising=False)
    cfg = compose("dataset=ml-100k", f"dataset.cache_dir={tmp_path / 'cache'}",
                  "dataset.download=false", fast=False)
    _fails_before_training(cfg, tmp_path / "run", DataError, "dataset.path",
                           "RECFRAME_DATA_DIR")


def test_malformed_line_names_file_and_line(compose, tmp_path):
    path = _csv(tmp_path, "user_id,item_id,rating,timestamp\n1,2,4,10\n1,3,4,11,99\n")
    cfg = compose("dataset=csv", f"dataset.path={path}", "preprocess=none", fast=False)
    _fails_before_training(cfg, tmp_path / "run", DataError, "ratings.csv", "line 3")


def test_misnamed_column_lists_available_columns(compose, tmp_path):
    path = _csv(tmp_path, "userid,item_id,rating,timestamp\n" + GOOD_ROWS)
    cfg = compose("dataset=csv", f"dataset.path={path}", "preprocess=none", fast=False)
    msg = _fails_before_training(cfg, tmp_path / "run", DataError, "user_id", "userid")
    assert "dataset.columns" in msg


def test_nan_text_rating_is_rejected_with_line(compose, tmp_path):
    path = _csv(tmp_path, "user_id,item_id,rating,timestamp\n" + GOOD_ROWS + "1,9,nan,5\n")
    cfg = compose("dataset=csv", f"dataset.path={path}", "preprocess=none", fast=False)
    _fails_before_training(cfg, tmp_path / "run", DataError, "ratings.csv", "line 37", "'nan'")


@pytest.mark.parametrize("bad", ["inf", "-inf"])
def test_non_finite_rating_is_rejected_with_row_and_fix(compose, tmp_path, bad):
    path = _csv(tmp_path, "user_id,item_id,rating,timestamp\n" + GOOD_ROWS + f"1,9,{bad},5\n")
    cfg = compose("dataset=csv", f"dataset.path={path}", "preprocess=none", fast=False)
    _fails_before_training(cfg, tmp_path / "run", DataError, "'rating'", "NaN/inf",
                           "drop_invalid")


def test_non_finite_rating_dropped_when_asked(compose, tmp_path):
    path = _csv(tmp_path, "user_id,item_id,rating,timestamp\n" + GOOD_ROWS + "1,9,inf,5\n")
    cfg = compose("dataset=csv", f"dataset.path={path}", "model=pop", "logger=none", fast=False)
    cfg.preprocess = [{"name": "drop_invalid"}]
    assert run_experiment(cfg, tmp_path / "run")["status"] == "ok"


def test_empty_after_filtering(compose, tmp_path):
    cfg = compose("preprocess=implicit_5core", "preprocess.2.user_min=100000")
    _fails_before_training(cfg, tmp_path / "run", DataError, "kcore")


def test_unknown_plugin_lists_available(compose, tmp_path):
    cfg = compose("model.name=bprr")
    msg = _fails_before_training(cfg, tmp_path / "run", UnknownNameError, "unknown model 'bprr'",
                                 "Did you mean 'bpr'?", "model.name")
    assert "pop" in msg


def test_unknown_dataset_and_splitter(compose, tmp_path):
    _fails_before_training(compose("dataset.name=ml100k"), tmp_path / "a", UnknownNameError,
                           "Did you mean 'ml-100k'?")
    _fails_before_training(compose("split.name=randm"), tmp_path / "b", UnknownNameError,
                           "Did you mean 'random'?")


def test_unknown_metric_suggests_closest(compose, tmp_path):
    cfg = compose("metrics.names=[ndcg,recal]")
    _fails_before_training(cfg, tmp_path / "run", ConfigError, "unknown metric 'recal'",
                           "Did you mean 'recall'?", "metrics.names")


@pytest.mark.parametrize("ks, fragment", [("[0]", "positive integers"),
                                          ("[10,-5]", "positive integers"),
                                          ("[]", "non-empty")])
def test_bad_k(compose, tmp_path, ks, fragment):
    _fails_before_training(compose(f"metrics.ks={ks}"), tmp_path / "run", ConfigError,
                           "metrics.ks", fragment)


def test_monitor_k_not_computed(compose, tmp_path):
    _fails_before_training(compose("metrics.monitor=ndcg@5"), tmp_path / "run", ConfigError,
                           "metrics.monitor", "K=5")


def test_wrong_hyperparameter_type(compose, tmp_path):
    _fails_before_training(compose("model.embedding_dim=big"), tmp_path / "run", ConfigError,
                           "model.embedding_dim", "'big'")


def test_every_user_error_is_a_recframe_error():
    for cls in (ConfigError, DataError, UnknownNameError):
        assert issubclass(cls, RecframeError)

"""Run tracking: CSV logs by default, wandb offline unless WANDB_MODE says otherwise."""

from __future__ import annotations

import time

import pandas as pd

from recframe.runner import run_experiment

SMALL = ["dataset.n_users=120", "dataset.n_items=60", "model=bpr", "trainer.max_epochs=2"]


def test_csv_logger_writes_epoch_metrics(compose, tmp_path):
    results = run_experiment(compose(*SMALL, "logger=csv"), tmp_path)
    frame = pd.read_csv(tmp_path / "logs" / "metrics.csv")
    assert {"val/ndcg@10", "train/loss", "test/ndcg@10"} <= set(frame.columns)
    logged = frame["test/ndcg@10"].dropna().iloc[-1]
    assert logged == results["metrics"]["test"]["ndcg@10"]


def _wandb_record(path, last_key: bytes, timeout_s: float = 60.0) -> bytes:
    """The offline run file once ``last_key`` is in it. wandb's writer is a separate
    process (wandb-core): on a loaded machine the file can still be filling for a
    moment after ``wandb.finish()`` returns (seen once in CI: header bytes only)."""
    deadline = time.monotonic() + timeout_s
    record = path.read_bytes()
    while last_key not in record and time.monotonic() < deadline:
        time.sleep(0.2)
        record = path.read_bytes()
    return record


def test_wandb_logs_offline_run_holding_the_metrics(compose, tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)  # the default must be offline
    results = run_experiment(compose(*SMALL, "logger=wandb"), tmp_path)
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, "wandb must write exactly one offline run"
    record = _wandb_record(next(runs[0].glob("run-*.wandb")), b"test/recall@20")
    for key in ("val/ndcg@10", "test/ndcg@10", "test/recall@20"):
        assert key.encode() in record, key
    test_ndcg = results["metrics"]["test"]["ndcg@10"]
    assert repr(test_ndcg).encode() in record  # the value itself, as wandb's JSON
    assert (tmp_path / "logs" / "metrics.csv").exists()  # CSV stays on beside wandb

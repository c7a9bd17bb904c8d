"""Crash and resume: a run killed with SIGKILL resumes from its last checkpoint and ends
with the same test metrics as an uninterrupted run with the same seed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent / "recframe"
OVERRIDES = ["model=bpr", "dataset=synthetic", "dataset.n_users=2000", "dataset.n_items=400",
             "preprocess=none", "trainer.max_epochs=6", "optim.lr=0.01",
             "callbacks.early_stopping.patience=100", "logger=csv"]


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "RECFRAME_OUTPUT_DIR": str(tmp_path / "out"), "WANDB_MODE": "offline"}


def _wait_for_stable_checkpoint(run_root: Path, proc: subprocess.Popen, timeout: float = 300):
    deadline = time.monotonic() + timeout
    last_size = -1
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the run finished before it could be killed"
        found = list(run_root.rglob("checkpoints/last.ckpt"))
        if found:
            size = found[0].stat().st_size
            if size == last_size and size > 0:
                return found[0].parent.parent
            last_size = size
        time.sleep(0.2)
    raise AssertionError("no checkpoint appeared")


def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path):
    env = _env(tmp_path)
    # an interrupted run: killed (SIGKILL) once its first checkpoint is on disk
    proc = subprocess.Popen([str(BIN), "run", *OVERRIDES], env=env,
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        run_dir = _wait_for_stable_checkpoint(tmp_path / "out" / "runs", proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not (run_dir / "per_user.parquet").exists()

    resumed = subprocess.run([str(BIN), "run", f"resume={run_dir}"], env=env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    record = json.loads((run_dir / "results.json").read_text())
    assert record["status"] == "ok"
    assert record["resumed_from"].endswith("last.ckpt")

    fresh = subprocess.run([str(BIN), "run", *OVERRIDES, f"hydra.run.dir={tmp_path / 'fresh'}"],
                           env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    expected = json.loads((tmp_path / "fresh" / "results.json").read_text())
    assert record["metrics"]["test"] == pytest.approx(expected["metrics"]["test"], abs=1e-6)
    assert record["best_epoch"] == expected["best_epoch"]
    assert record["metrics"]["valid"] == pytest.approx(expected["metrics"]["valid"], abs=1e-6)


def test_resume_of_a_non_run_dir_is_a_clear_error(tmp_path):
    out = subprocess.run([str(BIN), "run", f"resume={tmp_path}"], env=_env(tmp_path),
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "not a recframe run dir" in out.stderr

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
ROOT = Path(__file__).resolve().parents[1]
OVERRIDES = ["model=bpr", "dataset=synthetic", "dataset.n_users=2000", "dataset.n_items=400",
             "preprocess=none", "trainer.max_epochs=6", "optim.lr=0.01",
             "callbacks.early_stopping.patience=100", "logger=csv"]


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "RECFRAME_OUTPUT_DIR": str(tmp_path / "out"), "WANDB_MODE": "offline"}


def _wait_for(marker: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended before it reached the hanging epoch"
        if marker.exists():
            return
        time.sleep(0.2)
    raise AssertionError("the run never reached the hanging epoch")


def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path):
    env = _env(tmp_path)
    # an interrupted run: it hangs at the start of epoch 2 (after last.ckpt of epoch 1 is
    # written) and is killed there with SIGKILL, whatever the machine's speed
    marker = tmp_path / "hanging"
    hang = ["+callbacks.hang._target_=tests.hang_callback.HangAtEpochStart",
            "+callbacks.hang.epoch=2", f"+callbacks.hang.marker={marker}"]
    run_dir = tmp_path / "interrupted"
    env_with_tests = {**env, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [env.get("PYTHONPATH")])])}
    proc = subprocess.Popen([str(BIN), "run", *OVERRIDES, *hang, f"hydra.run.dir={run_dir}"],
                            env=env_with_tests, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(marker, proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert (run_dir / "checkpoints" / "last.ckpt").exists()
    assert not (run_dir / "per_user.parquet").exists()

    resumed = subprocess.run([str(BIN), "run", f"resume={run_dir}"], env=env_with_tests,
                             cwd=tmp_path,
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

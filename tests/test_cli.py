"""The `recframe` command as a user runs it: a subprocess, real output directories."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent / "recframe"


def recframe(*args: str, cwd: Path, env_extra: dict[str, str] | None = None,
             timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "RECFRAME_OUTPUT_DIR": str(cwd / "out"), "WANDB_MODE": "offline",
           **(env_extra or {})}
    return subprocess.run([str(BIN), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_plugins_lists_every_kind(tmp_path):
    out = recframe("plugins", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    for name in ("pop", "bpr", "recall", "precision", "ndcg", "mrr", "hit", "map", "ml-100k",
                 "csv", "synthetic", "dedup", "binarize", "kcore", "normalize", "drop_invalid",
                 "random", "temporal", "leave_one_out"):
        assert name in text, name


def test_unknown_command_suggests(tmp_path):
    out = recframe("rnu", cwd=tmp_path)
    assert out.returncode == 2 and "Did you mean 'run'?" in out.stderr


def test_unknown_model_is_a_clear_error_before_training(tmp_path):
    out = recframe("run", "model=bpt", "dataset=synthetic", cwd=tmp_path, timeout=120)
    assert out.returncode != 0
    assert "bpr" in out.stderr and "model" in out.stderr
    assert "Traceback" not in out.stderr


def test_bad_k_is_a_clear_error(tmp_path):
    out = recframe("run", "dataset=synthetic", "metrics.ks=[0]", cwd=tmp_path, timeout=120)
    assert out.returncode == 2, out.stderr
    assert "metrics.ks" in out.stderr and "Traceback" not in out.stderr
    record = json.loads(next((tmp_path / "out").rglob("results.json")).read_text())
    assert record["status"] == "failed" and record["error"]["user_error"]


@pytest.mark.slow
def test_single_run_on_synthetic_writes_run_dir(tmp_path):
    out = recframe("run", "dataset=synthetic", "model=bpr", "trainer.max_epochs=3",
                   cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "ndcg" in out.stdout
    results = list((tmp_path / "out" / "runs").rglob("results.json"))
    assert len(results) == 1
    record = json.loads(results[0].read_text())
    assert record["status"] == "ok"
    assert (results[0].parent / "per_user.parquet").exists()
    assert list((results[0].parent / "logs").rglob("metrics.csv"))


@pytest.mark.slow
def test_multirun_two_models_two_seeds(tmp_path):
    out = recframe("run", "-m", "model=pop,bpr", "seed=0,1", "dataset=synthetic",
                   "trainer.max_epochs=2", cwd=tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    records = [json.loads(p.read_text()) for p in (tmp_path / "out" / "multirun").rglob(
        "results.json")]
    assert len(records) == 4
    assert all(r["status"] == "ok" for r in records)
    combos = {(r["config"]["model"]["name"], r["config"]["seed"]) for r in records}
    assert combos == {("pop", 0), ("pop", 1), ("bpr", 0), ("bpr", 1)}


@pytest.mark.slow
def test_default_experiment_on_movielens(tmp_path, ml100k_dir):
    """`make run`'s experiment: BPR-MF on ML-100K must clearly beat Pop."""
    env = {"RECFRAME_DATA_DIR": str(ml100k_dir.parent)}
    runs = {}
    for model in ("pop", "bpr"):
        out = recframe("run", f"model={model}", cwd=tmp_path, env_extra=env, timeout=900)
        assert out.returncode == 0, out.stderr[-3000:]
        path = next((tmp_path / "out" / "runs").glob(f"{model}-ml-100k/*/results.json"))
        runs[model] = json.loads(path.read_text())
    assert runs["bpr"]["protocol"]["data_fingerprint"] == runs["pop"]["protocol"][
        "data_fingerprint"]
    pop, bpr = (runs[m]["metrics"]["test"]["ndcg@10"] for m in ("pop", "bpr"))
    assert bpr > 1.15 * pop, (bpr, pop)


def test_plugins_lists_the_click_models_and_ctr_metrics():
    out = subprocess.run([sys.executable, "-m", "recframe.cli", "plugins"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    for name in ("lr", "fm", "deepfm", "dcnv2", "autoint", "din", "gauc", "ml-100k-ctr",
                 "synthetic_ctr", "criteo", "avazu"):
        assert re.search(rf"\b{re.escape(name)}\b", out.stdout), name

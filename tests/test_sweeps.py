"""Sweeps: failures are recorded and the sweep goes on; restarts skip finished jobs;
presets; Optuna search that resumes from its SQLite study."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from recframe.sweep import finished_result, monitored_value

BIN = Path(sys.executable).parent / "recframe"


def recframe(tmp_path: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "RECFRAME_OUTPUT_DIR": str(tmp_path / "out"), "WANDB_MODE": "offline"}
    return subprocess.run([str(BIN), "run", *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _records(root: Path) -> list[dict]:
    return [json.loads(p.read_text()) | {"_dir": p.parent.name}
            for p in sorted(root.rglob("results.json"))]


def test_finished_result_requires_same_config_and_ok(tmp_path):
    cfg = OmegaConf.create({"model": {"name": "bpr"}, "seed": 1})
    record = {"status": "ok", "config": {"model": {"name": "bpr"}, "seed": 1},
              "protocol": {"monitor": "val/ndcg@10"}, "metrics": {"valid": {"ndcg@10": 0.3}}}
    (tmp_path / "results.json").write_text(json.dumps(record))
    assert monitored_value(finished_result(tmp_path, cfg)) == 0.3
    assert finished_result(tmp_path, OmegaConf.create({"model": {"name": "bpr"}, "seed": 2})) \
        is None
    (tmp_path / "results.json").write_text(json.dumps(record | {"status": "failed"}))
    assert finished_result(tmp_path, cfg) is None


@pytest.mark.slow
def test_failing_job_is_recorded_and_sweep_continues_then_restart_skips(tmp_path):
    sweep_dir = tmp_path / "sweep"
    args = ["-m", "model=bpr", "model.embedding_dim=8,-1,16", "dataset=synthetic",
            "trainer.max_epochs=2", f"hydra.sweep.dir={sweep_dir}"]
    out = recframe(tmp_path, *args)
    assert out.returncode == 0, out.stderr[-3000:]
    records = {r["_dir"]: r for r in _records(sweep_dir)}
    assert [records[j]["status"] for j in ("0", "1", "2")] == ["ok", "failed", "ok"]
    assert "embedding_dim" in records["1"]["error"]["message"]
    assert "1 failed" in out.stderr + out.stdout
    mtimes = {j: (sweep_dir / j / "results.json").stat().st_mtime_ns for j in ("0", "2")}
    again = recframe(tmp_path, *args)  # restart the same sweep: finished jobs are skipped
    assert again.returncode == 0
    assert "already finished" in again.stderr + again.stdout
    for j, before in mtimes.items():
        assert (sweep_dir / j / "results.json").stat().st_mtime_ns == before


@pytest.mark.slow
def test_smoke_preset_runs_model_seed_grid(tmp_path):
    out = recframe(tmp_path, "-m", "+experiment=smoke", "trainer.max_epochs=2")
    assert out.returncode == 0, out.stderr[-3000:]
    combos = {(r["config"]["model"]["name"], r["config"]["seed"])
              for r in _records(tmp_path / "out")}
    assert combos == {("pop", 0), ("pop", 1), ("bpr", 0), ("bpr", 1)}


@pytest.mark.slow
def test_optuna_search_writes_best_params_and_resumes(tmp_path):
    import optuna

    args = ["-m", "hparams_search=bpr_optuna", "dataset=synthetic", "dataset.n_users=150",
            "dataset.n_items=80", "trainer.max_epochs=2", "hydra.sweeper.n_trials=4"]
    out = recframe(tmp_path, *args)
    assert out.returncode == 0, out.stderr[-3000:]
    best = OmegaConf.load(next((tmp_path / "out").rglob("optimization_results.yaml")))
    assert {"optim.lr", "model.embedding_dim", "model.reg"} <= set(best.best_params)
    storage = f"sqlite:///{tmp_path / 'out' / 'optuna' / 'bpr_synthetic.db'}"
    study = optuna.load_study(study_name="bpr_synthetic", storage=storage)
    assert len(study.trials) == 4
    values = [t.value for t in study.trials]
    assert best.best_value == max(values)
    again = recframe(tmp_path, *args[:-1], "hydra.sweeper.n_trials=2")  # restart: resumes
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Using an existing study" in again.stderr + again.stdout
    study = optuna.load_study(study_name="bpr_synthetic", storage=storage)
    assert len(study.trials) == 6


TINY = ["model=pop", "dataset=synthetic", "dataset.n_users=100", "dataset.n_items=50",
        "preprocess=none"]


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["joblib", "submitit_local"])
def test_parallel_launchers_give_each_job_one_gpu_round_robin(tmp_path, launcher):
    """joblib (local processes) and submitit's local executor (what SLURM jobs run through)
    both run the sweep; with gpu_round_robin=2 job i sees GPU i mod 2."""
    sweep_dir = tmp_path / "sweep"
    n_jobs = "hydra.launcher.n_jobs=2" if launcher == "joblib" else "hydra.launcher.timeout_min=10"
    out = recframe(tmp_path, "-m", f"hydra/launcher={launcher}", n_jobs, "gpu_round_robin=2",
                   *TINY, "seed=0,1,2", f"hydra.sweep.dir={sweep_dir}")
    assert out.returncode == 0, out.stderr[-3000:]
    records = {r["_dir"]: r for r in _records(sweep_dir)}
    assert sorted(records) == ["0", "1", "2"]
    assert all(r["status"] == "ok" for r in records.values())
    assert [records[j]["cuda_visible_devices"] for j in ("0", "1", "2")] == ["0", "1", "0"]
    assert [records[j]["config"]["seed"] for j in ("0", "1", "2")] == [0, 1, 2]
    if launcher == "submitit_local":
        assert (sweep_dir / ".submitit").is_dir()  # the jobs really went through submitit


@pytest.mark.slow
def test_wandb_runs_of_one_sweep_are_separate_and_share_a_group(tmp_path):
    sweep_dir = tmp_path / "sweeps" / "my-sweep"
    out = recframe(tmp_path, "-m", *TINY, "logger=wandb", "seed=0,1",
                   f"hydra.sweep.dir={sweep_dir}")
    assert out.returncode == 0, out.stderr[-3000:]
    runs = sorted(sweep_dir.rglob("offline-run-*"))
    assert len(runs) == 2, f"one wandb run per job expected, found {runs}"
    group = b"sweeps-my-sweep"  # named after the sweep dir
    for run in runs:
        record = next(run.glob("run-*.wandb")).read_bytes()
        assert group in record, f"{run}: wandb group missing"
        assert b"test/ndcg@10" in record
    ids = {run.name.rsplit("-", 1)[-1] for run in runs}
    assert len(ids) == 2  # two distinct runs, not one resumed twice


def test_slurm_preset_is_submitit_with_one_gpu_per_job(tmp_path):
    out = recframe(tmp_path, "hydra/launcher=slurm_one_gpu", "hydra.launcher.partition=gpu",
                   "--cfg", "hydra", "--package", "hydra.launcher", timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    launcher = OmegaConf.create(out.stdout)  # printed: only the hydra.launcher package
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.gpus_per_node, launcher.tasks_per_node, launcher.partition) == (1, 1, "gpu")

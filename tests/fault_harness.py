"""Kill-point and disk-fault harness shared by tests/test_faults*.py.

A run is executed in a forked child (cheap: torch is already imported) with the
``RECFRAME_FAULT_*`` variables of :mod:`recframe.faults`; a clean run first counts the
write points, then the harness stops the run at each one and checks what it left.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import signal
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from recframe import faults
from recframe.results import PER_USER_FILE, RESULTS_FILE

#: a tiny gradient-trained run (2 epochs: two rounds of checkpoints and logs)
TINY = ["dataset=synthetic", "dataset.n_users=60", "dataset.n_items=40", "preprocess=none",
        "model=bpr", "trainer.max_epochs=2", "optim.lr=0.01", "logger=csv",
        "metrics.ks=[10]", "callbacks.early_stopping.patience=100", "steps_per_execution=1"]


def _child(cfg_yaml: str, run_dir: str, env: dict[str, str], out: str) -> None:
    os.environ.update(env)
    # relative paths in a (fuzzed) config resolve inside the test's directory,
    # never in the repository the tests run from
    os.makedirs(Path(run_dir).parent, exist_ok=True)
    os.chdir(Path(run_dir).parent)
    torch.set_num_threads(1)
    faults.reset()
    from recframe.runner import run_experiment

    cfg = OmegaConf.create(cfg_yaml)
    try:
        run_experiment(cfg, Path(run_dir))
        Path(out).write_text("ok")
    except BaseException as exc:  # noqa: BLE001 - the parent judges the outcome
        Path(out).write_text(f"{type(exc).__module__}.{type(exc).__name__}\n{exc}")
    os._exit(0)


def run_child(cfg: DictConfig, run_dir: Path, env: dict[str, str] | None = None,
              timeout: float = 300) -> tuple[int | None, str]:
    """Run ``cfg`` into ``run_dir`` in a forked child; (exit code, outcome text).

    The exit code is ``-SIGKILL`` when a kill point fired; the outcome is ``ok``
    or ``<exception type>\\n<message>``."""
    out = run_dir.parent / f".{run_dir.name}.outcome"
    out.unlink(missing_ok=True)
    ctx = multiprocessing.get_context("fork")
    proc = ctx.Process(target=_child, args=(OmegaConf.to_yaml(cfg), str(run_dir),
                                            dict(env or {}), str(out)))
    proc.start()
    proc.join(timeout)
    if proc.is_alive():
        proc.kill()
        proc.join()
        raise AssertionError(f"the run hung for {timeout}s (env {env})")
    return proc.exitcode, (out.read_text() if out.exists() else "")


def count_writes(cfg: DictConfig, run_dir: Path) -> list[tuple[int, str, str]]:
    """The write points of a clean run of ``cfg``: (n, what, path relative to the run dir)."""
    log_file = run_dir.parent / f".{run_dir.name}.writes"
    log_file.unlink(missing_ok=True)
    code, outcome = run_child(cfg, run_dir, {faults.FAULT_LOG: str(log_file)})
    assert code == 0 and outcome == "ok", outcome
    rows = [line.split("\t") for line in log_file.read_text().splitlines()]
    return [(int(n), what, str(Path(path).relative_to(run_dir))) for n, what, path in rows]


def with_resume(cfg: DictConfig, run_dir: Path) -> DictConfig:
    resumed = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    resumed.resume = str(run_dir)
    return resumed


def check_nothing_torn(run_dir: Path) -> list[str]:
    """Every file under its final name is complete (parses); returns the temp files.

    ``results.json`` must be valid JSON, ``*.parquet`` readable, ``*.ckpt`` loadable,
    ``metrics.csv`` a full table, ``.hydra/*.yaml`` valid YAML."""
    temps = []
    for path in sorted(p for p in run_dir.rglob("*") if p.is_file()):
        if path.name.endswith((".tmp", ".outcome", ".writes", ".log")):
            temps.append(path.name) if path.name.endswith(".tmp") else None
            continue
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".parquet":
            pd.read_parquet(path)
        elif path.suffix == ".ckpt":
            torch.load(path, map_location="cpu", weights_only=False)
        elif path.suffix == ".csv":
            frame = pd.read_csv(path)
            assert "epoch" in frame.columns, f"{path} lacks its header"
        elif path.suffix == ".yaml":
            OmegaConf.load(path)
    return temps


def fingerprint_outputs(run_dir: Path) -> dict[str, str]:
    """SHA-256 of every result, checkpoint and log file (what a resume must not change)."""
    return {str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(run_dir.rglob("*")) if p.is_file()
            and not p.name.endswith((".tmp", ".log")) and ".hydra" not in p.parts}


def outcome_metrics(run_dir: Path) -> dict[str, Any]:
    record = json.loads((run_dir / RESULTS_FILE).read_text())
    assert record["status"] == "ok", record.get("error")
    per_user = pd.read_parquet(run_dir / PER_USER_FILE)
    return {"test": record["metrics"]["test"], "valid": record["metrics"]["valid"],
            "best_epoch": record["best_epoch"], "per_user_rows": len(per_user)}


SIGKILL = -signal.SIGKILL

"""Sweep helpers: skipping finished jobs, GPU round-robin, the sweep summary callback."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from recframe.results import RESULTS_FILE

log = logging.getLogger(__name__)


def _comparable(config: Any) -> Any:
    """A config without the keys that may legitimately differ between restarts."""
    if isinstance(config, DictConfig):
        config = OmegaConf.to_container(config, resolve=True)
    config = dict(config or {})
    config.pop("output_root", None)
    config.pop("resume", None)  # resuming a finished run finds it finished
    return config


def finished_result(run_dir: Path, cfg: DictConfig) -> dict[str, Any] | None:
    """The ``ok`` results of an earlier run of the same config in ``run_dir``, else None."""
    path = Path(run_dir) / RESULTS_FILE
    if not path.exists():
        return None
    try:
        results = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if results.get("status") != "ok":
        return None
    if _comparable(results.get("config")) != _comparable(cfg):
        return None
    return results


def monitored_value(results: dict[str, Any]) -> float | None:
    """The monitored validation metric of a finished run (what sweepers optimize)."""
    monitor = results.get("protocol", {}).get("monitor", "").removeprefix("val/")
    value = results.get("metrics", {}).get("valid", {}).get(monitor)
    return float(value) if value is not None else None


def apply_gpu_round_robin(cfg: DictConfig, job_num: int) -> None:
    """With ``gpu_round_robin=N`` job ``i`` sees only GPU ``i mod N``.

    Sets ``CUDA_VISIBLE_DEVICES`` before CUDA is initialized in this process
    (always true for the first job of a fresh launcher worker). A worker that
    already initialized CUDA (joblib reuses processes) cannot change what it
    sees; then the job pins ``trainer.devices=[i mod N]`` instead.
    """
    n_gpus = int(cfg.get("gpu_round_robin") or 0)
    if n_gpus <= 0:
        return
    gpu = job_num % n_gpus
    import torch

    if not torch.cuda.is_initialized():
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
        log.info("job %d: CUDA_VISIBLE_DEVICES=%d", job_num, gpu)
    else:
        OmegaConf.update(cfg, "trainer.devices", [gpu], force_add=True)
        log.info("job %d: CUDA already initialized here; trainer.devices=[%d]", job_num, gpu)


class SweepSummary(Callback):
    """Hydra callback around a multirun.

    Before: creates the folder of a SQLite sweeper storage (Optuna studies).
    After: lists the jobs and names the failed ones.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        storage = OmegaConf.select(config, "hydra.sweeper.storage", default=None)
        if isinstance(storage, str) and storage.startswith("sqlite:///"):
            Path(storage.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        records = []
        for path in sorted(sweep_dir.rglob(RESULTS_FILE)):
            try:
                records.append((path.parent, json.loads(path.read_text())))
            except (OSError, json.JSONDecodeError):
                records.append((path.parent, {"status": "unreadable"}))
        failed = [(d, r) for d, r in records if r.get("status") != "ok"]
        log.info("sweep finished: %d jobs, %d ok, %d failed (%s)", len(records),
                 len(records) - len(failed), len(failed), sweep_dir)
        for run_dir, record in failed:
            error = record.get("error", {})
            log.warning("FAILED %s: %s: %s", run_dir, error.get("type"), error.get("message"))

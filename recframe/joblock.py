"""One process per run dir: the lock that keeps concurrent sweeps from mixing results.

Two sweeps started with the same ``hydra.sweep.dir`` give their job ``i`` the same
directory. The first process to reach a job dir holds ``<run dir>/.recframe.lock``
(a :class:`filelock.FileLock`) from the moment Hydra writes the job's ``.hydra/``
files until the job ends. Another process reaching the same dir

* waits up to ``$RECFRAME_LOCK_TIMEOUT`` seconds (default 10) and then, if the job
  finished with the same config, skips it like any finished job;
* fails the job with E876 (``RunDirLocked``) when the lock is still held (the other
  process is still running it), writing nothing into that dir;
* fails the job with E875 (``RunDirTaken``) when the dir holds the finished results
  of a different config (another sweep's job), writing nothing into it.

``recframe report`` reads the same lock to tell a running job from an interrupted one.
Under ``trainer=ddp`` only rank 0 holds it (Lightning relaunches the command for the
other ranks, in the same run dir).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from recframe.errors import ConfigError
from recframe.results import RESULTS_FILE

LOCK_FILE = ".recframe.lock"
LOCK_TIMEOUT_ENV = "RECFRAME_LOCK_TIMEOUT"
DEFAULT_TIMEOUT_S = 10.0


class RunDirLocked(ConfigError):
    """Another process is running in this run dir."""


class RunDirTaken(ConfigError):
    """The run dir holds the finished results of another config."""


_held: dict[Path, FileLock] = {}
_blocked: dict[Path, ConfigError] = {}


def _is_rank_zero() -> bool:
    return all(int(os.environ.get(v, "0") or 0) == 0 for v in ("LOCAL_RANK", "NODE_RANK"))


def lock_timeout() -> float:
    value = os.environ.get(LOCK_TIMEOUT_ENV, "")
    try:
        return float(value) if value else DEFAULT_TIMEOUT_S
    except ValueError:
        raise ConfigError(f"{LOCK_TIMEOUT_ENV}={value!r}: expected seconds, e.g. 30") from None


def is_running(run_dir: Path | str) -> bool:
    """Whether a live process holds ``run_dir``'s lock (a dead one's lock is free)."""
    path = Path(run_dir) / LOCK_FILE
    if not path.exists():
        return False
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return False


def _comparable(config: Any) -> Any:
    from recframe.sweep import _comparable as comparable

    return comparable(config)


def claim(run_dir: Path | str, config: Any) -> bool:
    """Take ``run_dir`` for this process (idempotent). False, with the reason kept for
    :func:`raise_if_blocked`, when another process holds it or it holds another
    config's finished results."""
    run_dir = Path(run_dir).resolve()
    if not _is_rank_zero():  # a DDP rank relaunched by Lightning: rank 0 holds the dir
        return True
    if run_dir in _held:
        return True
    if run_dir in _blocked:
        return False
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(run_dir / LOCK_FILE))
    timeout = lock_timeout()
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        _blocked[run_dir] = RunDirLocked(
            f"{run_dir} is in use: another recframe process has held its lock "
            f"({run_dir / LOCK_FILE}) for {timeout:g}s. Two sweeps with the same "
            f"hydra.sweep.dir? Give each its own, or rerun this one when the other has "
            f"finished (finished jobs are skipped); wait longer with "
            f"{LOCK_TIMEOUT_ENV}=<seconds>. Nothing was written into that directory.")
        return False
    taken = _other_config(run_dir, config)
    if taken is not None:
        lock.release()
        _blocked[run_dir] = RunDirTaken(
            f"{run_dir} holds the finished results of another config ({taken}); this job "
            f"would overwrite them. Give this sweep its own hydra.sweep.dir (or run dir). "
            f"Nothing was written into that directory.")
        return False
    _held[run_dir] = lock
    return True


def _other_config(run_dir: Path, config: Any) -> str | None:
    """A short description of how ``run_dir``'s ``ok`` results differ from ``config``."""
    path = run_dir / RESULTS_FILE
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if record.get("status") != "ok":
        return None
    theirs, ours = _comparable(record.get("config")), _comparable(config)
    if theirs == ours:
        return None
    diff = _first_difference(theirs, ours)
    return diff or "a different config"


def _first_difference(theirs: Any, ours: Any, prefix: str = "") -> str | None:
    if isinstance(theirs, dict) and isinstance(ours, dict):
        for key in sorted(set(theirs) | set(ours), key=str):
            found = _first_difference(theirs.get(key), ours.get(key), f"{prefix}{key}.")
            if found:
                return found
        return None
    if theirs != ours:
        return f"{prefix.rstrip('.')}={theirs!r} there, {ours!r} here"
    return None


def raise_if_blocked(run_dir: Path | str) -> None:
    error = _blocked.pop(Path(run_dir).resolve(), None)
    if error is not None:
        raise error


def release(run_dir: Path | str) -> None:
    lock = _held.pop(Path(run_dir).resolve(), None)
    if lock is not None:
        lock.release()

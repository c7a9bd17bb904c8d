"""Run outputs written atomically: ``results.json`` and ``per_user.parquet``."""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from recframe import faults

RESULTS_FILE = "results.json"
PER_USER_FILE = "per_user.parquet"
RERANK_FILE = "per_user_rerank.parquet"  # rerank=llm: per-user values, base and re-ranked
CALIBRATION_FILE = "calibration.json"  # CTR protocol: the reliability table of the test part


def _file_mode() -> int:
    """The mode a plain ``open(path, "w")`` would give: 0o666 minus the umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def _atomic_path(path: Path, what: str = "file"):
    """Yield a temp path in the same directory; rename over ``path`` on success.

    The rename is a counted write point (:mod:`recframe.faults`); a failed write
    removes the temp file and raises a coded :class:`~recframe.faults.OutputError`
    when the disk is full or the directory read-only.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise faults.output_error(exc, path) from exc
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _file_mode())  # mkstemp makes 0600; results are for the team to read
        faults.write_point(path, what)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise faults.output_error(exc, path) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write(path: Path, writer: Callable[[Path], None], what: str = "file") -> None:
    """Write a file through ``writer(tmp_path)`` and rename it into place.

    ``what`` names the kind of file at the write point (fault-injection logs).
    """
    with _atomic_path(Path(path), what) as tmp:
        writer(tmp)


_SECRET_WORDS = ("key", "secret", "token", "password")


def redact_secrets(obj: Any) -> Any:
    """A copy of ``obj`` with the values of secret-looking keys masked.

    Keys named like ``key``, ``api_key``, ``secret``, ``token``, ``password``
    never reach a results file, even when a user typed one into the config.
    """
    if isinstance(obj, dict):
        return {k: ("***" if isinstance(k, str) and k.lower().split("_")[-1] in _SECRET_WORDS
                    and v is not None else redact_secrets(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact_secrets(v) for v in obj]
    return obj


def write_json(path: Path, payload: dict[str, Any]) -> None:
    text = json.dumps(redact_secrets(payload), indent=2, sort_keys=False,
                      default=_json_default) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text), Path(path).name)


def write_parquet(path: Path, frame: pd.DataFrame) -> None:
    atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False), Path(path).name)


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    return str(obj)


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("recframe", "torch", "lightning", "hydra-core", "pluggy", "numpy", "pandas",
                 "scipy", "pyarrow"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def git_sha() -> str | None:
    """The commit of the recframe checkout, or None when not in a git work tree."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=5, check=True)
        sha = out.stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=here, capture_output=True, text=True, timeout=5)
        return sha + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def peak_memory_gib() -> dict[str, float]:
    """Peak resident memory of this process (and peak CUDA memory when used)."""
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if sys.platform == "darwin":
        rss_kib /= 1024
    out = {"peak_rss_gib": round(rss_kib / 2**20, 4)}
    try:
        import torch

        if torch.cuda.is_available() and torch.cuda.is_initialized():
            out["peak_cuda_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 4)
    except Exception:  # pragma: no cover - CUDA probing must never fail a run
        pass
    return out

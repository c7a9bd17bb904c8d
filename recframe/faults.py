"""Counted write points: where a test can kill the process or fill the disk on purpose.

Every file a run writes that something later reads back (``results.json``,
``per_user.parquet``, checkpoints, ``logs/metrics.csv``, Hydra's ``.hydra/*.yaml``,
caches) passes through :func:`write_point` just before it
becomes visible under its final name (the rename of :func:`recframe.results.atomic_write`).
Three environment variables drive it; unset, it only counts:

``RECFRAME_FAULT_AT=<n>``
    act at the ``n``-th write point of this process (1-based);
``RECFRAME_FAULT_KIND=kill|enospc|erofs``
    ``kill``: ``SIGKILL`` this process (the temp file stays behind, as after a power
    cut); ``enospc``: raise ``OSError(ENOSPC)`` as a full disk would; ``erofs``: raise
    ``OSError(EROFS)`` at this and every later write point (the disk went read-only);
``RECFRAME_FAULT_LOG=<file>``
    append ``<n>\\t<what>\\t<path>`` for every write point (how a test enumerates them).

:func:`output_error` turns the ``OSError`` of a failed write into a coded
:class:`OutputError` (E870 disk full, E871 not writable) that names the file and
says that nothing half-written was left under the final name.
"""

from __future__ import annotations

import errno
import os
import signal
from pathlib import Path

from recframe.errors import RecframeError

FAULT_AT = "RECFRAME_FAULT_AT"
FAULT_KIND = "RECFRAME_FAULT_KIND"
FAULT_LOG = "RECFRAME_FAULT_LOG"
KINDS = ("kill", "enospc", "erofs")

_count = 0

#: errno values of a write that failed because of the disk, not of recframe
DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
NOT_WRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS}


class OutputError(RecframeError, OSError):
    """A result, checkpoint or cache file could not be written (disk full, read-only)."""

    def __str__(self) -> str:  # OSError would format (errno, strerror)
        return str(self.args[0]) if self.args else ""


def write_count() -> int:
    """How many write points this process has passed."""
    return _count


def reset() -> None:
    """Start counting from zero (tests that run several jobs in one process)."""
    global _count
    _count = 0


def write_point(path: Path | str, what: str = "file") -> None:
    """Count one write of ``path``; kill the process or raise ENOSPC when told to."""
    global _count
    _count += 1
    log_file = os.environ.get(FAULT_LOG)
    if log_file:
        with open(log_file, "a", encoding="utf-8") as out:  # test instrumentation only
            out.write(f"{_count}\t{what}\t{path}\n")
    at = os.environ.get(FAULT_AT)
    kind = os.environ.get(FAULT_KIND, "kill")
    if not at or int(at) > _count or (int(at) < _count and kind != "erofs"):
        return
    if kind == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if kind in ("enospc", "erofs"):
        code = errno.ENOSPC if kind == "enospc" else errno.EROFS
        raise OSError(code, os.strerror(code), str(path))
    raise ValueError(f"{FAULT_KIND}={kind!r}: expected one of {list(KINDS)}")


def output_error(exc: OSError, path: Path | str) -> OSError:
    """The coded error for a write of ``path`` that failed with ``exc``, or ``exc``
    itself when the failure is not the disk's (a bug to report as it is)."""
    if isinstance(exc, OutputError):
        return exc
    if exc.errno in DISK_FULL:
        return OutputError(
            f"cannot write {path}: no space left on the device. Nothing "
            f"half-written was left under that name (the write went to a temp file, now "
            f"removed). Free some space, then rerun; an interrupted run continues with "
            f"`recframe run resume=<run dir>`.")
    if exc.errno in NOT_WRITABLE:
        return OutputError(
            f"cannot write {path}: {os.strerror(exc.errno or errno.EACCES).lower()}. "
            f"Write the outputs somewhere writable: set RECFRAME_OUTPUT_DIR (or "
            f"output_root=..., hydra.run.dir=...).")
    return exc


def check_writable(directory: Path | str, what: str) -> None:
    """Fail with E871 unless ``directory`` (or its nearest existing parent, which a run
    would create it in) can be written."""
    here = Path(directory).expanduser().absolute()
    while not here.exists() and here != here.parent:
        here = here.parent
    if not here.is_dir() or not os.access(here, os.W_OK | os.X_OK):
        raise OutputError(
            f"cannot write {what} {directory}: {here} is not a writable directory. "
            f"Write the outputs somewhere writable: set RECFRAME_OUTPUT_DIR (or "
            f"output_root=..., hydra.run.dir=...).")


def remove_stale_temps(run_dir: Path | str) -> list[Path]:
    """Delete the temp files (``.<name>.<random>.tmp``) a killed attempt left in
    ``run_dir``; called when a run resumes there (the resuming process owns the dir).
    Nothing reads them: files become visible only by their rename."""
    removed = []
    for path in Path(run_dir).rglob(".*.tmp"):
        if path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed

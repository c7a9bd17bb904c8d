"""Download a zip archive once, verify file checksums, and install it atomically."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from recframe.api import DataError

from .fingerprint import md5_file

log = logging.getLogger(__name__)

LOCK_TIMEOUT_S = 600.0


def has_files(directory: Path, names: Mapping[str, str] | list[str]) -> bool:
    """True when ``directory`` holds every file in ``names``."""
    return all((directory / n).is_file() for n in names)


def download_and_extract(url: str, target: Path, checksums: Mapping[str, str], *,
                         timeout: float = 60.0, manual_hint: str = "") -> Path:
    """Make ``target`` a directory holding the files named in ``checksums``.

    Under a file lock next to ``target`` (so concurrent processes download once):
    download ``url`` to a temporary file, extract it into a temporary directory,
    find the directory holding the expected files, check each md5, then move it
    to ``target`` with one atomic rename. Nothing is left behind on failure.
    """
    target = Path(target)
    with target_lock(target):
        if has_files(target, list(checksums)):
            return target  # another process finished while we waited
        if target.exists():
            raise DataError(
                f"{target} exists but lacks some of {sorted(checksums)}; delete it to "
                f"download again.{manual_hint}"
            )
        _install(url, target, checksums, timeout=timeout, manual_hint=manual_hint)
    return target


@contextmanager
def target_lock(target: Path) -> Iterator[None]:
    """Hold the file lock ``<target>.lock`` (so concurrent processes download once);
    a :class:`DataError` after :data:`LOCK_TIMEOUT_S` seconds of waiting."""
    target.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(target) + ".lock")
    try:
        with lock.acquire(timeout=LOCK_TIMEOUT_S):
            yield
    except Timeout:
        raise DataError(
            f"waited {LOCK_TIMEOUT_S:.0f}s for another process downloading into {target} "
            f"(lock {lock.lock_file}); if none is running, delete the lock file."
        ) from None


def _install(url: str, target: Path, checksums: Mapping[str, str], *, timeout: float,
             manual_hint: str) -> None:
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        archive = work / "archive.zip"
        log.info("downloading %s to %s", url, target)
        fetch(url, archive, timeout=timeout, manual_hint=manual_hint)
        extracted = work / "extracted"
        try:
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(extracted)
        except zipfile.BadZipFile as err:
            raise DataError(f"{url}: the downloaded file is not a valid zip archive ({err}); "
                            f"the archive is corrupt.{manual_hint}") from None
        source = _find_dir(extracted, list(checksums))
        if source is None:
            raise DataError(f"{url}: the archive lacks {sorted(checksums)}; it is not the "
                            f"expected data set or it is corrupt.{manual_hint}")
        for name, expected in checksums.items():
            got = md5_file(source / name)
            if got != expected:
                raise DataError(
                    f"{url}: checksum mismatch for {name} (md5 {got}, expected {expected}): "
                    f"the archive is corrupt or not the official one. Nothing was "
                    f"installed into {target}; retry the download.{manual_hint}"
                )
        os.replace(source, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def fetch(url: str, dest: Path, *, timeout: float = 60.0, manual_hint: str = "") -> None:
    """Stream ``url`` into ``dest`` with urllib; a :class:`DataError` on any failure."""
    request = urllib.request.Request(url, headers={"User-Agent": "recframe"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, \
                open(dest, "wb") as out:
            shutil.copyfileobj(response, out, length=1 << 20)
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", None) or err
        raise DataError(f"could not download {url}: {reason}.{manual_hint}") from None


def _find_dir(root: Path, names: list[str]) -> Path | None:
    """The shallowest directory under ``root`` holding every file in ``names``."""
    candidates = sorted((p.parent for p in root.rglob(names[0])),
                        key=lambda p: len(p.parts))
    return next((c for c in candidates if has_files(c, names)), None)


def download_file(url: str, target: Path, md5: str, *, timeout: float = 60.0,
                  manual_hint: str = "") -> Path:
    """Make ``target`` a file with md5 ``md5``, downloading ``url`` (a plain file) once.

    Under a file lock next to ``target``: download to a temporary file in the same
    directory, check its md5, then rename it to ``target`` (atomic); nothing is
    left behind on failure.
    """
    target = Path(target)
    with target_lock(target):
        if target.is_file():
            return target  # another process finished while we waited
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}-", dir=target.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            log.info("downloading %s to %s", url, target)
            fetch(url, tmp, timeout=timeout, manual_hint=manual_hint)
            got = md5_file(tmp)
            if got != md5:
                raise DataError(
                    f"{url}: checksum mismatch (md5 {got}, expected {md5}): the download "
                    f"is corrupt or not the expected file. Nothing was installed into "
                    f"{target}; check `dataset.url` and retry.{manual_hint}")
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    return target

"""Fingerprints of raw data: what ``results.json`` records as
``protocol.dataset.raw_fingerprint``, so two runs can tell whether they read the same
data before any preprocessing.

A dataset plugin gives its fingerprint in ``Dataset.meta["fingerprint"]`` (a non-empty
string), built with one of the helpers here: :func:`fingerprint_files` for data read
from files (their contents, plus the loader settings that change what is read),
:func:`fingerprint_params` for generated data (the generator's parameters and version).
A dataset that gives none is fingerprinted by its loaded content
(:func:`fingerprint_frames`), and the record says so (``raw_fingerprint_source``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from recframe.errors import DataError

#: the ``Dataset.meta`` key a dataset's fingerprint is read from
FINGERPRINT_KEY = "fingerprint"
_CHUNK = 1 << 20


def md5_file(path: str | Path) -> str:
    """The md5 hex digest of one file, read in chunks."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def file_digests(paths: Iterable[str | Path]) -> dict[str, str]:
    """``{file name: md5}`` for each path; keyed by full path if two names collide."""
    paths = [Path(p) for p in paths]
    distinct = len({p.name for p in paths}) == len(paths)
    return {(p.name if distinct else str(p)): md5_file(p) for p in paths}


def combine_digests(digests: Mapping[str, str], extra: Any = None) -> str:
    """One md5 over named digests (sorted by name) and optional JSON-able extras."""
    h = hashlib.md5()
    for name in sorted(digests):
        h.update(f"{name}={digests[name]}\n".encode())
    if extra is not None:
        h.update(json.dumps(extra, sort_keys=True, default=str).encode())
    return h.hexdigest()


def fingerprint_files(paths: Iterable[str | Path], extra: Any = None) -> str:
    """The fingerprint of data read from ``paths``: their contents (by file name, so
    moving the files keeps it) and ``extra``, JSON-able settings that change what is
    read (a column mapping, a loader version)."""
    return combine_digests(file_digests(paths), extra)


def fingerprint_params(params: Mapping[str, Any]) -> str:
    """The fingerprint of generated data: the md5 of its parameters (include the
    generator's version, so a changed generator changes the fingerprint)."""
    return hashlib.md5(json.dumps(dict(params), sort_keys=True, default=str).encode()).hexdigest()


def fingerprint_frames(*frames: pd.DataFrame | None) -> str:
    """The md5 of the frames' contents (values, index and column names; ``None``
    frames count as absent): the fallback for a dataset that gives no fingerprint."""
    h = hashlib.md5()
    for frame in frames:
        if frame is None:
            h.update(b"none\n")
            continue
        h.update(json.dumps([str(c) for c in frame.columns]).encode())
        h.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    return h.hexdigest()


def raw_fingerprint(meta: Mapping[str, Any], frames: tuple[pd.DataFrame | None, ...],
                    name: str) -> tuple[str, str]:
    """``(fingerprint, source)`` of a loaded dataset: ``meta["fingerprint"]`` (source
    ``dataset``) when the dataset gives one, else its content's (``content``). A given
    fingerprint that is not a non-empty string is a :class:`DataError` (E832)."""
    given = meta.get(FINGERPRINT_KEY)
    if given is None:
        return fingerprint_frames(*frames), "content"
    if not isinstance(given, str) or not given.strip():
        raise DataError(
            f"dataset {name!r} gave meta['fingerprint']={given!r}; a fingerprint must be a "
            f"non-empty string, e.g. recframe.api.fingerprint_files(paths) for files or "
            f"recframe.api.fingerprint_params(settings) for generated data (or leave it out: "
            f"recframe then fingerprints the loaded frames).")
    return given, "dataset"

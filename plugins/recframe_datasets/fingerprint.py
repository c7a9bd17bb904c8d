"""Content fingerprints of raw inputs, recorded in ``Dataset.meta['fingerprint']``."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20


def md5_file(path: Path) -> str:
    """The md5 hex digest of one file, read in chunks."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def file_digests(paths: Iterable[Path]) -> dict[str, str]:
    """``{file name: md5}`` for each path; keyed by full path if two names collide."""
    paths = [Path(p) for p in paths]
    distinct = len({p.name for p in paths}) == len(paths)
    return {(p.name if distinct else str(p)): md5_file(p) for p in paths}


def combine(digests: Mapping[str, str], extra: Any = None) -> str:
    """One md5 over named digests (sorted by name) and optional JSON-able extras."""
    h = hashlib.md5()
    for name in sorted(digests):
        h.update(f"{name}={digests[name]}\n".encode())
    if extra is not None:
        h.update(json.dumps(extra, sort_keys=True, default=str).encode())
    return h.hexdigest()


def params_fingerprint(params: Mapping[str, Any]) -> str:
    """The md5 of a parameter mapping (for generated data)."""
    return hashlib.md5(json.dumps(dict(params), sort_keys=True, default=str).encode()).hexdigest()

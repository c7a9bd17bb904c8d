"""A disk cache of LLM answers keyed by (backend, model, prompt hash).

One JSON file per request, named by the SHA-256 of the request (backend name,
model identifier, call kind and everything the answer depends on), written
atomically, so a sweep or a rerun that sends the same prompt pays once, and
concurrent runs never read a half-written entry. Nothing secret is part of a
request (API keys travel in HTTP headers, never through here).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from recframe.results import atomic_write


def request_key(backend: str, model: str, kind: str, payload: Any) -> str:
    """The hex SHA-256 that names a request's cache entry."""
    text = json.dumps([backend, model, kind, payload], sort_keys=True, ensure_ascii=False,
                      separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class DiskCache:
    """``get``/``put`` of JSON answers under ``root`` (``None``: a cache that never hits)."""

    def __init__(self, root: str | Path | None) -> None:
        self.root = Path(root) if root else None
        self.hits = 0
        self.misses = 0

    def _path(self, key: str) -> Path:
        assert self.root is not None
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> Any | None:
        """The stored answer, or None (a corrupt entry counts as missing)."""
        if self.root is not None:
            path = self._path(key)
            try:
                value = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                value = None
            if value is not None:
                self.hits += 1
                return value
        self.misses += 1
        return None

    def put(self, key: str, value: Any) -> None:
        if self.root is None:
            return
        text = json.dumps(value, ensure_ascii=False)
        atomic_write(self._path(key), lambda tmp: tmp.write_text(text, encoding="utf-8"))

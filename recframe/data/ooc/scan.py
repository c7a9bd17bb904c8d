"""What the out-of-core engine reads: files (scanned lazily) or a loaded Dataset."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ScanSource:
    """Interaction files a dataset plugin lets the engine read lazily.

    ``paths``: Parquet or delimited files (one format); ``format``: ``parquet``,
    ``csv`` or ``tsv``; ``columns``: canonical name (``user_id``, ``item_id``,
    ``rating``, ``timestamp``) -> column in the file (a name, or a 0-based position
    when ``header`` is false); ``sep``/``header`` for delimited files; ``name`` and
    ``meta`` as the in-memory loader's :class:`~recframe.data.types.Dataset` would
    carry (``meta["fingerprint"]`` if known, ``meta["implicit"]``).
    """

    paths: tuple[str, ...]
    format: str
    columns: dict[str, Any]
    name: str = "dataset"
    sep: str = ","
    header: bool = True
    meta: dict[str, Any] = field(default_factory=dict)

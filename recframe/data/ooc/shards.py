"""Encoded Parquet shards: writing them (manifest last), and reading them back checked.

A shard directory holds ``train/``, ``valid/``, ``test/`` (``part-00000.parquet``, ...:
int32 ``user``/``item`` indices plus ``rating``/``timestamp`` where present, sorted by
user, time, original row), the id maps ``user_ids.parquet``/``item_ids.parquet`` (row
``k`` = the raw id of index ``k``) and ``manifest.json``: format version, the
dataset + config fingerprint, counts, and every file with its row count and size. The
manifest is written last and atomically, so a directory without one is incomplete and
is never read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recframe.errors import DataError
from recframe.results import atomic_write

#: bump when the layout of a shard directory changes
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
PARTS = ("train", "valid", "test")


class ShardError(DataError):
    """A shard directory that cannot be read: partial, stale, or of another version."""


def write_part(batches: Any, directory: Path, shard_rows: int) -> list[dict[str, Any]]:
    """Write Arrow record ``batches`` (already in order) as Parquet files of at most
    ``shard_rows`` rows each; returns ``[{path, rows, bytes}]`` relative to the parent."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    directory.mkdir(parents=True, exist_ok=True)
    files: list[dict[str, Any]] = []
    writer, rows, path = None, 0, None

    def close() -> None:
        if writer is not None:
            writer.close()
            files.append({"path": f"{directory.name}/{path.name}", "rows": rows,
                          "bytes": path.stat().st_size})

    for batch in batches:
        offset = 0
        while offset < batch.num_rows:
            if writer is None:
                path = directory / f"part-{len(files):05d}.parquet"
                # no dictionary pages: 40% faster to write, 2x to read, about as small
                writer, rows = pq.ParquetWriter(path, batch.schema, compression="zstd",
                                                use_dictionary=False), 0
            take = min(batch.num_rows - offset, shard_rows - rows)
            writer.write_table(pa.Table.from_batches([batch.slice(offset, take)]))
            rows += take
            offset += take
            if rows >= shard_rows:
                close()
                writer = None
    close()
    return files


def write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    """The manifest, atomically, after every file it names is complete."""
    text = json.dumps({"format_version": FORMAT_VERSION, **manifest}, indent=1, default=str)
    atomic_write(directory / MANIFEST, lambda tmp: tmp.write_text(text), MANIFEST)


def read_manifest(directory: Path, fingerprint: str | None = None) -> dict[str, Any]:
    """The manifest of a complete shard directory; a :class:`ShardError` naming the fix
    when it is partial (E923), of another format version (E924), or from another
    dataset or config (E922, when ``fingerprint`` is given)."""
    path = directory / MANIFEST
    fix = (f"Delete the directory (rm -r {directory}) and rerun, or point data.shard_dir "
           f"at an empty directory.")
    if not path.exists():
        raise ShardError(f"shard directory {directory} is incomplete: it has no {MANIFEST} "
                         f"(a run writing it was interrupted, or it is not a shard "
                         f"directory). {fix}")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ShardError(f"shard directory {directory}: {MANIFEST} is unreadable ({exc}). "
                         f"{fix}") from None
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise ShardError(f"shard directory {directory} has shard format version {version!r}; "
                         f"this recframe reads version {FORMAT_VERSION}. {fix}")
    if fingerprint is not None and manifest.get("fingerprint") != fingerprint:
        raise ShardError(
            f"shard directory {directory} holds other data: it was written for dataset "
            f"{manifest.get('dataset')!r} with fingerprint {manifest.get('fingerprint')} "
            f"(data + preprocess + split config), this run's is {fingerprint}. Point "
            f"data.shard_dir at another directory (or leave it null for the cache), or "
            f"delete {directory} and rerun.")
    for part in PARTS:
        for entry in manifest.get("files", {}).get(part, []):
            check_file(directory, entry, fix)
    return manifest


def check_file(directory: Path, entry: dict[str, Any], fix: str) -> None:
    """A shard file listed in the manifest exists with the size and rows it lists."""
    import pyarrow.parquet as pq

    path = directory / entry["path"]
    if not path.exists() or path.stat().st_size != entry["bytes"]:
        raise ShardError(f"shard directory {directory} is damaged: {entry['path']} is "
                         f"missing or not the size the manifest lists. {fix}")
    if pq.ParquetFile(path).metadata.num_rows != entry["rows"]:
        raise ShardError(f"shard directory {directory} is damaged: {entry['path']} does not "
                         f"hold the {entry['rows']} rows the manifest lists. {fix}")


def read_part(directory: Path, manifest: dict[str, Any], part: str,
              columns: list[str] | None = None) -> dict[str, np.ndarray]:
    """Every shard of ``part`` concatenated, as numpy arrays by column."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = [pq.read_table(directory / e["path"], columns=columns)
              for e in manifest["files"][part]]
    if not tables:
        names = columns or manifest["columns"]
        return {c: np.zeros(0, dtype=np.int64) for c in names}
    table = pa.concat_tables(tables)
    return {c: table.column(c).to_numpy() for c in table.column_names}


def read_ids(directory: Path, name: str) -> pd.Index:
    """The raw ids of ``user_ids.parquet`` / ``item_ids.parquet`` in index order."""
    import pyarrow.parquet as pq

    column = pq.read_table(directory / f"{name}.parquet").column(0)
    values = column.to_pylist() if column.type == "string" else column.to_numpy()
    return pd.Index(values)


def iter_part(directory: Path, manifest: dict[str, Any], part: str, columns: list[str]
              ) -> Iterator[dict[str, np.ndarray]]:
    """The rows of ``part`` one row group at a time, in order, as numpy arrays."""
    import pyarrow.parquet as pq

    for entry in manifest["files"][part]:
        file = pq.ParquetFile(directory / entry["path"])
        for group in range(file.metadata.num_row_groups):
            table = file.read_row_group(group, columns=columns)
            yield {c: table.column(c).to_numpy() for c in columns}


def train_matrix(directory: Path, manifest: dict[str, Any], n_users: int, n_items: int
                 ) -> Any:
    """The train part as the binary CSR :meth:`RecData.matrix` builds (duplicates
    collapsed, columns sorted per row), read row group by row group: the shards are
    sorted by user, so the item column in file order is the CSR's indices (4 bytes per
    interaction, int32), never an int64 event array."""
    import scipy.sparse as sp

    n = int(manifest["counts"]["n_train"])
    indices = np.empty(n, dtype=np.int32)
    counts = np.zeros(n_users, dtype=np.int64)
    at = 0
    for chunk in iter_part(directory, manifest, "train", ["user", "item"]):
        indices[at:at + len(chunk["item"])] = chunk["item"]
        counts += np.bincount(chunk["user"], minlength=n_users)
        at += len(chunk["item"])
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    m = sp.csr_matrix((np.ones(n, dtype=np.float32), indices, indptr),
                      shape=(n_users, n_items))
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


class LazyEvents(Mapping):
    """``RecData.events`` of a shard directory whose parts are read only when asked for
    (``data.streaming=true``: training and evaluation read the shards themselves)."""

    def __init__(self, directory: Path, manifest: dict[str, Any], has_timestamps: bool
                 ) -> None:
        self.directory, self.manifest, self.has_timestamps = directory, manifest, has_timestamps
        self._loaded: dict[str, Any] = {}

    def __getitem__(self, part: str) -> Any:
        from recframe.data.encode import Events

        if part not in PARTS:
            raise KeyError(part)
        if part not in self._loaded:
            cols = ["user", "item", *(["timestamp"] if self.has_timestamps else [])]
            a = read_part(self.directory, self.manifest, part, cols)
            self._loaded[part] = Events(a["user"].astype(np.int64), a["item"].astype(np.int64),
                                        a["timestamp"] if self.has_timestamps else None)
        return self._loaded[part]

    def __iter__(self) -> Iterator[str]:
        return iter(PARTS)

    def __len__(self) -> int:
        return len(PARTS)

    def loaded(self) -> list[str]:
        """The parts read into memory so far."""
        return list(self._loaded)

    def fingerprint_arrays(self, part: str, column: str) -> Iterator[np.ndarray]:
        """``column`` of ``part`` as int64 chunks in order (for :func:`fingerprint`,
        without holding the part)."""
        for chunk in iter_part(self.directory, self.manifest, part, [column]):
            yield chunk[column].astype(np.int64)

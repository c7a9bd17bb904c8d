"""Evaluation users whose seen and held-out items are read from the Parquet shards.

With ``data.streaming=true`` on the out-of-core path, ranking evaluation does not build
the valid/test/seen user x item matrices in memory: :class:`ShardEvalUsers` yields the
same batches as :class:`recframe.train.batches.EvalUsers` (same users, same seen and
ground-truth coordinates, in the same order), reading each batch's rows from the shards.
The shards of a part are sorted by user (:mod:`recframe.data.ooc.shards`), so a batch
of users is one contiguous row range per part, found through a per-user row offset
array (``8 * (n_users + 1)`` bytes per part, counted from the user column one row group
at a time); rows are decoded a row group at a time with the last groups cached, which
makes the usual ascending user order one sequential read of each part.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from recframe.train.shard_batches import row_groups

#: decoded row groups kept per part (a batch rarely spans more than two)
CACHED_GROUPS = 2


class ShardPart:
    """One part of a shard directory as ``(user, item)`` rows addressable by user."""

    def __init__(self, directory: Path, manifest: dict[str, Any], part: str,
                 n_users: int) -> None:
        self.directory = directory
        self.groups = row_groups(directory, manifest, part)
        sizes = np.array([rows for _, _, rows in self.groups], dtype=np.int64)
        self.starts = np.zeros(len(sizes) + 1, dtype=np.int64)
        np.cumsum(sizes, out=self.starts[1:])
        self._files: dict[str, Any] = {}
        self._cache: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        counts = np.zeros(n_users, dtype=np.int64)
        for k in range(len(self.groups)):
            counts += np.bincount(self._read(k, ["user"])[0], minlength=n_users)
        self.indptr = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(counts, out=self.indptr[1:])

    def __getstate__(self) -> dict[str, Any]:  # DataLoader workers reopen the files
        return {**self.__dict__, "_files": {}, "_cache": OrderedDict()}

    def _read(self, k: int, columns: list[str]) -> list[np.ndarray]:
        import pyarrow.parquet as pq

        path, group, _ = self.groups[k]
        if path not in self._files:
            self._files[path] = pq.ParquetFile(self.directory / path)
        table = self._files[path].read_row_group(group, columns=columns)
        return [table.column(c).to_numpy() for c in columns]

    def _group(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        if k in self._cache:
            self._cache.move_to_end(k)
        else:
            users, items = self._read(k, ["user", "item"])
            self._cache[k] = (users, items)
            while len(self._cache) > CACHED_GROUPS:
                self._cache.popitem(last=False)
        return self._cache[k]

    def rows(self, first_user: int, last_user: int) -> tuple[np.ndarray, np.ndarray]:
        """``(users, items)`` of the rows of users ``first_user..last_user`` (inclusive)."""
        start, stop = int(self.indptr[first_user]), int(self.indptr[last_user + 1])
        if start == stop:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        first = int(np.searchsorted(self.starts, start, side="right")) - 1
        last = int(np.searchsorted(self.starts, stop, side="left")) - 1
        users, items = [], []
        for k in range(first, last + 1):
            u, i = self._group(k)
            lo = max(start - int(self.starts[k]), 0)
            hi = min(stop - int(self.starts[k]), len(u))
            users.append(u[lo:hi])
            items.append(i[lo:hi])
        return (np.concatenate(users).astype(np.int64, copy=False),
                np.concatenate(items).astype(np.int64, copy=False))


class ShardEvalUsers(Dataset):
    """:class:`~recframe.train.batches.EvalUsers` for ``part`` (valid or test) read from
    a shard directory: users with at least one held-out item; seen items are train (for
    valid) or train + valid (for test), duplicates collapsed as the CSR matrices
    collapse them."""

    def __init__(self, directory: Path, manifest: dict[str, Any], part: str,
                 n_users: int, n_items: int) -> None:
        if part not in ("valid", "test"):
            raise ValueError(f"no evaluation part {part!r}")
        self.n_items = n_items
        self.truth = ShardPart(directory, manifest, part, n_users)
        seen_parts = ("train",) if part == "valid" else ("train", "valid")
        self.seen = [ShardPart(directory, manifest, p, n_users) for p in seen_parts]
        self.users = np.flatnonzero(np.diff(self.truth.indptr) > 0).astype(np.int64)

    def __len__(self) -> int:
        return len(self.users)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.__getitems__([i])

    def _coords(self, parts: list[ShardPart], users: np.ndarray
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """(batch row, item) of ``users``' rows in ``parts``: rows in ``users`` order,
        items ascending and unique within a row (as a canonical CSR slice gives them)."""
        order = np.argsort(users, kind="stable")
        ordered = users[order]
        keys = []
        for part in parts:
            row_users, items = part.rows(int(ordered[0]), int(ordered[-1]))
            at = np.searchsorted(ordered, row_users)
            at[at == len(ordered)] = 0
            hit = ordered[at] == row_users
            keys.append(order[at[hit]] * self.n_items + items[hit])
        key = np.unique(np.concatenate(keys))
        return torch.from_numpy(key // self.n_items), torch.from_numpy(key % self.n_items)

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        users = self.users[np.asarray(indices, dtype=np.int64)]
        seen_rows, seen_cols = self._coords(self.seen, users)
        truth_rows, truth_cols = self._coords([self.truth], users)
        return {"users": torch.from_numpy(users), "seen_rows": seen_rows,
                "seen_cols": seen_cols, "truth_rows": truth_rows, "truth_cols": truth_cols}

"""Training batches streamed from the encoded Parquet shards (``data.streaming=true``).

The train part of a shard directory (:mod:`recframe.data.ooc.shards`) is read one
row group at a time with pyarrow, never as a whole: each epoch the row groups are
shuffled with ``(seed, epoch)`` and dealt to the DDP ranks round robin (rank ``r`` reads
groups ``r, r + world, ...``: disjoint, together all of them), each group's rows are
shuffled with ``(seed, epoch, group)``, and rows left over at the end of a group carry
into the next so every batch is full. Every rank yields the same number of batches (the
fewest any rank can fill), as DDP needs; the few rows past that are skipped this epoch
and, with the next epoch's deal, seen in others. Negatives are uniform items rejected
against the user's training positives (:class:`~recframe.train.sampling.NegativeSampler`
over a CSR, never a dense users x items matrix).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch.utils.data import IterableDataset

from recframe.errors import DataError
from recframe.train.sampling import NegativeSampler


def row_groups(directory: Path, manifest: dict[str, Any], part: str = "train"
               ) -> list[tuple[str, int, int]]:
    """``(file, row group, rows)`` of every row group of ``part``, in file order."""
    import pyarrow.parquet as pq

    out = []
    for entry in manifest["files"][part]:
        meta = pq.ParquetFile(directory / entry["path"]).metadata
        out += [(entry["path"], g, meta.row_group(g).num_rows) for g in range(meta.num_row_groups)]
    return out


class ShardPairBatches(IterableDataset):
    """(user, positive, negatives) batches (``points=True``: (user, item, label) rows,
    each positive followed by its negatives labelled 0) read from train shards."""

    def __init__(self, directory: Path, manifest: dict[str, Any], positives: sp.csr_matrix,
                 batch_size: int, num_negatives: int, seed: int, points: bool = False) -> None:
        self.directory, self.batch_size, self.seed = Path(directory), batch_size, seed
        self.groups = row_groups(self.directory, manifest)
        self.sampler = NegativeSampler(positives)
        self.num_negatives, self.points = num_negatives, points
        self.epoch, self.rank, self.steps = 0, 0, 1
        self.world = 1

    @property
    def world(self) -> int:
        return self._world

    @world.setter
    def world(self, world: int) -> None:
        """Setting the world size cuts the dealing units: whole row groups, or, when there
        are fewer groups than ranks, equal slices of them, so every rank gets rows."""
        self._world = world
        pieces = -(-world // max(1, len(self.groups)))
        self.units: list[tuple[int, int, int]] = []
        for g, (_, _, rows) in enumerate(self.groups):
            edges = np.linspace(0, rows, pieces + 1).astype(int)
            self.units += [(g, int(a), int(b)) for a, b in zip(edges[:-1], edges[1:],
                                                                   strict=True) if b > a]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def deal(self, epoch: int) -> list[list[int]]:
        """Unit (row group or slice) indices of each rank in ``epoch``: shuffled, dealt
        round robin."""
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.units))
        return [order[r::self.world].tolist() for r in range(self.world)]

    def _rank_rows(self, epoch: int) -> int:
        """The fewest rows any rank is dealt in ``epoch``."""
        return min(sum(self.units[u][2] - self.units[u][1] for u in dealt)
                   for dealt in self.deal(epoch))

    def batches_per_rank(self, epoch: int) -> int:
        """The batches every rank yields in ``epoch``: the fewest full batches a rank has
        rows for, or one smaller batch when some rank has fewer rows than a batch."""
        return max(1, self._rank_rows(epoch) // self.batch_size)

    def __len__(self) -> int:
        return -(-self.batches_per_rank(self.epoch) // self.steps)

    def _rows(self, epoch: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        import pyarrow.parquet as pq

        for u in self.deal(epoch)[self.rank]:
            g, start, stop = self.units[u]
            path, group, _ = self.groups[g]
            table = pq.ParquetFile(self.directory / path).read_row_group(
                group, columns=["user", "item"]).slice(start, stop - start)
            perm = np.random.default_rng([self.seed, epoch, u]).permutation(table.num_rows)
            yield (table.column("user").to_numpy().astype(np.int64)[perm],
                   table.column("item").to_numpy().astype(np.int64)[perm])

    def _batch(self, users: np.ndarray, items: np.ndarray, b: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, self.rank, b, 1])
        neg = self.sampler.sample(users, self.num_negatives, rng)
        if not self.points:
            return {"users": torch.from_numpy(users), "pos": torch.from_numpy(items),
                    "neg": torch.from_numpy(neg)}
        n = neg.shape[1]
        return {"users": torch.from_numpy(np.concatenate([users, np.repeat(users, n)])),
                "items": torch.from_numpy(np.concatenate([items, neg.reshape(-1)])),
                "labels": torch.cat([torch.ones(len(items)), torch.zeros(neg.size)])}

    def batches(self) -> Iterator[dict[str, torch.Tensor]]:
        """This rank's batches of the current epoch, one at a time."""
        total, b = self.batches_per_rank(self.epoch), 0
        size = min(self.batch_size, self._rank_rows(self.epoch))  # every rank: one batch
        if size == 0:
            raise DataError(f"data.streaming: {sum(r for _, _, r in self.groups)} train "
                            f"row(s) cannot be dealt to {self.world} ranks; use fewer "
                            f"devices or data.streaming=false.")
        carry_u, carry_i = np.zeros(0, np.int64), np.zeros(0, np.int64)
        for users, items in self._rows(self.epoch):
            users, items = np.concatenate([carry_u, users]), np.concatenate([carry_i, items])
            full = len(users) // size * size
            for start in range(0, full, size):
                if b == total:
                    return
                end = start + size
                yield self._batch(users[start:end], items[start:end], b)
                b += 1
            carry_u, carry_i = users[full:], items[full:]

    def __iter__(self) -> Iterator[Any]:
        if self.steps == 1:
            yield from self.batches()
            return
        chunk: list[dict[str, torch.Tensor]] = []
        for batch in self.batches():
            chunk.append(batch)
            if len(chunk) == self.steps:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

"""Map-style datasets whose items are whole batches (no per-sample Python work).

Each dataset item is one batch, built with vectorized numpy from a per-epoch
permutation. Randomness is keyed by ``(seed, epoch, batch index)`` so results
do not depend on worker count or on which rank builds a batch.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
import torch
from torch.utils.data import Dataset

from recframe.data.encode import LabeledRows
from recframe.eval.candidates import CandidateSampler
from recframe.models.base import SEQUENCE_ROWS
from recframe.train.sampling import NegativeSampler


class _EpochBatches(Dataset):
    def __init__(self, n: int, batch_size: int, seed: int, shuffle: bool = True) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.n, self.batch_size, self.seed, self.shuffle = n, batch_size, seed, shuffle
        self.epoch = 0
        self._perm_epoch = -1
        self._perm = np.arange(n)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def _indices(self, b: int) -> np.ndarray:
        if self.shuffle and self._perm_epoch != self.epoch:
            self._perm = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
            self._perm_epoch = self.epoch
        return self._perm[b * self.batch_size : (b + 1) * self.batch_size]

    def _rng(self, b: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, b, 1])


class PairBatches(_EpochBatches):
    """(user, positive, negatives) batches for pairwise losses such as BPR."""

    def __init__(self, train: sp.csr_matrix, batch_size: int, num_negatives: int, seed: int):
        coo = train.tocoo()
        self.users = coo.row.astype(np.int64)
        self.items = coo.col.astype(np.int64)
        self.sampler = NegativeSampler(train)
        self.num_negatives = num_negatives
        super().__init__(len(self.users), batch_size, seed)

    def __getitem__(self, b: int) -> dict[str, torch.Tensor]:
        idx = self._indices(b)
        users = self.users[idx]
        neg = self.sampler.sample(users, self.num_negatives, self._rng(b))
        return {
            "users": torch.from_numpy(users),
            "pos": torch.from_numpy(self.items[idx]),
            "neg": torch.from_numpy(neg),
        }


class PointBatches(PairBatches):
    """(user, item, label) batches: each positive plus ``num_negatives`` labelled 0."""

    def __getitem__(self, b: int) -> dict[str, torch.Tensor]:
        pair = super().__getitem__(b)
        n_neg = pair["neg"].shape[1]
        users = torch.cat([pair["users"], pair["users"].repeat_interleave(n_neg)])
        items = torch.cat([pair["pos"], pair["neg"].reshape(-1)])
        labels = torch.cat([torch.ones(len(pair["pos"])), torch.zeros(pair["neg"].numel())])
        return {"users": users, "items": items, "labels": labels}


class SequenceBatches(_EpochBatches):
    """Per-user training sequences for next-item models (GRU4Rec, SASRec, BERT4Rec).

    Each row is a window of at most ``max_len + 1`` consecutive training items
    of one user in time order, left-padded with -1 (``seq``, shape
    ``[B, max_len + 1]``). A model predicts ``seq[:, 1:]`` from ``seq[:, :-1]``
    (or masks items itself). ``rows`` says which windows an epoch holds:

    - ``recent`` (default): one row per user, their most recent ``max_len + 1``
      items (the original SASRec recipe: Kang & McAuley, ICDM 2018).
    - ``windows``: a longer history is cut into windows ending every ``max_len``
      items from the most recent one back, so every training item but a user's
      first is a target exactly once per epoch (consecutive windows share one
      item: the input of the later window's first target).
    - ``prefixes``: one row per training item but a user's first, ending at that
      item (the target) and holding up to ``max_len`` items before it. This is
      the prefix augmentation of Tan, Xu & Liu, "Improved Recurrent Neural
      Networks for Session-based Recommendations", DLRS 2016, which RecBole's
      sequential models train on; models train on each row's last position only
      (``RecModel.train_rows``), so every item is again a target once per epoch.

    Windows with fewer than two items are skipped.
    """

    def __init__(self, history: tuple[np.ndarray, np.ndarray], batch_size: int, max_len: int,
                 seed: int, rows: str = "recent") -> None:
        if rows not in SEQUENCE_ROWS:
            raise ValueError(f"rows must be one of {', '.join(SEQUENCE_ROWS)}, got {rows!r}")
        self.history = history
        self.max_len = max_len
        self.rows = rows
        indptr = np.asarray(history[0], dtype=np.int64)
        lengths = np.diff(indptr)
        users = np.flatnonzero(lengths >= 2).astype(np.int64)
        if rows == "recent":
            row_users, ends = users, indptr[users + 1]
        else:
            if rows == "windows":  # ceil((length - 1) / max_len) windows, each >= 2 items
                per_user, step = (lengths[users] - 1 + max_len - 1) // max_len, max_len
            else:  # one row per target: every item but the first
                per_user, step = lengths[users] - 1, 1
            row_users = np.repeat(users, per_user)
            back = np.arange(int(per_user.sum())) - np.repeat(
                np.cumsum(per_user) - per_user, per_user)  # 0 = the most recent row
            ends = indptr[row_users + 1] - back * step
        self.users = row_users
        self.ends = ends.astype(np.int64)
        self.starts = np.maximum(indptr[row_users], self.ends - (max_len + 1))
        super().__init__(len(self.users), batch_size, seed)

    def __getitem__(self, b: int) -> dict[str, torch.Tensor]:
        rows = self._indices(b)
        return {"users": torch.from_numpy(self.users[rows]),
                "seq": padded_windows(self.history[1], self.starts[rows], self.ends[rows],
                                      self.max_len + 1)}


class MatrixBatches(_EpochBatches):
    """Batches of user rows of the binary training matrix, for autoencoders
    (Mult-VAE, RecVAE, EASE-style models that learn by gradient).

    Each batch is ``batch_size`` users (those with at least one training item, in a
    per-epoch permutation) and their rows of ``train`` in coordinate form, with the
    same keys as an evaluation batch's ``context``: ``users`` ``[B]``, ``seen_rows``
    (row in the batch, ``0..B-1``) and ``seen_cols`` (item), both int64 ``[nnz]``.
    A model's ``loss`` and ``score`` can therefore share one encoder, built with
    :func:`recframe.api.dense_history` (a dense ``[B, n_items]`` 0/1 matrix) or
    :func:`recframe.api.history_matmul` (the sparse product with a weight matrix,
    which skips the zeros on CPU). Coordinates rather than a dense matrix or a torch
    sparse tensor: a batch costs ``O(nnz)`` to build and move, pins and moves to an
    accelerator like any dense tensor, and leaves the dense-or-sparse choice to the
    model (``python experiments/bench/matrix_batches.py`` measures both).
    """

    def __init__(self, train: sp.csr_matrix, batch_size: int, seed: int) -> None:
        self.train = train.tocsr()
        self.row_users = np.flatnonzero(np.diff(self.train.indptr) > 0).astype(np.int64)
        super().__init__(len(self.row_users), batch_size, seed)

    def __getitem__(self, b: int) -> dict[str, torch.Tensor]:
        users = self.row_users[self._indices(b)]
        rows, cols = csr_rows(self.train, users)
        return {"users": torch.from_numpy(users), "seen_rows": torch.from_numpy(rows),
                "seen_cols": torch.from_numpy(cols)}


class FitBatches(Dataset):
    """A single empty batch: closed-form models fit once in ``on_fit_start``."""

    def __len__(self) -> int:
        return 1

    def __getitem__(self, b: int) -> dict[str, torch.Tensor]:
        return {"dummy": torch.zeros(1)}


class EvalUsers(Dataset):
    """Evaluation users; a DataLoader fetches whole batches of them at once.

    Only users with at least one ground-truth item are evaluated. Index ``i``
    is the ``i``-th such user; the loader's batch sampler hands a list of
    indices to :meth:`__getitems__`, which builds one batch with seen-item and
    ground-truth coordinates (rows local to the batch) in a few vectorized
    CSR slices. Sharding users (not batches) across DDP ranks with
    ``UnrepeatedDistributedSampler`` means no user is duplicated or dropped,
    whatever the world size and batch size.
    """

    def __init__(self, truth: sp.csr_matrix, seen: sp.csr_matrix,
                 history: tuple[np.ndarray, np.ndarray] | None = None, max_len: int = 0,
                 candidates: CandidateSampler | None = None):
        self.truth, self.seen = truth.tocsr(), seen.tocsr()
        self.candidates = candidates
        self.users = np.flatnonzero(np.diff(self.truth.indptr) > 0).astype(np.int64)
        self.history = history
        self.max_len = max_len

    def __len__(self) -> int:
        return len(self.users)

    @staticmethod
    def _coords(m: sp.csr_matrix, users: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        rows, cols = csr_rows(m, users)
        return torch.from_numpy(rows), torch.from_numpy(cols)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.__getitems__([i])

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        users = self.users[np.asarray(indices, dtype=np.int64)]
        seen_rows, seen_cols = self._coords(self.seen, users)
        truth_rows, truth_cols = self._coords(self.truth, users)
        batch = {
            "users": torch.from_numpy(users),
            "seen_rows": seen_rows,
            "seen_cols": seen_cols,
            "truth_rows": truth_rows,
            "truth_cols": truth_cols,
        }
        if self.history is not None:
            batch["seq"] = left_padded(self.history, users, self.max_len)
        if self.candidates is not None:
            rows, cols = self.candidates.sample(users, self.truth, self.seen)
            batch["candidate_rows"] = torch.from_numpy(rows)
            batch["candidate_cols"] = torch.from_numpy(cols)
        return batch


def csr_rows(m: sp.csr_matrix, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(local row, column) int64 coordinates of rows ``users`` of the CSR ``m``.

    The same entries, in the same order, as ``m[users]`` (row ``i`` of the
    result is ``users[i]``), read straight from ``indptr``/``indices`` with a
    few vectorized numpy calls instead of scipy's fancy row indexing. A run of
    consecutive rows (what evaluation batches mostly are) is one slice of
    ``indices``.
    """
    if len(users) and users[-1] - users[0] + 1 == len(users) and (
            len(users) == 1 or bool((np.diff(users) == 1).all())):
        lengths = np.diff(m.indptr[users[0]:users[-1] + 2]).astype(np.int64)
        rows = np.repeat(np.arange(len(users), dtype=np.int64), lengths)
        return rows, m.indices[m.indptr[users[0]]:m.indptr[users[-1] + 1]].astype(np.int64)
    starts = m.indptr[users].astype(np.int64)
    lengths = m.indptr[users + 1].astype(np.int64) - starts
    rows = np.repeat(np.arange(len(users), dtype=np.int64), lengths)
    offsets = np.cumsum(lengths) - lengths  # where each row starts in the output
    pos = np.arange(int(lengths.sum()), dtype=np.int64) + np.repeat(starts - offsets, lengths)
    return rows, m.indices[pos].astype(np.int64)


def left_padded(history: tuple[np.ndarray, np.ndarray], users: np.ndarray,
                max_len: int) -> torch.Tensor:
    """The last ``max_len`` items of each user's history, left-padded with -1."""
    indptr, items = history
    ends = indptr[users + 1]
    return padded_windows(items, np.maximum(indptr[users], ends - max_len), ends, max_len)


def padded_windows(items: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                   max_len: int) -> torch.Tensor:
    """Rows ``items[starts[r]:ends[r]]`` (at most ``max_len`` long), left-padded with -1."""
    lengths = ends - starts
    out = np.full((len(starts), max_len), -1, dtype=np.int64)
    col = max_len - lengths  # first filled column per row
    rows = np.repeat(np.arange(len(starts)), lengths)
    offs = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    out[rows, np.repeat(col, lengths) + offs] = items[np.repeat(starts, lengths) + offs]
    return torch.from_numpy(out)


class LabeledBatches(_EpochBatches):
    """Batches of logged, labeled rows (impressions) with their fields: no sampled
    negatives. Shuffled per epoch for training; in logged order (``shuffle=False``)
    for evaluation under the CTR protocol, where DDP ranks take whole batches."""

    def __init__(self, rows: LabeledRows, batch_size: int, seed: int,
                 shuffle: bool = True) -> None:
        self.rows = rows
        super().__init__(len(rows), batch_size, seed, shuffle)

    def __getitem__(self, b: int) -> dict[str, object]:
        idx = self._indices(b)
        out = self.rows.take(idx)
        return {
            "label": torch.from_numpy(out["label"]),
            "users": torch.from_numpy(out["users"]),
            "items": torch.from_numpy(out["items"]),
            "fields": {k: torch.from_numpy(v) for k, v in out["fields"].items()},
        }

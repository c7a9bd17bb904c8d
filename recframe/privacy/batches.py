"""Training batches for user-level DP-SGD: Poisson sampling of users, grouped by user.

Every step draws each training user independently with probability ``q``
(``users_per_step / n_users``; randomness keyed by ``(seed, epoch, step)``), which is
the sampling the accountant's guarantee assumes (the sampled Gaussian mechanism:
Mironov, Talwar & Zhang, "Rényi Differential Privacy of the Sampled Gaussian
Mechanism", 2019). A sampled user brings a *group* of their own training examples;
every tensor of a batch has a leading user axis ``[B, m, ...]``, so the per-user
gradient (:mod:`recframe.privacy.grads`) is the gradient of the model's ordinary loss
on that user's ``[m, ...]`` mini-batch, clipped as one unit.

- pairs / points: ``m = examples_per_user`` of the user's train positives, drawn
  with replacement, each with the model's sampled negatives;
- labeled (click logs): ``m`` of the user's logged rows, drawn with replacement;
- sequences: one row, the user's most recent ``max_len + 1`` training items.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch.utils.data import Dataset

from recframe.data.encode import LabeledRows
from recframe.models.base import TrainFormat
from recframe.train.batches import padded_windows
from recframe.train.sampling import NegativeSampler


class UserSampledBatches(Dataset):
    """``ceil(1 / q)`` Poisson-sampled steps per epoch (one expected pass over users)."""

    def __init__(self, fmt: TrainFormat, n_users: int, users_per_step: int, seed: int, *,
                 train: sp.csr_matrix | None = None, examples_per_user: int = 1,
                 num_negatives: int = 1, history: tuple[np.ndarray, np.ndarray] | None = None,
                 max_len: int = 0, labeled: LabeledRows | None = None) -> None:
        self.fmt = TrainFormat(fmt)
        self.n_users = n_users
        self.sample_rate = min(1.0, users_per_step / max(n_users, 1))
        self.seed, self.epoch = seed, 0
        self.m = examples_per_user
        self.num_negatives = num_negatives
        self.max_len = max_len
        if self.fmt in (TrainFormat.PAIRS, TrainFormat.POINTS):
            assert train is not None
            self.indptr, self.indices = train.indptr.astype(np.int64), train.indices
            self.sampler = NegativeSampler(train)
            self.eligible = np.diff(self.indptr) > 0
        elif self.fmt is TrainFormat.SEQUENCES:
            assert history is not None and max_len >= 1
            self.history = history
            self.indptr = np.asarray(history[0], dtype=np.int64)
            self.eligible = np.diff(self.indptr) >= 2
        elif self.fmt is TrainFormat.LABELED:
            assert labeled is not None
            self.labeled = labeled
            users = labeled.users.astype(np.int64)
            known = users < n_users
            order = np.flatnonzero(known)[np.argsort(users[known], kind="stable")]
            self.row_order = order
            counts = np.bincount(users[known], minlength=n_users)
            self.indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
            self.eligible = counts > 0
        else:
            raise ValueError(f"no user-sampled batches for train format {self.fmt.value!r}")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil(1.0 / self.sample_rate)

    def sampled_users(self, b: int) -> tuple[np.ndarray, np.random.Generator]:
        rng = np.random.default_rng([self.seed, self.epoch, b, 7])
        chosen = rng.random(self.n_users) < self.sample_rate
        return np.flatnonzero(chosen & self.eligible).astype(np.int64), rng

    def _draw(self, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``[B, m]`` positions into the user's slice of ``indptr`` (with replacement)."""
        starts = self.indptr[users]
        lengths = self.indptr[users + 1] - starts
        offsets = np.floor(rng.random((len(users), self.m)) * lengths[:, None]).astype(np.int64)
        return starts[:, None] + offsets

    def __getitem__(self, b: int) -> dict[str, Any]:
        users, rng = self.sampled_users(b)
        n, m = len(users), self.m
        if self.fmt is TrainFormat.SEQUENCES:
            ends = self.indptr[users + 1]
            starts = np.maximum(self.indptr[users], ends - (self.max_len + 1))
            seq = padded_windows(self.history[1], starts, ends, self.max_len + 1)
            return {"users": torch.from_numpy(users).view(n, 1), "seq": seq.view(n, 1, -1)}
        if self.fmt is TrainFormat.LABELED:
            rows = self.row_order[self._draw(users, rng)].reshape(-1)
            out = self.labeled.take(rows)
            return {
                "label": torch.from_numpy(out["label"]).view(n, m),
                "users": torch.from_numpy(out["users"]).view(n, m),
                "items": torch.from_numpy(out["items"]).view(n, m),
                "fields": {k: torch.from_numpy(v).view(n, m, *v.shape[1:])
                           for k, v in out["fields"].items()},
            }
        pos = self.indices[self._draw(users, rng)].astype(np.int64)  # [B, m]
        flat_users = np.repeat(users, m)
        neg = self.sampler.sample(flat_users, self.num_negatives, rng).reshape(
            n, m, self.num_negatives)
        if self.fmt is TrainFormat.PAIRS:
            return {"users": torch.from_numpy(flat_users).view(n, m),
                    "pos": torch.from_numpy(pos), "neg": torch.from_numpy(neg)}
        k = m * (1 + self.num_negatives)  # POINTS: positives, then their negatives
        items = np.concatenate([pos, neg.reshape(n, -1)], axis=1)
        labels = np.concatenate([np.ones((n, m), np.float32),
                                 np.zeros((n, m * self.num_negatives), np.float32)], axis=1)
        return {"users": torch.from_numpy(np.repeat(users, k)).view(n, k),
                "items": torch.from_numpy(items), "labels": torch.from_numpy(labels)}

"""Vectorized negative sampling against a CSR of known positives."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


class NegativeSampler:
    """Uniform negatives that avoid each user's training positives.

    Positives are stored as sorted ``user * n_items + item`` keys; membership
    of a whole batch is one ``searchsorted``. Collisions are resampled in a
    few vectorized rounds (a user who has seen almost every item keeps the
    rare residual collision rather than looping forever).
    """

    def __init__(self, positives: sp.csr_matrix, max_rounds: int = 20) -> None:
        positives = positives.tocsr()
        self.n_items = positives.shape[1]
        rows = np.repeat(np.arange(positives.shape[0], dtype=np.int64), np.diff(positives.indptr))
        self._keys = np.sort(rows * self.n_items + positives.indices.astype(np.int64))
        self.max_rounds = max_rounds

    def is_positive(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        keys = users.astype(np.int64) * self.n_items + items.astype(np.int64)
        pos = np.searchsorted(self._keys, keys)
        pos = np.minimum(pos, len(self._keys) - 1)
        return self._keys[pos] == keys if len(self._keys) else np.zeros(keys.shape, bool)

    def sample(self, users: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """``[len(users), n]`` negative item ids for ``users``."""
        u = np.repeat(users[:, None], n, axis=1)
        neg = rng.integers(0, self.n_items, size=u.shape, dtype=np.int64)
        for _ in range(self.max_rounds):
            bad = self.is_positive(u, neg)
            count = int(bad.sum())
            if count == 0:
                break
            neg[bad] = rng.integers(0, self.n_items, size=count, dtype=np.int64)
        return neg

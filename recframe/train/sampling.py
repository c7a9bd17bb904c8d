"""Vectorized negative sampling against a CSR of known positives."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


class NegativeSampler:
    """Uniform negatives that avoid each user's training positives.

    Positives are ``user * n_items + item`` keys. While a users x items
    bitmap fits in ``bitmap_max_bytes`` (MovieLens-1M: 2.8 MB), membership of
    a whole batch is two gathers into that bitmap; beyond it, keys are kept
    sorted and a batch is looked up with one ``searchsorted`` over its sorted
    keys (sorted queries walk the table in order, which on tables of millions
    of keys is several times faster than unsorted ones). Collisions are
    resampled in a few vectorized rounds (a user who has seen almost every item
    keeps the rare residual collision rather than looping forever).
    """

    def __init__(self, positives: sp.csr_matrix, max_rounds: int = 20,
                 bitmap_max_bytes: int = 256 * 2**20) -> None:
        positives = positives.tocsr()
        self.n_items = positives.shape[1]
        rows = np.repeat(np.arange(positives.shape[0], dtype=np.int64), np.diff(positives.indptr))
        keys = rows * self.n_items + positives.indices.astype(np.int64)
        self.max_rounds = max_rounds
        n_bits = positives.shape[0] * self.n_items
        self._bitmap: np.ndarray | None = None
        if (n_bits + 7) // 8 <= bitmap_max_bytes:
            bits = np.zeros(n_bits, dtype=bool)
            bits[keys] = True
            self._bitmap = np.packbits(bits, bitorder="little")
            self._keys = np.empty(0, dtype=np.int64)
        else:
            self._keys = np.sort(keys)

    def is_positive(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        keys = users.astype(np.int64) * self.n_items + items.astype(np.int64)
        if self._bitmap is not None:
            return ((self._bitmap[keys >> 3] >> (keys & 7).astype(np.uint8)) & 1).astype(bool)
        if not len(self._keys):
            return np.zeros(keys.shape, bool)
        flat = keys.ravel()
        order = np.argsort(flat, kind="stable")
        pos = np.searchsorted(self._keys, flat[order])
        found = self._keys[np.minimum(pos, len(self._keys) - 1)] == flat[order]
        out = np.empty(flat.shape, dtype=bool)
        out[order] = found
        return out.reshape(keys.shape)

    def sample(self, users: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """``[len(users), n]`` negative item ids for ``users``."""
        u = np.repeat(users[:, None], n, axis=1)
        neg = rng.integers(0, self.n_items, size=u.shape, dtype=np.int64)
        flat_users, flat_neg = u.reshape(-1), neg.reshape(-1)
        # only the draws that collided are checked again: the same draws, in the same
        # order, as re-checking the whole batch each round, on a few entries
        bad = np.flatnonzero(self.is_positive(flat_users, flat_neg))
        for _ in range(self.max_rounds):
            if len(bad) == 0:
                break
            draw = rng.integers(0, self.n_items, size=len(bad), dtype=np.int64)
            flat_neg[bad] = draw
            bad = bad[self.is_positive(flat_users[bad], draw)]
        return neg

"""Sampled-candidate evaluation: rank each user's held-out items against N sampled negatives.

Full ranking is the default and the only protocol whose numbers are comparable
across papers; sampled metrics are inconsistent with full ones (Krichene &
Rendle, "On Sampled Metrics for Item Recommendation", KDD 2020). This module
exists to reproduce older papers' protocols, and every result it produces is
labelled as sampled.

Negatives are drawn with replacement, either uniformly or proportionally to
training popularity, from items the user has neither seen nor holds out. The
draw for user ``u`` depends only on ``(seed, u)`` (a counter-based hash), so
it does not depend on the evaluation batch size or on which rank evaluates
the user.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

SAMPLED_WARNING = (
    "evaluation.candidates=sampled: metrics rank held-out items against sampled negatives "
    "and are NOT comparable to full-ranking metrics (Krichene & Rendle, KDD 2020). Use it "
    "only to reproduce older papers' protocols."
)

_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xBF58476D1CE4E5B9)
_M3 = np.uint64(0x94D049BB133111EB)


def _uniform(users: np.ndarray, slots: np.ndarray, seed: int, round_: int) -> np.ndarray:
    """Counter-based uniforms in [0, 1) from (user, slot, seed, round) via splitmix64."""
    with np.errstate(over="ignore"):
        x = (users.astype(np.uint64) * _M1 + slots.astype(np.uint64) * _M2
             + np.uint64(seed * 1_000_003 + round_) * _M3)
        x ^= x >> np.uint64(30)
        x *= _M2
        x ^= x >> np.uint64(27)
        x *= _M3
        x ^= x >> np.uint64(31)
    return (x >> np.uint64(11)).astype(np.float64) * 2.0**-53


class CandidateSampler:
    """Draws ``num_negatives`` negatives per held-out item for a batch of users."""

    def __init__(self, n_items: int, num_negatives: int, seed: int,
                 popularity: np.ndarray | None = None, max_rounds: int = 10) -> None:
        if num_negatives < 1:
            raise ValueError("num_negatives must be >= 1")
        self.n_items = n_items
        self.num_negatives = num_negatives
        self.seed = seed
        self.max_rounds = max_rounds
        self.cdf = None
        if popularity is not None:
            weights = np.asarray(popularity, dtype=np.float64) + 1e-12
            self.cdf = np.cumsum(weights) / weights.sum()

    def _draw(self, u: np.ndarray, slots: np.ndarray, round_: int) -> np.ndarray:
        f = _uniform(u, slots, self.seed, round_)
        if self.cdf is None:
            return np.minimum((f * self.n_items).astype(np.int64), self.n_items - 1)
        return np.minimum(np.searchsorted(self.cdf, f, side="right"), self.n_items - 1)

    def sample(self, users: np.ndarray, truth: sp.csr_matrix, seen: sp.csr_matrix
               ) -> tuple[np.ndarray, np.ndarray]:
        """(local rows, item ids) of negatives for ``users`` (row ids of ``truth``/``seen``)."""
        t, s = truth[users], seen[users]
        per_user = np.diff(t.indptr) * self.num_negatives
        rows = np.repeat(np.arange(len(users), dtype=np.int64), per_user)
        slots = np.arange(per_user.sum()) - np.repeat(np.cumsum(per_user) - per_user, per_user)
        u = users[rows]
        excluded = (t + s).tocsr()
        keys = np.sort(np.repeat(np.arange(len(users), dtype=np.int64), np.diff(excluded.indptr))
                       * self.n_items + excluded.indices)
        items = self._draw(u, slots, 0)
        for round_ in range(self.max_rounds + 1):
            probe = rows * self.n_items + items
            pos = np.minimum(np.searchsorted(keys, probe), max(len(keys) - 1, 0))
            bad = keys[pos] == probe if len(keys) else np.zeros(len(probe), bool)
            if not bad.any() or round_ == self.max_rounds:
                break
            items[bad] = self._draw(u[bad], slots[bad], round_ + 1)
        # the rare negative still colliding after max_rounds is dropped, never counted
        return rows[~bad], items[~bad]

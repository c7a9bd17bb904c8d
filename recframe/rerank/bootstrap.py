"""Candidate orders shown to the model, and their aggregation (position bias).

LLMs favour candidates by where they appear in a prompt. LLMRank (Hou et al.,
"Large Language Models are Zero-Shot Rankers for Recommender Systems", ECIR
2024) shuffles the candidates, ranks every shuffle and adds up the positions
(a Borda count). :func:`shown_orders` draws ``repeats`` permutations per user
from ``(seed, user)``, so a user's prompts do not depend on which other users
are evaluated; :func:`borda` merges the rankings, ties going to the base
model's order.
"""

from __future__ import annotations

import numpy as np


def shown_orders(users: np.ndarray, n: int, repeats: int, seed: int,
                 shuffle: bool = True) -> np.ndarray:
    """``[U, repeats, n]`` candidate positions (base ranks) in the order shown.

    Without ``shuffle`` every repeat shows the base order.
    """
    base = np.broadcast_to(np.arange(n), (len(users), repeats, n))
    if not shuffle:
        return base.copy()
    keys = np.random.default_rng([int(seed), 0x7E4A]).integers(2**62, size=1)  # stage salt
    out = np.empty((len(users), repeats, n), dtype=np.int64)
    noise = np.stack([np.random.default_rng([int(keys[0]), int(u)]).random((repeats, n))
                      for u in users]) if len(users) else np.empty((0, repeats, n))
    out[...] = np.argsort(noise, axis=2, kind="stable")
    return out


def borda(rankings: np.ndarray) -> np.ndarray:
    """``[U, R, n]`` rankings (base ranks, best first) -> ``[U, n]`` merged order.

    Each ranking gives ``n - 1 - position`` points to the candidate at that
    position; candidates are sorted by total points, then by base rank.
    """
    u, r, n = rankings.shape
    points = np.zeros((u, n), dtype=np.float64)
    gains = np.broadcast_to(np.arange(n - 1, -1, -1, dtype=np.float64), (u, r, n))
    np.add.at(points, (np.arange(u)[:, None, None], rankings), gains)
    # lexsort: last key first; ties in points go to the lower base rank
    base = np.broadcast_to(np.arange(n), (u, n))
    return np.lexsort((base, -points), axis=1) if u else np.empty((0, n), dtype=np.int64)

"""The random keys of the per-user random split, drawn for any row positions.

The in-memory splitter draws ``np.random.default_rng(seed).random(n)``: the key of the
``p``-th row (after preprocessing, in row order) is the ``p``-th double of that PCG64
stream. Each double consumes one 64-bit output, and PCG64 can ``advance`` by any
number of outputs in O(log p), so the keys of any set of positions are computed
without drawing the stream before them: the same keys, in any order, chunk by chunk.
"""

from __future__ import annotations

import numpy as np

#: positions further apart than this start a new run (advance instead of drawing the gap)
_MAX_GAP = 4096


def random_keys(seed: int, positions: np.ndarray) -> np.ndarray:
    """``default_rng(seed).random(n)[positions]`` without drawing ``n`` values."""
    positions = np.asarray(positions, dtype=np.int64)
    out = np.empty(len(positions), dtype=np.float64)
    if not len(positions):
        return out
    order = np.argsort(positions, kind="stable")
    ordered = positions[order]
    breaks = np.flatnonzero(np.diff(ordered) > _MAX_GAP) + 1
    starts = np.concatenate([[0], breaks])
    ends = np.concatenate([breaks, [len(ordered)]])
    for a, b in zip(starts, ends, strict=True):
        lo, hi = int(ordered[a]), int(ordered[b - 1])
        rng = np.random.default_rng(seed)
        rng.bit_generator.advance(lo)
        drawn = rng.random(hi - lo + 1)
        out[order[a:b]] = drawn[ordered[a:b] - lo]
    return out

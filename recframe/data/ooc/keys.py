"""The random keys of the per-user random split, drawn for any row positions.

The in-memory splitter draws ``np.random.default_rng(seed).random(n)``: the key of the
``p``-th row (after preprocessing, in row order) is the ``p``-th double of that PCG64
stream. Each double consumes one 64-bit output, and PCG64 can ``advance`` by any
number of outputs in O(log p), so the keys of any set of positions are computed
without drawing the stream before them: the same keys, in any order, chunk by chunk.
"""

from __future__ import annotations

from collections.abc import Iterable

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


class KeptRowKeys:
    """The random keys of the rows a preprocessing kept, looked up by original row.

    The per-user random split gives the ``p``-th kept row (in original row order) the key
    ``default_rng(seed).random(n_kept)[p]``. Rather than sorting the kept rows to number
    them, this holds a bitmap of the kept original rows (one bit per source row) with
    the count of kept rows before each 64-row word, so a row's position is a prefix
    count plus a popcount, and the keys are drawn once, in order: no sort, and
    ``n_source / 4 + 8 * n_kept`` bytes held (0.85 GB for 200M source rows of which
    100M are kept; one byte per source row more while it is built).
    """

    def __init__(self, seed: int, n_source: int, kept_rows: Iterable[np.ndarray]) -> None:
        kept = np.zeros(n_source, dtype=bool)
        for rows in kept_rows:
            kept[np.asarray(rows, dtype=np.int64)] = True
        packed = np.packbits(kept, bitorder="little")  # bit j of byte b: row 8b + j
        del kept
        packed = np.concatenate([packed, np.zeros(-len(packed) % 8, dtype=np.uint8)])
        words = packed.view("<u8")  # bit j of word w: row 64w + j
        counts = np.bitwise_count(words).astype(np.int64)
        self.prefix = np.zeros(len(words), dtype=np.int64)
        np.cumsum(counts[:-1], out=self.prefix[1:])
        self.words = words
        self.n_kept = int(counts.sum())
        self.values = np.random.default_rng(seed).random(self.n_kept)

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        """The keys of these original rows (each must be a kept row)."""
        rows = np.asarray(rows, dtype=np.int64)
        word = rows >> 6
        below = np.left_shift(np.uint64(1), (rows & 63).astype(np.uint64)) - np.uint64(1)
        position = self.prefix[word] + np.bitwise_count(self.words[word] & below)
        return self.values[position]

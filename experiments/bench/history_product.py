"""Dense versus sparse (CSR) ``history @ weights``: where ``history_matmul`` switches.

``recframe.api.history_matmul`` multiplies a batch's seen items by an item matrix
(EASE's ``B``) as a sparse CSR product below ``SPARSE_HISTORY_DENSITY`` and densely
above it. This times both on one thread for a 512-user batch at the catalogue sizes
and history lengths of the families benchmark and prints a Markdown table:

    python experiments/bench/history_product.py
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Sequence
from functools import partial

import torch

from recframe.api import dense_history

#: (items, seen items per user): ML-100K-like, dense rows, synthetic_long, Amazon Games
SHAPES = ((1682, 60), (1682, 200), (1682, 400), (1000, 160), (1000, 300), (23715, 9))


def _dense(context: dict[str, torch.Tensor], batch: int, w: torch.Tensor) -> torch.Tensor:
    return dense_history(context, batch, w.shape[0]) @ w


def _sparse(rows: torch.Tensor, cols: torch.Tensor, batch: int, w: torch.Tensor) -> torch.Tensor:
    values = torch.ones(rows.numel())
    history = torch.sparse_coo_tensor(torch.stack([rows, cols]), values, (batch, w.shape[0]),
                                      check_invariants=False).coalesce().to_sparse_csr()
    return history @ w


def _seconds(fn, reps: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - start) / reps


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
    gen = torch.Generator().manual_seed(0)
    print("| items | seen per user | density | dense s | sparse s | dense / sparse |")
    print("|---:|---:|---:|---:|---:|---:|")
    for n_items, per_user in SHAPES:
        w = torch.randn(n_items, n_items, generator=gen) * 0.01
        rows = torch.arange(args.batch).repeat_interleave(per_user)
        cols = torch.randint(0, n_items, (rows.numel(),), generator=gen)
        context = {"seen_rows": rows, "seen_cols": cols}
        reps = 1 if n_items > 10_000 else args.reps
        dense = _seconds(partial(_dense, context, args.batch, w), reps)
        sparse = _seconds(partial(_sparse, rows, cols, args.batch, w), reps)
        print(f"| {n_items} | {per_user} | {per_user / n_items:.1%} | {dense:.4f} | "
              f"{sparse:.4f} | {dense / sparse:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

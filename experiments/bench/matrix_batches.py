"""How ``TrainFormat.MATRIX`` batches are laid out: coordinates, a dense matrix or a
torch sparse tensor, measured on one Mult-VAE training step.

A batch of user rows of the training matrix can reach the model as (a) the
coordinates of its items (``seen_rows``/``seen_cols``, what recframe hands over), (b)
a dense ``[B, n_items]`` float matrix built in the loader, or (c) a torch sparse CSR
tensor. This times, for 500-user batches (Mult-VAE's) on one thread, building the
batch from the CSR training matrix, and one Mult-VAE step (forward + backward) whose
first layer is a dense product (a, b) or a sparse one (a through
``recframe.api.history_matmul``, c), and prints a Markdown table:

    python experiments/bench/matrix_batches.py

Shapes: ML-100K (943 users, 1,682 items, 47 training items per user) and Amazon
Games (31,013 users, 23,715 items, 7 per user), with random rows of those sizes.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp
import torch

from recframe.api import dense_history
from recframe.train.batches import MatrixBatches

#: (name, users, items, training items per user)
SHAPES = (("ML-100K", 943, 1682, 47), ("Amazon Games", 31013, 23715, 7))


def _matrix(users: int, items: int, per_user: int, seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(users), per_user)
    cols = rng.integers(0, items, len(rows))
    m = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), (users, items))
    m.sum_duplicates()
    m.data[:] = 1
    return m


def _seconds(fn: Callable[[], object], reps: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - start) / reps


def _rows(name: str, n_users: int, n_items: int, per_user: int, batch_size: int,
          reps: int) -> list[str]:
    """The table rows of one data shape."""
    from recframe_cf.multvae import MultVAE

    out: list[str] = []
    train = _matrix(n_users, n_items, per_user)
    batches = MatrixBatches(train, batch_size, seed=0)
    torch.manual_seed(0)
    model = MultVAE(n_items)
    batch = batches[0]
    size = len(batch["users"])

    def dense_batch() -> torch.Tensor:
        b = batches[0]
        return dense_history(b, len(b["users"]), n_items)

    def sparse_batch() -> torch.Tensor:
        rows = train[batches.row_users[batches._indices(0)]]  # a scipy CSR slice
        return torch.sparse_csr_tensor(torch.from_numpy(rows.indptr.astype(np.int64)),
                                       torch.from_numpy(rows.indices.astype(np.int64)),
                                       torch.from_numpy(rows.data), rows.shape)

    x_dense = dense_batch()

    def step_dense() -> None:  # the same model, its first layer a dense product
        model.zero_grad()
        x = torch.nn.functional.normalize(x_dense, dim=1)
        x = torch.nn.functional.dropout(x, model.dropout)
        hidden = torch.tanh(x @ model.enc_in + model.enc_in_bias)
        mu, logvar = model.enc_out(hidden).chunk(2, dim=-1)
        logits = model._decode(mu + torch.randn_like(mu) * torch.exp(0.5 * logvar))
        (-(torch.log_softmax(logits, -1) * x_dense).sum(-1).mean()).backward()

    def step_coords() -> None:
        model.zero_grad()
        model.loss(batch).backward()

    rows = [("coordinates (recframe)", lambda: batches[0], step_coords),
            ("dense matrix", dense_batch, step_dense),
            ("torch sparse CSR", sparse_batch, None)]
    for layout, build, step in rows:
        build_ms = 1000 * _seconds(build, reps)
        step_ms = f"{1000 * _seconds(step, reps):.1f}" if step else "as coordinates"
        out.append(f"| {name} ({size} users x {n_items} items) | {layout} | "
                   f"{build_ms:.2f} | {step_ms} |")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
    warnings.filterwarnings("ignore", message="Sparse invariant checks")
    print("| data | layout | build batch ms | Mult-VAE step ms |")
    print("|---|---|---:|---:|")
    for shape in SHAPES:
        print("\n".join(_rows(*shape, args.batch, args.reps)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

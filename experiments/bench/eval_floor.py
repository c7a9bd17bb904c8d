"""Full-ranking evaluation speed: recframe's evaluation path against the bare floor.

Synthetic problem (defaults: 100k users x 50k items, d=64, K=100): random user
and item embeddings, a random CSR "seen" history of ~20 items per user and a
few held-out truth items per user. Two ways to evaluate the same user batches
run side by side in one process, alternating, after a warm-up:

- **recframe**: the path a run takes, ``trainer.test`` of a :class:`RecTask`
  over the :class:`RecDataModule` test loader (``EvalUsers`` batches), the
  model's ``score`` (``U[users] @ V.T``, as BPR-MF), ``Evaluator.evaluate_batch``
  with the real metric plugins (recall, precision, ndcg, mrr, hit, map at
  K=10 and K=100) and the per-user accumulator;
- **floor**: ``U[batch] @ V.T``, the seen items set to ``-inf`` from
  precomputed coordinates, ``torch.topk(k=100)``: the work no full-ranking
  evaluator can skip;
- **floor with recframe's top-k**: the same with ``recframe.eval.topk.topk_rows``
  (the selection the evaluator uses) instead of ``torch.topk``; recframe over
  this one (``eval_vs_floor_same_topk``) is what the evaluator adds around it.

``eval_vs_floor`` is the median over rounds of recframe seconds / floor
seconds. One more recframe pass over every user gives the end-to-end figure
and the peak RSS, which is compared with the peak after the (smaller) timing
rounds: memory is bounded by the batch, not the number of users.
"""

from __future__ import annotations

import gc
import logging
import statistics
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from recframe.eval.topk import topk_rows  # noqa: E402

NAME = "eval_floor"
METRICS = ["recall", "precision", "ndcg", "mrr", "hit", "map"]
#: measured with this script (default sizes, 5 rounds of 10,240 users) before the
#: evaluation path was optimised; that floor still masked with advanced indexing
BEFORE: dict[str, Any] = {
    "git": "9d14b04",
    "eval_vs_floor": 3.842,
    "eval_users_per_s_recframe": 350.1,
    "eval_users_per_s_floor": 1424.3,
    "eval_peak_rss_gib": 1.101,
    "changes": (
        "What changed (profiled with the torch profiler and py-spy): `RecTask` counted NaN "
        "scores with `isnan(scores).sum()`, which upcasts a [batch, n_items] bool tensor to "
        "int64 (the largest cost, more than the top-k); now the evaluator counts them from "
        "the top-k (NaN ranks first) and only scans the matrix when a row has one. The "
        "evaluator no longer copies the scores (seen items are masked in place with "
        "`index_fill_` and restored with `index_copy_`, so callers see them unchanged), no "
        "longer builds a [batch, n_items] truth mask (hits come from `searchsorted` over "
        "sorted truth keys), counts top-k items for global metrics with `index_add_` (no "
        "boolean indexing, no host sync), and `EvalUsers` slices the CSR from "
        "`indptr`/`indices` instead of scipy fancy indexing. Advanced-index reads and "
        "writes (`t[rows, cols]`) were replaced by `index_select`/`index_fill_`: on a busy "
        "2-core machine each costs milliseconds of thread wake-up. Metric code: MRR from "
        "`argmax` of the hits, nDCG discounts cached. Per-user values are bit-identical "
        "(tests/test_evaluator.py, test_metrics.py, ...)."),
}


@dataclass
class Problem:
    """Embeddings, the seen CSR and the truth CSR of the synthetic problem."""

    users: torch.Tensor  # [n_users, d]
    items: torch.Tensor  # [n_items, d]
    seen: sp.csr_matrix
    truth: sp.csr_matrix


def random_csr(rng: np.random.Generator, n_users: int, n_items: int, low: int, high: int,
               avoid: sp.csr_matrix | None = None) -> sp.csr_matrix:
    """Binary CSR with ``low..high`` random distinct items per user (minus ``avoid``)."""
    lengths = rng.integers(low, high + 1, size=n_users)
    rows = np.repeat(np.arange(n_users, dtype=np.int64), lengths)
    keys = np.unique(rows * n_items + rng.integers(0, n_items, size=len(rows)))
    if avoid is not None:
        a = avoid.tocoo()
        keys = np.setdiff1d(keys, a.row.astype(np.int64) * n_items + a.col, assume_unique=True)
    rows, cols = np.divmod(keys, n_items)
    m = sp.csr_matrix((np.ones(len(keys), np.float32), (rows, cols)), shape=(n_users, n_items))
    m.sum_duplicates()
    return m


def make_problem(n_users: int, n_items: int, dim: int, seed: int = 0) -> Problem:
    """Random embeddings, ~20 seen items and 1-5 disjoint truth items per user."""
    g = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    users = torch.randn(n_users, dim, generator=g) / dim**0.5
    items = torch.randn(n_items, dim, generator=g)
    seen = random_csr(rng, n_users, n_items, 10, 30)
    truth = random_csr(rng, n_users, n_items, 1, 5, avoid=seen)
    return Problem(users, items, seen, truth)


def only_rows(m: sp.csr_matrix, n_rows: int) -> sp.csr_matrix:
    """``m`` with every row from ``n_rows`` on emptied (same shape)."""
    out = m.copy()
    out.data[out.indptr[n_rows]:] = 0
    out.eliminate_zeros()
    return out


class _Data:
    """The two methods of :class:`recframe.data.encode.RecData` evaluation reads."""

    def __init__(self, truth: sp.csr_matrix, seen: sp.csr_matrix) -> None:
        self._truth, self._seen = truth, seen

    def matrix(self, part: str) -> sp.csr_matrix:
        return self._truth

    def seen(self, part: str) -> sp.csr_matrix:
        return self._seen


def _embedding_model(users: torch.Tensor, items: torch.Tensor) -> Any:
    """A fixed-embedding :class:`RecModel` scoring like BPR-MF: ``U[users] @ V.T``."""
    from recframe.models.base import RecModel, TrainFormat

    class FixedMF(RecModel):
        """Matrix factorization with given factors (closed form: nothing to train)."""

        train_format = TrainFormat.FIT

        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("user_factors", users)
            self.register_buffer("item_factors", items)

        def score(self, users: torch.Tensor, context: dict[str, torch.Tensor]) -> torch.Tensor:
            return self.user_factors[users] @ self.item_factors.T

    return FixedMF()


class RecframeEval:
    """Runs recframe's test loop (``trainer.test``) over the users with truth in a CSR."""

    def __init__(self, problem: Problem, ks: list[int], batch_size: int) -> None:
        import lightning.pytorch as pl

        from recframe.eval.evaluator import Evaluator
        from recframe.models.base import TrainFormat
        from recframe.plugin import default_manager
        from recframe.train.datamodule import RecDataModule
        from recframe.train.task import RecTask

        pm = default_manager()
        evaluator = Evaluator({m: pm.metrics.get(m) for m in METRICS}, ks)
        popularity = torch.from_numpy(np.asarray(problem.seen.sum(axis=0)).ravel()).float()
        self.task = RecTask(_embedding_model(problem.users, problem.items), evaluator,
                            monitor=f"ndcg@{ks[0]}", item_popularity=popularity)
        self.problem = problem
        self.batch_size = batch_size
        self.trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False,
                                  enable_progress_bar=False, enable_model_summary=False,
                                  enable_checkpointing=False, use_distributed_sampler=False)
        self._module = RecDataModule
        self._format = TrainFormat.FIT

    def run(self, truth: sp.csr_matrix) -> float:
        """Seconds of one ``trainer.test`` over every user with a truth item in ``truth``."""
        dm = self._module(_Data(truth, self.problem.seen), self._format,  # type: ignore[arg-type]
                          eval_batch_size=self.batch_size)
        start = time.perf_counter()
        self.trainer.test(self.task, datamodule=dm, verbose=False)
        seconds = time.perf_counter() - start
        assert self.task.test_per_user is not None
        assert len(self.task.test_per_user) == int((np.diff(truth.indptr) > 0).sum())
        return seconds


class Floor:
    """Bare full ranking of the same batches: matmul, seen mask, top-k."""

    def __init__(self, problem: Problem, n_users: int, k: int, batch_size: int,
                 select: Any = None) -> None:
        self.problem, self.k = problem, k
        self.select = select or (lambda scores, k: torch.topk(scores, k=k, dim=1))
        self.batches = []
        seen = problem.seen
        for start in range(0, n_users, batch_size):
            stop = min(start + batch_size, n_users)
            sub = seen[start:stop]
            rows = np.repeat(np.arange(stop - start), np.diff(sub.indptr))
            flat = rows * problem.items.shape[0] + sub.indices.astype(np.int64)
            self.batches.append((torch.arange(start, stop), torch.from_numpy(flat)))

    def run(self) -> float:
        """Seconds of one pass over the batches."""
        users, items = self.problem.users, self.problem.items
        start = time.perf_counter()
        for batch, flat in self.batches:
            scores = users[batch] @ items.T
            scores.view(-1).index_fill_(0, flat, -torch.inf)  # the cheapest masking on CPU
            self.select(scores, self.k)
        return time.perf_counter() - start


def _quiet() -> None:
    import lightning.pytorch  # noqa: F401  (sets its loggers' levels on import)

    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*`configure_optimizers` returned `None`.*")
    warnings.filterwarnings("ignore", message=".*isinstance\\(treespec.*")


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__.splitlines()[0], "tiny sizes: a smoke run")
    p.add_argument("--users", type=int, default=100_000, help="number of users")
    p.add_argument("--items", type=int, default=50_000, help="number of items")
    p.add_argument("--dim", type=int, default=64, help="embedding dimension")
    p.add_argument("--k", type=int, default=100, help="largest cut-off (10 is computed too)")
    p.add_argument("--batch-size", type=int, default=512, help="users per evaluation batch")
    p.add_argument("--timing-users", type=int, default=8192,
                   help="users of each timed round (the first ones); the full pass uses all")
    p.add_argument("--rounds", type=int, default=3, help="timed rounds (median is reported)")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    args = p.parse_args(argv)
    if args.small:
        args.users, args.items, args.dim, args.batch_size = 3000, 2000, 16, 256
        args.timing_users, args.rounds = 1024, 3
    torch.set_num_threads(args.threads)
    _quiet()
    timing_users = min(args.timing_users, args.users)
    ks = sorted({10, args.k})

    with common.timed() as t_data:
        problem = make_problem(args.users, args.items, args.dim)
    slice_truth = only_rows(problem.truth, timing_users)
    warm_truth = only_rows(problem.truth, min(2 * args.batch_size, args.users))
    rss_data = common.current_rss_gib()

    rec = RecframeEval(problem, ks, args.batch_size)
    floor = Floor(problem, timing_users, args.k, args.batch_size)
    # the same floor with recframe's own top-k selection: what the evaluator adds
    own_floor = Floor(problem, timing_users, args.k, args.batch_size, select=topk_rows)
    rec.run(warm_truth)  # warm-up: allocator, Lightning setup paths
    floor.run()
    own_floor.run()
    rounds: list[dict[str, float]] = []
    for r in range(args.rounds):
        gc.collect()
        if r % 2 == 0:
            rs, fs, os_ = rec.run(slice_truth), floor.run(), own_floor.run()
        else:
            os_, fs, rs = own_floor.run(), floor.run(), rec.run(slice_truth)
        rounds.append({"recframe_s": rs, "floor_s": fs, "own_floor_s": os_, "ratio": rs / fs,
                       "ratio_own_topk": rs / os_})
    rss_after_timing = common.peak_rss_gib()
    n_timed = int((np.diff(slice_truth.indptr) > 0).sum())
    rec_s = statistics.median(x["recframe_s"] for x in rounds)
    floor_s = statistics.median(x["floor_s"] for x in rounds)
    ratio = statistics.median(x["ratio"] for x in rounds)
    ratio_own = statistics.median(x["ratio_own_topk"] for x in rounds)
    own_s = statistics.median(x["own_floor_s"] for x in rounds)

    gc.collect()
    full_s = rec.run(problem.truth)
    n_full = int((np.diff(problem.truth.indptr) > 0).sum())
    rss_full = common.peak_rss_gib()

    figures = {
        "eval_vs_floor": round(ratio, 3),
        "eval_vs_floor_same_topk": round(ratio_own, 3),
        "eval_users_per_s_recframe": round(n_timed / rec_s, 1),
        "eval_users_per_s_floor": round(n_timed / floor_s, 1),
        "eval_peak_rss_gib": rss_full,
    }
    details: dict[str, Any] = {
        "sizes": {"users": args.users, "items": args.items, "dim": args.dim, "k": args.k,
                  "ks": ks, "batch_size": args.batch_size, "timing_users": timing_users,
                  "metrics": METRICS, "seen_nnz": int(problem.seen.nnz),
                  "truth_nnz": int(problem.truth.nnz)},
        "rounds": rounds,
        "data_build_s": round(t_data["s"], 2),
        "full_pass": {"users": n_full, "seconds": round(full_s, 2),
                      "users_per_s": round(n_full / full_s, 1)},
        "rss_gib": {"after_data": rss_data,
                    f"peak_after_{timing_users}_users": rss_after_timing,
                    f"peak_after_{n_full}_users": rss_full},
        "before": BEFORE,
    }
    rows = [["recframe (trainer.test)", round(n_timed / rec_s, 1), round(rec_s, 3)],
            ["floor (matmul + mask + torch.topk)", round(n_timed / floor_s, 1), round(floor_s, 3)],
            ["floor with recframe's top-k (matmul + mask + topk_rows)",
             round(n_timed / own_s, 1), round(own_s, 3)]]
    md = [
        f"Full ranking of {args.users:,} users x {args.items:,} items (d={args.dim}), "
        f"top-{args.k}, batches of {args.batch_size} users, metrics {', '.join(METRICS)} at "
        f"K={ks}. Median of {args.rounds} alternating rounds over the first "
        f"{timing_users:,} users, after a warm-up; torch threads: {args.threads}.",
        "",
        common.md_table(["path", "users/s", "s per round"], rows),
        "",
        f"**recframe / floor = {ratio:.3f}** (goal <= 1.2). The evaluator selects the "
        "top-k with `recframe.eval.topk.topk_rows` (see `topk_select`), so against the "
        f"same floor with that selection it is {ratio_own:.3f}x: what batching, masking "
        "bookkeeping, hits and metrics add. A full recframe pass over all "
        f"{n_full:,} users took {full_s:.1f} s ({n_full / full_s:,.0f} users/s).",
        "",
        f"Peak RSS: {rss_after_timing} GiB after evaluating {timing_users:,} users, "
        f"{rss_full} GiB after evaluating all {n_full:,} (data alone: {rss_data} GiB): "
        "memory is bounded by the batch (the only [batch, n_items] tensor is the scores), "
        "not by the number of users.",
    ]
    if BEFORE:
        md += ["", _before_after(BEFORE, figures)]
    common.write_fragment(NAME, args.out, figures, "\n".join(md), details)
    return 0


def _before_after(before: dict[str, Any], after: dict[str, Any]) -> str:
    keys = ["eval_vs_floor", "eval_users_per_s_recframe", "eval_users_per_s_floor",
            "eval_peak_rss_gib"]
    rows = [[k, before.get(k, "?"), after[k]] for k in keys]
    return ("Before/after the optimisation of the evaluation path (same script, same "
            "sizes; `before` measured at git " + str(before.get("git", "?")) + "):\n\n"
            + common.md_table(["figure", "before", "after"], rows) + "\n\n"
            + str(before.get("changes", "")))


if __name__ == "__main__":
    sys.exit(main())

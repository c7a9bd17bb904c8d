"""Top-k selection: recframe's ``topk_rows`` against ``torch.topk`` on the same scores.

For each catalogue size and cut-off, a batch of user rows is scored as an
embedding model scores them (``U @ V.T`` with a popularity-like item bias, d=64,
seen items at ``-inf``), then both selections run alternately on the same
matrix: ``torch.topk(scores, k)`` and ``recframe.eval.topk.topk_rows(scores, k)``
(group pruning on CPU plus the canonical tie order, lower column first). Each
pair is checked to give the same values before it is timed. The speed-up is
torch.topk's median seconds over topk_rows', per thread count: on several
threads ``torch.topk`` spreads rows over threads, and ``topk_rows`` falls back to
it below ``MIN_COLUMNS_THREADED`` columns (so the ratio there is the cost of the
tie order alone).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from recframe.eval.topk import prunes, topk_rows  # noqa: E402

NAME = "topk_select"
#: (items, k): ML-100K, ML-1M, ML-20M and the eval_floor catalogue
SHAPES = [(1682, 20), (3706, 20), (26744, 100), (50000, 100)]


def scores_for(rows: int, items: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    users = torch.randn(rows, 64, generator=g)
    item_vectors = torch.randn(items, 64, generator=g)
    bias = torch.linspace(0.0, 2.0, items)[torch.randperm(items, generator=g)]
    scores = users @ item_vectors.T + bias
    seen = torch.randint(0, items, (rows, 20), generator=g)
    scores.scatter_(1, seen, -torch.inf)
    return scores


def alternating_medians(first: Any, second: Any, repeats: int) -> tuple[float, float]:
    """Median seconds of ``first()`` and of ``second()``, timed in alternation (one
    call of each per round, the order swapped every round) so that drift in the
    machine's speed falls on both alike."""
    times: tuple[list[float], list[float]] = ([], [])
    for r in range(repeats):
        for which in ((0, 1) if r % 2 == 0 else (1, 0)):
            fn = first if which == 0 else second
            start = time.perf_counter()
            fn()
            times[which].append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__.splitlines()[0], "tiny sizes: a smoke run")
    p.add_argument("--rows", type=int, default=512, help="users per batch (rows)")
    p.add_argument("--repeats", type=int, default=21, help="timed calls per path (median)")
    p.add_argument("--threads", default="1,2", help="comma-separated torch thread counts")
    args = p.parse_args(argv)
    shapes = SHAPES
    if args.small:
        args.rows, args.repeats, shapes = 64, 3, [(1682, 20), (3706, 20)]
    figures: dict[str, Any] = {}
    rows_md = []
    details: dict[str, Any] = {"rows": args.rows, "repeats": args.repeats, "cases": []}
    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        for items, k in shapes:
            scores = scores_for(args.rows, items)
            plain = torch.topk(scores, k, dim=1).values
            ours = topk_rows(scores, k)[0]
            assert torch.equal(plain, ours), (items, k, threads)
            for _ in range(2):  # warm-up
                torch.topk(scores, k, dim=1)
                topk_rows(scores, k)
            torch_s, ours_s = alternating_medians(
                lambda s=scores, k=k: torch.topk(s, k, dim=1),
                lambda s=scores, k=k: topk_rows(s, k), args.repeats)
            speedup = round(torch_s / ours_s, 2)
            figures[f"topk_rows_speedup_{items}_items_k{k}_{threads}t"] = speedup
            pruned = prunes(scores, k + 1)
            rows_md.append([items, k, threads, "pruned" if pruned else "torch.topk",
                            round(torch_s * 1e3, 2), round(ours_s * 1e3, 2), f"{speedup}x"])
            details["cases"].append({"items": items, "k": k, "threads": threads,
                                     "pruned": pruned, "torch_topk_s": torch_s,
                                     "topk_rows_s": ours_s})
    md = (f"Top-k of {args.rows} score rows (one evaluation batch), median of "
          f"{args.repeats} calls each, the two timed in alternation on the same matrix, "
          "values checked equal.\n\n"
          + common.md_table(["items", "k", "threads", "topk_rows path", "torch.topk ms",
                             "topk_rows ms", "speed-up"], rows_md)
          + "\n\n`topk_rows` also fixes the order of equal scores (lower item index "
          "first), which `torch.topk` leaves unspecified; where it falls back to "
          "`torch.topk` the ratio is what that costs.")
    common.write_fragment(NAME, args.out, figures, md, details)
    return 0


if __name__ == "__main__":
    sys.exit(main())

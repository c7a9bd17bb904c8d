"""Benchmark: 200M interactions end to end out of core, in bounded memory (issue 23).

    python experiments/bench/pipeline_200m.py            # 200M rows, 2M users, 200k items
    python experiments/bench/pipeline_200m.py --small    # 2M rows: a smoke run in a minute

Stages, each timed with its peak RSS (``ru_maxrss`` so far) and the bytes it leaves
on disk:

1. ``generate`` (not part of the pipeline figure): a synthetic rating log written
   chunk by chunk as Parquet (never all in memory): Zipf-like item popularity,
   log-normal user activity, ratings 1-5, Unix timestamps, a few repeated pairs;
2. ``prepare``: ``data.engine=duckdb`` with ``preprocess=implicit`` (dedup, binarize
   >= 4) and the per-user ``random`` 80/10/10 split: DuckDB (memory_limit
   ``--memory-limit``) writes the encoded Parquet shards (``build_shards``: nothing is
   loaded into Python);
3. ``train``: one epoch of BPR-MF (64 dims, batch 4096, ``model.sparse_grad=true`` with
   SparseAdam: a step updates the batch's rows, not the 2.2M x 64 tables) on batches
   streamed from the train shards (``ShardPairBatches``; negatives rejected against an int32 CSR of
   the train part built from the shards, which are sorted by user already);
4. ``evaluate``: ``--eval-users`` sampled users ranked against all items by the
   framework's streamed evaluator (``ShardEvalUsers``: seen train + valid items and the
   test items read from the shards batch by batch) and its ``Evaluator`` with the
   ``recall`` and ``ndcg`` metric plugins at 10.

On-disk size per stage: the input Parquet (generate), the shard directory (prepare),
the trained model's ``state_dict`` (train).

``pipeline_200m_s`` is prepare + train + evaluate; ``pipeline_200m_peak_gib`` the
process's peak RSS over them. Goal (issue 23): <= 8 GiB on the 2-core, 24 GiB machine.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

NAME = "pipeline_200m"
HERE = Path(__file__).resolve().parent
FULL = {"users": 2_000_000, "items": 200_000, "interactions": 200_000_000}
SMALL = {"users": 20_000, "items": 4_000, "interactions": 2_000_000}
GOAL_GIB = 8.0
CHUNK = 5_000_000


def generate(path: Path, users: int, items: int, interactions: int, seed: int) -> None:
    """The log, ``CHUNK`` rows at a time, into one Parquet file (atomic rename)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    activity = rng.lognormal(0.0, 1.0, users)
    user_cdf = np.cumsum(activity / activity.sum())
    weights = 1.0 / (np.arange(items) + 10.0) ** 1.05
    item_cdf = np.cumsum(weights / weights.sum())
    item_ids = rng.permutation(items).astype(np.int64) + 1
    tmp = path.with_suffix(".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = None
    for start in range(0, interactions, CHUNK):
        n = min(CHUNK, interactions - start)
        u = np.minimum(np.searchsorted(user_cdf, rng.random(n)), users - 1) + 1
        i = item_ids[np.minimum(np.searchsorted(item_cdf, rng.random(n)), items - 1)]
        table = pa.table({"user": u.astype(np.int64), "item": i,
                          "rating": rng.integers(1, 6, n).astype(np.float64),
                          "ts": rng.integers(946_684_800, 1_735_689_600, n)})
        writer = writer or pq.ParquetWriter(tmp, table.schema, compression="snappy")
        writer.write_table(table)
    writer.close()
    tmp.replace(path)


def train_csr(directory: Path, manifest: dict[str, Any], n_users: int, n_items: int) -> Any:
    """The train part as a binary CSR (int32 indices) read shard by shard: the shards
    are sorted by user, so the item column in file order is the CSR's indices."""
    import pyarrow.parquet as pq
    import scipy.sparse as sp

    n = manifest["counts"]["n_train"]
    indices = np.empty(n, dtype=np.int32)
    counts = np.zeros(n_users, dtype=np.int64)
    at = 0
    for entry in manifest["files"]["train"]:
        table = pq.read_table(directory / entry["path"], columns=["user", "item"])
        items = table.column("item").to_numpy()
        indices[at:at + len(items)] = items
        counts += np.bincount(table.column("user").to_numpy(), minlength=n_users)
        at += len(items)
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return sp.csr_matrix((np.ones(n, dtype=np.float32), indices, indptr),
                         shape=(n_users, n_items))


def run(path: Path, args: Any, out: dict[str, Any]) -> None:
    import logging

    import torch

    from recframe.data.encode import DataInfo
    from recframe.data.ooc.engine import build_shards
    from recframe.eval.evaluator import Evaluator
    from recframe.pipeline import resolve
    from recframe.plugin.manager import default_manager
    from recframe.testing import compose
    from recframe.train.shard_batches import ShardPairBatches
    from recframe.train.shard_eval import ShardEvalUsers

    logging.getLogger().setLevel(logging.WARNING)
    torch.set_num_threads(args.torch_threads)  # 2 threads on 2 busy cores: 50x slower steps
    stages: dict[str, dict[str, float]] = out["stages"]
    shard_dir = Path(args.shard_dir or tempfile.mkdtemp(prefix="recframe-200m-")) / "shards"
    cfg = compose("dataset=csv", f"dataset.path={path}", "dataset.columns.user_id=user",
                  "dataset.columns.item_id=item", "dataset.columns.rating=rating",
                  "dataset.columns.timestamp=ts", "preprocess=implicit", "split=random",
                  "model=bpr", "model.sparse_grad=true", "logger=none", "data.engine=duckdb",
                  f"data.shard_dir={shard_dir}", f"data.memory_limit={args.memory_limit}")
    plan = resolve(cfg, default_manager())
    t = time.perf_counter()
    directory, manifest, _, _, timings = build_shards(cfg, plan)
    stages["prepare"] = {"s": time.perf_counter() - t, "peak_gib": common.peak_rss_gib(),
                         "disk_bytes": sum(f.stat().st_size for f in directory.rglob("*")
                                           if f.is_file()), **{f"{k}_s": v for k, v in
                                                               timings.items()}}
    c = manifest["counts"]
    out["counts"] = c
    n_users, n_items = c["n_users"], c["n_items"]

    t = time.perf_counter()
    positives = train_csr(directory, manifest, n_users, n_items)
    batches = ShardPairBatches(directory, manifest, positives, 4096, 1, seed=0)
    model = plan.model.build(DataInfo(n_users=n_users, n_items=n_items), cfg.model)
    opt = torch.optim.SparseAdam(model.parameters(), lr=1e-3)
    steps = 0
    for batch in batches:
        opt.zero_grad(set_to_none=True)
        model.loss(batch).backward()
        opt.step()
        steps += 1
    stages["train"] = {"s": time.perf_counter() - t, "peak_gib": common.peak_rss_gib(),
                       "steps": steps, "rows": steps * 4096}

    model_path = shard_dir.parent / "bpr_state.pt"
    torch.save(model.state_dict(), model_path)
    stages["train"] = {"s": time.perf_counter() - t, "peak_gib": common.peak_rss_gib(),
                       "steps": steps, "rows": steps * 4096,
                       "disk_bytes": model_path.stat().st_size}
    del positives, batches

    t = time.perf_counter()
    # the framework's streamed evaluator: each batch's seen (train + valid) and test items
    # read from the shards; sampled users in ascending order, so the batches read each
    # part once, front to back
    evaluation = ShardEvalUsers(directory, manifest, "test", n_users, n_items)
    pick = np.random.default_rng(0).choice(len(evaluation), min(args.eval_users,
                                                                len(evaluation)),
                                           replace=False)
    pick.sort()
    pm = default_manager()
    evaluator = Evaluator({name: pm.metrics.get(name) for name in ("recall", "ndcg")}, [10])
    values: dict[str, list[torch.Tensor]] = {}
    model.eval()
    with torch.no_grad():
        for start in range(0, len(pick), 1024):
            batch = evaluation.__getitems__(pick[start:start + 1024].tolist())
            scores = model.score(batch["users"], batch)
            for key, value in evaluator.evaluate_batch(scores, batch,
                                                       scores_disposable=True).items():
                values.setdefault(key, []).append(value)
    stages["evaluate"] = {"s": time.perf_counter() - t, "peak_gib": common.peak_rss_gib(),
                          "users": len(pick)}
    out["metrics"] = {key: float(torch.cat(v).mean()) for key, v in values.items()}


def main() -> int:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--eval-users", type=int, default=None, help="users evaluated "
                   "(default 100,000; --small 2,000)")
    p.add_argument("--memory-limit", default="4GB", help="DuckDB memory_limit")
    p.add_argument("--shard-dir", default=None, help="where the shards go (default: a temp dir)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--torch-threads", type=int, default=1, help="torch threads for training "
                   "and scoring (on this shared 2-core machine 1 is fastest)")
    args = p.parse_args()
    sizes = SMALL if args.small else FULL
    args.eval_users = args.eval_users or (2_000 if args.small else 100_000)
    tag = f"u{sizes['users']}_i{sizes['items']}_n{sizes['interactions']}_s{args.seed}"
    path = HERE / ".cache" / f"synthetic_200m_{tag}.parquet"
    out: dict[str, Any] = {"stages": {}}
    if not path.exists():
        t = time.perf_counter()
        generate(path, **sizes, seed=args.seed)
        out["generate_s"] = time.perf_counter() - t
    out["input_bytes"] = path.stat().st_size
    run(path, args, out)
    st = out["stages"]
    total = sum(st[k]["s"] for k in ("prepare", "train", "evaluate"))
    peak = max(st[k]["peak_gib"] for k in ("prepare", "train", "evaluate"))
    key = "pipeline_200m" if not args.small else "pipeline_200m_small"
    disk = {"generate": out["input_bytes"], "prepare": st["prepare"]["disk_bytes"],
            "train": st["train"]["disk_bytes"]}
    figures = {f"{key}_s": round(total, 1), f"{key}_peak_gib": peak,
               **{f"{key}_{k}_s": round(v["s"], 1) for k, v in st.items()},
               **{f"{key}_{k}_disk_gib": round(v / 2**30, 3) for k, v in disk.items()}}
    c = out["counts"]
    note = " (**--small: a smoke run, not figures**)" if args.small else ""
    md = [f"{sizes['interactions']:,} synthetic interactions ({sizes['users']:,} users, "
          f"{sizes['items']:,} items, Parquet {out['input_bytes'] / 2**30:.2f} GiB){note}: "
          f"DuckDB out-of-core prepare -> one streamed BPR epoch -> evaluation of "
          f"{st['evaluate']['users']:,} sampled users. Total {total:.0f} s, peak RSS "
          f"{peak:.2f} GiB (goal <= {GOAL_GIB:g} GiB).", "",
          common.md_table(["stage", "wall s", "peak RSS GiB so far", "on disk GiB"],
                          [[k, round(v["s"], 1), v["peak_gib"],
                            round(disk[k] / 2**30, 3) if k in disk else "-"]
                           for k, v in st.items()]), "",
          f"Encoded {c['n_users']:,} users x {c['n_items']:,} items, train/valid/test "
          f"{c['n_train']:,}/{c['n_valid']:,}/{c['n_test']:,}; shards "
          f"{st['prepare']['disk_bytes'] / 2**30:.2f} GiB on disk. recall@10 "
          f"{out['metrics']['recall@10']:.4f}, NDCG@10 {out['metrics']['ndcg@10']:.4f}."]
    common.write_fragment(NAME, args.out, figures, "\n".join(md), out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

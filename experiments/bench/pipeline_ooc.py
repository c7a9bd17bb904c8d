"""Benchmark: the out-of-core data path (``data.engine=duckdb``) on the 20M synthetic log.

    python experiments/bench/pipeline_ooc.py            # 20M interactions (figures)
    python experiments/bench/pipeline_ooc.py --small    # a smoke run in seconds
    python experiments/bench/pipeline_ooc.py --engine ray --workers 2   # data.engine=ray

The same MovieLens-20M-shaped Parquet file as ``pipeline_20m.py`` (generated once into
``experiments/bench/.cache/``), the same config (``dataset=csv preprocess=implicit_5core
split=random``), run by :func:`recframe.pipeline.prepare` with ``data.engine=duckdb``:
DuckDB scans the file, runs dedup, binarize, 5-core and the per-user random split as
queries, writes the encoded Parquet shards, and the shards are read back into the
``RecData`` a run trains on. Timed in a fresh process (peak RSS is ``ru_maxrss``:
DuckDB's buffers included); the shard directory is new each time (no reuse).
``--memory-limit`` caps DuckDB (default 2GB), ``--threads`` its threads.

``--engine ray`` runs ``data.engine=ray`` instead on a local Ray instance of
``--workers`` CPUs (started before the clock, its start timed apart), writes the
fragment ``pipeline_ooc_ray``, and reports the peak of the summed RSS of this process
and every process under it (the Ray workers), sampled every 0.2 s.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import pipeline_20m  # noqa: E402

NAME = "pipeline_ooc"
GOAL_S, GOAL_GIB = 10.0, 3.0


def dir_bytes(path: Path) -> int:
    """Bytes of every file under ``path``."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def measure(path: Path, memory_limit: str, threads: int | None, engine: str = "duckdb",
            workers: int = 2) -> dict[str, Any]:
    """``prepare`` with the DuckDB (or Ray) engine into a fresh shard directory, timed by
    stage."""
    import logging

    from recframe.pipeline import prepare, resolve
    from recframe.plugin.manager import default_manager

    logging.getLogger().setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="recframe-bench-shards-") as tmp:
        shard_dir = Path(tmp) / "shards"
        extra = (f"data.engine={engine}", f"data.shard_dir={shard_dir}",
                 f"data.memory_limit={memory_limit}",
                 *((f"data.threads={threads}",) if threads else ()),
                 *((f"data.ray.num_workers={workers}",) if engine == "ray" else ()))
        cfg = pipeline_20m.compose_config(path, extra=extra)
        plan = resolve(cfg, default_manager())
        start_s, sampler = _start_ray(workers) if engine == "ray" else (0.0, None)
        try:
            t = time.perf_counter()
            prepared = prepare(cfg, plan)
            total = time.perf_counter() - t
        finally:
            tree_peak = sampler.stop() if sampler else None
        shards = dir_bytes(shard_dir)
    return {"total_s": total, "stages": prepared.timings, "peak_gib": common.peak_rss_gib(),
            "counts": prepared.counts, "shard_bytes": shards,
            "input_bytes": path.stat().st_size, "ray_start_s": start_s,
            "tree_peak_gib": tree_peak}


class TreeRss:
    """Samples the summed RSS of this process and all its descendants in a thread."""

    def __init__(self, every_s: float = 0.2) -> None:
        import threading

        self.peak, self.every, self._stop = 0, every_s, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        import contextlib

        import psutil

        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for proc in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):  # a process that just ended
                    total += proc.memory_info().rss
            self.peak = max(self.peak, total)
            self._stop.wait(self.every)

    def stop(self) -> float:
        self._stop.set()
        self.thread.join()
        return round(self.peak / 2**30, 2)


def _start_ray(workers: int) -> tuple[float, TreeRss]:
    import ray

    t = time.perf_counter()
    ray.init(num_cpus=workers, include_dashboard=False, object_store_memory=256 << 20,
             log_to_driver=False, configure_logging=False)
    return time.perf_counter() - t, TreeRss()


def main() -> int:
    """Generate the data set if needed, measure, write the fragment."""
    p = pipeline_20m.build_parser()
    p.add_argument("--memory-limit", default="2GB", help="DuckDB memory_limit")
    p.add_argument("--threads", type=int, default=None, help="DuckDB threads")
    p.add_argument("--engine", choices=("duckdb", "ray"), default="duckdb",
                   help="data.engine to measure")
    p.add_argument("--workers", type=int, default=2, help="--engine ray: local Ray CPUs")
    args = p.parse_args()
    sizes = pipeline_20m.sizes_of(args)
    path = pipeline_20m.ensure_dataset(**sizes, dup_frac=args.dup_frac, seed=args.seed)
    r = measure(path, args.memory_limit, args.threads, args.engine, args.workers)
    if args.engine == "ray":
        return _report_ray(args, sizes, r)
    figures = {"pipeline_ooc_20m_s": round(r["total_s"], 2),
               "pipeline_ooc_20m_peak_gib": r["peak_gib"]}
    for k, v in r["stages"].items():
        figures[f"pipeline_ooc_20m_{k}_s"] = round(v, 2)
    c = r["counts"]
    note = " (**--small: a smoke run, not figures**)" if args.small else ""
    md = [
        f"`data.engine=duckdb` (DuckDB {_version('duckdb')}, memory_limit "
        f"{args.memory_limit}) on the `pipeline_20m` log{note}: load -> dedup -> binarize -> "
        f"5-core -> random split -> encode to Parquet shards -> shards read back into "
        f"RecData. Wall {r['total_s']:.1f} s, peak RSS {r['peak_gib']:.2f} GiB (process, "
        f"DuckDB included). Input {r['input_bytes'] / 2**20:.0f} MiB, shards "
        f"{r['shard_bytes'] / 2**20:.0f} MiB.",
        "",
        common.md_table(["stage", "wall s"], [[k, round(v, 2)] for k, v in r["stages"].items()]),
        "",
        f"Encoded {c['n_users']:,} users x {c['n_items']:,} items, train/valid/test "
        f"{c['n_train']:,}/{c['n_valid']:,}/{c['n_test']:,}. Goals (issue 23): <= {GOAL_S:g} s, "
        f"<= {GOAL_GIB:g} GiB.",
    ]
    common.write_fragment(NAME, args.out, figures, "\n".join(md),
                          {"sizes": sizes, "result": r, "memory_limit": args.memory_limit})
    return 0


def _report_ray(args: Any, sizes: dict[str, Any], r: dict[str, Any]) -> int:
    figures = {"pipeline_ooc_ray_20m_s": round(r["total_s"], 2),
               "pipeline_ooc_ray_20m_tree_peak_gib": r["tree_peak_gib"],
               "pipeline_ooc_ray_20m_workers": args.workers}
    for k, v in r["stages"].items():
        figures[f"pipeline_ooc_ray_20m_{k}_s"] = round(v, 2)
    c = r["counts"]
    note = " (**--small: a smoke run, not figures**)" if args.small else ""
    md = [
        f"`data.engine=ray` (Ray {_version('ray')}, a local instance of {args.workers} CPUs, "
        f"DuckDB memory_limit {args.memory_limit} per worker) on the `pipeline_20m` log"
        f"{note}: the same steps and shards as `pipeline_ooc`. Wall {r['total_s']:.1f} s "
        f"(Ray's start, {r['ray_start_s']:.1f} s, not included), peak summed RSS of the "
        f"driver and the Ray processes {r['tree_peak_gib']:.2f} GiB. Shards "
        f"{r['shard_bytes'] / 2**20:.0f} MiB.",
        "",
        common.md_table(["stage", "wall s"], [[k, round(v, 2)] for k, v in r["stages"].items()]),
        "",
        f"Encoded {c['n_users']:,} users x {c['n_items']:,} items, train/valid/test "
        f"{c['n_train']:,}/{c['n_valid']:,}/{c['n_test']:,}.",
    ]
    common.write_fragment("pipeline_ooc_ray", args.out, figures, "\n".join(md),
                          {"sizes": sizes, "result": r, "memory_limit": args.memory_limit})
    return 0


def _version(name: str) -> str:
    from importlib import metadata

    return metadata.version(name)


if __name__ == "__main__":
    sys.exit(main())

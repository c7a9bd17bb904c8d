"""Benchmark 2: recframe's data pipeline on a synthetic set the size of MovieLens-20M.

    python experiments/bench/pipeline_20m.py            # 20M interactions (figures)
    python experiments/bench/pipeline_20m.py --small    # a smoke run in seconds

A synthetic rating log shaped like MovieLens-20M (138,493 users, 26,744 items,
20,000,263 ratings 0.5-5 with Unix timestamps, power-law item popularity and
user activity, plus about 1% repeated (user, item) rows so ``dedup`` has work)
is generated once, vectorized, into ``experiments/bench/.cache/`` as Parquet
(not timed). The timed part is exactly what ``recframe run dataset=csv
preprocess=implicit_5core split=random`` does before training: the config is
composed with Hydra, resolved against the plugin registries, and each stage of
:func:`recframe.pipeline.prepare` runs through its plugin (``csv`` loader reading
Parquet with a column mapping, ``dedup``, ``binarize`` (threshold 4), ``kcore``
(5/5, iterative), the ``random`` 80/10/10 per-user split, ``encode``), each timed
on its own. The ``temporal`` and ``leave_one_out`` splitters are timed on the
same preprocessed data. The measurement runs in a fresh process so its peak RSS
is its own (generation runs in another one).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

NAME = "pipeline_20m"
HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
#: bump when the generator changes, so a stale cached file is not reused
GEN_VERSION = 1
#: MovieLens-20M: 20,000,263 ratings of 138,493 users on 26,744 movies
FULL = {"users": 138_493, "items": 26_744, "interactions": 20_000_263}
SMALL = {"users": 3_000, "items": 1_200, "interactions": 200_000}
#: file columns as in MovieLens' ratings.csv, mapped to recframe's with dataset.columns
COLUMNS = {"user_id": "userId", "item_id": "movieId", "rating": "rating",
           "timestamp": "timestamp"}
GOAL_S, GOAL_GIB = 60.0, 6.0

#: wall seconds and peak measured on this machine (2 shared cores) before the pipeline was
#: optimized, same generator and sizes; kept here because the old code cannot be rerun side
#: by side. Old hot spots: dedup = a stable pandas sort of the timestamps plus
#: ``DataFrame.duplicated`` on (user, item); split = ``np.lexsort`` and boolean-mask copies;
#: leave_one_out = a 3-column ``DataFrame.sort_values``; temporal = a full sort for two
#: quantiles; encode = ``np.lexsort`` per part; kcore = a full copy when nothing is dropped;
#: load = every Parquet column converted, then consolidated into 2-D blocks (a copy).
BEFORE: dict[str, float] = {
    "pipeline_20m_s": 71.32, "pipeline_20m_peak_gib": 3.996,
    "pipeline_20m_load_s": 14.53, "pipeline_20m_dedup_s": 28.28,
    "pipeline_20m_binarize_s": 0.59, "pipeline_20m_kcore_s": 5.18,
    "pipeline_20m_split_s": 14.31, "pipeline_20m_encode_s": 8.31,
    "pipeline_20m_split_temporal_s": 6.32, "pipeline_20m_split_loo_s": 20.31,
}


# -- the synthetic data set -----------------------------------------------------------------

def dataset_path(users: int, items: int, interactions: int, dup_frac: float, seed: int) -> Path:
    """The cache file for these generator settings."""
    tag = f"u{users}_i{items}_n{interactions}_d{dup_frac:g}_s{seed}_v{GEN_VERSION}"
    return CACHE / f"ml20m_like_{tag}.parquet"


def generate(path: Path, users: int, items: int, interactions: int, dup_frac: float,
             seed: int) -> dict[str, Any]:
    """Write a MovieLens-20M-like rating log to ``path`` (vectorized numpy, then pyarrow).

    Item popularity is Zipf-like (``p_i ~ 1 / (rank + 10)^1.05``), user activity
    log-normal with at least 20 ratings (as in MovieLens). ``(user, item)`` pairs are
    drawn without repetition, then ``dup_frac`` of the rows are repeated with a later
    timestamp and a fresh rating. Ratings are half stars 0.5-5 (about half >= 4),
    timestamps Unix seconds in 1996-2015. Ids are shuffled so they carry no order.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    n_dup = int(round(interactions * dup_frac))
    n_unique = interactions - n_dup
    # user activity: log-normal, >= 20 (scaled so the total is about n_unique * 1.25)
    min_per_user = min(20, max(1, n_unique // users))
    raw = rng.lognormal(mean=0.0, sigma=1.2, size=users)
    counts = min_per_user + np.floor(raw / raw.sum() * (n_unique - min_per_user * users)
                                     ).astype(np.int64)
    counts = np.minimum(counts, items // 2)
    # item popularity: Zipf-like over a random permutation of the ids
    weights = 1.0 / (np.arange(items) + 10.0) ** 1.05
    cdf = np.cumsum(weights / weights.sum())
    # draw 30% more pairs than needed, drop repeated pairs, keep n_unique of them
    draw_counts = np.ceil(counts * 1.3).astype(np.int64)
    user_col = np.repeat(np.arange(users, dtype=np.int64), draw_counts)
    item_col = np.searchsorted(cdf, rng.random(len(user_col)) * cdf[-1]).astype(np.int64)
    keys = user_col * items + np.minimum(item_col, items - 1)
    del user_col, item_col
    keys = np.unique(keys)  # sorted, distinct pairs
    keys = keys[rng.permutation(len(keys))[:n_unique]]
    user_col, item_col = keys // items, keys % items
    del keys
    # timestamps: each user active over a random window inside 1996-2015
    t0, t1 = 820_454_400, 1_427_760_000
    start = rng.integers(t0, t1 - 86_400, size=users)
    span = np.minimum(rng.exponential(2 * 365 * 86_400, size=users).astype(np.int64) + 3600,
                      t1 - start)
    ts = start[user_col] + (rng.random(len(user_col)) * span[user_col]).astype(np.int64)
    # half-star ratings 0.5..5, ML-like shape (mean about 3.5, about half >= 4)
    stars = np.array([0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5])
    p = np.array([1.2, 3.3, 1.5, 7.2, 4.4, 21.4, 10.5, 27.7, 7.7, 15.1])
    rating = stars[np.searchsorted(np.cumsum(p / p.sum()), rng.random(len(user_col)))]
    if n_dup:
        rows = rng.integers(0, len(user_col), size=n_dup)
        user_col = np.concatenate([user_col, user_col[rows]])
        item_col = np.concatenate([item_col, item_col[rows]])
        ts = np.concatenate([ts, ts[rows] + rng.integers(1, 30 * 86_400, size=n_dup)])
        rating = np.concatenate([rating, stars[rng.integers(0, len(stars), size=n_dup)]])
    order = rng.permutation(len(user_col))  # file order: no grouping by user or time
    user_ids = rng.permutation(users).astype(np.int64) + 1
    item_ids = rng.permutation(items * 5)[:items].astype(np.int64) + 1  # sparse like movieId
    table = pa.table({
        COLUMNS["user_id"]: user_ids[user_col[order]],
        COLUMNS["item_id"]: item_ids[item_col[order]],
        COLUMNS["rating"]: rating[order],
        COLUMNS["timestamp"]: ts[order],
    })
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp, compression="snappy")
    tmp.replace(path)
    return {"rows": table.num_rows, "duplicates": n_dup, "bytes": path.stat().st_size}


def ensure_dataset(users: int, items: int, interactions: int, dup_frac: float, seed: int
                   ) -> Path:
    """The cached Parquet file, generated in a separate process when missing."""
    path = dataset_path(users, items, interactions, dup_frac, seed)
    if not path.exists():
        print(f"generating {path} (once) ...", flush=True)
        t = time.perf_counter()
        subprocess.run([sys.executable, str(Path(__file__).resolve()), "--generate-only",
                        "--users", str(users), "--items", str(items),
                        "--interactions", str(interactions), "--dup-frac", str(dup_frac),
                        "--seed", str(seed)], check=True)
        print(f"generated in {time.perf_counter() - t:.0f} s", flush=True)
    return path


# -- the timed pipeline ---------------------------------------------------------------------

def compose_config(path: Path, split: str = "random", model: str = "pop",
                   extra: tuple[str, ...] = ()) -> Any:
    """The run config of ``recframe run dataset=csv ... preprocess=implicit_5core``."""
    from recframe.testing import compose

    overrides = [
        "dataset=csv", f"dataset.path={path}",
        *(f"dataset.columns.{k}={v}" for k, v in COLUMNS.items()),
        "preprocess=implicit_5core", f"split={split}", f"model={model}", "logger=none",
        *extra,
    ]
    return compose(*overrides)


def measure(path: Path, extra_splits: list[str]) -> dict[str, Any]:
    """Run load -> preprocess steps -> split -> encode as :func:`recframe.pipeline.prepare`
    does, timing each stage; then the other splitters on the same preprocessed data."""
    import logging

    from recframe.data.encode import encode
    from recframe.pipeline import resolve, validate_interactions
    from recframe.plugin.manager import default_manager

    logging.getLogger().setLevel(logging.WARNING)
    stages: dict[str, float] = {}
    cpu: dict[str, float] = {}
    counts: dict[str, int] = {}
    rss: dict[str, float] = {"start": common.current_rss_gib()}
    t = time.perf_counter()
    cfg = compose_config(path)
    plan = resolve(cfg, default_manager())
    startup = time.perf_counter() - t  # imports (torch, lightning, plugins) and Hydra
    t_all = time.perf_counter()

    t, c = time.perf_counter(), time.process_time()
    ds = plan.dataset.load(cfg.dataset)
    stages["load"], cpu["load"] = time.perf_counter() - t, time.process_time() - c
    counts["loaded"] = len(ds.interactions)
    rss["load"] = common.current_rss_gib()
    for name, step in plan.steps:
        t, c = time.perf_counter(), time.process_time()
        ds = step(ds)
        stages[name], cpu[name] = time.perf_counter() - t, time.process_time() - c
        counts[name] = len(ds.interactions)
        rss[name] = common.current_rss_gib()
    validate_interactions(ds, "after preprocessing")

    t, c = time.perf_counter(), time.process_time()
    split = plan.splitter(ds)
    stages["split"], cpu["split"] = time.perf_counter() - t, time.process_time() - c
    rss["split"] = common.current_rss_gib()

    t, c = time.perf_counter(), time.process_time()
    data = encode(split)
    stages["encode"], cpu["encode"] = time.perf_counter() - t, time.process_time() - c
    total = time.perf_counter() - t_all
    rss["encode"] = common.current_rss_gib()
    counts.update(n_users=data.info.n_users, n_items=data.info.n_items,
                  **{f"n_{p}": len(data.events[p].users) for p in ("train", "valid", "test")})
    peak = common.peak_rss_gib()
    del split, data

    other: dict[str, float] = {}
    for name in extra_splits:
        spec = compose_config(path, split=name).split
        splitter = default_manager().splitters.get(name, key="split.name").build(spec)
        t = time.perf_counter()
        part = splitter(ds)
        other[name] = time.perf_counter() - t
        del part
    return {"stages": stages, "cpu_s": cpu, "total_s": total, "startup_s": startup,
            "total_cpu_s": sum(cpu.values()), "peak_gib": peak, "rss_after_gib": rss,
            "counts": counts, "other_splits_s": other,
            "peak_gib_with_other_splits": common.peak_rss_gib()}


def prepared_path(path: Path) -> Path:
    """Where :func:`save_prepared` keeps the encoded split of the data set ``path``."""
    return path.with_name(path.stem + "_prepared.npz")


def save_prepared(path: Path) -> Path:
    """Run the real pipeline (:func:`recframe.pipeline.prepare`) on ``path`` once and keep
    the encoded events of every part, so other benchmarks start from the train part."""
    from recframe.pipeline import prepare, resolve
    from recframe.plugin.manager import default_manager

    cfg = compose_config(path)
    data = prepare(cfg, resolve(cfg, default_manager())).data
    arrays: dict[str, np.ndarray] = {
        "n_users": np.asarray(data.info.n_users), "n_items": np.asarray(data.info.n_items),
        "user_ids": np.asarray(data.user_ids), "item_ids": np.asarray(data.item_ids),
    }
    for part, ev in data.events.items():
        arrays[f"{part}_users"], arrays[f"{part}_items"] = ev.users, ev.items
        if ev.timestamps is not None:
            arrays[f"{part}_timestamps"] = ev.timestamps
    out = prepared_path(path)
    tmp = out.with_name(out.stem + ".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(out)
    return out


def load_prepared(path: Path) -> Any:
    """The :class:`~recframe.data.encode.RecData` saved by :func:`save_prepared`."""
    import pandas as pd

    from recframe.data.encode import DataInfo, Events, RecData

    z = np.load(prepared_path(path))
    events = {p: Events(z[f"{p}_users"], z[f"{p}_items"],
                        z.get(f"{p}_timestamps"))
              for p in ("train", "valid", "test")}
    info = DataInfo(n_users=int(z["n_users"]), n_items=int(z["n_items"]),
                    has_timestamps=events["train"].timestamps is not None, has_ratings=True,
                    n_train=len(events["train"].users), name=path.stem)
    return RecData(info=info, user_ids=pd.Index(z["user_ids"]),
                   item_ids=pd.Index(z["item_ids"]), events=events)


# -- report ---------------------------------------------------------------------------------

def report(args: Any, sizes: dict[str, int], path: Path, result: dict[str, Any]) -> None:
    """Figures and the markdown section of the fragment."""
    st = result["stages"]
    figures: dict[str, Any] = {
        "pipeline_20m_s": round(result["total_s"], 2),
        "pipeline_20m_peak_gib": result["peak_gib"],
    }
    for key, value in st.items():
        figures[f"pipeline_20m_{key}_s"] = round(value, 2)
    for key, value in result["other_splits_s"].items():
        short = {"leave_one_out": "loo"}.get(key, key)
        figures[f"pipeline_20m_split_{short}_s"] = round(value, 2)
    c = result["counts"]
    rows = [[k, round(v, 2), round(result["cpu_s"][k], 2), result["rss_after_gib"].get(k, "")]
            for k, v in st.items()]
    rows.append(["**total**", round(result["total_s"], 2), round(result["total_cpu_s"], 2),
                 f"peak {result['peak_gib']}"])
    figures["pipeline_20m_cpu_s"] = round(result["total_cpu_s"], 2)
    size_note = "" if not args.small else " (**--small: a smoke run, not figures**)"
    md = [
        f"recframe's real data pipeline (`dataset=csv` Parquet with a column mapping, "
        f"`preprocess=implicit_5core`, `split=random` 80/10/10, encode) on a synthetic "
        f"MovieLens-20M-sized log{size_note}: {c['loaded']:,} rows, {sizes['users']:,} users, "
        f"{sizes['items']:,} items, {args.dup_frac:.0%} repeated pairs "
        f"(`{path.name}`, generated once, not timed). One process, stages timed one by one "
        f"as `recframe.pipeline.prepare` runs them; RSS is the resident size after each "
        f"stage, peak is `ru_maxrss` of the measuring process (imports included). The "
        f"machine is shared, so wall seconds vary from run to run; CPU seconds are steadier. "
        f"Not counted: start-up (imports of torch/lightning/plugins and Hydra composition, "
        f"{result['startup_s']:.1f} s here), paid once by every run.",
        "",
        common.md_table(["stage", "wall s", "CPU s (all threads)", "RSS after (GiB)"], rows),
        "",
        f"Rows: loaded {c['loaded']:,} -> dedup {c.get('dedup', 0):,} -> binarize "
        f"{c.get('binarize', 0):,} -> 5-core {c.get('kcore', 0):,}; encoded "
        f"{c['n_users']:,} users x {c['n_items']:,} items, train/valid/test "
        f"{c['n_train']:,}/{c['n_valid']:,}/{c['n_test']:,}.",
        "",
        f"Goals: total <= {GOAL_S:g} s on 2 cores (measured {result['total_s']:.1f} s), "
        f"peak <= {GOAL_GIB:g} GiB (measured {result['peak_gib']:.2f} GiB).",
    ]
    if result["other_splits_s"]:
        md += ["", "Other splitters on the same preprocessed data: " + ", ".join(
            f"`{k}` {v:.2f} s" for k, v in result["other_splits_s"].items()) + "."]
    if BEFORE and not args.small:
        keys = [k for k in BEFORE if k in figures]
        md += ["", "Before and after the optimizations of this benchmark (same machine, "
               "same data; 'before' measured on the code before the change):", "",
               common.md_table(["figure", "before", "after"],
                               [[k, BEFORE[k], figures[k]] for k in keys])]
    common.write_fragment(NAME, args.out, figures, "\n".join(md),
                          {"sizes": sizes, "dup_frac": args.dup_frac, "seed": args.seed,
                           "file": str(path), "result": result, "before": BEFORE})


def build_parser() -> Any:
    """The command line: size flags, ``--small``, ``--out``."""
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--users", type=int, default=None,
                   help=f"users (none: {FULL['users']:,}, --small {SMALL['users']:,})")
    p.add_argument("--items", type=int, default=None,
                   help=f"items (none: {FULL['items']:,}, --small {SMALL['items']:,})")
    p.add_argument("--interactions", type=int, default=None,
                   help=f"rows incl. repeats (none: {FULL['interactions']:,}, --small "
                        f"{SMALL['interactions']:,})")
    p.add_argument("--dup-frac", type=float, default=0.01,
                   help="fraction of rows that repeat an earlier (user, item) pair")
    p.add_argument("--seed", type=int, default=0, help="generator seed")
    p.add_argument("--splits", default="temporal,leave_one_out",
                   help="other splitters to time on the preprocessed data ('' = none)")
    p.add_argument("--generate-only", action="store_true", help=argparse.SUPPRESS)
    return p


def sizes_of(args: Any) -> dict[str, int]:
    """Sizes from the flags, defaulting to the full (or ``--small``) set."""
    base = SMALL if args.small else FULL
    return {k: getattr(args, k) if getattr(args, k) is not None else v for k, v in base.items()}


def main() -> int:
    """Generate (once, in a child process), measure here, write the fragment."""
    args = build_parser().parse_args()
    sizes = sizes_of(args)
    path = dataset_path(**sizes, dup_frac=args.dup_frac, seed=args.seed)
    if args.generate_only:
        info = generate(path, **sizes, dup_frac=args.dup_frac, seed=args.seed)
        print(json.dumps(info))
        return 0
    ensure_dataset(**sizes, dup_frac=args.dup_frac, seed=args.seed)
    result = measure(path, [s for s in args.splits.split(",") if s])
    report(args, sizes, path, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

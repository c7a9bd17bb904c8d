"""Benchmark: Polars (streaming) vs DuckDB on the core out-of-core query, to choose the engine.

    python experiments/bench/ooc_engines.py            # the 20M log of pipeline_20m.py
    python experiments/bench/ooc_engines.py --small    # a smoke run

The query is the heaviest part of ``preprocess=implicit_5core``: on the 20M synthetic
Parquet log, keep the latest row per (user, item) pair (ties by row position),
keep ratings >= 4, then one k-core round (users and items with >= 5 rows) and count
the rows left. Each engine runs it in a fresh process (its own peak RSS): Polars as
one lazy query collected with the streaming engine, DuckDB as SQL with a 2GB memory
cap. Both must give the same count.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import pipeline_20m  # noqa: E402

NAME = "ooc_engines"
U, IT, R, T = (pipeline_20m.COLUMNS[k] for k in ("user_id", "item_id", "rating", "timestamp"))


def run_polars(path: str) -> int:
    import polars as pl

    lf = pl.scan_parquet(path).with_row_index("_row")
    latest = (lf.sort([U, IT, T, "_row"]).group_by([U, IT]).agg(pl.all().last()))
    pos = latest.filter(pl.col(R) >= 4.0)
    core = pos.filter((pl.len().over(U) >= 5) & (pl.len().over(IT) >= 5))
    return int(core.select(pl.len()).collect(engine="streaming").item())


def run_duckdb(path: str) -> int:
    import duckdb

    con = duckdb.connect()
    con.execute("SET memory_limit = '2GB'")
    return int(con.sql(f"""
        WITH src AS (SELECT *, file_row_number AS _row FROM read_parquet('{path}',
                     file_row_number = true)),
        latest AS (SELECT * FROM src QUALIFY row_number() OVER (PARTITION BY "{U}", "{IT}"
                   ORDER BY "{T}" DESC, _row DESC) = 1),
        pos AS (SELECT * FROM latest WHERE "{R}" >= 4.0)
        SELECT count(*) FROM pos
        SEMI JOIN (SELECT "{U}" FROM pos GROUP BY 1 HAVING count(*) >= 5) USING ("{U}")
        SEMI JOIN (SELECT "{IT}" FROM pos GROUP BY 1 HAVING count(*) >= 5) USING ("{IT}")
    """).fetchall()[0][0])


def child(engine: str, path: str) -> None:
    t = time.perf_counter()
    rows = {"polars": run_polars, "duckdb": run_duckdb}[engine](path)
    print(json.dumps({"engine": engine, "rows": rows, "s": time.perf_counter() - t,
                      "peak_gib": common.peak_rss_gib()}))


def main() -> int:
    p = pipeline_20m.build_parser()
    p.add_argument("--child", nargs=2, help=argparse_hidden())
    args = p.parse_args()
    if args.child:
        child(*args.child)
        return 0
    sizes = pipeline_20m.sizes_of(args)
    path = pipeline_20m.ensure_dataset(**sizes, dup_frac=args.dup_frac, seed=args.seed)
    results = {}
    for engine in ("duckdb", "polars"):
        out = subprocess.run([sys.executable, __file__, "--child", engine, str(path)],
                             check=True, capture_output=True, text=True).stdout
        results[engine] = json.loads(out.strip().splitlines()[-1])
    if results["duckdb"]["rows"] != results["polars"]["rows"]:
        raise SystemExit(f"engines disagree: {results}")
    figures = {f"ooc_engine_{e}_s": round(r["s"], 2) for e, r in results.items()}
    figures.update({f"ooc_engine_{e}_peak_gib": r["peak_gib"] for e, r in results.items()})
    md = ["Latest row per (user, item), rating >= 4, one 5-core round, count, on the "
          f"`pipeline_20m` log ({sizes['interactions']:,} rows), each engine in a fresh "
          "process:", "",
          common.md_table(["engine", "wall s", "peak RSS GiB", "rows left"],
                          [[e, round(r["s"], 2), r["peak_gib"], r["rows"]]
                           for e, r in results.items()])]
    common.write_fragment(NAME, args.out, figures, "\n".join(md), {"results": results})
    return 0


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    sys.exit(main())

"""Out-of-core forms of the built-in splitters (``data.engine=duckdb``): DuckDB queries
that add a ``_part`` column (0 train, 1 valid, 2 test), equal row for row to the
in-memory splitters (ties broken by the original row position ``_row``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from recframe.api import (
    TIMESTAMP,
    USER,
    DataError,
    sql_double,
)
from recframe_splitters._common import check_keys, get_int, get_ratios, log
from recframe_splitters.leave_one_out import MIN_USERS_CHECKED
from recframe_splitters.temporal import temporal_sizes

ROW, PART = "_row", "_part"


def _require_rows(ctx: Any, relation: str, split: str) -> int:
    n = ctx.count(relation)
    if n == 0:
        raise DataError(f"split {split!r}: dataset {ctx.source!r} has no interactions to "
                        f"split; check the preprocess steps (e.g. kcore thresholds).")
    return n


def _require_timestamps(ctx: Any, relation: str, split: str) -> None:
    if TIMESTAMP not in ctx.columns(relation):
        raise DataError(f"split {split!r} needs a timestamp column; your data has columns "
                        f"{[c for c in ctx.columns(relation) if not c.startswith('_')]}; "
                        f"use split=random")
    missing = ctx.count(relation, f"{TIMESTAMP} IS NULL")
    if missing:
        raise DataError(f"split {split!r}: {missing} interaction(s) have a missing timestamp; "
                        f"add the drop_invalid preprocess step or use split=random")


def _round_half_up(expr: str) -> str:
    """SQL of :func:`round_half_up` on a DOUBLE expression (same float operations)."""
    return f"CAST(floor(({expr}) + {sql_double(0.5)} + {sql_double(1e-9)}) AS BIGINT)"


def _holdout_sql(n: str, valid: float, test: float) -> tuple[str, str]:
    """SQL of :func:`recframe_splitters.random_split.holdout_sizes`: (n_valid, n_test)."""
    nt = _round_half_up(f"CAST({n} AS DOUBLE) * {sql_double(test)}")
    if test > 0:
        nt = f"(CASE WHEN {n} >= 2 THEN greatest({nt}, 1) ELSE {nt} END)"
    nt = f"least({nt}, greatest({n} - 1, 0))"
    rest = f"({n} - {nt})"
    nv = _round_half_up(f"CAST({n} AS DOUBLE) * {sql_double(valid)}")
    if valid > 0:
        nv = f"(CASE WHEN {rest} >= 2 THEN greatest({nv}, 1) ELSE {nv} END)"
    nv = f"least({nv}, greatest({rest} - 1, 0))"
    return nv, nt


def build_random_sql(cfg: Any) -> Any:
    """The per-user ``random`` split: the ``p``-th kept row (0-based, in original row
    order after preprocessing) gets the key ``default_rng(seed).random(n)[p]``, as in
    memory (looked up by original row through :class:`recframe.api.KeptRowKeys`: no
    global sort), each user's rows are ordered by key and the last ones held out by
    ``holdout_sizes``. Only the held-out rows are ranked into a table; the split is the
    relation joined to it. The keys come from ``ctx.kept_row_keys`` (an engine that
    splits the data over workers numbers all kept rows there)."""
    check_keys(cfg, "random", ("ratios", "seed", "per_user"))
    _, valid, test = get_ratios(cfg, "random")
    seed = get_int(cfg, "seed", 0, "random")
    if cfg.get("per_user", True) is not True:
        return None  # a global shuffle: no out-of-core form (E921)

    def random_split(ctx: Any, relation: str) -> str:
        _require_rows(ctx, relation, "random")
        keys = ctx.kept_row_keys(seed, relation)
        keyed = ctx.table(f"SELECT * FROM {_register_keyed(ctx, relation, keys)}",
                          "random_keys")
        nv, nt = _holdout_sql("_n", valid, test)
        ranked = (f"SELECT {ROW}, row_number() OVER (PARTITION BY {USER} ORDER BY _key, "
                  f"{ROW}) - 1 AS _pos, count(*) OVER (PARTITION BY {USER}) AS _n FROM "
                  f"{keyed}")
        held = ctx.table(
            f"SELECT {ROW}, (CASE WHEN _pos >= _n - _nt THEN 2 ELSE 1 END)::TINYINT AS "
            f"{PART} FROM (SELECT *, {nv} AS _nv, {nt} AS _nt FROM ({ranked})) "
            f"WHERE _pos >= _n - _nt - _nv", "random_held")
        ctx.con.execute(f"DROP TABLE {keyed}")
        return ctx.table(f"SELECT r.*, coalesce(h.{PART}, 0)::TINYINT AS {PART} FROM "
                         f"{relation} r LEFT JOIN {held} h USING ({ROW})", "random")

    # data.engine=ray: user-local but for each row's key (its global kept position)
    # data.engine=ray: per user, given every row's global key (ctx.kept_row_keys)
    random_split.partition_keyed = True
    return random_split


def _register_keyed(ctx: Any, relation: str, keys: Any) -> str:
    """A relation ``(user, _row, _key)``: the rows read in batches of 1M on a second
    cursor, their keys added with numpy (a DuckDB Python function would be called for
    every 2048 rows, at 10x the cost), streamed back as an Arrow reader."""
    reader = ctx.con.cursor().sql(f"SELECT {USER}, {ROW} FROM {relation}").to_arrow_reader(
        1 << 20)
    schema = reader.schema.append(pa.field("_key", pa.float64()))

    def batches() -> Any:
        for batch in reader:
            rows = batch.column(1).to_numpy(zero_copy_only=False)
            yield pa.RecordBatch.from_arrays([*batch.columns, pa.array(keys(rows))],
                                             schema=schema)

    name = f"random_keys_stream_{id(keys)}"
    ctx.con.register(name, pa.RecordBatchReader.from_batches(schema, batches()))
    return name


def build_leave_one_out_sql(cfg: Any) -> Any:
    """``leave_one_out``: per user by (timestamp, row), the last ``n_test`` rows to
    test and the ``n_valid`` before to valid; shorter users stay in train."""
    check_keys(cfg, "leave_one_out", ("n_test", "n_valid"))
    n_test = get_int(cfg, "n_test", 1, "leave_one_out", minimum=1)
    n_valid = get_int(cfg, "n_valid", 1, "leave_one_out", minimum=0)
    need = n_test + n_valid + 1

    def leave_one_out(ctx: Any, relation: str) -> str:
        _require_rows(ctx, relation, "leave_one_out")
        _require_timestamps(ctx, relation, "leave_one_out")
        sizes = ctx.con.execute(
            f"SELECT count(*) AS n_users, count(*) FILTER (WHERE n <= {n_test}) AS short, "
            f"count(*) FILTER (WHERE n < {need}) AS too_short FROM "
            f"(SELECT count(*) AS n FROM {relation} GROUP BY {USER})").fetchall()[0]
        n_users, short, too_short = (int(v) for v in sizes)
        if n_users >= MIN_USERS_CHECKED and 2 * short > n_users:
            raise DataError(
                f"split 'leave_one_out': {short} of {n_users} users "
                f"({100 * short / n_users:.0f}%) of {ctx.source} have at most {n_test} "
                f"interaction(s) (n_test={n_test}): holding out their last events would "
                f"leave them no train item, so leave-one-out cannot evaluate most users. "
                f"Use split=random, or keep users with enough history "
                f"(preprocess=implicit_5core, or a kcore step with a higher user minimum); "
                f"check that the user column is right (one id per user, not per row).")
        log.info("split 'leave_one_out': %d of %d users have fewer than %d events and stay "
                 "in train only", too_short, n_users, need)
        ranked = (f"SELECT *, row_number() OVER (PARTITION BY {USER} ORDER BY {TIMESTAMP}, "
                  f"{ROW}) - 1 AS _pos, count(*) OVER (PARTITION BY {USER}) AS _n "
                  f"FROM {relation}")
        return ctx.table(
            f"SELECT * EXCLUDE (_pos, _n), (CASE WHEN _n >= {need} AND _pos >= _n - {n_test} "
            f"THEN 2 WHEN _n >= {need} AND _pos >= _n - {n_test + n_valid} THEN 1 ELSE 0 END)"
            f"::TINYINT AS {PART} FROM ({ranked})", "leave_one_out")

    leave_one_out.partition_local = True  # data.engine=ray: rows of one user at a time
    return leave_one_out


def build_temporal_sql(cfg: Any) -> Any:
    """``temporal``: one global time cut, counted as the in-memory splitter counts
    (the ``k``-th smallest timestamp; boundary ties join the later part)."""
    check_keys(cfg, "temporal", ("ratios",))
    _, valid, test = get_ratios(cfg, "temporal")

    def temporal(ctx: Any, relation: str) -> str:
        n = _require_rows(ctx, relation, "temporal")
        _require_timestamps(ctx, relation, "temporal")
        n_valid, n_test = temporal_sizes(n, valid, test)

        def kth(k: int) -> Any:
            return ctx.scalar(f"SELECT {TIMESTAMP} FROM {relation} ORDER BY {TIMESTAMP} "
                              f"LIMIT 1 OFFSET {k}")

        test_cond, valid_cond = "false", "false"
        n_before = n
        if n_test > 0:
            test_cut = kth(n - n_test)
            test_cond = f"{TIMESTAMP} >= $test_cut"
            n_before = ctx.con.execute(f"SELECT count(*) FROM {relation} WHERE {TIMESTAMP} < "
                                       f"$test_cut", {"test_cut": test_cut}).fetchall()[0][0]
            log.info("split 'temporal': test from %s", test_cut)
        n_valid = min(n_valid, int(n_before) - 1)
        params: dict[str, Any] = {"test_cut": test_cut} if n_test > 0 else {}
        if n_valid > 0:
            params["valid_cut"] = kth(int(n_before) - n_valid)
            valid_cond = f"{TIMESTAMP} >= $valid_cut"
            log.info("split 'temporal': valid from %s", params["valid_cut"])
        sql = (f"SELECT *, (CASE WHEN {test_cond} THEN 2 WHEN {valid_cond} THEN 1 ELSE 0 END)"
               f"::TINYINT AS {PART} FROM {relation}")
        out = ctx.table(_inline(sql, params), "temporal")
        if ctx.count(out, f"{PART} = 0") == 0:
            distinct = ctx.scalar(f"SELECT count(DISTINCT {TIMESTAMP}) FROM {relation}")
            raise DataError(
                f"split 'temporal': no interaction is earlier than the first cut ({distinct} "
                f"distinct timestamps in {n} rows), so train would be empty. Lower the "
                f"valid/test ratios or use split=random.")
        return out

    return temporal


def _inline(sql: str, params: dict[str, Any]) -> str:
    """``$name`` placeholders replaced by literals (CREATE TABLE AS takes no parameters)."""
    for name, value in params.items():
        if isinstance(value, (int, np.integer)):
            literal = str(int(value))
        elif isinstance(value, (float, np.floating)):
            literal = sql_double(float(value))
        else:
            kind = "TIMESTAMP" if hasattr(value, "isoformat") else "VARCHAR"
            text = str(value).replace("'", "''")
            literal = f"CAST('{text}' AS {kind})"
        sql = sql.replace(f"${name}", literal)
    return sql

"""Out-of-core forms of the built-in steps (``data.engine=duckdb``): DuckDB queries.

Each ``build_*_sql(cfg)`` reads the same parameters as its in-memory twin and returns
``step(ctx, relation) -> relation``. Results equal the in-memory steps' row for row:
ties are broken by the original row position (column ``_row``), as the pandas steps
break them by row order.
"""

from __future__ import annotations

from typing import Any

from recframe.api import ITEM, RATING, TIMESTAMP, USER, ConfigError, DataError, sql_double
from recframe_preprocess._params import check_keys, get_bool, get_int, get_number, log
from recframe_preprocess._params import report_dropped as _report

ROW = "_row"


def _numeric(ctx: Any, relation: str, column: str) -> bool:
    kind = ctx.types(relation).get(column, "")
    return any(t in kind for t in ("INT", "DOUBLE", "FLOAT", "DECIMAL", "REAL"))


def build_drop_invalid_sql(cfg: Any) -> Any:
    """``drop_invalid`` as a filter: null ids, null/NaN/inf ratings and timestamps."""
    check_keys(cfg, "drop_invalid", ())

    def drop_invalid(ctx: Any, relation: str) -> str:
        cols = ctx.types(relation)
        cond = [f"{USER} IS NOT NULL", f"{ITEM} IS NOT NULL"]
        for col in (RATING, TIMESTAMP):
            if col in cols:
                cond.append(f"{col} IS NOT NULL")
                if any(t in cols[col] for t in ("DOUBLE", "FLOAT", "REAL")):
                    cond.append(f"isfinite({col})")
        before = ctx.count(relation)
        out = ctx.view(f"SELECT * FROM {relation} WHERE {' AND '.join(cond)}", "drop_invalid")
        _report("drop_invalid", before, ctx.count(out), "null ids or invalid values")
        return out

    drop_invalid.partition_local = True  # data.engine=ray: rows of one user at a time
    return drop_invalid


def build_dedup_sql(cfg: Any) -> Any:
    """``dedup``: per (user, item) the latest row by timestamp (missing = oldest),
    ties and data without timestamps by the last row position."""
    check_keys(cfg, "dedup", ())

    def dedup(ctx: Any, relation: str) -> str:
        cols = ctx.columns(relation)
        order = (f"{TIMESTAMP} DESC NULLS LAST, {ROW} DESC" if TIMESTAMP in cols
                 else f"{ROW} DESC")
        before = ctx.count(relation)
        # only pairs that occur more than once need ordering (usually a few percent);
        # they are found by grouping on one 64-bit hash of the pair (40% faster than on
        # the pair); a hash collision only adds a distinct pair to the candidates, which
        # the exact per-pair ranking below then keeps
        pair_hash = f"hash({USER}, {ITEM})"
        repeated = ctx.table(
            f"SELECT {pair_hash} AS _pair FROM {relation} GROUP BY _pair "
            f"HAVING count(*) > 1", "dedup_pairs")
        if ctx.count(repeated) == 0:
            _report("dedup", before, before, "repeated user-item pairs")
            return relation
        drop = ctx.table(
            f"SELECT {ROW} FROM (SELECT r.{ROW}, row_number() OVER (PARTITION BY "
            f"r.{USER}, r.{ITEM} ORDER BY {', '.join('r.' + o for o in order.split(', '))}) "
            f"AS _rn FROM {relation} r WHERE {pair_hash} IN (SELECT _pair FROM {repeated})) "
            f"WHERE _rn > 1", "dedup_drop")
        out = ctx.table(f"SELECT * FROM {relation} ANTI JOIN {drop} USING ({ROW})", "dedup")
        _report("dedup", before, ctx.count(out), "repeated user-item pairs")
        return out

    dedup.partition_local = True  # data.engine=ray: rows of one user at a time
    return dedup


def build_binarize_sql(cfg: Any) -> Any:
    """``binarize``: rating >= threshold kept as 1.0 (``keep_negatives``: 1.0/0.0)."""
    check_keys(cfg, "binarize", ("threshold", "keep_negatives"))
    threshold = get_number(cfg, "threshold", 4.0, "binarize")
    keep_negatives = get_bool(cfg, "keep_negatives", False, "binarize")

    def binarize(ctx: Any, relation: str) -> str:
        if RATING not in ctx.columns(relation):
            if not ctx.meta.get("implicit", False):
                log.warning("binarize: %s has no rating column: treated as implicit "
                            "feedback, every interaction a positive", ctx.source)
            return relation
        if not _numeric(ctx, relation, RATING):
            raise DataError(f"preprocess step 'binarize' needs numeric ratings; column "
                            f"{RATING!r} has type {ctx.types(relation)[RATING]}.")
        positive = f"coalesce({RATING} >= {sql_double(threshold)}, false)"
        before = ctx.count(relation)
        if keep_negatives:
            return ctx.view(f"SELECT * REPLACE (CASE WHEN {positive} THEN 1.0 ELSE 0.0 END"
                            f"::DOUBLE AS {RATING}) FROM {relation}", "binarize")
        out = ctx.view(f"SELECT * REPLACE (1.0::DOUBLE AS {RATING}) FROM {relation} "
                       f"WHERE {positive}", "binarize")
        _report("binarize", before, ctx.count(out), f"rating < {threshold:g}")
        return out

    binarize.partition_local = True  # data.engine=ray: rows of one user at a time
    return binarize


def build_kcore_sql(cfg: Any) -> Any:
    """``kcore``: drop users/items below ``user_min``/``item_min`` rows, repeated to the
    fixed point (both counts taken on the same rows each round, as in memory)."""
    check_keys(cfg, "kcore", ("user_min", "item_min"))
    user_min = get_int(cfg, "user_min", 5, "kcore")
    item_min = get_int(cfg, "item_min", 5, "kcore")

    def kcore(ctx: Any, relation: str) -> str:
        # rounds run on the (user, item) pairs alone; a user or item that fails once has
        # no row left, so the rows kept are those whose user and item pass the last round;
        # a round where no user and no item fails is the fixed point (the first round
        # reads the relation itself, so data already k-core costs two group-bys)
        before = n = ctx.count(relation)
        current, rounds, made = relation, 0, []
        while True:
            rounds += 1
            users = ctx.table(f"SELECT {USER}, count(*) AS _c FROM {current} "
                              f"GROUP BY {USER}", "kcore_users")
            items = ctx.table(f"SELECT {ITEM}, count(*) AS _c FROM {current} "
                              f"GROUP BY {ITEM}", "kcore_items")
            made += [users, items]
            failing = ctx.count(users, f"_c < {user_min}") + ctx.count(items,
                                                                        f"_c < {item_min}")
            if failing == 0:
                break
            current = ctx.table(
                f"SELECT {USER}, {ITEM} FROM {current} "
                f"SEMI JOIN (SELECT {USER} FROM {users} WHERE _c >= {user_min}) "
                f"USING ({USER}) SEMI JOIN (SELECT {ITEM} FROM {items} WHERE _c >= "
                f"{item_min}) USING ({ITEM})", "kcore_pairs")
            made.append(current)
            n = ctx.count(current)
        log.info("preprocess 'kcore': fixed point after %d round(s)", rounds)
        _report("kcore", before, n, f"user_min={user_min}, item_min={item_min}")
        out = relation
        if n != before:
            out = ctx.table(f"SELECT * FROM {relation} SEMI JOIN {users} USING ({USER}) "
                            f"SEMI JOIN {items} USING ({ITEM})", "kcore")
        ctx.con.execute("".join(f"DROP TABLE {t};" for t in made))
        return out

    kcore.partition_kcore = (user_min, item_min)  # data.engine=ray: global item counts
    return kcore




def build_normalize_sql(cfg: Any) -> Any:
    """``normalize`` of interaction columns (``rating``, ``timestamp``: the columns the
    out-of-core relation carries): min-max or z-score with statistics over the non-null,
    non-NaN values, a constant column to zeros, as in memory. ``minmax`` is exact;
    ``zscore``'s mean and population deviation are summed in another order than numpy
    sums them, so a scaled value may differ from the in-memory one in its last bits.
    Feature-frame targets (``items``, ``users``) have no out-of-core form (None: E921)."""
    from recframe_preprocess.normalize import normalize_settings

    columns, method, target = normalize_settings(cfg)
    if target != "interactions":
        return None

    def normalize(ctx: Any, relation: str) -> str:
        kinds = {c: t for c, t in ctx.types(relation).items() if not c.startswith("_")}
        missing = [c for c in columns if c not in kinds]
        if missing:
            raise DataError(
                f"preprocess step 'normalize': column(s) {missing} not in the interactions "
                f"of the out-of-core engine, which carries {list(kinds)}; normalize other "
                f"columns with data.engine=pandas.")
        not_numeric = [c for c in columns if not _numeric(ctx, relation, c)]
        if not_numeric:
            raise DataError(
                f"preprocess step 'normalize': column(s) {not_numeric} of the interactions "
                f"are not numeric ({', '.join(kinds[c] for c in not_numeric)}).")
        replaced = []
        for c in columns:
            valid = f"{c} IS NOT NULL AND NOT isnan({c}::DOUBLE)"
            stats = (f"min({c}::DOUBLE), max({c}::DOUBLE)" if method == "minmax" else
                     f"avg({c}::DOUBLE), stddev_pop({c}::DOUBLE)")
            a, b = ctx.con.execute(f"SELECT {stats} FROM {relation} WHERE {valid}"
                                   ).fetchall()[0]
            if a is None:  # nothing to scale
                replaced.append(f"{c}::DOUBLE AS {c}")
                continue
            center, spread = (a, b - a) if method == "minmax" else (a, b)
            value = f"({c}::DOUBLE - {sql_double(center)})"
            replaced.append(f"({value} / {sql_double(spread)}) AS {c}" if spread > 0 else
                            f"({value} * {sql_double(0.0)}) AS {c}")
        log.info("preprocess 'normalize': %s-scaled %s of interactions; dropped 0 rows",
                 method, columns)
        return ctx.view(f"SELECT * REPLACE ({', '.join(replaced)}) FROM {relation}",
                        "normalize")

    return normalize


def build_anonymize_sql(cfg: Any) -> Any:
    """``anonymize``: each distinct id hashed once in Python (the in-memory step's
    ``hash_ids``: HMAC-SHA256 of ``kind NUL str(id)``), joined back as a table. Feature
    frames carried in memory alongside (``ctx.feature_frames``) would keep raw ids, so a
    hashed kind with one is refused (E921: run it with data.engine=pandas)."""
    from recframe_preprocess.anonymize import anonymize_settings, hash_ids

    key_env, users, items, length, key = anonymize_settings(cfg)
    kinds = [(col, kind) for col, kind, on in ((USER, "user", users), (ITEM, "item", items))
             if on]

    def anonymize(ctx: Any, relation: str) -> str:
        import pyarrow as pa

        framed = [kind for _, kind in kinds if f"{kind}s" in ctx.feature_frames]
        if framed:
            raise ConfigError(
                f"data.engine=duckdb: no out-of-core form for preprocess step 'anonymize' "
                f"on a dataset with a {' and '.join(framed)} feature frame (the frame is "
                f"held in memory and would keep the raw ids). Run this config with "
                f"data.engine=pandas.")
        out = relation
        for col, kind in kinds:
            ids = ctx.con.sql(f"SELECT DISTINCT {col} FROM {relation} WHERE {col} IS NOT "
                              f"NULL").fetch_arrow_table().column(0)
            hashed = hash_ids(ids.to_numpy(zero_copy_only=False), key, kind, length)
            name = f"anonymize_{kind}_ids"
            ctx.con.register(name, pa.table({col: ids, "_hashed": pa.array(
                hashed.tolist(), pa.string())}))
            mapping = ctx.table(f"SELECT * FROM {name}", f"anonymize_{kind}_map")
            ctx.con.unregister(name)
            out = ctx.table(f"SELECT r.* REPLACE (m._hashed AS {col}) FROM {out} r LEFT JOIN "
                            f"{mapping} m ON r.{col} = m.{col}", "anonymize")
        log.info("preprocess 'anonymize': hashed %s ids with the key from $%s; dropped 0 "
                 "rows", " and ".join(kind for _, kind in kinds), key_env)
        return out

    return anonymize

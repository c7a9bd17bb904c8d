"""``data.engine=ray``: the out-of-core pipeline spread over a Ray cluster by user range.

The same step forms as ``data.engine=duckdb`` (``build_sql``) run on **user-range
partitions**, each held by one Ray actor running DuckDB, and the output is the same
shard directory (manifest, fingerprint, :func:`~recframe.data.ooc.engine.load_shards`):

1. **Read** (Ray tasks, one per Parquet row group of the source): canonical columns and
   the global row position ``_row`` (row-group offsets from the Parquet metadata); pass
   one returns a seeded sample of each group's user ids, from whose quantiles the driver
   cuts ``P`` user ranges of about equal rows; pass two writes each row group's rows to
   its partition's staging files.
2. **Steps** (one actor per partition): a step form declaring ``partition_local = True``
   reads the rows of one user at a time and runs on each partition as it is
   (``drop_invalid``, ``dedup``, ``binarize``, ``leave_one_out``). ``kcore``
   (``partition_kcore = (user_min, item_min)``) runs its rounds with the item counts
   summed across partitions. The ``random`` split (``partition_keyed = True``) is
   user-local but for each row's key, the ``p``-th double of ``default_rng(seed)`` for
   the row's global position ``p`` among the kept rows: the actors send bitmaps of
   their rows, the driver adds them up with per-block prefix counts, and each actor
   hands the form its rows' keys through ``SqlContext.row_keys`` (:class:`PartitionKeys`:
   :func:`recframe.data.ooc.keys.random_keys` at the global positions), so the form
   itself runs unchanged. Other steps are refused before any data is read.
3. **Encode**: partitions are user ranges in order, so global user indices are an
   offset plus the local rank; the item map (all items, sorted) is merged by the
   driver. Each actor writes its part files; the driver renames them into the shard
   directory in partition order and writes the id maps, then the manifest, last.

Staging files live beside the shard directory and are removed at the end; an
interrupted run leaves no manifest, so nothing half-written is ever read.
"""

from __future__ import annotations

import logging
import shutil
import socket
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from recframe.data.ooc.context import PART, ROW, SqlContext
from recframe.data.ooc.scan import ScanSource
from recframe.data.types import ITEM, TIMESTAMP, USER
from recframe.errors import ConfigError, DataError, RecframeError

log = logging.getLogger(__name__)

#: ``data.ray`` defaults
RAY_DEFAULTS: dict[str, Any] = {"address": None, "num_workers": None,
                                "connect_timeout_s": 10.0, "object_store_mb": None}
#: bits of the row bitmap handled at once when actors compute global positions
_BLOCK_BITS = 1 << 20
_ROW_GROUP = 1 << 20


# -- settings and the cluster ---------------------------------------------------------------

def ray_settings(node: Any) -> dict[str, Any]:
    """``data.ray`` with defaults, checked (E933)."""
    if node is None:
        node = {}
    if not isinstance(node, dict):
        raise ConfigError(f"data.ray must be a mapping such as {{address: null, num_workers: "
                          f"2}}; got {node!r}.")
    unknown = sorted(set(node) - set(RAY_DEFAULTS))
    if unknown:
        raise ConfigError(f"data.ray has unknown key(s) {unknown}; known: "
                          f"{sorted(RAY_DEFAULTS)}.")
    s = {**RAY_DEFAULTS, **node}

    def positive_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= 1

    checks = {
        "address": (lambda v: v is None or (isinstance(v, str) and v.strip() != ""),
                    "null (start a local Ray instance), auto, host:port or ray://host:port"),
        "num_workers": (lambda v: v is None or positive_int(v),
                        "null (one per cluster CPU) or an integer >= 1"),
        "connect_timeout_s": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
                              and 0 < v < float("inf"), "a number of seconds > 0, e.g. 10"),
        "object_store_mb": (lambda v: v is None or (positive_int(v) and v >= 80),
                            "null (Ray's default) or an integer >= 80 (MiB)"),
    }
    for key, (ok, expected) in checks.items():
        if not ok(s[key]):
            raise ConfigError(f"data.ray.{key} must be {expected}; got {s[key]!r}.")
    return s


def check_partitioned(steps: list[tuple[str, Any]], splitter: tuple[str, Any]) -> None:
    """Every step and the splitter declare a partitioned form, else E932 names them."""
    lacking = [name for name, step in steps
               if not getattr(step, "partition_local", False)
               and getattr(step, "partition_kcore", None) is None]
    name, split = splitter
    if not getattr(split, "partition_local", False) and \
            not getattr(split, "partition_keyed", False):
        lacking.append(f"split {name}")
    if lacking:
        raise ConfigError(
            f"data.engine=ray: no partitioned form for {', '.join(lacking)} (the Ray engine "
            f"runs steps on user-range partitions; a step form declares partition_local = "
            f"True when it reads the rows of one user at a time, see docs/scaling.md). Run "
            f"this config with data.engine=duckdb (one machine), or drop those steps.")


def import_ray() -> Any:
    """The ray module, or E930 naming the extra."""
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "data.engine=ray needs Ray, which is not installed: `pip install "
            "'recframe[cluster]'` (or `pip install 'ray[data]'`), or run with "
            "data.engine=duckdb (one machine).") from None
    return ray


def _unreachable(address: str, why: str) -> ConfigError:
    return ConfigError(
        f"data.ray.address={address!r}: no Ray cluster can be reached there ({why}). Start "
        f"one on the head node with `ray start --head` (then data.ray.address=auto on a "
        f"node of that cluster, or ray://<head>:10001 from outside), or set "
        f"data.ray.address=null to start a local Ray instance on this machine.")


def _probe(address: str, timeout: float) -> None:
    """Fail fast (E931) when ``host:port`` does not accept a TCP connection."""
    url = urlparse(address if "://" in address else f"tcp://{address}")
    if not url.hostname or not url.port:
        raise ConfigError(f"data.ray.address must be null, auto, host:port or "
                          f"ray://host:port; got {address!r}.")
    try:
        socket.create_connection((url.hostname, url.port), timeout=timeout).close()
    except OSError as exc:
        raise _unreachable(address, f"{type(exc).__name__}: {exc}") from None


def start(settings: dict[str, Any]) -> bool:
    """Connect to (or start) Ray as ``data.ray`` says; True when this call started it
    (the caller shuts it down). A Ray already initialized in this process is used."""
    ray = import_ray()
    address = settings["address"]
    if address not in (None, "auto"):  # fail fast, before Ray's own retries
        _probe(address, float(settings["connect_timeout_s"]))
    if ray.is_initialized():
        return False
    common = {"include_dashboard": False, "log_to_driver": False,
              "configure_logging": False}
    if address is None:
        store = settings["object_store_mb"]
        ray.init(num_cpus=settings["num_workers"], **common,
                 **({"object_store_memory": int(store) << 20} if store else {}))
        return True
    try:
        ray.init(address=address, **common)
    except (ConnectionError, TimeoutError, RuntimeError) as exc:
        raise _unreachable(address, f"{type(exc).__name__}: {exc}") from None
    return True


def _get(ray: Any, refs: Any) -> Any:
    """``ray.get``; a recframe error raised in a worker is raised here as it was."""
    try:
        return ray.get(refs)
    except ray.exceptions.RayTaskError as exc:
        if isinstance(exc.cause, RecframeError):
            raise exc.cause from None
        raise DataError(f"data.engine=ray: a Ray worker failed: {exc.cause!r}. Nothing was "
                        f"written to the shard directory; fix the cause, or run with "
                        f"data.engine=duckdb.") from None
    except ray.exceptions.RayError as exc:
        raise DataError(f"data.engine=ray: the Ray cluster lost a worker ({type(exc).__name__}"
                        f": {exc}). Nothing was written to the shard directory; rerun "
                        f"(the shards are rebuilt), or run with data.engine=duckdb.") from None


# -- read: row groups -> user-range partitions ----------------------------------------------

def _row_groups(path: str) -> list[tuple[int, int]]:
    """``(row group, global offset of its first row)`` of a Parquet file."""
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    sizes = [meta.row_group(k).num_rows for k in range(meta.num_row_groups)]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64) if sizes else []
    return [(k, int(o)) for k, o in enumerate(offsets)]


def _canonical(path: str, group: int, offset: int, columns: dict[str, Any] | None) -> Any:
    """One row group as a DuckDB relation with canonical columns and ``_row``:
    ``(connection, relation name)``, typed as :func:`engine._scan_relation` types them."""
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    from recframe.data.ooc.engine import canonical_columns

    pf = pq.ParquetFile(path)
    if columns is None:  # a staged in-memory frame: canonical names and _row already
        table = pf.read_row_group(group)
        select = "*"
    else:
        wanted = [str(c) for c in columns.values() if c is not None]
        table = pf.read_row_group(group, columns=wanted)
        table = table.append_column(ROW, pa.array(np.arange(offset, offset + table.num_rows,
                                                            dtype=np.int64)))
        select = f"{', '.join(canonical_columns(columns))}, {ROW}"
    con = duckdb.connect(":memory:")
    con.register("rg", table)
    con.execute(f"CREATE VIEW canon AS SELECT {select} FROM rg")
    types = {r[0]: r[1] for r in con.execute("DESCRIBE canon").fetchall()}
    if TIMESTAMP in types and "TIMESTAMP" in types[TIMESTAMP]:
        con.execute(f"CREATE VIEW canon2 AS SELECT * REPLACE (epoch({TIMESTAMP})::BIGINT AS "
                    f"{TIMESTAMP}) FROM canon")
        return con, "canon2"
    return con, "canon"


#: user ids sampled per row group to place the range boundaries (rows, not users, so
#: ranges get about equal rows); where the cuts fall never changes the output
SAMPLE_PER_GROUP = 4096


def _sample_users(path: str, group: int, offset: int, columns: dict[str, Any] | None) -> Any:
    """Up to ``SAMPLE_PER_GROUP`` user ids of the row group's rows, drawn with a seed
    from the group (the driver holds samples, never per-user counts of the whole log)."""
    import pyarrow as pa

    con, rel = _canonical(path, group, offset, columns)
    try:
        users = con.sql(f"SELECT {USER} FROM {rel} WHERE {USER} IS NOT NULL"
                        ).to_arrow_table().column(USER)
    finally:
        con.close()
    if len(users) > SAMPLE_PER_GROUP:
        pick = np.random.default_rng([group, offset]).choice(len(users), SAMPLE_PER_GROUP,
                                                              replace=False)
        users = users.take(pa.array(np.sort(pick)))
    return pa.table({USER: users})


def _partition_rows(path: str, group: int, offset: int, columns: dict[str, Any] | None,
                    bounds: Any, stage: str) -> int:
    """Write the row group's rows to ``stage/p{j}/rg{group}.parquet`` for every partition
    ``j`` (by the user ranges starting at ``bounds``; null users go to partition 0)."""
    import pyarrow.parquet as pq

    con, rel = _canonical(path, group, offset, columns)
    try:
        con.register("bounds", bounds)
        table = con.sql(f"SELECT c.*, coalesce(b._p, 0) AS _p FROM {rel} c ASOF LEFT JOIN "
                        f"bounds b ON c.{USER} >= b.{USER}").to_arrow_table()
    finally:
        con.close()
    parts = table.column("_p").to_numpy()
    table = table.drop_columns(["_p"])
    for j in range(len(bounds)):
        out = Path(stage) / f"p{j:05d}"
        out.mkdir(parents=True, exist_ok=True)
        pq.write_table(table.take(np.flatnonzero(parts == j)), out / f"rg{group:06d}.parquet")
    return table.num_rows


def _boundaries(samples: list[Any], n_parts: int) -> Any:
    """User-range starts (an Arrow table ``user_id, _p``) at the row quantiles of the
    sampled user ids, in DuckDB's order of the ids (the order the encoded user indices
    follow)."""
    import duckdb
    import pyarrow as pa

    con = duckdb.connect(":memory:")
    try:
        con.register("sample", pa.concat_tables(samples))
        ordered = con.sql(f"SELECT {USER} FROM sample ORDER BY {USER}").to_arrow_table()
    finally:
        con.close()
    n = ordered.num_rows
    if n == 0:
        return pa.table({USER: samples[0].column(USER).slice(0, 0),
                         "_p": pa.array([], pa.int64())})
    cuts = ordered.column(USER).take(pa.array(n * np.arange(n_parts) // n_parts))
    con = duckdb.connect(":memory:")
    try:  # one range per distinct start
        con.register("cuts", pa.table({USER: cuts}))
        starts = con.sql(f"SELECT DISTINCT {USER} FROM cuts ORDER BY {USER}").to_arrow_table()
    finally:
        con.close()
    return pa.table({USER: starts.column(USER),
                     "_p": pa.array(np.arange(starts.num_rows, dtype=np.int64))})


# -- one partition: an actor holding a DuckDB connection ------------------------------------

class PartitionWorker:
    """The rows of one user range in DuckDB, stepped through by the driver."""

    def __init__(self, files: list[str], settings: dict[str, Any], spill: str, source: str,
                 meta: dict[str, Any]) -> None:
        from recframe.data.ooc.engine import connect

        self.ctx = SqlContext(connect(settings, Path(spill)), source=source, meta=meta)
        quoted = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
        self.rel = self.ctx.table(f"SELECT * FROM read_parquet([{quoted}])", "source")

    def count(self) -> int:
        return self.ctx.count(self.rel)

    def run_local(self, steps: list[tuple[str, Any]]) -> int:
        """Partition-local steps, in order (skipped on an empty partition: no rows)."""
        for _, step in steps:
            if self.ctx.count(self.rel) == 0:
                break
            self.rel = step(self.ctx, self.rel)
        return self.ctx.count(self.rel)

    def check_values(self) -> None:
        """No NaN/inf rating or timestamp in this partition."""
        from recframe.data.ooc.engine import check_finite

        if self.ctx.count(self.rel):
            check_finite(self.ctx, self.rel)

    # kcore: rounds on (user, item) pairs, items counted across partitions
    def kcore_start(self) -> None:
        self.pairs = self.ctx.table(f"SELECT {USER}, {ITEM} FROM {self.rel}", "kcore_pairs")

    def item_counts(self) -> Any:
        return self.ctx.con.sql(f"SELECT {ITEM}, count(*)::BIGINT AS n FROM {self.pairs} "
                                f"GROUP BY {ITEM}").to_arrow_table()

    def kcore_round(self, items_ok: Any, user_min: int) -> int:
        con = self.ctx.con
        con.register("items_ok_arrow", items_ok)
        self.items = self.ctx.table("SELECT * FROM items_ok_arrow", "kcore_items")
        con.unregister("items_ok_arrow")
        self.users = self.ctx.table(f"SELECT {USER} FROM {self.pairs} GROUP BY {USER} "
                                    f"HAVING count(*) >= {int(user_min)}", "kcore_users")
        new = self.ctx.table(f"SELECT * FROM {self.pairs} SEMI JOIN {self.users} USING "
                             f"({USER}) SEMI JOIN {self.items} USING ({ITEM})", "kcore_pairs")
        con.execute(f"DROP TABLE {self.pairs}")
        self.pairs = new
        return self.ctx.count(new)

    def kcore_finish(self, changed: bool) -> int:
        self.ctx.con.execute(f"DROP TABLE {self.pairs}")
        if changed:
            self.rel = self.ctx.table(f"SELECT * FROM {self.rel} SEMI JOIN {self.users} USING "
                                      f"({USER}) SEMI JOIN {self.items} USING ({ITEM})",
                                      "kcore")
        return self.ctx.count(self.rel)

    # the split
    def row_bitmap(self, n_source: int) -> np.ndarray:
        """The rows this partition holds, as a packed bitmap over source rows."""
        return packed_rows(self._rows(), n_source)

    def _rows(self) -> np.ndarray:
        return self.ctx.con.sql(f"SELECT {ROW} FROM {self.rel} ORDER BY {ROW}"
                                ).fetchnumpy()[ROW].astype(np.int64)

    def split(self, splitter: Any, bitmap: np.ndarray | None, prefix: np.ndarray | None
              ) -> int:
        """Run the splitter on this partition. A form keyed by global row positions
        (``partition_keyed``: the per-user random split) gets them through
        ``ctx.kept_row_keys``: this partition's rows numbered among all kept rows."""
        if self.ctx.count(self.rel) == 0:
            self.rel = self.ctx.table(f"SELECT *, 0::TINYINT AS {PART} FROM {self.rel}",
                                      "split")
            return 0
        if getattr(splitter, "partition_keyed", False):
            rows = self._rows()
            self.ctx.row_keys = lambda seed: PartitionKeys(seed, rows, bitmap, prefix)
        self.rel = splitter(self.ctx, self.rel)
        return self.ctx.count(self.rel)

    # encode
    def train_users(self) -> Any:
        return self.ctx.con.sql(f"SELECT DISTINCT {USER} FROM {self.rel} WHERE {PART} = 0 "
                                f"ORDER BY {USER}").to_arrow_table()

    def items_seen(self) -> Any:
        return self.ctx.con.sql(f"SELECT DISTINCT {ITEM} FROM {self.rel}").to_arrow_table()

    def encode(self, items: Any, user_offset: int, out: str, shard_rows: int
               ) -> dict[str, Any]:
        from recframe.data.ooc.engine import encode_parts

        con = self.ctx.con
        users = self.ctx.table(
            f"SELECT {USER}, ({int(user_offset)} + row_number() OVER (ORDER BY {USER}) - 1)"
            f"::INTEGER AS uidx FROM (SELECT DISTINCT {USER} FROM {self.rel} WHERE "
            f"{PART} = 0)", "user_ids")
        con.register("items_arrow", items)  # item_id, iidx
        item_map = self.ctx.table("SELECT * FROM items_arrow", "item_ids")
        con.unregister("items_arrow")
        return encode_parts(self.ctx, self.rel, users, item_map, Path(out), shard_rows)

    def close(self) -> None:
        self.ctx.con.close()


def packed_rows(rows: np.ndarray, n_source: int) -> np.ndarray:
    """``np.packbits`` of the 0/1 vector of ``rows`` (sorted, unique) over ``n_source``
    source rows, without that vector: a partition's rows set their bits byte by byte
    (``n_source / 8`` bytes, not ``n_source``)."""
    out = np.zeros((n_source + 7) // 8, dtype=np.uint8)
    if len(rows):
        byte = rows >> 3
        starts = np.flatnonzero(np.r_[True, byte[1:] != byte[:-1]])
        weights = (128 >> (rows & 7)).astype(np.uint8)  # packbits' bit order: first = 128
        out[byte[starts]] = np.add.reduceat(weights, starts)  # distinct bits: sum = or
    return out


class PartitionKeys:
    """The random split's keys of one partition's rows: ``default_rng(seed)``'s doubles
    at their positions among all kept rows (what ``KeptRowKeys`` gives on the whole
    data), drawn once for the partition's sorted rows and looked up by row."""

    def __init__(self, seed: int, rows: np.ndarray, bitmap: np.ndarray, prefix: np.ndarray
                 ) -> None:
        from recframe.data.ooc.keys import random_keys

        self.rows = rows  # sorted
        self.values = random_keys(int(seed), _global_positions(rows, bitmap, prefix))

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        return self.values[np.searchsorted(self.rows, np.asarray(rows, dtype=np.int64))]


def _global_positions(rows: np.ndarray, bitmap: np.ndarray, prefix: np.ndarray
                      ) -> np.ndarray:
    """Rank of each (sorted) source row among all kept rows: ``prefix`` (kept rows before
    each block of ``_BLOCK_BITS``) plus the kept rows before it inside its block."""
    out = np.empty(len(rows), dtype=np.int64)
    blocks = rows // _BLOCK_BITS
    cuts = np.flatnonzero(np.diff(blocks)) + 1
    for a, b in zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [len(rows)]]),
                    strict=True):
        block = int(blocks[a])
        lo = block * (_BLOCK_BITS // 8)
        bits = np.unpackbits(bitmap[lo: lo + _BLOCK_BITS // 8])
        cum = np.cumsum(bits, dtype=np.int64)
        out[a:b] = prefix[block] + cum[rows[a:b] - block * _BLOCK_BITS] - 1
    return out


# -- the driver -----------------------------------------------------------------------------

def build_ray(settings: dict[str, Any], plan: Any, directory: Path, source: ScanSource | None,
              loaded: Any, where: str, meta: dict[str, Any], timings: dict[str, float],
              t: float) -> dict[str, Any]:
    """Write the shard directory with Ray workers (its manifest, without fingerprint,
    dataset and engine: the caller adds them and writes it)."""
    ray = import_ray()
    rs = ray_settings(settings["ray"])
    started = start(rs)
    stage = directory.parent / f".{directory.name}.ray"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    actors: list[Any] = []
    try:
        n_workers = int(rs["num_workers"] or max(1, ray.cluster_resources().get("CPU", 1)))
        path, columns = _stage_source(source, loaded, stage)
        groups = _row_groups(path)
        n_source = sum(_row_counts(path))
        sample = ray.remote(num_cpus=1)(_sample_users)
        samples = _get(ray, [sample.remote(path, g, o, columns) for g, o in groups])
        bounds = _boundaries(samples, n_workers)
        split_rows = ray.remote(num_cpus=1)(_partition_rows)
        _get(ray, [split_rows.remote(path, g, o, columns, bounds, str(stage / "in"))
                   for g, o in groups])
        timings["load"] = time.perf_counter() - t
        cpus = float(ray.cluster_resources().get("CPU", 1))
        worker = ray.remote(num_cpus=min(1.0, cpus / max(len(bounds), 1)))(PartitionWorker)
        part_settings = {**settings, "threads": settings.get("threads") or 1}
        actors = [worker.remote(sorted(str(f) for f in (stage / "in" / f"p{j:05d}").glob(
            "*.parquet")), part_settings, str(stage / f"spill{j:05d}"), where, dict(meta))
            for j in range(len(bounds))]
        t = time.perf_counter()
        _run_steps(ray, actors, plan.sql_steps, timings, where)
        timings["preprocess"] = time.perf_counter() - t
        t = time.perf_counter()
        _split(ray, actors, plan.sql_splitter, n_source)
        timings["split"] = time.perf_counter() - t
        t = time.perf_counter()
        manifest = _encode(ray, actors, directory, stage, int(settings["shard_rows"]))
        timings["encode"] = time.perf_counter() - t
        manifest["ray"] = {"partitions": len(actors), "address": rs["address"]}
        return manifest
    finally:
        for actor in actors:
            ray.kill(actor)
        shutil.rmtree(stage, ignore_errors=True)
        if started:
            ray.shutdown()


def _row_counts(path: str) -> list[int]:
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    return [meta.row_group(k).num_rows for k in range(meta.num_row_groups)]


def _stage_source(source: ScanSource | None, loaded: Any, stage: Path
                  ) -> tuple[str, dict[str, Any] | None]:
    """The Parquet file the read tasks scan, and its column mapping (None: canonical)."""
    if source is not None:
        if source.format != "parquet" or len(source.paths) != 1:
            raise ConfigError(f"the out-of-core engine scans one Parquet file; got "
                              f"{source.format} x {len(source.paths)}")
        return source.paths[0], dict(source.columns)
    import pyarrow.parquet as pq

    from recframe.data.ooc.engine import frame_table

    path = stage / "source.parquet"
    pq.write_table(frame_table(loaded), path, row_group_size=_ROW_GROUP)
    return str(path), None


def _run_steps(ray: Any, actors: list[Any], steps: list[tuple[str, Any]],
               timings: dict[str, float], where: str) -> None:
    """Consecutive partition-local steps in one call per actor; kcore across actors."""
    local: list[tuple[str, Any]] = []

    def flush() -> None:
        if local:
            t = time.perf_counter()
            total = sum(_get(ray, [a.run_local.remote(list(local)) for a in actors]))
            timings["preprocess_" + "+".join(n for n, _ in local)] = time.perf_counter() - t
            if total == 0:
                raise _empty(f"after preprocessing step {local[-1][0]!r}", where)
            local.clear()

    for name, step in steps:
        if getattr(step, "partition_kcore", None) is not None:
            flush()
            t = time.perf_counter()
            _kcore(ray, actors, *step.partition_kcore)
            timings[f"preprocess_{name}"] = time.perf_counter() - t
        else:
            local.append((name, step))
    flush()
    if sum(_get(ray, [a.count.remote() for a in actors])) == 0:
        raise _empty("after preprocessing" if steps else "after loading", where)
    _get(ray, [a.check_values.remote() for a in actors])


def _empty(after: str, where: str) -> DataError:
    """The duckdb engine's message when no rows are left."""
    return DataError(f"no interactions left {after}. Loosen the filters (binarize "
                     f"threshold, k-core minimums) or check the input {where}.")


def _kcore(ray: Any, actors: list[Any], user_min: int, item_min: int) -> None:
    """The k-core fixed point: users counted in their partition, items across all."""
    import duckdb
    import pyarrow as pa

    n = before = sum(_get(ray, [a.count.remote() for a in actors]))
    _get(ray, [a.kcore_start.remote() for a in actors])
    rounds = 0
    while True:
        rounds += 1
        con = duckdb.connect(":memory:")
        con.register("c", pa.concat_tables(_get(ray, [a.item_counts.remote() for a in actors])))
        ok = con.sql(f"SELECT {ITEM} FROM c GROUP BY {ITEM} HAVING sum(n) >= {int(item_min)}"
                     ).to_arrow_table()
        con.close()
        ref = ray.put(ok)
        n_new = sum(_get(ray, [a.kcore_round.remote(ref, user_min) for a in actors]))
        if n_new == n:
            break
        n = n_new
    _get(ray, [a.kcore_finish.remote(n != before) for a in actors])
    log.info("preprocess 'kcore' (ray): fixed point after %d round(s), %d of %d rows kept",
             rounds, n, before)


def _split(ray: Any, actors: list[Any], splitter: Any, n_source: int) -> None:
    bitmap = prefix = None
    if getattr(splitter, "partition_keyed", False):
        bitmap = np.zeros((n_source + 7) // 8, dtype=np.uint8)
        for ref in [a.row_bitmap.remote(n_source) for a in actors]:  # one map at a time
            bitmap |= _get(ray, ref)
        per_block = np.add.reduceat(np.bitwise_count(bitmap).astype(np.int64),
                                    np.arange(0, len(bitmap), _BLOCK_BITS // 8))
        prefix = np.concatenate([[0], np.cumsum(per_block)[:-1]])
        bitmap, prefix = ray.put(bitmap), ray.put(prefix)
    _get(ray, [a.split.remote(splitter, bitmap, prefix) for a in actors])


def _encode(ray: Any, actors: list[Any], directory: Path, stage: Path, shard_rows: int
            ) -> dict[str, Any]:
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    from recframe.data.ooc.shards import PARTS

    users = _get(ray, [a.train_users.remote() for a in actors])
    con = duckdb.connect(":memory:")
    con.register("seen", pa.concat_tables(_get(ray, [a.items_seen.remote() for a in actors])))
    items = con.sql(f"SELECT DISTINCT {ITEM} FROM seen ORDER BY {ITEM}").to_arrow_table()
    con.close()
    offsets = np.concatenate([[0], np.cumsum([u.num_rows for u in users])])
    items_ref = ray.put(items.append_column(
        "iidx", pa.array(np.arange(items.num_rows, dtype=np.int32))))
    outs = _get(ray, [a.encode.remote(items_ref, int(offsets[j]), str(stage / f"enc{j:05d}"),
                                      shard_rows) for j, a in enumerate(actors)])
    directory.mkdir(parents=True, exist_ok=True)
    files: dict[str, list[dict[str, Any]]] = {}
    for part in PARTS:
        (directory / part).mkdir(exist_ok=True)
        files[part] = []
        for j, out in enumerate(outs):
            for entry in out["files"][part]:
                name = f"{part}/part-{len(files[part]):05d}.parquet"
                (stage / f"enc{j:05d}" / entry["path"]).rename(directory / name)
                files[part].append({**entry, "path": name})
    pq.write_table(pa.concat_tables(users), directory / "user_ids.parquet")
    pq.write_table(items, directory / "item_ids.parquet")
    columns = next((o["columns"] for o in outs if any(o["files"][p] for p in PARTS)),
                   outs[0]["columns"])
    rows = {p: sum(f["rows"] for f in files[p]) for p in PARTS}
    return {
        "columns": columns, "files": files,
        "id_maps": {"user_ids": "user_ids.parquet", "item_ids": "item_ids.parquet"},
        "counts": {"n_users": int(offsets[-1]), "n_items": items.num_rows,
                   **{f"n_{p}": rows[p] for p in PARTS},
                   "dropped_valid": sum(o["dropped"].get(1, 0) for o in outs),
                   "dropped_test": sum(o["dropped"].get(2, 0) for o in outs)},
        "has_timestamps": TIMESTAMP in columns,
        "has_ratings": "rating" in columns,
    }

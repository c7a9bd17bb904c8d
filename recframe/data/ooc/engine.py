"""Run load -> preprocess -> split -> encode out of core (DuckDB) into Parquet shards.

:func:`prepare_ooc` is :func:`recframe.pipeline.prepare` for ``data.engine=duckdb``:
each step runs its plugin's ``build_sql`` form on a DuckDB connection whose memory is
capped (``data.memory_limit``; larger intermediates spill to a temporary directory), and
the encoded split is written as Parquet shards (:mod:`recframe.data.ooc.shards`). A
shard directory whose manifest matches this run's fingerprint is reused as it is.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock
from omegaconf import DictConfig, OmegaConf

from recframe.data.encode import DataInfo, Events, RecData, _feature_frame
from recframe.data.fingerprint import fingerprint_files, raw_fingerprint
from recframe.data.ooc.context import PART, ROW, SqlContext
from recframe.data.ooc.scan import ScanSource
from recframe.data.ooc.shards import (
    FORMAT_VERSION,
    MANIFEST,
    PARTS,
    LazyEvents,
    ShardError,
    iter_part,
    read_ids,
    read_manifest,
    read_part,
    train_matrix,
    write_manifest,
    write_part,
)
from recframe.data.types import ITEM, LABEL, RATING, TIMESTAMP, USER
from recframe.errors import ConfigError, DataError

log = logging.getLogger(__name__)
CANONICAL = (USER, ITEM, RATING, TIMESTAMP)


def data_settings(cfg: DictConfig) -> dict[str, Any]:
    """``data.*`` with defaults (older configs have no ``data`` block), checked (E927)."""
    node = cfg.get("data") or {}
    node = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
    settings = {"engine": "pandas", "ooc_threshold_gib": 2.0, "shard_dir": None,
                "shard_rows": 4_000_000, "memory_limit": None, "threads": None,
                "streaming": False, "ray": None, **dict(node)}
    checks = {
        "shard_rows": (lambda v: _is_int(v) and v >= 1, "an integer >= 1, e.g. 4000000"),
        "threads": (lambda v: v is None or (_is_int(v) and v >= 1), "null or an integer >= 1"),
        "ooc_threshold_gib": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
                              and 0 <= v < float("inf"), "a number >= 0 (GiB), e.g. 2.0"),
        "memory_limit": (lambda v: v is None or (isinstance(v, str) and
                                                 re.fullmatch(r"\d+(\.\d+)?\s*[KMGT]i?B", v)),
                         "null or a size such as 4GB or 512MB"),
        "shard_dir": (lambda v: v is None or (isinstance(v, str) and v.strip() != ""),
                      "null or a directory path"),
        "streaming": (lambda v: isinstance(v, bool), "true or false"),
    }
    for key, (ok, expected) in checks.items():
        if not ok(settings[key]):
            raise ConfigError(f"data.{key} must be {expected}; got {settings[key]!r}.")
    if settings["engine"] == "ray":
        from recframe.data.ooc.ray_engine import ray_settings

        settings["ray"] = ray_settings(settings["ray"])
    return settings


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def connect(settings: dict[str, Any], spill_dir: Path) -> Any:
    """A DuckDB connection with the memory cap and spill directory of ``data.*``."""
    try:
        import duckdb
    except ImportError:
        raise ConfigError(
            "data.engine=duckdb needs the duckdb package, which is not installed: "
            "`pip install duckdb` (it is in recframe's dependencies; reinstall recframe), "
            "or run with data.engine=pandas.") from None
    con = duckdb.connect(":memory:")
    spill_dir.mkdir(parents=True, exist_ok=True)
    con.execute(f"SET temp_directory = '{spill_dir}'")
    con.execute("SET preserve_insertion_order = false")  # order is explicit (_row)
    if settings.get("memory_limit"):
        con.execute(f"SET memory_limit = '{settings['memory_limit']}'")
    if settings.get("threads"):
        con.execute(f"SET threads = {int(settings['threads'])}")
    return con


# -- the source -----------------------------------------------------------------------------

def _scan_relation(ctx: SqlContext, src: ScanSource) -> str:
    """A view of the source files with canonical columns and ``_row`` (file order)."""
    if src.format != "parquet" or len(src.paths) != 1:
        raise ConfigError(f"the out-of-core engine scans one Parquet file; got "
                          f"{src.format} x {len(src.paths)}")
    path = src.paths[0].replace("'", "''")
    cols = canonical_columns(src.columns)
    view = ctx.view(f"SELECT {', '.join(cols)}, file_row_number AS {ROW} FROM "
                    f"read_parquet('{path}', file_row_number = true)", "source")
    types = ctx.types(view)
    if TIMESTAMP in types and "TIMESTAMP" in types[TIMESTAMP]:  # datetimes: Unix seconds
        view = ctx.view(f"SELECT * REPLACE (epoch({TIMESTAMP})::BIGINT AS {TIMESTAMP}) "
                        f"FROM {view}", "source")
    return view


def canonical_columns(columns: dict[str, Any]) -> list[str]:
    """SELECT expressions renaming a source's columns to the canonical ones (ratings as
    DOUBLE)."""
    cols = []
    for canonical, column in columns.items():
        if column is None:
            continue
        quoted = '"' + str(column).replace('"', '""') + '"'
        if canonical == RATING:
            quoted = f"CAST({quoted} AS DOUBLE)"
        cols.append(f"{quoted} AS {canonical}")
    return cols


def _frame_relation(ctx: SqlContext, ds: Any) -> str:
    """A loaded Dataset's interactions (data that fits in memory) as a relation."""
    ctx.con.register("loaded_frame", frame_table(ds))
    # a table, not a view of the registered frame: a registered object is seen by its
    # own connection only, and steps may read relations on a second cursor
    name = ctx.table("SELECT * FROM loaded_frame", "source")
    ctx.con.unregister("loaded_frame")
    return name


def frame_table(ds: Any) -> Any:
    """A loaded Dataset's interactions as an Arrow table: canonical columns and ``_row``."""
    import pyarrow as pa

    df = ds.interactions
    cols = {c: df[c].to_numpy() for c in CANONICAL if c in df.columns}
    cols[ROW] = np.arange(len(df), dtype=np.int64)
    try:
        table = pa.table(cols)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DataError(f"{ds.source or ds.name}: the interactions cannot be typed for the "
                        f"out-of-core engine ({exc}); ids must be all integers or all "
                        f"strings. Fix the data or use data.engine=pandas.") from None
    return table


def _validate(ctx: SqlContext, relation: str, after: str) -> None:
    """As :func:`recframe.pipeline.validate_interactions`: rows left, finite values."""
    if ctx.count(relation) == 0:
        raise DataError(f"no interactions left {after}. Loosen the filters (binarize "
                        f"threshold, k-core minimums) or check the input {ctx.source}.")
    check_finite(ctx, relation)


def check_finite(ctx: SqlContext, relation: str) -> None:
    """No NaN/inf rating or timestamp (the in-memory path's check)."""
    types = ctx.types(relation)
    for col in (RATING, TIMESTAMP):
        if col in types and any(t in types[col] for t in ("DOUBLE", "FLOAT")):
            bad = ctx.count(relation, f"{col} IS NULL OR NOT isfinite({col})")
            if bad:
                raise DataError(f"{ctx.source}: column {col!r} has {bad} NaN/inf value(s). "
                                f"Fix the file, or drop such rows by adding the step "
                                f"`{{name: drop_invalid}}` to `preprocess`.")


# -- fingerprint ----------------------------------------------------------------------------

def config_fingerprint(cfg: DictConfig, raw: str, plan: Any = None) -> str:
    """Raw data + preprocess + split config + shard format + the code that writes the
    shards (:func:`code_digest`): equal means same shards."""
    def plain(key: str) -> Any:
        node = OmegaConf.select(cfg, key)
        return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) \
            else node
    payload = {"format": FORMAT_VERSION, "raw": raw, "preprocess": plain("preprocess"),
               "split": plain("split"), "dataset": plain("dataset.name"),
               **({"code": code_digest(plan)} if plan is not None else {})}
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def code_digest(plan: Any) -> str:
    """A hash of the source files of the out-of-core steps this plan runs (built in or
    from a plugin) and of this engine's modules, so shards written by other code (a
    fixed or upgraded step) are rebuilt, not reused."""
    import sys

    from recframe.data.ooc import context, keys, ray_engine, scan, shards

    forms = [form for _, form in plan.sql_steps] + [plan.sql_splitter]
    modules = {sys.modules[f.__module__] for f in forms if f is not None
               and getattr(f, "__module__", None) in sys.modules}
    modules |= {sys.modules[__name__], context, keys, scan, shards, ray_engine}
    digest = hashlib.sha256()
    for module in sorted(modules, key=lambda m: m.__name__):
        path = getattr(module, "__file__", None)
        digest.update(module.__name__.encode())
        if path and Path(path).exists():
            digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:16]


def default_shard_dir(fingerprint: str) -> Path:
    """``<user cache>/recframe/shards/<fingerprint>``: reused by every run of that data."""
    from platformdirs import user_cache_dir

    root = os.environ.get("RECFRAME_SHARD_CACHE") or user_cache_dir("recframe")
    return Path(root) / "shards" / fingerprint


# -- the pipeline ---------------------------------------------------------------------------

def prepare_ooc(cfg: DictConfig, plan: Any) -> Any:
    """Load, preprocess, split and encode out of core; the same
    :class:`~recframe.pipeline.PreparedData` as the in-memory path (data read back
    from the shards), with ``raw_meta["shards"]`` naming the directory."""
    from recframe.pipeline import PreparedData

    directory, manifest, raw_meta, loaded, timings = build_shards(cfg, plan)
    t = time.perf_counter()
    data = load_shards(directory, manifest, loaded,
                       streaming=bool(data_settings(cfg)["streaming"]))
    timings["read_shards"] = time.perf_counter() - t
    counts = {"n_users": data.info.n_users, "n_items": data.info.n_items,
              **{f"n_{p}": int(manifest["counts"][f"n_{p}"]) for p in PARTS},
              "dropped_valid_no_train_user": manifest["counts"]["dropped_valid"],
              "dropped_test_no_train_user": manifest["counts"]["dropped_test"]}
    if counts["n_test"] == 0:
        raise DataError("the test part is empty after splitting: every user needs held-out "
                        "interactions. Check split ratios/holdout counts and the k-core "
                        "filters.")
    return PreparedData(data, raw_meta, timings, counts)


def build_shards(cfg: DictConfig, plan: Any
                 ) -> tuple[Path, dict[str, Any], dict[str, Any], Any, dict[str, float]]:
    """The shard directory of this config, written unless a complete one with the same
    fingerprint exists: ``(directory, manifest, raw_meta, loaded Dataset or None,
    timings)``. Nothing is read into memory but what the dataset's own loader loads
    when it has no lazy scan."""
    settings = data_settings(cfg)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    source = plan.dataset.scan(cfg.dataset) if plan.dataset.scan is not None else None
    loaded = None
    if source is None:  # no lazy form: the loader's frames (data that fits in memory)
        loaded = plan.dataset.load(cfg.dataset)
        raw_meta = dict(loaded.meta)
        raw_meta["fingerprint"], raw_meta["fingerprint_source"] = raw_fingerprint(
            loaded.meta, (loaded.interactions, loaded.items, loaded.users),
            str(cfg.dataset.name))
        if LABEL in loaded.interactions.columns:
            raise ConfigError(
                "the out-of-core engine handles positive-only interactions; this data has "
                "a 0/1 label column (the CTR protocol). Run it with data.engine=pandas.")
        name, where, meta = loaded.name, loaded.source or loaded.name, loaded.meta
    else:
        raw_meta = dict(source.meta)
        if not raw_meta.get("fingerprint"):
            raw_meta["fingerprint"] = fingerprint_files(source.paths,
                                                        {"columns": source.columns})
        raw_meta["fingerprint_source"] = "dataset"
        name, where, meta = source.name, source.paths[0], source.meta
    fp = config_fingerprint(cfg, str(raw_meta["fingerprint"]), plan)
    directory = Path(settings["shard_dir"] or default_shard_dir(fp)).expanduser()
    raw_meta["shards"] = {"dir": str(directory), "fingerprint": fp}
    directory.parent.mkdir(parents=True, exist_ok=True)
    # one writer per directory: DDP ranks and sweep jobs wait for it, then reuse its shards
    with FileLock(str(directory.parent / f".{directory.name}.lock")):
        manifest = _reuse_or_build(cfg, plan, settings, directory, fp, source, loaded, where,
                                   meta, name, timings, t, raw_meta)
    return directory, manifest, raw_meta, loaded, timings


def _reuse_or_build(cfg: DictConfig, plan: Any, settings: dict[str, Any], directory: Path,
                    fp: str, source: ScanSource | None, loaded: Any, where: str,
                    meta: dict[str, Any], name: str, timings: dict[str, float], t: float,
                    raw_meta: dict[str, Any]) -> dict[str, Any]:
    if (directory / MANIFEST).exists():
        manifest = read_manifest(directory, fp)
        log.info("data: reusing the shards in %s (fingerprint %s)", directory, fp)
        timings["load"] = time.perf_counter() - t
        raw_meta["shards"]["reused"] = True
    else:
        if directory.exists() and any(directory.iterdir()):
            read_manifest(directory, fp)  # raises: incomplete
        manifest = _build(cfg, plan, settings, directory, fp, source, loaded, where, meta,
                          name, timings, t)
        raw_meta["shards"]["reused"] = False
    return manifest


def _build(cfg: DictConfig, plan: Any, settings: dict[str, Any], directory: Path, fp: str,
           source: ScanSource | None, loaded: Any, where: str, meta: dict[str, Any],
           name: str, timings: dict[str, float], t: float) -> dict[str, Any]:
    if settings["engine"] == "ray":
        from recframe.data.ooc.ray_engine import build_ray

        manifest = build_ray(settings, plan, directory, source, loaded, where, meta, timings, t)
        manifest.update(fingerprint=fp, dataset=name, engine="ray")
        write_manifest(directory, manifest)
        return manifest
    spill = directory.parent / f".{directory.name}.spill"
    con = connect(settings, spill)
    try:
        frames = tuple(k for k in ("items", "users") if getattr(loaded, k, None) is not None)
        ctx = SqlContext(con, source=where, meta=dict(meta), feature_frames=frames)
        rel = _scan_relation(ctx, source) if source is not None else _frame_relation(ctx, loaded)
        timings["load"] = time.perf_counter() - t
        t = time.perf_counter()
        for step_name, step in plan.sql_steps:
            t_step = time.perf_counter()
            rel = step(ctx, rel)
            timings[f"preprocess_{step_name}"] = time.perf_counter() - t_step
            if ctx.count(rel) == 0:
                _validate(ctx, rel, f"after preprocessing step {step_name!r}")
        _validate(ctx, rel, "after preprocessing" if plan.sql_steps else "after loading")
        timings["preprocess"] = time.perf_counter() - t
        t = time.perf_counter()
        split = plan.sql_splitter(ctx, rel)
        timings["split"] = time.perf_counter() - t
        t = time.perf_counter()
        directory.mkdir(parents=True, exist_ok=True)
        manifest = encode_to_shards(ctx, split, directory, int(settings["shard_rows"]))
        manifest.update(fingerprint=fp, dataset=name, engine="duckdb")
        write_manifest(directory, manifest)
        timings["encode"] = time.perf_counter() - t
        return manifest
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)


def encode_to_shards(ctx: SqlContext, split: str, directory: Path, shard_rows: int
                     ) -> dict[str, Any]:
    """Id maps (train users, all items, sorted), then each part as int32 indices sorted by
    user, time, original row, as :func:`recframe.data.encode.encode` orders events."""
    import pyarrow.parquet as pq

    con = ctx.con
    users = ctx.table(f"SELECT {USER}, (row_number() OVER (ORDER BY {USER}) - 1)::INTEGER "
                      f"AS uidx FROM (SELECT DISTINCT {USER} FROM {split} WHERE {PART} = 0)",
                      "user_ids")
    items = ctx.table(f"SELECT {ITEM}, (row_number() OVER (ORDER BY {ITEM}) - 1)::INTEGER "
                      f"AS iidx FROM (SELECT DISTINCT {ITEM} FROM {split})", "item_ids")
    for rel, col, fname in ((users, USER, "user_ids"), (items, ITEM, "item_ids")):
        table = con.sql(f"SELECT {col} FROM {rel} ORDER BY {col}").to_arrow_table()
        pq.write_table(table, directory / f"{fname}.parquet")
    out = encode_parts(ctx, split, users, items, directory, shard_rows)
    rows = {p: sum(f["rows"] for f in out["files"][p]) for p in PARTS}
    return {
        "columns": out["columns"],
        "files": out["files"],
        "id_maps": {"user_ids": "user_ids.parquet", "item_ids": "item_ids.parquet"},
        "counts": {"n_users": ctx.count(users), "n_items": ctx.count(items),
                   **{f"n_{p}": rows[p] for p in PARTS},
                   "dropped_valid": out["dropped"].get(1, 0),
                   "dropped_test": out["dropped"].get(2, 0)},
        "has_timestamps": TIMESTAMP in out["columns"], "has_ratings": RATING in out["columns"],
    }


def encode_parts(ctx: SqlContext, split: str, users: str, items: str, directory: Path,
                 shard_rows: int) -> dict[str, Any]:
    """Each part of ``split`` through the id maps ``users`` (``user_id, uidx``) and
    ``items`` (``item_id, iidx``), sorted by user, time, row, written as shards under
    ``directory``: ``{columns, files, dropped}`` (rows of valid/test whose user has no
    train row, by part label)."""
    con = ctx.con
    cols = ctx.columns(split)
    extra = [c for c in (RATING, TIMESTAMP) if c in cols]
    order = ", ".join(["u.uidx", *([f"s.{TIMESTAMP}"] if TIMESTAMP in cols else []),
                       f"s.{ROW}"])
    files: dict[str, list[dict[str, Any]]] = {}
    for k, part in enumerate(PARTS):
        query = (f"SELECT u.uidx AS user, i.iidx AS item"
                 f"{''.join(', s.' + c for c in extra)} FROM {split} s "
                 f"JOIN {users} u USING ({USER}) JOIN {items} i USING ({ITEM}) "
                 f"WHERE s.{PART} = {k} ORDER BY {order}")
        reader = con.sql(query).to_arrow_reader(1 << 20)
        files[part] = write_part(reader, directory / part, shard_rows)
    dropped = dict(con.execute(
        f"SELECT {PART}, count(*) FROM {split} ANTI JOIN {users} USING ({USER}) "
        f"GROUP BY {PART}").fetchall())
    return {"columns": ["user", "item", *extra], "files": files,
            "dropped": {int(k): int(v) for k, v in dropped.items()}}


def load_shards(directory: Path, manifest: dict[str, Any] | None = None,
                loaded: Any = None, streaming: bool = False) -> RecData:
    """A shard directory as :class:`RecData` (checked against its manifest first).

    ``streaming``: the parts stay on disk (:class:`LazyEvents` reads one only if asked
    for) and the train CSR is built from the shards (4 bytes per interaction), as
    streamed training and evaluation need nothing else in memory."""
    manifest = manifest or read_manifest(directory)
    has_ts = bool(manifest["has_timestamps"])
    events: Any
    if streaming:
        events = LazyEvents(directory, manifest, has_ts)
    else:
        events = {}
        for part in PARTS:
            cols = ["user", "item", *([TIMESTAMP] if has_ts else [])]
            arrays = read_part(directory, manifest, part, cols)
            events[part] = Events(arrays["user"].astype(np.int64),
                                  arrays["item"].astype(np.int64),
                                  arrays[TIMESTAMP] if has_ts else None)
    user_ids, item_ids = read_ids(directory, "user_ids"), read_ids(directory, "item_ids")
    if len(user_ids) != manifest["counts"]["n_users"]:
        raise ShardError(f"shard directory {directory} is damaged: user_ids.parquet does not "
                         f"match the manifest. Delete it and rerun.")
    items_frame, item_specs = _feature_frame(getattr(loaded, "items", None), item_ids, ITEM)
    users_frame, user_specs = _feature_frame(getattr(loaded, "users", None), user_ids, USER)
    train = train_matrix(directory, manifest, len(user_ids), len(item_ids)) if streaming \
        else None
    lengths = (np.bincount(events["train"].users, minlength=len(user_ids)) if train is None
               else _train_lengths(directory, manifest, len(user_ids)))
    info = DataInfo(
        n_users=len(user_ids), n_items=len(item_ids), has_timestamps=has_ts,
        has_ratings=bool(manifest["has_ratings"]), item_features=item_specs,
        user_features=user_specs, n_train=int(manifest["counts"]["n_train"]),
        name=str(manifest.get("dataset", "")), train_history_lengths=lengths)
    dropped = {"train": 0, "valid": manifest["counts"]["dropped_valid"],
               "test": manifest["counts"]["dropped_test"]}
    data = RecData(info=info, user_ids=user_ids, item_ids=item_ids, events=events,
                   item_features=items_frame, user_features=users_frame,
                   meta={"dropped_eval_interactions_without_train_user": dropped,
                         "shards": str(directory)},
                   _frames={"user": getattr(loaded, "users", None),
                            "item": getattr(loaded, "items", None)})
    if train is not None:
        data._csr["train"] = train
    return data


def _train_lengths(directory: Path, manifest: dict[str, Any], n_users: int) -> np.ndarray:
    """Train events per user (rows, duplicates counted), read a row group at a time."""
    lengths = np.zeros(n_users, dtype=np.int64)
    for chunk in iter_part(directory, manifest, "train", ["user"]):
        lengths += np.bincount(chunk["user"], minlength=n_users)
    return lengths

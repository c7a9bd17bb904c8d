"""Resolve a config against the plugin registries and run load -> preprocess -> split -> encode.

Every name and parameter that can be checked without data is checked in
:func:`resolve`, before anything is loaded, so bad input fails in seconds.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from recframe.data.encode import RecData, encode
from recframe.data.fingerprint import raw_fingerprint
from recframe.data.types import LABEL, RATING, TIMESTAMP, Dataset, Split
from recframe.errors import ConfigError, DataError
from recframe.eval.ctr import DEFAULT_CTR_METRICS, DEFAULT_CTR_MONITOR, PointwiseEvaluator
from recframe.eval.evaluator import Evaluator
from recframe.eval.metric_config import resolve_metrics
from recframe.plugin.manager import PluginManager
from recframe.plugin.specs import DatasetSpec, ModelSpec
from recframe.privacy import HeldOut, PrivacySettings, hold_out_users, read_privacy

log = logging.getLogger(__name__)
PROTOCOLS = ("auto", "ranking", "ctr")
#: ``data.engine`` values: in memory, out of core (DuckDB), on a Ray cluster, or chosen
#: by input size
ENGINES = ("pandas", "duckdb", "ray", "auto")
#: the engines that write Parquet shards
OOC_ENGINES = ("duckdb", "ray")


@dataclass
class Plan:
    """Everything a run needs, resolved from config before any data is read."""

    dataset: DatasetSpec
    steps: list[tuple[str, Callable[[Dataset], Dataset]]]
    splitter: Callable[[Dataset], Split]
    model: ModelSpec
    evaluator: Evaluator
    monitor: str
    #: ``ranking``, ``ctr``, or ``auto`` (ctr when the data has a label column)
    protocol: str = "ranking"
    #: the CTR protocol's evaluator, once the protocol is known
    pointwise: PointwiseEvaluator | None = None
    #: ``privacy.*`` (recframe.privacy), checked before any data is read
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    #: metrics of ``kind="audit"`` (membership inference), computed after the test
    audit: dict[str, Any] = field(default_factory=dict)
    #: ``pandas`` (in memory) or ``duckdb`` (out of core), and why (results.json)
    engine: str = "pandas"
    engine_reason: str = "data.engine=pandas"
    #: the out-of-core forms of the steps and splitter (``data.engine`` duckdb/auto)
    sql_steps: list[tuple[str, Callable[[Any, str], str]]] = field(default_factory=list)
    sql_splitter: Callable[[Any, str], str] | None = None


@dataclass
class PreparedData:
    data: RecData
    raw_meta: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    #: users held out before encoding for the membership-inference audit, or None
    held_out: HeldOut | None = None


def _require(cfg: DictConfig, key: str) -> Any:
    node = OmegaConf.select(cfg, key)
    if node is None:
        raise ConfigError(f"config key `{key}` is missing; set it, e.g. `{key}=...`")
    return node


def resolve(cfg: DictConfig, pm: PluginManager) -> Plan:
    dataset = pm.datasets.get(_require(cfg, "dataset.name"), key="dataset.name")
    steps_cfg = cfg.get("preprocess") or []
    if not isinstance(steps_cfg, (list, ListConfig)):
        raise ConfigError(
            f"config key `preprocess` must be a list of steps like [{{name: dedup}}], "
            f"got {type(steps_cfg).__name__}"
        )
    steps = []
    for i, step in enumerate(steps_cfg):
        if not isinstance(step, (dict, DictConfig)) or "name" not in step:
            raise ConfigError(f"preprocess[{i}] must be a mapping with a `name` key, got {step!r}")
        spec = pm.preprocessors.get(step["name"], key=f"preprocess[{i}].name")
        steps.append((spec.name, spec.build(step)))
    split_spec = pm.splitters.get(_require(cfg, "split.name"), key="split.name")
    splitter = split_spec.build(cfg.split)
    engine = resolve_engine(cfg, dataset, [pm.preprocessors.get(s["name"]) for s in steps_cfg],
                            steps_cfg, split_spec)
    model = pm.models.get(_require(cfg, "model.name"), key="model.name")
    metrics = resolve_metrics(metric_names(cfg), pm.metrics)
    privacy = read_privacy(cfg.get("privacy"))
    audit = {n: s for n, s in metrics.items() if s.kind == "audit"}
    if audit and privacy.audit_users <= 0:
        raise ConfigError(
            f"metrics.names has {sorted(audit)}, a membership-inference audit, which needs "
            f"users held out before training: set privacy.audit_users (e.g. 0.1), or remove "
            f"{sorted(audit)} from metrics.names.")
    metrics = {n: s for n, s in metrics.items() if s.kind != "audit"}
    plan = _resolve_protocol(cfg, dataset, steps, splitter, model, metrics)
    plan.privacy, plan.audit = privacy, audit
    plan.engine, plan.engine_reason, plan.sql_steps, plan.sql_splitter = engine
    return plan


def _resolve_protocol(cfg: DictConfig, dataset: DatasetSpec, steps: list[Any], splitter: Any,
                      model: ModelSpec, metrics: dict[str, Any]) -> Plan:
    protocol = str((cfg.get("evaluation") or {}).get("protocol", "auto"))
    if protocol not in PROTOCOLS:
        raise ConfigError(
            f"evaluation.protocol must be one of {list(PROTOCOLS)}, got {protocol!r}")
    if protocol == "ctr":  # checked here; the ranking evaluator is not used
        pointwise = PointwiseEvaluator(metrics)
        monitor = pointwise.check_key(str(_require(cfg, "metrics.monitor")), "metrics.monitor")
        return Plan(dataset, steps, splitter, model, None, monitor, protocol)  # type: ignore
    if protocol == "auto" and any(s.kind == "pointwise" for s in metrics.values()):
        # CTR metrics named with protocol auto: the data decides (build_experiment)
        return Plan(dataset, steps, splitter, model, None, str(_require(  # type: ignore
            cfg, "metrics.monitor")), protocol)
    evaluator = ranking_evaluator(cfg, metrics)
    monitor = evaluator.check_key(str(_require(cfg, "metrics.monitor")), "metrics.monitor")
    return Plan(dataset, steps, splitter, model, evaluator, monitor, protocol)


def resolve_engine(cfg: DictConfig, dataset: DatasetSpec, step_specs: list[Any],
                   steps_cfg: Any, split_spec: Any) -> tuple[str, str, list[Any], Any]:
    """``data.engine`` -> (engine, why, out-of-core steps, out-of-core splitter).

    ``ray`` runs the same step forms on user-range partitions and refuses those that do
    not declare a partitioned form (E932); ``auto`` picks ``duckdb`` when the dataset
    can be scanned lazily and its files exceed ``data.ooc_threshold_gib`` and every step
    has an out-of-core form; ``duckdb`` insists (E921 names the steps that lack one)."""
    from recframe.data.ooc.engine import data_settings

    settings = data_settings(cfg)
    engine = str(settings["engine"])
    if engine not in ENGINES:
        raise ConfigError(f"data.engine must be one of {', '.join(ENGINES)}, got {engine!r}. "
                          f"Example: data.engine=duckdb")
    if engine == "pandas":
        if settings["streaming"]:
            raise ConfigError(
                "data.streaming=true streams training batches from the out-of-core engine's "
                "Parquet shards, which data.engine=pandas does not write. Set "
                "data.engine=duckdb (or auto), or data.streaming=false.")
        return "pandas", "data.engine=pandas", [], None
    # a spec without build_sql, or whose build_sql returns None for these parameters,
    # has no out-of-core form
    sql_steps = [(s.name, s.build_sql(c) if s.build_sql is not None else None)
                 for s, c in zip(step_specs, steps_cfg, strict=True)]
    sql_splitter = split_spec.build_sql(cfg.split) if split_spec.build_sql is not None \
        else None
    lacking = [name if spec.build_sql is None else f"{name} (with these parameters)"
               for (name, form), spec in zip(sql_steps, step_specs, strict=True)
               if form is None]
    if sql_splitter is None:
        lacking.append(f"split {split_spec.name}" + (
            "" if split_spec.build_sql is None else " (with these parameters)"))
    if engine == "auto":
        size = _scan_size(cfg, dataset)
        threshold = float(settings["ooc_threshold_gib"])
        if size is None or size < threshold * 2**30 or lacking:
            why = ("data.engine=auto: " + ("the dataset has no lazy scan" if size is None else
                   f"input {size / 2**30:.3f} GiB < data.ooc_threshold_gib={threshold:g}"
                   if size < threshold * 2**30 else
                   f"no out-of-core form for {', '.join(lacking)}"))
            return "pandas", why, [], None
        why = f"data.engine=auto: input {size / 2**30:.2f} GiB >= {threshold:g} GiB"
    else:
        why = f"data.engine={engine}"
    if lacking:
        raise ConfigError(
            f"data.engine={engine}: no out-of-core form for {', '.join(lacking)} (a step or "
            f"splitter registers one with build_sql). Run this config with "
            f"data.engine=pandas, or drop those steps.")
    if engine == "ray":
        from recframe.data.ooc.ray_engine import check_partitioned, import_ray

        import_ray()  # E930 before any data is read
        check_partitioned(sql_steps, (split_spec.name, sql_splitter))
        return "ray", why, sql_steps, sql_splitter
    return "duckdb", why, sql_steps, sql_splitter


def _scan_size(cfg: DictConfig, dataset: DatasetSpec) -> int | None:
    """Bytes of the files the dataset would scan, or None when it has no lazy scan."""
    if dataset.scan is None:
        return None
    source = dataset.scan(cfg.dataset)
    if source is None:
        return None
    from pathlib import Path

    return sum(Path(p).stat().st_size for p in source.paths)


def metric_names(cfg: DictConfig) -> list[Any]:
    """``metrics.names``: a list of metric names or ``{name: ..., <parameters>}`` entries
    (one entry alone is a list of one), checked for its shape."""
    names = _require(cfg, "metrics.names")
    names = OmegaConf.to_container(names) if OmegaConf.is_config(names) else names
    if isinstance(names, (str, dict)):
        names = [names]
    if not isinstance(names, list) or not names or not all(
            isinstance(n, (str, dict)) for n in names):
        raise ConfigError(f"metrics.names must be a list of metric names, e.g. "
                          f"metrics.names=[ndcg,recall]; got {names!r}")
    return names


def ranking_evaluator(cfg: DictConfig, metrics: dict[str, Any]) -> Evaluator:
    ks = _require(cfg, "metrics.ks")
    ks = OmegaConf.to_container(ks) if OmegaConf.is_config(ks) else ks
    return Evaluator(metrics, ks if isinstance(ks, list) else [ks])  # it checks the ks


def pointwise_evaluator(cfg: DictConfig, pm: PluginManager) -> PointwiseEvaluator:
    """The CTR protocol's evaluator from ``metrics.*``: when ``metrics.names`` holds no
    metric with a pointwise form (the ranking defaults), the CTR defaults
    (auc, gauc, logloss, ece; monitor auc) are used and written back to ``cfg``."""
    specs = {n: s for n, s in resolve_metrics(metric_names(cfg), pm.metrics).items()
             if s.kind != "audit"}
    if not any(s.pointwise is not None for s in specs.values()):
        log.info("CTR protocol: metrics.names %s are ranking metrics; reporting %s instead",
                 list(specs), list(DEFAULT_CTR_METRICS))
        specs = {n: pm.metrics.get(n, key="metrics.names") for n in DEFAULT_CTR_METRICS
                 if n in pm.metrics}
        with open_dict(cfg):
            cfg.metrics.names = list(specs)
            cfg.metrics.monitor = DEFAULT_CTR_MONITOR
    evaluation = cfg.get("evaluation") or {}
    return PointwiseEvaluator(specs, int(evaluation.get("calibration_bins", 15)))


def validate_interactions(ds: Dataset, after: str) -> None:
    """Fail early on data no model can use: empty, or non-finite ratings/timestamps."""
    if len(ds.interactions) == 0:
        raise DataError(
            f"no interactions left {after}. Loosen the filters (binarize threshold, "
            f"k-core minimums) or check the input file {ds.source or ds.name}."
        )
    if LABEL in ds.interactions.columns:
        validate_labels(ds)
    for col in (RATING, TIMESTAMP):
        if col not in ds.interactions.columns:
            continue
        values = ds.interactions[col]
        try:
            numeric = values.to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError):
            continue
        bad = ~np.isfinite(numeric)
        if bad.any():
            rows = ds.interactions.index[bad][:5].tolist()
            raise DataError(
                f"{ds.source or ds.name}: column {col!r} has {int(bad.sum())} NaN/inf "
                f"value(s) (first data rows, 0-based: {rows}). Fix the file, or drop such rows by "
                f"adding the step `{{name: drop_invalid}}` to `preprocess`."
            )


def validate_labels(ds: Dataset) -> None:
    """A ``label`` column holds 0/1 and both classes (impressions clicked or not)."""
    values = ds.interactions[LABEL]
    numeric = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64,
                                                               na_value=np.nan)
    bad = ~np.isin(numeric, (0.0, 1.0))
    where = ds.source or ds.name
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        found = sorted({str(v) for v in values[bad].head(1000)})[:5]
        raise DataError(
            f"{where}: column {LABEL!r} must hold 0/1 click labels; data row {first} "
            f"(0-based) has {values.iloc[first]!r} ({int(bad.sum())} such rows; values "
            f"found: {found}). Map the click column to `label` and binarize it first.")
    positives = int(numeric.sum())
    if positives in (0, len(numeric)):
        raise DataError(
            f"{where}: every row of column {LABEL!r} is {int(numeric[0])}: a click model "
            f"needs both clicked (1) and unclicked (0) impressions. Check the label column "
            f"and the filters.")


def fingerprint(data: RecData) -> str:
    """A hash of the encoded split: equal fingerprints mean identical train/valid/test."""
    h = hashlib.sha256()
    h.update(np.asarray(data.user_ids.astype(str)).astype("U").tobytes())
    h.update(np.asarray(data.item_ids.astype(str)).astype("U").tobytes())
    chunks = getattr(data.events, "fingerprint_arrays", None)  # shards left on disk
    for part in ("train", "valid", "test"):
        h.update(part.encode())
        if chunks is not None:  # the same bytes, a row group at a time
            for column in ("user", "item"):
                for array in chunks(part, column):
                    h.update(array.tobytes())
            continue
        ev = data.events[part]
        h.update(ev.users.tobytes())
        h.update(ev.items.tobytes())
    return h.hexdigest()[:16]


def prepare(cfg: DictConfig, plan: Plan) -> PreparedData:
    """Load, preprocess, split and encode; time each phase (out of core when the plan's
    engine is ``duckdb``: :func:`recframe.data.ooc.engine.prepare_ooc`)."""
    if plan.engine in OOC_ENGINES:
        if "fields" in plan.model.needs:
            raise ConfigError(
                f"model {plan.model.name!r} needs typed fields, which the out-of-core "
                f"engine does not encode; run it with data.engine=pandas.")
        from recframe.data.ooc.engine import data_settings, prepare_ooc

        streaming = bool(data_settings(cfg)["streaming"])
        if plan.privacy.audit_users > 0 or (plan.privacy.active and streaming):
            audit = plan.privacy.audit_users > 0
            what = "privacy.audit_users" if audit else "data.streaming=true"
            raise ConfigError(
                f"privacy={plan.privacy.name} with {what} is not supported by the out-of-core "
                f"engine (the audit's held-out users and DP-SGD's per-user batches are built "
                f"in memory); run it with data.engine=pandas"
                f"{'' if audit else ' or data.streaming=false'}.")
        prepared = prepare_ooc(cfg, plan)
    else:
        prepared = prepare_in_memory(cfg, plan)
    from recframe.data.ooc.engine import data_settings

    prepared.raw_meta["data_engine"] = {
        "engine": plan.engine, "reason": plan.engine_reason,
        "streaming": plan.engine in OOC_ENGINES and bool(data_settings(cfg)["streaming"])}
    return prepared


def prepare_in_memory(cfg: DictConfig, plan: Plan) -> PreparedData:
    """:func:`prepare` with pandas frames (``data.engine=pandas``)."""
    timings: dict[str, float] = {}
    t = time.perf_counter()
    raw = plan.dataset.load(cfg.dataset)
    raw_meta = dict(raw.meta)  # the fingerprint a dataset gives, else its content's
    raw_meta["fingerprint"], raw_meta["fingerprint_source"] = raw_fingerprint(
        raw.meta, (raw.interactions, raw.items, raw.users), str(cfg.dataset.name))
    timings["load"] = time.perf_counter() - t

    t = time.perf_counter()
    ds = raw
    for name, step in plan.steps:
        before = len(ds.interactions)
        ds = step(ds)
        log.info("preprocess %s: %d -> %d interactions", name, before, len(ds.interactions))
        if len(ds.interactions) == 0:
            validate_interactions(ds, f"after preprocessing step {name!r}")
    validate_interactions(ds, "after preprocessing" if plan.steps else "after loading")
    timings["preprocess"] = time.perf_counter() - t

    t = time.perf_counter()
    split = plan.splitter(ds)
    held_out = None
    if plan.privacy.audit_users > 0:  # the audit's non-members never reach the model
        split, held_out = hold_out_users(split, plan.privacy.audit_users,
                                         int(cfg.get("seed", 0)))
        log.info("privacy.audit_users: %d users held out for the membership audit",
                 held_out.n_users)
    timings["split"] = time.perf_counter() - t

    t = time.perf_counter()
    data = encode(split, fields=(cfg.get("dataset") or {}).get("fields"),
                  with_fields="fields" in plan.model.needs)
    timings["encode"] = time.perf_counter() - t
    dropped = data.meta.get("dropped_eval_interactions_without_train_user", {})
    counts = {
        "n_users": data.info.n_users,
        "n_items": data.info.n_items,
        **{f"n_{p}": len(data.events[p].users) for p in ("train", "valid", "test")},
        # held-out interactions of users with no training history (no model can rank them)
        "dropped_valid_no_train_user": int(dropped.get("valid", 0)),
        "dropped_test_no_train_user": int(dropped.get("test", 0)),
    }
    for part, rows in data.labeled.items():
        counts[f"n_{part}_impressions"] = len(rows)
        counts[f"{part}_click_rate"] = round(float(rows.labels.mean()), 6) if len(rows) else 0.0
    if counts["n_test"] == 0 and not data.labeled.get("test"):
        raise DataError(
            "the test part is empty after splitting: every user needs held-out "
            "interactions. Check split ratios/holdout counts and the k-core filters."
        )
    if held_out is not None:
        counts["audit_held_out_users"] = held_out.n_users
    if "k_anonymity" in ds.meta:  # what the k_anonymize step generalized (results.json)
        raw_meta["k_anonymity"] = ds.meta["k_anonymity"]
    return PreparedData(data, raw_meta, timings, counts, held_out)


def check_compatible(model: ModelSpec, data: RecData,
                     models: Iterable[ModelSpec] = ()) -> None:
    """A model that needs timestamps or features fails before training, saying why;
    ``models`` (the registered ones) lets the message name those that need none of
    what the data lacks."""
    info = data.info
    problems, lacking = [], set()
    if "timestamps" in model.needs and not info.has_timestamps:
        problems.append("timestamps (add a timestamp column: dataset.columns.timestamp)")
        lacking.add("timestamps")
    item_fields = [f for f in info.fields if f.owner == "item" and f.name != "item_id"]
    if "item_features" in model.needs and not info.item_features and not item_fields:
        problems.append("item features (set dataset.item_features)")
        lacking.add("item_features")
    if "user_features" in model.needs and not info.user_features:
        problems.append("user features (set dataset.user_features)")
        lacking.add("user_features")
    if problems:
        have = {"timestamps": info.has_timestamps, "item_features": "item_features" not in
                lacking, "user_features": bool(info.user_features)}
        # the models whose needs this data meets, those that need least first
        usable = [m.name for m in sorted(models, key=lambda m: (len(m.needs), m.name))
                  if all(have.get(n, True) for n in m.needs)]
        hint = (f" Models that run without them: {', '.join(usable[:12])}"
                f"{', ...' if len(usable) > 12 else ''}." if usable else "")
        raise ConfigError(
            f"model {model.name!r} needs {', '.join(problems)}, which dataset "
            f"{info.name!r} does not provide.{hint}"
        )

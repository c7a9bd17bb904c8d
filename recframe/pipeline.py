"""Resolve a config against the plugin registries and run load -> preprocess -> split -> encode.

Every name and parameter that can be checked without data is checked in
:func:`resolve`, before anything is loaded, so bad input fails in seconds.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from omegaconf import DictConfig, ListConfig, OmegaConf

from recframe.data.encode import RecData, encode
from recframe.data.types import RATING, TIMESTAMP, Dataset, Split
from recframe.errors import ConfigError, DataError
from recframe.eval.evaluator import Evaluator
from recframe.plugin.manager import PluginManager
from recframe.plugin.specs import DatasetSpec, ModelSpec

log = logging.getLogger(__name__)


@dataclass
class Plan:
    """Everything a run needs, resolved from config before any data is read."""

    dataset: DatasetSpec
    steps: list[tuple[str, Callable[[Dataset], Dataset]]]
    splitter: Callable[[Dataset], Split]
    model: ModelSpec
    evaluator: Evaluator
    monitor: str


@dataclass
class PreparedData:
    data: RecData
    raw_meta: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


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
    model = pm.models.get(_require(cfg, "model.name"), key="model.name")
    names = list(_require(cfg, "metrics.names"))
    metrics = {n: pm.metrics.get(n, key="metrics.names") for n in names}
    ks = OmegaConf.to_container(_require(cfg, "metrics.ks"))
    evaluator = Evaluator(metrics, ks if isinstance(ks, list) else [ks])
    monitor = evaluator.check_key(str(_require(cfg, "metrics.monitor")), "metrics.monitor")
    return Plan(dataset, steps, splitter, model, evaluator, monitor)


def validate_interactions(ds: Dataset, after: str) -> None:
    """Fail early on data no model can use: empty, or non-finite ratings/timestamps."""
    if len(ds.interactions) == 0:
        raise DataError(
            f"no interactions left {after}. Loosen the filters (binarize threshold, "
            f"k-core minimums) or check the input file {ds.source or ds.name}."
        )
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


def fingerprint(data: RecData) -> str:
    """A hash of the encoded split: equal fingerprints mean identical train/valid/test."""
    h = hashlib.sha256()
    h.update(np.asarray(data.user_ids.astype(str)).astype("U").tobytes())
    h.update(np.asarray(data.item_ids.astype(str)).astype("U").tobytes())
    for part in ("train", "valid", "test"):
        ev = data.events[part]
        h.update(part.encode())
        h.update(ev.users.tobytes())
        h.update(ev.items.tobytes())
    return h.hexdigest()[:16]


def prepare(cfg: DictConfig, plan: Plan) -> PreparedData:
    """Load, preprocess, split and encode; time each phase."""
    timings: dict[str, float] = {}
    t = time.perf_counter()
    raw = plan.dataset.load(cfg.dataset)
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
    timings["split"] = time.perf_counter() - t

    t = time.perf_counter()
    data = encode(split)
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
    if counts["n_test"] == 0:
        raise DataError(
            "the test part is empty after splitting: every user needs held-out "
            "interactions. Check split ratios/holdout counts and the k-core filters."
        )
    return PreparedData(data, dict(raw.meta), timings, counts)


def check_compatible(model: ModelSpec, data: RecData) -> None:
    """A model that needs timestamps or features fails before training, saying why."""
    info = data.info
    problems = []
    if "timestamps" in model.needs and not info.has_timestamps:
        problems.append("timestamps (add a timestamp column: dataset.columns.timestamp)")
    if "item_features" in model.needs and not info.item_features:
        problems.append("item features (set dataset.item_features)")
    if "user_features" in model.needs and not info.user_features:
        problems.append("user features (set dataset.user_features)")
    if problems:
        raise ConfigError(
            f"model {model.name!r} needs {', '.join(problems)}, which dataset "
            f"{info.name!r} does not provide."
        )

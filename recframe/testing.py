"""Conformance checks for plugin authors: call them from your own tests.

Each check builds, runs and inspects one registered component the way a run
would, and raises :class:`AssertionError` with a message that says what is
wrong and how to fix it::

    from recframe.testing import check_metric, check_model, plugin_manager
    import my_recs.plugin

    def test_my_model_conforms():
        check_model("my_model", pm=plugin_manager(my_recs.plugin))

- :func:`check_model`: trains on small synthetic data through the normal
  runner path, then checks scores, determinism, checkpoint round trips and
  every evaluation mode.
- :func:`check_metric`: edge cases (no relevant item, K above the catalogue,
  tied scores, sampled candidates), value range and batch-size invariance.
- :func:`check_preprocessor`: purity, determinism, kept index labels, logging
  of dropped rows.
- :func:`check_splitter`: the parts partition the interactions.
- :func:`check_dataset`: ids, feature frames, determinism.

Names are resolved through :func:`recframe.plugin.default_manager` (every
installed plugin) unless a manager is passed; :func:`plugin_manager` gives one
that also holds plugin modules that are importable but not installed (e.g. a
package on ``PYTHONPATH``). :func:`compose` composes a run config that also
sees such plugins' config groups.
"""

from __future__ import annotations

import logging
import math
import re
import tempfile
import types
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from recframe.data.item_text import TextSettings
from recframe.data.types import ITEM, RATING, TIMESTAMP, USER, Dataset, Split
from recframe.errors import DuplicateNameError
from recframe.eval.evaluator import Evaluator
from recframe.eval.pointwise import PointwiseInput
from recframe.models.item_text import apply_item_text, item_text_mode
from recframe.params import model_build_config
from recframe.plugin.lazyref import resolve_spec
from recframe.plugin.manager import KINDS, PluginManager, default_manager, hookimpl
from recframe.plugin.specs import (
    DatasetSpec,
    MetricSpec,
    ModelSpec,
    PreprocessorSpec,
    SplitterSpec,
)

__all__ = [
    "SMALL_RUN",
    "ModelReport",
    "check_dataset",
    "check_metric",
    "check_model",
    "check_preprocessor",
    "check_splitter",
    "compose",
    "evaluate_metric",
    "plugin_manager",
    "run",
    "sample_dataset",
]

#: Overrides of :func:`check_model`'s runs: small synthetic data, two epochs, no loggers,
#: the default callbacks (the checkpoint is what the checks reload).
SMALL_RUN: tuple[str, ...] = (
    "dataset=synthetic",
    "dataset.n_users=80",
    "dataset.n_items=50",
    "dataset.mean_per_user=12",
    "preprocess=none",
    "split=random",
    "trainer.max_epochs=2",
    "logger=none",
    "callbacks=default",
    "metrics=default",
    "metrics.ks=[5,10]",
    "evaluation=full",
    "evaluation.batch_size=32",
    "seed=0",
)
#: Extra overrides of the sampled-candidates evaluation in :func:`check_model`.
SAMPLED_EVALUATION: tuple[str, ...] = ("evaluation=sampled", "evaluation.num_negatives=20")
_SPEC_KIND = {DatasetSpec: "datasets", PreprocessorSpec: "preprocessors",
              SplitterSpec: "splitters", ModelSpec: "models", MetricSpec: "metrics"}


def _fail(message: str) -> NoReturn:
    raise AssertionError(message)


# -- plugin managers and config -------------------------------------------------------------


def plugin_manager(*modules: Any) -> PluginManager:
    """The manager a test should use for plugin ``modules`` (modules or plugin objects).

    When every module is already registered by the installed plugins (the
    package is installed, e.g. ``pip install -e .``), this is
    :func:`recframe.plugin.default_manager`. Otherwise it is a new manager over
    every installed plugin plus the missing modules, so a plugin that is only
    on ``PYTHONPATH`` can be tested too.
    """
    pm = default_manager()
    missing = [m for m in modules if not pm.pm.is_registered(m)]
    return PluginManager(missing) if missing else pm


def _manager_with(spec: Any, pm: PluginManager | None) -> tuple[str, PluginManager]:
    """(name, manager that holds ``spec``) for a spec or a registered name."""
    if isinstance(spec, str):
        return spec, pm or default_manager()
    kind = _SPEC_KIND.get(type(spec))
    if kind is None:
        raise TypeError(f"expected a name or a recframe spec, got {type(spec).__name__}")
    base = pm or default_manager()
    registry = getattr(base, kind)
    # a spec whose fields are lazy("module:name") references equals its resolved form
    if spec.name in registry and registry.get(spec.name) == resolve_spec(spec, "recframe.testing"):
        return spec.name, base
    if pm is not None:
        raise ValueError(
            f"{type(spec).__name__} {spec.name!r} is not registered in the given plugin "
            f"manager; register it there or pass its name")
    hook_name = KINDS[kind][0]

    def register(registry: Any) -> None:
        registry.add(spec)

    plugin = types.SimpleNamespace(**{hook_name: hookimpl(register)})
    plugin.__name__ = f"recframe.testing[{spec.name}]"
    try:
        return spec.name, PluginManager([plugin])
    except DuplicateNameError as exc:
        raise ValueError(
            f"{exc} To check a spec that differs from the installed one, give it another "
            f"name.") from None


def _quote(path: str) -> str:
    return "'" + path.replace("\\", "\\\\").replace("'", "\\'") + "'"


def compose(*overrides: str, pm: PluginManager | None = None) -> DictConfig:
    """Compose the run config as ``recframe run`` would.

    With ``pm``, the config groups of its plugins that are not installed (see
    :func:`plugin_manager`) are added through ``hydra.searchpath``, so
    ``model=my_model`` finds ``my_package/conf/model/my_model.yaml``.
    """
    from recframe.hydra_app import compose_config

    args = list(overrides)
    if pm is not None:
        known = {path for _, path in default_manager().searchpaths()}
        extra = [path for _, path in pm.searchpaths() if path not in known]
        if extra:
            args.append(f"hydra.searchpath=[{','.join(_quote(p) for p in extra)}]")
    return compose_config(args)


def run(*overrides: str, pm: PluginManager | None = None,
        run_dir: str | Path | None = None) -> dict[str, Any]:
    """Run one experiment in-process, as ``recframe run OVERRIDES`` would; return its results.

    The run directory is ``run_dir`` or a temporary directory removed afterwards.
    Results are the content of ``results.json`` (``metrics.test``, ``metrics.valid``,
    ...). For example, checking that a model beats Pop on planted-structure data::

        mine = run("model=mine", "dataset=synthetic", "preprocess=none", "logger=none")
    """
    from recframe.runner import run_experiment

    pm = pm or default_manager()
    cfg = compose(*overrides, pm=pm)
    if run_dir is not None:
        return run_experiment(cfg, run_dir, pm=pm)
    with tempfile.TemporaryDirectory(prefix="recframe-run-") as tmp:
        return run_experiment(cfg, tmp, pm=pm)


# -- models ---------------------------------------------------------------------------------


@dataclass
class ModelReport:
    """What :func:`check_model` saw: the run's results and the restored model's scores."""

    name: str
    results: dict[str, Any]
    scores: torch.Tensor
    checked: list[str] = field(default_factory=list)


def _model_config(name: str, overrides: Sequence[str], pm: PluginManager) -> DictConfig:
    from hydra.errors import HydraException, MissingConfigException

    try:
        cfg = compose(f"model={name}", *SMALL_RUN, *overrides, pm=pm)
    except HydraException as exc:
        if not (isinstance(exc, MissingConfigException) and f"model/{name}" in str(exc)):
            raise AssertionError(f"model {name!r}: composing the run config with overrides "
                                 f"{list(overrides)} failed: {exc}") from None
        raise AssertionError(
            f"model {name!r} has no config file ({str(exc).splitlines()[0]}). Ship "
            f"`<package>/conf/model/{name}.yaml` (with `name: {name}` and commented defaults) "
            f"as package data and return 'pkg://<package>.conf' from the "
            f"recframe_config_searchpath hook."
        ) from None
    if cfg.model.get("name") != name:
        _fail(f"model {name!r}: its config model/{name}.yaml says `name: "
              f"{cfg.model.get('name')!r}`; it must equal the registry key {name!r}")
    return cfg


def _run(cfg: DictConfig, run_dir: Path, pm: PluginManager, name: str) -> tuple[dict, Path]:
    from recframe.runner import run_experiment

    try:
        results = run_experiment(cfg, run_dir, pm=pm)
    except Exception as exc:
        raise AssertionError(
            f"model {name!r}: `recframe run model={name}` on small synthetic data failed: "
            f"{type(exc).__name__}: {exc}") from exc
    if results.get("status") != "ok":
        _fail(f"model {name!r}: the run ended with status {results.get('status')!r}")
    for key, value in results["metrics"]["test"].items():
        if not math.isfinite(value):
            _fail(f"model {name!r}: test metric {key} is {value}")
    ckpt = results.get("best_checkpoint") or str(run_dir / "checkpoints" / "last.ckpt")
    if not Path(ckpt).exists():
        _fail(f"model {name!r}: no checkpoint was written ({ckpt}); keep callbacks=default")
    return results, Path(ckpt)


def _fresh_model(exp: Any, cfg: DictConfig, state: Mapping[str, torch.Tensor] | None,
                 name: str, what: str) -> Any:
    """Build the model on the experiment's data, ``prepare`` it and load ``state``."""
    model = exp.plan.model.build(exp.data.info, model_build_config(cfg.model))
    apply_item_text(model, item_text_mode(cfg.model), TextSettings.from_config(cfg.get("text")),
                    exp.data, name)
    model.prepare(exp.data)
    if state is not None:
        try:
            model.load_state_dict(state)
        except Exception as exc:
            raise AssertionError(
                f"model {name!r}: loading {what} into a freshly built model (after "
                f"prepare(data)) failed: {exc}. Everything that must survive a checkpoint "
                f"has to be a parameter or a persistent buffer whose shape depends only on "
                f"DataInfo and the config; data-derived tensors belong in prepare() as "
                f"non-persistent buffers.") from exc
    model.eval()
    return model


def _checkpoint_state(path: Path, name: str) -> dict[str, torch.Tensor]:
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise AssertionError(
            f"model {name!r}: its Lightning checkpoint {path.name} does not load with "
            f"torch.load(weights_only=True): {exc}. Keep only tensors in the state dict "
            f"(no pickled objects).") from exc
    return {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items()
            if k.startswith("model.")}


def _scores(model: Any, batch: dict[str, torch.Tensor], n_items: int, name: str,
            what: str) -> torch.Tensor:
    with torch.no_grad():
        try:
            scores = model.score(batch["users"], batch)
        except Exception as exc:
            raise AssertionError(
                f"model {name!r}: score() failed ({what}): {type(exc).__name__}: {exc}"
            ) from exc
    if not isinstance(scores, torch.Tensor):
        _fail(f"model {name!r}: score() must return a torch.Tensor, got {type(scores).__name__}")
    expected = (len(batch["users"]), n_items)
    if tuple(scores.shape) != expected:
        _fail(f"model {name!r}: score() returned shape {tuple(scores.shape)} ({what}); "
              f"expected [batch, n_items] = {list(expected)}")
    if not scores.is_floating_point():
        _fail(f"model {name!r}: score() returned dtype {scores.dtype}; expected a float dtype")
    bad = int((~torch.isfinite(scores)).sum())
    if bad:
        _fail(f"model {name!r}: score() returned {bad} non-finite value(s) ({what}); the "
              f"evaluator masks seen items itself, so scores must be finite")
    return scores.detach().cpu().to(torch.float64)


def _eval_batches(exp: Any) -> Iterator[dict[str, torch.Tensor]]:
    users = exp.datamodule.eval_set("test")
    size = exp.datamodule.eval_batch_size
    for start in range(0, len(users), size):
        yield users.__getitems__(list(range(start, min(start + size, len(users)))))


def _evaluate(exp: Any, model: Any, name: str, what: str) -> dict[str, torch.Tensor]:
    """Per-user test values of ``model`` over all test users (manual evaluation loop)."""
    evaluator: Evaluator = exp.plan.evaluator
    popularity = exp.task.item_popularity
    values: dict[str, list[torch.Tensor]] = {}
    n_items = exp.data.info.n_items
    for batch in _eval_batches(exp):
        scores = _scores(model, batch, n_items, name, what).float()
        for key, v in evaluator.evaluate_batch(scores, batch, popularity).items():
            values.setdefault(key, []).append(v)
    return {k: torch.cat(v) for k, v in values.items()}


def check_model(name_or_spec: str | ModelSpec, *, overrides: Sequence[str] = (),
                pm: PluginManager | None = None,
                evaluation_modes: Sequence[str] = ("full", "sampled")) -> ModelReport:
    """Train a model through the normal runner path and check what a run relies on.

    Two runs of ``recframe run model=NAME`` with :data:`SMALL_RUN` (then
    ``overrides``, Hydra syntax, e.g. ``["model.embedding_dim=8"]``) in a
    temporary directory, then:

    1. the config ``model/NAME.yaml`` exists and says ``name: NAME``; both runs
       finish with status ``ok`` and finite test metrics (a ``train_format`` that is
       not a :class:`recframe.api.TrainFormat` fails here, E830; every format,
       ``MATRIX`` included, trains through its batches of docs/batch_layouts.md);
    2. the best checkpoint loads with ``torch.load(weights_only=True)`` into a
       freshly built model (after ``prepare(data)``), and re-evaluating it
       reproduces the run's test metrics;
    3. ``score(users, batch)`` returns a finite float tensor ``[batch, n_items]``;
    4. the same seed gives the same scores (the two runs' models agree);
    5. ``torch.save(model.state_dict())`` and ``load_state_dict(torch.load(...,
       weights_only=True))`` into a fresh model give identical scores;
    6. every mode in ``evaluation_modes`` works: ``"full"`` ranking and
       ``"sampled"`` candidates (``evaluation=sampled``) give finite metrics.

    Returns a :class:`ModelReport`; raises :class:`AssertionError` on failure.
    """
    from recframe.runner import build_experiment

    unknown = set(evaluation_modes) - {"full", "sampled"}
    if unknown:
        raise ValueError(f"evaluation_modes: unknown mode(s) {sorted(unknown)}; "
                         f"use 'full' and/or 'sampled'")
    name, pm = _manager_with(name_or_spec, pm)
    if name not in pm.models:
        _fail(f"model {name!r} is not registered; registered models: {pm.models.names()}")
    cfg = _model_config(name, overrides, pm)
    checked = ["config", "runs"]
    with tempfile.TemporaryDirectory(prefix="recframe-check-") as tmp:
        results, ckpt1 = _run(cfg, Path(tmp) / "run1", pm, name)
        _, ckpt2 = _run(cfg, Path(tmp) / "run2", pm, name)
        state1 = _checkpoint_state(ckpt1, name)
        state2 = _checkpoint_state(ckpt2, name)

        exp = build_experiment(cfg, pm)
        n_items = exp.data.info.n_items
        model1 = _fresh_model(exp, cfg, state1, name, "the run's checkpoint")
        test_users = exp.datamodule.eval_set("test")
        batch = test_users.__getitems__(list(range(min(64, len(test_users)))))
        scores1 = _scores(model1, batch, n_items, name, "test users, restored from checkpoint")
        checked.append("scores")

        # 2. the restored checkpoint reproduces the run's test metrics
        if "full" in evaluation_modes:
            values = _evaluate(exp, model1, name, "full ranking")
            for key, v in values.items():
                reported = results["metrics"]["test"].get(key)
                if reported is not None and not math.isclose(
                        float(v.mean()), reported, rel_tol=1e-4, abs_tol=1e-6):
                    _fail(f"model {name!r}: the run reported test {key}={reported:.6f} but the "
                          f"model restored from its checkpoint gives {float(v.mean()):.6f}: "
                          f"scores depend on state that is not in the checkpoint")
            checked.append("full")

        # 4. determinism: same seed, same scores
        model2 = _fresh_model(exp, cfg, state2, name, "the second run's checkpoint")
        scores2 = _scores(model2, batch, n_items, name, "second run")
        if not torch.allclose(scores1, scores2, rtol=1e-5, atol=1e-6):
            diff = float((scores1 - scores2).abs().max())
            _fail(f"model {name!r}: two runs with the same seed give different scores (max "
                  f"abs difference {diff:.3g}). Draw all randomness from torch/numpy RNGs "
                  f"seeded by the run (no unseeded generators, no time-based seeds).")
        checked.append("deterministic")

        # 5. state-dict round trip with weights_only=True
        path = Path(tmp) / "state.pt"
        torch.save(model1.state_dict(), path)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise AssertionError(
                f"model {name!r}: its state_dict does not load with torch.load("
                f"weights_only=True): {exc}") from exc
        model3 = _fresh_model(exp, cfg, state, name, "a saved state_dict")
        scores3 = _scores(model3, batch, n_items, name, "after a state_dict round trip")
        if not torch.equal(scores1, scores3):
            diff = float((scores1 - scores3).abs().max())
            _fail(f"model {name!r}: scores change after a state_dict save/load round trip "
                  f"(max abs difference {diff:.3g}); fitted state must be in parameters or "
                  f"persistent buffers")
        checked.append("state_dict")

    # 6. sampled candidates
    if "sampled" in evaluation_modes:
        cfg_s = _model_config(name, [*overrides, *SAMPLED_EVALUATION], pm)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            exp_s = build_experiment(cfg_s, pm)
            model_s = _fresh_model(exp_s, cfg_s, state1, name, "the run's checkpoint")
            values = _evaluate(exp_s, model_s, name, "sampled candidates")
        for key, v in values.items():
            if not bool(torch.isfinite(v).all()):
                _fail(f"model {name!r}: sampled-candidates evaluation gives non-finite {key} "
                      f"values")
        checked.append("sampled")
    return ModelReport(name, results, scores1, checked)


# -- metrics --------------------------------------------------------------------------------


def _coords(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    rows, cols = torch.nonzero(mask, as_tuple=True)
    return rows, cols


def _metric_batch(truth: torch.Tensor, seen: torch.Tensor, users: torch.Tensor,
                  candidates: torch.Tensor | None) -> dict[str, torch.Tensor]:
    batch = {"users": users}
    batch["truth_rows"], batch["truth_cols"] = _coords(truth)
    batch["seen_rows"], batch["seen_cols"] = _coords(seen)
    if candidates is not None:
        batch["candidate_rows"], batch["candidate_cols"] = _coords(candidates)
    return batch


@dataclass
class _MetricCase:
    scores: torch.Tensor
    truth: torch.Tensor
    seen: torch.Tensor
    candidates: torch.Tensor | None = None


def _metric_case(n_users: int, n_items: int, seed: int, sampled: bool) -> _MetricCase:
    g = torch.Generator().manual_seed(seed)
    scores = torch.randint(0, 6, (n_users, n_items), generator=g).float()  # many ties
    scores[0] = 1.0  # every score tied
    truth = torch.rand(n_users, n_items, generator=g) < 0.15
    truth[1:3] = False  # no relevant item
    truth[3] = True  # every item relevant
    seen = (torch.rand(n_users, n_items, generator=g) < 0.3) & ~truth
    seen[4] = ~truth[4]  # fewer unseen items than K
    seen[5] = True  # everything seen, nothing relevant: an empty list
    truth[5] = False
    candidates = None
    if sampled:
        candidates = torch.rand(n_users, n_items, generator=g) < 0.3
    return _MetricCase(scores, truth, seen, candidates)


def _run_metric(evaluator: Evaluator, case: _MetricCase, batch_size: int,
                popularity: torch.Tensor | None, name: str, what: str
                ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    n_users, n_items = case.scores.shape
    per_user: dict[str, list[torch.Tensor]] = {}
    counts: dict[int, torch.Tensor] = {}
    for start in range(0, n_users, batch_size):
        rows = slice(start, min(start + batch_size, n_users))
        cand = None if case.candidates is None else case.candidates[rows]
        batch = _metric_batch(case.truth[rows], case.seen[rows],
                              torch.arange(n_users)[rows], cand)
        try:
            out = evaluator.evaluate_batch(case.scores[rows], batch, popularity, counts)
        except Exception as exc:
            raise AssertionError(f"metric {name!r} failed ({what}): "
                                 f"{type(exc).__name__}: {exc}") from exc
        for key, v in out.items():
            if not isinstance(v, torch.Tensor) or tuple(v.shape) != (rows.stop - start,):
                _fail(f"metric {name!r}: {key} must be a tensor of shape [batch] = "
                      f"[{rows.stop - start}] ({what}); got "
                      f"{tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__}")
            per_user.setdefault(key, []).append(v)
    try:
        global_ = evaluator.finalize_global(counts, n_users, popularity) if counts else {}
    except Exception as exc:
        raise AssertionError(f"metric {name!r} failed in finalize_global ({what}): "
                             f"{type(exc).__name__}: {exc}") from exc
    for key, v in global_.items():
        if v.numel() != 1:
            _fail(f"metric {name!r}: a global metric must return a scalar; {key} has shape "
                  f"{tuple(v.shape)} ({what})")
    return {k: torch.cat(v) for k, v in per_user.items()}, global_


def evaluate_metric(name_or_spec: str | MetricSpec, scores: torch.Tensor, truth: torch.Tensor,
                    *, ks: Sequence[int], seen: torch.Tensor | None = None,
                    candidates: torch.Tensor | None = None,
                    item_popularity: torch.Tensor | None = None,
                    item_features: torch.Tensor | None = None, batch_size: int | None = None,
                    pm: PluginManager | None = None) -> dict[str, torch.Tensor]:
    """Run a metric through the real evaluator on dense ``[users, items]`` inputs.

    ``truth`` (bool) marks relevant items, ``seen`` (bool) items masked with
    ``-inf``, ``candidates`` (bool) restricts the ranking to those items plus the
    relevant ones (sampled evaluation). Returns ``{"name@k": values}``: ``[users]``
    per-user values, or a scalar for a ``kind="global"`` metric. Meant for
    comparing a metric with a brute-force reference in your tests.
    """
    name, pm = _manager_with(name_or_spec, pm)
    evaluator = Evaluator({name: pm.metrics.get(name)}, list(ks))
    if item_features is not None:
        evaluator.set_item_features(item_features)
    seen = torch.zeros_like(truth, dtype=torch.bool) if seen is None else seen.bool()
    case = _MetricCase(scores, truth.bool(), seen,
                       None if candidates is None else candidates.bool())
    per_user, global_ = _run_metric(evaluator, case, batch_size or len(scores),
                                    item_popularity, name, "evaluate_metric")
    return {**per_user, **global_}


def _check_values(name: str, values: Mapping[str, torch.Tensor], bounded: bool,
                  what: str) -> None:
    for key, v in values.items():
        bad = ~torch.isfinite(v)
        if bool(bad.any()):
            rows = torch.nonzero(bad.reshape(-1)).reshape(-1)[:5].tolist()
            _fail(f"metric {name!r}: {key} is not finite ({what}; rows {rows}). Return a "
                  f"finite value (by convention 0) when it is undefined, e.g. for a user with "
                  f"no relevant item.")
        if bounded and (float(v.min()) < -1e-6 or float(v.max()) > 1 + 1e-6):
            _fail(f"metric {name!r}: {key} has values in [{float(v.min()):.4g}, "
                  f"{float(v.max()):.4g}], outside [0, 1] ({what}); pass bounded=False if "
                  f"the metric is not bounded")


#: The small click log of :func:`check_click_model` (the CTR protocol).
SMALL_CTR_RUN: tuple[str, ...] = (
    "dataset=synthetic_ctr",
    "dataset.n_users=60",
    "dataset.n_items=40",
    "dataset.n_rows=3000",
    "dataset.hist_len=5",
    "preprocess=none",
    "trainer.max_epochs=2",
    "logger=none",
    "callbacks=default",
    "evaluation=ctr",
    "metrics=ctr",
    "evaluation.row_batch_size=256",
    "seed=0",
)


def _labeled_batch(rows: Any, n: int) -> dict[str, Any]:
    idx = np.arange(min(n, len(rows)))
    out = rows.take(idx)
    return {"label": torch.from_numpy(out["label"]), "users": torch.from_numpy(out["users"]),
            "items": torch.from_numpy(out["items"]),
            "fields": {k: torch.from_numpy(v) for k, v in out["fields"].items()}}


def check_click_model(name_or_spec: str | ModelSpec, *, overrides: Sequence[str] = (),
                      pm: PluginManager | None = None) -> ModelReport:
    """Check a click model under the CTR protocol, as :func:`check_model` does for ranking.

    Two runs of ``recframe run model=NAME`` on :data:`SMALL_CTR_RUN` (a small
    ``synthetic_ctr`` click log with a ``hist`` sequence field; then
    ``overrides``), then: both finish ``ok`` with finite AUC/GAUC/LogLoss; the
    model trains on labeled rows (``TrainFormat.LABELED``); the best checkpoint
    loads (``weights_only=True``) into a freshly built, prepared model whose
    ``predict`` returns finite ``[B]`` logits that do not depend on the batch they
    are computed in, and over every test impression reproduces the run's AUC and
    LogLoss; the same seed gives the same logits.
    """
    from recframe.models.base import TrainFormat as Format
    from recframe.runner import build_experiment

    name, pm = _manager_with(name_or_spec, pm)
    if name not in pm.models:
        _fail(f"model {name!r} is not registered; registered models: {pm.models.names()}")
    try:
        cfg = compose(f"model={name}", *SMALL_CTR_RUN, *overrides, pm=pm)
    except Exception as exc:
        raise AssertionError(f"model {name!r}: composing the CTR run config failed: "
                             f"{exc}") from None
    checked = ["config", "runs"]
    with tempfile.TemporaryDirectory(prefix="recframe-check-ctr-") as tmp:
        results, ckpt1 = _run(cfg, Path(tmp) / "run1", pm, name)
        _, ckpt2 = _run(cfg, Path(tmp) / "run2", pm, name)
        if results.get("protocol", {}).get("kind") != "ctr":
            _fail(f"model {name!r}: the run on a click log did not use the CTR protocol")
        exp = build_experiment(cfg, pm)
        model1 = _fresh_model(exp, cfg, _checkpoint_state(ckpt1, name), name,
                              "the run's checkpoint")
        model2 = _fresh_model(exp, cfg, _checkpoint_state(ckpt2, name), name,
                              "the second run's checkpoint")
        if model1.train_format is not Format.LABELED:
            _fail(f"model {name!r}: on labeled data it trains as "
                  f"{model1.train_format.value!r}; a click model trains on the logged rows "
                  f"(TrainFormat.LABELED: extend recframe.api.CTRModel)")
        rows = exp.data.labeled["test"]
        model1.eval()
        model2.eval()
        with torch.no_grad():
            batch = _labeled_batch(rows, len(rows))
            logits = model1.predict(batch)
            if logits.shape != (len(rows),) or not torch.isfinite(logits).all():
                _fail(f"model {name!r}: predict must return finite logits of shape "
                      f"[{len(rows)}], got {tuple(logits.shape)}")
            checked.append("predict")
            half = _labeled_batch(rows, len(rows) // 2)
            if not torch.allclose(model1.predict(half), logits[: len(rows) // 2],
                                  rtol=1e-4, atol=1e-5):
                _fail(f"model {name!r}: a row's logit depends on the batch it is predicted "
                      f"in (eval mode)")
            checked.append("batch-independent")
            values, _, _ = exp.plan.pointwise.compute(batch["users"], logits.double(),
                                                      batch["label"].double())
            for key in ("auc", "logloss"):
                reported = results["metrics"]["test"].get(key)
                got = float(values[key])
                if reported is not None and not math.isclose(got, reported, rel_tol=1e-4,
                                                             abs_tol=1e-6):
                    _fail(f"model {name!r}: the run reported test {key}={reported:.6f} but "
                          f"the model restored from its checkpoint gives {got:.6f}")
            checked.append("restored")
            if not torch.allclose(model2.predict(batch), logits, rtol=1e-4, atol=1e-5):
                _fail(f"model {name!r}: two runs with the same seed predict different logits")
            checked.append("deterministic")
    return ModelReport(name, results, logits, checked)


def _check_audit_metric(name: str, spec: Any, bounded: bool) -> None:
    """An audit metric returns a value (and its interval) from member and non-member
    statistics; the same inputs give the same answer; identical groups are not told
    apart by more than chance allows."""
    from recframe.privacy.audit import AuditInput

    rng = np.random.default_rng(4)
    inp = AuditInput(rng.normal(1.0, 1.0, 60), rng.normal(0.0, 1.0, 50), seed=1)
    out, again = spec.fn(inp, 0), spec.fn(inp, 0)
    if not isinstance(out, dict) or "value" not in out:
        _fail(f"metric {name!r}: an audit metric returns a dict with 'value', got {out!r}")
    if out != again:
        _fail(f"metric {name!r}: differs between two identical audits")
    value = out["value"]
    if not math.isfinite(value) or (bounded and not 0 <= value <= 1):
        _fail(f"metric {name!r}: value {value!r} is not finite or outside [0, 1]")
    ci = out.get("ci95")
    if ci is not None and not ci[0] <= value <= ci[1]:
        _fail(f"metric {name!r}: value {value} outside its interval {ci}")


def check_metric(spec_or_name: str | MetricSpec, *, pm: PluginManager | None = None,
                 bounded: bool = True, n_users: int = 37, n_items: int = 30) -> None:
    """Check a metric on random rankings with every edge case the evaluator produces.

    Runs the metric through :class:`recframe.eval.Evaluator` (per-user metrics
    via ``evaluate_batch``, ``kind="global"`` ones via ``finalize_global``) at
    ``ks = [1, 5, n_items + 7]`` (a K larger than the catalogue) on scores with
    many ties, including users with no relevant item (the value must be finite;
    the built-in metrics return 0), every item relevant, fewer unseen items than
    K, every item seen, and sampled candidates. Checks: one value per user
    (shape ``[B]``) or a scalar for global metrics; finite; in [0, 1] unless
    ``bounded=False``; the same numbers twice; and the same numbers whether the
    ``n_users`` users are evaluated in batches of 5 or all at once.
    """
    name, pm = _manager_with(spec_or_name, pm)
    if name not in pm.metrics:
        _fail(f"metric {name!r} is not registered; registered metrics: {pm.metrics.names()}")
    spec = pm.metrics.get(name)
    if spec.pointwise is not None:
        _check_pointwise_metric(name, spec, bounded)
    if spec.kind == "pointwise":
        return
    if spec.kind == "audit":
        _check_audit_metric(name, spec, bounded)
        return
    if spec.kind not in ("per_user", "global"):
        _fail(f"metric {name!r}: kind must be 'per_user', 'global', 'pointwise' or 'audit', got "
              f"{spec.kind!r}")
    ks = [1, 5, n_items + 7]
    evaluator = Evaluator({name: spec}, ks)
    g = torch.Generator().manual_seed(1)
    evaluator.set_item_features(torch.rand(n_items, 6, generator=g).round())
    popularity = torch.randint(0, 50, (n_items,), generator=g).float()
    for sampled in (False, True):
        what = "sampled candidates" if sampled else "full ranking"
        case = _metric_case(n_users, n_items, seed=2, sampled=sampled)
        whole, whole_g = _run_metric(evaluator, case, n_users, popularity, name,
                                     f"{what}, one batch")
        _check_values(name, whole, bounded, what)
        _check_values(name, whole_g, bounded, what)
        again, again_g = _run_metric(evaluator, case, n_users, popularity, name, what)
        for key in whole:
            if not torch.equal(whole[key], again[key]):
                _fail(f"metric {name!r}: {key} differs between two identical evaluations")
        for key in whole_g:
            if not torch.equal(whole_g[key], again_g[key]):
                _fail(f"metric {name!r}: {key} differs between two identical evaluations")
        small, small_g = _run_metric(evaluator, case, 5, popularity, name,
                                     f"{what}, batches of 5")
        for key in whole:
            if not torch.allclose(whole[key].double(), small[key].double(), atol=1e-6):
                _fail(f"metric {name!r}: {key} depends on the batch size ({what}: batches "
                      f"of 5 vs {n_users}); a user's value may only depend on that user's row")
        for key in whole_g:
            if not torch.allclose(whole_g[key], small_g[key], atol=1e-9):
                _fail(f"metric {name!r}: {key} depends on the batch size ({what})")
    if spec.kind == "global":  # nothing recommended to anyone
        zero = {k: torch.zeros(n_items, dtype=torch.float64) for k in evaluator.ks}
        try:
            empty = evaluator.finalize_global(zero, 0, popularity)
        except Exception as exc:
            raise AssertionError(f"metric {name!r} failed with no evaluated user: "
                                 f"{type(exc).__name__}: {exc}") from exc
        _check_values(name, empty, bounded, "no evaluated user")


def _pointwise_case(seed: int, n: int = 400, n_users: int = 23) -> PointwiseInput:
    g = torch.Generator().manual_seed(seed)
    users = torch.randint(0, n_users, (n,), generator=g)
    logits = (torch.randn(n, generator=g) * 2).round() / 2  # many ties
    labels = (torch.rand(n, generator=g) < torch.sigmoid(logits)).double()
    labels[users == 0] = 1.0  # a user with one class only
    labels[users == 1] = 0.0
    return PointwiseInput.build(users, logits, labels)


def _check_pointwise_metric(name: str, spec: MetricSpec, bounded: bool) -> None:
    """The CTR protocol's form: a 0-d finite value, per-user values ``[U]`` float64 or
    None (NaN allowed where undefined), the same numbers twice and whatever the order
    of the rows."""
    inp = _pointwise_case(3)
    try:
        value, per_user = spec.pointwise(inp)
        again, again_users = spec.pointwise(inp)
    except Exception as exc:
        raise AssertionError(f"metric {name!r} (pointwise) failed: {type(exc).__name__}: "
                             f"{exc}") from exc
    value = torch.as_tensor(value)
    if value.dim() != 0 or not torch.isfinite(value):
        _fail(f"metric {name!r} (pointwise): value must be a finite 0-d tensor, got {value!r}")
    if bounded and not 0.0 <= float(value) <= 1.0:
        _fail(f"metric {name!r} (pointwise): {float(value)} is outside [0, 1]")
    if not torch.equal(value, torch.as_tensor(again)):
        _fail(f"metric {name!r} (pointwise): differs between two identical evaluations")
    if per_user is not None:
        per_user = torch.as_tensor(per_user)
        if per_user.shape != inp.user_index.shape or per_user.dtype != torch.float64:
            _fail(f"metric {name!r} (pointwise): per-user values must be float64 of shape "
                  f"{tuple(inp.user_index.shape)}, got {per_user.dtype} "
                  f"{tuple(per_user.shape)}")
    perm = torch.randperm(len(inp.users), generator=torch.Generator().manual_seed(4))
    shuffled = PointwiseInput.build(inp.users[perm], inp.logits[perm], inp.labels[perm])
    value_s, per_user_s = spec.pointwise(shuffled)
    if not torch.allclose(torch.as_tensor(value_s).double(), value.double(), atol=1e-9):
        _fail(f"metric {name!r} (pointwise): depends on the order of the rows")
    if per_user is not None and not torch.allclose(torch.as_tensor(per_user_s), per_user,
                                                   atol=1e-9, equal_nan=True):
        _fail(f"metric {name!r} (pointwise): per-user values depend on the order of the rows")


# -- data: datasets, preprocessors, splitters -----------------------------------------------


def sample_dataset(n_users: int = 40, n_items: int = 30, *, messy: bool = True,
                   seed: int = 0) -> Dataset:
    """A small deterministic :class:`Dataset` to test data steps on.

    Integer ids, ratings 1-5, per-user increasing timestamps, an ``items``
    frame (``genre_0``, ``genre_1``, ``year``, ``category``) and a ``users``
    frame (``age``, ``segment``), indexed by id. The interaction index labels
    are not ``0..n-1``, so a step that resets the index is caught. With
    ``messy=True`` a few repeated user-item pairs and rows with a NaN rating are
    appended (what ``dedup`` and ``drop_invalid`` are for).
    """
    rng = np.random.default_rng(seed)
    counts = rng.integers(3, min(15, n_items) + 1, size=n_users)
    users = np.repeat(np.arange(n_users), counts)
    items = np.concatenate([rng.choice(n_items, size=c, replace=False) for c in counts])
    ratings = rng.integers(1, 6, size=len(users)).astype("float64")
    timestamps = 1_600_000_000 + np.arange(len(users), dtype="int64") * 60
    frame = pd.DataFrame({USER: users, ITEM: items, RATING: ratings, TIMESTAMP: timestamps})
    if messy:
        dup = frame.sample(n=5, random_state=seed).assign(
            **{TIMESTAMP: lambda f: f[TIMESTAMP] + 30})
        nan = frame.sample(n=3, random_state=seed + 1).assign(**{RATING: np.nan})
        frame = pd.concat([frame, dup, nan], ignore_index=True)
    frame.index = pd.RangeIndex(1000, 1000 + 3 * len(frame), 3)
    item_frame = pd.DataFrame({
        "genre_0": rng.integers(0, 2, n_items), "genre_1": rng.integers(0, 2, n_items),
        "year": rng.integers(1950, 2020, n_items).astype("float64"),
        "category": [f"c{i % 4}" for i in range(n_items)],
    }, index=pd.Index(np.arange(n_items), name=ITEM))
    user_frame = pd.DataFrame({
        "age": rng.integers(15, 70, n_users), "segment": [f"s{u % 3}" for u in range(n_users)],
    }, index=pd.Index(np.arange(n_users), name=USER))
    return Dataset(frame, items=item_frame, users=user_frame, name="sample",
                   source=f"recframe.testing.sample_dataset(seed={seed})")


def _call(who: str, what: str, fn: Any, *args: Any) -> Any:
    """``fn(*args)``; any exception becomes an AssertionError naming ``who``."""
    try:
        return fn(*args)
    except Exception as exc:
        raise AssertionError(f"{who} failed {what}: {type(exc).__name__}: {exc}") from exc


def _snapshot(ds: Dataset) -> dict[str, pd.DataFrame | None]:
    return {k: None if getattr(ds, k) is None else getattr(ds, k).copy(deep=True)
            for k in ("interactions", "items", "users")}


def _assert_unchanged(before: Mapping[str, pd.DataFrame | None], ds: Dataset, who: str) -> None:
    for key, frame in before.items():
        now = getattr(ds, key)
        try:
            if frame is None:
                assert now is None
            else:
                pd.testing.assert_frame_equal(now, frame)
        except AssertionError as exc:
            raise AssertionError(f"{who} modified its input's {key} frame; it must be pure "
                                 f"(copy, or build new frames, e.g. df[mask], df.assign())"
                                 ) from exc


def _assert_same_dataset(a: Dataset, b: Dataset, who: str) -> None:
    for key in ("interactions", "items", "users"):
        x, y = getattr(a, key), getattr(b, key)
        try:
            if x is None or y is None:
                assert x is None and y is None
            else:
                pd.testing.assert_frame_equal(x, y)
        except AssertionError as exc:
            raise AssertionError(f"{who} is not deterministic: two calls give different "
                                 f"{key} frames") from exc


@contextmanager
def _captured_logs() -> Iterator[list[logging.LogRecord]]:
    records: list[logging.LogRecord] = []

    class _Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    root = logging.getLogger()
    handler = _Keep(logging.DEBUG)
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield records
    finally:
        root.removeHandler(handler)
        root.setLevel(old)


def _step_config(name: str, cfg: Any) -> DictConfig:
    node = {} if cfg is None else (
        OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else dict(cfg))
    node.setdefault("name", name)
    return OmegaConf.create(node)


def check_preprocessor(name_or_spec: str | PreprocessorSpec, cfg: Any = None, *,
                       dataset: Dataset | None = None,
                       pm: PluginManager | None = None,
                       rewrites_ids: bool = False) -> Dataset:
    """Check a preprocessing step built from ``cfg`` (one ``preprocess`` entry).

    On ``dataset`` (default: :func:`sample_dataset`, with repeated pairs and NaN
    ratings): the step returns a :class:`Dataset` with at least ``user_id`` and
    ``item_id``; leaves its input unchanged (pure); gives the same output twice
    (deterministic); surviving rows keep their original index labels (unique,
    a subset of the input's, with the same user and item); and when it drops
    rows it logs a message mentioning how many. A step that maps ids on
    purpose (``rewrites_ids=True``, e.g. ``anonymize``) must instead map equal
    raw ids to equal new ids and distinct ones to distinct ones. Returns the output.
    """
    name, pm = _manager_with(name_or_spec, pm)
    if name not in pm.preprocessors:
        _fail(f"preprocessor {name!r} is not registered; registered: "
              f"{pm.preprocessors.names()}")
    spec = pm.preprocessors.get(name)
    who = f"preprocessor {name!r}"
    ds = dataset if dataset is not None else sample_dataset()
    before = _snapshot(ds)
    step_cfg = _step_config(name, cfg)
    step = _call(who, f"to build from {OmegaConf.to_container(step_cfg)}", spec.build, step_cfg)
    if not callable(step):
        _fail(f"{who}: build(cfg) must return a callable Dataset -> Dataset")
    with _captured_logs() as records:
        out = _call(who, f"on the dataset {ds.source or ds.name!r} (pass dataset= to use "
                    f"your own)", step, ds)
    _assert_unchanged(before, ds, who)
    if not isinstance(out, Dataset):
        _fail(f"{who} must return a recframe.api.Dataset, got {type(out).__name__}")
    missing = [c for c in (USER, ITEM) if c not in out.interactions.columns]
    if missing:
        _fail(f"{who} dropped the required column(s) {missing}")
    _assert_same_dataset(out, spec.build(_step_config(name, cfg))(ds), who)
    index = out.interactions.index
    if not index.is_unique or not index.isin(ds.interactions.index).all():
        _fail(f"{who}: surviving rows must keep their original index labels (unique, a "
              f"subset of the input's); do not reset_index()")
    same = ds.interactions.loc[index, [USER, ITEM]]
    if rewrites_ids:
        for col in (USER, ITEM):
            pairs = pd.DataFrame({"raw": same[col].to_numpy(),
                                  "new": out.interactions[col].to_numpy()}).drop_duplicates()
            if pairs["raw"].duplicated().any() or pairs["new"].duplicated().any():
                _fail(f"{who}: the {col} mapping is not one-to-one")
    elif not (same.to_numpy() == out.interactions[[USER, ITEM]].to_numpy()).all():
        _fail(f"{who}: rows kept their index label but not their user/item ids")
    dropped = len(ds.interactions) - len(out.interactions)
    if dropped > 0:
        number = re.compile(rf"(?<![\d.]){dropped}(?![\d.])")
        if not any(number.search(r.getMessage()) for r in records):
            _fail(f"{who} dropped {dropped} rows but logged no message mentioning "
                  f"{dropped}; log e.g. logging.getLogger(__name__).info('dropped %d of %d "
                  f"rows (why)', ...)")
    return out


def check_splitter(name_or_spec: str | SplitterSpec, cfg: Any, *,
                   dataset: Dataset | None = None, pm: PluginManager | None = None) -> Split:
    """Check a splitter built from ``cfg`` (the ``split`` node).

    On ``dataset`` (default: :func:`sample_dataset` without messy rows): the
    result is a :class:`Split`; its train/valid/test interactions partition
    the input (index labels disjoint, together exactly the input's, rows
    unchanged); feature frames are passed on; the input is unchanged; two calls
    agree. Returns the split.
    """
    name, pm = _manager_with(name_or_spec, pm)
    if name not in pm.splitters:
        _fail(f"splitter {name!r} is not registered; registered: {pm.splitters.names()}")
    who = f"splitter {name!r}"
    ds = dataset if dataset is not None else sample_dataset(messy=False)
    before = _snapshot(ds)
    splitter = _call(who, "to build from its config", pm.splitters.get(name).build, cfg)
    split = _call(who, f"on the dataset {ds.source or ds.name!r}", splitter, ds)
    _assert_unchanged(before, ds, who)
    if not isinstance(split, Split):
        _fail(f"{who} must return a recframe.api.Split, got {type(split).__name__}")
    labels = [part.interactions.index for part in split.parts().values()]
    joined = labels[0].append(labels[1:])
    if not joined.is_unique:
        _fail(f"{who}: the parts overlap (an interaction is in two parts)")
    if len(joined) != len(ds.interactions) or not joined.isin(ds.interactions.index).all():
        _fail(f"{who}: the parts must hold exactly the input's interactions with their index "
              f"labels: got {len(joined)} rows of {len(ds.interactions)}")
    for part_name, part in split.parts().items():
        original = ds.interactions.loc[part.interactions.index, [USER, ITEM]]
        if not (original.to_numpy() == part.interactions[[USER, ITEM]].to_numpy()).all():
            _fail(f"{who}: {part_name} rows changed their user/item ids")
        for key in ("items", "users"):
            if (getattr(ds, key) is None) != (getattr(part, key) is None):
                _fail(f"{who}: {part_name} lost the {key} feature frame")
    again = pm.splitters.get(name).build(cfg)(ds)
    for part_name, part in split.parts().items():
        if not part.interactions.index.equals(again.parts()[part_name].interactions.index):
            _fail(f"{who} is not deterministic: {part_name} differs between two calls")
    return split


def check_dataset(name_or_spec: str | DatasetSpec, cfg: Any, *,
                  pm: PluginManager | None = None) -> Dataset:
    """Check a data source loaded with ``cfg`` (the ``dataset`` node).

    The result is a :class:`Dataset` with ``user_id`` and ``item_id`` columns,
    at least one row and no null id; ``items`` / ``users`` feature frames, if
    any, are indexed by unique ``item_id`` / ``user_id``; two loads give equal
    frames. Returns the dataset.
    """
    name, pm = _manager_with(name_or_spec, pm)
    if name not in pm.datasets:
        _fail(f"dataset {name!r} is not registered; registered: {pm.datasets.names()}")
    who = f"dataset {name!r}"
    load = pm.datasets.get(name).load
    ds = _call(who, "to load", load, cfg)
    if not isinstance(ds, Dataset):
        _fail(f"{who}: load(cfg) must return a recframe.api.Dataset, got {type(ds).__name__}")
    frame = ds.interactions
    if len(frame) == 0:
        _fail(f"{who} loaded no interactions")
    for col in (USER, ITEM):
        nulls = int(frame[col].isna().sum())
        if nulls:
            _fail(f"{who}: {nulls} null value(s) in {col}; drop or repair them in the loader")
    for key, id_col in (("items", ITEM), ("users", USER)):
        features = getattr(ds, key)
        if features is None:
            continue
        if not isinstance(features, pd.DataFrame):
            _fail(f"{who}: {key} must be a pandas DataFrame, got {type(features).__name__}")
        if features.index.name != id_col:
            _fail(f"{who}: the {key} frame must be indexed by {id_col!r} (index name is "
                  f"{features.index.name!r}); use frame.set_index({id_col!r})")
        if not features.index.is_unique:
            _fail(f"{who}: the {key} frame has repeated {id_col} values")
    _assert_same_dataset(ds, load(cfg), who)
    return ds


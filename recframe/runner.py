"""One experiment run: resolve, prepare data, train with Lightning, test, write results."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from omegaconf import DictConfig, OmegaConf, open_dict

from recframe import faults
from recframe.data.item_text import TextSettings
from recframe.data.ooc.engine import data_settings
from recframe.errors import ConfigError, RecframeError
from recframe.eval.cold import COLD, COLD_RANKINGS, WARM, ColdStart
from recframe.eval.ctr import PointwiseEvaluator
from recframe.eval.metric_config import resolve_metrics
from recframe.eval.protocol import candidate_policy, candidate_sampler
from recframe.models.base import RecModel, ensure_train_format, sequence_rows
from recframe.models.item_text import apply_item_text, item_text_mode, with_item_text_field
from recframe.models.size import parameter_counts, training_compute
from recframe.params import model_build_config
from recframe.pipeline import (
    Plan,
    PreparedData,
    check_compatible,
    fingerprint,
    pointwise_evaluator,
    prepare,
    ranking_evaluator,
    resolve,
)
from recframe.plugin.manager import PluginManager, default_manager
from recframe.privacy import build_private
from recframe.privacy.report import audit_record, privacy_record
from recframe.results import (
    CALIBRATION_FILE,
    PER_USER_FILE,
    RESULTS_FILE,
    git_sha,
    peak_memory_gib,
    versions,
    write_json,
    write_parquet,
)
from recframe.run_checks import check_callbacks, check_trainer, check_validation, positive_int
from recframe.train.checkpoint_io import AtomicCheckpointIO
from recframe.train.datamodule import RecDataModule
from recframe.train.execution import resolve_steps_per_execution
from recframe.train.optim import build_optimizer, check_optimizer
from recframe.train.task import RecTask

log = logging.getLogger(__name__)

# Expected for closed-form models, which train without an optimizer or a loss.
for _msg in (".*`configure_optimizers` returned `None`.*", ".*`training_step` returned `None`.*",
             ".*isinstance\\(treespec, LeafSpec\\)` is deprecated.*"):
    warnings.filterwarnings("ignore", message=_msg)


def _callbacks(cfg: DictConfig, run_dir: Path, monitor: str) -> list[pl.Callback]:
    callbacks: list[pl.Callback] = []
    for name, node in (cfg.get("callbacks") or {}).items():
        if node is None:
            continue
        kwargs: dict[str, Any] = {}
        target = str(node.get("_target_", ""))
        if target.endswith(("ModelCheckpoint", "LastCheckpoint")) and node.get("dirpath") is None:
            kwargs["dirpath"] = str(run_dir / "checkpoints")
        try:
            callbacks.append(instantiate(node, **kwargs))
        except Exception as exc:
            raise ConfigError(f"callbacks.{name}: cannot instantiate {target}: {exc}") from exc
    if sys.stdout.isatty():
        from lightning.pytorch.callbacks import RichProgressBar

        callbacks.append(RichProgressBar())
    return callbacks


def _loggers(cfg: DictConfig, run_dir: Path, sweep_name: str | None = None) -> list[Any]:
    loggers = []
    for name, node in (cfg.get("logger") or {}).items():
        if node is None:
            continue
        target = str(node.get("_target_", ""))
        kwargs: dict[str, Any] = {}
        if node.get("save_dir") is None:
            kwargs["save_dir"] = str(run_dir)
        if target.endswith("WandbLogger"):
            os.environ.setdefault("WANDB_MODE", "offline")  # never online unless asked
            os.environ.setdefault("WANDB_SILENT", "true")
            if sweep_name and node.get("group") is None:
                kwargs["group"] = sweep_name
        try:
            loggers.append(instantiate(node, **kwargs))
        except Exception as exc:
            raise ConfigError(f"logger.{name}: cannot instantiate {target}: {exc}") from exc
    return loggers


def _trainer(cfg: DictConfig, kwargs: dict[str, Any]) -> pl.Trainer:
    """The Lightning Trainer of ``cfg.trainer``; a bad setting is a ConfigError."""
    check_trainer(cfg.trainer)
    target = str(cfg.trainer.get("_target_", ""))
    try:
        trainer = instantiate(cfg.trainer, **kwargs)
    except Exception as exc:
        cause = exc.__cause__ or exc
        raise ConfigError(f"trainer: cannot build {target or 'the trainer'} from the trainer.* "
                          f"settings: {type(cause).__name__}: {cause}") from exc
    if not isinstance(trainer, pl.Trainer):
        raise ConfigError(f"trainer._target_={target!r} is not a lightning.pytorch.Trainer; "
                          f"use trainer=cpu, gpu or ddp")
    return trainer


def _finish_wandb(loggers: list[Any]) -> None:
    for lg in loggers:
        if type(lg).__name__ == "WandbLogger":
            try:
                import wandb

                wandb.finish()
            except Exception:  # pragma: no cover
                log.exception("wandb.finish() failed")


#: W871 warnings given in this process (the optimizer is built more than once per run)
_WARNED_OPTIM: set[tuple[str, Any]] = set()


def _optim_overrides(cfg: DictConfig, command_line: set[str] | None = None
                     ) -> dict[str, Any]:
    """A model config may carry its own tuned defaults for these optimizer keys; an
    ``optim.<key>`` given on the command line that they override is a warning (W871)."""
    overrides = {k: cfg.model[k] for k in ("lr", "weight_decay")
                 if cfg.model.get(k) is not None}
    given_keys = _command_line_keys() if command_line is None else command_line
    for key in given_keys & {f"optim.{k}" for k in overrides}:
        name = key.split(".", 1)[1]
        given = (cfg.get("optim") or {}).get(name)
        if given != overrides[name] and (key, given) not in _WARNED_OPTIM:
            _WARNED_OPTIM.add((key, given))
            warnings.warn(
                f"{key}={given} is not used: model {cfg.model.get('name')!r} sets its own "
                f"model.{name}={overrides[name]}, which takes precedence. Set "
                f"model.{name}={given} instead (W871).", UserWarning, stacklevel=1)
    return overrides


def _command_line_keys() -> set[str]:
    """The keys overridden on the command line of this Hydra run (empty outside one)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        task = HydraConfig.get().overrides.task
    except (ImportError, ValueError):  # not inside a Hydra app (the Python API, tests)
        return set()
    return {o.split("=", 1)[0].lstrip("+~") for o in task if "=" in o}


def build_task(plan: Plan, cfg: DictConfig, data: Any, model: Any,
               pointwise: PointwiseEvaluator | None = None,
               cold: ColdStart | None = None) -> RecTask:
    optim_cfg = cfg.get("optim")
    overrides = _optim_overrides(cfg)

    def optimizer_factory(params: Any) -> torch.optim.Optimizer:
        return build_optimizer(optim_cfg, params, overrides)

    popularity = torch.from_numpy(data.item_popularity()).float()
    if pointwise is None and "item_features" in plan.evaluator.needs:
        features = data.item_feature_matrix()
        if features is None:
            raise ConfigError(
                "a metric in metrics.names needs item features (e.g. ild), but dataset "
                f"{data.info.name!r} has no numeric item features; remove the metric."
            )
        plan.evaluator.set_item_features(torch.from_numpy(features))
    return RecTask(model, plan.evaluator, optimizer_factory if optim_cfg else None,
                   monitor=plan.monitor, item_popularity=popularity, pointwise=pointwise,
                   cold=cold)


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def _data_record(cfg: DictConfig, prepared: Any) -> dict[str, Any]:
    """What both protocols record about the data: source, preprocessing, split, fields."""
    return {
        "dataset": {
            "name": cfg.dataset.name,
            "raw_fingerprint": prepared.raw_meta.get("fingerprint"),
            # "dataset": given by the dataset plugin; "content": the loaded frames' hash
            "raw_fingerprint_source": prepared.raw_meta.get("fingerprint_source"),
        },
        "preprocess": _plain(cfg.get("preprocess")) or [],
        "split": OmegaConf.to_container(cfg.split, resolve=True),
        # pandas (in memory), duckdb (out of core) or ray (cluster), why, the shard directory
        "data_engine": {**prepared.raw_meta.get("data_engine", {}), **(
            {"shards": prepared.raw_meta["shards"]} if "shards" in prepared.raw_meta else {})},
        "data_fingerprint": fingerprint(prepared.data),
        "counts": prepared.counts,
        "fields": [dataclasses.asdict(f) for f in prepared.data.info.fields],
    }


def eval_user_limits(cfg: DictConfig) -> dict[str, int | None]:
    """``evaluation.valid_users`` / ``test_users``: a seeded sample size or None (all)."""
    evaluation = cfg.get("evaluation") or {}
    limits: dict[str, int | None] = {}
    for part in ("valid", "test"):
        value = evaluation.get(f"{part}_users")
        limits[part] = None if value is None else positive_int(value,
                                                               f"evaluation.{part}_users")
    return limits


def protocol_record(cfg: DictConfig, plan: Plan, prepared: Any,
                    cold: ColdStart | None = None) -> dict[str, Any]:
    if plan.protocol == "ctr":
        return ctr_protocol_record(cfg, plan, prepared)
    record = {
        "kind": "ranking",
        **_data_record(cfg, prepared),
        "masking": {"valid": "train items masked", "test": "train and valid items masked"},
        "evaluated_users": "users with at least one held-out item in the part",
        "evaluated_users_sample": eval_user_limits(cfg),
        "metrics": {
            name: {"description": spec.description, "ks": plan.evaluator.ks,
                   "higher_is_better": spec.higher_is_better, "kind": spec.kind}
            for name, spec in plan.evaluator.metrics.items()
        },
        "monitor": f"val/{plan.monitor}",
    }
    if cold is not None:
        record["cold_start"] = cold.record(prepared.data)
    return record


def cold_start_setup(cfg: DictConfig, plan: Plan, data: Any, model: Any) -> ColdStart | None:
    """The cold-start views of a ranking run on a cold split (recframe.eval.cold), with
    the monitor moved to the warm view (so a model that cannot score cold targets still
    early-stops, and every model is selected on the same targets); None otherwise.
    A view's key as ``metrics.monitor`` on an ordinary split is a ConfigError."""
    evaluation = cfg.get("evaluation") or {}
    ranking = str(evaluation.get("cold_ranking", "all"))
    if ranking not in COLD_RANKINGS:
        raise ConfigError(
            f"evaluation.cold_ranking must be one of {list(COLD_RANKINGS)} (all: every item "
            f"ranked in the cold and warm views; own: each view ranks its own kind of item "
            f"alone), got {ranking!r}")
    cold = ColdStart.from_data(data, model, plan.model.name, ranking)
    view = plan.monitor.partition("/")[0] if "/" in plan.monitor else ""
    if cold is None:
        if view:
            raise ConfigError(
                f"metrics.monitor={plan.monitor}: the {view}/ view exists only under a "
                f"cold-start split (split=cold_items or split=cold_users); monitor "
                f"{plan.monitor.partition('/')[2]} instead.")
        return None
    if view == COLD and not cold.applicable:
        raise ConfigError(
            f"metrics.monitor={plan.monitor}: {cold.reason}; monitor "
            f"{WARM}/{plan.monitor.partition('/')[2]} (the default under a cold split).")
    if not view:
        plan.monitor = f"{WARM}/{plan.monitor}"
        with open_dict(cfg):
            cfg.metrics.monitor = plan.monitor
    log.info("cold-start split (%s): %d cold of %d; early stopping on val/%s", cold.kind,
             int(cold.cold.sum()), len(cold.cold), plan.monitor)
    if not cold.applicable:
        log.warning("%s", cold.reason)
    return cold


def ctr_protocol_record(cfg: DictConfig, plan: Plan, prepared: Any) -> dict[str, Any]:
    """What a CTR run measured: labeled rows scored pointwise, fields fitted on train."""
    plan_metrics = plan.pointwise.metrics if plan.pointwise is not None else {}
    return {
        "kind": "ctr",
        **_data_record(cfg, prepared),
        "scored": "every labeled row (impression) of the part, pointwise",
        "fitted_on": "vocabularies and normalization statistics from the train rows only",
        "metrics": {
            name: {"description": spec.description, "higher_is_better": spec.higher_is_better}
            for name, spec in plan_metrics.items()
        },
        "monitor": f"val/{plan.monitor}",
    }


def bayes_optimal_metrics(pointwise: PointwiseEvaluator, data: Any, true_probability: Any
                          ) -> dict[str, dict[str, float]]:
    """The run's CTR metrics of the true click probabilities on the same valid/test
    rows: what no model can beat in expectation (data from a simulator that knows
    them, e.g. ``synthetic_ctr``, which puts them in ``meta["true_probability"]``,
    indexed by the rows' index labels)."""
    p = np.asarray(true_probability, dtype=np.float64)
    out = {}
    for part in ("valid", "test"):
        rows = data.labeled.get(part)
        if rows is None or rows.row_index is None or not len(rows):
            continue
        q = np.clip(p[rows.row_index.astype(np.int64)], 1e-12, 1 - 1e-12)
        values, _, _ = pointwise.compute(torch.from_numpy(rows.users),
                                         torch.from_numpy(np.log(q) - np.log1p(-q)),
                                         torch.from_numpy(rows.labels).double())
        out[part] = {k: float(v) for k, v in values.items()}
    return out


def resume_checkpoint(cfg: DictConfig, run_dir: Path) -> Path | None:
    """The checkpoint to resume from when ``resume=<run dir>`` is set, else None."""
    resume = cfg.get("resume")
    if not resume:
        return None
    last = Path(str(resume)) / "checkpoints" / "last.ckpt"
    if not last.exists() and Path(str(resume)).is_dir():
        # killed before its first checkpoint: nothing to continue, start over in place
        log.warning("resume=%s: no checkpoint yet (the run stopped before its first epoch "
                    "ended); training starts from the beginning", resume)
        return None
    if not last.exists():
        raise ConfigError(
            f"resume={resume}: no checkpoint at {last}. Resume needs a run dir whose "
            f"training saved at least one epoch (callbacks=default keeps last.ckpt)."
        )
    return last


def rerank_node(cfg: DictConfig) -> Any | None:
    """The ``rerank`` config node when a stage is asked for (``rerank=llm``), else None."""
    node = cfg.get("rerank")
    if node is None or str(node.get("name", "none")) == "none":
        return None
    if str(node.get("name")) != "llm":
        raise ConfigError(f"rerank.name={node.get('name')!r}: the stages are none and llm "
                          f"(rerank=llm)")
    return node


def check_rerank(cfg: DictConfig, pm: PluginManager) -> Any | None:
    """Validate the stage's settings and backend name before any training."""
    from recframe.rerank.settings import read_settings

    node = rerank_node(cfg)
    if node is not None:
        spec = pm.llm_backends.get(read_settings(node).backend, key="rerank.backend")
        if spec.check is not None:
            spec.check(node)
    return node


def _is_rank_zero() -> bool:
    return all(int(os.environ.get(v, "0")) == 0 for v in ("LOCAL_RANK", "NODE_RANK"))


@dataclass
class Experiment:
    """Everything built from a config before training: data, model, task, data module."""

    plan: Plan
    prepared: PreparedData
    model: Any
    task: RecTask
    datamodule: RecDataModule
    candidates: dict[str, Any]
    #: ``RecTask.private`` (recframe.privacy): DP-SGD or a private closed-form fit
    private: Any = None

    @property
    def data(self) -> Any:
        return self.prepared.data


def build_experiment(cfg: DictConfig, pm: PluginManager | None = None) -> Experiment:
    """Resolve ``cfg``, seed everything, prepare the data and build model, task and data."""
    pm = pm or default_manager()
    plan = resolve(cfg, pm)
    check_optimizer(cfg.get("optim"), _optim_overrides(cfg))
    if cfg.get("trainer") is not None:
        check_trainer(cfg.trainer)
    candidates = candidate_policy(cfg.evaluation)
    pl.seed_everything(int(cfg.get("seed", 0)), workers=True, verbose=False)
    prepared = prepare(cfg, plan)
    data = prepared.data
    check_compatible(plan.model, data, (pm.models.get(n) for n in pm.models.names()))
    protocol = plan.protocol
    if protocol == "auto":
        protocol = "ctr" if data.info.has_labels else "ranking"
    if protocol == "ctr" and not data.info.has_labels:
        raise ConfigError(
            f"evaluation.protocol=ctr scores labeled impressions, but dataset "
            f"{data.info.name!r} has no `label` column; use a click log (e.g. "
            f"dataset=ml-100k-ctr) or evaluation=full.")
    pointwise = pointwise_evaluator(cfg, pm) if protocol == "ctr" else None
    if pointwise is not None:
        plan.protocol, plan.pointwise = "ctr", pointwise
        plan.monitor = pointwise.check_key(
            str(cfg.metrics.monitor), "metrics.monitor")
    else:
        plan.protocol = "ranking"
        if plan.evaluator is None:  # names CTR metrics: the ranking evaluator says why not
            plan.evaluator = ranking_evaluator(
                cfg, {n: s for n, s in resolve_metrics(cfg.metrics.names, pm.metrics).items()
                      if s.kind != "audit"})
    text_mode, text_settings = item_text_mode(cfg.model), TextSettings.from_config(cfg.get("text"))
    if text_mode == "field":  # a click model sizes its layers from the fields: add it first
        prepared.data = data = with_item_text_field(data, text_settings)
    model = build_model(plan, data, cfg)
    ensure_train_format(model, plan.model.name)
    apply_item_text(model, text_mode, text_settings, data, plan.model.name)
    if pointwise is not None and type(model).predict is RecModel.predict:
        raise ConfigError(
            f"model {plan.model.name!r} ranks items but cannot predict the click probability "
            f"of a logged impression, which the CTR protocol scores. Use a click model "
            f"(lr, fm, deepfm, dcnv2, autoint, din, mlp_ctr), or rank this one on the same "
            f"split with evaluation.protocol=ranking.")
    cold = cold_start_setup(cfg, plan, data, model) if plan.protocol == "ranking" else None
    task = build_task(plan, cfg, data, model, pointwise, cold)
    datamodule = RecDataModule(
        data,
        model.train_format,
        batch_size=positive_int(getattr(model, "train_batch_size", None)
                                 or cfg.model.get("batch_size", 1024), "model.batch_size"),
        eval_batch_size=positive_int(cfg.evaluation.batch_size, "evaluation.batch_size"),
        num_negatives=positive_int(getattr(model, "num_negatives", 1), "model.num_negatives"),
        seed=int(cfg.get("seed", 0)),
        num_workers=int(cfg.get("num_workers", 0)),
        max_seq_len=int(getattr(model, "max_seq_len", 0)),
        sequence_rows=sequence_rows(model),
        candidates=candidate_sampler(candidates, data.info.n_items, data.item_popularity()),
        protocol=plan.protocol,
        streaming=plan.engine in ("duckdb", "ray") and bool(data_settings(cfg)["streaming"]),
        eval_users=eval_user_limits(cfg),
    )
    if plan.protocol == "ctr":
        datamodule.eval_batch_size = int(cfg.evaluation.get("row_batch_size", 8192))
    private = build_private(plan.privacy, model, data, seed=int(cfg.get("seed", 0)),
                            max_epochs=int(cfg.trainer.get("max_epochs") or 1),
                            model_name=plan.model.name)
    if private is not None:
        task.private = private
        if hasattr(private, "batches"):  # DP-SGD: Poisson-sampled users per step
            datamodule.train_set = private.batches
    return Experiment(plan, prepared, model, task, datamodule, candidates, private)


def build_model(plan: Plan, data: Any, cfg: DictConfig) -> Any:
    """``plan.model.build``; a model whose settings make torch or numpy fail while
    building it (a negative ``init_std``, a size beyond memory) is a ConfigError naming
    the model and the cause, not a traceback. Models check their own keys first (a
    ConfigError of theirs passes unchanged)."""
    try:
        return plan.model.build(data.info, model_build_config(cfg.model))
    except RecframeError:
        raise
    except (TypeError, ValueError, RuntimeError, OverflowError, MemoryError) as exc:
        raise ConfigError(
            f"model {plan.model.name!r} cannot be built from its settings (model.*): "
            f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}. Check the model.* "
            f"values against conf/model/{plan.model.name}.yaml.") from exc


def per_user_frame(exp: Experiment) -> Any:
    """The test per-user values with raw user ids, or None before testing. Under the
    CTR protocol a user with no train rows has index >= n_users and no raw id here:
    their ``user_id`` reads ``unseen-<k>``."""
    if exp.task.test_per_user is None:
        return None
    frame = exp.task.test_per_user.copy()
    index = frame["user"].to_numpy()
    known = index < len(exp.data.user_ids)
    ids = np.empty(len(index), dtype=object)
    ids[known] = exp.data.user_ids[index[known]].astype(str)
    ids[~known] = np.char.add("unseen-", (index[~known] - len(exp.data.user_ids)).astype(str))
    frame.insert(1, "user_id", ids)
    return frame


def evaluate_checkpoint(cfg: DictConfig, checkpoint: Path | str,
                        pm: PluginManager | None = None) -> tuple[dict[str, float], Any]:
    """Test a saved checkpoint in this process (one device): metrics and per-user frame.

    Used to check that a distributed evaluation reports exactly what a single
    process reports for the same weights.
    """
    exp = build_experiment(cfg, pm)
    exp.model.prepare(exp.data)  # fitted weights and buffers come from the checkpoint
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, use_distributed_sampler=False)
    trainer.test(exp.task, datamodule=exp.datamodule, ckpt_path=str(checkpoint), verbose=False,
                 weights_only=True)
    return exp.task.test_metrics, per_user_frame(exp)


def run_experiment(cfg: DictConfig, run_dir: Path | str, pm: PluginManager | None = None,
                   sweep_name: str | None = None) -> dict[str, Any]:
    """Run one experiment and write ``results.json`` and ``per_user.parquet`` to ``run_dir``.

    On any failure a ``results.json`` with ``status: failed`` and the error is
    written before the exception propagates. ``sweep_name`` groups the jobs of
    one multirun (the wandb group).
    """
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise faults.output_error(exc, run_dir) from exc
    started = time.time()
    results: dict[str, Any] = {
        "status": "running",
        "run_dir": str(run_dir),
        "config": OmegaConf.to_container(cfg, resolve=False),
        "versions": versions(),
        "git_sha": git_sha(),
        # which GPUs this job could see (gpu_round_robin sets it per sweep job)
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }
    loggers: list[Any] = []
    try:
        results["config"] = OmegaConf.to_container(cfg, resolve=True)
        pm = pm or default_manager()
        stage = check_rerank(cfg, pm)
        exp = build_experiment(cfg, pm)
        check_validation(cfg, exp)
        check_callbacks(cfg, exp.plan)
        if stage is not None:
            from recframe.rerank.stage import check_applies, check_prompts_fit

            check_applies(exp)
            check_prompts_fit(stage, exp, pm)  # a context too small fails before training
        plan, prepared, task, datamodule = exp.plan, exp.prepared, exp.task, exp.datamodule
        results["protocol"] = protocol_record(cfg, plan, prepared, task.cold)
        results["protocol"]["candidates"] = exp.candidates
        loggers = _loggers(cfg, run_dir, sweep_name)
        callbacks = _callbacks(cfg, run_dir, plan.monitor)
        if hasattr(exp.private, "training_step"):
            # DP-SGD: the planned steps all run and the last weights are tested, so no
            # validation result chooses the released model (docs/privacy.md)
            callbacks = [c for c in callbacks if not isinstance(c, EarlyStopping)]
        trainer_kwargs: dict[str, Any] = {
            "callbacks": callbacks,
            "logger": loggers or False,
            "default_root_dir": str(run_dir),
            "use_distributed_sampler": False,
            "enable_progress_bar": sys.stdout.isatty(),
        }
        if task.is_closed_form:
            trainer_kwargs["max_epochs"] = 1
        if not cfg.trainer.get("plugins"):  # checkpoints: temp file + rename, coded errors
            trainer_kwargs["plugins"] = [AtomicCheckpointIO()]
        trainer: pl.Trainer = _trainer(cfg, trainer_kwargs)
        steps = 1 if hasattr(exp.private, "training_step") else resolve_steps_per_execution(
            cfg.get("steps_per_execution", 1), trainer, task.is_closed_form)
        task.use_steps_per_execution(steps)
        results["steps_per_execution"] = steps
        # settings the model chose from the data (``auto`` config values)
        results["data_choices"] = getattr(exp.model, "data_choices", None) or {}
        # the item-text stage of a text-enhanced model (mode, encoder, coverage, seconds)
        results["item_text"] = getattr(exp.model, "item_text_record", None)
        # parameters, embedding tables apart (scaling curves read non_embedding_parameters)
        results["model_size"] = parameter_counts(exp.model)

        resume_from = resume_checkpoint(cfg, run_dir)
        if cfg.get("resume"):  # temp files of the killed attempt: never read, now removed
            faults.remove_stale_temps(run_dir)
        results["resumed_from"] = str(resume_from) if resume_from else None
        t = time.perf_counter()
        trainer.fit(task, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
        fit_seconds = time.perf_counter() - t
        t = time.perf_counter()
        checkpoint = next((c for c in trainer.callbacks if isinstance(c, ModelCheckpoint)), None)
        ckpt = checkpoint.best_model_path if checkpoint is not None else ""
        ckpt = ckpt or None  # no best checkpoint: test the final weights
        if hasattr(exp.private, "training_step"):
            ckpt = None  # DP-SGD: the last weights (all accounted steps), not the best
        trainer.test(task, datamodule=datamodule, ckpt_path=ckpt, verbose=False,
                     weights_only=True)
        eval_seconds = time.perf_counter() - t

        best_epoch, valid_metrics = task.best_validation()
        if task.cold is not None and not task.cold.applicable:
            results["not_applicable"] = {"metrics": [k for k, v in task.test_metrics.items()
                                                     if v is None],
                                         "reason": task.cold.reason}
        results.update({
            "status": "ok",
            "metrics": {"valid": valid_metrics, "test": task.test_metrics},
            "best_epoch": best_epoch,
            "epochs_run": trainer.current_epoch if not task.is_closed_form else 1,
            "best_checkpoint": ckpt,
            "world_size": trainer.world_size,
            "timings": {
                **{k: round(v, 4) for k, v in prepared.timings.items()},
                "fit": round(fit_seconds, 4),
                "closed_form_fit": round(task.fit_seconds, 4),
                # training only (validation and checkpointing excluded)
                "train_seconds": round(sum(task.epoch_seconds), 4),
                "seconds_per_epoch": round(
                    sum(task.epoch_seconds) / max(len(task.epoch_seconds), 1), 4),
                "validation_seconds_per_epoch": round(
                    sum(task.validation_seconds) / max(len(task.validation_seconds), 1), 4),
                # the whole trainer.test call, and its loop alone (batches + metrics)
                "evaluate": round(eval_seconds, 4),
                "test_loop": round(task.test_loop_seconds, 4),
            },
        })
        compute = training_compute(exp.model, results["model_size"])
        if compute is not None:
            results["training_compute"] = compute
        if exp.private is not None:
            results["privacy"] = privacy_record(exp.private)
        if "k_anonymity" in prepared.raw_meta:
            results["k_anonymity"] = prepared.raw_meta["k_anonymity"]
        if plan.audit:
            audit = audit_record(plan.audit, exp, int(cfg.get("seed", 0)))
            results.setdefault("privacy", {"name": "none"})["audit"] = audit
            # next to the test metrics, under their own key (no cut-off, not per user)
            results["metrics"]["audit"] = audit["metrics"]
        if plan.pointwise is not None and "true_probability" in prepared.raw_meta:
            results["bayes_optimal"] = bayes_optimal_metrics(
                plan.pointwise, exp.data, prepared.raw_meta["true_probability"])
        record = getattr(exp.model, "run_record", None)
        record = record() if callable(record) else None
        if record is not None:  # what only the model knows (codebook usage, beam output)
            results["model_record"] = record
            log.info("model record: %s", json.dumps(record, default=str))
        frame = per_user_frame(exp)
        if trainer.is_global_zero and frame is not None:
            write_parquet(run_dir / PER_USER_FILE, frame)
        if stage is not None and trainer.is_global_zero:
            from recframe.rerank import RERANK_FILE, protocol_entry, run_stage

            record, arms = run_stage(stage, exp, pm)
            write_parquet(run_dir / RERANK_FILE, arms)
            results["rerank"] = record
            results["protocol"]["rerank"] = protocol_entry(record, int(stage.get("seed", 0)))
            results["timings"]["rerank"] = record["seconds"]
        if trainer.is_global_zero and task.test_calibration is not None:
            write_json(run_dir / CALIBRATION_FILE, {"test": task.test_calibration})
            results["calibration"] = {
                k: task.test_calibration[k] for k in ("predicted_rate", "observed_rate")}
        return results
    except BaseException as exc:
        results["status"] = "failed"
        results["error"] = {
            "type": type(exc).__name__,
            "message": str(exc),
            "user_error": isinstance(exc, RecframeError),
            "traceback": traceback.format_exc(limit=20),
        }
        raise
    finally:
        results["wall_seconds"] = round(time.time() - started, 3)
        results["memory"] = peak_memory_gib()
        try:
            if _is_rank_zero():
                write_json(run_dir / RESULTS_FILE, results)
        except OSError:
            if results["status"] == "ok":
                raise  # the run's outcome itself could not be recorded: an error
            log.error("could not record the failure in %s", run_dir / RESULTS_FILE)
        finally:
            _finish_wandb(loggers)

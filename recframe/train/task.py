"""``RecTask``: the one generic LightningModule that trains and evaluates any RecModel."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import Any

import lightning.pytorch as pl
import pandas as pd
import torch

from recframe.errors import RecframeError
from recframe.eval.cold import ColdStart, view_key
from recframe.eval.ctr import PointwiseEvaluator
from recframe.eval.evaluator import Evaluator, PerUserAccumulator
from recframe.models.base import RecModel, TrainFormat
from recframe.train.loss_tracker import LossTracker, NonFiniteLossError
from recframe.train.optim import check_sparse_gradients

__all__ = ["NonFiniteLossError", "RecTask"]

OptimizerFactory = Callable[[Iterable[torch.nn.Parameter]], torch.optim.Optimizer]


class RecTask(pl.LightningModule):
    """Wraps a :class:`RecModel`: gradient steps or one closed-form fit, then
    full-ranking validation and test with per-user metrics.

    Logged keys are ``train/loss``, ``val/<metric>@<k>`` and ``test/<metric>@<k>``;
    under a cold-start split (``cold``) also ``val/cold/<metric>@<k>`` and
    ``val/warm/...`` (:mod:`recframe.eval.cold`).
    """

    def __init__(
        self,
        model: RecModel,
        evaluator: Evaluator,
        optimizer_factory: OptimizerFactory | None = None,
        monitor: str = "ndcg@10",
        item_popularity: torch.Tensor | None = None,
        pointwise: PointwiseEvaluator | None = None,
        cold: ColdStart | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        #: the cold-start views (cold/warm targets measured apart), or None
        self.cold = cold
        self.evaluator = evaluator
        #: the CTR protocol's evaluator (labeled rows scored pointwise), else None
        self.pointwise = pointwise
        self._rows: dict[str, list[torch.Tensor]] = {"users": [], "logits": [], "labels": []}
        #: the last test's calibration table (CTR protocol)
        self.test_calibration: dict[str, list[float]] | None = None
        self.optimizer_factory = optimizer_factory
        self.monitor = monitor
        if item_popularity is not None:
            self.register_buffer("item_popularity", item_popularity.float(), persistent=False)
        else:
            self.item_popularity = None
        if not any(p.requires_grad for p in model.parameters()):
            # DDP refuses to wrap a module without trainable parameters (Pop, EASE, ...);
            # this unused scalar lets closed-form models run under trainer=ddp unchanged.
            self.ddp_anchor = torch.nn.Parameter(torch.zeros(()))
        self._acc = PerUserAccumulator()
        self._view_acc = {v: PerUserAccumulator() for v in (cold.views if cold else ()) if v}
        self._nan_scores = torch.zeros((), dtype=torch.long)
        self._item_counts: dict[int, torch.Tensor] = {}
        self.val_history: list[tuple[int, dict[str, float]]] = []
        # per-user test values (user index, metric -> values) per view ("" = overall);
        # the frame is built on demand
        self._test_values: list[tuple[str, torch.Tensor, dict[str, torch.Tensor]]] | None = None
        self._test_frame: pd.DataFrame | None = None
        self.test_metrics: dict[str, float | None] = {}
        # training seconds per epoch: first batch start to last batch end, so validation
        # and checkpoint saving (which Lightning runs inside the epoch) are not counted
        self.epoch_seconds: list[float] = []
        self.validation_seconds: list[float] = []
        self.fit_seconds: float = 0.0
        self._epoch_start = 0.0
        self._last_batch_end = 0.0
        self._validation_start = 0.0
        # the last test's loop: first batch fetch to metrics computed (no set-up/teardown)
        self.test_loop_seconds = 0.0
        self._test_start = 0.0
        self._losses = LossTracker()  # the epoch's loss, checked finite without a sync
        self.steps_per_execution = 1
        #: privacy by configuration (recframe.privacy): DP-SGD steps or a private
        #: closed-form fit; None = ordinary training
        self.private: Any = None

    @property
    def is_closed_form(self) -> bool:
        return self.model.train_format is TrainFormat.FIT

    # -- training ---------------------------------------------------------------
    def on_fit_start(self) -> None:
        self.model.prepare(self.trainer.datamodule.data)
        if self.is_closed_form:
            start = time.perf_counter()
            if self.private is not None and hasattr(self.private, "fit"):
                self.private.fit(self.model, self.trainer.datamodule.data)
            else:
                self.model.fit(self.trainer.datamodule.data)
            self.fit_seconds = time.perf_counter() - start

    def on_train_epoch_start(self) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None and hasattr(datamodule, "set_epoch"):
            datamodule.set_epoch(self.current_epoch)
        self._losses.reset(self.current_epoch)
        self._epoch_start = self._last_batch_end = time.perf_counter()

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self._losses.poll()
        self._last_batch_end = time.perf_counter()

    def on_train_epoch_end(self) -> None:
        self.epoch_seconds.append(self._last_batch_end - self._epoch_start)
        if self.private is not None and hasattr(self.private, "epoch_end"):
            self.private.epoch_end(self.current_epoch, self.global_step)
        mean = self._losses.epoch_mean()
        if mean is not None:
            # the epoch mean weighted by batch size, as self.log(on_epoch=True) would give
            self.log("train/loss", mean, on_step=False, on_epoch=True, prog_bar=True)

    def use_steps_per_execution(self, steps: int) -> None:
        """Take ``steps`` optimizer steps per training batch of Lightning's loop (the
        datamodule then yields lists of that many mini-batches; see
        :mod:`recframe.train.execution`). Call before ``Trainer.fit``."""
        self.steps_per_execution = steps
        self.automatic_optimization = steps == 1 and not hasattr(self.private,
                                                                 "training_step")

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        if self.is_closed_form:
            if self.trainer.world_size <= 1:
                return None
            # DDP cannot skip a step: a zero loss over every trainable parameter
            # keeps the ranks' (no-op) gradient all-reduce in step
            return sum(p.sum() for p in self.parameters() if p.requires_grad) * 0.0
        if hasattr(self.private, "training_step"):  # DP-SGD (recframe.privacy.dpsgd)
            self.private.training_step(self, batch, batch_idx)
            return None
        if self.automatic_optimization:
            return self._step_loss(batch, batch_idx)
        # steps_per_execution > 1: batch is a list of consecutive mini-batches, each one
        # step exactly as the automatic loop takes it (zero_grad, forward, backward, step)
        optimizer = self.optimizers()
        max_steps = self.trainer.max_steps
        for step_batch in batch:
            if 0 <= max_steps <= self.global_step:
                break
            optimizer.zero_grad()
            loss = self._step_loss(step_batch, batch_idx)
            self.manual_backward(loss)
            optimizer.step()
        return None

    def _step_loss(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self.model.loss(batch)
        # summed for the epoch mean (logged once per epoch: a self.log call per step
        # costs more than a small model's whole step) and checked finite, on an
        # accelerator without waiting for it (recframe.train.loss_tracker)
        self._losses.add(loss, len(next(iter(batch.values()))), self.global_step, batch_idx)
        return loss

    def configure_optimizers(self) -> Any:
        params = [p for p in self.model.parameters() if p.requires_grad]
        if self.is_closed_form or not params or self.optimizer_factory is None:
            return None
        optimizer = self.optimizer_factory(params)
        if getattr(self.model, "sparse_gradients", False):
            check_sparse_gradients(optimizer, self.private)
        if hasattr(self.private, "wrap_optimizer"):
            optimizer = self.private.wrap_optimizer(optimizer)
        return optimizer

    # -- evaluation -------------------------------------------------------------
    def _eval_step(self, batch: dict[str, torch.Tensor]) -> None:
        if self.pointwise is not None:
            logits = self.model.predict(batch)
            self._rows["users"].append(batch["users"].detach())
            self._rows["logits"].append(logits.detach().double())
            self._rows["labels"].append(batch["label"].detach().double())
            return
        users = batch["users"]
        scores = self.model.score(users, batch)
        if self.cold is not None:
            self._eval_views(users, scores, batch)
            return
        stats: dict[str, torch.Tensor] = {}
        values = self.evaluator.evaluate_batch(scores, batch, self.item_popularity,
                                               self._item_counts, stats,
                                               scores_disposable=True)
        self._nan_scores = self._nan_scores + stats["nan_scores"]  # checked per epoch
        self._acc.update(users, values)

    def _eval_views(self, users: torch.Tensor, scores: torch.Tensor,
                    batch: dict[str, torch.Tensor]) -> None:
        """Each cold-start view of the batch, from the same scores (recframe.eval.cold)."""
        assert self.cold is not None
        views = self.cold.views
        for i, view in enumerate(views):
            view_batch, rows = self.cold.view(batch, view)
            stats: dict[str, torch.Tensor] = {}
            values = self.evaluator.evaluate_batch(
                scores, view_batch, self.item_popularity,
                self._item_counts if not view else None, stats,
                scores_disposable=i == len(views) - 1)
            if i == 0:  # the NaNs of the scores, counted once
                self._nan_scores = self._nan_scores + stats["nan_scores"]
            if not view:
                self._acc.update(users, values)
            else:
                assert rows is not None
                self._view_acc[view].update(users[rows], {k: v[rows] for k, v in values.items()})

    def _view_means(self, prefix: str) -> tuple[dict[str, torch.Tensor], list[tuple[
            str, torch.Tensor, dict[str, torch.Tensor]]]]:
        """Means of the overall (when the model scores cold targets) and the view
        metrics, keyed ``prefix + view/metric@k``, and every view's per-user values."""
        users, values = self._gather()
        means: dict[str, torch.Tensor] = {}
        per_view = []
        if len(users):
            means.update({f"{prefix}{k}": v.mean() for k, v in values.items()})
            means.update({f"{prefix}{k}": v for k, v in
                          self._global_metrics(len(users)).items()})
            per_view.append(("", users, values))
        else:
            self._item_counts = {}
        for view, acc in self._view_acc.items():
            v_users, v_values = self._gather(acc)
            if len(v_users):
                means.update({f"{prefix}{view_key(view, k)}": v.mean()
                              for k, v in v_values.items()})
                per_view.append((view, v_users, v_values))
        return means, per_view

    def _not_applicable(self) -> dict[str, None]:
        """The overall and cold keys of a model that cannot score cold targets: None."""
        if self.cold is None or self.cold.applicable:
            return {}
        keys = list(self.evaluator.keys)
        return {**dict.fromkeys(keys), **{view_key("cold", k): None
                                         for k in self.evaluator.per_user_keys}}

    def _check_scores(self) -> None:
        count = int(self._nan_scores)
        self._nan_scores = torch.zeros((), dtype=torch.long)
        if count:
            raise RecframeError(
                f"model {type(self.model).__name__} produced {count} NaN score(s) during "
                f"evaluation at epoch {self.current_epoch}; NaN cannot be ranked. Check the "
                f"learning rate and the model's numerics."
            )

    def _global_metrics(self, n_users: int) -> dict[str, torch.Tensor]:
        counts, self._item_counts = self._item_counts, {}
        if not self.evaluator.global_:
            return {}
        if self.trainer.world_size > 1:
            counts = {k: self.trainer.strategy.reduce(c.float(), reduce_op="sum").double()
                      for k, c in counts.items()}
        if not counts:
            n_items = int(self.item_popularity.numel()) if self.item_popularity is not None else 0
            counts = {k: torch.zeros(n_items, dtype=torch.float64) for k in self.evaluator.ks}
        return self.evaluator.finalize_global(counts, n_users, self.item_popularity)

    def _gather(self, acc: PerUserAccumulator | None = None
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if acc is None:
            self._check_scores()
            acc = self._acc
        users, values = acc.tensors()
        acc.reset()
        if self.trainer.world_size <= 1:
            return users, values
        # Ranks hold different numbers of users: pad to the largest, gather, strip.
        n = torch.tensor([len(users)], device=self.device)
        sizes = self.all_gather(n).reshape(-1)
        width = int(sizes.max())
        stacked = torch.stack([users.float().to(self.device)] + [
            v.to(self.device) for v in values.values()
        ])
        padded = torch.zeros(stacked.shape[0], width, device=self.device)
        padded[:, : stacked.shape[1]] = stacked
        gathered = self.all_gather(padded)  # [world, rows, width]
        parts = [gathered[r, :, : int(sizes[r])] for r in range(gathered.shape[0])]
        merged = torch.cat(parts, dim=1)
        users = merged[0].round().long()
        values = {k: merged[i + 1] for i, k in enumerate(values)}
        return users, values

    def _gather_rows(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every rank's scored rows (users, logits, labels), concatenated."""
        rows = {k: (torch.cat(v) if v else torch.zeros(0, dtype=torch.float64))
                for k, v in self._rows.items()}
        for v in self._rows.values():
            v.clear()
        users, logits, labels = rows["users"].double(), rows["logits"], rows["labels"]
        if self.trainer.world_size > 1:
            stacked = torch.stack([users, logits, labels]).to(self.device)
            sizes = self.all_gather(torch.tensor([stacked.shape[1]], device=self.device))
            sizes = sizes.reshape(-1)
            padded = torch.zeros(3, int(sizes.max()), dtype=stacked.dtype, device=self.device)
            padded[:, : stacked.shape[1]] = stacked
            gathered = self.all_gather(padded)
            merged = torch.cat([gathered[r, :, : int(sizes[r])]
                                for r in range(gathered.shape[0])], dim=1).cpu()
            users, logits, labels = merged[0], merged[1], merged[2]
        if torch.isnan(logits).any():
            raise RecframeError(
                f"model {type(self.model).__name__} produced "
                f"{int(torch.isnan(logits).sum())} NaN logit(s) during evaluation at epoch "
                f"{self.current_epoch}. Check the learning rate and the model's numerics.")
        return users.round().long(), logits, labels

    def _pointwise_epoch(self) -> tuple[dict[str, torch.Tensor], torch.Tensor,
                                        dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        users, logits, labels = self._gather_rows()
        values, user_index, per_user = self.pointwise.compute(users, logits, labels)
        return values, user_index, per_user, logits, labels

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch)

    def on_validation_epoch_start(self) -> None:
        self._validation_start = time.perf_counter()

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:
            self.validation_seconds.append(time.perf_counter() - self._validation_start)
        if self.pointwise is not None:
            values, *_ = self._pointwise_epoch()
            self._log_validation({f"val/{k}": v for k, v in values.items()})
            return
        if self.cold is not None:
            means, _ = self._view_means("val/")
            if means:
                self._log_validation(means)
            return
        users, values = self._gather()
        if len(users) == 0:
            return
        means = {f"val/{k}": v.mean() for k, v in values.items()}
        means.update({f"val/{k}": v for k, v in self._global_metrics(len(users)).items()})
        self._log_validation(means)

    def _log_validation(self, means: dict[str, torch.Tensor]) -> None:
        monitored = f"val/{self.monitor}"
        self.log_dict({k: v for k, v in means.items() if k != monitored}, sync_dist=False)
        self.log(monitored, means[monitored], prog_bar=True, sync_dist=False)
        if not self.trainer.sanity_checking:
            floats = {k.removeprefix("val/"): float(v) for k, v in means.items()}
            self.val_history.append((self.current_epoch, floats))

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch)

    def on_test_epoch_start(self) -> None:
        self._test_start = time.perf_counter()

    def on_test_epoch_end(self) -> None:
        if self.pointwise is not None:
            means, users, values, logits, labels = self._pointwise_epoch()
            self.test_calibration = self.pointwise.calibration(logits, labels)
            per_view = [("", users, values)]
        elif self.cold is not None:
            means, per_view = self._view_means("")
        else:
            users, values = self._gather()
            means = {k: v.mean() for k, v in values.items()}
            means.update(self._global_metrics(len(users)))
            per_view = [("", users, values)]
        self.test_metrics = {k: float(v) for k, v in means.items()}
        if self.cold is not None:  # overall keys first, then cold/, then warm/
            order = {"": 0, "cold": 1, "warm": 2}
            merged: dict[str, float | None] = {**self._not_applicable(), **self.test_metrics}
            self.test_metrics = dict(sorted(
                merged.items(), key=lambda kv: order.get(kv[0].partition("/")[0], 0)))
        self._test_values, self._test_frame = per_view, None
        # Straight to the loggers (rank zero only, as Lightning's loggers are): the values
        # are final and already reduced over ranks, so self.log's per-key result
        # collection (built for values still to be reduced) has nothing to do.
        if self.trainer.is_global_zero:
            logged = {f"test/{k}": v for k, v in self.test_metrics.items() if v is not None}
            for logger in self.loggers:
                logger.log_metrics(logged, step=self.global_step)
        self.test_loop_seconds = time.perf_counter() - self._test_start

    @property
    def test_per_user(self) -> pd.DataFrame | None:
        """The last test's per-user values: one row per user (sorted by user index),
        one column per metric; None before any test."""
        if self._test_frame is None and self._test_values is not None:
            frame = None
            for view, users, values in self._test_values:
                part = PerUserAccumulator.to_frame(
                    users, {view_key(view, k): v for k, v in values.items()})
                frame = part if frame is None else frame.merge(part, on="user", how="outer")
            if frame is None:
                frame = PerUserAccumulator.to_frame(torch.empty(0, dtype=torch.long), {})
            self._test_frame = frame.sort_values("user", kind="stable").reset_index(drop=True)
        return self._test_frame

    # -- checkpoint state beyond the weights (restored on resume) -----------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["recframe"] = {
            "val_history": [[epoch, dict(metrics)] for epoch, metrics in self.val_history],
            "epoch_seconds": list(self.epoch_seconds),
            "validation_seconds": list(self.validation_seconds),
            "fit_seconds": self.fit_seconds,
        }
        if hasattr(self.private, "state"):  # the accountant's steps survive a resume
            checkpoint["recframe"]["privacy"] = self.private.state()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("recframe") or {}
        if self.trainer is not None and self.trainer.state.fn == "fit":
            self.val_history = [(int(e), dict(m)) for e, m in state.get("val_history", [])]
            self.epoch_seconds = list(state.get("epoch_seconds", []))
            self.validation_seconds = list(state.get("validation_seconds", []))
            self.fit_seconds = float(state.get("fit_seconds", 0.0))
            if hasattr(self.private, "load_state") and "privacy" in state:
                self.private.load_state(state["privacy"])

    def best_validation(self) -> tuple[int | None, dict[str, float]]:
        """Epoch and metrics of the best validation epoch by the monitored metric."""
        if not self.val_history:
            return None, {}
        def key(item: tuple[int, dict[str, float]]) -> float:
            value = item[1].get(self.monitor, -math.inf)
            return -math.inf if math.isnan(value) else value
        epoch, metrics = max(self.val_history, key=key)
        return epoch, metrics

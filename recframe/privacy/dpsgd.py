"""User-level DP-SGD for any gradient-trained RecModel, with Opacus's optimizer and
accountant (Abadi et al., "Deep Learning with Differential Privacy", CCS 2016;
user-level as in McMahan et al., "Learning Differentially Private Recurrent Language
Models", ICLR 2018).

Each step: Poisson-sample users (:mod:`recframe.privacy.batches`), compute each sampled
user's gradient of the model's loss on their examples (:mod:`recframe.privacy.grads`),
then Opacus's ``DPOptimizer`` clips every user's gradient to ``max_grad_norm``, sums,
adds ``N(0, (sigma * max_grad_norm)^2)`` noise and divides by the expected number of
users, and the wrapped optimizer (Adam, ...) steps. The noise multiplier ``sigma`` is
the smallest that keeps the planned steps (``trainer.max_epochs`` epochs) within the
target epsilon (Opacus's ``get_noise_multiplier``); the accountant records every step
taken, so the epsilon reported is what was spent.
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch

from recframe.errors import ConfigError
from recframe.models.base import TrainFormat
from recframe.privacy.batches import UserSampledBatches
from recframe.privacy.grads import PerUserGradients
from recframe.privacy.settings import PrivacySettings

#: train formats DP-SGD can sample by user
SUPPORTED_FORMATS = (TrainFormat.PAIRS, TrainFormat.POINTS, TrainFormat.SEQUENCES,
                     TrainFormat.LABELED)


def check_private_trainable(model: Any, model_name: str) -> None:
    """Raise a ConfigError naming why ``model`` cannot be trained with DP-SGD."""
    fmt = model.train_format
    if fmt is TrainFormat.FIT:
        raise ConfigError(
            f"privacy=dpsgd: model {model_name!r} is fitted in closed form, without gradient "
            f"steps, so DP-SGD does not apply. Use privacy=dp_stats (noisy counts for pop, a "
            f"noisy Gram matrix for ease and itemknn), or a gradient-trained model (bpr, "
            f"neumf, sasrec, gru4rec, bert4rec, mlp_ctr and the click models).")
    reason = getattr(model, "private_training_unsupported", None)
    if reason or fmt not in SUPPORTED_FORMATS:
        why = reason or (f"its train format {fmt.value!r} has no per-user batches yet "
                         f"(supported: {', '.join(f.value for f in SUPPORTED_FORMATS)})")
        raise ConfigError(
            f"privacy=dpsgd cannot make model {model_name!r} private: {why}. Models that "
            f"train privately: bpr, neumf, sasrec, gru4rec, bert4rec, mlp_ctr and the click "
            f"models; closed-form pop, ease and itemknn with privacy=dp_stats.")


def local_parameters(model: Any, model_name: str, user_state: str
                     ) -> dict[str, torch.nn.Parameter]:
    """The parameters ``privacy.user_state=local`` trains outside DP-SGD: the model's
    per-user tables (``RecModel.per_user_parameters``); none under ``shared``."""
    if user_state != "local":
        return {}
    names = tuple(getattr(model, "per_user_parameters", ()))
    if not names:
        raise ConfigError(
            f"privacy.user_state=local: model {model_name!r} has no per-user parameters "
            f"(a user embedding table trained from each user's own examples), so there is "
            f"nothing to keep local. Use privacy.user_state=shared, or a model with user "
            f"embeddings (bpr, neumf).")
    params = dict(model.named_parameters())
    return {n: params[n] for n in names}


class DPSGD:
    """The DP-SGD state of one run: batches, noise multiplier, accountant, record."""

    def __init__(self, settings: PrivacySettings, model: Any, data: Any, *, seed: int,
                 max_epochs: int, model_name: str, batch_kwargs: dict[str, Any]) -> None:
        from opacus.accountants import create_accountant
        from opacus.accountants.utils import get_noise_multiplier

        check_private_trainable(model, model_name)
        self.local = local_parameters(model, model_name, settings.user_state)
        self.settings = settings
        self.seed = seed
        self.n_users = int(data.info.n_users)
        self.delta = settings.resolved_delta(self.n_users)
        self.batches = UserSampledBatches(model.train_format, self.n_users,
                                          settings.users_per_step, seed,
                                          examples_per_user=settings.examples_per_user,
                                          **batch_kwargs)
        self.sample_rate = self.batches.sample_rate
        self.steps_per_epoch = len(self.batches)
        self.planned_steps = self.steps_per_epoch * max(int(max_epochs), 1)
        self.expected_users = max(1.0, self.sample_rate * int(self.batches.eligible.sum()))
        if math.isinf(settings.epsilon):
            self.noise_multiplier = 0.0
        else:
            self.noise_multiplier = float(get_noise_multiplier(
                target_epsilon=settings.epsilon, target_delta=self.delta,
                sample_rate=self.sample_rate, steps=self.planned_steps,
                accountant=settings.accountant, epsilon_tolerance=0.01))
        self.accountant = create_accountant(mechanism=settings.accountant)
        self.local_optimizer: torch.optim.Optimizer | None = None
        self._pending_local_state: dict[str, Any] | None = None
        self.grads = PerUserGradients(model, settings.grad_sample)
        self.n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
        self.epsilon_per_epoch: list[dict[str, float | int | None]] = []
        self.grad_seconds = 0.0
        self.steps_taken = 0

    # -- optimizer ------------------------------------------------------------------
    def wrap_optimizer(self, optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
        from opacus.optimizers import DPOptimizer

        if self.local:  # per-user tables: their own optimizer, no clipping, no noise
            local_ids = {id(p) for p in self.local.values()}
            for group in optimizer.param_groups:
                group["params"] = [p for p in group["params"] if id(p) not in local_ids]
            self.local_optimizer = type(optimizer)(list(self.local.values()),
                                                   **optimizer.defaults)
            if self._pending_local_state is not None:
                self.local_optimizer.load_state_dict(self._pending_local_state)
        device = optimizer.param_groups[0]["params"][0].device
        generator = torch.Generator(device=device).manual_seed(self.seed)
        dp = DPOptimizer(optimizer, noise_multiplier=self.noise_multiplier,
                         max_grad_norm=self.settings.max_grad_norm,
                         expected_batch_size=self.expected_users, loss_reduction="mean",
                         generator=generator)
        # Opacus divides by expected_batch_size * accumulated_iterations; ours is 1
        dp.expected_batch_size = self.expected_users  # type: ignore[assignment]
        if self.noise_multiplier > 0:
            dp.attach_step_hook(self.accountant.get_optimizer_hook_fn(
                sample_rate=self.sample_rate))
        return dp

    # -- one step -------------------------------------------------------------------
    def training_step(self, task: Any, batch: dict[str, Any], batch_idx: int) -> None:
        optimizer = task.optimizers()
        optimizer.zero_grad()
        start = time.perf_counter()
        losses = self.grads.attach(batch)
        self.grad_seconds += time.perf_counter() - start
        for p in self.local.values():
            # row u holds user u's own gradient only: summed as is and scaled like the
            # private part (Opacus divides by the expected number of users)
            p.grad = p.grad_sample.sum(0) / self.expected_users
            del p.grad_sample
        optimizer.step()
        if self.local_optimizer is not None:
            self.local_optimizer.step()
            self.local_optimizer.zero_grad()
        self.steps_taken += 1
        if len(losses):
            task._losses.add(losses.mean(), len(losses), task.global_step, batch_idx)

    # -- accounting -----------------------------------------------------------------
    def epsilon(self) -> float:
        if self.noise_multiplier == 0.0:
            return math.inf
        if not self.accountant.history:
            return 0.0
        return float(self.accountant.get_epsilon(delta=self.delta))

    def epoch_end(self, epoch: int, global_step: int) -> None:
        eps = self.epsilon()
        self.epsilon_per_epoch.append({"epoch": epoch, "steps": global_step,
                                       "epsilon": None if math.isinf(eps) else round(eps, 4)})

    def state(self) -> dict[str, Any]:
        out = {"history": [list(h) for h in self.accountant.history],
               "epsilon_per_epoch": list(self.epsilon_per_epoch)}
        if self.local_optimizer is not None:
            out["local_optimizer"] = self.local_optimizer.state_dict()
        return out

    def load_state(self, state: dict[str, Any]) -> None:
        self.accountant.history = [tuple(h) for h in state.get("history", [])]
        self.epsilon_per_epoch = list(state.get("epsilon_per_epoch", []))
        local = state.get("local_optimizer")
        if local is not None:  # restored before or after the optimizers are built
            if self.local_optimizer is not None:
                self.local_optimizer.load_state_dict(local)
            else:
                self._pending_local_state = local

    def record(self) -> dict[str, Any]:
        eps = self.epsilon()
        per_user_mib = self.n_params * 4 / 2**20
        return {
            **self.settings.record(),
            "delta": self.delta,
            "noise_multiplier": round(self.noise_multiplier, 6),
            "sample_rate": self.sample_rate,
            "steps_per_epoch": self.steps_per_epoch,
            "planned_steps": self.planned_steps,
            "steps": self.steps_taken,
            "epsilon": None if math.isinf(eps) else round(eps, 4),
            "epsilon_per_epoch": self.epsilon_per_epoch,
            "local_parameters": sorted(self.local),
            "grad_sample": self.grads.mode,
            "grad_sample_fallback": self.grads.fallback_reason,
            "trainable_parameters": self.n_params,
            "per_user_gradient_mib": round(per_user_mib, 3),
            "expected_users_per_step": round(self.expected_users, 2),
            "per_user_gradients_seconds": round(self.grad_seconds, 3),
            "model_selection": "none: early stopping off, the last weights are tested "
                               "(validation data never chooses the released model)",
        }

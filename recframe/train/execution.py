"""Several optimizer steps per pass of Lightning's training loop (``steps_per_execution``).

Lightning's loop costs a fixed amount of Python per batch: fetching through its
data fetcher, moving the batch, the optimizer closure, a dozen hook calls. For
the small steps of recommender models on CPU (a BPR step on MovieLens-100K is
about a millisecond of work) one step per batch made an epoch about 1.5x the same
steps in a bare loop (``bpr_epoch_vs_bare_loop_steps1`` from
``experiments/bench/train_throughput.py``).

With ``steps_per_execution: K`` the loader hands each of Lightning's training
batches ``K`` consecutive mini-batches, and :class:`~recframe.train.task.RecTask`
takes ``K`` optimizer steps on them with Lightning's manual optimization
(``manual_backward``, ``LightningOptimizer.step``: precision, hooks and
``global_step`` as usual). The mini-batches, their order and every update are
the same as with ``K = 1``; the weights are bit-identical (tests/test_execution.py).
The idea is Keras's ``steps_per_execution``.

What changes is only what counts as one batch of Lightning's loop: per-batch
callback hooks see a list of ``K`` mini-batches, and ``limit_train_batches`` /
``val_check_interval`` count those lists. ``auto`` (the default) therefore uses
``K > 1`` only where nothing observes single batches (see :func:`blockers`).
"""

from __future__ import annotations

import math
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar
from lightning.pytorch.utilities.model_helpers import is_overridden
from torch.utils.data import Dataset

from recframe.errors import ConfigError

# K chosen by ``auto``: at 8 steps the loop's share is a few percent of a BPR epoch on
# ML-100K (``bpr_s_per_epoch_steps<K>`` and ``bpr_epoch_vs_bare_loop_steps<K>`` from
# experiments/bench/train_throughput.py).
AUTO_STEPS = 8

# Per-batch training hooks: a callback overriding one sees K mini-batches at a time.
BATCH_HOOKS = ("on_train_batch_start", "on_train_batch_end")


class StepChunks(Dataset):
    """Item ``c`` of ``batches`` chunked: the list of batches ``c*K .. c*K+K-1``."""

    def __init__(self, batches: Dataset, steps: int) -> None:
        if steps < 1:
            raise ValueError("steps must be >= 1")
        self.batches, self.steps = batches, steps

    def __len__(self) -> int:
        return math.ceil(len(self.batches) / self.steps)  # type: ignore[arg-type]

    def __getitem__(self, c: int) -> list[Any]:
        stop = min((c + 1) * self.steps, len(self.batches))  # type: ignore[arg-type]
        return [self.batches[b] for b in range(c * self.steps, stop)]


def _observes_batches(callback: pl.Callback) -> bool:
    if isinstance(callback, ProgressBar):  # display only: it counts chunks instead
        return False
    if isinstance(callback, ModelCheckpoint):
        return bool(callback._every_n_train_steps) or callback._train_time_interval is not None
    return any(is_overridden(hook, callback, parent=pl.Callback) for hook in BATCH_HOOKS)


def blockers(trainer: pl.Trainer) -> list[str]:
    """Trainer settings under which ``K > 1`` would change what a run does or reports:
    Lightning's own gradient clipping and accumulation (automatic optimization only),
    more than one device (samplers pad per chunk), train-batch limits and
    mid-epoch validation (they count chunks), and callbacks that act on single
    training batches."""
    out = []
    if trainer.gradient_clip_val:
        out.append(f"trainer.gradient_clip_val={trainer.gradient_clip_val}")
    if trainer.accumulate_grad_batches != 1:
        out.append(f"trainer.accumulate_grad_batches={trainer.accumulate_grad_batches}")
    devices = trainer.num_devices * trainer.num_nodes
    if devices > 1:
        out.append(f"{devices} devices (trainer.devices / trainer.num_nodes)")
    # a float 1.0 means "the whole epoch"; an int counts batches (1 == 1.0 in Python)
    for key in ("limit_train_batches", "val_check_interval"):
        value = getattr(trainer, key)
        if value is not None and not (isinstance(value, float) and value == 1.0):
            out.append(f"trainer.{key}={value}")
    out += [f"callback {type(cb).__name__} (acts on single training batches)"
            for cb in trainer.callbacks if _observes_batches(cb)]
    return out


def resolve_steps_per_execution(value: Any, trainer: pl.Trainer, closed_form: bool) -> int:
    """The ``K`` of one fit from the ``steps_per_execution`` config key: a positive
    integer, or ``auto`` (:data:`AUTO_STEPS` unless a :func:`blockers` setting is
    present, then 1). Closed-form models take no steps: always 1."""
    if value == "auto":
        return 1 if closed_form or blockers(trainer) else AUTO_STEPS
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"steps_per_execution must be a positive integer or auto, "
                          f"got {value!r}")
    if value == 1 or closed_form:
        return 1
    found = blockers(trainer)
    if found:
        raise ConfigError(f"steps_per_execution={value} cannot be combined with "
                          f"{'; '.join(found)}. Set steps_per_execution=1 (or auto, which "
                          f"falls back to 1 there).")
    return value

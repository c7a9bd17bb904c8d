"""The epoch's training loss and its finiteness check, without a device sync per step.

On CPU reading a loss costs nothing: each step's value is read, checked and
summed at once, and a NaN stops training at the step that produced it.

On an accelerator a read waits for the device, and one per step would stall the
step pipeline (the issue's "no per-batch host-device round trips"; evaluation
already counts NaN scores on the device). There the sums stay on the device:
:meth:`LossTracker.poll`, called once per batch of Lightning's loop, starts a
non-blocking copy of them into pinned host memory and reads the previous copy
once its CUDA event has completed, so a non-finite loss stops training a batch
or two after it appeared, without ever waiting. :meth:`LossTracker.epoch_mean`
waits once per epoch. Sums are float64 in both modes and add the same terms in
the same order, so the epoch mean is the same.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from recframe.errors import RecframeError


class NonFiniteLossError(RecframeError):
    """The training loss became NaN or infinite."""


ADVICE = ("Lower the learning rate (optim.lr) or add regularization; the last good "
          "checkpoint is kept.")


@dataclass
class _Copy:
    host: torch.Tensor  # [sum, non-finite count, samples] as of step `step`
    event: torch.cuda.Event | None  # None: the copy has completed (not CUDA)
    step: int


class LossTracker:
    """Sums ``loss * batch size`` over an epoch and stops on a non-finite loss.

    ``defer`` (default: whether the loss lives on an accelerator) keeps the sums on
    the loss's device and checks them asynchronously; tests force it on CPU.
    """

    def __init__(self, defer: bool | None = None) -> None:
        self.defer = defer
        self.reset(epoch=0)

    def reset(self, epoch: int) -> None:
        self.epoch = epoch
        self._sum, self._count = 0.0, 0
        self._device: torch.Tensor | None = None  # [sum, non-finite count] on the device
        self._pending: _Copy | None = None
        self._checked_step = -1  # last step known to be finite (deferred mode)
        self._last_step = -1  # last step added

    def add(self, loss: torch.Tensor, n: int, step: int, batch_idx: int) -> None:
        """Record one step's mean ``loss`` over ``n`` samples."""
        defer = self.defer if self.defer is not None else loss.device.type != "cpu"
        if not defer:
            value = loss.item()
            if not math.isfinite(value):
                raise NonFiniteLossError(
                    f"training loss became {value} at epoch {self.epoch}, step {step} "
                    f"(batch {batch_idx}). {ADVICE}")
            self._sum += value * n
            self._count += n
            return
        value = loss.detach().double()
        if self._device is None:
            self._device = torch.zeros(2, dtype=torch.float64, device=loss.device)
        self._device += torch.stack([value * n, (~torch.isfinite(value)).double()])
        self._count += n
        self._last_step = step

    def poll(self) -> None:
        """Deferred mode: check the last completed copy, start the next one."""
        if self._device is None:
            return
        if self._pending is not None and (self._pending.event is None
                                          or self._pending.event.query()):
            self._check(self._pending)
            self._pending = None
        if self._pending is None:
            source = self._device
            if source.device.type == "cuda":
                host = torch.empty(2, dtype=torch.float64, pin_memory=True)
                host.copy_(source, non_blocking=True)
                event = torch.cuda.Event()
                event.record()
            else:
                host, event = source.to("cpu", copy=True), None
            self._pending = _Copy(host, event, self._last_step)

    def _check(self, copy: _Copy) -> None:
        if copy.host[1] > 0:
            raise NonFiniteLossError(
                f"training loss became non-finite at epoch {self.epoch}, between step "
                f"{self._checked_step + 1} and step {copy.step} (checked without waiting "
                f"on the device). {ADVICE}")
        self._checked_step = copy.step

    def epoch_mean(self) -> float | None:
        """The epoch's mean loss weighted by batch size (None without steps); waits for
        the device in deferred mode, and raises if any loss was not finite."""
        if self._device is not None:
            self._pending = None
            total = self._device.cpu()
            self._check(_Copy(total, None, self._last_step))
            self._sum = float(total[0])
        return self._sum / self._count if self._count else None

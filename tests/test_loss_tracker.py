"""The epoch loss and its NaN check: read at once on CPU, deferred (no device wait) on
accelerators; the deferred path is forced on CPU here, it runs the same code."""

from __future__ import annotations

import math

import pytest
import torch

from recframe.train.loss_tracker import LossTracker, NonFiniteLossError

LOSSES = [0.693, 0.52, 0.41133, 0.3, 0.2999]
SIZES = [512, 512, 512, 512, 17]


def _run(tracker: LossTracker, losses, sizes, poll_every: int = 1) -> float | None:
    tracker.reset(epoch=3)
    for step, (value, n) in enumerate(zip(losses, sizes, strict=True)):
        tracker.add(torch.tensor(value, dtype=torch.float32), n, step, batch_idx=step)
        if (step + 1) % poll_every == 0:
            tracker.poll()
    return tracker.epoch_mean()


@pytest.mark.parametrize("poll_every", [1, 2, 8])
def test_deferred_mean_equals_the_eager_mean_exactly(poll_every):
    eager = _run(LossTracker(defer=False), LOSSES, SIZES)
    deferred = _run(LossTracker(defer=True), LOSSES, SIZES, poll_every)
    expected = sum(float(torch.tensor(v)) * n for v, n in zip(LOSSES, SIZES, strict=True))
    expected /= sum(SIZES)
    assert eager == deferred == pytest.approx(expected, rel=1e-15)


def test_no_steps_no_mean():
    assert LossTracker(defer=True).epoch_mean() is None
    assert LossTracker(defer=False).epoch_mean() is None


def test_eager_raises_at_the_step_that_produced_the_nan():
    tracker = LossTracker(defer=False)
    tracker.reset(epoch=2)
    tracker.add(torch.tensor(0.5), 8, step=10, batch_idx=0)
    with pytest.raises(NonFiniteLossError, match=r"became nan at epoch 2, step 11 \(batch 1\)"):
        tracker.add(torch.tensor(math.nan), 8, step=11, batch_idx=1)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_deferred_raises_within_two_polls_naming_the_step_window(bad):
    tracker = LossTracker(defer=True)
    tracker.reset(epoch=1)
    for step in range(3):  # finite steps, checked
        tracker.add(torch.tensor(0.5), 8, step, step)
        tracker.poll()
    tracker.add(torch.tensor(bad), 8, 3, 3)  # no wait, no error yet
    with pytest.raises(NonFiniteLossError, match=r"non-finite at epoch 1, between step \d "
                                                 r"and step 3"):
        for step in range(4, 6):
            tracker.poll()
            tracker.add(torch.tensor(0.5), 8, step, step)


def test_deferred_nan_after_the_last_poll_is_caught_at_epoch_end():
    tracker = LossTracker(defer=True)
    tracker.reset(epoch=0)
    tracker.add(torch.tensor(0.5), 8, 0, 0)
    tracker.poll()
    tracker.add(torch.tensor(math.nan), 8, 1, 1)
    with pytest.raises(NonFiniteLossError, match="non-finite at epoch 0"):
        tracker.epoch_mean()


def test_deferred_adds_never_read_the_loss(monkeypatch):
    """The deferred path must not synchronise per step: no .item() on the loss."""
    tracker = LossTracker(defer=True)
    tracker.reset(epoch=0)

    def forbidden(self):
        raise AssertionError("deferred add read a value back")

    monkeypatch.setattr(torch.Tensor, "item", forbidden)
    monkeypatch.setattr(torch.Tensor, "__bool__", forbidden)
    for step in range(4):
        tracker.add(torch.tensor(0.25), 4, step, step)
    monkeypatch.undo()
    assert tracker.epoch_mean() == 0.25

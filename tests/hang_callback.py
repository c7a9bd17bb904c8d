"""Lightning callbacks for tests: one stops making progress at a chosen epoch, one slows validation.

The SIGKILL-and-resume test adds it to a run (``+callbacks.hang._target_=...``) so the
kill lands at a known point, after ``last.ckpt`` of the previous epoch is on disk,
however fast the machine is.
"""

from __future__ import annotations

import time
from pathlib import Path

import lightning.pytorch as pl


class HangAtEpochStart(pl.Callback):
    """At the start of epoch ``epoch``, touch ``marker`` and sleep until killed.

    Only once: when ``marker`` already exists (the resumed run), it does nothing.
    """

    def __init__(self, epoch: int, marker: str) -> None:
        self.epoch = epoch
        self.marker = Path(marker)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch != self.epoch or self.marker.exists():
            return
        self.marker.touch()
        while True:  # the test kills the process here
            time.sleep(1)


class SlowValidation(pl.Callback):
    """Makes every validation pass last at least ``seconds`` longer (timing tests)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_validation_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                                outputs: object, batch: object, batch_idx: int,
                                dataloader_idx: int = 0) -> None:
        if batch_idx == 0:
            time.sleep(self.seconds)

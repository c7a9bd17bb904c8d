"""Lightning callbacks recframe adds to every run."""

from __future__ import annotations

import os
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Checkpoint

from recframe import faults


class LastCheckpoint(Checkpoint):
    """Write ``last.ckpt`` at the end of every training epoch, atomically (temp file + rename).

    Lightning's ``ModelCheckpoint(save_last=True)`` only refreshes ``last.ckpt``
    when a top-k checkpoint was saved in the same step, so after a
    non-improving epoch it lags behind, and its writes are not atomic. Resume
    (``resume=<run dir>``) needs the latest complete state, and a SIGKILL
    during a save must never leave a truncated ``last.ckpt``. Being a
    ``Checkpoint`` callback, Lightning runs it after the other callbacks, so
    the saved state includes this epoch's validation, early-stopping check and
    best-model update: a resumed run starts cleanly at the next epoch.
    """

    def __init__(self, dirpath: str | None = None, filename: str = "last.ckpt") -> None:
        self.dirpath = dirpath
        self.filename = filename

    def path(self, trainer: pl.Trainer) -> Path:
        return Path(self.dirpath or Path(trainer.default_root_dir) / "checkpoints") / self.filename

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        path = self.path(trainer)
        tmp = path.with_name(f".{path.name}.tmp")
        trainer.save_checkpoint(tmp, weights_only=False)  # every rank calls; rank 0 writes
        if trainer.is_global_zero:
            try:
                faults.write_point(path, "last.ckpt")
                os.replace(tmp, path)
            except OSError as exc:
                tmp.unlink(missing_ok=True)
                raise faults.output_error(exc, path) from exc
        trainer.strategy.barrier("recframe_last_checkpoint")

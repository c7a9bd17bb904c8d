"""Checkpoints written like every other output: temp file, counted write point, rename."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from recframe.results import atomic_write


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's ``TorchCheckpointIO`` whose saves go through
    :func:`recframe.results.atomic_write`: a kill or a full disk during a save never
    leaves a truncated ``.ckpt`` under its final name, a full disk or a read-only
    directory is a coded error (E870/E871), and each save is a write point that the
    fault-injection tests can stop at (:mod:`recframe.faults`)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any,
                        storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        target = Path(os.fspath(path))
        atomic_write(target, lambda tmp: torch.save(checkpoint, tmp), "checkpoint")

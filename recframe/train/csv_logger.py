"""Lightning's CSV logger, made safe to kill and to resume.

Lightning's writer appends to ``metrics.csv`` in place (a kill mid-write leaves a
torn line that the report's training curves would read) and, on a resumed run,
appends the epochs after the checkpoint a second time. This writer keeps every row
in memory, rewrites the whole file through :func:`recframe.results.atomic_write`
(a counted write point), and on its first save after a restart drops the rows of
the epochs being logged again, so the file holds each epoch once.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

from lightning.pytorch.core.saving import save_hparams_to_yaml
from lightning.pytorch.loggers import CSVLogger as LightningCSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment

from recframe.results import atomic_write


def _epoch(row: dict[str, Any]) -> float | None:
    try:
        return float(row.get("epoch"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


class AtomicExperimentWriter(ExperimentWriter):
    """``metrics.csv`` and ``hparams.yaml`` rewritten atomically at every save."""

    def __init__(self, log_dir: str) -> None:
        super().__init__(log_dir)
        self.rows: list[dict[str, Any]] = []
        self._restarted = False
        path = Path(self.metrics_file_path)
        if path.is_file():  # a resumed run: keep what the first attempt logged
            with open(path, newline="", encoding="utf-8") as file:
                reader = csv.DictReader(file)
                self.rows = [dict(r) for r in reader]
                self.metrics_keys = sorted(reader.fieldnames or [])
            self._restarted = True

    def _check_log_dir_exists(self) -> None:  # a resumed run reuses its log dir quietly
        pass

    def save(self) -> None:
        if not self.metrics:
            return
        if self._restarted:
            epochs = [e for e in map(_epoch, self.metrics) if e is not None]
            first = min(epochs) if epochs else float("inf")
            # the test row (no epoch) is logged again by every attempt that reaches it
            self.rows = [r for r in self.rows if (_epoch(r) is not None and _epoch(r) < first)]
            self._restarted = False
        self._record_new_keys()
        self.rows.extend(self.metrics)
        self.metrics = []
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.metrics_keys, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        text = buffer.getvalue()
        atomic_write(Path(self.metrics_file_path), lambda tmp: tmp.write_text(text, "utf-8"),
                     "metrics.csv")

    def log_hparams(self, params: dict[str, Any]) -> None:
        self.hparams.update(params)
        path = Path(os.path.join(self.log_dir, self.NAME_HPARAMS_FILE))
        atomic_write(path, lambda tmp: save_hparams_to_yaml(tmp, self.hparams), "hparams.yaml")


class CSVLogger(LightningCSVLogger):
    """``lightning.pytorch.loggers.CSVLogger`` with :class:`AtomicExperimentWriter`."""

    @property
    @rank_zero_experiment
    def experiment(self) -> AtomicExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = AtomicExperimentWriter(log_dir=self.log_dir)
        return self._experiment

"""Sequence-model settings chosen from the data when a config leaves them on ``auto``.

``max_seq_len: auto`` covers the median user's training history: the median
number of training interactions per user, rounded up to a multiple of
:data:`LENGTH_STEP` and capped at :data:`MAX_AUTO_LEN`. On MovieLens-100K (median
37 positives per user) that gives 50, the length measured there to match 100
and 200 at a quarter of the cost (``conf/model/sasrec.yaml``); on the short
Amazon Games histories (median 6) also 50, the SASRec paper's own choice for
that data; long histories get up to 200 (the paper's choice for ML-1M).

``train_rows: auto`` trains on ``windows`` (every item a target once per epoch)
when ``recent`` (each user's last ``max_seq_len + 1`` items) would leave more than
:data:`MAX_UNTRAINED_SHARE` of the training interactions unused, else on
``recent``. A model built this way records what it chose in ``data_choices``
(written to ``results.json``) and logs it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from recframe.data.encode import DataInfo
from recframe.errors import ConfigError
from recframe.params import read_key

log = logging.getLogger(__name__)

AUTO = "auto"
#: ``max_seq_len: auto`` rounds the median history up to a multiple of this
LENGTH_STEP = 50
#: and never exceeds this (attention costs grow with the square of the length)
MAX_AUTO_LEN = 200
#: ``train_rows: auto`` picks ``windows`` when ``recent`` leaves more than this share
#: of the training interactions untrained
MAX_UNTRAINED_SHARE = 0.10


def _history_lengths(info: DataInfo, key: str) -> np.ndarray:
    lengths = info.train_history_lengths
    if not info.has_timestamps:
        raise ConfigError(
            f"model.{key}=auto reads the order of each user's history, but dataset "
            f"{info.name or '(unnamed)'!r} has no timestamps (no order); set model.{key} "
            "explicitly or load the data with timestamps (a seq_txt file's line order counts)")
    if lengths is None or not np.any(lengths > 0):
        raise ConfigError(f"model.{key}=auto: the training data holds no user histories to "
                          f"measure; set model.{key} explicitly")
    return lengths[lengths > 0]


def auto_max_seq_len(info: DataInfo, minimum: int = 1) -> tuple[int, str]:
    """The ``max_seq_len`` that ``auto`` means for ``info``, and why (for the log)."""
    lengths = _history_lengths(info, "max_seq_len")
    median = float(np.median(lengths))
    value = min(MAX_AUTO_LEN, max(LENGTH_STEP, LENGTH_STEP * math.ceil(median / LENGTH_STEP)))
    value = max(value, minimum)
    return value, (f"median training history {median:g} items -> next multiple of "
                   f"{LENGTH_STEP}, at most {MAX_AUTO_LEN}")


def untrained_share(info: DataInfo, max_seq_len: int) -> float:
    """Share of training interactions outside every user's last ``max_seq_len + 1``."""
    lengths = _history_lengths(info, "train_rows").astype(np.int64)
    return float(np.maximum(lengths - (max_seq_len + 1), 0).sum() / lengths.sum())


def auto_train_rows(info: DataInfo, max_seq_len: int,
                    allowed: Sequence[str] = ("recent", "windows")) -> tuple[str, str]:
    """The ``train_rows`` that ``auto`` means for ``info`` at ``max_seq_len``, and why."""
    share = untrained_share(info, max_seq_len)
    rows = "windows" if share > MAX_UNTRAINED_SHARE and "windows" in allowed else "recent"
    return rows, (f"recent rows would leave {share:.1%} of training interactions untrained "
                  f"(threshold {MAX_UNTRAINED_SHARE:.0%})")


def resolve_sequence_settings(info: DataInfo, cfg: Any, *, default_len: int | str = AUTO,
                              min_len: int = 1, default_rows: str = AUTO,
                              allowed_rows: Sequence[str] = ("recent", "windows", "prefixes"),
                              ) -> tuple[int, str, dict[str, Any]]:
    """``(max_seq_len, train_rows, choices)`` from ``model.max_seq_len`` and
    ``model.train_rows``; ``auto`` values are chosen from ``info`` and reported in
    ``choices`` (``{key: {"value": ..., "why": ...}}``, also logged).

    Explicit values are validated: an integer ``>= min_len`` and one of
    ``allowed_rows``. For a third-party sequence model this is the one call that
    makes its config accept ``auto``; set the returned ``choices`` as the model's
    ``data_choices`` so the run records them.
    """
    choices: dict[str, Any] = {}
    raw_len = read_key(cfg, "max_seq_len", default_len, "model")
    if raw_len == AUTO:
        max_len, why = auto_max_seq_len(info, min_len)
        choices["max_seq_len"] = {"value": max_len, "why": why}
    elif isinstance(raw_len, bool) or not isinstance(raw_len, int) or raw_len < min_len:
        raise ConfigError(f"model.max_seq_len must be 'auto' or an integer >= {min_len}, "
                          f"got {raw_len!r}")
    else:
        max_len = raw_len
    raw_rows = read_key(cfg, "train_rows", default_rows, "model")
    if raw_rows == AUTO:
        rows, why = auto_train_rows(info, max_len, allowed_rows)
        choices["train_rows"] = {"value": rows, "why": why}
    elif raw_rows not in allowed_rows:
        raise ConfigError(f"model.train_rows must be 'auto' or one of "
                          f"{', '.join(allowed_rows)}, got {raw_rows!r}")
    else:
        rows = str(raw_rows)
    for key, choice in choices.items():
        log.info("model.%s=auto -> %s (%s)", key, choice["value"], choice["why"])
    return max_len, rows, choices


#: ``batch_size: auto`` keeps the positions per training step of ``reference_rows``
#: rows at this length as ``max_seq_len`` changes
REFERENCE_LEN = 50
#: and never goes below this many rows
MIN_AUTO_ROWS = 8


def resolve_batch_size(cfg: Any, max_seq_len: int, reference_rows: int,
                       ) -> tuple[int, dict[str, Any]]:
    """``(rows per training step, choices)`` from ``model.batch_size``.

    ``auto``: ``reference_rows`` at ``max_seq_len`` 50, scaled by ``50 / max_seq_len``
    (at least 8), so a step holds about as many positions whatever the history
    length. Long histories otherwise make few, huge steps per epoch: 116k events in
    windows of 200 are 12 steps of 64 rows, and GRU4Rec needed 40+ epochs there
    (synthetic_long) where 4x more steps of a quarter the size cost the same
    (``recframe run model=gru4rec dataset=synthetic_long split=leave_one_out`` with and
    without ``model.batch_size=64``).
    """
    raw = read_key(cfg, "batch_size", AUTO, "model")
    if raw == AUTO:
        rows = max(MIN_AUTO_ROWS, round(reference_rows * REFERENCE_LEN / max_seq_len))
        why = (f"{reference_rows} rows at max_seq_len {REFERENCE_LEN}, scaled to "
               f"max_seq_len {max_seq_len} (about {reference_rows * REFERENCE_LEN} "
               "positions per step)")
        log.info("model.batch_size=auto -> %s (%s)", rows, why)
        return rows, {"batch_size": {"value": rows, "why": why}}
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise ConfigError(f"model.batch_size must be 'auto' or an integer >= 1, got {raw!r}")
    return raw, {}

"""The model contract: a plain ``torch.nn.Module`` with no Lightning code.

A model declares how it trains (``train_format``) and what it needs, then
implements either ``loss(batch)`` (gradient models) or ``fit(data)``
(closed-form models), plus ``score(users, context)`` which returns one score
per item for each user of the batch.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

if TYPE_CHECKING:
    from recframe.data.encode import RecData


class TrainFormat(str, Enum):
    """How the data module feeds a model during training."""

    PAIRS = "pairs"  # (user, positive item, sampled negative item) triples
    POINTS = "points"  # (user, item, label) with sampled negatives labelled 0
    SEQUENCES = "sequences"  # per-user time-ordered item sequences
    MATRIX = "matrix"  # batches of user rows of the interaction matrix
    FIT = "fit"  # closed form: ``fit(data)`` once, no gradient steps


class RecModel(nn.Module):
    """Base class for recommenders.

    Subclasses set ``train_format`` and ``needs`` and implement ``score`` and
    either ``loss`` or ``fit``. Anything that must survive a checkpoint
    (learned weights, fitted matrices) must be a parameter or a registered
    buffer.
    """

    train_format: ClassVar[TrainFormat] = TrainFormat.PAIRS
    needs: ClassVar[frozenset[str]] = frozenset()
    #: negatives sampled per positive for PAIRS/POINTS formats
    num_negatives: int = 1

    #: sequence models: how many recent items ``score`` sees in ``context["seq"]``
    max_seq_len: int = 0

    def prepare(self, data: RecData) -> None:
        """Called once with the encoded data before training (and before scoring a
        model restored from a checkpoint). Derive data-dependent tensors here
        (feature matrices, normalized graphs) as non-persistent buffers."""

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not train by gradient")

    def fit(self, data: RecData) -> None:
        raise NotImplementedError(f"{type(self).__name__} has no closed-form fit")

    def score(self, users: torch.Tensor, context: dict[str, torch.Tensor]) -> torch.Tensor:
        """Scores of all items for ``users``: a float tensor ``[len(users), n_items]``.

        ``context`` holds the evaluation batch: ``seen_rows``/``seen_cols``
        (coordinates of the batch's already-seen items, rows local to the
        batch) and, for sequence models, ``seq`` (left-padded recent items).
        """
        raise NotImplementedError


def dense_history(context: dict[str, torch.Tensor], batch_size: int, n_items: int,
                  dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The batch's already-seen items as a dense ``[batch, n_items]`` 0/1 matrix."""
    rows, cols = context["seen_rows"], context["seen_cols"]
    out = torch.zeros(batch_size, n_items, dtype=dtype, device=rows.device)
    out[rows, cols] = 1
    return out

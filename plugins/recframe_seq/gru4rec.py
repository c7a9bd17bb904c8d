"""GRU4Rec: a recurrent next-item model trained with full (or sampled) softmax cross-entropy."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from recframe.api import DataInfo
from recframe_seq._common import (
    SequenceModel,
    get_bool,
    get_float,
    get_int,
    init_weights,
    last_target_pairs,
    last_window,
    left_align,
    next_item_pairs,
    sequence_settings,
    trim,
    with_choices,
)
from recframe_seq._loss import LossSettings, loss_settings


class GRU4Rec(SequenceModel):
    """GRU over the user's item sequence, predicting the next item at every step.

    Hidasi, Karatzoglou, Baltrunas & Tikk, "Session-based Recommendations with
    Recurrent Neural Networks", ICLR 2016; the softmax cross-entropy over the
    whole catalogue follows Hidasi & Karatzoglou, "Recurrent Neural Networks
    with Top-k Gains for Session-based Recommendations", CIKM 2018 (full
    softmax instead of sampled negatives, affordable at this catalogue size).

    ``h_t = GRU(dropout(E[x_1..x_t]))``; ``o_t = W dropout(h_t)`` (a linear
    projection, only when its input and output sizes differ);
    ``logits_t = o_t E_out^T + b`` with ``E_out = E`` (``tied``) or a separate
    output embedding of size ``hidden_size``. Loss: mean over the non-padded
    positions ``t`` of ``-log softmax(logits_t)[x_{t+1}]`` (or the sampled softmax of
    ``model.loss``, recframe_seq._loss). Score of a user: ``logits`` of the
    last position of ``context["seq"]``.

    Sequences are left-aligned before the GRU so no padding precedes a user's
    first item; padding positions are never trained on. ``train_rows:
    prefixes`` trains on the last position of each prefix row only (the data
    augmentation of Tan et al., DLRS 2016, which RecBole uses).
    """

    def __init__(self, n_items: int, max_seq_len: int = 50, embedding_dim: int = 64,
                 hidden_size: int = 128, num_layers: int = 1, dropout: float = 0.4,
                 tied: bool = True, init_std: float = 0.05,
                 loss: LossSettings | None = None) -> None:
        super().__init__(n_items, embedding_dim, max_seq_len, loss=loss)
        self.tied = tied
        self.gru = nn.GRU(embedding_dim, hidden_size, num_layers=num_layers, batch_first=True,
                          dropout=dropout if num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        out_dim = embedding_dim if tied else hidden_size
        self.proj: nn.Module = (nn.Linear(hidden_size, out_dim)
                                if hidden_size != out_dim else nn.Identity())
        init_weights(self.item_emb, init_std)
        self.out_emb = None if tied else nn.Embedding(n_items, hidden_size)
        if self.out_emb is not None:
            init_weights(self.out_emb, init_std)
            self.item_embeddings = {"item_emb": 1, "out_emb": 0}  # untied: both sides

    def output_weight(self) -> torch.Tensor:
        return super().output_weight() if self.out_emb is None else self.out_emb.weight

    def _states(self, aligned: torch.Tensor) -> torch.Tensor:
        """Projected GRU outputs ``[B, L, d]`` of left-aligned item ids ``[B, L]``."""
        x = self.dropout(self.item_emb(self.tokens(aligned)))
        h, _ = self.gru(x)
        return self.proj(self.dropout(h))

    def encode(self, seq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """States ``[B, L, d]`` of a left-padded ``seq`` after left-aligning it, and the
        lengths (the state after a row's last item is at ``lengths - 1``)."""
        aligned, lengths = left_align(seq)
        return self._states(aligned), lengths

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.train_rows == "prefixes":  # one target per row: its last item
            inputs, targets = last_target_pairs(trim(batch["seq"]))
            return self.train_loss(self.last_state(inputs), targets)
        aligned, _ = left_align(trim(batch["seq"]))
        inputs, targets, valid = next_item_pairs(aligned)
        h = self._states(inputs)
        return self.train_loss(h[valid], targets[valid])

    def last_state(self, seq: torch.Tensor) -> torch.Tensor:
        """The state after each row's most recent item, ``[B, d]``, of a left-padded ``seq``."""
        h, lengths = self.encode(seq)
        return h[torch.arange(len(h), device=h.device), (lengths - 1).clamp(min=0)]

    def score(self, users: torch.Tensor, context: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.logits(self.last_state(trim(last_window(context["seq"], self.max_seq_len))))


def build_gru4rec(info: DataInfo, cfg: Any) -> GRU4Rec:
    max_len, rows, choices = sequence_settings(
        {"max_seq_len": 50, "train_rows": "recent"}, info, cfg)
    return with_choices(GRU4Rec(
        n_items=info.n_items,
        max_seq_len=max_len,
        embedding_dim=get_int(cfg, "embedding_dim", 64),
        hidden_size=get_int(cfg, "hidden_size", 128),
        num_layers=get_int(cfg, "num_layers", 1),
        dropout=get_float(cfg, "dropout", 0.4, 0.0, 1.0, high_open=True),
        tied=get_bool(cfg, "tied", True),
        init_std=get_float(cfg, "init_std", 0.05, 0.0, low_open=True),
        loss=loss_settings(cfg, info.n_items),
    ), rows, choices, cfg, reference_rows=64)

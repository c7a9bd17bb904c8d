"""SASRec: causal self-attention over the item sequence, full or sampled softmax loss."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from recframe.api import DataInfo
from recframe_seq._common import (
    CausalSequenceModel,
    encode_last_position,
    init_weights,
    sequence_settings,
    transformer_params,
    with_choices,
)
from recframe_seq._loss import LossSettings, loss_settings


def causal_padding_mask(pad: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Boolean attention mask ``[B * heads, L, L]`` (True = blocked): position ``i`` sees
    the real items at positions ``<= i``. Every position may attend to itself, so rows
    of padding never become all-blocked (which would turn softmax into NaN)."""
    length = pad.shape[1]
    eye = torch.eye(length, dtype=torch.bool, device=pad.device)
    future = torch.ones(length, length, dtype=torch.bool, device=pad.device).triu(1)
    mask = (future | pad.unsqueeze(1)) & ~eye  # [B, L, L]
    return mask.repeat_interleave(num_heads, dim=0)


class SASRec(CausalSequenceModel):
    """Self-attentive sequential recommendation.

    Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018.
    Input ``x_t = sqrt(d) E[i_t] + P[t]`` (learned absolute positions; the most
    recent item is always at position ``L-1`` because sequences are
    left-padded), dropout, then ``num_blocks`` causal self-attention blocks.
    We use pre-LN blocks (LayerNorm before attention and before the
    feed-forward, plus a final LayerNorm), as the authors' code normalises the
    queries before attention and pre-LN trains stably without warm-up.

    Loss (``loss: ce``, default): softmax cross-entropy over all items at every
    non-padded position, ``-log softmax(h_t E^T + b)[i_{t+1}]`` -- the "full
    CE" variant that beats the paper's binary cross-entropy with one negative
    (Klenitskiy & Vasilev, "Turning Dross Into Gold Loss: is BERT4Rec really
    better than SASRec?", RecSys 2023; Petrov & Macdonald, "gSASRec", RecSys
    2023). ``loss: {name: sampled_softmax, ...}``: sampled softmax over the
    positive and negatives shared by the batch (uniform, popularity or
    in-batch), accidental hits masked, optional logQ correction, temperature and
    L2-normalised embeddings (``recframe_seq._loss``; the legacy ``loss:
    sampled`` with ``num_negatives``/``sampling``/``logq_correction`` still works).

    Score of a user: ``h_L E^T + b``, the last position's output against the
    (tied) item embeddings.

    ``train_rows: prefixes`` trains on one target per row instead, the last
    item of each prefix row (the RecBole protocol; see ``SequenceBatches``), and
    computes the last block for that position only, as scoring does.
    """

    def __init__(self, n_items: int, max_seq_len: int = 50, embedding_dim: int = 64,
                 num_blocks: int = 2, num_heads: int = 1, ffn_dim: int = 256,
                 dropout: float = 0.2, init_std: float = 0.02,
                 loss: LossSettings | None = None) -> None:
        super().__init__(n_items, embedding_dim, max_seq_len, loss=loss)
        self.num_heads = num_heads
        self.pos_emb = nn.Embedding(max_seq_len, embedding_dim)
        self.emb_dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(
            embedding_dim, num_heads, ffn_dim, dropout, activation="gelu",
            batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_blocks, norm=nn.LayerNorm(embedding_dim),
                                             enable_nested_tensor=False)
        init_weights(self, init_std)

    def _inputs(self, seq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """Encoder inputs ``[B, L, d]``, the attention mask, and whether it is purely
        causal (no padding in the batch: attention then runs as a causal kernel
        without materialising a per-row mask)."""
        self.check_length(seq)
        length = seq.shape[1]
        pad = seq < 0
        positions = torch.arange(self.max_seq_len - length, self.max_seq_len, device=seq.device)
        x = self.item_emb(self.tokens(seq)) * math.sqrt(self.item_emb.embedding_dim)
        x = self.emb_dropout(x + self.pos_emb(positions))
        if self.static_shapes or bool(pad.any()):
            x = x * (~pad).unsqueeze(-1)
            return x, causal_padding_mask(pad, self.num_heads), False
        causal = torch.ones(length, length, dtype=torch.bool, device=seq.device).triu(1)
        return x, causal, True

    def encode(self, seq: torch.Tensor) -> torch.Tensor:
        """Outputs ``[B, L, d]`` for a left-padded ``seq`` ``[B, L]`` (L <= max_seq_len)."""
        x, mask, is_causal = self._inputs(seq)
        return self.encoder(x, mask=mask, is_causal=is_causal)

    def encode_last(self, seq: torch.Tensor) -> torch.Tensor:
        """``encode(seq)[:, -1]`` (``[B, d]``) without the last block's other positions."""
        x, mask, is_causal = self._inputs(seq)
        return encode_last_position(self.encoder, x, mask=mask, is_causal=is_causal)


def build_sasrec(info: DataInfo, cfg: Any) -> SASRec:
    max_len, rows, choices = sequence_settings(
        {"max_seq_len": 50, "train_rows": "recent"}, info, cfg)
    params = transformer_params(info, cfg, {
        "embedding_dim": 64, "num_blocks": 2, "num_heads": 1,
        "ffn_dim": 256, "dropout": 0.2, "init_std": 0.02})
    return with_choices(SASRec(
        **params, max_seq_len=max_len,
        loss=loss_settings(cfg, info.n_items),
    ), rows, choices, cfg, reference_rows=64)

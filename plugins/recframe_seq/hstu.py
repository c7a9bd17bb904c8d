"""HSTU: a sequential transducer with pointwise (SiLU) attention and gating."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from recframe.api import DataInfo
from recframe_seq._common import (
    CausalSequenceModel,
    get_float,
    get_int,
    init_weights,
    sequence_settings,
    with_choices,
)
from recframe_seq._loss import LossSettings, loss_settings

#: HSTU's loss in the paper's public experiments (ML-1M, ML-20M, Amazon Books)
HSTU_LOSS = {"name": "sampled_softmax", "num_negatives": 128, "temperature": 0.05,
             "negatives": "uniform", "logq_correction": False, "l2_norm": True}


class HSTUBlock(nn.Module):
    """One HSTU layer (Zhai et al., ICML 2024, eq. 1-3), on a left-padded batch.

    ``U, V, Q, K = split(SiLU(W_1 LayerNorm(x) + b_1))`` per head;
    ``A = SiLU(Q K^T + rab) / n`` (pointwise, no softmax; ``rab`` a learned bias per
    relative position ``i - j``, ``n`` = ``max_seq_len``, a constant so a shorter,
    trimmed batch gives the same values); ``A`` times the one fused mask (causal and
    real keys); ``y = x + W_2 dropout(U * LayerNorm(A V))``. No feed-forward
    sub-layer: the gating by ``U`` takes its place.
    """

    def __init__(self, dim: int, num_heads: int, attention_dim: int, linear_dim: int,
                 max_seq_len: int, dropout: float, attn_dropout: float) -> None:
        super().__init__()
        self.heads, self.dqk, self.dv = num_heads, attention_dim, linear_dim
        self.max_seq_len = max_seq_len
        self.uvqk = nn.Linear(dim, num_heads * (2 * linear_dim + 2 * attention_dim))
        self.out = nn.Linear(num_heads * linear_dim, dim)
        #: relative-position bias, one weight per distance 0..max_seq_len-1 (causal)
        self.rel_bias = nn.Parameter(torch.zeros(max_seq_len))
        self.dropout = nn.Dropout(dropout)
        self.attn_dropout = attn_dropout

    def forward(self, x: torch.Tensor, mask: torch.Tensor, distance: torch.Tensor,
                last_only: bool = False) -> torch.Tensor:
        """``x`` ``[B, L, d]``; ``mask`` ``[B, 1, L, L]`` float (1/n where query ``i`` may
        read key ``j``, else 0); ``distance`` ``[L, L]`` (``i - j`` clamped at 0).
        ``last_only``: compute the last position's output alone, ``[B, 1, d]``."""
        batch, length, dim = x.shape
        h, dqk, dv = self.heads, self.dqk, self.dv
        uvqk = F.silu(self.uvqk(F.layer_norm(x, (dim,))))
        u, v, q, k = uvqk.split([h * dv, h * dv, h * dqk, h * dqk], dim=-1)
        bias = self.rel_bias[distance]  # [L, L]
        if last_only:  # keys and values from every position, the last query alone
            q, u, bias, mask, x = q[:, -1:], u[:, -1:], bias[-1:], mask[..., -1:, :], x[:, -1:]
        queries = q.shape[1]
        q = q.view(batch, queries, h, dqk).transpose(1, 2)
        k = k.view(batch, length, h, dqk).transpose(1, 2)
        v = v.view(batch, length, h, dv).transpose(1, 2)
        attn = F.silu(q @ k.transpose(-1, -2) + bias) * mask  # [B, H, Lq, L]
        if self.attn_dropout > 0:
            attn = F.dropout(attn, self.attn_dropout, self.training)
        o = (attn @ v).transpose(1, 2).reshape(batch, queries, h * dv)
        y = u * F.layer_norm(o, (h * dv,))
        return x + self.out(self.dropout(y))


class HSTU(CausalSequenceModel):
    """Hierarchical Sequential Transduction Units for next-item prediction.

    Zhai, Liao, Liu, Wang, Li, Cao, Gao, Gong, Gu, He, Lu & Shi, "Actions Speak
    Louder than Words: Trillion-Parameter Sequential Transducers for Generative
    Recommendations", ICML 2024 (code: github.com/meta-recsys/generative-recommenders).
    Input ``x_t = sqrt(d) E[i_t] + P[t]`` (learned positions counted from the most
    recent item), dropout, padding zeroed; then ``num_blocks`` :class:`HSTUBlock`
    layers (pointwise SiLU attention normalised by the sequence length, gating,
    relative-position bias) trained autoregressively: position ``t`` predicts
    ``i_{t+1}``. The paper's relative *time* bias is not used: recframe's sequence
    batches carry the order of the items, not their timestamps.

    Loss: ``model.loss``, by default the paper's sampled softmax (128 uniform
    negatives shared by the batch, temperature 0.05, L2-normalised output and item
    embeddings; ``recframe_seq._loss``). Score of a user: the cosine similarity of
    the last position's output with every item embedding (the loss's similarity).
    Scoring runs the last block for the last query only. Pure PyTorch: one fused
    ``[B, 1, L, L]`` mask per batch, batched matrix products, no custom kernels.
    """

    def __init__(self, n_items: int, max_seq_len: int = 50, embedding_dim: int = 50,
                 num_blocks: int = 2, num_heads: int = 1, attention_dim: int = 50,
                 linear_dim: int = 50, dropout: float = 0.2, attn_dropout: float = 0.0,
                 init_std: float = 0.02, loss: LossSettings | None = None) -> None:
        super().__init__(n_items, embedding_dim, max_seq_len, loss=loss)
        self.pos_emb = nn.Embedding(max_seq_len, embedding_dim)
        self.emb_dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            HSTUBlock(embedding_dim, num_heads, attention_dim, linear_dim, max_seq_len,
                      dropout, attn_dropout) for _ in range(num_blocks))
        init_weights(self, init_std)

    def _inputs(self, seq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Block inputs ``[B, L, d]``, the fused mask ``[B, 1, L, L]`` (``1/n`` where
        query ``i`` reads key ``j <= i`` and ``j`` is an item, else 0) and the relative
        distances ``[L, L]``."""
        self.check_length(seq)
        length = seq.shape[1]
        real = seq >= 0
        positions = torch.arange(self.max_seq_len - length, self.max_seq_len, device=seq.device)
        x = self.item_emb(self.tokens(seq)) * math.sqrt(self.item_emb.embedding_dim)
        x = self.emb_dropout(x + self.pos_emb(positions)) * real.unsqueeze(-1)
        idx = torch.arange(length, device=seq.device)
        distance = idx.unsqueeze(1) - idx.unsqueeze(0)
        causal = distance >= 0
        mask = (causal & real.unsqueeze(1)).unsqueeze(1).to(x.dtype) / self.max_seq_len
        return x, mask, distance.clamp(min=0)

    def encode(self, seq: torch.Tensor) -> torch.Tensor:
        """Outputs ``[B, L, d]`` for a left-padded ``seq`` ``[B, L]`` (L <= max_seq_len)."""
        x, mask, distance = self._inputs(seq)
        for block in self.blocks:
            x = block(x, mask, distance)
        return x

    def encode_last(self, seq: torch.Tensor) -> torch.Tensor:
        """``encode(seq)[:, -1]`` (``[B, d]``), the last block for the last query only."""
        x, mask, distance = self._inputs(seq)
        *rest, last = self.blocks
        for block in rest:
            x = block(x, mask, distance)
        return last(x, mask, distance, last_only=True)[:, 0]


def build_hstu(info: DataInfo, cfg: Any) -> HSTU:
    max_len, rows, choices = sequence_settings(
        {"max_seq_len": 50, "train_rows": "recent"}, info, cfg)
    heads = get_int(cfg, "num_heads", 1)
    dim = get_int(cfg, "embedding_dim", 50)
    return with_choices(HSTU(
        n_items=info.n_items, max_seq_len=max_len, embedding_dim=dim,
        num_blocks=get_int(cfg, "num_blocks", 2), num_heads=heads,
        attention_dim=get_int(cfg, "attention_dim", dim),
        linear_dim=get_int(cfg, "linear_dim", dim),
        dropout=get_float(cfg, "dropout", 0.2, 0.0, 1.0, high_open=True),
        attn_dropout=get_float(cfg, "attn_dropout", 0.0, 0.0, 1.0, high_open=True),
        init_std=get_float(cfg, "init_std", 0.02, 0.0, low_open=True),
        # without a loss block (a config built in code): the paper's, negatives capped by
        # the catalogue
        loss=loss_settings(cfg, info.n_items, default={
            **HSTU_LOSS, "num_negatives": min(128, max(1, info.n_items - 1))}),
    ), rows, choices, cfg, reference_rows=64)

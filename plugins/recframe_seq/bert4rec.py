"""BERT4Rec: a bidirectional transformer trained to fill in masked items (Cloze task)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from recframe.api import DataInfo
from recframe_seq._common import (
    SequenceModel,
    encode_last_position,
    get_bool,
    get_float,
    init_weights,
    last_window,
    row_chunks,
    sequence_settings,
    transformer_params,
    trim,
    with_choices,
)
from recframe_seq._loss import LossSettings, loss_settings


class BERT4Rec(SequenceModel):
    """Bidirectional self-attention over the item sequence with a Cloze objective.

    Sun, Liu, Wu, Pei, Lin, Ou & Jiang, "BERT4Rec: Sequential Recommendation
    with Bidirectional Encoder Representations from Transformer", CIKM 2019.
    Tokens: ``0`` padding, ``1..n_items`` items, ``n_items + 1`` ``[MASK]``.
    Input ``x_t = LayerNorm(E[i_t] + P[t])`` with dropout, then ``num_blocks``
    transformer blocks (GELU, as in BERT) attending to every non-padded
    position. Blocks are pre-LN by default (``pre_ln``: LayerNorm before
    attention and feed-forward, plus a final LayerNorm): the post-LN blocks of
    the original stalled at Pop level in one of our ML-100K runs without
    learning-rate warm-up, pre-LN did not. Output head ``o_t = LayerNorm(GELU(W h_t))``, logits
    ``o_t E^T + b`` with the item embeddings tied.

    Training: each real item of the last ``max_seq_len`` training items is
    replaced by ``[MASK]`` with probability ``mask_prob``; a row with no
    masked item gets its last item masked. Loss: softmax cross-entropy over
    all items at the masked positions, ``-log softmax(o_t E^T + b)[i_t]`` (or the
    sampled softmax of ``model.loss``, recframe_seq._loss).
    The masks come from torch's global RNG on the batch's device, so a seeded
    run is reproducible.

    Score of a user: the sequence is shifted left by one, ``[MASK]`` is appended
    at the last position, and the logits of that position are the scores.

    BERT4Rec converges much more slowly than SASRec (Petrov & Macdonald, "A
    Systematic Review and Replicability Study of BERT4Rec for Sequential
    Recommendation", RecSys 2022), hence the larger epoch budget and patience
    in ``conf/model/bert4rec.yaml``.
    """

    def __init__(self, n_items: int, max_seq_len: int = 50, embedding_dim: int = 64,
                 num_blocks: int = 2, num_heads: int = 2, ffn_dim: int = 256,
                 dropout: float = 0.2, init_std: float = 0.02, mask_prob: float = 0.2,
                 pre_ln: bool = True, loss: LossSettings | None = None) -> None:
        super().__init__(n_items, embedding_dim, max_seq_len, extra_tokens=1, loss=loss)
        self.mask_token = n_items + 1
        self.mask_prob = mask_prob
        self.pos_emb = nn.Embedding(max_seq_len, embedding_dim)
        self.emb_norm = nn.LayerNorm(embedding_dim)
        self.emb_dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(
            embedding_dim, num_heads, ffn_dim, dropout, activation="gelu",
            batch_first=True, norm_first=pre_ln)
        final_norm = nn.LayerNorm(embedding_dim) if pre_ln else None
        self.encoder = nn.TransformerEncoder(layer, num_blocks, norm=final_norm,
                                             enable_nested_tensor=False)
        self.head = nn.Sequential(nn.Linear(embedding_dim, embedding_dim), nn.GELU(),
                                  nn.LayerNorm(embedding_dim))
        init_weights(self, init_std)

    def _inputs(self, tokens: torch.Tensor) -> torch.Tensor:
        self.check_length(tokens)
        length = tokens.shape[1]
        positions = torch.arange(self.max_seq_len - length, self.max_seq_len,
                                 device=tokens.device)
        return self.emb_dropout(self.emb_norm(self.item_emb(tokens) + self.pos_emb(positions)))

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        """Head outputs ``[B, L, d]`` for a token matrix ``[B, L]`` (0 = padding)."""
        h = self.encoder(self._inputs(tokens), src_key_padding_mask=tokens == 0)
        return self.head(h)

    def encode_last(self, tokens: torch.Tensor) -> torch.Tensor:
        """``encode(tokens)[:, -1]`` (``[B, d]``) without the last block's other positions."""
        h = encode_last_position(self.encoder, self._inputs(tokens),
                                 key_padding_mask=tokens == 0)
        return self.head(h)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        seq = trim(batch["seq"][:, 1:])  # the last max_seq_len items, left-padded
        tokens = self.tokens(seq)
        real = seq >= 0
        masked = (torch.rand(seq.shape, device=seq.device) < self.mask_prob) & real
        none = ~masked.any(1)
        masked[:, -1] |= none & real[:, -1]
        inputs = tokens.masked_fill(masked, self.mask_token)
        h = self.encode(inputs)
        return self.train_loss(h[masked], seq[masked])

    def score(self, users: torch.Tensor, context: dict[str, torch.Tensor]) -> torch.Tensor:
        seq = trim(last_window(context["seq"], self.max_seq_len - 1))
        tokens = self.tokens(seq)
        mask = tokens.new_full((len(tokens), 1), self.mask_token)
        tokens = torch.cat([tokens, mask], dim=1)
        return self.logits(torch.cat([self.encode_last(part) for part in row_chunks(tokens)]))


def build_bert4rec(info: DataInfo, cfg: Any) -> BERT4Rec:
    # cloze training masks items anywhere in a row: prefix rows would only repeat them
    max_len, rows, choices = sequence_settings(
        {"max_seq_len": 50, "min_seq_len": 2, "train_rows": "recent"}, info, cfg,
        allowed=("recent", "windows"))
    params = transformer_params(info, cfg, {
        "embedding_dim": 64, "num_blocks": 2,
        "num_heads": 2, "ffn_dim": 256, "dropout": 0.2, "init_std": 0.02})
    mask_prob = get_float(cfg, "mask_prob", 0.2, 0.0, 1.0, low_open=True)
    return with_choices(
        BERT4Rec(**params, max_seq_len=max_len, mask_prob=mask_prob,
                 pre_ln=get_bool(cfg, "pre_ln", True),
                 loss=loss_settings(cfg, info.n_items)), rows, choices, cfg,
        reference_rows=32)

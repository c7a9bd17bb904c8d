"""TIGER: generative retrieval of the next item's semantic ID.

Rajput et al., "Recommender Systems with Generative Retrieval", NeurIPS 2023. Every item
has a semantic ID (:mod:`recframe_generative.semantic_ids`): ``levels`` RQ-VAE codes plus
a collision number. A user's history becomes the flat sequence of its items' code
tokens; an encoder-decoder Transformer reads it and, trained with teacher forcing,
decodes the next item's codes one level at a time. Recommending is a beam search over
the decoder constrained to valid IDs (:mod:`recframe_generative.beam`); the beam's items
become scores for the standard full-ranking evaluator: beam items get their summed
log-probabilities (descending, best first), every other item one fixed low score
(:data:`PAD_SCORE`), so the list is padded and ranked like any model's.

Departures from the paper, all for the 2-core machine or for this framework: no user-id
token (the paper hashes user ids into 2,000 tokens; without it the model scores new users
from their history, ``scores_from_history``), learned absolute positions, pre-LN blocks,
tied input/output token embeddings, smaller sizes (conf/model/tiger.yaml), and the beam
skips items the user has already seen (``exclude_seen``), which the evaluator would mask.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from recframe.api import DataError, RecData, RecModel, TrainFormat
from recframe_generative.beam import PrefixTrie, beam_search
from recframe_generative.semantic_ids import SemanticIdSettings, build_semantic_ids

PAD, BOS = 0, 1
#: the score of every item the beam did not produce (finite, below any log-probability)
PAD_SCORE = -1.0e9


def last_window(seq: torch.Tensor, length: int) -> torch.Tensor:
    """The last ``length`` columns of a left-padded ``seq`` (left-padded if shorter)."""
    if seq.shape[1] >= length:
        return seq[:, seq.shape[1] - length:]
    return torch.cat([seq.new_full((seq.shape[0], length - seq.shape[1]), -1), seq], dim=1)


def trim(seq: torch.Tensor) -> torch.Tensor:
    """Drop leading columns that are padding in every row (keeps at least one)."""
    longest = int((seq >= 0).sum(1).max()) if seq.numel() else 0
    return seq[:, seq.shape[1] - max(longest, 1):]


class TIGER(RecModel):
    """Encoder-decoder Transformer over semantic-ID tokens (see the module docstring).

    Tokens: ``0`` padding, ``1`` start/summary token, then one block of tokens per
    level (``codebook_size`` for the RQ-VAE levels, ``collision_codes`` for the last).
    The encoder reads the history's tokens, oldest first, followed by one ``1`` token
    (so an empty history still has a key to attend to); the decoder starts from ``1``
    and predicts level ``d``'s code from the codes before it, with a softmax over that
    level's block only. Training: cross-entropy of every level's code, teacher forced.
    """

    train_format = TrainFormat.SEQUENCES
    needs = frozenset({"timestamps"})
    scores_from_history = True

    def __init__(self, n_items: int, *, semantic: SemanticIdSettings, max_seq_len: int = 10,
                 max_positions: int | None = None, embedding_dim: int = 64,
                 num_heads: int = 2, encoder_layers: int = 2, decoder_layers: int = 2,
                 ffn_dim: int = 256, dropout: float = 0.1, beam_size: int = 20,
                 temperature: float = 1.0, exclude_seen: bool = True,
                 eval_chunk_rows: int = 4096) -> None:
        super().__init__()
        self.n_items = n_items
        self.semantic = semantic
        self.max_seq_len = max_seq_len
        self.widths = [semantic.codebook_size] * semantic.levels + [semantic.collision_codes]
        self.depth = len(self.widths)
        self.max_positions = max_positions or max_seq_len * self.depth + 1
        self.beam_size = beam_size
        self.temperature = temperature
        self.exclude_seen = exclude_seen
        self.eval_chunk_rows = eval_chunk_rows
        offsets = np.concatenate([[0], np.cumsum(self.widths)[:-1]]) + 2
        self.offsets = [int(o) for o in offsets]
        vocab = 2 + sum(self.widths)
        self.token_emb = nn.Embedding(vocab, embedding_dim, padding_idx=PAD)
        self.enc_pos = nn.Embedding(self.max_positions, embedding_dim)
        self.dec_pos = nn.Embedding(self.depth, embedding_dim)
        self.emb_dropout = nn.Dropout(dropout)
        enc_layer = nn.TransformerEncoderLayer(embedding_dim, num_heads, ffn_dim, dropout,
                                               activation="gelu", batch_first=True,
                                               norm_first=True)
        dec_layer = nn.TransformerDecoderLayer(embedding_dim, num_heads, ffn_dim, dropout,
                                               activation="gelu", batch_first=True,
                                               norm_first=True)
        self.encoder = nn.TransformerEncoder(enc_layer, encoder_layers,
                                             norm=nn.LayerNorm(embedding_dim),
                                             enable_nested_tensor=False)
        self.decoder = nn.TransformerDecoder(dec_layer, decoder_layers,
                                             norm=nn.LayerNorm(embedding_dim))
        self.out_bias = nn.Parameter(torch.zeros(vocab))
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.trunc_normal_(module.weight, std=0.02, a=-0.04, b=0.04)
                if isinstance(module, nn.Linear) and module.bias is not None:
                    nn.init.zeros_(module.bias)
        with torch.no_grad():
            self.token_emb.weight[PAD].zero_()
        # every item's semantic ID (-1: none); saved with the checkpoint
        self.register_buffer("sem_ids", torch.full((n_items, self.depth), -1, dtype=torch.long))
        self.trie: PrefixTrie | None = None
        self.semantic_record: dict[str, Any] | None = None
        self.reset_beam_stats()
        self.register_load_state_dict_post_hook(TIGER._post_load)
        self.scores_cold_items = semantic.source == "text"

    # -- semantic IDs ---------------------------------------------------------------
    def prepare(self, data: RecData) -> None:
        ids = build_semantic_ids(data, self.semantic)
        self.sem_ids = torch.from_numpy(ids.codes).to(self.sem_ids.device)
        self.semantic_record = ids.stats
        self._after_load()

    @staticmethod
    def _post_load(module: TIGER, incompatible_keys: Any) -> None:
        module._after_load()

    def _after_load(self) -> None:
        """Rebuild the trie from the (possibly just loaded) semantic IDs; start counting
        the beam's output afresh (the test loads the best checkpoint first)."""
        self.trie = PrefixTrie(self.sem_ids.cpu().numpy(), self.widths).to(self.sem_ids.device)
        self.reset_beam_stats()

    def reset_beam_stats(self) -> None:
        self.beam_users, self.beam_items, self.beam_min = 0, 0, None

    def tokens(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``[..., d]`` of levels ``0..d-1`` to tokens (``-1`` -> padding)."""
        offsets = torch.tensor(self.offsets[:codes.shape[-1]], dtype=torch.long,
                               device=codes.device)
        return torch.where(codes >= 0, codes + offsets, torch.zeros_like(codes))

    def history_tokens(self, seq: torch.Tensor) -> torch.Tensor:
        """Left-padded item ids ``[B, L]`` -> tokens ``[B, L * depth + 1]`` (ends with ``1``)."""
        codes = self.sem_ids[seq.clamp(min=0)]
        codes = codes.masked_fill((seq < 0).unsqueeze(-1), -1)
        flat = self.tokens(codes).reshape(seq.shape[0], -1)
        return torch.cat([flat, flat.new_full((seq.shape[0], 1), BOS)], dim=1)

    # -- the network -------------------------------------------------------------------
    def encode(self, seq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder memory ``[B, S, d]`` and its padding mask for item histories ``seq``."""
        tokens = self.history_tokens(trim(seq))
        length = tokens.shape[1]
        if length > self.max_positions:
            raise DataError(
                f"TIGER: a history of {(length - 1) // self.depth} items is "
                f"{length} tokens, more than model.max_positions={self.max_positions}. Raise "
                f"model.max_positions to at least {length} (or leave it auto, "
                f"max_seq_len x {self.depth} + 1), or shorten model.max_seq_len.")
        positions = torch.arange(self.max_positions - length, self.max_positions,
                                 device=tokens.device)
        scale = math.sqrt(self.token_emb.embedding_dim)
        x = self.emb_dropout(self.token_emb(tokens) * scale + self.enc_pos(positions))
        pad = tokens == PAD
        return self.encoder(x, src_key_padding_mask=pad), pad

    def decode(self, prefix: torch.Tensor, memory: torch.Tensor,
               memory_pad: torch.Tensor) -> torch.Tensor:
        """Decoder states ``[B, d + 1, dim]`` for code prefixes ``[B, d]`` (start token
        first, causal)."""
        tokens = torch.cat([prefix.new_full((prefix.shape[0], 1), BOS), self.tokens(prefix)], 1)
        length = tokens.shape[1]
        scale = math.sqrt(self.token_emb.embedding_dim)
        x = self.token_emb(tokens) * scale + self.dec_pos(torch.arange(length,
                                                                       device=tokens.device))
        causal = torch.ones(length, length, dtype=torch.bool, device=tokens.device).triu(1)
        return self.decoder(self.emb_dropout(x), memory, tgt_mask=causal, tgt_is_causal=True,
                            memory_key_padding_mask=memory_pad)

    def decode_beams(self, prefix: torch.Tensor, memory: torch.Tensor,
                     memory_pad: torch.Tensor) -> torch.Tensor:
        """The last decoder state ``[B, W, dim]`` of each of ``W`` code prefixes per user
        (``prefix`` ``[B, W, d]``), equal to :meth:`decode` per prefix.

        A user's ``W`` prefixes run as one decoder sequence of ``W x (d + 1)`` tokens with
        a block-diagonal causal mask (each prefix sees only its own earlier tokens), so
        cross-attention projects each user's encoder memory once, not once per beam.
        """
        batch, width, d = prefix.shape
        start = prefix.new_full((batch, width, 1), BOS)
        tokens = torch.cat([start, self.tokens(prefix)], dim=2).reshape(batch, -1)
        span = d + 1
        index = torch.arange(width * span, device=prefix.device)
        beam, pos = index // span, index % span
        blocked = (beam.unsqueeze(1) != beam.unsqueeze(0)) | (pos.unsqueeze(0) > pos.unsqueeze(1))
        scale = math.sqrt(self.token_emb.embedding_dim)
        x = self.token_emb(tokens) * scale + self.dec_pos(pos)
        h = self.decoder(self.emb_dropout(x), memory, tgt_mask=blocked,
                         memory_key_padding_mask=memory_pad)
        return h.view(batch, width, span, -1)[:, :, -1]

    def level_logits(self, h: torch.Tensor, level: int) -> torch.Tensor:
        """Logits ``[..., widths[level]]`` of level ``level``'s codes (tied embeddings)."""
        lo, hi = self.offsets[level], self.offsets[level] + self.widths[level]
        return h @ self.token_emb.weight[lo:hi].T + self.out_bias[lo:hi]

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        seq = batch["seq"]
        history, target = seq[:, :-1], seq[:, -1]
        codes = self.sem_ids[target.clamp(min=0)]
        keep = (target >= 0) & (codes >= 0).all(1)
        if not bool(keep.all()):
            history, codes = history[keep], codes[keep]
        if history.shape[0] == 0:  # no target with a semantic ID in this batch
            return self.out_bias.sum() * 0.0
        memory, pad = self.encode(history)
        h = self.decode(codes[:, :-1], memory, pad)
        return sum(F.cross_entropy(self.level_logits(h[:, d], d), codes[:, d])
                   for d in range(self.depth)) / self.depth

    # -- recommending ----------------------------------------------------------------
    def generate(self, seq: torch.Tensor, banned: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """Beam search: the ``beam_size`` best items per user ``[B, beam]`` and their
        summed log-probabilities (``-1`` / ``-inf`` where the beam has no item)."""
        assert self.trie is not None, "call prepare(data) before scoring"
        if self.trie.children[0].device != seq.device:
            self.trie.to(seq.device)
        seq = last_window(seq, self.max_seq_len)
        per_chunk = max(1, self.eval_chunk_rows // self.beam_size)
        items, scores = [], []
        for start in range(0, seq.shape[0], per_chunk):  # user chunks bound the memory
            part = seq[start:start + per_chunk]
            memory, pad = self.encode(part)

            def step(prefix: torch.Tensor, memory=memory, pad=pad) -> torch.Tensor:
                h = self.decode_beams(prefix, memory, pad)
                return F.log_softmax(self.level_logits(h, prefix.shape[2]) / self.temperature,
                                     dim=-1)

            ban = banned[start:start + per_chunk] if banned is not None else None
            i, s = beam_search(step, self.trie, part.shape[0], self.beam_size, ban)
            items.append(i)
            scores.append(s)
        return torch.cat(items), torch.cat(scores)

    def score(self, users: torch.Tensor, context: dict[str, torch.Tensor]) -> torch.Tensor:
        seq = context["seq"]
        batch = seq.shape[0]
        banned = None
        if self.exclude_seen and "seen_rows" in context:
            banned = torch.zeros(batch, self.n_items, dtype=torch.bool, device=seq.device)
            banned[context["seen_rows"], context["seen_cols"]] = True
        items, beam_scores = self.generate(seq, banned)
        out = torch.full((batch, self.n_items), PAD_SCORE, device=seq.device)
        found = items >= 0
        rows = torch.arange(batch, device=seq.device).unsqueeze(1).expand_as(items)
        out[rows[found], items[found]] = beam_scores[found].float()
        counts = found.sum(1)
        self.beam_users += batch
        self.beam_items += int(counts.sum())
        low = int(counts.min()) if batch else 0
        self.beam_min = low if self.beam_min is None else min(self.beam_min, low)
        return out

    def item_annotations(self, items: np.ndarray) -> dict[str, np.ndarray]:
        """``semantic_id`` of each item index, e.g. ``"12-200-7-0"`` (``-`` if none):
        ``recframe recommend`` shows it next to the items."""
        codes = self.sem_ids.cpu().numpy()[items]
        text = np.array(["-".join(map(str, row)) if (row >= 0).all() else "-"
                         for row in codes.reshape(-1, self.depth)], dtype=object)
        return {"semantic_id": text.reshape(items.shape)}

    def run_record(self) -> dict[str, Any]:
        """What ``results.json`` keeps: codebook usage and the beam's output."""
        users = max(self.beam_users, 1)
        return {
            "semantic_ids": self.semantic_record,
            "beam": {
                "beam_size": self.beam_size, "temperature": self.temperature,
                "exclude_seen": self.exclude_seen,
                "padded": True, "pad_score": PAD_SCORE,
                "users": self.beam_users,
                "items_per_user_mean": round(self.beam_items / users, 4),
                "items_per_user_min": self.beam_min,
                "scope": "users scored since the evaluated checkpoint was loaded",
            },
        }

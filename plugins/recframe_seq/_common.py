"""Shared pieces of the sequence models: token mapping, output layer, losses, parameters.

Item ids are shifted by one inside the models: token ``0`` is padding (the
``-1`` of the batches), tokens ``1..n_items`` are items, and BERT4Rec adds
``n_items + 1`` as its ``[MASK]`` token. Scores are returned for item ids
``0..n_items-1`` (tokens ``1..n_items``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from recframe.api import (
    AUTO,
    SEQUENCE_ROWS,
    ConfigError,
    DataInfo,
    RecData,
    RecModel,
    TrainFormat,
    resolve_batch_size,
    resolve_sequence_settings,
)
from recframe_seq._loss import LossSettings, SequenceObjective

PAD = 0


class SequenceModel(RecModel):
    """Base of the next-item models: item embeddings with a padding row and a tied
    output layer ``logits = h @ E[1:n_items+1].T + b``.

    Subclasses implement ``encode(tokens) -> [B, L, d]`` and the loss.
    """

    train_format = TrainFormat.SEQUENCES
    needs = frozenset({"timestamps"})
    scores_from_history = True  # scores come from context["seq"] alone: new users too
    #: item tables ``model.item_text`` can make text-aware (attribute -> row of item 0;
    #: row 0 is padding)
    item_embeddings: dict[str, int] = {"item_emb": 1}  # noqa: RUF012

    def __init__(self, n_items: int, embedding_dim: int, max_seq_len: int,
                 extra_tokens: int = 0, loss: LossSettings | None = None) -> None:
        super().__init__()
        self.n_items = n_items
        self.max_seq_len = max_seq_len
        self.item_emb = nn.Embedding(n_items + 1 + extra_tokens, embedding_dim, padding_idx=PAD)
        self.out_bias = nn.Parameter(torch.zeros(n_items))
        #: the training loss and the matching scores (``model.loss``; recframe_seq._loss)
        self.objective = SequenceObjective(loss or LossSettings(), n_items)
        #: positions (targets) trained on so far: the ``tokens`` of a FLOPs estimate
        self.trained_positions = 0

    def prepare(self, data: RecData) -> None:
        s = self.objective.settings
        if s.sampled and (s.negatives != "uniform" or s.logq_correction):
            self.objective.set_counts(data.item_popularity())

    @staticmethod
    def tokens(seq: torch.Tensor) -> torch.Tensor:
        """Batch item ids (``-1`` = padding) to tokens (``0`` = padding, items from 1)."""
        return seq.clamp(min=-1) + 1

    def output_weight(self) -> torch.Tensor:
        """Output embeddings of the real items, ``[n_items, d]`` (tied with the input)."""
        return self.item_emb.weight[1 : self.n_items + 1]

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """Scores of all items for hidden states ``h`` ``[..., d]`` -> ``[..., n_items]``:
        ``h @ E^T + b``, or the cosine similarity / temperature under ``model.loss.l2_norm``."""
        return self.objective.logits(h, self.output_weight(), self.out_bias)

    def train_loss(self, h: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The configured loss (full or sampled softmax) of outputs ``h`` ``[N, d]`` for
        item ids ``targets`` ``[N]``."""
        self.trained_positions += targets.numel()
        return self.objective(h, targets, self.output_weight(), self.out_bias)

    def check_length(self, seq: torch.Tensor) -> None:
        """Refuse a sequence longer than the model's positions (``max_seq_len``)."""
        if seq.shape[-1] > self.max_seq_len:
            raise ConfigError(
                f"{type(self).__name__} got a sequence of {seq.shape[-1]} positions but has "
                f"only model.max_seq_len={self.max_seq_len} positions; pass the last "
                f"{self.max_seq_len} items (recframe_seq._common.last_window) or retrain "
                f"with a larger model.max_seq_len")


def next_item_pairs(seq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inputs ``seq[:, :-1]``, targets ``seq[:, 1:]`` and the mask of positions to train on
    (both the input and the target are real items)."""
    inputs, targets = seq[:, :-1], seq[:, 1:]
    return inputs, targets, (inputs >= 0) & (targets >= 0)


def trim(seq: torch.Tensor) -> torch.Tensor:
    """Drop the leading columns that are padding in every row of a left-padded ``seq``.

    Exact for our encoders (positions count from the end, padding is never attended
    to or trained on) and saves most of the work when a batch's histories are short.
    """
    longest = int((seq >= 0).sum(1).max()) if seq.numel() else 0
    return seq[:, seq.shape[1] - max(longest, 1) :]


def left_align(seq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Move each row's items to the front (left-padded -> right-padded); also the lengths.

    Causal encoders (the GRU) then see no padding before the first item, and
    position ``lengths - 1`` holds the state after the last item.
    """
    length = seq.shape[1]
    lengths = (seq >= 0).sum(1)
    idx = (torch.arange(length, device=seq.device) + (length - lengths).unsqueeze(1)) % length
    return seq.gather(1, idx), lengths


def last_window(seq: torch.Tensor, length: int) -> torch.Tensor:
    """The last ``length`` columns of a left-padded ``seq``, left-padding if it is shorter."""
    if seq.shape[1] >= length:
        return seq[:, seq.shape[1] - length :]
    pad = seq.new_full((seq.shape[0], length - seq.shape[1]), -1)
    return torch.cat([pad, seq], dim=1)


def encode_last_position(encoder: nn.TransformerEncoder, x: torch.Tensor,
                         mask: torch.Tensor | None = None,
                         key_padding_mask: torch.Tensor | None = None,
                         is_causal: bool = False) -> torch.Tensor:
    """``encoder(x, mask, key_padding_mask)[:, -1]`` (``[B, d]``) for a batch-first
    encoder, computing only what the last position needs.

    Every block but the last runs over all positions (later positions read
    them); the last block runs attention for the last position's query alone
    (keys and values from all positions) and its feed-forward for that one
    position. Scoring reads only the last position, so this skips all but one
    row of the last block's queries and feed-forward. Equal to the full
    forward up to float rounding (tests/test_seq_models.py); pre-LN and post-LN
    blocks. ``is_causal`` says that ``mask`` is the plain causal mask (the last
    query then sees every position, so it needs no mask at all).
    """
    layers = list(encoder.layers)
    for layer in layers[:-1]:
        if _plain_block_applies(layer, mask, key_padding_mask):
            x = _plain_block(layer, x, mask, is_causal)
        else:
            x = layer(x, src_mask=mask, src_key_padding_mask=key_padding_mask,
                      is_causal=is_causal)
    last = layers[-1]
    query_mask = mask[..., -1:, :] if mask is not None and not is_causal else None

    def attend(h: torch.Tensor) -> torch.Tensor:
        out = last.self_attn(h[:, -1:], h, h, attn_mask=query_mask,
                             key_padding_mask=key_padding_mask, need_weights=False)[0]
        return last.dropout1(out)

    def feed_forward(h: torch.Tensor) -> torch.Tensor:
        return last.dropout2(last.linear2(last.dropout(last.activation(last.linear1(h)))))

    if last.norm_first:
        y = x[:, -1:] + attend(last.norm1(x))
        y = y + feed_forward(last.norm2(y))
    else:
        y = last.norm1(x[:, -1:] + attend(x))
        y = last.norm2(y + feed_forward(y))
    if encoder.norm is not None:
        y = encoder.norm(y)
    return y[:, 0]


def _plain_block_applies(layer: nn.TransformerEncoderLayer, mask: torch.Tensor | None,
                         key_padding_mask: torch.Tensor | None) -> bool:
    """Whether :func:`_plain_block` computes ``layer``'s forward exactly: in eval mode
    (no dropout), a batch-first packed-projection attention, no key padding mask,
    and a boolean attention mask or none."""
    attn = layer.self_attn
    return (not layer.training and attn.batch_first and attn._qkv_same_embed_dim
            and attn.in_proj_bias is not None and key_padding_mask is None
            and (mask is None or mask.dtype == torch.bool))


def _plain_block(layer: nn.TransformerEncoderLayer, x: torch.Tensor,
                 mask: torch.Tensor | None, is_causal: bool) -> torch.Tensor:
    """``layer(x, src_mask=mask, is_causal=is_causal)`` in eval mode, with the
    self-attention written out: one packed projection viewed as ``[3, B, H, L, d_h]``
    and ``scaled_dot_product_attention`` on those views. ``nn.MultiheadAttention``
    instead turns batch-first inputs sequence-first and copies the projections
    into per-head layouts: extra passes over the activations, which this skips.
    Same values (tests/test_seq_models.py checks both against each other)."""

    def attend(h: torch.Tensor) -> torch.Tensor:
        attn = layer.self_attn
        batch, length, dim = h.shape
        heads = attn.num_heads
        qkv = F.linear(h, attn.in_proj_weight, attn.in_proj_bias)
        q, k, v = qkv.view(batch, length, 3, heads, dim // heads).permute(2, 0, 3, 1, 4)
        if mask is None or is_causal:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=mask is not None)
        else:  # nn.MultiheadAttention's True = blocked; SDPA's True = allowed
            allowed = ~(mask.view(batch, heads, length, length) if mask.dim() == 3 else mask)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        return attn.out_proj(out.transpose(1, 2).reshape(batch, length, dim))

    def feed_forward(h: torch.Tensor) -> torch.Tensor:
        return layer.linear2(layer.activation(layer.linear1(h)))

    if layer.norm_first:
        x = x + attend(layer.norm1(x))
        return x + feed_forward(layer.norm2(x))
    x = layer.norm1(x + attend(x))
    return layer.norm2(x + feed_forward(x))


#: Tokens per scoring chunk per CPU thread: a chunk's ``[tokens, ffn_dim]``
#: intermediates then stay in the core's L2 cache. Chosen by timing SASRec
#: scoring (d=64, ffn 256, 50 positions, 512-user batches) on the 2-core
#: development machine: on one thread 4,096 tokens per chunk beat 8,192 on
#: ML-100K and on the ML-1M-size set; on two threads the two were within noise.
#: The effect shows in ``experiments/bench/recbole_compare.py``'s
#: ``eval_floor_seconds_sasrec*`` figures.
CHUNK_TOKENS_PER_THREAD = 4096


def row_chunks(rows: torch.Tensor, max_cells: int | None = None) -> tuple[torch.Tensor, ...]:
    """``rows`` ``[B, L]`` split into consecutive chunks of at most ``max_cells`` cells
    (at least one row each) on CPU, whole elsewhere.

    Scoring a large evaluation batch through a transformer on CPU in chunks keeps
    the ``[tokens, ffn_dim]`` intermediates in cache instead of streaming tens of
    megabytes per op; an accelerator wants the whole batch. ``max_cells`` defaults
    to :data:`CHUNK_TOKENS_PER_THREAD` times the intra-op threads.
    """
    if max_cells is None:
        max_cells = CHUNK_TOKENS_PER_THREAD * torch.get_num_threads()
    if rows.device.type != "cpu" or rows.numel() <= max_cells:
        return (rows,)
    per_chunk = max(1, max_cells // max(1, rows.shape[1]))
    return rows.split(per_chunk)


def init_weights(module: nn.Module, std: float) -> None:
    """Truncated-normal init of embeddings and linear layers (BERT-style), zero biases."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.trunc_normal_(m.weight, std=std, a=-2 * std, b=2 * std)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
            if isinstance(m, nn.Embedding) and m.padding_idx is not None:
                with torch.no_grad():
                    m.weight[m.padding_idx].zero_()


# -- parameters ---------------------------------------------------------------
def _read(cfg: Any, key: str, default: Any) -> Any:
    try:
        return cfg.get(key, default) if cfg is not None else default
    except Exception as exc:  # unresolvable interpolation, missing value
        raise ConfigError(f"model.{key}: cannot read the value: {exc}") from exc


def get_int(cfg: Any, key: str, default: int, minimum: int = 1) -> int:
    value = _read(cfg, key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"model.{key} must be an integer >= {minimum}, got {value!r}")
    return value


def get_float(cfg: Any, key: str, default: float, low: float = 0.0, high: float = math.inf,
              high_open: bool = False, low_open: bool = False) -> float:
    value = _read(cfg, key, default)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (
            value < high if high_open else value <= high)
    if not ok:
        lo, hi = "(" if low_open else "[", ")" if high_open else "]"
        raise ConfigError(f"model.{key} must be a number in {lo}{low}, {high}{hi}, got {value!r}")
    return float(value)


def get_bool(cfg: Any, key: str, default: bool) -> bool:
    value = _read(cfg, key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"model.{key} must be true or false, got {value!r}")
    return value


def get_choice(cfg: Any, key: str, default: str, choices: Sequence[str]) -> str:
    value = _read(cfg, key, default)
    if value not in choices:
        raise ConfigError(f"model.{key} must be one of {', '.join(choices)}, got {value!r}")
    return str(value)


def sequence_settings(model_cls_defaults: dict[str, Any], info: DataInfo, cfg: Any,
                      allowed: Sequence[str] = SEQUENCE_ROWS,
                      ) -> tuple[int, str, dict[str, Any]]:
    """``(max_seq_len, train_rows, choices)`` of a sequence model's config, ``auto``
    resolved from the data (:func:`recframe.api.resolve_sequence_settings`).

    The old boolean ``model.sliding_windows`` is still read (``true`` means
    ``train_rows: windows``) so existing configs keep working.
    """
    legacy = _read(cfg, "sliding_windows", None)
    if legacy is not None and not isinstance(legacy, bool):
        raise ConfigError(f"model.sliding_windows must be true or false, got {legacy!r}; "
                          "it is superseded by model.train_rows=windows")
    max_len, rows, choices = resolve_sequence_settings(
        info, cfg, default_len=model_cls_defaults.get("max_seq_len", AUTO),
        min_len=model_cls_defaults.get("min_seq_len", 1),
        default_rows=model_cls_defaults.get("train_rows", AUTO), allowed_rows=allowed)
    if legacy:
        if rows not in ("recent", "windows"):
            raise ConfigError(f"model.sliding_windows=true contradicts "
                              f"model.train_rows={rows}; set only model.train_rows")
        rows = "windows"
        choices.pop("train_rows", None)
    return max_len, rows, choices


def with_choices(model: RecModel, rows: str, choices: dict[str, Any], cfg: Any,
                 reference_rows: int) -> RecModel:
    """Set the model's training rows, its rows per step (``batch_size``, ``auto``
    scaled from ``reference_rows`` at length 50) and the record of its ``auto``
    choices."""
    model.train_rows = rows
    model.train_batch_size, batch_choice = resolve_batch_size(
        cfg, model.max_seq_len, reference_rows)
    model.data_choices = {**choices, **batch_choice}
    return model


def last_target_pairs(seq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Prefix rows (``train_rows: prefixes``): inputs ``seq[:, :-1]`` and the one target
    per row, its last item ``seq[:, -1]``."""
    return seq[:, :-1], seq[:, -1]


def transformer_params(info: DataInfo, cfg: Any, defaults: dict[str, Any]) -> dict[str, Any]:
    """The hyperparameters SASRec and BERT4Rec share, validated."""
    dim = get_int(cfg, "embedding_dim", defaults["embedding_dim"])
    heads = get_int(cfg, "num_heads", defaults["num_heads"])
    if dim % heads:
        raise ConfigError(
            f"model.num_heads must divide model.embedding_dim ({dim}), got {heads}")
    return {
        "n_items": info.n_items,
        "embedding_dim": dim,
        "num_blocks": get_int(cfg, "num_blocks", defaults["num_blocks"]),
        "num_heads": heads,
        "ffn_dim": get_int(cfg, "ffn_dim", defaults["ffn_dim"]),
        "dropout": get_float(cfg, "dropout", defaults["dropout"], 0.0, 1.0, high_open=True),
        "init_std": get_float(cfg, "init_std", defaults["init_std"], 0.0, low_open=True),
    }


class CausalSequenceModel(SequenceModel):
    """A left-to-right sequence encoder trained on next-item targets (SASRec, HSTU).

    Subclasses give ``encode(seq) -> [B, L, d]``, ``encode_last(seq) -> [B, d]`` (the
    last position only), ``train_loss(h, targets)`` and ``logits(h)``; this class trains
    on every position (``train_rows`` recent/all) or on each prefix's last item
    (``prefixes``), and scores from the last position of each user's history."""

    #: True while :meth:`functional_loss` runs: encoders then take no branch that
    #: depends on the data (e.g. the padding mask even when no row is padded)
    static_shapes = False

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.train_rows == "prefixes":  # one target per row: its last item
            inputs, targets = last_target_pairs(trim(batch["seq"]))
            h = self.encode_last(inputs)
        else:
            inputs, targets, valid = next_item_pairs(trim(batch["seq"]))
            h = self.encode(inputs)[valid]
            targets = targets[valid]
        return self.train_loss(h, targets)

    def functional_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """:meth:`loss` with shapes that do not depend on the data (no trimming, a masked
        mean instead of boolean indexing), so ``torch.func.vmap`` can take one gradient
        per user (DP-SGD's per-user gradients, recframe.privacy.grads). The same value
        as :meth:`loss` for the full softmax over every position (``train_rows``
        recent/all); other settings use :meth:`loss` (per-user gradients then fall back
        to one backward per user)."""
        if self.train_rows == "prefixes" or self.objective.settings.sampled:
            return self.loss(batch)
        inputs, targets, valid = next_item_pairs(batch["seq"])
        self.static_shapes = True
        try:
            logits = self.logits(self.encode(inputs))  # [B, L, n_items]
        finally:
            self.static_shapes = False
        per_position = F.cross_entropy(logits.flatten(0, -2), targets.clamp(min=0).flatten(),
                                       reduction="none")
        weight = valid.flatten().to(per_position.dtype)
        return (per_position * weight).sum() / weight.sum().clamp(min=1.0)

    def score(self, users: torch.Tensor, context: dict[str, torch.Tensor]) -> torch.Tensor:
        seq = trim(last_window(context["seq"], self.max_seq_len))
        parts = [self.encode_last(trim(part)) for part in row_chunks(seq)]
        return self.logits(torch.cat(parts))

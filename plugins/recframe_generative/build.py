"""``model=tiger``: read and check conf/model/tiger.yaml, build :class:`TIGER`."""

from __future__ import annotations

import math
from typing import Any

from recframe.api import (
    ConfigError,
    DataInfo,
    TextSettings,
    check_known_keys,
    read_key,
    resolve_batch_size,
    resolve_sequence_settings,
)
from recframe_generative.semantic_ids import MISSING, SOURCES, SemanticIdSettings
from recframe_generative.tiger import TIGER

MODEL_KEYS = ("max_seq_len", "max_positions", "train_rows", "embedding_dim", "num_heads",
              "encoder_layers", "decoder_layers", "ffn_dim", "dropout", "beam_size",
              "temperature", "exclude_seen", "eval_chunk_rows", "batch_size", "lr",
              "weight_decay", "semantic_ids", "text")
SEMANTIC_KEYS = ("source", "levels", "codebook_size", "collision_codes", "latent_dim",
                 "hidden", "beta", "epochs", "batch_size", "lr", "kmeans_iters", "svd_dim",
                 "missing", "seed", "cache_dir")


def _int(cfg: Any, key: str, default: int, where: str = "model", minimum: int = 1) -> int:
    value = read_key(cfg, key, default, where)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{where}.{key} must be an integer >= {minimum}, got {value!r}")
    return value


def _float(cfg: Any, key: str, default: float, where: str = "model", low: float = 0.0,
           strict: bool = False, high: float = math.inf) -> float:
    value = read_key(cfg, key, default, where)
    ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
          and math.isfinite(value) and value <= high
          and (value > low if strict else value >= low))
    if not ok:
        bound = f"> {low}" if strict else f">= {low}"
        raise ConfigError(f"{where}.{key} must be a finite number {bound}"
                          f"{f' and <= {high}' if math.isfinite(high) else ''}, got {value!r}")
    return float(value)


def _choice(cfg: Any, key: str, default: str, choices: tuple[str, ...], where: str) -> str:
    value = read_key(cfg, key, default, where)
    if value not in choices:
        raise ConfigError(f"{where}.{key} must be one of {', '.join(choices)}, got {value!r}")
    return str(value)


def semantic_settings(cfg: Any, seed: int) -> SemanticIdSettings:
    """``model.semantic_ids`` (and ``model.text``, the item-text stage's settings)."""
    block = read_key(cfg, "semantic_ids", None, "model")
    where = "model.semantic_ids"
    check_known_keys(block, where, SEMANTIC_KEYS, "{source: auto, levels: 3, codebook_size: "
                     "256, collision_codes: 512, ...}")
    hidden = read_key(block, "hidden", [256, 128], where)
    try:
        hidden_t = tuple(int(h) for h in hidden)
    except (TypeError, ValueError):
        hidden_t = ()
    if not hidden_t or any(h < 1 for h in hidden_t):
        raise ConfigError(f"{where}.hidden must be a list of positive layer sizes, got "
                          f"{hidden!r}")
    cache = read_key(block, "cache_dir", None, where)
    text = read_key(cfg, "text", None, "model")
    return SemanticIdSettings(
        source=_choice(block, "source", "auto", SOURCES, where),
        levels=_int(block, "levels", 3, where),
        codebook_size=_int(block, "codebook_size", 256, where, minimum=2),
        collision_codes=_int(block, "collision_codes", 512, where),
        latent_dim=_int(block, "latent_dim", 32, where),
        hidden=hidden_t,
        beta=_float(block, "beta", 0.25, where),
        epochs=_int(block, "epochs", 50, where, minimum=0),
        batch_size=_int(block, "batch_size", 1024, where),
        lr=_float(block, "lr", 1e-3, where, strict=True),
        kmeans_iters=_int(block, "kmeans_iters", 20, where, minimum=0),
        svd_dim=_int(block, "svd_dim", 64, where),
        missing=_choice(block, "missing", "exclude", MISSING, where),
        seed=_int(block, "seed", seed, where, minimum=0),
        cache_dir=str(cache) if cache else None,
        text=TextSettings.from_config(text),
    )


def build_tiger(info: DataInfo, cfg: Any) -> TIGER:
    check_known_keys(cfg, "model", MODEL_KEYS, "conf/model/tiger.yaml")
    max_len, rows, choices = resolve_sequence_settings(
        info, cfg, default_len=10, default_rows="prefixes", allowed_rows=("prefixes",))
    semantic = semantic_settings(cfg, seed=0)
    depth = semantic.levels + 1
    needed = max_len * depth + 1
    positions = read_key(cfg, "max_positions", "auto", "model")
    if positions == "auto":
        positions = needed
    elif isinstance(positions, bool) or not isinstance(positions, int) or positions < 1:
        raise ConfigError(f"model.max_positions must be 'auto' or a positive integer, got "
                          f"{positions!r}")
    elif positions < needed:
        raise ConfigError(
            f"model.max_positions={positions} is too short for histories of "
            f"model.max_seq_len={max_len} items: {max_len} items x {depth} semantic-ID tokens "
            f"+ 1 = {needed} tokens. Set model.max_positions to at least {needed} (or auto), "
            f"or lower model.max_seq_len.")
    beam = read_key(cfg, "beam_size", 20, "model")
    if isinstance(beam, bool) or not isinstance(beam, int) or beam < 1:
        raise ConfigError(f"model.beam_size must be an integer >= 1 (the number of semantic "
                          f"IDs the beam search keeps and returns; the paper uses 20), got "
                          f"{beam!r}. Set model.beam_size=20, or at least the largest "
                          f"metrics.ks so no list is padded.")
    temperature = read_key(cfg, "temperature", 1.0, "model")
    if (isinstance(temperature, bool) or not isinstance(temperature, (int, float))
            or not math.isfinite(temperature) or temperature <= 0):
        raise ConfigError(f"model.temperature must be a finite number > 0 (it divides the "
                          f"decoder's logits before the beam's log-softmax), got "
                          f"{temperature!r}. Use model.temperature=1.0 (the model's own "
                          f"distribution).")
    dim = _int(cfg, "embedding_dim", 64)
    heads = _int(cfg, "num_heads", 2)
    if dim % heads:
        raise ConfigError(f"model.num_heads must divide model.embedding_dim ({dim}), got "
                          f"{heads}")
    exclude_seen = read_key(cfg, "exclude_seen", True, "model")
    if not isinstance(exclude_seen, bool):
        raise ConfigError(f"model.exclude_seen must be true or false, got {exclude_seen!r}")
    model = TIGER(
        info.n_items, semantic=semantic, max_seq_len=max_len, max_positions=positions,
        embedding_dim=dim, num_heads=heads,
        encoder_layers=_int(cfg, "encoder_layers", 2),
        decoder_layers=_int(cfg, "decoder_layers", 2),
        ffn_dim=_int(cfg, "ffn_dim", 256),
        dropout=_float(cfg, "dropout", 0.1, high=0.99),
        beam_size=beam, temperature=float(temperature), exclude_seen=exclude_seen,
        eval_chunk_rows=_int(cfg, "eval_chunk_rows", 4096))
    model.train_rows = rows
    model.train_batch_size, batch_choice = resolve_batch_size(cfg, max_len, reference_rows=256)
    model.data_choices = {**choices, **batch_choice}
    return model

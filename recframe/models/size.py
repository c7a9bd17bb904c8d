"""How big a model is and how much it trained: parameter counts and a FLOPs estimate.

Scaling-law work counts *non-embedding* parameters (Kaplan et al., "Scaling Laws
for Neural Language Models", 2020): lookup tables (item, user and position
embeddings) and per-item vectors such as an output bias grow with the catalogue,
not with the network, and cost no multiply-adds per token. Training compute is
then estimated as ``6 * N * tokens`` (forward 2, backward 4 multiply-adds per
parameter and trained position), which leaves out the output layer over the
items and attention's length-squared term.
"""

from __future__ import annotations

from typing import Any

from torch import nn


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """``{"parameters", "embedding_parameters", "non_embedding_parameters"}`` of ``model``.

    Embedding parameters: those of ``nn.Embedding``/``nn.EmbeddingBag`` modules, plus
    any parameter whose first dimension is the model's ``n_items`` or ``n_users``
    (per-item output biases, output tables held as plain parameters).
    """
    per_entity = {n for n in (getattr(model, "n_items", None), getattr(model, "n_users", None))
                  if isinstance(n, int) and n > 1}
    table_params = {id(p) for m in model.modules()
                    if isinstance(m, (nn.Embedding, nn.EmbeddingBag)) for p in m.parameters()}
    total = embedding = 0
    seen: set[int] = set()
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        if id(p) in table_params or (p.dim() >= 1 and p.shape[0] in per_entity):
            embedding += p.numel()
    return {"parameters": total, "embedding_parameters": embedding,
            "non_embedding_parameters": total - embedding}


def training_compute(model: nn.Module, counts: dict[str, int]) -> dict[str, Any] | None:
    """``{"trained_positions", "flops_estimate"}`` for a model that counts the positions
    (targets) it trained on in ``trained_positions``; None for one that does not."""
    positions = getattr(model, "trained_positions", None)
    if not isinstance(positions, int):
        return None
    return {"trained_positions": positions,
            "flops_estimate": 6 * counts["non_embedding_parameters"] * positions,
            "flops_formula": "6 * non_embedding_parameters * trained_positions"}

"""DIN: target attention over the user's behaviour sequence."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from recframe.api import (
    ConfigError,
    CTRModel,
    DataInfo,
    FieldEmbedding,
    FieldSpec,
    choice_param,
    float_param,
    layers_param,
)
from recframe_ctr._common import ACTIVATIONS, Common, common_params, glorot_linears, tower

SEQUENCE_HINT = (
    "declare one, e.g. dataset.fields: [{name: hist, kind: sequence, shares: item_id, "
    "max_len: 20}] (the ml-100k-ctr dataset has `hist` unless dataset.hist_len=0)")


class ActivationUnit(nn.Module):
    """DIN's local activation unit (Zhou et al., KDD 2018, Fig. 2): a weight
    ``a(e_j, q) = MLP([q, e_j, q - e_j, q * e_j])`` per behaviour ``e_j`` and target
    ``q``, and the user interest ``sum_j a(e_j, q) e_j``, with NO softmax (the paper
    keeps the intensity of the interest). Padded positions get weight 0 and are not
    even fed to the MLP, so they do not enter Dice's batch statistics either."""

    def __init__(self, dim: int, hidden: list[int], act: str) -> None:
        super().__init__()
        self.mlp = tower(4 * dim, hidden, 0.0, act)

    def weights(self, query: torch.Tensor, keys: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
        """``[B, L]`` attention weights, 0 where ``mask`` is False.

        The first layer ``W [q, k, q - k, q * k] + b`` is computed as
        ``(W_q + W_d) q + b`` once per row plus ``(W_k - W_d) k + W_p (q * k)`` per
        behaviour: the same affine map (``unit_inputs`` builds the concatenation for
        the tests), without the ``[N, 4d]`` concatenation and with the query's part
        not repeated for every behaviour."""
        first = self.mlp[0]
        w_q, w_k, w_d, w_p = first.weight.split(query.shape[-1], dim=1)
        row, _ = mask.nonzero(as_tuple=True)
        k = keys[mask]  # [N valid, d]
        q = query[row]
        h = torch.addmm(first.bias, query, (w_q + w_d).t())[row]
        h = h + k @ (w_k - w_d).t() + (q * k) @ w_p.t()
        out = keys.new_zeros(mask.shape)
        out[mask] = self.mlp[1:](h).squeeze(-1).to(out.dtype)
        return out

    @staticmethod
    def unit_inputs(query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """``[q, k, q - k, q * k]`` per behaviour ``[B, L, 4d]`` (the paper's input)."""
        q = query.unsqueeze(1).expand_as(keys)
        return torch.cat([q, keys, q - keys, q * keys], dim=-1)

    def forward(self, query: torch.Tensor, keys: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
        """The interest vector ``[B, d]``."""
        return (self.weights(query, keys, mask).unsqueeze(-1) * keys).sum(dim=1)


class DIN(CTRModel):
    """Deep Interest Network: the user's interest is pooled by relevance to the target.

    Zhou, Zhu, Song, Fan, Zhu, Ma, Yan, Jin, Li & Gai, "Deep Interest Network for
    Click-Through Rate Prediction", KDD 2018. For each sequence field (the items
    of the user's earlier positive rows, embedded with the table of the field it
    ``shares``, usually ``item_id``), an :class:`ActivationUnit` weighs each
    behaviour against the target's embedding (the shared field of the row) and
    sums them; the interest vectors and every field vector feed an MLP
    (``hidden``, ``activation``) to the logit. ``attention_activation`` ``dice``
    is the paper's Dice (FuxiCTR's DIN default too).
    """

    def __init__(self, info: DataInfo, common: Common, sequences: tuple[FieldSpec, ...],
                 attention_hidden: list[int], attention_activation: str, hidden: list[int],
                 activation: str, dropout: float) -> None:
        super().__init__(info, num_negatives=common.num_negatives, reg=common.reg)
        include = None if common.include is None else (
            *common.include, *(s.name for s in sequences if s.name not in common.include))
        self.embedding = FieldEmbedding(info.fields, common.embedding_dim, include=include,
                                        exclude=common.exclude, init_std=common.init_std)
        d = common.embedding_dim
        self.sequences = tuple((s.name, str(s.shares)) for s in sequences)
        self.attention = nn.ModuleList(ActivationUnit(d, attention_hidden,
                                                      attention_activation)
                                       for _ in sequences)
        self.mlp = tower((self.embedding.num_fields + len(sequences)) * d, hidden, dropout,
                         activation)
        glorot_linears(self)

    def interests(self, fields: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """One interest vector ``[B, d]`` per sequence field."""
        out = []
        for (name, target), unit in zip(self.sequences, self.attention, strict=True):
            keys, mask = self.embedding.sequence(name, fields[name])
            out.append(unit(self.embedding.lookup(target, fields[target]), keys, mask))
        return out

    def logits(self, fields: dict[str, torch.Tensor]) -> torch.Tensor:
        emb = self.embedding(fields).flatten(1)
        return self.mlp(torch.cat([emb, *self.interests(fields)], dim=-1)).squeeze(-1)


def din_sequences(info: DataInfo, cfg: Any) -> tuple[FieldSpec, ...]:
    """The sequence fields DIN attends over (``model.sequence_fields``, null = all)."""
    available = {f.name: f for f in info.fields if f.kind == "sequence"}
    if not available:
        raise ConfigError(f"model din needs a sequence field (the user's behaviour "
                          f"history), and dataset {info.name!r} has none: {SEQUENCE_HINT}")
    chosen = cfg.get("sequence_fields", None)
    if chosen is None:
        names = list(available)
    elif isinstance(chosen, (str, bytes)) or not chosen or not all(
            isinstance(n, str) for n in chosen):
        raise ConfigError(f"model.sequence_fields must be null (all) or a non-empty list of "
                          f"sequence field names, got {chosen!r}")
    else:
        names = list(chosen)
        unknown = [n for n in names if n not in available]
        if unknown:
            raise ConfigError(f"model.sequence_fields: {unknown} are not sequence fields of "
                              f"the data; its sequence fields: {sorted(available)}")
    batched = {f.name: f for f in info.fields if f.is_batched and f.kind != "sequence"}
    for n in names:
        shares = available[n].shares
        if shares not in batched or batched[shares].kind != "categorical":
            raise ConfigError(
                f"model din: sequence field {n!r} shares {shares!r}, which is not a "
                f"categorical field of the data, so there is no target to attend with; "
                f"declare the sequence with shares: item_id")
    return tuple(available[n] for n in names)


def build_din(info: DataInfo, cfg: Any) -> DIN:
    common = common_params(info, cfg)
    sequences = din_sequences(info, cfg)
    dropped = [s.name for s in sequences if s.name in common.exclude]
    if dropped:
        raise ConfigError(f"model.exclude_fields drops {dropped}, the sequence field(s) din "
                          f"attends over; remove them from exclude_fields or choose others "
                          f"with model.sequence_fields")
    return DIN(
        info, common, sequences,
        attention_hidden=layers_param(cfg, "attention_hidden", [64]),
        attention_activation=choice_param(cfg, "attention_activation", "dice", ACTIVATIONS),
        hidden=layers_param(cfg, "hidden", [200, 80]),
        activation=choice_param(cfg, "activation", "relu", ACTIVATIONS),
        dropout=float_param(cfg, "dropout", 0.0, maximum=0.99),
    )

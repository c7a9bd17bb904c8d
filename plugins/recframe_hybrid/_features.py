"""Feature tables for hybrid models, loaded in ``prepare`` from the encoded feature frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from recframe.api import FeatureSpec, FieldSpec


def numeric_table(frame: pd.DataFrame | None, specs: tuple[FeatureSpec, ...], n: int
                  ) -> torch.Tensor:
    """Numeric columns as ``[n, F]`` float32, each divided by its largest absolute value
    (0/1 flags stay 0/1, ages fall in [0, 1]); all-zero columns are left as they are."""
    names = [s.name for s in specs if s.kind == "numeric"]
    if frame is None or not names:
        return torch.zeros(n, 0)
    x = frame[names].to_numpy(dtype=np.float64)
    top = np.abs(x).max(axis=0)
    return torch.from_numpy((x / np.where(top > 0, top, 1.0)).astype(np.float32))


def code_table(frame: pd.DataFrame | None, specs: tuple[FeatureSpec, ...], n: int
               ) -> torch.Tensor:
    """Categorical ``<col>__code`` columns as ``[n, C]`` int64 (0 = missing)."""
    names = [f"{s.name}__code" for s in specs if s.kind == "categorical"]
    if frame is None or not names:
        return torch.zeros(n, 0, dtype=torch.long)
    return torch.from_numpy(frame[names].to_numpy(dtype=np.int64, copy=True))


class FeatureBag(nn.Module):
    """LightFM's representation of an entity: the sum of the embeddings of its features.

    Entity ``k`` has its indicator (id) feature with weight 1, numeric features
    ``x_kf`` (max-abs scaled), one code per categorical column (a missing value
    has its own code 0) and the values ``V_km`` of each multi-valued field ``m``
    (e.g. genres ``Action|Comedy``, each value a feature of weight 1); its vector is

        e_k = (E_id[k] + sum_f x_kf E_num[f] + sum_c E_c[code_kc]
               + sum_m sum_{v in V_km} E_m[v]) / norm_k

    with ``norm_k = 1 + sum_f |x_kf| + C + sum_m |V_km|`` when ``normalize``
    (the leading 1 is the id's weight: 0 for an id dropped by :meth:`drop_ids`)
    (LightFM's normalisation of each feature row to sum 1), else 1.
    """

    def __init__(self, n: int, specs: tuple[FeatureSpec, ...], dim: int, init_std: float,
                 normalize: bool, multi: tuple[FieldSpec, ...] = ()) -> None:
        super().__init__()
        self.n, self.specs, self.normalize, self.multi = n, specs, normalize, multi
        self.multi_emb = nn.ModuleList(nn.Embedding(f.vocab_size, dim, padding_idx=0)
                                       for f in multi)
        for emb in self.multi_emb:
            nn.init.normal_(emb.weight, std=init_std)
            with torch.no_grad():
                emb.weight[:2] = 0.0  # padding and out-of-vocabulary carry nothing
        self.multi_codes: list[torch.Tensor] = [torch.zeros(n, 1, dtype=torch.long)
                                                for _ in multi]
        n_numeric = sum(s.kind == "numeric" for s in specs)
        cats = [s for s in specs if s.kind == "categorical"]
        self.ids = nn.Embedding(n, dim)
        self.numeric_emb = nn.Parameter(torch.empty(n_numeric, dim))
        self.cats = nn.ModuleList(nn.Embedding(s.cardinality, dim) for s in cats)
        for weight in (self.ids.weight, self.numeric_emb, *(e.weight for e in self.cats)):
            nn.init.normal_(weight, std=init_std)
        self.register_buffer("numeric", torch.zeros(n, n_numeric), persistent=False)
        self.register_buffer("codes", torch.zeros(n, len(cats), dtype=torch.long),
                             persistent=False)
        #: 1 where the id embedding counts, 0 for entities with no train interaction
        #: under a cold-start split (see :meth:`drop_ids`); None = every id counts
        self.register_buffer("id_keep", None, persistent=False)

    @property
    def has_features_declared(self) -> bool:
        """Whether the bag embeds any feature besides the id (known before ``load``)."""
        return (sum(s.kind in ("numeric", "categorical") for s in self.specs)
                + len(self.multi)) > 0

    @property
    def has_features(self) -> bool:
        return self.numeric.shape[1] + self.codes.shape[1] + len(self.multi) > 0

    def load(self, frame: pd.DataFrame | None, device: torch.device,
             tables: dict[str, np.ndarray] | None = None) -> None:
        """Feature values from the encoded frame, and multi-valued codes from the
        owner's field table (``RecData.field_table``)."""
        self.numeric = numeric_table(frame, self.specs, self.n).to(device)
        self.codes = code_table(frame, self.specs, self.n).to(device)
        tables = tables or {}
        # values out of the train vocabulary (code 1) count as nothing, like padding
        self.multi_codes = [torch.from_numpy(np.where(tables[f.name] >= 2, tables[f.name], 0)
                                             ).to(device) for f in self.multi]

    def drop_ids(self, cold: np.ndarray) -> None:
        """Entities ``cold`` (bool ``[n]``) are their features alone: their id embedding,
        never trained on a positive, would only add noise (LightFM represents a cold
        item or user by its metadata; Kula, CBRecSys 2015, section 3)."""
        keep = torch.from_numpy((~np.asarray(cold, dtype=bool)).astype(np.float32))
        self.id_keep = keep.unsqueeze(1).to(self.ids.weight.device)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        out = self.ids(idx)
        if self.id_keep is not None:
            out = out * self.id_keep[idx]
        if not self.has_features:
            return out
        num = self.numeric[idx]
        codes = self.codes[idx]
        out = out + num @ self.numeric_emb
        for c, emb in enumerate(self.cats):
            out = out + emb(codes[..., c])
        n_values = out.new_zeros(out.shape[:-1] + (1,))
        for emb, table in zip(self.multi_emb, self.multi_codes, strict=True):
            values = table[idx]  # [..., L], 0 = nothing
            out = out + emb(values).sum(-2)
            n_values = n_values + (values > 0).sum(-1, keepdim=True).to(num.dtype)
        if self.normalize:  # the id's weight: 1, or 0 where the id is dropped
            id_weight = 1.0 if self.id_keep is None else self.id_keep[idx]
            norm = id_weight + num.abs().sum(-1, keepdim=True) + len(self.cats) + n_values
            out = out / norm.clamp_min(1e-12)  # a dropped id with no feature: 0, not NaN
        return out

    def all(self) -> torch.Tensor:
        return self(torch.arange(self.n, device=self.ids.weight.device))

"""Building blocks of the MLP models: an MLP whose first layer splits into a user part
and an item part, so all items can be scored for a batch of users in item chunks, and
feature-table helpers used by ``prepare``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from recframe.api import FeatureSpec

#: float cells (users x items x hidden) materialized at once while scoring
MAX_CELLS = 1 << 20


class SplitMLP(nn.Module):
    """``ReLU MLP([user_input, item_input])`` whose first layer is ``W_u x_u + W_i x_i + b``.

    ``forward`` takes the two inputs of matching pairs; ``score_all`` scores every
    (user, item) combination of a user batch and an item table, precomputing the
    first layer per side and broadcasting only the cheap sum, in chunks of items
    so that ``users x chunk x hidden`` stays below :data:`MAX_CELLS`.
    """

    def __init__(self, user_dim: int, item_dim: int, hidden: list[int], dropout: float) -> None:
        super().__init__()
        self.user_dim, self.item_dim = user_dim, item_dim
        self.first = nn.Linear(user_dim + item_dim, hidden[0])
        rest: list[nn.Module] = [nn.ReLU(), nn.Dropout(dropout)]
        for width_in, width_out in zip(hidden[:-1], hidden[1:], strict=True):
            rest += [nn.Linear(width_in, width_out), nn.ReLU(), nn.Dropout(dropout)]
        self.rest = nn.Sequential(*rest)
        self.out_dim = hidden[-1]
        self.max_width = max(hidden)

    def user_part(self, x_user: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x_user, self.first.weight[:, : self.user_dim],
                                    self.first.bias)

    def item_part(self, x_item: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x_item, self.first.weight[:, self.user_dim :])

    def forward(self, x_user: torch.Tensor, x_item: torch.Tensor) -> torch.Tensor:
        """Hidden output ``[N, out_dim]`` of matching (user, item) rows."""
        return self.rest(self.first(torch.cat([x_user, x_item], dim=-1)))

    def score_all(self, x_user: torch.Tensor, x_items: torch.Tensor,
                  head: torch.Tensor) -> torch.Tensor:
        """``rest(first([u, i])) @ head`` for every user row and item row: ``[B, n_items]``."""
        u = self.user_part(x_user)  # [B, h1]
        i = self.item_part(x_items)  # [n, h1]
        chunk = max(1, MAX_CELLS // max(1, len(u) * self.max_width))
        out = [self.rest(u[:, None, :] + i[None, s : s + chunk, :]) @ head
               for s in range(0, len(i), chunk)]
        return torch.cat(out, dim=1)


def numeric_table(frame: pd.DataFrame | None, specs: tuple[FeatureSpec, ...], n: int,
                  scale: str) -> torch.Tensor:
    """Numeric columns as ``[n, F]`` float32: ``zscore`` standardized or ``maxabs`` scaled
    (so 0/1 flags stay 0/1); constant columns are left unscaled."""
    names = [s.name for s in specs if s.kind == "numeric"]
    if frame is None or not names:
        return torch.zeros(n, 0)
    x = frame[names].to_numpy(dtype=np.float64)
    if scale == "zscore":
        std = x.std(axis=0)
        x = (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)
    else:
        top = np.abs(x).max(axis=0)
        x = x / np.where(top > 0, top, 1.0)
    return torch.from_numpy(x.astype(np.float32))


def code_table(frame: pd.DataFrame | None, specs: tuple[FeatureSpec, ...], n: int
               ) -> torch.Tensor:
    """Categorical ``<col>__code`` columns as ``[n, C]`` int64 (0 = missing)."""
    names = [f"{s.name}__code" for s in specs if s.kind == "categorical"]
    if frame is None or not names:
        return torch.zeros(n, 0, dtype=torch.long)
    return torch.from_numpy(frame[names].to_numpy(dtype=np.int64, copy=True))


def module_device(module: nn.Module) -> torch.device:
    return next(module.parameters()).device

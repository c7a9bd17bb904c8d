"""ItemKNN: item-based nearest neighbours with shrunk cosine similarity (closed form)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from recframe.api import (
    ConfigError,
    DataInfo,
    RecData,
    RecModel,
    TrainFormat,
    check_fits_in_memory,
    float_param,
    int_param,
)

# Rows of the item-item co-occurrence densified at once while fitting (bounds fit memory).
_FIT_CELLS = 1 << 24


class ItemKNN(RecModel):
    """Item-based top-N recommendation from item-item cosine similarities.

    Sarwar, Karypis, Konstan & Riedl, "Item-based collaborative filtering
    recommendation algorithms", WWW 2001; Deshpande & Karypis, "Item-based top-N
    recommendation algorithms", ACM TOIS 2004. With the binary training matrix
    ``X`` (users x items) the shrunk cosine similarity is

        ``S[i, j] = (X^T X)[i, j] / (|i| |j| + shrink)``,  ``S[i, i] = 0``,

    where ``|i| = sqrt(#users of i)``; shrinkage damps similarities supported by
    few co-occurrences. Each row keeps its ``neighbours`` largest entries (the
    neighbourhood of item ``i``); with ``normalize`` each kept row is scaled to
    sum to one (Deshpande & Karypis), so items with uniformly high
    similarities do not dominate. A user's scores are ``s_u = h_u S``, the sum
    of the neighbourhood similarities of every item ``i`` in the user's history
    ``h_u``.

    The pruned ``S`` is stored as two fixed-shape buffers, ``neighbour_items`` and
    ``neighbour_sims`` (``[n_items, neighbours]``), so memory is
    ``n_items * neighbours * 12`` bytes, never ``n_items^2``.
    """

    train_format = TrainFormat.FIT
    scores_from_history = True  # scores = history x item-item weights: new users too

    def __init__(self, n_items: int, neighbours: int = 300, shrink: float = 5.0,
                 normalize: bool = True) -> None:
        super().__init__()
        self.normalize = normalize
        self.n_items = n_items
        self.neighbours = max(1, min(neighbours, n_items - 1))
        self.shrink = shrink
        self.register_buffer("neighbour_items",
                             torch.zeros(n_items, self.neighbours, dtype=torch.long))
        self.register_buffer("neighbour_sims", torch.zeros(n_items, self.neighbours))

    #: privacy=dp_stats perturbs the Gram matrix (recframe.privacy.stats)
    private_statistic = "gram"

    def fit(self, data: RecData) -> None:
        x = data.train.astype(np.float32)  # users x items, binary
        xt = x.T.tocsr()  # items x users
        norms = np.sqrt(np.asarray(x.sum(axis=0), dtype=np.float64).ravel())
        self._fit_rows(lambda start, end: (xt[start:end] @ x).toarray().astype(np.float64),
                       norms)

    def fit_statistic(self, gram: np.ndarray, data: RecData) -> None:
        """Fit from a given dense ``X^T X`` (e.g. a noisy one): co-occurrences are its
        rows, ``|i|`` the square root of its diagonal (clipped at 0)."""
        norms = np.sqrt(np.clip(np.diagonal(gram), 0.0, None))
        self._fit_rows(lambda start, end: np.asarray(gram[start:end], dtype=np.float64),
                       norms)

    def _fit_rows(self, block: Any, norms: np.ndarray) -> None:
        n, k = self.n_items, self.neighbours
        chunk = max(1, _FIT_CELLS // max(n, 1))
        items = torch.empty(n, k, dtype=torch.long)
        sims = torch.empty(n, k)
        for start in range(0, n, chunk):  # a loop over row blocks, not over items
            end = min(n, start + chunk)
            co = block(start, end)  # [c, n] co-occurrences
            sim = co / (np.outer(norms[start:end], norms) + self.shrink + 1e-12)
            rows = np.arange(end - start)
            sim[rows, start + rows] = 0.0  # an item is not its own neighbour
            top = torch.from_numpy(sim).float().topk(k, dim=1)
            vals = top.values
            if self.normalize:
                vals = vals / vals.sum(1, keepdim=True).clamp_min(1e-12)
            items[start:end], sims[start:end] = top.indices, vals
        self.neighbour_items.copy_(items)
        self.neighbour_sims.copy_(sims)

    def score(self, users: torch.Tensor, context: dict[str, torch.Tensor]) -> torch.Tensor:
        """``s_u = h_u S``: each seen item adds its kept neighbours' similarities.

        Work is ``(seen items in the batch) x neighbours`` scattered into the scores,
        not a product with a dense ``[batch, n_items]`` history (hundreds of times
        fewer operations on sparse histories).
        """
        rows, cols = context["seen_rows"], context["seen_cols"]
        n = self.n_items
        flat = torch.unique(rows * n + cols)  # seen cells once each, as dense_history
        rows, cols = flat // n, flat % n
        out = torch.zeros(len(users), n, dtype=self.neighbour_sims.dtype, device=rows.device)
        target = (rows.unsqueeze(1) * n + self.neighbour_items[cols]).reshape(-1)
        out.view(-1).index_add_(0, target, self.neighbour_sims[cols].reshape(-1))
        return out


def build_itemknn(info: DataInfo, cfg: Any) -> ItemKNN:
    neighbours = int_param(cfg, "neighbours", 300)
    shrink = float_param(cfg, "shrink", 5.0)
    normalize = cfg.get("normalize", True)
    if not isinstance(normalize, bool):
        raise ConfigError(f"model.normalize must be true or false, got {normalize!r}")
    kept = max(1, min(neighbours, info.n_items - 1))
    check_fits_in_memory(
        "itemknn", 12 * info.n_items * kept + 8 * _FIT_CELLS,
        f"12 bytes x n_items x neighbours = 12 x {info.n_items} x {kept} kept, plus "
        f"{8 * _FIT_CELLS / 2**20:.0f} MiB of co-occurrence rows while fitting",
        "Lower model.neighbours, or filter rare items (a kcore step).")
    return ItemKNN(info.n_items, neighbours, shrink, normalize)

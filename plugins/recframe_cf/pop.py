"""Most-popular baseline: every user gets items ranked by training popularity."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from recframe.api import DataInfo, RecData, RecModel, TrainFormat


class Pop(RecModel):
    """Rank items by the number of training users who interacted with them.

    The non-personalized baseline every recommender must beat (e.g. Cremonesi,
    Koren & Turrin, "Performance of recommender algorithms on top-N
    recommendation tasks", RecSys 2010). Ties are broken by item index so the
    ranking is deterministic.
    """

    train_format = TrainFormat.FIT
    scores_from_history = True  # the same ranking for everyone, new users included
    #: a user with no history gets the same list as everyone (cold users: yes); an item
    #: with no train interaction scores 0, below every seen item: it cannot rank it
    scores_cold_users = True

    def __init__(self, n_items: int) -> None:
        super().__init__()
        self.register_buffer("item_scores", torch.zeros(n_items))

    #: privacy=dp_stats perturbs the item counts (recframe.privacy.stats)
    private_statistic = "item_counts"

    def fit(self, data: RecData) -> None:
        self.fit_statistic(data.item_popularity().astype(np.float64), data)

    def fit_statistic(self, counts: np.ndarray, data: RecData) -> None:
        """Rank by ``counts`` (the item counts, or a noisy version of them)."""
        counts = np.asarray(counts, dtype=np.float64)
        # deterministic tie-break: lower item index first, within (0, 1) of a count
        tie = 1.0 - (np.arange(len(counts)) + 1) / (len(counts) + 1)
        self.item_scores.copy_(torch.from_numpy(counts + tie * 0.5).float())

    def score(self, users: torch.Tensor, context: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.item_scores.unsqueeze(0).expand(len(users), -1)


def build_pop(info: DataInfo, cfg: Any) -> Pop:
    return Pop(info.n_items)

"""What a metric sees under the CTR protocol: every labeled row of one part."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class PointwiseInput:
    """The labeled rows of one evaluated part (valid or test), all at once.

    ``users``: ``[N]`` int64 user of each row (the grouping key of per-user
    metrics such as GAUC; ``-1`` never occurs: rows of unknown users get a code
    of their own); ``logits``: ``[N]`` float64 model outputs (click
    probability = ``sigmoid(logit)``); ``labels``: ``[N]`` float64 0/1.
    ``user_index``: ``[U]`` the sorted distinct users; ``row_user``: ``[N]``
    position of each row's user in ``user_index`` (so per-user sums are one
    ``bincount``/``index_add_``).
    """

    users: torch.Tensor
    logits: torch.Tensor
    labels: torch.Tensor
    user_index: torch.Tensor
    row_user: torch.Tensor

    @classmethod
    def build(cls, users: torch.Tensor, logits: torch.Tensor,
              labels: torch.Tensor) -> PointwiseInput:
        user_index, row_user = torch.unique(users, sorted=True, return_inverse=True)
        return cls(users.long(), logits.double(), labels.double(), user_index, row_user)

    @property
    def probabilities(self) -> torch.Tensor:
        return torch.sigmoid(self.logits)

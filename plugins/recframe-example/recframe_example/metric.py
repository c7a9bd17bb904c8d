"""``rprecision``: truncated R-precision, a per-user ranking metric.

With ``R_u`` the user's relevant (held-out) items and ``r = min(|R_u|, k)``::

    RPrecision@k(u) = (number of relevant items in the top r) / r

i.e. precision at the user's own number of relevant items (Manning, Raghavan
& Schütze, "Introduction to Information Retrieval", 2008, ch. 8.4), truncated
at ``k`` so it only needs the top-k list. It lies in [0, 1] and is 1 exactly
when the first ``r`` ranks are all relevant; unlike precision@k it does not
punish users with fewer than ``k`` relevant items. 0 when ``|R_u| = 0``.
"""

from __future__ import annotations

import torch

from recframe.api import MetricInput


def rprecision(inp: MetricInput, k: int) -> torch.Tensor:
    """One value per user of the batch (shape ``[B]``); see the module docstring.

    ``inp.hits`` is ``[B, Kmax]`` (1 where the ranked item is relevant) and
    ``inp.n_relevant`` is ``[B]``. Pure tensor code: no loop over users, no
    ``.item()``, so it runs unchanged on GPU.
    """
    hits = inp.hits[:, :k].float()
    r = torch.clamp(inp.n_relevant.to(hits.dtype), max=float(k))  # [B]
    ranks = torch.arange(1, hits.shape[1] + 1, device=hits.device, dtype=hits.dtype)
    in_top_r = (ranks.unsqueeze(0) <= r.unsqueeze(1)).to(hits.dtype)  # [B, K]
    found = (hits * in_top_r).sum(dim=1)
    return torch.where(r > 0, found / r.clamp(min=1.0), torch.zeros_like(found))

"""Metrics computed from the full score matrix rather than the top-k list.

Both declare ``needs={"scores"}``: the evaluator then passes ``inp.scores``
(``[B, n_items]``, items seen in earlier parts, and non-candidates under
sampled evaluation, at ``-inf``) and ``inp.truth`` (``[B, n_items]`` bool
held-out items). The *candidates* of a user are the items with a finite
score; held-out items that are also masked (seen before) are not candidates.

They do not depend on the cut-off: ``auc@10 == auc@20``. The ``@K`` only
exists because every metric key has one.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from recframe.api import MetricInput

__all__ = ["auc", "logloss"]


def _scores(inp: MetricInput, metric: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if inp.scores is None or inp.truth is None:
        raise ValueError(f"metric {metric!r} needs scores (declare needs={{'scores'}})")
    scores = inp.scores.to(torch.float64)
    candidate = scores > -torch.inf
    positive = inp.truth.to(scores.device) & candidate
    return scores, candidate, positive


def auc(inp: MetricInput, k: int) -> torch.Tensor:
    r"""Per-user ROC AUC of the held-out items against all other candidates.

    The probability that a random held-out item of the user scores higher
    than a random candidate that is not held out, ties counting one half
    (the Mann-Whitney U statistic). With ``r_i`` the rank of item ``i`` by
    ascending score among the user's candidates (tied items get the average
    of their ranks), ``P`` the held-out candidates and ``N`` the others:

    .. math:: \mathrm{AUC}(u) = \frac{\sum_{i \in P} r_i - |P|(|P|+1)/2}{|P|\,|N|}

    Averaged over users this is the GAUC/"user AUC" of e.g. Rendle et al.,
    "BPR", UAI 2009 (eq. for AUC), over the full candidate set, not a sample.
    0 for a user with no held-out candidate or no other candidate (undefined).
    Independent of ``k``. Vectorized over the batch: one sort per row and two
    ``searchsorted`` calls give the average ranks.
    """
    scores, candidate, positive = _scores(inp, "auc")
    ordered = torch.sort(scores, dim=1).values
    below = torch.searchsorted(ordered, scores, right=False).to(torch.float64)  # # < s
    upto = torch.searchsorted(ordered, scores, right=True).to(torch.float64)  # # <= s
    n_masked = (~candidate).sum(dim=1, keepdim=True).to(torch.float64)
    # masked items sit at -inf below every candidate: shift ranks past them
    rank = (below + upto + 1.0) / 2.0 - n_masked
    n_pos = positive.sum(dim=1).to(torch.float64)
    n_neg = candidate.sum(dim=1).to(torch.float64) - n_pos
    rank_sum = torch.where(positive, rank, torch.zeros_like(rank)).sum(dim=1)
    u_stat = rank_sum - n_pos * (n_pos + 1.0) / 2.0
    den = n_pos * n_neg
    return torch.where(den > 0, u_stat / den.clamp(min=1.0), torch.zeros_like(den))


def logloss(inp: MetricInput, k: int) -> torch.Tensor:
    r"""Per-user binary cross-entropy of ``sigmoid(score)`` over all candidates.

    Labels: 1 for the user's held-out items, 0 for every other candidate (all
    unseen items under full ranking, not a sample of negatives):

    .. math:: \mathrm{LogLoss}(u) = -\frac{1}{|C_u|} \sum_{i \in C_u}
        y_{ui} \log \sigma(s_{ui}) + (1 - y_{ui}) \log(1 - \sigma(s_{ui}))

    computed stably from the logits (``softplus(s) - y s``). Only meaningful
    for pointwise models whose scores are logits of an interaction
    probability (NeuMF, CTR-style MLPs); for ranking models (BPR, EASE, Pop)
    the scale of the scores is arbitrary and so is this number. Over the full
    catalogue negatives dominate, so a model calibrated on 1:4 sampled
    negatives looks over-confident here; the value is deterministic and
    comparable across models, unlike a sampled log loss. Lower is better.
    0 for a user with no candidate. Independent of ``k``.
    """
    scores, candidate, positive = _scores(inp, "logloss")
    logits = torch.where(candidate, scores, torch.zeros_like(scores))
    bce = F.binary_cross_entropy_with_logits(logits, positive.to(scores.dtype),
                                             reduction="none")
    bce = torch.where(candidate, bce, torch.zeros_like(bce))
    n = candidate.sum(dim=1).to(torch.float64)
    return torch.where(n > 0, bce.sum(dim=1) / n.clamp(min=1.0), torch.zeros_like(n))

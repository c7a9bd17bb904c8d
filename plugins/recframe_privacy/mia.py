"""``mia_auc``: how well a score-threshold attack tells training users from held-out ones.

Input: one attack statistic per member and per non-member (higher = more member-like;
:class:`recframe.api.AuditInput`). The AUC is the Mann-Whitney U statistic: the
probability that a random member's statistic exceeds a random non-member's, ties
counting one half. 0.5 = the attack learns nothing; 1.0 = it separates them perfectly
(below 0.5 would mean the threshold points the wrong way). The 95% interval is a
percentile bootstrap resampling members and non-members apart (Efron & Tibshirani,
"An Introduction to the Bootstrap", 1993), seeded.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import rankdata

from recframe.api import AuditInput

BOOTSTRAP = 1000


def auc(members: np.ndarray, non_members: np.ndarray) -> float:
    """P(member > non-member) + 0.5 P(tie), from average ranks (ties share a rank)."""
    n1, n0 = len(members), len(non_members)
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = rankdata(np.concatenate([members, non_members]))
    return float((ranks[:n1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def auc_rows(members: np.ndarray, non_members: np.ndarray) -> np.ndarray:
    """``auc`` of each row of ``members`` ``[R, n1]`` against the same row of
    ``non_members`` ``[R, n0]``, vectorised over rows."""
    n1 = members.shape[1]
    n0 = non_members.shape[1]
    ranks = rankdata(np.concatenate([members, non_members], axis=1), axis=1)
    return (ranks[:, :n1].sum(axis=1) - n1 * (n1 + 1) / 2) / (n1 * n0)


def mia_auc(inp: AuditInput, k: int = 0) -> dict[str, Any]:
    """The attack's AUC with a 95% bootstrap interval."""
    members = np.asarray(inp.members, dtype=np.float64)
    non = np.asarray(inp.non_members, dtype=np.float64)
    value = auc(members, non)
    rng = np.random.default_rng([inp.seed, 919])
    boot = auc_rows(members[rng.integers(0, len(members), (BOOTSTRAP, len(members)))],
                    non[rng.integers(0, len(non), (BOOTSTRAP, len(non)))])
    low, high = np.percentile(boot, [2.5, 97.5])
    return {"value": round(value, 6), "ci95": [round(float(low), 6), round(float(high), 6)],
            "bootstrap": BOOTSTRAP}

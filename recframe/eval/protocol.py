"""Candidate policy from the ``evaluation`` config: full ranking (default) or sampled."""

from __future__ import annotations

import logging
import warnings
from typing import Any

from recframe.errors import ConfigError
from recframe.eval.candidates import SAMPLED_WARNING, CandidateSampler

log = logging.getLogger(__name__)
POLICIES = ("full", "sampled")
SAMPLINGS = ("uniform", "popularity")


def candidate_policy(evaluation: Any) -> dict[str, Any]:
    """Validate ``evaluation.*`` and return the policy record written to results.json."""
    policy = evaluation.get("candidates", "full")
    if policy not in POLICIES:
        raise ConfigError(
            f"evaluation.candidates must be one of {list(POLICIES)}, got {policy!r}")
    if policy == "full":
        return {"policy": "full"}
    n = evaluation.get("num_negatives", 100)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"evaluation.num_negatives must be a positive integer, got {n!r}")
    sampling = evaluation.get("sampling", "uniform")
    if sampling not in SAMPLINGS:
        raise ConfigError(
            f"evaluation.sampling must be one of {list(SAMPLINGS)}, got {sampling!r}")
    return {"policy": "sampled", "num_negatives": n, "sampling": sampling,
            "seed": int(evaluation.get("seed", 0)),
            "note": "NOT comparable to full-ranking metrics (Krichene & Rendle, KDD 2020)"}


def candidate_sampler(record: dict[str, Any], n_items: int,
                      popularity: Any = None) -> CandidateSampler | None:
    """The sampler for a sampled policy (warning once per run), else None."""
    if record["policy"] == "full":
        return None
    warnings.warn(SAMPLED_WARNING, UserWarning, stacklevel=2)
    log.warning(SAMPLED_WARNING)
    return CandidateSampler(
        n_items, record["num_negatives"], record["seed"],
        popularity=popularity if record["sampling"] == "popularity" else None,
    )

"""The CTR protocol's evaluator: every labeled row of a part scored once, pointwise.

Under ``evaluation=ctr`` (or ``protocol: auto`` on labeled data) a model predicts
the click logit of each logged impression of the valid/test part; metrics
(:attr:`recframe.plugin.specs.MetricSpec.pointwise`) see all rows of the part at
once (AUC needs a global ranking). Per-user values (GAUC's per-user AUC, per-user
LogLoss) go to ``per_user.parquet`` as in the ranking protocol, so the report's
paired tests work unchanged. The calibration table behind the reliability plot is
computed here (:func:`reliability_table`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import torch

from recframe.errors import ConfigError, unknown_name_message
from recframe.eval.pointwise import PointwiseInput
from recframe.plugin.specs import MetricSpec

log = logging.getLogger(__name__)

#: the metrics a CTR run reports when metrics.names holds no pointwise metric
DEFAULT_CTR_METRICS: tuple[str, ...] = ("auc", "gauc", "logloss", "ece")
DEFAULT_CTR_MONITOR = "auc"


def calibration_bins(probabilities: torch.Tensor, labels: torch.Tensor, n_bins: int = 15
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Equal-width probability bins: edges ``[n_bins + 1]`` and, per bin, the row count,
    the sum of predicted probabilities and the sum of labels (float64).

    Bins are right-closed, ``(lower, upper]`` as in Guo et al.'s code (ICML 2017),
    except that the first also holds probability 0. The one binning behind the
    ECE metric and the reliability table.
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
        raise ConfigError(f"n_bins must be a positive integer; got {n_bins!r}")
    p = probabilities.double().flatten()
    y = labels.double().flatten()
    edges = torch.linspace(0.0, 1.0, n_bins + 1, dtype=torch.float64, device=p.device)
    index = torch.bucketize(p, edges[1:-1], right=False).clamp(max=n_bins - 1)
    zeros = torch.zeros(n_bins, dtype=torch.float64, device=p.device)
    count = torch.bincount(index, minlength=n_bins).double()
    return edges, count, zeros.index_add(0, index, p), zeros.index_add(0, index, y)


def reliability_table(probabilities: torch.Tensor, labels: torch.Tensor,
                      n_bins: int = 15) -> dict[str, Any]:
    """The data of a reliability diagram (DeGroot & Fienberg 1983; Guo et al., ICML
    2017) as plain JSON: bin edges, row count, mean prediction and click rate per bin
    of :func:`calibration_bins` (``None`` where a bin is empty), and the part's mean
    predicted and observed click rates (``None`` for an empty part)."""
    edges, count, pred, obs = calibration_bins(probabilities, labels, n_bins)
    safe = count.clamp(min=1.0)

    def rates(total: torch.Tensor) -> list[float | None]:
        return [float(v) if c > 0 else None for v, c in zip(total / safe, count, strict=True)]

    n = int(count.sum())
    return {
        "lower": edges[:-1].tolist(), "upper": edges[1:].tolist(),
        "count": count.long().tolist(),
        "mean_predicted": rates(pred), "observed": rates(obs),
        "predicted_rate": float(pred.sum()) / n if n else None,
        "observed_rate": float(obs.sum()) / n if n else None,
    }


class PointwiseEvaluator:
    """Computes pointwise metrics over all labeled rows of a part."""

    protocol = "ctr"

    def __init__(self, metrics: Mapping[str, MetricSpec], calibration_bins: int = 15) -> None:
        if not metrics:
            raise ConfigError("metrics.names is empty: name at least one metric, e.g. [auc]")
        missing = [n for n, s in metrics.items() if s.pointwise is None]
        if missing:
            raise ConfigError(
                f"metrics.names: {missing} have no pointwise form, so they cannot run under "
                f"the CTR protocol (evaluation=ctr, labeled data). Metrics that can: the "
                f"ones whose spec sets `pointwise`, e.g. {list(DEFAULT_CTR_METRICS)}; use "
                f"metrics=ctr.")
        if isinstance(calibration_bins, bool) or not isinstance(calibration_bins, int) \
                or calibration_bins < 1:
            raise ConfigError(
                f"evaluation.calibration_bins must be a positive integer, got "
                f"{calibration_bins!r}")
        self.metrics = dict(metrics)
        self.calibration_bins = calibration_bins
        self.ks: list[int] = []
        self.needs: frozenset[str] = frozenset()
        self.global_: dict[str, MetricSpec] = {}

    @property
    def keys(self) -> list[str]:
        return list(self.metrics)

    def check_key(self, key: str, config_key: str = "") -> str:
        """``key`` is a computed metric's bare name (``auc``), higher is better."""
        if key not in self.metrics:
            raise ConfigError(unknown_name_message("metric", key, self.metrics, config_key)
                              + " (under the CTR protocol keys have no @K, e.g. auc)")
        if not self.metrics[key].higher_is_better:
            raise ConfigError(
                f"{config_key or 'monitor'}={key!r}: early stopping and checkpoints keep "
                f"the highest value, but lower {key} is better; monitor auc or gauc.")
        return key

    @torch.no_grad()
    def compute(self, users: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor
                ) -> tuple[dict[str, torch.Tensor], torch.Tensor, dict[str, torch.Tensor]]:
        """(metric -> 0-d value, distinct users, per-user column -> ``[U]`` values)."""
        inp = PointwiseInput.build(users.cpu(), logits.cpu(), labels.cpu())
        n_pos = int(inp.labels.sum())
        if n_pos in (0, len(inp.labels)):
            log.warning("CTR protocol: the %d scored rows all have label %d, so AUC and GAUC "
                        "are undefined (NaN); the part is too small or the split too "
                        "uneven", len(inp.labels), 1 if n_pos else 0)
        values: dict[str, torch.Tensor] = {}
        per_user: dict[str, torch.Tensor] = {}
        for name, spec in self.metrics.items():
            value, by_user = spec.pointwise(inp)
            values[name] = torch.as_tensor(value, dtype=torch.float64)
            if by_user is not None:
                per_user[name] = torch.as_tensor(by_user, dtype=torch.float64)
        per_user["n_impressions"] = torch.bincount(
            inp.row_user, minlength=len(inp.user_index)).double()
        return values, inp.user_index, per_user

    def calibration(self, logits: torch.Tensor, labels: torch.Tensor) -> dict[str, Any]:
        return reliability_table(torch.sigmoid(logits.double()), labels, self.calibration_bins)

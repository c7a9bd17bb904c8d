"""Full-ranking evaluation: user batches, seen-item masking, one top-k, per-user metrics."""

from recframe.eval.evaluator import (
    Evaluator,
    GlobalInput,
    MetricInput,
    PerUserAccumulator,
    parse_metric_key,
)
from recframe.eval.pointwise import PointwiseInput

__all__ = ["Evaluator", "GlobalInput", "MetricInput", "PerUserAccumulator", "PointwiseInput",
           "parse_metric_key"]

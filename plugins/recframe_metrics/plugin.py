"""Entry point module of recframe_metrics: the built-in per-user ranking metrics.

Registers ``recall``, ``precision``, ``ndcg``, ``mrr``, ``hit`` and ``map``;
their formulas are documented in :mod:`recframe_metrics.ranking`.
"""

from __future__ import annotations

from recframe.api import MetricSpec, hookimpl
from recframe_metrics import ranking

METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(
        name="recall",
        fn=ranking.recall,
        description="Recall@K: relevant items in the top K / number of relevant items.",
    ),
    MetricSpec(
        name="precision",
        fn=ranking.precision,
        description="Precision@K: relevant items in the top K / K.",
    ),
    MetricSpec(
        name="ndcg",
        fn=ranking.ndcg,
        description="nDCG@K with binary gains (Järvelin & Kekäläinen 2002): DCG@K / IDCG@K.",
    ),
    MetricSpec(
        name="mrr",
        fn=ranking.mrr,
        description="MRR@K: 1 / rank of the first relevant item within the top K, else 0.",
    ),
    MetricSpec(
        name="hit",
        fn=ranking.hit,
        description="Hit@K (hit ratio): 1 if any relevant item is in the top K, else 0.",
    ),
    MetricSpec(
        name="map",
        fn=ranking.map_at_k,
        description="MAP@K: sum of P@i at each hit i <= K, / min(number relevant, K).",
    ),
)


@hookimpl
def recframe_register_metrics(registry):
    """Register the built-in ranking metrics."""
    for spec in METRICS:
        registry.add(spec)

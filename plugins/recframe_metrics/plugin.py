"""Entry point module of recframe_metrics: the built-in metrics.

Per-user ranking metrics ``recall``, ``precision``, ``ndcg``, ``mrr``, ``hit``
and ``map`` (:mod:`recframe_metrics.ranking`); beyond-accuracy metrics
``coverage`` and ``gini`` (global), ``novelty``, ``avg_popularity`` and ``ild``
(:mod:`recframe_metrics.beyond`); score-based ``auc`` and ``logloss``
(:mod:`recframe_metrics.score_based`). Formulas are in those modules.
"""

from __future__ import annotations

from recframe.api import MetricSpec, hookimpl
from recframe_metrics import beyond, ranking, score_based

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
    MetricSpec(
        name="coverage",
        fn=beyond.coverage,
        kind="global",
        description="Item coverage@K: share of the catalogue in at least one user's top K "
                    "(Ge et al. 2010).",
    ),
    MetricSpec(
        name="gini",
        fn=beyond.gini,
        kind="global",
        higher_is_better=False,
        description="Gini index@K of how often each item is recommended in top-K lists: "
                    "0 = equal exposure, ~1 = concentrated (Adomavicius & Kwon 2012).",
    ),
    MetricSpec(
        name="novelty",
        fn=beyond.novelty,
        needs=frozenset({"item_popularity"}),
        description="Novelty@K: mean self-information -log2 p_i of the top K, p_i = add-one "
                    "smoothed share of training interactions (Zhou et al. 2010).",
    ),
    MetricSpec(
        name="avg_popularity",
        fn=beyond.avg_popularity,
        needs=frozenset({"item_popularity"}),
        higher_is_better=False,
        description="AvgPop@K: mean training interaction count of the top K "
                    "(popularity bias; Abdollahpouri et al. 2019).",
    ),
    MetricSpec(
        name="ild",
        fn=beyond.ild,
        needs=frozenset({"item_features"}),
        description="ILD@K: mean pairwise cosine distance of the top K's item feature "
                    "vectors (Ziegler et al. 2005).",
    ),
    MetricSpec(
        name="auc",
        fn=score_based.auc,
        needs=frozenset({"scores"}),
        description="Per-user AUC of held-out items vs all other unseen items, ties = 1/2 "
                    "(full candidate set; same value at every K).",
    ),
    MetricSpec(
        name="logloss",
        fn=score_based.logloss,
        needs=frozenset({"scores"}),
        higher_is_better=False,
        description="Per-user BCE of sigmoid(score): held-out items label 1, all other unseen "
                    "items 0 (full, not sampled; for logit models; same value at every K).",
    ),
)


@hookimpl
def recframe_register_metrics(registry):
    """Register the built-in metrics."""
    for spec in METRICS:
        registry.add(spec)

"""Entry point module of recframe_metrics: the built-in metrics.

Per-user ranking metrics ``recall``, ``precision``, ``ndcg``, ``mrr``, ``hit``
and ``map`` (:mod:`recframe_metrics.ranking`); beyond-accuracy metrics
``coverage`` and ``gini`` (global), ``novelty``, ``avg_popularity`` and ``ild``
(:mod:`recframe_metrics.beyond`); score-based ``auc`` and ``logloss``
(:mod:`recframe_metrics.score_based`). Formulas are in those modules.

Under the CTR protocol (``evaluation=ctr``, :mod:`recframe_metrics.ctr`) ``auc``
and ``logloss`` are computed over the labeled impressions instead (their
``pointwise`` form), and ``gauc``, ``ece`` and ``calibration_gap`` exist only
there: they have ``kind="pointwise"`` (no ranking form) and a ranking ``fn``
that raises a :class:`recframe.api.ConfigError` saying so, should a ranking
evaluator call it.

Every function is a ``lazy`` reference: registering imports no torch; the metric's
module is imported when a run asks for the metric by name.
"""

from __future__ import annotations

from recframe.api import MetricSpec, hookimpl, lazy

METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(
        name="recall",
        fn=lazy("recframe_metrics.ranking:recall"),
        description="Recall@K: relevant items in the top K / number of relevant items "
                    "(parameter denominator: relevant | min_k = min(K, relevant), Liang "
                    "et al. 2018).",
        configure=lazy("recframe_metrics.ranking:configure_recall"),
    ),
    MetricSpec(
        name="precision",
        fn=lazy("recframe_metrics.ranking:precision"),
        description="Precision@K: relevant items in the top K / K.",
    ),
    MetricSpec(
        name="ndcg",
        fn=lazy("recframe_metrics.ranking:ndcg"),
        description="nDCG@K with binary gains (Järvelin & Kekäläinen 2002): DCG@K / IDCG@K.",
    ),
    MetricSpec(
        name="mrr",
        fn=lazy("recframe_metrics.ranking:mrr"),
        description="MRR@K: 1 / rank of the first relevant item within the top K, else 0.",
    ),
    MetricSpec(
        name="hit",
        fn=lazy("recframe_metrics.ranking:hit"),
        description="Hit@K (hit ratio): 1 if any relevant item is in the top K, else 0.",
    ),
    MetricSpec(
        name="map",
        fn=lazy("recframe_metrics.ranking:map_at_k"),
        description="MAP@K: sum of P@i at each hit i <= K, / min(number relevant, K).",
    ),
    MetricSpec(
        name="coverage",
        fn=lazy("recframe_metrics.beyond:coverage"),
        kind="global",
        description="Item coverage@K: share of the catalogue in at least one user's top K "
                    "(Ge et al. 2010).",
    ),
    MetricSpec(
        name="gini",
        fn=lazy("recframe_metrics.beyond:gini"),
        kind="global",
        higher_is_better=False,
        description="Gini index@K of how often each item is recommended in top-K lists: "
                    "0 = equal exposure, ~1 = concentrated (Adomavicius & Kwon 2012).",
    ),
    MetricSpec(
        name="novelty",
        fn=lazy("recframe_metrics.beyond:novelty"),
        needs=frozenset({"item_popularity"}),
        description="Novelty@K: mean self-information -log2 p_i of the top K, p_i = add-one "
                    "smoothed share of training interactions (Zhou et al. 2010).",
    ),
    MetricSpec(
        name="avg_popularity",
        fn=lazy("recframe_metrics.beyond:avg_popularity"),
        needs=frozenset({"item_popularity"}),
        higher_is_better=False,
        description="AvgPop@K: mean training interaction count of the top K "
                    "(popularity bias; Abdollahpouri et al. 2019).",
    ),
    MetricSpec(
        name="ild",
        fn=lazy("recframe_metrics.beyond:ild"),
        needs=frozenset({"item_features"}),
        description="ILD@K: mean pairwise cosine distance of the top K's item feature "
                    "vectors (Ziegler et al. 2005).",
    ),
    MetricSpec(
        name="auc",
        fn=lazy("recframe_metrics.score_based:auc"),
        pointwise=lazy("recframe_metrics.ctr:auc"),
        needs=frozenset({"scores"}),
        description="ROC AUC, ties = 1/2. Ranking: per-user AUC of held-out items vs all other "
                    "unseen items (full candidate set; same value at every K). CTR protocol: "
                    "global AUC of clicked vs unclicked impressions.",
    ),
    MetricSpec(
        name="logloss",
        fn=lazy("recframe_metrics.score_based:logloss"),
        pointwise=lazy("recframe_metrics.ctr:logloss"),
        needs=frozenset({"scores"}),
        higher_is_better=False,
        description="Binary cross-entropy of sigmoid(score). Ranking: per user, held-out items "
                    "label 1, all other unseen items 0 (full, not sampled; for logit models; "
                    "same value at every K). CTR protocol: mean over labeled impressions.",
    ),
    MetricSpec(
        name="gauc",
        fn=lazy("recframe_metrics.ctr:gauc_ranking"),
        kind="pointwise",
        pointwise=lazy("recframe_metrics.ctr:gauc"),
        description="CTR protocol only: per-user AUC averaged over users with both clicked "
                    "and unclicked impressions, weighted by impressions (Zhou et al. 2018).",
    ),
    MetricSpec(
        name="ece",
        fn=lazy("recframe_metrics.ctr:ece_ranking"),
        kind="pointwise",
        pointwise=lazy("recframe_metrics.ctr:ece"),
        higher_is_better=False,
        description="CTR protocol only: expected calibration error of the click probability, "
                    "15 equal-width bins (Naeini et al. 2015; Guo et al. 2017).",
    ),
    MetricSpec(
        name="calibration_gap",
        fn=lazy("recframe_metrics.ctr:calibration_gap_ranking"),
        kind="pointwise",
        pointwise=lazy("recframe_metrics.ctr:calibration_gap"),
        higher_is_better=False,
        description="CTR protocol only: |PCOC - 1|, PCOC = mean predicted click probability / "
                    "observed click rate (He et al. 2014); 0 = calibrated in the mean.",
    ),
)


@hookimpl
def recframe_register_metrics(registry):
    """Register the built-in metrics."""
    for spec in METRICS:
        registry.add(spec)

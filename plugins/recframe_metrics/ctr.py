"""Metrics of the CTR protocol (``evaluation=ctr``): every labeled impression, scored once.

Each metric gets a :class:`recframe.api.PointwiseInput` (``logits``, 0/1
``labels``, each row's ``users`` and its position ``row_user`` in the sorted
``user_index``) and returns ``(value, per_user)``: a 0-d float64 tensor and a
``[U]`` float64 tensor aligned with ``user_index`` (``NaN`` where undefined),
or None when the metric has no per-user form. All of them are vectorized: one
sort, ``bincount``/``index_add_`` segment sums, no Python loop over users or rows.

- :func:`auc`: global ROC AUC, ties 1/2 (Mann-Whitney U with average ranks).
- :func:`gauc`: impression-weighted mean of per-user AUCs (Zhou et al., "Deep
  Interest Network for Click-Through Rate Prediction", KDD 2018, eq. 8).
- :func:`logloss`: mean binary cross-entropy of ``sigmoid(logit)``.
- :func:`ece`: expected calibration error over 15 equal-width probability bins
  (Naeini et al., AAAI 2015; Guo et al., "On Calibration of Modern Neural
  Networks", ICML 2017).
- :func:`calibration_gap`: ``|PCOC - 1|``, PCOC = predicted / observed click
  rate (:func:`pcoc`; He et al., "Practical Lessons from Predicting Clicks on
  Ads at Facebook", ADKDD 2014, "calibration"). PCOC itself is a ratio whose
  ideal is 1 (below 1: under-prediction, above 1: over-prediction), so it has
  no "higher/lower is better" direction and is not a registered metric; it is
  kept raw in :func:`reliability_bins` (the run's calibration record).

:func:`reliability_bins` returns the data of a reliability diagram.
Edge cases: :func:`auc` and :func:`pcoc` are ``NaN`` when the part holds one
class only; :func:`gauc` is ``NaN`` when no user has both classes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.nn import functional as F

from recframe.api import (
    ConfigError,
    DataError,
    PointwiseInput,
    calibration_bins,
    reliability_table,
)

__all__ = ["N_BINS", "auc", "calibration_gap", "ece", "gauc", "logloss", "pcoc",
           "pointwise_only", "reliability_bins"]

#: number of equal-width probability bins of :func:`ece` and :func:`reliability_bins`
#: (Guo et al. 2017 use 15)
N_BINS = 15

Result = tuple[torch.Tensor, torch.Tensor | None]


def _check(inp: PointwiseInput, metric: str) -> None:
    """Raise :class:`DataError` unless the labels are 0/1 and the shapes agree."""
    n = inp.logits.shape[0]
    if inp.labels.shape[0] != n or inp.row_user.shape[0] != n:
        raise ValueError(f"metric {metric!r}: logits ({n}), labels ({inp.labels.shape[0]}) "
                         f"and row_user ({inp.row_user.shape[0]}) differ in length")
    if n and bool(((inp.labels != 0) & (inp.labels != 1)).any()):
        raise DataError(
            f"metric {metric!r}: the `label` column must hold 0/1 click labels; found other "
            f"values (e.g. {inp.labels[(inp.labels != 0) & (inp.labels != 1)][0].item()!r}). "
            f"Binarize the labels in the dataset loader or with the `binarize` preprocessor."
        )


def _nan(device: torch.device) -> torch.Tensor:
    return torch.tensor(float("nan"), dtype=torch.float64, device=device)


def _grouped_auc(group: torch.Tensor, n_groups: int, logits: torch.Tensor,
                 labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""ROC AUC within each group (``group`` in ``0..n_groups-1``) and the group sizes.

    One sort by ``(group, logit)`` (by logit, then stably by group). A run
    of equal ``(group, logit)`` pairs is a tie block: every row of a block gets
    the block's average rank within its group. With ``R`` the rank sum of the
    group's positives, ``P`` positives and ``N`` negatives:

    .. math:: \mathrm{AUC} = \frac{R - P(P+1)/2}{P\,N}

    (Mann & Whitney 1947; Hanley & McNeil 1982), ``NaN`` where ``P N = 0``.
    """
    device = logits.device
    sizes = torch.bincount(group, minlength=n_groups).to(torch.float64)
    if logits.numel() == 0:
        return torch.full((n_groups,), float("nan"), dtype=torch.float64, device=device), sizes
    # rows of equal logits may come in any order (they share an average rank), so the
    # logit sort need not be stable; the group sort must be, to keep the logit order
    order = torch.sort(logits).indices
    if n_groups > 1:
        order = order[torch.sort(group[order], stable=True).indices]
    g, s, y = group[order], logits[order], labels[order]
    n = g.numel()
    new_block = torch.ones(n, dtype=torch.bool, device=device)
    new_block[1:] = (g[1:] != g[:-1]) | (s[1:] != s[:-1])
    block = torch.cumsum(new_block.long(), 0) - 1
    block_start = torch.nonzero(new_block).squeeze(1).to(torch.float64)
    block_size = torch.bincount(block).to(torch.float64)
    # 0-based position of a row's first and last tied neighbour, averaged
    avg_pos = (block_start + (block_size - 1.0) / 2.0)[block]
    group_start = (torch.cumsum(sizes, 0) - sizes)[g]
    rank = avg_pos - group_start + 1.0
    pos = torch.zeros(n_groups, dtype=torch.float64, device=device).index_add_(0, g, y)
    rank_sum = torch.zeros(n_groups, dtype=torch.float64, device=device).index_add_(
        0, g, rank * y)
    neg = sizes - pos
    den = pos * neg
    u_stat = rank_sum - pos * (pos + 1.0) / 2.0
    nan = torch.full_like(den, float("nan"))
    return torch.where(den > 0, u_stat / den.clamp(min=1.0), nan), sizes


def auc(inp: PointwiseInput) -> Result:
    r"""Global ROC AUC over all rows of the part, ties counting one half.

    The probability that a random clicked impression gets a higher logit than a
    random unclicked one (ties 1/2): the Mann-Whitney U statistic computed from
    average ranks after one sort, :math:`(R_+ - P(P+1)/2) / (P N)` (Hanley &
    McNeil, "The meaning and use of the area under a ROC curve", Radiology
    1982). Equal to ``sklearn.metrics.roc_auc_score``. All-equal logits give
    0.5; a part with only one class gives ``NaN``. No per-user form (see
    :func:`gauc`).
    """
    _check(inp, "auc")
    group = torch.zeros_like(inp.row_user)
    value, _ = _grouped_auc(group, 1, inp.logits, inp.labels)
    return value[0], None


def gauc(inp: PointwiseInput) -> Result:
    r"""Group (user) AUC: per-user AUCs averaged with weights = impressions.

    .. math:: \mathrm{GAUC} = \frac{\sum_u n_u\, \mathrm{AUC}_u}{\sum_u n_u}

    over the users with at least one clicked and one unclicked impression
    (``n_u`` = the user's impressions; Zhou et al., "Deep Interest Network for
    Click-Through Rate Prediction", KDD 2018, eq. 8). Users with one class have
    no AUC: they are ``NaN`` in ``per_user`` and left out of the mean. ``NaN``
    when no user has both classes. One global sort by ``(user, logit)`` and
    segment sums (:func:`_grouped_auc`).
    """
    _check(inp, "gauc")
    per_user, sizes = _grouped_auc(inp.row_user, inp.user_index.numel(), inp.logits,
                                   inp.labels)
    defined = ~torch.isnan(per_user)
    weight = torch.where(defined, sizes, torch.zeros_like(sizes))
    total = weight.sum()
    value = torch.where(defined, per_user * weight, torch.zeros_like(per_user)).sum()
    return torch.where(total > 0, value / total.clamp(min=1.0), _nan(total.device)), per_user


def logloss(inp: PointwiseInput) -> Result:
    r"""Mean binary cross-entropy (log loss) of ``sigmoid(logit)``; lower is better.

    .. math:: -\frac1N \sum_i y_i \log\sigma(s_i) + (1-y_i)\log(1-\sigma(s_i))
        = \frac1N \sum_i \mathrm{softplus}(s_i) - y_i s_i

    computed from the logits (finite for any finite logit, no ``log(0)``).
    Equal to ``sklearn.metrics.log_loss`` of the probabilities where those do
    not saturate. ``per_user``: each user's mean log loss over their impressions.
    ``NaN`` for an empty part.
    """
    _check(inp, "logloss")
    bce = F.binary_cross_entropy_with_logits(inp.logits, inp.labels, reduction="none")
    n_users = inp.user_index.numel()
    sums = torch.zeros(n_users, dtype=torch.float64, device=bce.device).index_add_(
        0, inp.row_user, bce)
    counts = torch.bincount(inp.row_user, minlength=n_users).to(torch.float64)
    per_user = sums / counts  # every user in user_index has at least one row
    value = bce.mean() if bce.numel() else _nan(bce.device)
    return value, per_user


def ece(inp: PointwiseInput, n_bins: int = N_BINS) -> Result:
    r"""Expected calibration error of the click probability; lower is better.

    The predicted probabilities ``p = sigmoid(logit)`` are put in ``M = 15``
    equal-width bins ``B_m`` of ``[0, 1]``; ECE is the row-weighted mean gap
    between a bin's mean predicted probability and its observed click rate:

    .. math:: \mathrm{ECE} = \sum_m \frac{|B_m|}{N}
        \Bigl| \frac{1}{|B_m|}\sum_{i \in B_m} y_i - \frac{1}{|B_m|}\sum_{i\in B_m} p_i \Bigr|

    (Naeini et al., "Obtaining Well Calibrated Probabilities Using Bayesian
    Binning", AAAI 2015; Guo et al., "On Calibration of Modern Neural
    Networks", ICML 2017, with 15 bins). For a binary click model the binned
    "confidence" is the predicted click probability itself (not ``max(p,
    1-p)``), as in a reliability diagram of CTR. Bins are ``(lower, upper]``;
    probability 0 falls in the first one. Empty bins add nothing. No per-user
    form. ``NaN`` for an empty part.
    """
    _check(inp, "ece")
    _, count, prob_sum, label_sum = calibration_bins(inp.probabilities, inp.labels, n_bins)
    n = count.sum()
    value = (prob_sum - label_sum).abs().sum()  # |B_m| * |gap| summed
    return torch.where(n > 0, value / n.clamp(min=1.0), _nan(n.device)), None


def pcoc(inp: PointwiseInput) -> torch.Tensor:
    r"""Predicted click rate over observed click rate (PCOC), a 0-d tensor.

    ``mean(sigmoid(logit)) / mean(label)``: 1 is calibrated in the mean, below 1
    the model under-predicts clicks, above 1 it over-predicts (the
    "calibration" ratio of He et al., ADKDD 2014). Not a ranked metric (both
    directions are worse); see :func:`calibration_gap`. ``NaN`` when the part
    holds no click.
    """
    _check(inp, "pcoc")
    clicks = inp.labels.sum()
    predicted = inp.probabilities.sum()
    return torch.where(clicks > 0, predicted / clicks.clamp(min=1.0), _nan(clicks.device))


def calibration_gap(inp: PointwiseInput) -> Result:
    r"""``|PCOC - 1|``: how far the predicted click rate is off, relative to the observed one.

    0 when the mean predicted probability equals the click rate; 0.5 for a
    model predicting 50 % more (or half as many) clicks as observed. Lower is
    better. :func:`pcoc` keeps the signed ratio (in the calibration record of
    :func:`reliability_bins`). No per-user form (a user's few impressions give
    a noisy click rate, often 0). ``NaN`` when the part holds no click.
    """
    return (pcoc(inp) - 1.0).abs(), None


def reliability_bins(inp: PointwiseInput, n_bins: int = N_BINS) -> dict[str, Any]:
    """The data of a reliability diagram (Guo et al., ICML 2017, Fig. 1), as plain Python:
    the run's calibration table (``recframe.api.reliability_table``: bin edges, each
    bin's row count, mean predicted click probability and observed click rate,
    ``None`` for an empty bin) plus the part's ``ece`` (:func:`ece`) and ``pcoc``
    (:func:`pcoc`; ``None`` when undefined).
    """
    _check(inp, "reliability_bins")
    table = reliability_table(inp.probabilities, inp.labels, n_bins)
    ece_value, ratio = float(ece(inp, n_bins)[0]), float(pcoc(inp))
    return {**table, "ece": ece_value if ece_value == ece_value else None,
            "pcoc": ratio if ratio == ratio else None}


def pointwise_only(name: str) -> Callable[[Any, int], torch.Tensor]:
    """A ranking ``fn`` for a metric that only exists under the CTR protocol: it raises
    :class:`recframe.api.ConfigError` naming the metric and the fix."""

    def fn(inp: Any, k: int) -> torch.Tensor:
        raise ConfigError(
            f"metric {name!r} only exists under the CTR protocol (evaluation=ctr): it needs "
            f"labeled impressions, not a ranking of all items. Remove {name!r} from "
            f"metrics.names or set evaluation=ctr."
        )

    fn.__name__ = f"{name}_ranking_unsupported"
    fn.__doc__ = f"Raises ConfigError: {name!r} is a CTR-protocol (evaluation=ctr) metric."
    return fn


#: the ranking ``fn`` of the CTR-only metrics (lazy references in the plugin name these)
gauc_ranking = pointwise_only("gauc")
ece_ranking = pointwise_only("ece")
calibration_gap_ranking = pointwise_only("calibration_gap")

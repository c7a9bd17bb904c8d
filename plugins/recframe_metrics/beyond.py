"""Beyond-accuracy metrics: catalogue coverage, exposure concentration, novelty,
popularity bias and intra-list diversity.

Two kinds (see :class:`recframe.api.MetricSpec`):

- **global** (``coverage``, ``gini``): ``fn(g, k)`` with a
  :class:`recframe.api.GlobalInput` whose ``counts[i]`` is how many evaluated
  users got item ``i`` in their top ``k``, summed over all evaluation batches
  (and ranks) before the metric is computed, so batch size never changes it.
- **per user** (``novelty``, ``avg_popularity``, ``ild``): ``fn(inp, k)`` with
  a :class:`recframe.api.MetricInput`, one value per user; the reported value
  is the mean over evaluated users.

Per-user metrics look at the first ``min(k, Kmax)`` ranked items (the
evaluator caps its top-k at the catalogue size) and average over that list
length, written ``k`` in the formulas. When a user has fewer unseen
items than ``k``, the evaluator fills the list with masked items; those
fillers are counted here too (they are excluded from the global counts). This
only happens on toy catalogues.
"""

from __future__ import annotations

import torch

from recframe.api import GlobalInput, MetricInput

__all__ = ["avg_popularity", "coverage", "gini", "ild", "novelty", "self_information"]


def _top(inp: MetricInput, k: int) -> torch.Tensor:
    if k < 1:
        raise ValueError(f"cut-off k must be a positive integer, got {k!r}")
    return inp.topk[:, :k]


def _popularity(inp: MetricInput | GlobalInput, metric: str) -> torch.Tensor:
    if inp.item_popularity is None:
        raise ValueError(f"metric {metric!r} needs item_popularity (training counts per item)")
    return inp.item_popularity.to(torch.float64)


# -- global ----------------------------------------------------------------------------


def coverage(g: GlobalInput, k: int) -> torch.Tensor:
    r"""Catalogue coverage at k: the share of all items recommended to at least one user.

    .. math:: \mathrm{Coverage@}k = \frac{|\bigcup_u \mathrm{top}_k(u)|}{|I|}

    (Ge, Delgado-Battenfeld & Jannach, "Beyond accuracy: evaluating recommender
    systems by coverage and serendipity", RecSys 2010; RecBole's ``ItemCoverage``.)
    ``|I|`` is the whole catalogue, including items no user could be recommended.
    """
    n = max(int(g.n_items), 1)
    return (g.counts > 0).sum().to(torch.float64) / n


def gini(g: GlobalInput, k: int) -> torch.Tensor:
    r"""Gini index of how often each item is recommended (exposure concentration).

    With the recommendation counts ``c_(1) <= ... <= c_(n)`` of all ``n``
    catalogue items sorted ascending (items never recommended count 0):

    .. math:: \mathrm{Gini@}k = \frac{\sum_{j=1}^{n} (2j - n - 1)\, c_{(j)}}{n \sum_j c_{(j)}}

    0 when every item is recommended equally often; ``(n - 1) / n`` (about 1)
    when a single item takes every slot. Lower is better (fairer exposure).
    Adomavicius & Kwon, "Improving aggregate recommendation diversity using
    ranking-based techniques", IEEE TKDE 24(5), 2012; the same formula as
    RecBole's ``GiniIndex``. 0 when nothing was recommended.
    """
    counts = torch.sort(g.counts.to(torch.float64).flatten()).values
    n = counts.numel()
    total = counts.sum()
    if n == 0:
        return torch.zeros((), dtype=torch.float64)
    j = torch.arange(1, n + 1, dtype=torch.float64, device=counts.device)
    num = ((2 * j - n - 1) * counts).sum()
    return torch.where(total > 0, num / (n * total.clamp(min=1e-12)),
                       torch.zeros((), dtype=torch.float64, device=counts.device))


# -- per user ---------------------------------------------------------------------------


def self_information(popularity: torch.Tensor) -> torch.Tensor:
    r"""``-log2 p_i`` with the add-one smoothed item distribution
    ``p_i = (pop_i + 1) / (sum_j pop_j + n_items)``."""
    pop = popularity.to(torch.float64)
    p = (pop + 1.0) / (pop.sum() + pop.numel())
    return -torch.log2(p)


def novelty(inp: MetricInput, k: int) -> torch.Tensor:
    r"""Novelty at k: the mean self-information of the recommended items.

    Zhou, Kuscsik, Liu, Medo, Wakeling & Zhang, "Solving the apparent
    diversity-accuracy dilemma of recommender systems", PNAS 107(10), 2010,
    define the novelty of item ``i`` as ``log2(M / k_i)`` with ``M`` users and
    ``k_i`` the item's degree. ``MetricInput`` carries training interaction
    counts ``pop_i`` but not the number of training users, so here
    ``p_i = (pop_i + 1) / (\sum_j pop_j + |I|)`` is the (add-one smoothed)
    share of training interactions that fall on item ``i``:

    .. math:: \mathrm{Novelty@}k(u) = \frac{1}{k} \sum_{i \in \mathrm{top}_k(u)} -\log_2 p_i

    The smoothing keeps items without training interactions (cold items)
    finite. Relative to Zhou et al. this shifts every value by about
    ``log2(interactions per user)``, a constant for a data set, so rankings of
    models on the same data are unchanged; values are not comparable across
    data sets. Higher = less popular (more novel) recommendations.
    """
    top = _top(inp, k)
    info = self_information(_popularity(inp, "novelty")).to(top.device)
    return info[top].mean(dim=1)


def avg_popularity(inp: MetricInput, k: int) -> torch.Tensor:
    r"""Average popularity at k: mean training interaction count of the top-k items.

    .. math:: \mathrm{AvgPop@}k(u) = \frac{1}{k} \sum_{i \in \mathrm{top}_k(u)} \mathrm{pop}_i

    (Abdollahpouri, Burke & Mobasher, "Managing popularity bias in
    recommender systems with personalized re-ranking", FLAIRS 2019; RecBole's
    ``AveragePopularity``.) Lower means less popularity bias.
    """
    top = _top(inp, k)
    pop = _popularity(inp, "avg_popularity").to(top.device)
    return pop[top].mean(dim=1)


def ild(inp: MetricInput, k: int) -> torch.Tensor:
    r"""Intra-list diversity at k: mean pairwise cosine distance of the top-k items.

    .. math:: \mathrm{ILD@}k(u) = \frac{1}{k(k-1)} \sum_{i \ne j \in \mathrm{top}_k(u)}
        \left(1 - \cos(f_i, f_j)\right)

    with ``f_i`` the item's feature vector (the evaluator L2-normalizes the
    rows of the numeric item features, e.g. genre flags). Ziegler, McNee,
    Konstan & Lausen, "Improving recommendation lists through topic
    diversification", WWW 2005. An item without features (zero vector) has
    cosine 0 to everything. 0 for lists of a single item.
    """
    if inp.item_features is None:
        raise ValueError("metric 'ild' needs item_features")
    top = _top(inp, k)
    n = top.shape[1]
    if n < 2:
        return torch.zeros(top.shape[0], dtype=torch.float32, device=top.device)
    feats = inp.item_features.to(top.device)[top].to(torch.float64)  # [B, n, F]
    sim = feats @ feats.transpose(1, 2)  # [B, n, n]
    off_diag = sim.sum(dim=(1, 2)) - torch.diagonal(sim, dim1=1, dim2=2).sum(dim=1)
    return 1.0 - off_diag / (n * (n - 1))

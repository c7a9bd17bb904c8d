"""Per-user top-K ranking metrics over one batch of users.

Every function has the signature ``fn(inp, k) -> Tensor[B]`` (float) where
``inp`` is a :class:`recframe.api.MetricInput`:

- ``inp.hits``: ``[B, Kmax]`` float 0/1, ``hits[u, i] = 1`` when the item ranked
  at position ``i + 1`` for user ``u`` is relevant (in the ground truth);
- ``inp.n_relevant``: ``[B]`` float, ``|R_u|``, the number of relevant items.

Notation used in the docstrings: ``rel_i`` is the 0/1 relevance of the item at
rank ``i`` (1-based), ``|R_u|`` the number of relevant items of user ``u``.
The definitions follow RecBole's (``recbole/evaluator/metrics.py``; Zhao et
al., "RecBole", CIKM 2021), which are the usual ones in the recommender
literature.

Conventions shared by all metrics:

- The cut-off ``k`` may exceed ``Kmax`` (the evaluator caps its top-k at the
  catalogue size): positions past ``Kmax`` do not exist, so they hold no hit.
  Only ``precision`` keeps ``k`` itself in its denominator (see there).
- A user with no relevant item (``|R_u| = 0``) gets 0 for every metric,
  never NaN.
- Pure tensor operations over the batch: no Python loop over users and no
  host synchronisation (``.item()``), so the functions run unchanged on GPU.
"""

from __future__ import annotations

import functools

import torch

from recframe.api import ConfigError, MetricInput, check_known_keys

__all__ = ["configure_recall", "hit", "map_at_k", "mrr", "ndcg", "precision", "recall",
           "recall_min_k"]


def _hits_at(inp: MetricInput, k: int) -> torch.Tensor:
    """``[B, min(k, Kmax)]`` float hit matrix of the first ``k`` ranks."""
    if k < 1:
        raise ValueError(f"cut-off k must be a positive integer, got {k!r}")
    return inp.hits[:, :k].float()


def _ranks(n: int, like: torch.Tensor) -> torch.Tensor:
    """``[n]`` 1-based ranks ``1..n`` with the dtype and device of ``like``."""
    return torch.arange(1, n + 1, dtype=like.dtype, device=like.device)


@functools.lru_cache(maxsize=64)
def _discount(n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``[n]`` position discounts ``1 / log2(i + 1)``, i = 1..n (cached: every batch
    and cut-off asks for the same few; callers never modify them)."""
    return 1.0 / torch.log2(torch.arange(1, n + 1, dtype=dtype, device=device) + 1.0)


@functools.lru_cache(maxsize=64)
def _ideal_dcg_table(n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``[n + 1]`` IDCG by number of ideal hits: ``table[j] = sum_{i<=j} 1/log2(i+1)``."""
    discount = _discount(n, dtype, device)
    return torch.cat([discount.new_zeros(1), torch.cumsum(discount, dim=0)])


def _safe_div(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """``num / den`` where ``den > 0``, else 0 (no NaN, no inf)."""
    return torch.where(den > 0, num / den.clamp(min=1e-12), torch.zeros_like(num))


def recall(inp: MetricInput, k: int) -> torch.Tensor:
    r"""Recall@k: the share of a user's relevant items found in the top k.

    .. math:: \mathrm{Recall@}k(u) = \frac{\sum_{i=1}^{k} rel_i}{|R_u|}

    0 when ``|R_u| = 0``.
    """
    hits = _hits_at(inp, k)
    n_rel = inp.n_relevant.to(hits.dtype)
    return _safe_div(hits.sum(dim=1), n_rel)


def recall_min_k(inp: MetricInput, k: int) -> torch.Tensor:
    r"""Truncated Recall@k: hits in the top k over the most hits the top k can hold.

    .. math:: \mathrm{Recall@}k(u) = \frac{\sum_{i=1}^{k} rel_i}{\min(k, |R_u|)}

    The Recall@R of Liang, Krishnan, Hoffman & Jebara, "Variational Autoencoders for
    Collaborative Filtering", WWW 2018 (Eq. 8): 1 for a perfect ranking even when a user
    has more than k relevant items. 0 when ``|R_u| = 0``.
    """
    hits = _hits_at(inp, k)
    n_rel = inp.n_relevant.to(hits.dtype).clamp(max=k)
    return _safe_div(hits.sum(dim=1), n_rel)


#: ``recall``'s parameter ``denominator`` -> its function
RECALL_DENOMINATORS = {"relevant": recall, "min_k": recall_min_k}


def configure_recall(params: dict, where: str):
    """``recall``'s parameters: ``denominator: relevant`` (``|R_u|``, the default) or
    ``min_k`` (``min(k, |R_u|)``, :func:`recall_min_k`)."""
    check_known_keys(params, where, ("denominator",), "{name: recall, denominator: min_k}")
    denominator = params.get("denominator", "relevant")
    if denominator not in RECALL_DENOMINATORS:
        raise ConfigError(f"{where}.denominator must be one of {list(RECALL_DENOMINATORS)} "
                          f"(relevant: |R_u|; min_k: min(K, |R_u|)), got {denominator!r}")
    return RECALL_DENOMINATORS[denominator]


def precision(inp: MetricInput, k: int) -> torch.Tensor:
    r"""Precision@k: the share of the top k that is relevant.

    .. math:: \mathrm{Precision@}k(u) = \frac{\sum_{i=1}^{k} rel_i}{k}

    The denominator is always ``k``, as in RecBole, even when the catalogue
    holds fewer than ``k`` items (then the missing ranks count as misses).
    0 when ``|R_u| = 0`` (there can be no hit).
    """
    hits = _hits_at(inp, k)
    return hits.sum(dim=1) / float(k)


def ndcg(inp: MetricInput, k: int) -> torch.Tensor:
    r"""Normalised discounted cumulative gain at k, with binary gains.

    Järvelin & Kekäläinen, "Cumulated gain-based evaluation of IR techniques",
    ACM TOIS 20(4), 2002; binary-relevance form as in RecBole:

    .. math::

        \mathrm{DCG@}k(u) = \sum_{i=1}^{k} \frac{rel_i}{\log_2(i + 1)}, \qquad
        \mathrm{IDCG@}k(u) = \sum_{i=1}^{\min(|R_u|, k)} \frac{1}{\log_2(i + 1)}

        \mathrm{nDCG@}k(u) = \mathrm{DCG@}k(u) / \mathrm{IDCG@}k(u)

    IDCG is the DCG of an ideal ranking that puts all relevant items first.
    0 when ``|R_u| = 0``.
    """
    hits = _hits_at(inp, k)
    discount = _discount(hits.shape[1], hits.dtype, hits.device)
    dcg = (hits * discount).sum(dim=1)
    # Ideal DCG from a cumulative table indexed by the number of ideal hits.
    # |R_u| <= n_items, so the table never needs more than min(k, n_items) rows.
    n_ideal_max = max(min(k, int(inp.n_items)), hits.shape[1])
    table = _ideal_dcg_table(n_ideal_max, hits.dtype, hits.device)
    n_ideal = torch.clamp(inp.n_relevant.to(hits.device), min=0, max=n_ideal_max).long()
    idcg = table[n_ideal]
    return _safe_div(dcg, idcg)


def mrr(inp: MetricInput, k: int) -> torch.Tensor:
    r"""Mean reciprocal rank at k (per user: the reciprocal rank).

    .. math:: \mathrm{MRR@}k(u) = \frac{1}{\mathrm{rank}_u} \text{ if the first relevant
        item is at } \mathrm{rank}_u \le k \text{, else } 0

    0 when ``|R_u| = 0``.
    """
    hits = _hits_at(inp, k)
    if hits.shape[1] == 0:
        return hits.new_zeros(hits.shape[0])
    # argmax returns the first maximal position: the first hit when there is one
    first = torch.argmax(hits, dim=1)
    reciprocal = 1.0 / (first + 1).to(hits.dtype)
    return torch.where(hits.amax(dim=1) > 0, reciprocal, torch.zeros_like(reciprocal))


def hit(inp: MetricInput, k: int) -> torch.Tensor:
    r"""Hit ratio at k: 1 if at least one relevant item is in the top k, else 0.

    .. math:: \mathrm{Hit@}k(u) = \mathbb{1}\left[\sum_{i=1}^{k} rel_i > 0\right]
    """
    hits = _hits_at(inp, k)
    return (hits.sum(dim=1) > 0).to(hits.dtype)


def map_at_k(inp: MetricInput, k: int) -> torch.Tensor:
    r"""Mean average precision at k (per user: the average precision).

    .. math::

        \mathrm{AP@}k(u) = \frac{1}{\min(|R_u|, k)} \sum_{i=1}^{k} \mathrm{P@}i(u)\, rel_i,
        \qquad \mathrm{P@}i(u) = \frac{1}{i} \sum_{j=1}^{i} rel_j

    The normaliser ``min(|R_u|, k)`` (RecBole's) makes a perfect top k score 1
    even when the user has more than ``k`` relevant items. 0 when ``|R_u| = 0``.
    """
    hits = _hits_at(inp, k)
    prec_at_i = torch.cumsum(hits, dim=1) / _ranks(hits.shape[1], hits)
    total = (prec_at_i * hits).sum(dim=1)
    n_rel = inp.n_relevant.to(hits.dtype)
    return _safe_div(total, torch.clamp(n_rel, max=float(k)))

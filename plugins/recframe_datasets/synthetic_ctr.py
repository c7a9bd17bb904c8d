"""Synthetic click logs from a planted logistic model, with their Bayes-optimal scores.

Every impression ``r`` (user ``u``, item ``i``, context) is clicked with probability
``p_r = sigmoid(z_r)``, where

    z_r = b + sum_f w_f[x_rf]                              (first order)
            + sum_{f<g} <v_f[x_rf], v_g[x_rg]>             (pairwise, if interactions=pairwise)
            + sequence_effect * m_r                        (sequence)

over the fields ``f`` = user_id, item_id, segment, region (user), category, price
(item), device, daypart (context): ``w_f`` and the rank-``rank`` vectors ``v_f`` are
drawn per field value (the numeric ``price`` enters as ``z(log price) * w`` and
``z(log price) * v``), the factorization-machine form (Rendle, ICDM 2010), so FM,
DeepFM (Guo et al., IJCAI 2017) and DCN-type models can recover it and a linear model
cannot recover the pairwise part. ``m_r`` is the share of the user's last
``seq_window`` clicks (earlier rows with label 1) whose item has the row item's
``category``: a planted sequence effect a history-aware model (DIN, Zhou et al., KDD
2018) can read from the ``hist`` field and a model without history cannot. The bias
``b`` is set so the model without the sequence term clicks at ``click_rate`` (the
sequence term adds clicks: 26% instead of 20% at the defaults).

At the defaults (seed 0) the Bayes-optimal AUC is 0.833 (LogLoss 0.419); the true
logits without the sequence term score an AUC of 0.795 on the same labels, and
``interactions: none`` data have a Bayes-optimal AUC of 0.774.

Rows are generated per user in time order (timestamps strictly increasing per user,
``daypart`` = the timestamp's quarter of the day) so the sequence term sees the
clicks actually drawn before. The interaction frame is sorted by time and indexed
``0..N-1``; ``meta["true_probability"][k]`` is ``p`` of the row with index label
``k``, so for any part that keeps the index (preprocessors and splitters do),
``bayes_optimal(p[part.interactions.index], part.interactions.label)`` gives the best
any model can score there. ``p`` is never a column: no model can read it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit
from scipy.stats import rankdata

from recframe.api import ITEM, LABEL, TIMESTAMP, USER, ConfigError, Dataset

from .config import settings_from_cfg
from .fingerprint import params_fingerprint

NAME = "synthetic_ctr"
GENERATOR_VERSION = 1
_START = 1_600_000_000  # 2020-09-13, Unix seconds
_DAY = 86_400
DEVICES = ("mobile", "desktop", "tablet")
DEVICE_SHARES = (0.55, 0.35, 0.10)
DAYPARTS = ("night", "morning", "afternoon", "evening")  # hours 0-5, 6-11, 12-17, 18-23
N_SEGMENTS, N_REGIONS = 5, 4


@dataclass(frozen=True)
class SyntheticCTRParams:
    """Generator settings (the ``synthetic_ctr`` dataset config, minus ``name``/``fields``)."""

    n_users: int = 2000
    n_items: int = 500
    n_rows: int = 60_000
    n_categories: int = 6
    rank: int = 4
    interactions: str = "pairwise"
    first_order_scale: float = 0.4
    interaction_scale: float = 1.0
    sequence_effect: float = 3.0
    seq_window: int = 3
    click_rate: float = 0.2
    popularity_exponent: float = 0.8
    hist_len: int = 20
    seed: int = 0

    @classmethod
    def from_cfg(cls, cfg: Any) -> SyntheticCTRParams:
        """Read and validate the settings; unknown keys are a :class:`ConfigError`."""
        return settings_from_cfg(cls, cfg)

    def validate(self) -> None:
        """Raise a :class:`ConfigError` for impossible settings."""
        checks = [
            (self.n_users >= 1, "n_users must be >= 1"),
            (self.n_items >= 2, "n_items must be >= 2"),
            (self.n_rows >= self.n_users, f"n_rows must be >= n_users={self.n_users} (every "
                                          f"user gets at least one impression)"),
            (self.n_categories >= 2, "n_categories must be >= 2"),
            (self.rank >= 1, "rank must be >= 1"),
            (self.interactions in ("pairwise", "none"),
             f"interactions must be pairwise or none, got {self.interactions!r}"),
            (self.first_order_scale >= 0, "first_order_scale must be >= 0"),
            (self.interaction_scale >= 0, "interaction_scale must be >= 0"),
            (np.isfinite(self.sequence_effect), "sequence_effect must be a finite number"),
            (self.seq_window >= 1, "seq_window must be >= 1"),
            (0 < self.click_rate < 1, "click_rate must be in (0, 1)"),
            (self.popularity_exponent >= 0, "popularity_exponent must be >= 0"),
            (self.hist_len >= 0, "hist_len must be >= 0 (0 = no hist field)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"synthetic_ctr dataset: {message}; see "
                                  f"conf/dataset/synthetic_ctr.yaml.")


def load_synthetic_ctr(cfg: Any) -> Dataset:
    """The ``synthetic_ctr`` dataset: :func:`generate` with settings from ``cfg``
    (``cfg.fields``, overrides of the declarations, is applied by recframe)."""
    return generate(SyntheticCTRParams.from_cfg(cfg))


def generate(params: SyntheticCTRParams) -> Dataset:
    """Generate the click log; the same ``params`` always give identical frames and meta.

    ``meta``: ``fields`` (declarations), ``fingerprint``, ``generator`` (the settings),
    ``true_probability`` / ``true_logit`` (float64 ``[N]``, by index label of the
    interaction rows), ``bayes_optimal`` (:func:`bayes_optimal` of all rows with their
    labels), ``label_rate`` (the realised click rate) and ``bias``.
    """
    p = params
    rng = np.random.default_rng(p.seed)
    # users and items
    segment = rng.integers(N_SEGMENTS, size=p.n_users)
    region = rng.integers(N_REGIONS, size=p.n_users)
    category = rng.integers(p.n_categories, size=p.n_items)
    price = np.round(np.exp(rng.normal(3.0, 0.7, size=p.n_items)), 2)
    log_price = np.log(price)
    price_z = (log_price - log_price.mean()) / max(log_price.std(), 1e-12)
    # impressions: each user >= 1, more for active users (log-normal activity)
    activity = rng.lognormal(0.0, 0.8, size=p.n_users)
    counts = 1 + rng.multinomial(p.n_rows - p.n_users, activity / activity.sum())
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    user = np.repeat(np.arange(p.n_users), counts)
    popularity = (rng.permutation(p.n_items) + 1.0) ** -p.popularity_exponent
    item = rng.choice(p.n_items, size=p.n_rows, p=popularity / popularity.sum())
    device = rng.choice(len(DEVICES), size=p.n_rows, p=DEVICE_SHARES)
    start = _START + rng.integers(0, 30 * _DAY, size=p.n_users)
    gaps = 1 + rng.exponential(3 * 3600, size=p.n_rows).astype("int64")
    elapsed = np.cumsum(gaps)
    elapsed -= np.repeat(elapsed[first] - gaps[first], counts)  # restart per user
    timestamp = np.repeat(start, counts) + elapsed
    daypart = (timestamp // 3600) % 24 // 6

    # the planted model: one code column per categorical field
    codes = np.stack([user, item, segment[user], region[user], category[item], device,
                      daypart], axis=1)
    sizes = [p.n_users, p.n_items, N_SEGMENTS, N_REGIONS, p.n_categories, len(DEVICES),
             len(DAYPARTS)]
    n_fields = len(sizes) + 1  # + price
    w = [p.first_order_scale * rng.normal(size=s) for s in sizes]
    w_price = p.first_order_scale * rng.normal()
    n_pairs = n_fields * (n_fields - 1) // 2
    sd = np.sqrt(p.interaction_scale / np.sqrt(n_pairs * p.rank))  # pairwise term std ~ scale
    v = [sd * rng.normal(size=(s, p.rank)) for s in sizes]
    v_price = sd * rng.normal(size=p.rank)
    x_price = price_z[item]
    static = sum(w[f][codes[:, f]] for f in range(len(sizes))) + w_price * x_price
    if p.interactions == "pairwise":
        emb = np.stack([v[f][codes[:, f]] for f in range(len(sizes))]
                       + [x_price[:, None] * v_price], axis=1)  # [N, fields, rank]
        static = static + 0.5 * (np.square(emb.sum(axis=1)).sum(axis=1)
                                 - np.square(emb).sum(axis=(1, 2)))
    bias = calibrate_bias(static, p.click_rate)

    # labels in time order, per user, one round (the r-th impression of every user) at a time
    logit = bias + static
    label = np.zeros(p.n_rows, dtype="int64")
    recent = np.full((p.n_users, p.seq_window), -1)  # categories of the last clicks
    row_category = category[item]
    uniforms = rng.random(p.n_rows)
    for r in range(int(counts.max())):
        users = np.flatnonzero(counts > r)
        rows = first[users] + r
        cat = row_category[rows]
        match = (recent[users] == cat[:, None]).mean(axis=1)
        logit[rows] += p.sequence_effect * match
        clicked = uniforms[rows] < expit(logit[rows])
        label[rows] = clicked
        who = users[clicked]
        recent[who, :-1] = recent[who, 1:]
        recent[who, -1] = cat[clicked]
    prob = expit(logit)

    order = np.lexsort((np.arange(p.n_rows), timestamp))  # by time; ties keep user order
    interactions = pd.DataFrame({
        USER: user[order], ITEM: item[order], LABEL: label[order],
        TIMESTAMP: timestamp[order].astype("int64"),
        "device": pd.array(DEVICES, dtype="str")[device[order]],
        "daypart": pd.array(DAYPARTS, dtype="str")[daypart[order]],
    })
    users_frame = pd.DataFrame({
        "segment": pd.array([f"s{k}" for k in range(N_SEGMENTS)], dtype="str")[segment],
        "region": pd.array([f"r{k}" for k in range(N_REGIONS)], dtype="str")[region],
    }, index=pd.Index(np.arange(p.n_users), name=USER))
    items_frame = pd.DataFrame({
        "category": pd.array([f"c{k}" for k in range(p.n_categories)], dtype="str")[category],
        "price": price,
    }, index=pd.Index(np.arange(p.n_items), name=ITEM))
    fields: list[dict[str, Any]] = [
        {"name": "segment", "kind": "categorical", "owner": "user"},
        {"name": "region", "kind": "categorical", "owner": "user"},
        {"name": "category", "kind": "categorical", "owner": "item"},
        {"name": "price", "kind": "numeric", "owner": "item", "normalize": "log"},
        {"name": "device", "kind": "categorical", "owner": "context"},
        {"name": "daypart", "kind": "categorical", "owner": "context"},
    ]
    if p.hist_len:
        fields.append({"name": "hist", "kind": "sequence", "owner": "context", "shares": ITEM,
                       "max_len": p.hist_len})
    settings = dataclasses.asdict(p)
    true_p = prob[order]
    return Dataset(
        interactions=interactions, items=items_frame, users=users_frame, name=NAME,
        source=f"synthetic_ctr(seed={p.seed})",
        meta={
            "fingerprint": params_fingerprint({**settings, "version": GENERATOR_VERSION}),
            "generator": settings,
            "fields": fields,
            "true_probability": true_p,
            "true_logit": logit[order],
            "bayes_optimal": bayes_optimal(true_p, interactions[LABEL].to_numpy()),
            "label_rate": float(label.mean()),
            "bias": bias,
        },
    )


def calibrate_bias(logits: np.ndarray, rate: float) -> float:
    """The ``b`` with ``mean(sigmoid(b + logits)) == rate`` (bisection to 1e-10)."""
    lo, hi = -40.0 - float(logits.max()), 40.0 - float(logits.min())
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if expit(mid + logits).mean() < rate:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-10:
            break
    return 0.5 * (lo + hi)


# --------------------------------------------------------------------------- Bayes-optimal

def bayes_optimal(p: np.ndarray, labels: np.ndarray | None = None) -> dict[str, float]:
    """The best AUC and LogLoss any model can expect on rows clicked with probability ``p``.

    Expected values (no labels needed), for labels ``y_r ~ Bernoulli(p_r)`` drawn
    independently and the true ``p`` as the score:

    - ``logloss`` = ``mean_r H(p_r)``, ``H(q) = -q log q - (1-q) log(1-q)``: the
      expectation of the LogLoss of predicting ``p``, and the least expected LogLoss
      of any prediction (it is a proper scoring rule);
    - ``auc`` = the probability that ``p`` ranks a random clicked row above a random
      non-clicked one (ties count 1/2), the pair of distinct rows ``(i, j)`` drawn with
      weight ``p_i (1 - p_j)``::

          sum_{i != j} p_i (1 - p_j) [1(p_i > p_j) + 1(p_i = p_j) / 2]
          ------------------------------------------------------------
                        sum_{i != j} p_i (1 - p_j)

      computed exactly in O(N log N) (sort, cumulative sums, tie groups). It is the
      ratio of the expected numbers of correctly ordered and of all (clicked,
      non-clicked) pairs, which the AUC of a large sample approaches; no score reaches
      a higher value of it (ordering by ``p`` is optimal for every pair).

    With ``labels``, also ``auc_realized`` / ``logloss_realized``: the AUC
    (Mann-Whitney, midranks for ties) and LogLoss of the score ``p`` on those labels,
    the value a perfect model gets on that sample.
    """
    p = np.asarray(p, dtype="float64").ravel()
    if len(p) == 0 or not np.all((p >= 0) & (p <= 1)):
        raise ValueError("bayes_optimal: p must be a non-empty array of probabilities in [0, 1]")
    out = {"auc": population_auc(p), "logloss": float(np.mean(binary_entropy(p)))}
    if labels is not None:
        y = np.asarray(labels, dtype="float64").ravel()
        if y.shape != p.shape or not np.all((y == 0) | (y == 1)):
            raise ValueError("bayes_optimal: labels must be 0/1 and aligned with p")
        out["auc_realized"] = auc(p, y)
        q = np.clip(p, 1e-15, 1 - 1e-15)
        out["logloss_realized"] = float(-np.mean(y * np.log(q) + (1 - y) * np.log1p(-q)))
    return out


def binary_entropy(p: np.ndarray) -> np.ndarray:
    """``H(p)`` in nats, ``0`` at ``p`` = 0 or 1."""
    p = np.asarray(p, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -(p * np.log(p) + (1 - p) * np.log1p(-p))
    return np.where((p > 0) & (p < 1), h, 0.0)


def population_auc(p: np.ndarray) -> float:
    """The expected-pairs AUC of the true probabilities (formula in :func:`bayes_optimal`)."""
    p = np.sort(np.asarray(p, dtype="float64").ravel())
    values, start, counts = np.unique(p, return_index=True, return_counts=True)
    pos = np.add.reduceat(p, start)            # sum of p over each tie group
    neg = np.add.reduceat(1.0 - p, start)      # sum of 1 - p over each tie group
    neg_below = np.concatenate([[0.0], np.cumsum(neg)[:-1]])
    self_pairs = float(np.sum(p * (1.0 - p)))  # i == j, all inside tie groups at weight 1/2
    correct = float(np.sum(pos * (neg_below + 0.5 * neg))) - 0.5 * self_pairs
    total = float(p.sum() * (1.0 - p).sum()) - self_pairs
    return correct / total if total > 0 else float("nan")


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC of ``scores`` on 0/1 ``labels`` (Mann-Whitney U with midranks)."""
    y = np.asarray(labels).astype(bool)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))

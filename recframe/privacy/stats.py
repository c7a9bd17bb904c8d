"""Closed-form models made private by perturbing the statistic they are fitted from.

A model opts in with ``private_statistic`` (``"item_counts"`` or ``"gram"``) and
``fit_statistic(stat, data)``; the model itself does not change otherwise.

- **Contribution bound** (what makes it user-level): a user with more than
  ``max_items_per_user`` training items keeps that many, drawn with the seed.
- ``item_counts`` (pop): how many kept users hold each item. One user changes the
  vector by at most ``c`` entries of 1: L1 sensitivity ``c`` (Laplace mechanism,
  Dwork, McSherry, Nissim & Smith, TCC 2006) and L2 sensitivity ``sqrt(c)`` (Gaussian
  mechanism).
- ``gram`` (ease, itemknn): ``X^T X`` with every user's row scaled to L2 norm 1; one
  user adds ``x x^T`` (Frobenius norm <= 1), so symmetric Gaussian noise on the upper
  triangle gives (epsilon, delta)-DP: "Analyze Gauss" (Dwork, Talwar, Thakurta & Zhang,
  "Analyze Gauss: Optimal Bounds for Privacy-Preserving Principal Component Analysis",
  STOC 2014). Negative eigenvalues the noise creates are clipped to 0 (post-processing
  costs no privacy), so EASE's Cholesky solve works.

Gaussian noise is calibrated with the analytic Gaussian mechanism (Balle & Wang,
"Improving the Gaussian Mechanism for Differential Privacy", ICML 2018), which is
valid for any epsilon > 0 (the classic ``sqrt(2 ln(1.25/delta)) / epsilon`` needs
epsilon < 1).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.special import erfc

from recframe.errors import ConfigError
from recframe.privacy.settings import PrivacySettings


def _phi(t: float) -> float:
    return 0.5 * erfc(-t / math.sqrt(2.0))


def analytic_gaussian_sigma(epsilon: float, delta: float, sensitivity: float = 1.0) -> float:
    """The smallest ``sigma`` for which ``N(0, sigma^2)`` noise on a query of L2
    sensitivity ``sensitivity`` is (epsilon, delta)-DP (Balle & Wang 2018, Thm. 8),
    by bisection on the exact privacy profile."""
    def delta_of(sigma: float) -> float:
        a = sensitivity / (2 * sigma)
        b = epsilon * sigma / sensitivity
        return _phi(a - b) - math.exp(epsilon) * _phi(-a - b)

    lo, hi = 1e-6, 1.0
    while delta_of(hi) > delta:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        if delta_of(mid) > delta:
            lo = mid
        else:
            hi = mid
    return hi


def capped_matrix(train: sp.csr_matrix, cap: int, seed: int) -> tuple[sp.csr_matrix, int]:
    """Binary ``train`` with each row keeping at most ``cap`` entries (a seeded random
    subset); also how many users were capped."""
    x = train.tocsr().copy()
    x.data[:] = 1.0
    lengths = np.diff(x.indptr)
    over = np.flatnonzero(lengths > cap)
    if len(over) == 0:
        return x, 0
    rng = np.random.default_rng([seed, 913])
    keys = rng.random(x.nnz)
    rows = np.repeat(np.arange(x.shape[0]), lengths)
    order = np.lexsort((keys, rows))  # per row, a random order of its entries
    rank = np.empty(x.nnz, dtype=np.int64)
    rank[order] = np.arange(x.nnz) - np.repeat(x.indptr[:-1], lengths)
    keep = rank < cap
    capped = sp.csr_matrix((x.data[keep], (rows[keep], x.indices[keep])), shape=x.shape)
    return capped, len(over)


class PrivateStatistic:
    """The private closed-form fit of one run (``RecTask.private.fit``)."""

    def __init__(self, settings: PrivacySettings, model: Any, n_users: int, seed: int,
                 model_name: str) -> None:
        kind = getattr(model, "private_statistic", None)
        if kind not in ("item_counts", "gram"):
            raise ConfigError(
                f"privacy=dp_stats cannot make model {model_name!r} private: it does not "
                f"fit from a statistic with a published perturbation mechanism here (pop: "
                f"noisy item counts; ease, itemknn: a noisy Gram matrix). iALS and the "
                f"gradient-trained models are not supported by dp_stats; train a gradient "
                f"model with privacy=dpsgd instead.")
        if kind == "gram" and settings.mechanism != "gaussian":
            raise ConfigError(
                f"privacy.mechanism={settings.mechanism}: the noisy Gram matrix of "
                f"{model_name!r} uses the Gaussian mechanism (Analyze Gauss); set "
                f"privacy.mechanism=gaussian.")
        self.settings, self.kind, self.seed = settings, kind, seed
        self.delta = settings.resolved_delta(n_users)
        self.info: dict[str, Any] = {}

    def fit(self, model: Any, data: Any) -> None:
        s = self.settings
        x, capped = capped_matrix(data.train, s.max_items_per_user, self.seed)
        rng = np.random.default_rng([self.seed, 914])
        c = s.max_items_per_user
        if self.kind == "item_counts":
            counts = np.asarray(x.sum(axis=0), dtype=np.float64).ravel()
            if s.mechanism == "laplace":
                scale = c / s.epsilon
                noise = rng.laplace(0.0, scale, size=counts.shape)
                self.info = {"noise": "laplace", "scale": scale, "l1_sensitivity": c}
            else:
                sigma = analytic_gaussian_sigma(s.epsilon, self.delta, math.sqrt(c))
                noise = rng.normal(0.0, sigma, size=counts.shape)
                self.info = {"noise": "gaussian", "sigma": sigma,
                             "l2_sensitivity": math.sqrt(c)}
            model.fit_statistic(counts + noise, data)
        else:
            lengths = np.diff(x.indptr).astype(np.float64)
            scale = 1.0 / np.sqrt(np.maximum(lengths, 1.0))
            xn = sp.diags(scale) @ x  # every row L2 norm <= 1
            gram = (xn.T @ xn).toarray().astype(np.float64)
            sigma = analytic_gaussian_sigma(s.epsilon, self.delta, 1.0)
            upper = np.triu(rng.normal(0.0, sigma, size=gram.shape))
            gram += upper + np.triu(upper, 1).T  # symmetric noise, upper triangle iid
            values, vectors = np.linalg.eigh(gram)
            clipped = int((values < 0).sum())
            gram = (vectors * np.maximum(values, 0.0)) @ vectors.T
            self.info = {"noise": "gaussian (Analyze Gauss)", "sigma": sigma,
                         "frobenius_sensitivity": 1.0, "rows_scaled_to_unit_norm": True,
                         "negative_eigenvalues_clipped": clipped}
            model.fit_statistic(gram, data)
        self.info["users_capped"] = capped

    def record(self) -> dict[str, Any]:
        return {**self.settings.record(), "delta": self.delta, "statistic": self.kind,
                "epsilon": self.settings.epsilon, **self.info}

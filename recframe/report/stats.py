"""Statistics for the report: seed summaries, paired per-user tests, Holm correction.

Choices (also written into every report's "Method" section):

- **Over seeds**: mean, sample standard deviation (ddof=1) and a two-sided
  t confidence interval ``mean +- t_{1-a/2, n-1} * std / sqrt(n)``; with one
  seed there is no std and no interval.
- **Pairs**: two configurations are compared on the same users of the same
  split. For every seed both ran whose ``data_fingerprint`` matches, users are
  matched by ``user_id``; each user's value is then averaged over those seeds
  (per configuration), giving one pair per user. Averaging (rather than
  concatenating (seed, user) pairs) keeps one observation per user, so the
  same user does not count several times as if independent.
  A user whose value is NaN in either configuration (undefined, e.g. the
  per-user AUC of GAUC for a user with one class) is dropped from that
  seed's pairs.
- **Paired t-test**: ``scipy.stats.ttest_rel`` on the per-user pairs.
- **Wilcoxon signed-rank**: ``scipy.stats.wilcoxon`` on the differences
  (rounded to 12 decimals so float noise does not break ties), two-sided,
  ``zero_method="pratt"``: users with identical values (common: both miss)
  take part in the ranking and their ranks are then dropped, which is the
  more conservative treatment of many zeros; ``method="auto"``.
  If every difference is zero both tests report p = 1.
- **Effect size**: paired Cohen's d = mean(diff) / std(diff, ddof=1)
  (Cohen's d_z), undefined (NaN) when the differences have no spread; the
  mean difference has a t interval over users.
- **Holm-Bonferroni** across all comparisons of one table (every metric and
  configuration compared with the same reference), separately for each test.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

WILCOXON_KWARGS: dict[str, Any] = {"zero_method": "pratt", "alternative": "two-sided",
                                   "method": "auto"}
DIFF_DECIMALS = 12


@dataclass(frozen=True)
class Summary:
    """Mean, std and t confidence interval of one metric over seeds."""

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float


def summarize(values: Sequence[float], confidence: float = 0.95) -> Summary:
    """Mean +- std over seeds and a t-distribution confidence interval (none for n < 2)."""
    x = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    n = int(x.size)
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(x.mean())
    if n == 1:
        return Summary(1, mean, math.nan, math.nan, math.nan)
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
    return Summary(n, mean, std, mean - half, mean + half)


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1).

    NaN entries (no test) are ignored and stay NaN; ``m`` counts the others.
    Sorted ascending, the i-th smallest (0-based) p becomes
    ``max_{j <= i} min(1, (m - j) * p_(j))``; a hypothesis is rejected at
    level ``alpha`` when its adjusted p-value is below ``alpha``.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(~np.isnan(p))
    m = idx.size
    order = idx[np.argsort(p[idx], kind="stable")]
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def paired_cohens_d(a: Sequence[float], b: Sequence[float]) -> float:
    """Cohen's d for paired samples (d_z): mean(a - b) / std(a - b, ddof=1)."""
    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if diff.size < 2:
        return math.nan
    sd = float(diff.std(ddof=1))
    return float(diff.mean()) / sd if sd > 0 else math.nan


@dataclass(frozen=True)
class PairedResult:
    """A paired comparison ``a - b`` over users."""

    n: int
    mean_diff: float
    diff_ci_low: float
    diff_ci_high: float
    cohens_d: float
    t_stat: float
    p_t: float
    w_stat: float
    p_wilcoxon: float


NO_TEST = PairedResult(0, *(math.nan,) * 8)


def paired_test(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> PairedResult:
    """Paired t-test, Wilcoxon signed-rank, d_z and the mean difference with its CI."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    n = int(a.size)
    if n == 0:
        return NO_TEST
    diff = a - b
    mean = float(diff.mean())
    if n < 2:
        return PairedResult(n, mean, *(math.nan,) * 7)
    sd = float(diff.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    d = mean / sd if sd > 0 else math.nan
    rounded = np.round(diff, DIFF_DECIMALS)  # float noise must not break Wilcoxon's ties
    if not np.any(rounded):
        return PairedResult(n, 0.0, 0.0, 0.0, math.nan, math.nan, 1.0, math.nan, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        tt = stats.ttest_rel(a, b)
        ww = stats.wilcoxon(rounded, **WILCOXON_KWARGS)
    return PairedResult(n, mean, mean - half, mean + half, d, float(tt.statistic),
                        float(tt.pvalue), float(ww.statistic), float(ww.pvalue))


def paired_users(frames_a: dict[str, pd.DataFrame], frames_b: dict[str, pd.DataFrame],
                 column: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per-user values of two configurations, paired by ``user_id`` on shared splits.

    ``frames_*`` map a seed to that run's per-user frame; only seeds in both
    (the caller passes only seeds whose data fingerprints match) are used.
    Returns (values_a, values_b, seeds_used), one entry per user, each user's
    value averaged over the shared seeds in which it was evaluated, users
    sorted by ``user_id``. A (user, seed) pair where either value is NaN (the
    metric is undefined for that user, e.g. GAUC of a user with one class) is
    dropped before averaging.
    """
    parts = []
    used = []
    for seed in sorted(set(frames_a) & set(frames_b)):
        fa, fb = frames_a[seed], frames_b[seed]
        if column not in fa.columns or column not in fb.columns:
            continue
        merged = fa[["user_id", column]].merge(fb[["user_id", column]], on="user_id",
                                               suffixes=("_a", "_b"), validate="one_to_one")
        # a value undefined for a user (NaN: GAUC of a user with one class) drops the pair
        merged = merged.dropna(subset=[f"{column}_a", f"{column}_b"])
        parts.append(merged)
        used.append(seed)
    if not parts:
        return np.empty(0), np.empty(0), []
    both = pd.concat(parts, ignore_index=True)
    per_user = both.groupby("user_id", sort=True)[[f"{column}_a", f"{column}_b"]].mean()
    return (per_user[f"{column}_a"].to_numpy(dtype=float),
            per_user[f"{column}_b"].to_numpy(dtype=float), used)

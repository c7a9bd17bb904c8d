"""``k_anonymize``: generalize the users' quasi-identifiers until every combination of
their values is shared by at least ``k`` users (k-anonymity: Sweeney, "k-Anonymity: a
Model for Protecting Privacy", IJUFKS 2002).

The search is Datafly's greedy full-domain generalization with suppression (Sweeney,
"Achieving k-Anonymity Privacy Protection Using Generalization and Suppression",
IJUFKS 2002): while some combination holds fewer than ``k`` users, either suppress
those users' quasi-identifiers (all set to the top of each hierarchy) when they are at
most ``max_suppressed`` of the users, or generalize the column with the most distinct
values one level up its hierarchy:

- numeric (``age``): exact, then bins of 5, 10, 20, 40 years, then one value
  (a bin is written as its lower edge, so the column stays numeric);
- codes (``zip``): drop one trailing character per level, then ``*``;
- categories (``gender``, ``occupation``): exact, then categories held by fewer than
  ``k`` users become ``other``, then ``*``.

Suppressed users keep their interactions; only their features become the top value,
so ``k_achieved`` is the smallest class among the other users. The step records what
it did in ``Dataset.meta["k_anonymity"]`` (``results.json``: ``k_anonymity``): k asked
and achieved, each column's level and distinct values before and after, suppressed
users and the entropy lost (bits, summed over columns).
It protects against re-identification by linking the side features to an outside
table; it does not hide behaviour (the interactions) nor stop attribute inference
from a class whose members share a sensitive value (l-diversity's concern).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from recframe.api import USER, ConfigError, DataError, Dataset
from recframe_preprocess._params import _get, check_keys, get_int, log, where

NUMERIC_BINS = (1, 5, 10, 20, 40)
TOP = "*"


def _entropy(values: pd.Series) -> float:
    p = values.astype(str).value_counts(normalize=True).to_numpy()
    return float(-(p * np.log2(p)).sum())


def _hierarchy(column: pd.Series, k: int) -> list[Callable[[pd.Series], pd.Series]]:
    """Level ``l`` generalizer of ``column``; the last level maps everything to one value."""
    if pd.api.types.is_numeric_dtype(column):
        levels = [lambda s, w=w: (np.floor(s / w) * w).astype(s.dtype) for w in NUMERIC_BINS]
        return [*levels, lambda s: s * 0 - 1]  # one value: -1 (suppressed)
    strings = column.astype(str)
    width = int(strings.str.len().max()) if len(strings) else 0
    counts = strings.value_counts()
    if width > 1 and strings.str.fullmatch(r"[0-9]+").mean() > 0.9:  # a code (zip): prefixes
        return [lambda s, c=c: s.astype(str).str[: max(width - c, 0)] + TOP * min(c, width)
                for c in range(width)] + [lambda s: pd.Series(TOP, index=s.index)]
    rare = set(counts[counts < k].index)
    return [lambda s: s.astype(str),
            lambda s: s.astype(str).where(~s.astype(str).isin(rare), "other"),
            lambda s: pd.Series(TOP, index=s.index)]


def k_anonymize(users: pd.DataFrame, columns: list[str], k: int,
                max_suppressed: float) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Generalize ``columns`` of ``users`` (one row per user) to k-anonymity."""
    if k > len(users):
        raise ConfigError(
            f"{where('k_anonymize')}: k={k} is larger than the number of users with "
            f"features ({len(users)}): no grouping can give every user {k - 1} look-alikes. "
            f"Lower k (typical 5-50).")
    hierarchies = {c: _hierarchy(users[c], k) for c in columns}
    level = dict.fromkeys(columns, 0)
    suppressed = np.zeros(len(users), dtype=bool)
    before = {c: (int(users[c].nunique()), _entropy(users[c])) for c in columns}
    budget = int(max_suppressed * len(users))

    def current() -> pd.DataFrame:
        out = pd.DataFrame({c: hierarchies[c][level[c]](users[c]) for c in columns},
                           index=users.index)
        for c in columns:
            if suppressed.any():
                out.loc[suppressed, c] = hierarchies[c][-1](users[c][suppressed])
        return out

    while True:
        view = current()
        sizes = view.groupby(columns, dropna=False, sort=False)[columns[0]].transform("size")
        small = (sizes < k).to_numpy() & ~suppressed
        if not small.any():
            break
        if small.sum() + suppressed.sum() <= budget:
            suppressed |= small
            continue
        open_cols = [c for c in columns if level[c] < len(hierarchies[c]) - 1]
        if not open_cols:  # everything at the top: suppress the rest
            suppressed |= small
            continue
        widest = max(open_cols, key=lambda c: view[c].nunique())
        level[widest] += 1
    view = current()
    # suppressed users carry no quasi-identifier value at all (every column at the top)
    kept = view[~suppressed]
    achieved = int(kept.groupby(columns, dropna=False, sort=False).size().min()) if len(
        kept) else len(view)
    out = users.copy()
    for c in columns:
        out[c] = view[c].astype(users[c].dtype) if pd.api.types.is_numeric_dtype(
            users[c]) else view[c]
    record = {
        "k": k, "k_achieved": achieved, "columns": columns,
        "levels": {c: level[c] for c in columns},
        "top_level": {c: len(hierarchies[c]) - 1 for c in columns},
        "distinct_before": {c: before[c][0] for c in columns},
        "distinct_after": {c: int(kept[c].nunique()) for c in columns},
        "suppressed_users": int(suppressed.sum()),
        "entropy_lost_bits": round(sum(before[c][1] - _entropy(view[c]) for c in columns), 4),
        "n_users": len(users),
    }
    return out, record


def build_k_anonymize(cfg: Any) -> Callable[[Dataset], Dataset]:
    step = "k_anonymize"
    check_keys(cfg, step, ("name", "k", "columns", "max_suppressed"))
    k = get_int(cfg, "k", 5, step, minimum=2)
    columns_cfg = _get(cfg, "columns", "auto", step)
    max_suppressed = float(_get(cfg, "max_suppressed", 0.02, step))
    if not 0 <= max_suppressed < 1:
        raise ConfigError(f"{where(step)}: max_suppressed must be in [0, 1), got "
                          f"{max_suppressed}")

    def apply(ds: Dataset) -> Dataset:
        if ds.users is None or ds.users.empty:
            raise DataError(f"{where(step)}: dataset {ds.name!r} has no user features to "
                            f"anonymize; remove the step.")
        users = ds.users
        columns = ([c for c in users.columns if c != USER] if str(columns_cfg) == "auto"
                   else [str(c) for c in columns_cfg])
        missing = [c for c in columns if c not in users.columns]
        if missing or not columns:
            raise ConfigError(f"{where(step)}: columns {missing or columns} are not user "
                              f"feature columns (have {list(users.columns)})")
        out, record = k_anonymize(users, columns, k, max_suppressed)
        log.info("k_anonymize: k=%d achieved %d; levels %s; %d users suppressed; "
                 "%.2f bits of entropy lost", k, record["k_achieved"], record["levels"],
                 record["suppressed_users"], record["entropy_lost_bits"])
        return replace(ds, users=out, meta={**ds.meta, "k_anonymity": record})

    return apply

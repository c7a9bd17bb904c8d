"""``cold_items`` / ``cold_users``: a seeded share of items (users) held out of train.

The cold-start protocol of docs/cold_start.md. A share ``cold_share`` of the distinct
items (users), drawn with the split seed, never occurs in train: the cold set is cut
in two, one part's interactions all go to valid and the other's all to test (so a
test cold item or user has no interaction before test, anywhere: "pure" cold start,
and valid and test cold targets are disjoint). The rest of the data (the warm part)
is split per user exactly as ``split=random`` splits it, by ``ratios``. Every
interaction lands in exactly one part.

The same idea as the item cold-start protocols of Schein et al., "Methods and
Metrics for Cold-Start Recommendations", SIGIR 2002 (held-out items with no
training ratings), and Volkovs, Yu & Poutanen, "DropoutNet: Addressing Cold Start
in Recommender Systems", NeurIPS 2017 (cold items and users absent from training).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from recframe.api import (
    ITEM,
    USER,
    ConfigError,
    DataError,
    Dataset,
    Split,
    is_finite_number,
    read_key,
)
from recframe_splitters._common import (
    TEST,
    VALID,
    check_keys,
    get_int,
    get_ratios,
    log,
    make_split,
    require_rows,
    round_half_up,
    user_codes,
)
from recframe_splitters.random_split import per_user_parts

#: the default share of items (users) made cold; see build_cold
DEFAULT_COLD_SHARE = 0.2
KEYS = ("cold_share", "ratios", "seed")


def cold_share_param(cfg: Any, split: str) -> float:
    """``cold_share``: a number strictly between 0 and 1."""
    value = read_key(cfg, "cold_share", DEFAULT_COLD_SHARE, f"split {split!r}")
    if isinstance(value, bool) or not is_finite_number(value) or not 0 < float(value) < 1:
        raise ConfigError(
            f"split {split!r}: split.cold_share must be a number strictly between 0 and 1 "
            f"(the share of {split.removeprefix('cold_')} held out of train), got {value!r}. "
            f"Example: split.cold_share=0.2")
    return float(value)


def cold_sizes(n: int, share: float, valid: float, test: float, split: str,
               source: str) -> tuple[int, int]:
    """How many of ``n`` entities go cold to valid and to test.

    ``round(n * share)`` (halves up) are cold, divided between test and valid in the
    proportion ``test : valid`` of the ratios (halves with the default ratios; test's
    count rounded half up, so a single cold entity goes to test); at least one goes
    to test, and at least one entity stays warm.
    """
    what = split.removeprefix("cold_")
    n_cold = int(round_half_up(n * share))
    n_test = int(round_half_up(n_cold * test / (valid + test)))
    n_valid = n_cold - n_test
    if n_test < 1:
        raise DataError(
            f"split {split!r}: split.cold_share={share:g} of the {n} {what} of {source} "
            f"makes {n_cold} cold, leaving none for test; raise split.cold_share or use "
            f"a larger dataset (at least {int(np.ceil(0.5 / share))} {what}).")
    if n_cold >= n:
        raise DataError(
            f"split {split!r}: split.cold_share={share:g} of the {n} {what} of {source} "
            f"makes every one cold, so train would have no {what}; lower split.cold_share.")
    return n_valid, n_test


def _cold_parts(codes: np.ndarray, n: int, share: float, valid: float, test: float,
                rng: np.random.Generator, split: str, source: str) -> np.ndarray:
    """Per entity (``0..n-1``): -1 = warm, VALID / TEST = cold, held out to that part."""
    n_valid, n_test = cold_sizes(n, share, valid, test, split, source)
    order = rng.permutation(n)
    label = np.full(n, -1, dtype=np.int8)
    label[order[:n_test]] = TEST
    label[order[n_test:n_test + n_valid]] = VALID
    return label[codes]


def build_cold(kind: str) -> Any:
    """The builder of ``cold_items`` (``kind="items"``) or ``cold_users`` (``"users"``).

    Parameters:
        cold_share (float in (0, 1), default 0.2): share of the distinct items (users)
            made cold. 0.2 makes the cold targets about 20% of the interactions in
            expectation (10% valid, 10% test), about as many as the warm part's valid
            and test targets (8% each of all interactions at 0.8/0.1/0.1), so the cold
            and warm figures rest on similar numbers of targets.
        ratios ([train, valid, test], default [0.8, 0.1, 0.1]): the warm part's
            per-user split (as ``split=random``), and the cold set's division between
            valid and test (``valid : test``, halves by default).
        seed (int >= 0, default 0): draws the cold set and shuffles the warm part.
    """
    split = f"cold_{kind}"
    column = ITEM if kind == "items" else USER

    def build(cfg: Any) -> Any:
        check_keys(cfg, split, KEYS)
        share = cold_share_param(cfg, split)
        _, valid, test = get_ratios(cfg, split)
        if test <= 0:
            raise ConfigError(
                f"split {split!r}: split.ratios give test a share of 0, so no cold "
                f"{kind} could be tested; give test a positive ratio, e.g. "
                f"split.ratios=[0.8,0.1,0.1]")
        seed = get_int(cfg, "seed", 0, split)

        def cold_split(ds: Dataset) -> Split:
            require_rows(ds, split)
            df = ds.interactions
            codes, uniques = pd.factorize(df[column], sort=True, use_na_sentinel=False)
            rng = np.random.default_rng(seed)
            cold = _cold_parts(codes, len(uniques), share, valid, test, rng, split,
                               ds.source or ds.name)
            warm = cold < 0
            part = np.where(warm, 0, cold).astype(np.int8)
            keys = rng.random(int(warm.sum()))
            warm_users = user_codes(df[warm])
            part[warm] = per_user_parts(warm_users, keys, valid, test)
            n_cold = len(np.unique(codes[~warm]))
            log.info("split %r: %d of %d %s cold (%d valid, %d test interactions)", split,
                     n_cold, len(uniques), kind, int((cold == VALID).sum()),
                     int((cold == TEST).sum()))
            if kind == "items":
                only_cold = ~pd.Series(warm).groupby(user_codes(df)).any().to_numpy()
                if only_cold.any():
                    log.info("split 'cold_items': %d user(s) interacted with cold items "
                             "only; with no train row they are not evaluated",
                             int(only_cold.sum()))
            return dataclasses.replace(make_split(ds, part, split), cold_start=kind)

        return cold_split

    build.__doc__ = build_cold.__doc__
    return build


#: the registered builders of ``cold_items`` and ``cold_users`` (lazy references name these)
build_cold_items = build_cold("items")
build_cold_users = build_cold("users")

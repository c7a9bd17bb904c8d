"""The LLM re-ranking stage: re-order each user's top-N with a language model.

After the test of the base model, for the test users (all, or a seeded
subsample of ``rerank.max_users``):

1. the base model's top ``max(N, max K)`` lists (:mod:`recframe.rerank.candidates`);
2. prompts from the user's recent history and the top-N candidates' titles
   (:mod:`recframe.rerank.prompts`), fitted to the model's context;
3. the backend scores them: pointwise (one score per candidate, the history
   prefix shared) or listwise (the model writes an order, in ``rerank.bootstrap``
   shuffled presentations merged by Borda count, as in LLMRank, Hou et al.,
   ECIR 2024); answers are cached on disk;
4. the top-N is re-ordered (positions past N keep the base order) and every
   per-user metric is computed for the base and the re-ranked lists of the same
   users, with a paired test per metric.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from recframe.errors import ConfigError
from recframe.rerank.backend import LLMBackend
from recframe.rerank.bootstrap import borda, shown_orders
from recframe.rerank.cache import DiskCache, request_key
from recframe.rerank.candidates import list_metrics, skipped_metrics, top_candidates
from recframe.rerank.parse import FULL, PARTIAL, UNPARSABLE, parse_ranking
from recframe.rerank.prompts import (
    SYSTEM,
    TITLE_REQUEST,
    fit_history,
    history_text,
    listwise_request,
    yes_question,
)
from recframe.rerank.settings import RerankSettings, read_settings
from recframe.rerank.titles import item_titles
from recframe.results import RERANK_FILE

log = logging.getLogger(__name__)

__all__ = ["RERANK_FILE", "check_applies", "check_prompts_fit", "protocol_entry", "run_stage"]

ARMS = ("base", "reranked")


def default_cache_dir() -> str:
    """Where answers are cached unless ``rerank.cache_dir`` says otherwise."""
    import platformdirs

    return str(Path(platformdirs.user_cache_dir("recframe")) / "llm")


def subsample(n: int, max_users: int | None, seed: int) -> np.ndarray:
    """Positions of the evaluated users: all, or ``max_users`` of them drawn without
    replacement from ``seed`` (sorted)."""
    if max_users is None or max_users >= n:
        return np.arange(n, dtype=np.int64)
    rng = np.random.default_rng([int(seed), 0x5EB5])
    return np.sort(rng.choice(n, size=max_users, replace=False)).astype(np.int64)


@dataclass
class Counters:
    """What the stage records about its calls."""

    prompts: int = 0
    prompts_sent: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    parsed: dict[str, int] = field(default_factory=lambda: {FULL: 0, PARTIAL: 0, UNPARSABLE: 0})
    users_fallback: int = 0
    history_truncated_users: int = 0
    #: history items left out, summed over prompts (listwise: every shown order)
    history_dropped_items: int = 0


class Ranker:
    """Ranks one user's candidates with a backend, through the cache."""

    def __init__(self, backend: LLMBackend, settings: RerankSettings, cache: DiskCache) -> None:
        self.backend, self.s, self.cache = backend, settings, cache
        self.counters = Counters()
        self.budget = backend.context_length

    def _cached(self, kind: str, payload: Any, call: Any) -> dict[str, Any]:
        self.counters.prompts += 1
        key = request_key(self.backend.name, self.backend.model, kind, payload)
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        answer = call()
        self.counters.prompts_sent += 1
        self.counters.tokens_in += int(answer.get("tokens_in", 0))
        self.counters.tokens_out += int(answer.get("tokens_out", 0))
        self.cache.put(key, answer)
        return answer

    def _fit(self, history: Sequence[str], build: Any, budget: int) -> str:
        fitted = fit_history(history, build, self.backend.count_tokens, budget,
                             f"rerank.backend={self.backend.name}")
        self.counters.history_dropped_items += fitted.history_dropped
        return fitted.text

    def _pointwise_prompt(self, titles: Sequence[str]
                          ) -> tuple[list[str], Callable[[Sequence[str]], str], int,
                                     tuple[str, ...]]:
        """``(continuations, prefix builder, prefix token budget, answer targets)``."""
        b = self.backend
        if self.s.target == "yes_no":
            conts = [yes_question(t) + b.chat_suffix() for t in titles]
            longest = max(b.count_tokens(c) for c in conts)
            return (conts, lambda h: b.chat_prefix(SYSTEM, history_text(h)),
                    self.budget - longest - 1, ("Yes", "No"))
        conts = [" " + t for t in titles]
        longest = max(b.count_tokens(c) for c in conts)
        return (conts, lambda h: b.chat_prefix(SYSTEM, history_text(h) + TITLE_REQUEST)
                + b.chat_suffix(), self.budget - longest, ())

    def _listwise_prompt(self, shown_titles: Sequence[str]
                         ) -> tuple[Callable[[Sequence[str]], str], int]:
        """``(prompt builder, prompt token budget)`` of one shown order."""
        b = self.backend
        request = listwise_request(shown_titles)
        overhead = b.count_tokens(b.chat_prefix(SYSTEM, "") + b.chat_suffix())
        return (lambda h: history_text(h) + request,
                self.budget - self.s.max_new_tokens - overhead)

    def check_fits(self, titles: Sequence[str]) -> None:
        """Fail (the message of :func:`fit_history`) when a prompt over candidates
        ``titles`` does not fit the context even without history."""
        if self.s.mode == "pointwise":
            _, build, budget, _ = self._pointwise_prompt(titles)
        else:
            build, budget = self._listwise_prompt(titles)
        fit_history([], build, self.backend.count_tokens, budget,
                    f"rerank.backend={self.backend.name}")

    def pointwise(self, history: Sequence[str], titles: Sequence[str]) -> np.ndarray:
        """One score per candidate (higher is better)."""
        b = self.backend
        conts, build, budget, targets = self._pointwise_prompt(titles)
        prefix = self._fit(history, build, budget)

        def call() -> dict[str, Any]:
            out: dict[str, Any] = {"logprob": [], "n_tokens": [], "targets": [], "tokens_in": 0}
            for start in range(0, len(conts), self.s.batch_size):
                res = b.score(prefix, conts[start:start + self.s.batch_size], targets)
                out["tokens_in"] += res.tokens_in
                for sc in res.scored:
                    out["logprob"].append(sc.logprob)
                    out["n_tokens"].append(sc.n_tokens)
                    out["targets"].append(dict(sc.targets))
            return out

        answer = self._cached("score", [prefix, conts, list(targets)], call)
        if self.s.target == "yes_no":
            return np.array([t["Yes"] - t["No"] for t in answer["targets"]], dtype=np.float64)
        return (np.asarray(answer["logprob"], dtype=np.float64)
                / np.maximum(np.asarray(answer["n_tokens"], dtype=np.float64), 1))

    def listwise(self, history: Sequence[str], titles: Sequence[str],
                 shown: np.ndarray) -> np.ndarray:
        """Rankings (base positions, best first), one per shown order ``[R, n]``."""
        b = self.backend
        rankings = []
        for order in shown:
            shown_titles = [titles[i] for i in order]
            prompt = self._fit(history, *self._listwise_prompt(shown_titles))

            def call(prompt: str = prompt) -> dict[str, Any]:
                g = b.generate(SYSTEM, prompt, self.s.max_new_tokens)
                return {"text": g.text, "tokens_in": g.tokens_in, "tokens_out": g.tokens_out}

            answer = self._cached("generate", [SYSTEM, prompt, self.s.max_new_tokens], call)
            parsed = parse_ranking(str(answer.get("text", "")), len(order), shown_titles)
            self.counters.parsed[parsed.status] += 1
            named = [int(order[i]) for i in parsed.named]
            rest = sorted(set(range(len(order))) - set(named))  # base order
            rankings.append(named + rest)
        return np.asarray(rankings, dtype=np.int64)


def rerank_users(ranker: Ranker, cand_items: np.ndarray, cand_valid: np.ndarray,
                 history: tuple[np.ndarray, np.ndarray], users: np.ndarray,
                 titles: np.ndarray, s: RerankSettings) -> np.ndarray:
    """``[U, N]`` new order of each user's top-N (positions into the base list)."""
    indptr, hist_items = history
    n = cand_items.shape[1]
    orders = np.tile(np.arange(n), (len(users), 1))
    shown_all = shown_orders(users, n, s.repeats, s.seed, s.shuffle and s.mode == "listwise")
    for row, user in enumerate(users):
        v = int(cand_valid[row].sum())
        if v < 2:
            continue
        hist = hist_items[indptr[user]:indptr[user + 1]]
        recent = [str(t) for t in titles[hist[max(0, len(hist) - s.history_items):]]] \
            if s.history_items else []
        cand_titles = [str(t) for t in titles[cand_items[row, :v]]]
        dropped = ranker.counters.history_dropped_items
        if s.mode == "pointwise":
            scores = ranker.pointwise(recent, cand_titles)
            new = np.lexsort((np.arange(v), -scores))
        else:
            shown = np.stack([o[o < v] for o in shown_all[row]])
            before = ranker.counters.parsed[UNPARSABLE]
            rankings = ranker.listwise(recent, cand_titles, shown)
            if ranker.counters.parsed[UNPARSABLE] - before == len(shown):
                ranker.counters.users_fallback += 1
            new = borda(rankings[None])[0]
        orders[row, :v] = new
        if ranker.counters.history_dropped_items > dropped:  # any of the user's prompts
            ranker.counters.history_truncated_users += 1
    return orders


def _frame(users: np.ndarray, user_ids: np.ndarray, arm: str,
           values: dict[str, torch.Tensor]) -> pd.DataFrame:
    data: dict[str, Any] = {"user": users, "user_id": user_ids[users].astype(str), "arm": arm}
    data.update({k: v.cpu().numpy().astype(np.float64) for k, v in values.items()})
    return pd.DataFrame(data)


def check_applies(exp: Any) -> None:
    """The stage needs full-ranking lists: fail before training otherwise."""
    if exp.plan.protocol != "ranking":
        raise ConfigError("rerank=llm re-orders ranked lists; it does not apply under the CTR "
                          "protocol (evaluation=ctr). Use rerank=none there.")
    if exp.candidates.get("policy", "full") != "full":
        raise ConfigError("rerank=llm re-orders the full-ranking top-N; sampled-candidate "
                          "evaluation (evaluation=sampled) is not supported. Use "
                          "evaluation=full.")


def check_prompts_fit(node: Any, exp: Any, pm: Any) -> None:
    """Before training: build the backend and check that a prompt over the catalogue's
    ``top_n`` longest titles fits its context without any history, so a context that is
    too small fails now rather than after the base model has trained. Longest by
    characters among the titles, then by the backend's token count."""
    s = read_settings(node)
    spec = pm.llm_backends.get(s.backend, key="rerank.backend")
    titles, _, _ = item_titles(exp.data, s.title_column)
    chars = np.fromiter((len(str(t)) for t in titles), dtype=np.int64, count=len(titles))
    longest = [str(titles[i]) for i in np.argsort(-chars, kind="stable")[:4 * s.top_n]]
    backend: LLMBackend = spec.build(node)
    try:
        tokens = np.array([backend.count_tokens(t) for t in longest], dtype=np.int64)
        worst = [longest[i] for i in np.argsort(-tokens, kind="stable")[:s.top_n]]
        if len(worst) >= 2:
            Ranker(backend, s, DiskCache(None)).check_fits(worst)
    finally:
        backend.close()


def run_stage(node: Any, exp: Any, pm: Any) -> tuple[dict[str, Any], pd.DataFrame]:
    """Run the LLM stage for an experiment that was just tested; return the record for
    ``results.json`` and the per-user frame (both arms) for ``per_user_rerank.parquet``."""
    from recframe.report.stats import paired_test

    started = time.perf_counter()
    s = read_settings(node)
    check_applies(exp)
    spec = pm.llm_backends.get(s.backend, key="rerank.backend")
    evaluator = exp.plan.evaluator
    eval_set = exp.datamodule.eval_set("test")
    positions = subsample(len(eval_set), s.max_users, s.seed)
    length = max(s.top_n, evaluator.max_k)
    cands = top_candidates(exp.model, eval_set, positions, length,
                           int(exp.datamodule.eval_batch_size))
    titles, has_title, column = item_titles(exp.data, s.title_column)
    history = exp.data.history(("train", "valid"))

    t = time.perf_counter()
    backend: LLMBackend = spec.build(node)
    load_seconds = float(getattr(backend, "load_seconds", 0.0) or (time.perf_counter() - t))
    modes = getattr(backend, "modes", frozenset())
    if s.mode not in modes:
        raise ConfigError(f"rerank.backend={s.backend!r} does not support rerank.mode="
                          f"{s.mode!r} (it supports {sorted(modes)}); change rerank.mode.")
    cache = DiskCache((s.cache_dir or default_cache_dir()) if s.cache else None)
    ranker = Ranker(backend, s, cache)
    n = min(s.top_n, length)
    items = cands.items.numpy()
    valid = cands.valid.numpy()
    t = time.perf_counter()
    try:
        orders = rerank_users(ranker, items[:, :n], valid[:, :n], history, cands.users,
                              titles, s)
    finally:
        backend.close()
    rank_seconds = time.perf_counter() - t
    new_items = items.copy()
    new_items[:, :n] = np.take_along_axis(items[:, :n], orders, axis=1)
    new_valid = valid.copy()
    new_valid[:, :n] = np.take_along_axis(valid[:, :n], orders, axis=1)

    n_items = exp.data.info.n_items
    popularity = torch.from_numpy(exp.data.item_popularity()).float()
    arms = {}
    global_ = {}
    for arm, (it, ok) in zip(ARMS, ((items, valid), (new_items, new_valid)), strict=True):
        arms[arm], global_[arm] = list_metrics(
            evaluator, torch.from_numpy(it), torch.from_numpy(ok), cands.truth_rows,
            cands.truth_cols, n_items, popularity)
    means = {arm: {k: float(v.mean()) if len(v) else float("nan") for k, v in vals.items()}
             for arm, vals in arms.items()}
    for arm in ARMS:
        means[arm].update(global_[arm])
    paired = {}
    for key in arms["base"]:
        r = paired_test(arms["reranked"][key].numpy(), arms["base"][key].numpy())
        paired[key] = {"mean_diff": r.mean_diff, "ci_low": r.diff_ci_low,
                       "ci_high": r.diff_ci_high, "p_t": r.p_t, "p_wilcoxon": r.p_wilcoxon,
                       "n": r.n}
    c = ranker.counters
    users = len(cands.users)
    shown_slots = items[:, :n][valid[:, :n]]
    record = {
        "name": "llm",
        "backend": s.backend,
        "model": backend.model,
        "mode": s.mode,
        "target": s.target if s.mode == "pointwise" else None,
        "top_n": n,
        "users": users,
        "eligible_users": len(eval_set),
        "max_users": s.max_users,
        "repeats_per_user": s.repeats,
        "shuffled": bool(s.shuffle and s.mode == "listwise"),
        "title_column": column,
        "cache": s.cache,
        "prompts": c.prompts,
        "prompts_sent": c.prompts_sent,
        "cache_hits": c.prompts - c.prompts_sent,
        "tokens_in": c.tokens_in,
        "tokens_out": c.tokens_out,
        "parsed": dict(c.parsed) if s.mode == "listwise" else None,
        "unparsable": c.parsed[UNPARSABLE] if s.mode == "listwise" else 0,
        "users_fallback_to_base": c.users_fallback,
        "history_truncated_users": c.history_truncated_users,
        "history_dropped_items": c.history_dropped_items,
        "untitled_candidates": int((~has_title[shown_slots]).sum()),
        "untitled_items": int((~has_title).sum()),
        "skipped_metrics": skipped_metrics(evaluator),
        "load_seconds": round(load_seconds, 3),
        "rank_seconds": round(rank_seconds, 3),
        "seconds_per_user": round(rank_seconds / max(users, 1), 4),
        "seconds": round(time.perf_counter() - started, 3),
        "metrics": means,
        "paired": paired,
        "paired_test": "re-ranked minus base on the same users: paired t-test and Wilcoxon "
                       "signed-rank (recframe.report.stats.paired_test)",
    }
    user_ids = np.asarray(exp.data.user_ids)
    frame = pd.concat([_frame(cands.users, user_ids, arm, arms[arm]) for arm in ARMS],
                      ignore_index=True)
    log.info("rerank: %d users, %s: base %s -> re-ranked %s", users, s.backend,
             {k: round(v, 4) for k, v in means["base"].items()},
             {k: round(v, 4) for k, v in means["reranked"].items()})
    return record, frame


def protocol_entry(record: dict[str, Any], seed: int) -> dict[str, Any]:
    """What ``protocol.rerank`` says about the stage (which users, how ranked)."""
    return {
        "stage": "llm",
        "backend": record["backend"],
        "model": record["model"],
        "mode": record["mode"],
        "top_n": record["top_n"],
        "users": record["users"],
        "max_users": record["max_users"],
        "subsample": ("every test user" if record["max_users"] is None else
                      f"{record['users']} test users drawn without replacement with seed "
                      f"{seed}"),
        "reorders": "the base model's top-N only; positions past N keep the base order",
        "compared_on": "the same users for the base and the re-ranked lists",
    }

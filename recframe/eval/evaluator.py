"""Rank all items for a batch of users and compute per-user metric values.

Memory is bounded by the batch: the only ``[batch, n_items]`` tensor is the
scores (plus, for metrics that read the whole score matrix or under sampled
candidates, a masked copy and the ground-truth mask). No users x items matrix
is ever built.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from recframe.errors import ConfigError, unknown_name_message
from recframe.eval.topk import topk_rows
from recframe.plugin.specs import MetricSpec

# a cold-start view's key keeps its prefix in the name: "cold/ndcg@10" -> ("cold/ndcg", 10)
_KEY = re.compile(r"^((?:cold/|warm/)?[A-Za-z_][\w-]*)@(\d+)$")


@dataclass
class MetricInput:
    """What a per-user metric sees for one batch of users.

    ``topk``: ``[B, K]`` item ids ranked best first (K = largest cut-off,
    capped at the number of items; on CPU equal scores rank lower item id
    first, see :mod:`recframe.eval.topk`); ``hits``: ``[B, K]`` float, 1 where the
    ranked item is relevant; ``n_relevant``: ``[B]`` number of relevant
    items per user; ``n_items``: catalogue size; ``item_popularity``:
    ``[n_items]`` training interaction counts. Filled only when a metric
    declares it in ``needs``: ``scores`` (``[B, n_items]``, seen items at
    ``-inf``), ``truth`` (``[B, n_items]`` bool ground truth) and
    ``item_features`` (``[n_items, F]`` row-normalized feature vectors).
    """

    topk: torch.Tensor
    hits: torch.Tensor
    n_relevant: torch.Tensor
    n_items: int
    item_popularity: torch.Tensor | None = None
    scores: torch.Tensor | None = None
    truth: torch.Tensor | None = None
    item_features: torch.Tensor | None = None


@dataclass
class GlobalInput:
    """What a global metric sees: ``counts[i]`` = how many evaluated users got
    item ``i`` in their top ``k``; ``n_users`` = number of evaluated users."""

    counts: torch.Tensor
    n_users: int
    n_items: int
    item_popularity: torch.Tensor | None = None


def parse_metric_key(key: str) -> tuple[str, int]:
    """``"ndcg@10"`` -> ``("ndcg", 10)``; a cold-start view's key keeps its view:
    ``"cold/ndcg@10"`` -> ``("cold/ndcg", 10)`` (:mod:`recframe.eval.cold`)."""
    m = _KEY.match(key)
    if not m:
        raise ConfigError(f"bad metric key {key!r}: expected NAME@K, e.g. 'ndcg@10'")
    return m.group(1), int(m.group(2))


def _maskable_in_place(scores: torch.Tensor, dtype: torch.dtype) -> bool:
    """Whether the seen items can be masked in ``scores`` itself (and restored after):
    the ranking dtype already, contiguous (so not an ``expand``-ed view that shares
    cells between rows), no autograd history, and writable here (an inference
    tensor only inside inference mode)."""
    return (scores.dtype == dtype and scores.is_contiguous() and not scores.requires_grad
            and (not scores.is_inference() or torch.is_inference_mode_enabled()))


def _flat(rows: torch.Tensor, cols: torch.Tensor, n_items: int,
          device: torch.device) -> torch.Tensor:
    """Positions ``row * n_items + col`` in a flattened row-major ``[B, n_items]`` tensor."""
    return rows.to(device) * n_items + cols.to(device)


def _fill(t: torch.Tensor, flat: torch.Tensor, value: float) -> None:
    """``t[rows, cols] = value`` for a contiguous ``t`` (``index_fill_`` on the flat
    view: on CPU much cheaper than advanced-index assignment, which sets up a
    parallel region for a few thousand cells)."""
    t.view(-1).index_fill_(0, flat, value)


def count_nan(scores: torch.Tensor, top_scores: torch.Tensor,
              masked_values: torch.Tensor, restored: bool = True) -> torch.Tensor:
    """Number of NaN entries of ``scores`` (0-d int64), cheaply.

    ``top_scores`` is the top-k of ``scores`` with some cells masked (their
    original values are ``masked_values``). ``topk`` ranks NaN above every
    number, so a row holds an unmasked NaN exactly when its first top score is
    NaN; only then is the whole matrix counted (on CPU this check is free; on
    an accelerator the full count runs every batch instead, as a branch would
    wait on the device). ``restored=False``: ``scores`` still has the masked cells
    set to ``-inf``, so their NaNs are added from ``masked_values``.
    """
    in_masked = torch.isnan(masked_values).sum()
    full = scores.device.type != "cpu" or (
        top_scores.numel() and bool(torch.isnan(top_scores[:, 0]).any()))
    if not full:
        return in_masked
    return torch.isnan(scores).sum() + (0 if restored else in_masked)


def sparse_hits(topk: torch.Tensor, valid: torch.Tensor, truth_rows: torch.Tensor,
                truth_cols: torch.Tensor, n_items: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``hits`` ``[B, K]`` (float 0/1) and ``n_relevant`` ``[B]`` from truth coordinates.

    The truth is kept as sorted ``row * n_items + item`` keys: a ranked item is a
    hit when its key is found by ``searchsorted``. Duplicate coordinates count
    once. Equal to building the ``[B, n_items]`` truth mask and gathering from
    it, without the mask, and with fixed shapes only (no host synchronisation).
    """
    n_users = topk.shape[0]
    device = topk.device
    keys = torch.sort(_flat(truth_rows, truth_cols, n_items, device)).values
    first = torch.ones_like(keys, dtype=torch.float32)
    if keys.numel() > 1:
        first[1:] = (keys[1:] != keys[:-1]).float()
    n_rel = torch.zeros(n_users, dtype=torch.float32, device=device)
    n_rel.index_add_(0, torch.div(keys, n_items, rounding_mode="floor"), first)
    if keys.numel() == 0:
        return torch.zeros(topk.shape, dtype=torch.float32, device=device), n_rel
    probe = topk + torch.arange(0, n_users * n_items, n_items, device=device).unsqueeze(1)
    # a sentinel past every key: searchsorted may point one past the last key
    keys = torch.cat([keys, keys.new_full((1,), torch.iinfo(torch.int64).max)])
    pos = torch.searchsorted(keys, probe)
    found = keys.index_select(0, pos.reshape(-1)).view_as(probe) == probe
    return (found & valid).float(), n_rel


class Evaluator:
    """Computes per-user values of ``metrics`` at every cut-off in ``ks``."""

    def __init__(self, metrics: Mapping[str, MetricSpec], ks: Sequence[int]) -> None:
        if not metrics:
            raise ConfigError("metrics.names is empty: name at least one metric, e.g. [ndcg]")
        ks = list(ks)
        bad = [k for k in ks if isinstance(k, bool) or not isinstance(k, int) or k < 1]
        if not ks or bad:
            raise ConfigError(
                f"metrics.ks must be a non-empty list of positive integers; got {ks!r}"
                + (f" (bad: {bad!r})" if bad else "")
                + ". Example: metrics.ks=[10,20]"
            )
        pointwise_only = [n for n, s in metrics.items() if s.kind == "pointwise"]
        if pointwise_only:
            raise ConfigError(
                f"metrics.names: {pointwise_only} exist only under the CTR protocol "
                f"(labeled impressions scored pointwise: evaluation=ctr, metrics=ctr), not "
                f"when ranking all items; remove them or switch the protocol.")
        self.metrics = dict(metrics)
        self.ks = sorted(set(ks))
        self.max_k = max(self.ks)
        self.per_user = {n: s for n, s in self.metrics.items() if s.kind != "global"}
        self.global_ = {n: s for n, s in self.metrics.items() if s.kind == "global"}
        self.needs: frozenset[str] = frozenset().union(*(s.needs for s in self.metrics.values()))
        self.item_features: torch.Tensor | None = None

    def set_item_features(self, features: torch.Tensor | None) -> None:
        """Item feature vectors for metrics that need them (rows L2-normalized here)."""
        if features is None:
            self.item_features = None
            return
        features = features.float()
        self.item_features = features / features.norm(dim=1, keepdim=True).clamp_min(1e-12)

    @property
    def keys(self) -> list[str]:
        return [f"{m}@{k}" for m in self.metrics for k in self.ks]

    @property
    def per_user_keys(self) -> list[str]:
        return [f"{m}@{k}" for m in self.per_user for k in self.ks]

    def check_key(self, key: str, config_key: str = "") -> str:
        """Validate that ``key`` (e.g. ``ndcg@10``) is computed; return it. A cold-start
        view's key (``warm/ndcg@10``, ``cold/ndcg@10``; :mod:`recframe.eval.cold`) is
        checked by its metric part."""
        view, sep, rest = key.partition("/")
        if sep and view in ("cold", "warm"):
            self.check_key(rest, config_key)
            return key
        name, k = parse_metric_key(key)
        if name not in self.metrics:
            raise ConfigError(unknown_name_message("metric", name, self.metrics, config_key))
        if k not in self.ks:
            raise ConfigError(
                f"{config_key or 'metric'} {key!r}: K={k} is not among metrics.ks={self.ks}; "
                f"add it to metrics.ks or pick one of them"
            )
        return key

    @torch.no_grad()
    def evaluate_batch(
        self,
        scores: torch.Tensor,
        batch: Mapping[str, torch.Tensor],
        item_popularity: torch.Tensor | None = None,
        item_counts: dict[int, torch.Tensor] | None = None,
        stats: dict[str, torch.Tensor] | None = None,
        scores_disposable: bool = False,
    ) -> dict[str, torch.Tensor]:
        """Per-user metric values for one batch; ``scores`` is ``[B, n_items]``.

        When ``item_counts`` is given, how often each item enters the top-k is
        added to ``item_counts[k]`` (for global metrics; see :meth:`finalize_global`).
        If the batch holds ``candidate_rows``/``candidate_cols``, only those
        items (plus the ground truth) are ranked: sampled-candidate evaluation.
        When ``stats`` is given, ``stats["nan_scores"]`` is set to the number of
        NaN entries of ``scores`` (a 0-d tensor: reading it is left to the caller).

        ``scores`` is left as it was, unless ``scores_disposable`` says the caller
        will not read it again. Under full ranking, when no metric needs the
        score matrix, the seen items are masked in ``scores`` itself and their
        values put back right after the top-k (no ``[B, n_items]`` copy; with
        ``scores_disposable`` they stay masked),
        and the ground truth stays in coordinate form (no ``[B, n_items]``
        mask). No step waits on an accelerator (no ``.item()``, no
        data-dependent shapes).
        """
        n_users, n_items = scores.shape
        dtype = torch.float64 if scores.dtype == torch.float64 else torch.float32
        sampled = "candidate_rows" in batch
        seen = _flat(batch["seen_rows"], batch["seen_cols"], n_items, scores.device)
        dense = sampled or "scores" in self.needs
        truth: torch.Tensor | None = None
        if dense:
            truth = torch.zeros(n_users, n_items, dtype=torch.bool, device=scores.device)
            _fill(truth, _flat(batch["truth_rows"], batch["truth_cols"], n_items,
                               scores.device), True)
        in_place = not dense and _maskable_in_place(scores, dtype)
        work = scores if in_place else scores.to(dtype, copy=True).contiguous()
        saved = work.view(-1).index_select(0, seen)  # the values the mask hides
        if sampled:
            assert truth is not None
            keep = truth.clone()
            _fill(keep, _flat(batch["candidate_rows"], batch["candidate_cols"], n_items,
                              scores.device), True)
            work.masked_fill_(~keep, -torch.inf)
        try:
            _fill(work, seen, -torch.inf)
            k = min(self.max_k, n_items)
            top_scores, topk = topk_rows(work, k)
        finally:
            restore = in_place and not scores_disposable
            if restore:  # put the caller's values back (duplicate cells get the same value)
                scores.view(-1).index_copy_(0, seen, saved)
        if stats is not None:
            # NaNs among the masked cells are counted from ``saved`` (count_nan), so
            # the rest may be counted in the masked matrix when it was not restored
            stats["nan_scores"] = (torch.isnan(scores).sum() if sampled
                                   else count_nan(scores, top_scores, saved,
                                                  restored=restore or not in_place))
        valid = top_scores > -torch.inf
        # a masked item that fills the list when K exceeds the candidates never hits
        if truth is not None:
            hits = (truth.gather(1, topk) & valid).float()
            n_rel = truth.sum(dim=1).float()
        else:
            hits, n_rel = sparse_hits(topk, valid, batch["truth_rows"], batch["truth_cols"],
                                      n_items)
        inp = MetricInput(topk, hits, n_rel, n_items, item_popularity)
        if "scores" in self.needs:
            inp.scores, inp.truth = work, truth
        if "item_features" in self.needs:
            inp.item_features = self.item_features
        out: dict[str, torch.Tensor] = {}
        for name, spec in self.per_user.items():
            for cut in self.ks:
                out[f"{name}@{cut}"] = spec.fn(inp, cut).float()
        if item_counts is not None and self.global_:
            for cut in self.ks:
                counts = torch.zeros(n_items, dtype=torch.float64, device=topk.device)
                counts.index_add_(0, topk[:, :cut].reshape(-1),
                                  valid[:, :cut].reshape(-1).to(torch.float64))
                if cut in item_counts:
                    item_counts[cut] += counts
                else:
                    item_counts[cut] = counts
        return out

    def finalize_global(self, item_counts: Mapping[int, torch.Tensor], n_users: int,
                        item_popularity: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Global metric values from the summed top-k item counts of all users."""
        out: dict[str, torch.Tensor] = {}
        for name, spec in self.global_.items():
            for cut in self.ks:
                counts = item_counts[cut]
                inp = GlobalInput(counts, n_users, counts.numel(), item_popularity)
                out[f"{name}@{cut}"] = torch.as_tensor(spec.fn(inp, cut)).double()
        return out


class PerUserAccumulator:
    """Collects per-user values batch by batch; never calls ``.item()`` per batch."""

    def __init__(self) -> None:
        self.users: list[torch.Tensor] = []
        self.values: dict[str, list[torch.Tensor]] = {}

    def update(self, users: torch.Tensor, values: Mapping[str, torch.Tensor]) -> None:
        self.users.append(users.detach())
        for key, v in values.items():
            self.values.setdefault(key, []).append(v.detach())

    def tensors(self) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        users = torch.cat(self.users) if self.users else torch.empty(0, dtype=torch.long)
        return users, {k: torch.cat(v) for k, v in self.values.items()}

    def reset(self) -> None:
        self.users.clear()
        self.values.clear()

    @staticmethod
    def to_frame(users: torch.Tensor, values: Mapping[str, torch.Tensor]) -> pd.DataFrame:
        """One row per user (sorted by user index), one column per metric."""
        order = torch.argsort(users.cpu())
        data = {"user": users.cpu()[order].numpy()}
        for key, v in values.items():
            data[key] = v.cpu()[order].numpy().astype(np.float64)
        return pd.DataFrame(data)

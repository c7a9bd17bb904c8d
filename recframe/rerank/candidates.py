"""The base model's top-N per user, and metrics of any ranked lists.

Candidates come from the same evaluation batches as the test metrics
(:class:`recframe.train.batches.EvalUsers` of the test part: same users, same
seen-item masking, same tie order through :func:`recframe.eval.topk.topk_rows`),
so the base lists here are the lists the run was evaluated on.
:func:`list_metrics` computes the run's metric plugins from lists (the base
lists, or re-ordered ones) exactly as :class:`recframe.eval.Evaluator` does from
its top-k.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from recframe.eval.evaluator import Evaluator, MetricInput, sparse_hits
from recframe.eval.topk import topk_rows


@dataclass
class Candidates:
    """``users``: ``[U]`` user indices; ``items``: ``[U, L]`` ranked item indices (base
    order); ``valid``: ``[U, L]`` False where the list ran out of unseen items;
    ``truth_rows``/``truth_cols``: held-out items (rows local to ``users``)."""

    users: np.ndarray
    items: torch.Tensor
    valid: torch.Tensor
    truth_rows: torch.Tensor
    truth_cols: torch.Tensor


def _to(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


@torch.no_grad()
def top_candidates(model: torch.nn.Module, eval_set: object, positions: np.ndarray,
                   length: int, batch_size: int) -> Candidates:
    """The top ``length`` unseen items of the base model for the evaluation users at
    ``positions`` of ``eval_set`` (an :class:`EvalUsers`), in batches."""
    model.eval()
    param = next(iter(model.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    users, items, valid, t_rows, t_cols = [], [], [], [], []
    offset = 0
    for start in range(0, len(positions), batch_size):
        batch = eval_set.__getitems__(positions[start:start + batch_size].tolist())  # type: ignore[attr-defined]
        b_users = batch["users"]
        scores = model.score(b_users.to(device), _to(batch, device))  # type: ignore[operator]
        work = scores.detach().to("cpu", torch.float32).clone().contiguous()
        n_items = work.shape[1]
        seen = batch["seen_rows"] * n_items + batch["seen_cols"]
        work.view(-1).index_fill_(0, seen, -torch.inf)
        values, top = topk_rows(work, min(length, n_items))
        users.append(b_users.numpy())
        items.append(top)
        valid.append(values > -torch.inf)
        t_rows.append(batch["truth_rows"] + offset)
        t_cols.append(batch["truth_cols"])
        offset += len(b_users)
    if not users:
        empty = torch.empty((0, length), dtype=torch.long)
        return Candidates(np.empty(0, dtype=np.int64), empty, empty.bool(),
                          torch.empty(0, dtype=torch.long), torch.empty(0, dtype=torch.long))
    return Candidates(np.concatenate(users), torch.cat(items), torch.cat(valid),
                      torch.cat(t_rows), torch.cat(t_cols))


def list_metrics(evaluator: Evaluator, items: torch.Tensor, valid: torch.Tensor,
                 truth_rows: torch.Tensor, truth_cols: torch.Tensor, n_items: int,
                 item_popularity: torch.Tensor | None = None
                 ) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """Per-user values (``{"ndcg@10": [U]}``) and global metric values of ranked lists.

    Metrics that read the whole score matrix (``needs`` ``scores``) have no value
    for a re-ordered list and are left out (:func:`list_metric_names` names them).
    """
    k = min(evaluator.max_k, items.shape[1])
    top, ok = items[:, :k], valid[:, :k]
    hits, n_rel = sparse_hits(top, ok, truth_rows, truth_cols, n_items)
    inp = MetricInput(top, hits, n_rel, n_items, item_popularity)
    if "item_features" in evaluator.needs:
        inp.item_features = evaluator.item_features
    per_user: dict[str, torch.Tensor] = {}
    for name, spec in evaluator.per_user.items():
        if "scores" in spec.needs:
            continue
        for cut in evaluator.ks:
            per_user[f"{name}@{cut}"] = spec.fn(inp, cut).float()
    global_: dict[str, float] = {}
    if evaluator.global_:
        counts = {}
        for cut in evaluator.ks:
            c = torch.zeros(n_items, dtype=torch.float64)
            c.index_add_(0, top[:, :cut].reshape(-1), ok[:, :cut].reshape(-1).double())
            counts[cut] = c
        values = evaluator.finalize_global(counts, len(items), item_popularity)
        global_ = {key: float(v) for key, v in values.items()}
    return per_user, global_


def skipped_metrics(evaluator: Evaluator) -> list[str]:
    """Metric names that cannot be computed on a re-ordered list (they read scores)."""
    return sorted(n for n, s in evaluator.metrics.items() if "scores" in s.needs)

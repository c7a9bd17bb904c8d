"""Cold-start evaluation: the metrics of cold and warm targets, each on its own.

Under a cold-start split (``Split.cold_start``, e.g. ``split=cold_items``; see
docs/cold_start.md) a held-out target ``(u, i)`` is *cold* when its item has no
train interaction (``items``) or its user has none (``users``), else *warm*. The
evaluator then ranks all items once per view, from the same scores:

- overall: every target, as without a cold split (keys ``ndcg@10``);
- ``cold/``: the user's cold targets are relevant; their warm targets are masked
  like seen items, so they neither count nor push a cold target down
  (keys ``cold/ndcg@10``); only users with a cold target take part;
- ``warm/``: the same with the roles swapped (``warm/ndcg@10``).

With ``evaluation.cold_ranking: own`` (cold items only) each view ranks its own kind
of item alone: cold targets among the cold items, warm targets among the warm items
(the strict item cold-start setting, e.g. Volkovs et al., DropoutNet, NeurIPS 2017,
which ranks the cold test items only). The default ``all`` ranks every item.

A model that cannot score cold targets (``RecModel.scores_cold_items`` /
``scores_cold_users`` false: ID-only models) is measured on the warm view only; its
cold and overall values are *not applicable* (``None`` in ``results.json``, with the
reason), never 0, since a 0 would rank an inability below a poor model.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)

#: the metric-key prefixes of the two views (``cold/ndcg@10``, ``warm/ndcg@10``)
COLD, WARM = "cold", "warm"
VIEWS = (COLD, WARM)
#: ``evaluation.cold_ranking``: every item competes in both views, or each view's own kind
COLD_RANKINGS = ("all", "own")
#: the capability attribute of ``RecModel`` for each kind of cold start
CAPABILITY = {"items": "scores_cold_items", "users": "scores_cold_users"}


def view_key(view: str, key: str) -> str:
    """``("cold", "ndcg@10")`` -> ``"cold/ndcg@10"``; the overall view keeps ``key``."""
    return f"{view}/{key}" if view else key


@dataclass
class ColdStart:
    """Which targets are cold (``kind`` and a mask over items or users), and whether the
    model can score them (``applicable``)."""

    kind: str
    cold: torch.Tensor  # bool [n_items] (items) or [n_users] (users)
    applicable: bool
    model_name: str = "model"
    #: ``all``: every item is ranked in both views; ``own``: (cold items only) each view
    #: ranks its own kind of item alone
    ranking: str = "all"

    @classmethod
    def from_data(cls, data: Any, model: Any, model_name: str | None = None,
                  ranking: str = "all") -> ColdStart | None:
        """The cold-start set-up of a run, or None when the split is not a cold one."""
        kind = getattr(data.info, "cold_start", "")
        if not kind:
            return None
        if kind not in CAPABILITY:
            raise ValueError(f"unknown cold_start kind {kind!r}; expected one of "
                             f"{sorted(CAPABILITY)}")
        if kind == "items":
            mask = data.item_popularity() == 0
        else:
            mask = np.asarray(data.info.train_history_lengths) == 0
        name = model_name or type(model).__name__
        return cls(kind, torch.from_numpy(np.asarray(mask, dtype=bool)),
                   bool(getattr(model, CAPABILITY[kind], False)), name,
                   ranking if kind == "items" else "all")

    @property
    def views(self) -> tuple[str, ...]:
        """The views evaluated, in order: overall (``""``), cold, warm; warm only when
        the model cannot score cold targets."""
        return ("", COLD, WARM) if self.applicable else (WARM,)

    @property
    def reason(self) -> str:
        """Why the cold and overall figures are not applicable (for results and logs)."""
        what = "items" if self.kind == "items" else "users"
        return (f"model {self.model_name} cannot score cold {what} (no train interaction; "
                f"RecModel.{CAPABILITY[self.kind]} is false): its cold and overall metrics "
                f"are not applicable (null), not 0; it is measured on warm targets only")

    def target_is_cold(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Per ground-truth coordinate of the batch: True where the target is cold."""
        cold = self.cold.to(batch["truth_cols"].device)
        if self.kind == "items":
            return cold[batch["truth_cols"]]
        return cold[batch["users"][batch["truth_rows"]]]

    def view(self, batch: Mapping[str, torch.Tensor], view: str
             ) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        """The batch of one view and which rows (users) have a target in it.

        ``view == ""`` is the batch itself (every row). Otherwise only the view's
        targets stay relevant and the other targets join the seen (masked) items.
        """
        if not view:
            return dict(batch), None
        is_cold = self.target_is_cold(batch)
        mine = is_cold if view == COLD else ~is_cold
        rows, cols = batch["truth_rows"], batch["truth_cols"]
        out = dict(batch)
        out["truth_rows"], out["truth_cols"] = rows[mine], cols[mine]
        out["seen_rows"] = torch.cat([batch["seen_rows"], rows[~mine]])
        out["seen_cols"] = torch.cat([batch["seen_cols"], cols[~mine]])
        if self.ranking == "own":  # the other kind of item is out of this view's ranking
            items = torch.nonzero(self.cold if view == WARM else ~self.cold).reshape(-1)
            items = items.to(rows.device)
            n_rows = len(batch["users"])
            out["seen_rows"] = torch.cat([out["seen_rows"], torch.arange(
                n_rows, device=rows.device).repeat_interleave(len(items))])
            out["seen_cols"] = torch.cat([out["seen_cols"], items.repeat(n_rows)])
        has = torch.zeros(len(batch["users"]), dtype=torch.bool, device=rows.device)
        has[rows[mine]] = True
        return out, has

    def record(self, data: Any) -> dict[str, Any]:
        """What ``results.json`` records about the cold set: counts per part."""
        cold = self.cold.numpy()
        out: dict[str, Any] = {
            "kind": self.kind,
            f"n_cold_{self.kind}": int(cold.sum()),
            f"n_{self.kind}": len(cold),
            "cold_target": ("its item has no train interaction" if self.kind == "items"
                            else "its user has no train interaction"),
            "views": "overall (all targets), cold/ and warm/: the other view's targets "
                     "masked like seen items; users with a target in the view",
            "ranking": ("every item ranked in each view" if self.ranking == "all" else
                        "cold/: the cold items alone ranked; warm/: the warm items alone"),
            "model_scores_cold": self.applicable,
        }
        for part in ("valid", "test"):
            ev = data.events[part]
            flag = cold[ev.items] if self.kind == "items" else cold[ev.users]
            out[f"{part}_cold_targets"] = int(flag.sum())
            out[f"{part}_warm_targets"] = int((~flag).sum())
            out[f"{part}_users_with_cold_targets"] = len(np.unique(ev.users[flag]))
        if not self.applicable:
            out["not_applicable"] = self.reason
        return out

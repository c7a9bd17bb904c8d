"""The ``privacy`` block of ``results.json``: the protection's record and the audit."""

from __future__ import annotations

from typing import Any

from recframe.privacy.audit import audit_statistics

ATTACK = ("score threshold per user: mean percentile rank of the user's own training items "
          "in the model's scores computed from that history by fold-in, members vs users "
          "held out before training")


def privacy_record(private: Any) -> dict[str, Any]:
    return private.record()


def audit_record(specs: dict[str, Any], exp: Any, seed: int) -> dict[str, Any]:
    """Run each ``kind="audit"`` metric on the tested weights; ``metrics`` holds the
    values that go into ``metrics.test`` (None when the model cannot be audited)."""
    held = exp.prepared.held_out
    inp, reason = audit_statistics(exp.model, exp.data, held, seed)
    out: dict[str, Any] = {"attack": ATTACK, "held_out_users": held.n_users, "metrics": {}}
    if inp is None:
        out["not_applicable"] = reason
        out["metrics"] = dict.fromkeys(specs)
        return out
    out["members"], out["non_members"] = len(inp.members), len(inp.non_members)
    for name, spec in specs.items():
        value = spec.fn(inp, 0)
        out[name] = value
        out["metrics"][name] = value["value"]
    return out

"""The privacy-utility frontier: NDCG@10 and membership-inference AUC against epsilon.

Runs with a ``privacy`` block in ``results.json`` are grouped by model and target
epsilon (``inf`` = no noise); each point is the mean over seeds with a t interval
(one seed: the per-user t interval of NDCG and the run's bootstrap interval of the
MIA AUC, both labelled). Spent epsilon is the accountant's, averaged over seeds.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from recframe.report.document import Document
from recframe.report.stats import summarize

UTILITY = "ndcg@10"
AUDIT = "mia_auc"


def _epsilon(results: dict[str, Any]) -> float:
    priv = results.get("privacy") or {}
    if priv.get("name") in (None, "none"):
        return math.inf
    target = priv.get("epsilon_target")
    return math.inf if target is None else float(target)


def frontier_points(runs: list[Any], confidence: float = 0.95) -> list[dict[str, Any]]:
    """One point per (model, privacy mode, target epsilon) over the runs' seeds."""
    groups: dict[tuple[str, str, float], list[Any]] = defaultdict(list)
    for run in runs:
        priv = run.results.get("privacy")
        if not priv:
            continue
        groups[(run.model_name, str(priv.get("name")), _epsilon(run.results))].append(run)
    points = []
    for (model, mode, eps), members in sorted(groups.items(),
                                              key=lambda kv: (kv[0][0], kv[0][1], -kv[0][2])):
        ndcg = [r.results["metrics"]["test"].get(UTILITY) for r in members]
        mia = [(r.results["metrics"].get("audit") or {}).get(AUDIT) for r in members]
        spent = [r.results["privacy"].get("epsilon") for r in members]
        u, a = summarize(ndcg, confidence), summarize(mia, confidence)
        u_ci, a_ci, how = (u.ci_low, u.ci_high), (a.ci_low, a.ci_high), "seeds"
        if len(members) == 1:  # one seed: the run's own intervals
            how = "one seed: per-user t CI (NDCG), bootstrap CI (MIA)"
            frame = members[0].per_user()
            if frame is not None and UTILITY in frame:
                u_ci = (summarize(frame[UTILITY].to_numpy(), confidence).ci_low,
                        summarize(frame[UTILITY].to_numpy(), confidence).ci_high)
            boot = ((members[0].results.get("privacy") or {}).get("audit") or {}).get(
                AUDIT) or {}
            if boot.get("ci95"):
                a_ci = tuple(boot["ci95"])
        finite = [float(s) for s in spent if s is not None]
        points.append({
            "model": model, "mode": mode, "epsilon": eps, "seeds": len(members),
            "epsilon_spent": float(np.mean(finite)) if finite else math.inf,
            "noise_multiplier": members[0].results["privacy"].get("noise_multiplier"),
            "ndcg": u.mean, "ndcg_ci": u_ci, "mia": a.mean, "mia_ci": a_ci, "ci": how,
        })
    return points


def _fmt(x: float | None, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if math.isinf(x):
        return "inf"
    return f"{x:.{digits}f}"


def frontier_plot(points: list[dict[str, Any]], path: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not points:
        return False
    finite = sorted({p["epsilon"] for p in points if not math.isinf(p["epsilon"])})
    inf_x = (max(finite) * 2.5) if finite else 1.0
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for (model, mode) in sorted({(p["model"], p["mode"]) for p in points}):
        pts = sorted((p for p in points if (p["model"], p["mode"]) == (model, mode)),
                     key=lambda p: p["epsilon"] if not math.isinf(p["epsilon"]) else inf_x)
        xs = [inf_x if math.isinf(p["epsilon"]) else p["epsilon"] for p in pts]
        for ax, key in zip(axes, ("ndcg", "mia"), strict=True):
            ys = np.array([p[key] for p in pts], dtype=float)
            lo = np.array([p[f"{key}_ci"][0] for p in pts], dtype=float)
            hi = np.array([p[f"{key}_ci"][1] for p in pts], dtype=float)
            err = np.vstack([np.nan_to_num(ys - lo), np.nan_to_num(hi - ys)])
            ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=f"{model} ({mode})")
    for ax, title in zip(axes, ("test NDCG@10", "membership-inference AUC"), strict=True):
        ax.set_xscale("log")
        ax.minorticks_off()
        ticks = [*finite, inf_x]
        ax.set_xticks(ticks)
        ax.set_xticklabels([f"{t:g}" for t in finite] + ["inf"])
        ax.set_xlabel("epsilon (user-level)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[1].axhline(0.5, color="grey", linestyle="--", linewidth=1)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def add_privacy_sections(doc: Document, runs: list[Any], out: Path, confidence: float,
                         plots: bool = True) -> list[Path]:
    """The frontier table (and plot) when some runs carry a privacy block."""
    points = frontier_points(runs, confidence)
    if not points:
        return []
    doc.heading(1, "Privacy-utility frontier")
    doc.para(f"Mean over seeds with {confidence:.0%} CIs ({points[0]['ci']} where a "
             f"point has one seed). epsilon: the target the noise was calibrated to and "
             f"what the accountant reports as spent (user-level, delta = 1/n_users unless "
             f"set). MIA AUC 0.5 = the attack cannot tell training users from held-out "
             f"ones.")
    rows = [[p["model"], p["mode"], _fmt(p["epsilon"], 2), _fmt(p["epsilon_spent"], 3),
             _fmt(p["noise_multiplier"], 3), str(p["seeds"]),
             f"{_fmt(p['ndcg'])} [{_fmt(p['ndcg_ci'][0])}, {_fmt(p['ndcg_ci'][1])}]",
             f"{_fmt(p['mia'], 3)} [{_fmt(p['mia_ci'][0], 3)}, {_fmt(p['mia_ci'][1], 3)}]"]
            for p in points]
    doc.table(["model", "privacy", "epsilon", "epsilon spent", "noise sigma", "seeds",
               "NDCG@10 [CI]", "MIA AUC [CI]"], rows, align_right={2, 3, 4, 5})
    written = []
    if plots:
        path = out / "privacy_frontier.png"
        if frontier_plot(points, path):
            doc.image(path, "NDCG@10 and MIA AUC against epsilon")
            written.append(path)
    return written

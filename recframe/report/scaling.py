"""Scaling curves: a test metric against model size and training compute.

Reads what ``results.json`` records per run (``model_size.non_embedding_parameters``,
``timings.train_seconds``, ``training_compute.flops_estimate``; see
:mod:`recframe.models.size`) and the metric's mean and confidence interval over
seeds from the block's table. A curve joins the groups of one model name; it is
drawn only where some model has at least two sizes, so an ordinary comparison
gets no scaling section.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recframe.report.collect import Block
from recframe.report.document import Document
from recframe.report.plots import _figure, _save, _with_style

#: x axes of the curves: (column, axis label, results.json path)
AXES = (
    ("non_embedding_parameters", "non-embedding parameters",
     ("model_size", "non_embedding_parameters")),
    ("train_seconds", "training seconds (training steps only)", ("timings", "train_seconds")),
    ("flops_estimate", "training FLOPs, est. 6 * N * trained positions",
     ("training_compute", "flops_estimate")),
)


def _dig(results: dict[str, Any], path: tuple[str, str]) -> float:
    value = (results.get(path[0]) or {}).get(path[1])
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return float(value) if ok and math.isfinite(value) else math.nan


def scaling_table(frame: pd.DataFrame, block: Block, metric: str) -> pd.DataFrame:
    """One row per group: model, the x-axis quantities (mean over seeds) and the
    metric's mean and CI; empty unless a model has two or more parameter counts."""
    rows = []
    stats = frame[frame["metric"] == metric].set_index("group")
    for g in block.groups:
        if g.label not in stats.index:
            continue
        row: dict[str, Any] = {"model": g.model_name, "group": g.label, "n_seeds": len(g.runs)}
        for column, _, path in AXES:
            values = [v for v in (_dig(r.results, path) for r in g.runs) if not math.isnan(v)]
            row[column] = float(np.mean(values)) if values else math.nan
        s = stats.loc[g.label]
        row.update(mean=float(s["mean"]), ci_low=float(s["ci_low"]), ci_high=float(s["ci_high"]))
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty or table["non_embedding_parameters"].isna().all():
        return table.iloc[:0]
    sizes = table.groupby("model")["non_embedding_parameters"].nunique()
    if not (sizes >= 2).any():
        return table.iloc[:0]
    return table[table["model"].isin(sizes[sizes >= 2].index)].sort_values(
        ["model", "non_embedding_parameters"]).reset_index(drop=True)


def scaling_plot(table: pd.DataFrame, metric: str, path: Path, confidence: float) -> bool:
    """One panel per x axis that has values: the metric (mean, CI error bars) of each
    model's sizes, log-scaled x, one line per model."""
    axes_used = [(c, label) for c, label, _ in AXES
                 if c in table and table[c].notna().any() and (table[c] > 0).any()]
    if table.empty or not axes_used:
        return False

    def draw() -> None:
        from matplotlib import colormaps
        from matplotlib.ticker import NullFormatter

        width = 3.2 * len(axes_used) + 2.0
        fig = _figure(width, 3.0)
        panels = fig.subplots(1, len(axes_used), squeeze=False)[0]
        fig.subplots_adjust(left=0.8 / width, right=1 - 1.1 / width, bottom=0.18,
                            top=0.84, wspace=0.25)
        cmap = colormaps["tab10"]
        for ax, (column, label) in zip(panels, axes_used, strict=True):
            for i, (model, part) in enumerate(table.groupby("model", sort=True)):
                part = part[part[column] > 0].sort_values(column)
                y = part["mean"].to_numpy(float)
                err = np.vstack([np.nan_to_num(y - part["ci_low"].to_numpy(float)),
                                 np.nan_to_num(part["ci_high"].to_numpy(float) - y)])
                ax.errorbar(part[column].to_numpy(float), y, yerr=err, marker="o",
                            markersize=3, capsize=2, color=cmap(i % cmap.N), label=model,
                            elinewidth=0.8)
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel(label)
        panels[0].set_ylabel(f"test {metric}")
        for ax in panels:
            ax.grid(alpha=0.3)
        handles, labels = panels[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="upper right", frameon=False)
        fig.suptitle(f"test {metric} vs size and training compute "
                     f"(mean over seeds, {confidence:.0%} CI)")
        _save(fig, path)

    _with_style(draw)
    return True


def add_scaling_section(doc: Document, table: pd.DataFrame, metric: str,
                        level: int = 2) -> None:
    """The scaling table: per model and size, the x quantities and the metric."""
    doc.heading(level, f"Scaling: test {metric} by model size")
    doc.para("Non-embedding parameters exclude item, user and position embedding tables "
             "and per-item output biases; training seconds count training steps only "
             "(mean over seeds); FLOPs are estimated as 6 * non-embedding parameters * "
             "trained positions (the output layer and attention's length-squared term "
             "are not counted).")
    rows = []
    for _, r in table.iterrows():
        flops = r["flops_estimate"]
        rows.append([r["group"], f"{r['non_embedding_parameters']:,.0f}",
                     f"{r['train_seconds']:.1f}",
                     "–" if math.isnan(flops) else f"{flops:.2e}", str(r["n_seeds"]),
                     f"{r['mean']:.4f}" + ("" if math.isnan(r["ci_low"]) else
                                           f" [{r['ci_low']:.4f}, {r['ci_high']:.4f}]")])
    doc.table(["configuration", "non-emb. params", "train s", "FLOPs (est.)", "seeds",
               f"{metric} [CI]"], rows)

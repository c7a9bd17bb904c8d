"""PNG figures (matplotlib, Agg canvas, no pyplot state), byte-identical on rerun.

Figures are drawn with :class:`matplotlib.figure.Figure` and the Agg canvas
directly, under matplotlib's default style (whatever the user's matplotlibrc
says) and saved without the ``Software`` metadata entry, so the same input
gives the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recframe.report.collect import Block, Group
from recframe.results import atomic_write

DPI = 100
_RC = {
    "svg.hashsalt": "recframe-report",
    "path.simplify": True,
    "font.size": 9,
    "axes.titlesize": 9,
    "legend.fontsize": 7,
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
}


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # A fixed layout (no constrained/tight layout: they cost seconds per figure).
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _panels(fig: Any, n: int, legend_width: float = 1.6) -> Any:
    """An n-panel grid with fixed margins, leaving room on the right for a legend."""
    rows, cols = _grid(n)
    width, height = fig.get_size_inches()
    axes = fig.subplots(rows, cols, squeeze=False)
    fig.subplots_adjust(left=0.6 / width, right=1 - legend_width / width,
                        bottom=0.5 / height, top=1 - 0.55 / height,
                        wspace=0.35, hspace=0.55)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    return axes


#: space between the axes and the legend, and right of the legend (inches)
_LEGEND_PAD = 0.15


def _legend(fig: Any, handles: Sequence[Any], labels: Sequence[str]) -> Any:
    """The figure's legend outside the axes, right of the panels, never over the data.

    The legend starts at the top of the panels, just right of them; the figure is made
    as wide as the panels plus the measured legend (the panels keep their size in
    inches), and a legend taller than the panels is split into columns.
    """
    if not handles:
        return None
    params = fig.subplotpars
    width, height = fig.get_size_inches()
    left_in, right_in = params.left * width, params.right * width
    top, bottom = params.top, params.bottom
    renderer = fig.canvas.get_renderer()
    ncol, legend = 1, None
    while True:
        if legend is not None:
            legend.remove()
        legend = fig.legend(handles, labels, loc="upper left", ncol=ncol, frameon=False,
                            borderaxespad=0.0, bbox_to_anchor=(params.right, top),
                            bbox_transform=fig.transFigure)
        box = legend.get_window_extent(renderer)
        if box.height / fig.dpi <= (top - bottom) * height or ncol >= len(handles):
            break
        ncol += 1
    new_width = right_in + 2 * _LEGEND_PAD + box.width / fig.dpi
    fig.set_size_inches(new_width, height)
    fig.subplots_adjust(left=left_in / new_width, right=right_in / new_width)
    legend.set_bbox_to_anchor(((right_in + _LEGEND_PAD) / new_width, top),
                              transform=fig.transFigure)
    return legend


def _save(fig: Any, path: Path) -> None:
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI,
                                               metadata={"Software": None}))


def _colors(groups: Sequence[Group]) -> dict[str, Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"] if len(groups) <= 10 else colormaps["tab20"]
    return {g.label: cmap(i % cmap.N) for i, g in enumerate(groups)}


def _grid(n: int, max_cols: int = 4) -> tuple[int, int]:
    cols = min(max_cols, max(n, 1))
    return math.ceil(max(n, 1) / cols), cols


def _with_style(draw):
    import matplotlib

    with matplotlib.rc_context():
        matplotlib.rcdefaults()
        matplotlib.rcParams.update(_RC)
        return draw()


def bar_plot(frame: pd.DataFrame, block: Block, keys: Sequence[str], path: Path,
             confidence: float) -> bool:
    """One panel per metric name: a bar per group at each K, with CI error bars."""
    sub = frame[frame["metric"].isin(list(keys))]
    names = list(dict.fromkeys(sub["metric_name"]))
    if not names:
        return False

    def draw() -> None:
        rows, cols = _grid(len(names))
        fig = _figure(2.9 * cols + 1.6, 2.4 * rows + 0.6)
        axes = _panels(fig, len(names))
        colors = _colors(block.groups)
        labels = [g.label for g in block.groups]
        width = 0.8 / max(len(labels), 1)
        for ax, name in zip(axes.flat, names, strict=False):
            part = sub[sub["metric_name"] == name]
            metric_keys = list(dict.fromkeys(part["metric"]))
            x = np.arange(len(metric_keys))
            for gi, label in enumerate(labels):
                rows_g = part[part["group"] == label].set_index("metric").reindex(metric_keys)
                means = rows_g["mean"].to_numpy(dtype=float)
                lo = rows_g["ci_low"].to_numpy(dtype=float)
                hi = rows_g["ci_high"].to_numpy(dtype=float)
                err = np.vstack([np.nan_to_num(means - lo), np.nan_to_num(hi - means)])
                pos = x + (gi - (len(labels) - 1) / 2) * width
                has = ~np.isnan(means)  # no value (n/a, failed): no bar, not a 0 bar
                ax.bar(pos[has], means[has], width=width, color=colors[label], label=label,
                       yerr=err[:, has], capsize=2,
                       error_kw={"elinewidth": 0.8, "capthick": 0.8})
                na = rows_g["not_applicable"].fillna(False).to_numpy(dtype=bool) \
                    if "not_applicable" in rows_g else np.zeros(len(x), dtype=bool)
                for p_ in pos[na & ~has]:
                    ax.text(p_, 0, "n/a", rotation=90, ha="center", va="bottom", fontsize=6)
            higher = bool(part["higher_is_better"].iloc[0])
            ax.set_title(f"{name} ({'higher' if higher else 'lower'} is better)")
            ax.set_xticks(x, [k.split("@", 1)[1] if "@" in k else k for k in metric_keys])
            if part["k"].notna().any():  # CTR metrics have no cut-off
                ax.set_xlabel("K")
            ax.grid(axis="y", alpha=0.3)
        handles, legend_labels = axes.flat[0].get_legend_handles_labels()
        _legend(fig, handles, legend_labels)
        n1 = sorted(set(sub.loc[sub["n_seeds"] == 1, "group"]))
        some = sub.loc[sub["n_seeds"] > 0, "group"]
        note = ("; one seed each (no CI)" if n1 and set(n1) == set(some) else
                f"; n=1 (no CI): {', '.join(n1)}" if n1 else "")
        fig.suptitle(f"test metrics: mean over seeds, {confidence:.0%} CI error bars{note}")
        _save(fig, path)

    _with_style(draw)
    return True


def at_k_plot(frame: pd.DataFrame, block: Block, path: Path) -> bool:
    """One panel per metric name with several cut-offs: mean value vs K per group."""
    sub = frame[frame["k"].notna()]
    names = [n for n in dict.fromkeys(sub["metric_name"])
             if sub.loc[sub["metric_name"] == n, "k"].nunique() > 1]
    if not names:
        return False

    def draw() -> None:
        rows, cols = _grid(len(names))
        fig = _figure(2.9 * cols + 1.6, 2.4 * rows + 0.6)
        axes = _panels(fig, len(names))
        colors = _colors(block.groups)
        for ax, name in zip(axes.flat, names, strict=False):
            part = sub[sub["metric_name"] == name]
            for g in block.groups:
                line = part[part["group"] == g.label].sort_values("k")
                line = line[line["n_seeds"] > 0]
                if line.empty:
                    continue
                ks = line["k"].to_numpy(dtype=float)
                ax.plot(ks, line["mean"].to_numpy(dtype=float), marker="o", ms=3,
                        color=colors[g.label], label=g.label)
                lo = line["ci_low"].to_numpy(dtype=float)
                hi = line["ci_high"].to_numpy(dtype=float)
                if not np.isnan(lo).all():
                    ax.fill_between(ks, lo, hi, color=colors[g.label], alpha=0.15, lw=0)
            ax.set_title(f"{name}@K")
            ax.set_xlabel("K")
            ax.set_xticks(sorted(part["k"].dropna().unique().astype(float)))
            ax.grid(alpha=0.3)
        handles, labels = axes.flat[0].get_legend_handles_labels()
        _legend(fig, handles, labels)
        fig.suptitle("test metrics vs K: mean over seeds (band: CI)")
        _save(fig, path)

    _with_style(draw)
    return True


def _curve(runs: Sequence[Any], column: str) -> pd.Series | None:
    series = []
    for run in runs:
        hist = run.history()
        if hist is None or "epoch" not in hist.columns:
            continue
        cols = [column] if column in hist.columns else [
            c for c in hist.columns if c.startswith(column + "_epoch")]
        if not cols:
            continue
        part = hist[["epoch", cols[0]]].dropna()
        if part.empty:
            continue
        series.append(part.groupby("epoch")[cols[0]].mean())
    if not series:
        return None
    both = pd.concat(series, axis=1)
    return both.mean(axis=1, skipna=True).sort_index()


def training_plot(block: Block, monitor: str, path: Path) -> bool:
    """The monitored validation metric and the training loss per epoch, mean over seeds."""
    panels = [(monitor, f"{monitor} (validation)"), ("train/loss", "train/loss")]
    curves = {col: {g.label: _curve(g.runs, col) for g in block.groups} for col, _ in panels}
    if all(c is None for per in curves.values() for c in per.values()):
        return False

    def draw() -> None:
        from matplotlib.ticker import MaxNLocator

        fig = _figure(2 * 3.6 + 1.6, 3.2)
        axes = _panels(fig, 2)[0]
        colors = _colors(block.groups)
        for ax, (col, title) in zip(axes, panels, strict=True):
            drawn = False
            for g in block.groups:
                curve = curves[col][g.label]
                if curve is None:
                    continue
                ax.plot(curve.index.to_numpy(dtype=float), curve.to_numpy(dtype=float),
                        marker="o", ms=3, color=colors[g.label], label=g.label)
                drawn = True
            ax.set_title(title + ("" if drawn else ": not logged"))
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
        handles, labels = axes[0].get_legend_handles_labels()
        seen = set(labels)
        for h, lab in zip(*axes[1].get_legend_handles_labels(), strict=True):
            if lab not in seen:
                handles.append(h)
                labels.append(lab)
        _legend(fig, handles, labels)
        fig.suptitle("training curves: mean over seeds (logs/metrics.csv)")
        _save(fig, path)

    _with_style(draw)
    return True


def reliability_plot(block: Block, path: Path) -> bool:
    """CTR protocol: one reliability diagram per group (Guo et al., ICML 2017, Fig. 1).

    Observed click rate against mean predicted probability per probability bin,
    from the runs' ``calibration.json`` pooled over seeds
    (:func:`recframe.report.ctr.pooled_calibration`), the diagonal of perfect
    calibration, and grey bars: each bin's share of the test rows. False when no
    group has a calibration table.
    """
    from recframe.report.ctr import pooled_calibration

    tables = [(g, pooled_calibration(g)) for g in block.groups]
    tables = [(g, t) for g, t in tables if t is not None]
    if not tables:
        return False

    def draw() -> None:
        rows, cols = _grid(len(tables))
        fig = _figure(2.9 * cols + 1.6, 2.9 * rows + 0.6)
        axes = _panels(fig, len(tables))
        colors = _colors(block.groups)
        for ax, (g, t) in zip(axes.flat, tables, strict=False):
            lower, upper, count = t["lower"], t["upper"], t["count"]
            total = count.sum()
            share = count / total if total > 0 else np.zeros_like(count)
            ax.bar((lower + upper) / 2, share, width=upper - lower, color="0.88",
                   edgecolor="0.7", linewidth=0.5, label="share of rows in the bin")
            ax.plot([0, 1], [0, 1], ls="--", color="0.45", lw=0.8, label="perfect calibration")
            filled = count > 0
            ax.plot(t["mean_predicted"][filled], t["observed"][filled], marker="o", ms=3,
                    color=colors[g.label], label="observed click rate")
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            pcoc = t["pcoc"]
            ax.set_title(g.label + ("" if math.isnan(pcoc) else f" (PCOC {pcoc:.3f})"))
            ax.set_xlabel("mean predicted probability")
            ax.set_ylabel("observed click rate")
            ax.grid(alpha=0.3)
        handles, labels = axes.flat[0].get_legend_handles_labels()
        _legend(fig, handles, labels)
        fig.suptitle("reliability diagrams: test part, pooled over seeds (calibration.json)")
        _save(fig, path)

    _with_style(draw)
    return True

"""The report's CTR-protocol parts: RelaImpr, pooled calibration tables, the CTR table.

A CTR run (``protocol.kind == "ctr"``) reports bare metric keys (``auc``,
``gauc``, ``logloss``, ``ece``), per-user ``gauc``/``logloss`` in
``per_user.parquet`` (``NaN`` GAUC for a user with one class) and the test
part's reliability table in ``calibration.json``. Its groups form blocks of
their own (:func:`recframe.report.collect.protocol_signature` holds the kind),
so nothing here is ever compared with a ranking metric.

- **RelaImpr** (Yan et al., "Coupled Group Lasso for Web-Scale CTR
  Prediction in Display Advertising", ICML 2014; used by Zhou et al., "Deep
  Interest Network", KDD 2018, eq. 9):
  ``RelaImpr = ((AUC(model) - 0.5) / (AUC(base) - 0.5) - 1) * 100 %``, from the
  mean AUC over seeds of each group; undefined when the baseline's AUC is not
  above 0.5 (no better than random).
- **Calibration**: each group's reliability table is pooled over seeds (bin
  counts summed, bin means weighted by counts); PCOC (predicted over observed
  click rate) is averaged over seeds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from recframe.report.collect import Block, Group
from recframe.report.document import Cell, Document

#: the baseline of RelaImpr and of the baseline tests of a CTR protocol when the
#: report names none (logistic regression, the usual CTR reference)
DEFAULT_CTR_BASELINE = "lr"
#: metrics that get a RelaImpr column (AUC-like: 0.5 is random)
RELAIMPR_METRICS: tuple[str, ...] = ("auc", "gauc")
#: display names of the CTR metrics in the report's table
DISPLAY: dict[str, str] = {"auc": "AUC", "gauc": "GAUC", "logloss": "LogLoss", "ece": "ECE",
                           "calibration_gap": "|PCOC-1|"}
#: lower-is-better CTR metrics (the built-in specs' higher_is_better=False)
CTR_LOWER_IS_BETTER: frozenset[str] = frozenset({"logloss", "ece", "calibration_gap"})


def relaimpr(value: float, base: float) -> float:
    """RelaImpr in percent (Yan et al. 2014; Zhou et al. 2018): ``((value - 0.5) / (base -
    0.5) - 1) * 100``; NaN when either is NaN or the baseline is not above 0.5."""
    if value is None or base is None or math.isnan(value) or math.isnan(base) or base <= 0.5:
        return math.nan
    return ((value - 0.5) / (base - 0.5) - 1.0) * 100.0


def lower_is_better(block: Block) -> frozenset[str]:
    """CTR metrics of the block whose lower values are better: the built-in ones and any
    metric whose protocol record says ``higher_is_better: false``."""
    names = set(CTR_LOWER_IS_BETTER)
    for group in block.groups:
        for run in group.runs:
            for name, meta in (run.protocol.get("metrics") or {}).items():
                if isinstance(meta, dict) and meta.get("higher_is_better") is False:
                    names.add(str(name))
    return frozenset(names)


def default_baseline(block: Block) -> Group | None:
    """The group of model :data:`DEFAULT_CTR_BASELINE` in ``block``; None when there is
    none or several (then the report must name one with ``--baseline``)."""
    matches = [g for g in block.groups if g.model_name == DEFAULT_CTR_BASELINE]
    return matches[0] if len(matches) == 1 else None


def add_relaimpr(frame: pd.DataFrame, baseline: Group | None) -> pd.DataFrame:
    """``frame`` (one CTR block's rows) with a ``relaimpr`` column: percent over the
    baseline's mean on :data:`RELAIMPR_METRICS` rows, NaN elsewhere or without baseline."""
    out = frame.copy()
    values = np.full(len(out), math.nan)
    if baseline is not None and not out.empty:
        for i, (_, row) in enumerate(out.iterrows()):
            if row["metric_name"] not in RELAIMPR_METRICS:
                continue
            base = out[(out["group"] == baseline.label) & (out["metric"] == row["metric"])]
            if len(base):
                values[i] = relaimpr(float(row["mean"]), float(base["mean"].iloc[0]))
    out["relaimpr"] = values
    return out


def _finite(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        return None
    return float(x)


def pcoc(calibration: dict[str, Any]) -> float:
    """PCOC of one run's reliability table: its ``pcoc`` entry, else ``predicted_rate /
    observed_rate``, else count-weighted mean prediction / click rate of the bins."""
    direct = _finite(calibration.get("pcoc"))
    if direct is not None:
        return direct
    pred, obs = _finite(calibration.get("predicted_rate")), _finite(calibration.get(
        "observed_rate"))
    if pred is not None and obs is not None:
        return pred / obs if obs > 0 else math.nan
    try:
        count = np.asarray(calibration["count"], dtype=float)
        mp = np.asarray([_finite(x) or 0.0 for x in calibration["mean_predicted"]])
        ob = np.asarray([_finite(x) or 0.0 for x in calibration["observed"]])
    except (KeyError, TypeError, ValueError):
        return math.nan
    clicks = float((count * ob).sum())
    return float((count * mp).sum()) / clicks if clicks > 0 else math.nan


def pooled_calibration(group: Group) -> dict[str, Any] | None:
    """The group's reliability table pooled over seeds, or None when no run has one.

    Bins are matched by position; runs whose bin edges differ from the first
    run's are left out. Returns ``lower``, ``upper``, ``count`` (summed),
    ``mean_predicted`` and ``observed`` (count-weighted, NaN for an empty bin),
    ``pcoc`` (mean over seeds) and ``n_runs``.
    """
    tables = []
    for run in group.runs:
        cal = run.calibration()
        if cal is None:
            continue
        try:
            lower = np.asarray(cal["lower"], dtype=float)
            upper = np.asarray(cal["upper"], dtype=float)
            count = np.asarray(cal["count"], dtype=float)
            mp = np.asarray([np.nan if v is None else v for v in cal["mean_predicted"]],
                            dtype=float)
            ob = np.asarray([np.nan if v is None else v for v in cal["observed"]], dtype=float)
        except (KeyError, TypeError, ValueError):
            continue
        if not len(lower) == len(upper) == len(count) == len(mp) == len(ob) > 0:
            continue
        tables.append((lower, upper, count, mp, ob, pcoc(cal)))
    if not tables:
        return None
    lower, upper = tables[0][0], tables[0][1]
    same = [t for t in tables if len(t[0]) == len(lower) and np.allclose(t[0], lower)
            and np.allclose(t[1], upper)]
    count = np.sum([t[2] for t in same], axis=0)
    pred = np.sum([t[2] * np.nan_to_num(t[3]) for t in same], axis=0)
    obs = np.sum([t[2] * np.nan_to_num(t[4]) for t in same], axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_predicted = np.where(count > 0, pred / np.maximum(count, 1), np.nan)
        observed = np.where(count > 0, obs / np.maximum(count, 1), np.nan)
    ratios = [t[5] for t in same if not math.isnan(t[5])]
    return {"lower": lower, "upper": upper, "count": count, "mean_predicted": mean_predicted,
            "observed": observed, "pcoc": float(np.mean(ratios)) if ratios else math.nan,
            "n_runs": len(same)}


def _percent(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:+.2f}%"


def add_ctr_metric_table(doc: Document, frame: pd.DataFrame, groups: Sequence[Group],
                         level: int, value_cell: Any) -> None:
    """One table for the whole CTR block: a column per metric (AUC, GAUC, LogLoss, ECE,
    ...), RelaImpr columns against the baseline, and PCOC from the calibration tables."""
    keys = list(dict.fromkeys(frame["metric"]))
    base = frame["baseline"].iloc[0] if len(frame) else ""
    rela = [k for k in keys if k in RELAIMPR_METRICS] if base else []
    pooled = {g.label: pooled_calibration(g) for g in groups}
    show_pcoc = any(p is not None for p in pooled.values())
    header = ["group", "n"]
    for k in keys:
        higher = bool(frame.loc[frame["metric"] == k, "higher_is_better"].iloc[0])
        header.append(f"{DISPLAY.get(k, k)} {'↑' if higher else '↓'}")
    header += [f"RelaImpr {DISPLAY.get(k, k)} vs {base}" for k in rela]
    if show_pcoc:
        header.append("PCOC (1 = calibrated)")
    rows = []
    for g in groups:
        gsub = frame[frame["group"] == g.label].set_index("metric")
        n = int(gsub["n_seeds"].max()) if len(gsub) else 0
        row = [Cell(g.label), Cell(str(n))] + [value_cell(gsub.loc[k]) for k in keys]
        row += [Cell(_percent(float(gsub.loc[k, "relaimpr"]))) for k in rela]
        if show_pcoc:
            p = pooled[g.label]
            row.append(Cell("-" if p is None or math.isnan(p["pcoc"]) else f"{p['pcoc']:.4f}"))
        rows.append(row)
    doc.heading(level, "CTR metrics")
    notes = ["↑ higher is better, ↓ lower is better."]
    if rela:
        notes.append(f"RelaImpr = ((AUC - 0.5) / (AUC of {base} - 0.5) - 1) x 100% on the "
                     "means over seeds (Yan et al. 2014; Zhou et al. 2018); '-' when the "
                     "baseline is not above 0.5.")
    if show_pcoc:
        notes.append("PCOC = mean predicted click probability / observed click rate of the "
                     "test part, mean over seeds (below 1: under-predicts clicks, above 1: "
                     "over-predicts).")
    doc.para(" ".join(notes))
    doc.table(header, rows, align_right=set(range(1, len(header))))


def method_notes() -> list[str]:
    """Lines for the report's Method section when it holds a CTR protocol."""
    return [
        "CTR protocol: every labeled impression of the test part is scored once. AUC is "
        "global (ties 1/2); GAUC averages per-user AUCs weighted by impressions over users "
        "with both clicked and unclicked impressions (Zhou et al., KDD 2018); LogLoss is the "
        "mean binary cross-entropy; ECE uses 15 equal-width probability bins (Guo et al., "
        "ICML 2017). CTR protocols get their own tables; no best mark or test crosses into "
        "ranking results.",
        "RelaImpr (Yan et al. 2014, as in DIN): ((AUC(model) - 0.5) / (AUC(baseline) - 0.5) - "
        f"1) x 100%, on the means over seeds; the baseline is --baseline or, by default, the "
        f"{DEFAULT_CTR_BASELINE} model.",
        "Paired tests of CTR metrics use the per-user values of per_user.parquet (per-user "
        "AUC for gauc, per-user LogLoss for logloss); a user whose value is NaN in either "
        "configuration (one class only) is dropped from that pair. Each user counts once, "
        "so these tests compare unweighted per-user means, whereas GAUC weights users by "
        "impressions and LogLoss averages over impressions. AUC and ECE are global: no "
        "paired test.",
        "Reliability diagrams: each group's calibration.json tables pooled over seeds "
        "(counts summed, bin means weighted by counts).",
        "Lower is better for the CTR metrics: "
        + ", ".join(sorted(CTR_LOWER_IS_BETTER)) + " (and any metric whose protocol record "
        "says higher_is_better: false); higher for the others.",
    ]

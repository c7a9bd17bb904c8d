"""The report's numbers: one row per (protocol block, group, metric), and their rendering."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from recframe.eval.evaluator import parse_metric_key
from recframe.report.collect import Block, Group, canonical
from recframe.report.ctr import add_ctr_metric_table, add_relaimpr
from recframe.report.ctr import lower_is_better as ctr_lower_is_better
from recframe.report.document import Cell, Document
from recframe.report.stats import NO_TEST, PairedResult, holm, paired_test, paired_users, summarize

# Metrics where a lower value is better (MetricSpec.higher_is_better=False in the
# built-in metrics plugin); every other metric is higher-is-better.
LOWER_IS_BETTER: frozenset[str] = frozenset({"gini", "avg_popularity", "logloss"})

#: the table note of a block with not-applicable cells
NOT_APPLICABLE_NOTE = (
    "n/a: not applicable. Under a cold-start split a model that cannot score cold targets "
    "(an ID-only model: no train interaction, no embedding to rank by) reports no cold "
    "and no overall value rather than 0; it is measured on warm targets only. n/a cells "
    "take no part in the best marks or the paired tests. cold/ and warm/ metrics average "
    "over the users with a target of that kind, the other kind of target masked like seen "
    "items; the protocol line says which items each view ranks (docs/cold_start.md).")

_PAIR_FIELDS = ("n_users", "seeds", "mean_diff", "diff_ci_low", "diff_ci_high", "cohens_d",
                "t_stat", "p_t", "p_t_holm", "w_stat", "p_wilcoxon", "p_wilcoxon_holm",
                "sig_t", "sig_wilcoxon")


def split_key(key: str) -> tuple[str, int | None]:
    """``"ndcg@10"`` -> ``("ndcg", 10)``; a key without ``@K`` -> ``(key, None)``; a
    cold-start view's key keeps its view: ``"cold/ndcg@10"`` -> ``("cold/ndcg", 10)``."""
    try:
        return parse_metric_key(key)
    except Exception:
        return key, None


def metric_keys(groups: Iterable[Group]) -> list[str]:
    """Every test metric key of the runs: metric names in first-seen order, K ascending."""
    names: dict[str, set[int | None]] = {}
    for group in groups:
        for run in group.runs:
            for key in run.test_metrics:
                name, k = split_key(key)
                names.setdefault(name, set()).add(k)
    keys = []
    for name, ks in names.items():
        for k in sorted(ks, key=lambda x: (x is None, x or 0)):
            keys.append(name if k is None else f"{name}@{k}")
    return keys


def base_name(name: str) -> str:
    """The metric of a (possibly cold-start view) metric name: ``cold/gini`` -> ``gini``."""
    return name.rpartition("/")[2]


def not_applicable(group: Group, key: str) -> bool:
    """True when every run of ``group`` records ``key`` as not applicable: present with
    no value (``null``), as a model that cannot score cold targets reports its cold
    and overall metrics under a cold-start split (recframe.eval.cold)."""
    return bool(group.runs) and all(
        key in r.test_metrics and r.test_metrics[key] is None for r in group.runs)


def _frames(group: Group) -> dict[str, tuple[str | None, pd.DataFrame]]:
    out = {}
    for run in group.runs:
        frame = run.per_user()
        if frame is not None:
            out[canonical(run.seed)] = (run.fingerprint, frame)
    return out


def compare(group: Group, ref: Group, key: str, confidence: float,
            cache: dict[str, Any]) -> tuple[PairedResult, list[str]]:
    """Paired test of ``group - ref`` on ``key`` over users of the shared, identical splits."""
    fa = cache.setdefault(group.label, _frames(group))
    fb = cache.setdefault(ref.label, _frames(ref))
    shared = {s for s in set(fa) & set(fb) if fa[s][0] == fb[s][0]}
    a, b, used = paired_users({s: fa[s][1] for s in shared}, {s: fb[s][1] for s in shared},
                              key)
    if not used:
        return NO_TEST, []
    return paired_test(a, b, confidence), used


def _mean(values: Iterable[Any]) -> float:
    x = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return float(np.mean(x)) if x else math.nan


def _max(values: Iterable[Any]) -> float:
    x = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return float(np.max(x)) if x else math.nan


def cost(group: Group) -> dict[str, float]:
    """Timings (means over seeds) and peak memory (max over seeds) of a group."""
    t = [r.results.get("timings") or {} for r in group.runs]
    m = [r.results.get("memory") or {} for r in group.runs]
    return {
        "seconds_per_epoch": _mean(x.get("seconds_per_epoch") for x in t),
        "fit_seconds": _mean(x.get("fit") for x in t),
        "best_epoch": _mean(r.results.get("best_epoch") for r in group.runs),
        "peak_rss_gib": _max(x.get("peak_rss_gib") for x in m),
        "peak_cuda_gib": _max(x.get("peak_cuda_gib") for x in m),
    }


def block_table(block: Block, block_no: int, keys: Sequence[str], baseline: Group | None,
                alpha: float, confidence: float,
                lower_is_better: frozenset[str] = LOWER_IS_BETTER) -> pd.DataFrame:
    """Summaries, best marks and Holm-corrected paired tests for one protocol block.

    A CTR block also gets a ``relaimpr`` column (:func:`recframe.report.ctr.add_relaimpr`)
    and the lower-is-better CTR metrics (:func:`recframe.report.ctr.lower_is_better`).
    """
    if block.ctr:
        lower_is_better = lower_is_better | ctr_lower_is_better(block)
    cache: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    desc = block.describe()
    costs = {g.label: cost(g) for g in block.groups}
    for key in keys:
        name, k = split_key(key)
        higher = base_name(name) not in lower_is_better
        values = {g.label: [(r.seed, r.test_metrics[key]) for r in g.runs
                            if isinstance(r.test_metrics.get(key), (int, float))]
                  for g in block.groups}
        sums = {label: summarize([v for _, v in vals], confidence)
                for label, vals in values.items()}
        present = [g for g in block.groups if sums[g.label].n > 0]
        best = None
        for g in present:  # ties keep the first group (sorted by label)
            if best is None or (sums[g.label].mean > sums[best.label].mean if higher
                                else sums[g.label].mean < sums[best.label].mean):
                best = g
        for g in block.groups:
            s = sums[g.label]
            row: dict[str, Any] = {
                "block": block_no,
                "protocol": desc,
                "group": g.label,
                "model": g.model_name,
                "sampled": g.sampled,
                "metric": key,
                "metric_name": name,
                "k": k,
                "higher_is_better": higher,
                "n_seeds": s.n,
                "not_applicable": s.n == 0 and not_applicable(g, key),
                "seeds": ";".join(str(seed) for seed, _ in values[g.label]),
                "values": ";".join(repr(float(v)) for _, v in values[g.label]),
                "mean": s.mean,
                "std": s.std,
                "ci_low": s.ci_low,
                "ci_high": s.ci_high,
                "best": best is not None and g is best,
                "best_group": best.label if best is not None else "",
                "baseline": baseline.label if baseline is not None else "",
            }
            for prefix, ref in (("vs_best", best), ("vs_baseline", baseline)):
                res, used = (NO_TEST, [])
                if ref is not None and g is not ref and s.n > 0:
                    res, used = compare(g, ref, key, confidence, cache)
                row.update({
                    f"{prefix}_n_users": res.n,
                    f"{prefix}_seeds": ";".join(used),
                    f"{prefix}_mean_diff": res.mean_diff,
                    f"{prefix}_diff_ci_low": res.diff_ci_low,
                    f"{prefix}_diff_ci_high": res.diff_ci_high,
                    f"{prefix}_cohens_d": res.cohens_d,
                    f"{prefix}_t_stat": res.t_stat,
                    f"{prefix}_p_t": res.p_t,
                    f"{prefix}_w_stat": res.w_stat,
                    f"{prefix}_p_wilcoxon": res.p_wilcoxon,
                })
            row.update(costs[g.label])
            rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return empty_table()
    for prefix in ("vs_best", "vs_baseline"):
        for test in ("t", "wilcoxon"):
            frame[f"{prefix}_p_{test}_holm"] = holm(frame[f"{prefix}_p_{test}"].to_numpy())
        worse = np.where(frame["higher_is_better"], frame[f"{prefix}_mean_diff"] < 0,
                         frame[f"{prefix}_mean_diff"] > 0)
        for test, col in (("t", "sig_t"), ("wilcoxon", "sig_wilcoxon")):
            sig = frame[f"{prefix}_p_{test}_holm"].to_numpy() < alpha
            # Against the best only "significantly worse" is marked; against the
            # baseline any significant difference is, with its direction.
            frame[f"{prefix}_{col}"] = sig & worse if prefix == "vs_best" else sig
        if prefix == "vs_baseline":
            better = np.where(frame["higher_is_better"], frame[f"{prefix}_mean_diff"] > 0,
                              frame[f"{prefix}_mean_diff"] < 0)
            frame[f"{prefix}_direction"] = np.where(
                frame[f"{prefix}_n_users"] == 0, "",
                np.where(better, "better", np.where(worse, "worse", "equal")))
    if block.ctr:
        frame = add_relaimpr(frame, baseline)
    return frame[_column_order(frame)]


def empty_table() -> pd.DataFrame:
    """The report table with its columns and no rows (no successful run)."""
    return pd.DataFrame(columns=_column_order(None))


def _column_order(frame: pd.DataFrame | None) -> list[str]:
    head = ["block", "protocol", "group", "model", "sampled", "metric", "metric_name", "k",
            "higher_is_better", "n_seeds", "not_applicable", "seeds", "values", "mean", "std",
            "ci_low", "ci_high", "best", "best_group", "baseline"]
    pairs = [f"{p}_{f}" for p in ("vs_best", "vs_baseline") for f in _PAIR_FIELDS]
    pairs.append("vs_baseline_direction")
    tail = ["seconds_per_epoch", "fit_seconds", "best_epoch", "peak_rss_gib", "peak_cuda_gib"]
    cols = head + pairs + tail
    if frame is not None and "relaimpr" in frame.columns:  # CTR protocols only
        cols = head + ["relaimpr"] + pairs + tail
    return cols if frame is None else [c for c in cols if c in frame.columns]


# -- formatting -------------------------------------------------------------------------------

def fmt(x: Any, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{digits}f}"


def fmt_p(p: Any) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "-"
    return "<1e-4" if p < 1e-4 else f"{p:.4f}"


def value_cell(row: pd.Series, mark_single: bool = True) -> Cell:
    """``mean ± std [ci_low, ci_high]`` (or ``mean (n=1)``) plus significance marks;
    ``mark_single=False`` leaves out ``(n=1)`` (a table where every value is one seed)."""
    if row["n_seeds"] == 0:
        return Cell("n/a" if row.get("not_applicable", False) else "-")
    if row["n_seeds"] == 1:
        text = f"{fmt(row['mean'])}" + (" (n=1)" if mark_single else "")
    else:
        text = (f"{fmt(row['mean'])} ± {fmt(row['std'])} "
                f"[{fmt(row['ci_low'])}, {fmt(row['ci_high'])}]")
    marks = ("†" if row["vs_best_sig_t"] else "") + ("‡" if row["vs_best_sig_wilcoxon"] else "")
    return Cell(text + marks, bold=bool(row["best"]))


def add_block_sections(doc: Document, frame: pd.DataFrame, block: Block, title: str,
                       level: int, alpha: float, confidence: float,
                       baseline_note: str | None) -> None:
    """Metric tables (one per metric name), tests against best and baseline, cost table."""
    doc.heading(level, title)
    doc.para(f"Protocol: {block.describe()}.")
    if block.sampled:
        doc.para("SAMPLED (not comparable to full ranking): these metrics rank each held-out "
                 "item against sampled negatives only (Krichene & Rendle, KDD 2020).")
    groups = block.groups
    doc.table(["group", "model", "seeds", "runs"],
              [[g.label, g.model_name, ", ".join(str(s) for s in g.seeds),
                "; ".join(r.display for r in g.runs)] for g in groups])
    ci = f"{confidence:.0%}"
    doc.heading(level + 1, "Test metrics")
    # one seed everywhere: every cell would say (n=1); the n column and this line say it once
    single = bool((frame["n_seeds"] <= 1).all())
    cell = functools.partial(value_cell, mark_single=not single)
    spread = ("One seed per configuration: single-run values, no std or interval."
              if single else f"Mean ± std over seeds [{ci} t confidence interval]; n=1: a "
              f"single seed, no interval.")
    doc.para(f"{spread} Bold: best in the column. † / ‡: significantly worse than the best "
             f"at alpha={alpha:g} by the paired t-test / Wilcoxon signed-rank test on per-user "
             "values, Holm-corrected over this protocol's comparisons with the best.")
    if "not_applicable" in frame and frame["not_applicable"].astype(bool).any():
        doc.para(NOT_APPLICABLE_NOTE)
    if block.ctr:  # one table, a column per metric (keys have no @K)
        add_ctr_metric_table(doc, frame, groups, level + 2, cell)
    for name in ([] if block.ctr else dict.fromkeys(frame["metric_name"])):
        sub = frame[frame["metric_name"] == name]
        keys = list(dict.fromkeys(sub["metric"]))
        header = ["group", "n"] + [
            f"@{split_key_k(k)}" if split_key_k(k) is not None else k for k in keys]
        rows = []
        for g in groups:
            gsub = sub[sub["group"] == g.label].set_index("metric")
            n = int(gsub["n_seeds"].max()) if len(gsub) else 0
            rows.append([Cell(g.label), Cell(str(n))] + [cell(gsub.loc[k]) for k in keys])
        direction = "higher is better" if sub["higher_is_better"].iloc[0] else \
            "lower is better"
        doc.heading(level + 2, f"{name} ({direction})")
        doc.table(header, rows, align_right=set(range(1, len(header))))
    _tests_table(doc, frame, "vs_best", level + 1, "Paired tests against the best",
                 "Each configuration minus the best of the column (per-user values).")
    if baseline_note is not None:
        doc.heading(level + 1, "Paired tests against the baseline")
        doc.para(baseline_note)
    elif frame["baseline"].iloc[0]:
        base = frame["baseline"].iloc[0]
        _tests_table(doc, frame, "vs_baseline", level + 1,
                     f"Paired tests against the baseline {base}",
                     f"Each configuration minus {base} (per-user values); ▲ significantly "
                     "better, ▼ significantly worse (paired t-test, Holm).")
    doc.heading(level + 1, "Cost")
    first = frame.drop_duplicates("group").set_index("group")
    has_cuda = not first["peak_cuda_gib"].isna().all()
    header = ["group", "n", "seconds / epoch", "fit seconds", "best epoch", "peak RSS GiB"]
    if has_cuda:
        header.append("peak CUDA GiB")
    rows = []
    for g in groups:
        r = first.loc[g.label]
        row = [g.label, str(len(g.runs)), fmt(r["seconds_per_epoch"], 3),
               fmt(r["fit_seconds"], 3), fmt(r["best_epoch"], 1), fmt(r["peak_rss_gib"], 3)]
        if has_cuda:
            row.append(fmt(r["peak_cuda_gib"], 3))
        rows.append(row)
    doc.para("Means over seeds; peak memory is the maximum over seeds.")
    doc.table(header, rows, align_right=set(range(1, len(header))))


def split_key_k(key: str) -> int | None:
    return split_key(key)[1]


def _tests_table(doc: Document, frame: pd.DataFrame, prefix: str, level: int, title: str,
                 note: str) -> None:
    sub = frame[frame[f"{prefix}_n_users"] > 0]
    doc.heading(level, title)
    if sub.empty:
        doc.para("No paired test was possible (one configuration, no shared seed with "
                 "identical data, or no per-user values).")
        return
    doc.para(note + " Users are paired by user_id on identical splits (same seed and data "
             "fingerprint); each user's value is averaged over the shared seeds.")
    ref_col = "best_group" if prefix == "vs_best" else "baseline"
    header = ["metric", "group", "vs", "users", "seeds", "mean diff [CI]", "d", "p (t)",
              "p Holm (t)", "p (W)", "p Holm (W)", "sig"]
    rows = []
    for _, r in sub.iterrows():
        if prefix == "vs_best":
            sig = ("†" if r[f"{prefix}_sig_t"] else "") + ("‡" if r[f"{prefix}_sig_wilcoxon"]
                                                         else "")
        else:
            arrow = "▲" if r["vs_baseline_direction"] == "better" else "▼"
            sig = (arrow + " t" if r[f"{prefix}_sig_t"] else "") + (
                (" " if r[f"{prefix}_sig_t"] else "") + arrow + " W"
                if r[f"{prefix}_sig_wilcoxon"] else "")
        rows.append([
            r["metric"], r["group"], r[ref_col], str(int(r[f"{prefix}_n_users"])),
            r[f"{prefix}_seeds"].replace(";", ", "),
            f"{fmt(r[f'{prefix}_mean_diff'])} [{fmt(r[f'{prefix}_diff_ci_low'])}, "
            f"{fmt(r[f'{prefix}_diff_ci_high'])}]",
            fmt(r[f"{prefix}_cohens_d"], 2), fmt_p(r[f"{prefix}_p_t"]),
            fmt_p(r[f"{prefix}_p_t_holm"]), fmt_p(r[f"{prefix}_p_wilcoxon"]),
            fmt_p(r[f"{prefix}_p_wilcoxon_holm"]), sig,
        ])
    doc.table(header, rows, align_right={3, 5, 6, 7, 8, 9, 10})

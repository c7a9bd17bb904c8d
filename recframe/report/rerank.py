"""The report's section on re-ranking stages (``rerank=llm``): base vs re-ranked.

A run with a stage writes ``per_user_rerank.parquet``: one row per evaluated user
and arm (``base``: the base model's list; ``reranked``: the same list after the
stage), for the same users. Each such run gets a table: the mean of both arms,
the mean difference (re-ranked minus base) with its confidence interval, the
paired t-test and Wilcoxon signed-rank p-values
(:func:`recframe.report.stats.paired_test`) and Holm-adjusted Wilcoxon p-values
over the run's metrics. The stage's cost (backend, model, prompts sent, cache
hits, unparsable answers, seconds per user) is listed with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from recframe.report.collect import Run
from recframe.report.document import Cell, Document
from recframe.report.stats import holm, paired_test
from recframe.results import RERANK_FILE


def stage_runs(runs: Sequence[Run]) -> list[Run]:
    """Successful runs that ran a re-ranking stage and kept its per-user file."""
    return [r for r in runs if r.results.get("rerank") and (r.run_dir / RERANK_FILE).exists()]


def arms(run: Run) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(base, re-ranked) per-user frames of a run, indexed by ``user_id``, same users."""
    frame = pd.read_parquet(run.run_dir / RERANK_FILE)
    frame["user_id"] = frame["user_id"].astype(str)
    base = frame[frame["arm"] == "base"].set_index("user_id")
    reranked = frame[frame["arm"] == "reranked"].set_index("user_id")
    users = base.index.intersection(reranked.index)
    return base.loc[users], reranked.loc[users]


def _f(x: Any, digits: int = 4) -> str:
    return "-" if x is None or x != x else f"{x:.{digits}f}"


def _p(x: Any) -> str:
    return "-" if x is None or x != x else (f"{x:.2e}" if x < 1e-3 else f"{x:.3f}")


def add_rerank_sections(doc: Document, runs: Sequence[Run], keys: Sequence[str] | None,
                        alpha: float, confidence: float) -> None:
    """One table per run with a stage (nothing when there is none)."""
    found = stage_runs(runs)
    if not found:
        return
    doc.heading(1, "Re-ranking stages")
    doc.para("Each run's base lists and re-ranked lists are compared on the same users "
             "(paired): difference = re-ranked minus base; Holm over the run's metrics "
             "(Wilcoxon). Only the top-N is re-ordered, so recall/hit at K >= N cannot change.")
    for run in sorted(found, key=lambda r: r.display):
        rec = run.results["rerank"]
        base, reranked = arms(run)
        metrics = [k for k in base.columns if k not in ("user", "arm")
                   and (not keys or k in keys)]
        results = [paired_test(reranked[k].to_numpy(), base[k].to_numpy(), confidence)
                   for k in metrics]
        adjusted = holm([r.p_wilcoxon for r in results]) if results else []
        doc.heading(2, f"{run.display}: {rec.get('backend')} ({rec.get('model')}), "
                       f"{rec.get('mode')}")
        doc.bullets([
            f"{rec.get('users')} users (max_users={rec.get('max_users')}), top-{rec.get('top_n')}"
            f", {rec.get('repeats_per_user')} prompt(s) per user",
            f"prompts {rec.get('prompts')} (sent {rec.get('prompts_sent')}, cache hits "
            f"{rec.get('cache_hits')}), tokens in/out {rec.get('tokens_in')}/"
            f"{rec.get('tokens_out')}, unparsable answers {rec.get('unparsable')}, users left "
            f"in base order {rec.get('users_fallback_to_base')}",
            f"model load {rec.get('load_seconds')} s, {rec.get('seconds_per_user')} s per user",
        ])
        rows = []
        for key, r, p_holm in zip(metrics, results, adjusted, strict=True):
            sig = p_holm < alpha
            rows.append([key, _f(base[key].mean()), _f(reranked[key].mean()),
                         Cell(f"{r.mean_diff:+.4f} [{_f(r.diff_ci_low)}, {_f(r.diff_ci_high)}]",
                              bold=bool(sig)),
                         _p(r.p_t), _p(r.p_wilcoxon), _p(p_holm)])
        doc.table(["metric", "base", "re-ranked", f"diff [{confidence:.0%} CI]", "p (t)",
                   "p (Wilcoxon)", "p (Holm)"], rows, align_right={1, 2, 3, 4, 5, 6})

"""``recframe report``: compare finished runs across seeds with significance tests.

:func:`build_report` reads every ``results.json`` (and ``per_user.parquet``,
``logs/metrics.csv``) below the given directories, groups runs that differ
only by seed, and writes ``report.md``, ``report.csv``, ``report.html`` and
PNG figures. Output is deterministic: the same runs give byte-identical files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from recframe.errors import closest
from recframe.report.collect import (
    IGNORED_KEYS,
    Block,
    Group,
    ReportError,
    Run,
    Skipped,
    find_runs,
    find_unfinished,
    group_runs,
    make_blocks,
    seed_derived_paths,
)
from recframe.report.cross import (
    baseline_checks,
    failed_arm_flags,
    fewer_seed_notes,
    missing_arm_flags,
    rank_table,
    short_protocol,
)
from recframe.report.ctr import DEFAULT_CTR_BASELINE, default_baseline
from recframe.report.ctr import method_notes as ctr_method_notes
from recframe.report.document import Document
from recframe.report.plots import at_k_plot, bar_plot, reliability_plot, training_plot
from recframe.report.privacy import add_privacy_sections
from recframe.report.rerank import add_rerank_sections
from recframe.report.scaling import add_scaling_section, scaling_plot, scaling_table
from recframe.report.stats import WILCOXON_KWARGS, holm, paired_cohens_d, paired_test, summarize
from recframe.report.tables import (
    LOWER_IS_BETTER,
    add_block_sections,
    block_table,
    empty_table,
    metric_keys,
)
from recframe.results import atomic_write

__all__ = ["LOWER_IS_BETTER", "Report", "ReportError", "build_report", "holm",
           "paired_cohens_d", "paired_test", "summarize"]

MD_FILE, CSV_FILE, HTML_FILE = "report.md", "report.csv", "report.html"


@dataclass
class Report:
    """What :func:`build_report` wrote and the numbers behind it."""

    out_dir: Path
    files: list[Path]
    table: pd.DataFrame
    groups: list[Group]
    failed: list[Run]
    warnings: list[str] = field(default_factory=list)
    #: started job dirs without results.json (reason: ``running`` or ``unfinished``)
    unfinished: list[Skipped] = field(default_factory=list)


def _select_metrics(available: list[str], metrics: Sequence[str] | str | None) -> list[str]:
    if metrics is None:
        return available
    if isinstance(metrics, str):
        metrics = [m for m in metrics.split(",")]
    wanted = [m.strip() for m in metrics if m.strip()]
    unknown = [m for m in wanted if m not in available]
    if unknown:
        hint = closest(unknown[0], available)
        raise ReportError(
            f"unknown metric {unknown[0]!r} for --metrics; the runs have: "
            f"{', '.join(available) or '(none)'}" + (f". Did you mean {hint!r}?" if hint else ""))
    return list(dict.fromkeys(wanted))


def _keys_per_block(blocks: Sequence[Block], keys: list[str]) -> list[list[str]]:
    """The metric keys of each block's table.

    A CTR block gets the selected keys its runs report; a ranking block every
    selected key except those only CTR runs report (so a report of ranking runs
    alone is exactly what it was before the CTR protocol existed).
    """
    def reported(ctr: bool) -> set[str]:
        return {k for b in blocks if b.ctr == ctr for g in b.groups for r in g.runs
                for k in r.test_metrics}

    ctr_only = reported(True) - reported(False)
    out = []
    for block in blocks:
        if block.ctr:
            mine = {k for g in block.groups for r in g.runs for k in r.test_metrics}
            out.append([k for k in keys if k in mine])
        else:
            out.append([k for k in keys if k not in ctr_only])
    return out


def _find_baseline(name: str, block: Block) -> Group | None:
    """A group of ``block`` whose label (or, failing that, model name) is ``name``."""
    for g in block.groups:
        if name in (g.label, g.label.removesuffix(" [SAMPLED]")):
            return g
    by_model = [g for g in block.groups if g.model_name == name]
    if len(by_model) > 1:
        raise ReportError(
            f"--baseline {name!r} matches several groups of model {name!r}: "
            + ", ".join(repr(g.label) for g in by_model) + "; pass one of these labels")
    return by_model[0] if by_model else None


def _monitor(block: Block) -> str:
    for g in block.groups:
        for r in g.runs:
            mon = r.protocol.get("monitor")
            if mon:
                return str(mon)
            cfg_mon = (r.config.get("metrics") or {}).get("monitor")
            if cfg_mon:
                return f"val/{cfg_mon}"
    return "val/ndcg@10"


def _first_line(text: str, limit: int = 300) -> str:
    line = next((x for x in str(text).splitlines() if x.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _method_notes(alpha: float, confidence: float, seed_keys: list[str],
                  ignore: Sequence[str]) -> list[str]:
    return [
        "Groups: runs whose resolved configs are equal once seed keys "
        f"({', '.join(seed_keys)}) and run-specific keys ({', '.join(ignore)}) are removed. "
        "A group's label is its model name plus the fewest config values that tell the "
        "groups apart.",
        "Comparability: groups are compared only within one protocol (dataset and raw data, "
        "preprocessing, split name and ratios, candidate policy); runs of one seed are paired "
        "only when their data fingerprints are equal (identical splits).",
        f"Over seeds: mean, sample std (ddof=1) and a {confidence:.0%} confidence interval "
        "from the t distribution with n-1 degrees of freedom (none for n=1).",
        "Paired tests use per-user test values: users are matched by user_id within each "
        "shared seed, each user's value is averaged over the shared seeds, giving one pair "
        "per user (no user counted twice).",
        "Paired t-test: scipy.stats.ttest_rel. Wilcoxon signed-rank: scipy.stats.wilcoxon on "
        "the differences rounded to 12 decimals, "
        + ", ".join(f"{k}={v}" for k, v in WILCOXON_KWARGS.items())
        + " (users with equal values take part in the ranking, then their ranks are "
        "dropped). If all differences are 0 both p-values are 1.",
        "Effect size: paired Cohen's d = mean(diff) / std(diff) (d_z); mean difference with "
        f"a {confidence:.0%} t interval over users.",
        "Holm-Bonferroni: across all comparisons of one table (every metric and group "
        "compared with the best, or with the baseline, within one protocol), separately for "
        f"each test; significant means adjusted p < {alpha:g}.",
        f"Lower is better for: {', '.join(sorted(LOWER_IS_BETTER))}; higher for all others.",
    ]


def _summary_metric(keys: list[str], wanted: str | None,
                    tested: Sequence[str] = ()) -> str | None:
    """``wanted``, else ``ndcg@10`` when reported, else the first metric with paired
    tests (``tested``: e.g. GAUC under the CTR protocol, where AUC is global and has
    no per-user values to test), else the first metric."""
    if wanted is not None:
        if wanted not in keys:
            hint = closest(wanted, keys)
            raise ReportError(f"--summary-metric {wanted!r} is not among the report's metrics "
                              f"({', '.join(keys) or 'none'})"
                              + (f". Did you mean {hint!r}?" if hint else ""))
        return wanted
    if "ndcg@10" in keys:
        return "ndcg@10"
    return next((k for k in keys if k in set(tested)), keys[0] if keys else None)


def _add_summary(doc: Document, blocks: Sequence[Block], frames: Sequence[pd.DataFrame],
                 keys: list[str], wanted: str | None, alpha: float,
                 baseline: str | None, failed: Sequence[Run] = ()) -> list[str]:
    """The summary section (baseline check, cross-dataset ranks); returns the flags."""
    column = "vs_baseline_p_t_holm"
    tested = {str(m) for frame in frames if column in frame
              for m in frame.loc[frame[column].notna(), "metric"]}
    metric = _summary_metric(keys, wanted, tuple(tested))
    datasets = {str(b.signature["dataset"].get("name")) for b in blocks}
    if metric is None or (baseline is None and len(datasets) < 2):
        return []
    doc.heading(1, "Summary")
    flags: list[str] = []
    checks = baseline_checks(blocks, frames, metric, alpha)
    if checks:
        flags = [c.line(metric, alpha) for c in checks if not c.beats]
        doc.heading(2, "Baseline check")
        beaten = sum(c.beats for c in checks)
        doc.para(f"{beaten} of {len(checks)} arm(s) beat their protocol's baseline on "
                 f"{metric} (paired t-test on per-user values, Holm-corrected within each "
                 f"protocol, p < {alpha:g})" + ("." if not flags else "; flagged:"))
        doc.bullets(flags)
        failures = failed_arm_flags(failed)
        if failures:
            doc.para("Runs that failed (see Failed runs below):")
            doc.bullets(failures)
            flags += failures
        absent = missing_arm_flags(blocks, frames, metric, failed)
        if absent:
            doc.para("Arms with no finished run under a protocol they ran under elsewhere:")
            doc.bullets(absent)
            flags += absent
        fewer = fewer_seed_notes(blocks, frames, metric)
        if fewer:
            doc.para("Arms that ran with fewer seeds than their protocol's others "
                     "(wider or no intervals):")
            doc.bullets(fewer)
        missing = [short_protocol(b) for b, f in zip(blocks, frames, strict=True)
                   if not f.empty and "baseline" in f and not str(f["baseline"].iloc[0])]
        if baseline is not None and missing:
            flags.append(f"**FLAG** no baseline {baseline} under: {', '.join(missing)}")
            doc.bullets([flags[-1]])
    if len(datasets) > 1:
        header, rows = rank_table(blocks, frames, metric)
        doc.heading(2, f"Ranks across datasets ({metric})")
        doc.para("Rank of each model within each protocol (1 = best; mean in parentheses) "
                 "and its mean rank over the protocols it ran under. Ranks compare models "
                 "within a protocol only; the significance of each gap is in the protocol's "
                 "own tables.")
        doc.table(header, rows, align_right=set(range(1, len(header))))
    return flags


def build_report(dirs: Sequence[Path | str] | Path | str, out_dir: Path | str | None = None,
                 baseline: str | None = None, metrics: Sequence[str] | str | None = None,
                 alpha: float = 0.05, confidence: float = 0.95, plots: bool = True,
                 ignore: Sequence[str] = (), summary_metric: str | None = None) -> Report:
    """Build the report for every run below ``dirs`` and write it to ``out_dir``.

    ``out_dir`` defaults to ``<first dir>/report``. ``baseline`` is a group
    label or a model name (without one, a CTR protocol is compared with its
    ``lr`` model, if it has exactly one group of it); ``metrics`` restricts
    the tables, tests and plots to these keys (``"ndcg@10,recall@10"`` or a
    list); ``ignore`` adds config
    key patterns (fnmatch on dotted keys) that do not distinguish groups.
    ``summary_metric`` (default ``ndcg@10`` when the runs report it) is the metric of
    the summary: the baseline check (every arm that does not significantly beat its
    protocol's baseline is flagged) and, over several datasets, each arm's rank per
    protocol and its mean rank.
    Failed runs are listed, never fatal. Raises :class:`ReportError` when no
    run is found or an option does not match the runs.
    """
    if isinstance(dirs, (str, Path)):
        dirs = [dirs]
    dirs = [Path(d) for d in dirs]
    if not dirs:
        raise ReportError("recframe report: give at least one directory of runs")
    if not 0 < alpha < 1 or not 0 < confidence < 1:
        raise ReportError(f"alpha and confidence must be in (0, 1); got {alpha}, {confidence}")
    out = Path(out_dir) if out_dir is not None else dirs[0] / "report"

    runs, skipped = find_runs(dirs)
    unfinished = find_unfinished(dirs)
    if not runs and not skipped and not unfinished:
        raise ReportError("no results.json found below " + ", ".join(map(str, dirs)))
    ok = [r for r in runs if r.status == "ok"]
    failed = [r for r in runs if r.status != "ok"]
    groups, warnings = group_runs(ok, ignore)
    blocks, block_warnings = make_blocks(groups)
    warnings += block_warnings
    available = metric_keys(groups)
    keys = _select_metrics(available, metrics) if groups else []
    block_keys = _keys_per_block(blocks, keys)

    baselines: list[Group | None] = [None] * len(blocks)
    baseline_notes: list[str | None] = [None] * len(blocks)
    if baseline is not None and groups:
        baselines = [_find_baseline(baseline, b) for b in blocks]
        if not any(baselines):
            labels = sorted({g.label for g in groups} | {g.model_name for g in groups})
            hint = closest(baseline, labels)
            raise ReportError(f"--baseline {baseline!r} matches no group label or model name; "
                              f"have: {', '.join(labels)}"
                              + (f". Did you mean {hint!r}?" if hint else ""))
        baseline_notes = [None if b is not None else
                          f"The baseline {baseline} was not run under this protocol."
                          for b in baselines]
    ctr_default = False
    if baseline is None:  # a CTR protocol compares with the lr model when it has one
        for i, block in enumerate(blocks):
            if block.ctr:
                baselines[i] = default_baseline(block)
                ctr_default = ctr_default or baselines[i] is not None

    frames = [block_table(b, i + 1, block_keys[i], baselines[i], alpha, confidence)
              for i, b in enumerate(blocks)]
    table = pd.concat(frames, ignore_index=True) if frames else empty_table()

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    doc = Document("recframe report")
    doc.para(f"{len(ok)} successful run(s) in {len(groups)} configuration group(s), "
             f"{len(failed)} failed, {len(skipped)} unreadable"
             + (f", {len(unfinished)} not finished (running or interrupted: "
                f"not in the tables)" if unfinished else "") + "; from "
             + ", ".join(str(d) for d in dirs) + ".")
    doc.para(f"Settings: alpha={alpha:g}, confidence={confidence:.0%}, "
             f"baseline={baseline or 'none'}"
             + (f" (CTR protocols: {DEFAULT_CTR_BASELINE})" if ctr_default else "")
             + ", metrics="
             + (", ".join(keys or [str(metrics)]) if metrics is not None else "all") + ".")
    if warnings:
        doc.heading(1, "Warnings")
        doc.bullets(warnings)
    flags = _add_summary(doc, blocks, frames, keys, summary_metric, alpha, baseline, failed)
    warnings += flags
    multi = len(blocks) > 1
    for i, (block, frame) in enumerate(zip(blocks, frames, strict=True)):
        if frame.empty:
            continue
        title = f"Protocol {i + 1}" if multi else "Results"
        if block.ctr:
            title += " (CTR protocol)"
        prefix = f"protocol{i + 1}_" if multi else ""
        add_block_sections(doc, frame, block, title, 1, alpha, confidence, baseline_notes[i])
        scale_metric = _summary_metric(block_keys[i], summary_metric)
        scale = scaling_table(frame, block, scale_metric) if scale_metric else None
        if scale is not None and not scale.empty:
            add_scaling_section(doc, scale, scale_metric)
        if not plots:
            continue
        figures = []
        scaling_png = out / f"{prefix}scaling.png"
        if scale is not None and scaling_plot(scale, scale_metric, scaling_png, confidence):
            figures.append((scaling_png, f"test {scale_metric} vs non-embedding parameters, "
                                         f"training seconds and FLOPs"))
        bars = out / f"{prefix}metrics_bars.png"
        if bar_plot(frame, block, block_keys[i], bars, confidence):
            figures.append((bars, f"test metrics with {confidence:.0%} CI"))
        atk = out / f"{prefix}metrics_at_k.png"
        if at_k_plot(frame, block, atk):
            figures.append((atk, "metric@K curves"))
        curves = out / f"{prefix}training_curves.png"
        if training_plot(block, _monitor(block), curves):
            figures.append((curves, "training curves"))
        reliability = out / f"{prefix}reliability.png"
        if block.ctr and reliability_plot(block, reliability):
            figures.append((reliability, "reliability diagrams (calibration)"))
        if figures:
            doc.heading(2, "Figures")
            for path, alt in figures:
                doc.image(path, alt)
                written.append(path)
    add_rerank_sections(doc, ok, keys if metrics is not None else None, alpha, confidence)
    written += add_privacy_sections(doc, ok, out, confidence, plots)
    if unfinished:
        doc.heading(1, "Unfinished runs")
        doc.para("Started but without results yet: `running` (a process holds the job's "
                 "lock) or `unfinished` (killed or interrupted: resume it with `recframe "
                 "run resume=<run dir>`, or rerun the sweep). Rerun this report when they end.")
        doc.table(["run", "status"], [[u.display, u.reason] for u in unfinished])
    if failed or skipped:
        doc.heading(1, "Failed runs")
        rows = []
        for r in failed:
            err = r.results.get("error") or {}
            rows.append([r.display, r.model_name, str(r.seed), r.status,
                         str(err.get("type", "")), _first_line(err.get("message", ""))])
        for s in skipped:
            rows.append([s.display, "?", "?", "unreadable", "results.json",
                         _first_line(s.reason)])
        doc.table(["run", "model", "seed", "status", "error", "message"], rows)
    doc.heading(1, "Method")
    seed_keys = sorted(seed_derived_paths(ok)) if ok else ["seed"]
    notes = _method_notes(alpha, confidence, seed_keys, [*IGNORED_KEYS, *ignore])
    if any(b.ctr for b in blocks):
        notes += ctr_method_notes()
    doc.bullets(notes)

    csv_path, md_path, html_path = out / CSV_FILE, out / MD_FILE, out / HTML_FILE
    atomic_write(csv_path, lambda tmp: table.to_csv(tmp, index=False, lineterminator="\n"))
    md = doc.to_markdown()
    atomic_write(md_path, lambda tmp: tmp.write_text(md, encoding="utf-8"))
    page = doc.to_html(out)
    atomic_write(html_path, lambda tmp: tmp.write_text(page, encoding="utf-8"))
    written = [md_path, csv_path, html_path, *written]
    return Report(out, written, table, groups, failed, warnings, unfinished)

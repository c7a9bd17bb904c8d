"""``recframe report DIR [DIR ...]``: argument parsing and the command itself."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from rich.console import Console


def add_report_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The ``report`` options, for a stand-alone parser or an argparse sub-parser."""
    parser.add_argument("dirs", nargs="+", metavar="DIR",
                        help="directories searched recursively for runs (results.json)")
    parser.add_argument("--out", default=None, metavar="OUT",
                        help="output directory (default: <first DIR>/report)")
    parser.add_argument("--baseline", default=None, metavar="NAME",
                        help="group label or model name to test every configuration against")
    parser.add_argument("--metrics", default=None, metavar="KEYS",
                        help="comma-separated metric keys, e.g. ndcg@10,recall@10 "
                             "(default: every test metric of the runs)")
    parser.add_argument("--alpha", type=float, default=0.05,
                        help="significance level after Holm correction (default 0.05)")
    parser.add_argument("--confidence", type=float, default=0.95,
                        help="confidence level of the intervals (default 0.95)")
    parser.add_argument("--ignore", action="append", default=[], metavar="KEY",
                        help="config key (fnmatch pattern on dotted keys) that does not "
                             "distinguish groups; repeatable")
    parser.add_argument("--summary-metric", default=None, metavar="KEY",
                        help="metric of the summary: the baseline check and the ranks across "
                             "datasets (default: ndcg@10 when the runs report it)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG figures")
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recframe report",
        description="Compare finished runs: mean ± std and confidence intervals over seeds, "
                    "paired significance tests on per-user values, plots. Writes report.md, "
                    "report.csv, report.html and PNGs.")
    return add_report_arguments(parser)


def run_report(args: argparse.Namespace, console: Console | None = None) -> int:
    """Build the report from parsed arguments; ReportError propagates (the CLI prints it)."""
    from recframe.report import build_report

    console = console or Console()
    report = build_report(args.dirs, out_dir=args.out, baseline=args.baseline,
                          metrics=args.metrics, alpha=args.alpha, confidence=args.confidence,
                          plots=not args.no_plots, ignore=args.ignore,
                          summary_metric=args.summary_metric)
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    console.print(f"{len(report.groups)} group(s), {len(report.failed)} failed run(s); wrote "
                  f"{report.out_dir}/report.md, report.csv, report.html", highlight=False,
                  soft_wrap=True)
    return 0


def report_command(argv: Sequence[str], console: Console | None = None) -> int:
    """``recframe report ARGS``: parse ``argv`` and build the report."""
    return run_report(build_parser().parse_args(list(argv)), console)

"""Print a run's metrics as a table at the end of ``recframe run``."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from recframe.eval.evaluator import parse_metric_key


def _cell(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def metrics_table(metrics: dict[str, float | None], title: str) -> Table:
    """Rows = metric names, columns = cut-offs K; metrics without a cut-off (the CTR
    protocol's auc, gauc, logloss, ...) as one ``value`` column."""
    if not any("@" in k for k in metrics):
        table = Table(title=title)
        table.add_column("metric")
        table.add_column("value", justify="right")
        for key, value in metrics.items():
            table.add_row(key, _cell(value))
        return table
    parsed = [(parse_metric_key(k), v) for k, v in metrics.items()]
    names = list(dict.fromkeys(n for (n, _), _ in parsed))
    ks = sorted({k for (_, k), _ in parsed})
    table = Table(title=title)
    table.add_column("metric")
    for k in ks:
        table.add_column(f"@{k}", justify="right")
    values = {key: v for key, v in parsed}
    for name in names:
        table.add_row(name, *[_cell(values[(name, k)]) if (name, k) in values else "-"
                              for k in ks])
    return table


def print_summary(results: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    test = results.get("metrics", {}).get("test") or {}
    cfg = results.get("config", {})
    title = (f"test metrics: {cfg.get('model', {}).get('name')} on "
             f"{cfg.get('dataset', {}).get('name')} (best epoch {results.get('best_epoch')})")
    candidates = results.get("protocol", {}).get("candidates", {})
    if candidates.get("policy") == "sampled":
        title += (f" [SAMPLED: {candidates['num_negatives']} {candidates['sampling']} negatives"
                  " per item, not comparable to full ranking]")
    if test:
        console.print(metrics_table(test, title))
    if results.get("protocol", {}).get("kind") == "ctr":
        console.print("CTR protocol: every labeled impression of the test part scored once")
    audit = (results.get("privacy") or {}).get("audit") or {}
    for name, value in (audit.get("metrics") or {}).items():
        ci = (audit.get(name) or {}).get("ci95")
        console.print(f"{name}: {_cell(value)}" + (f" [95% CI {ci[0]:.3f}, {ci[1]:.3f}]"
                                                    if ci else "")
                      + (f" (n/a: {audit['not_applicable']})" if value is None else ""))
    eps = (results.get("privacy") or {}).get("epsilon", "absent")
    if eps != "absent":
        console.print(f"privacy: {results['privacy']['name']}, epsilon spent "
                      f"{'inf' if eps is None else eps}")
    if results.get("not_applicable"):
        console.print(f"n/a: {results['not_applicable']['reason']}")
    console.print(f"results: {results.get('run_dir')}/results.json")

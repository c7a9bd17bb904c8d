"""One Markdown table of test NDCG@10 per dataset and protocol from a report's CSV.

    python experiments/bench/families_summary.py experiments/results/families_multi/report.csv

Mean ± sample std over seeds (none for one seed), the number of seeds, and the
Holm-corrected paired t-test p-value against the report's baseline (Pop), best first
within each protocol. Every figure is a column of ``report.csv``; this only reshapes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd


def _protocol(text: str) -> tuple[str, str]:
    dataset = text.split(",")[0].removeprefix("dataset ").split(" (")[0]
    split = "leave-one-out" if "leave_one_out" in text else "random 80/10/10"
    return dataset, split


def _p_value(row: pd.Series) -> str:
    if not isinstance(row["baseline"], str) or row["group"] == row["baseline"]:
        return "–"
    p = float(row["vs_baseline_p_t_holm"])
    if p != p:
        return "n/a"
    return "< 1e-300" if p == 0 else f"{p:.0e}"


def summary_table(csv_path: Path, metric: str = "ndcg@10") -> str:
    frame = pd.read_csv(csv_path)
    frame = frame[frame["metric"] == metric]
    rows = []
    for _, row in frame.iterrows():
        dataset, split = _protocol(str(row["protocol"]))
        std = f" ± {row['std']:.4f}" if row["n_seeds"] >= 2 else ""
        rows.append((dataset, split, -float(row["mean"]), str(row["model"]),
                     f"{row['mean']:.4f}{std}", int(row["n_seeds"]), _p_value(row)))
    rows.sort()
    lines = [f"| dataset | protocol | model | {metric} | seeds | Holm p vs baseline |",
             "|---|---|---|---:|---:|---:|"]
    lines += [f"| {d} | {s} | {m} | {v} | {n} | {p} |" for d, s, _, m, v, n, p in rows]
    ran: dict[tuple[str, str], set[str]] = {}
    for d, s, _, m, *_rest in rows:
        ran.setdefault((d, s), set()).add(m)
    absent = []
    for (d, s), models in sorted(ran.items()):
        elsewhere = set().union(*(m for (d2, s2), m in ran.items() if s2 == s and d2 != d))
        absent += [f"- **no result**: {m} on {d} ({s}; it ran on other datasets)"
                   for m in sorted(elsewhere - models)]
    if absent:
        lines += ["", *absent]
    return "\n".join(lines)


if __name__ == "__main__":
    print(summary_table(Path(sys.argv[1]), *(sys.argv[2:3] or [])))

"""What pretrained item text adds to each model: one Markdown table.

    python experiments/bench/text_features_summary.py outputs/text_features/main \
        [more sweep dirs] [--metric ndcg@10] [--out experiments/results/text_features/table.md]

Reads every finished run (``results.json`` + ``per_user.parquet``) below the dirs,
groups them by dataset, split, model and ``model.item_text``, and compares ``init``,
``add`` (ID-embedding models) and ``field`` (click models) with ``none`` (the same
model without text) on the same users: the mean test metric
over seeds, the difference, and the paired t-test over users (each user's value
averaged over the shared seeds; Holm-corrected over all comparisons of a dataset),
with ``recframe.report.stats`` — the tests of ``recframe report``. Costs: the text
encoding seconds (0 when read from the cache) and fit seconds (peak memory is not
compared: the jobs of one Hydra sweep share a process, so its peak is the sweep's).
Runs without ``item_text`` in their model config (pop, content) are listed as
references.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recframe.report.stats import holm, paired_test, paired_users

MODES = ("none", "init", "add", "field")
TEXT_MODES = MODES[1:]


def collect(dirs: list[Path]) -> dict[tuple[str, str, str, str], list[dict[str, Any]]]:
    """``(dataset, split, model, mode) -> [run, ...]`` over finished runs."""
    groups: dict[tuple[str, str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for root in dirs:
        for path in sorted(root.rglob("results.json")):
            results = json.loads(path.read_text())
            if results.get("status") != "ok" or not (path.parent / "per_user.parquet").exists():
                continue
            cfg = results["config"]
            model = cfg["model"]
            mode = str(model.get("item_text")) if "item_text" in model else "-"
            key = (cfg["dataset"]["name"], cfg["split"]["name"], model["name"], mode)
            groups[key].append({"seed": str(cfg.get("seed", 0)), "results": results,
                                "per_user": pd.read_parquet(path.parent / "per_user.parquet")})
    return groups


def _mean(runs: list[dict[str, Any]], metric: str) -> float:
    return float(np.mean([r["results"]["metrics"]["test"][metric] for r in runs]))


def _cost(runs: list[dict[str, Any]]) -> tuple[float, float]:
    encode = [((r["results"].get("item_text") or {}).get("encode_seconds") or 0.0) for r in runs]
    fit = [r["results"]["timings"]["fit"] for r in runs]
    return max(encode), float(np.mean(fit))


def summary(dirs: list[Path], metric: str = "ndcg@10") -> str:
    groups = collect(dirs)
    rows: list[dict[str, Any]] = []
    for (dataset, split, model, mode), runs in groups.items():
        if mode not in ("none", "-"):
            continue
        row: dict[str, Any] = {"dataset": dataset, "split": split, "model": model,
                               "none": _mean(runs, metric), "seeds": len(runs),
                               "cost_none": _cost(runs)}
        for other in TEXT_MODES:
            cand = groups.get((dataset, split, model, other))
            if mode == "-" or not cand:
                continue
            a, b, used = paired_users({r["seed"]: r["per_user"] for r in cand},
                                      {r["seed"]: r["per_user"] for r in runs}, metric)
            test = paired_test(a, b)
            row[other] = (_mean(cand, metric), test.mean_diff, test.p_t, len(used))
            row[f"cost_{other}"] = _cost(cand)
        rows.append(row)
    for dataset in {r["dataset"] for r in rows}:  # Holm within each dataset
        cells = [(r, m) for r in rows if r["dataset"] == dataset for m in TEXT_MODES
                 if m in r]
        adjusted = holm([r[m][2] for r, m in cells]) if cells else []
        for (r, m), p in zip(cells, adjusted, strict=True):
            r[m] = (*r[m][:2], float(p), r[m][3])
    rows.sort(key=lambda r: (r["dataset"], r["split"], -r["none"]))

    def cell(r: dict[str, Any], m: str) -> str:
        if m not in r:
            return "–"
        mean, diff, p, _ = r[m]
        mark = " ▲" if p < 0.05 and diff > 0 else (" ▼" if p < 0.05 and diff < 0 else "")
        p_text = "n/a" if p != p else ("< 1e-300" if p == 0 else f"{p:.0e}")
        return f"{mean:.4f} ({diff:+.4f}, p {p_text}){mark}"

    used = [m for m in TEXT_MODES if any(m in r for r in rows)] or ["init", "add"]
    shown = ("none", *used)
    lines = ["| dataset | split | model | seeds | none | "
             + " | ".join(f"{m} (Δ, Holm p)" for m in used)
             + f" | encode s | fit s {' / '.join(shown)} |",
             "|---|---|---|---:|---:|" + "---:|" * len(used) + "---:|---:|"]
    for r in rows:
        costs = [r.get(f"cost_{m}") for m in shown]
        encode = max((c[0] for c in costs if c), default=0.0)
        fits = " / ".join(f"{c[1]:.0f}" if c else "–" for c in costs)
        lines.append(f"| {r['dataset']} | {r['split']} | {r['model']} | {r['seeds']} | "
                     f"{r['none']:.4f} | " + " | ".join(cell(r, m) for m in used)
                     + f" | {encode:.1f} | {fits} |")
    return "\n".join(lines) + (
        f"\n\nTest {metric}, mean over seeds. Δ: {'/'.join(used)} minus none (the same "
        f"model without text), the mean of per-user differences over the users with a value "
        f"in both (a metric that weights users, such as GAUC by impressions, can differ "
        f"from it in the means); p: paired t-test over users (values averaged over the shared "
        f"seeds), Holm-corrected within each dataset; ▲/▼: significant gain/loss (p < 0.05). "
        f"encode s: the text encoding of the first run (later runs read the cache).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", type=Path)
    parser.add_argument("--metric", default="ndcg@10")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    text = summary(args.dirs, args.metric)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()

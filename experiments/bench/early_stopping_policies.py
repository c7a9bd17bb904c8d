"""Replay early-stopping policies on logged validation curves.

Every run logs its validation metric after each epoch (``logs/metrics.csv``). This
script replays a policy (``patience`` epochs without improvement, never stopping
before ``min_epochs``) on those curves and reports where it would have stopped and
the validation value of the epoch it would have kept, next to what the run itself
did. It answers "would the old global default (patience 5, no minimum) have stopped
this model too early?" from measured curves, without training again. A replayed
policy can only be judged up to the epoch where the real run stopped: policies that
would have trained longer are reported as such (``beyond``).

    python experiments/bench/early_stopping_policies.py outputs/families_multi/ml_syn \\
        --policies 5:0,10:10,20:20 --out experiments/results/families_multi/early_stopping.md
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd


def validation_curve(run_dir: Path, monitor: str) -> list[float]:
    """The monitored validation value after each epoch (in epoch order)."""
    frame = pd.read_csv(run_dir / "logs" / "metrics.csv")
    if monitor not in frame:
        return []
    rows = frame.dropna(subset=[monitor]).drop_duplicates("epoch", keep="last")
    return rows.sort_values("epoch")[monitor].astype(float).tolist()


def replay(curve: Sequence[float], patience: int, min_epochs: int) -> tuple[int, int, bool]:
    """``(stop_epoch, kept_epoch, beyond)`` of a policy on ``curve`` (0-based epochs).

    Lightning's rule: stop after ``patience`` validations without an improvement of
    the best value, but not before ``min_epochs`` epochs ran. ``beyond`` is True when
    the policy would have continued past the end of the logged curve.
    """
    best, best_epoch, waited = -math.inf, 0, 0
    for epoch, value in enumerate(curve):
        if value > best:
            best, best_epoch, waited = value, epoch, 0
        else:
            waited += 1
        if waited >= patience and epoch + 1 >= min_epochs:
            return epoch, best_epoch, False
    return len(curve) - 1, best_epoch, True


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub Markdown table of ``frame`` (floats to 4 decimals)."""
    def cell(value: object) -> str:
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |",
             "|" + "|".join("---" for _ in frame.columns) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |"
              for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", type=Path, help="sweep directories of runs")
    parser.add_argument("--policies", default="5:0,10:10,20:20",
                        help="patience:min_epochs pairs, comma-separated")
    parser.add_argument("--monitor", default="val/ndcg@10")
    parser.add_argument("--models", default="gru4rec,sasrec,bert4rec,bpr",
                        help="models to replay (comma-separated)")
    parser.add_argument("--out", type=Path, default=None, help="write a Markdown table here")
    args = parser.parse_args(argv)
    policies = [tuple(int(x) for x in p.split(":")) for p in args.policies.split(",")]
    wanted = set(args.models.split(","))
    rows = []
    for root in args.dirs:
        for results in sorted(root.glob("*/results.json")):
            record = json.loads(results.read_text())
            cfg = record.get("config") or {}
            model = (cfg.get("model") or {}).get("name")
            if record.get("status") != "ok" or model not in wanted:
                continue
            curve = validation_curve(results.parent, args.monitor)
            if not curve:
                continue
            row = {"dataset": cfg["dataset"]["name"], "model": model, "seed": cfg.get("seed"),
                   "epochs run": len(curve), "best epoch": int(record.get("best_epoch") or 0),
                   "best valid": max(curve)}
            for patience, min_epochs in policies:
                stop, kept, beyond = replay(curve, patience, min_epochs)
                tag = f"p{patience}/min{min_epochs}"
                row[f"{tag} stop"] = f">{stop}" if beyond else str(stop)
                row[f"{tag} valid"] = curve[kept]
            rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        print("no runs of", ", ".join(sorted(wanted)))
        return 1
    frame = frame.sort_values(["dataset", "model", "seed"])
    text = markdown_table(frame)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            f"Replayed on `{args.monitor}` curves of "
            + ", ".join(f"`{d.as_posix()}`" for d in args.dirs)
            + " (experiments/bench/early_stopping_policies.py). Epochs are 0-based; "
            "`>n`: the policy would have trained past the logged curve.\n\n" + text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

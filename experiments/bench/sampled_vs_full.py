"""The same trained weights under two protocols: full ranking and sampled candidates.

Older papers rank each held-out item against 100 sampled negatives (the SASRec paper:
HR@10 0.7410, NDCG@10 0.5360 on Amazon Games). Those numbers are not comparable to
full-ranking ones (Krichene & Rendle, "On Sampled Metrics for Item Recommendation",
KDD 2020). This script takes finished full-ranking runs, re-tests each run's best
checkpoint with ``evaluation=sampled`` (``num_negatives`` items the user has not seen,
drawn per user from the run's seed) and prints both side by side, with the paper's
figures where the dataset is the paper's.

    python experiments/bench/sampled_vs_full.py outputs/families_multi/games_s0 \\
        --models sasrec,gru4rec,bert4rec,pop \\
        --out experiments/results/families_multi/sampled_vs_full.md
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from omegaconf import OmegaConf

#: published sampled-protocol figures (100 uniform negatives), by (dataset, model)
PUBLISHED = {
    ("amazon-games", "sasrec"): ("Kang & McAuley, ICDM 2018, Table III", 0.7410, 0.5360),
}


def sampled_config(config: dict, num_negatives: int, sampling: str) -> dict:
    """A run's resolved config with its evaluation switched to sampled candidates."""
    evaluation = dict(config.get("evaluation") or {})
    evaluation.update({"protocol": "ranking", "candidates": "sampled",
                       "num_negatives": num_negatives, "sampling": sampling,
                       "seed": config.get("seed", 0)})
    return {**config, "evaluation": evaluation}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", type=Path, help="sweep directories of runs")
    parser.add_argument("--models", default="sasrec,gru4rec,bert4rec,pop")
    parser.add_argument("--split", default="leave_one_out")
    parser.add_argument("--num-negatives", type=int, default=100)
    parser.add_argument("--sampling", default="uniform")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    from recframe.runner import evaluate_checkpoint

    wanted = set(args.models.split(","))
    lines = ["| dataset | model | seed | full HR@10 | full NDCG@10 | sampled HR@10 | "
             "sampled NDCG@10 | published (sampled) |", "|---|---|---:|---:|---:|---:|---:|---|"]
    for root in args.dirs:
        for path in sorted(root.glob("*/results.json"), key=lambda p: p.parent.name):
            record = json.loads(path.read_text())
            config = record.get("config") or {}
            model = (config.get("model") or {}).get("name")
            split = (config.get("split") or {}).get("name")
            if record.get("status") != "ok" or model not in wanted or split != args.split:
                continue
            ckpt = record.get("best_checkpoint")
            cfg = OmegaConf.create(sampled_config(config, args.num_negatives, args.sampling))
            if ckpt is None or not Path(ckpt).exists():
                ckpt = next(iter(sorted((path.parent / "checkpoints").glob("best-*.ckpt"))), None)
            if ckpt is None:
                print(f"{path.parent}: no checkpoint, skipped")
                continue
            metrics, _ = evaluate_checkpoint(cfg, ckpt)
            full = record["metrics"]["test"]
            dataset = config["dataset"]["name"]
            ref = PUBLISHED.get((dataset, model))
            published = f"HR@10 {ref[1]:.4f}, NDCG@10 {ref[2]:.4f} ({ref[0]})" if ref else "–"
            lines.append(f"| {dataset} | {model} | {config.get('seed')} | "
                         f"{full['hit@10']:.4f} | {full['ndcg@10']:.4f} | "
                         f"{metrics['hit@10']:.4f} | {metrics['ndcg@10']:.4f} | {published} |")
            print(lines[-1], flush=True)
    text = "\n".join(lines)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            f"Best checkpoints of `{', '.join(d.as_posix() for d in args.dirs)}` re-tested with "
            f"{args.num_negatives} {args.sampling} negatives per user "
            "(experiments/bench/sampled_vs_full.py). Same weights, two protocols.\n\n"
            + text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

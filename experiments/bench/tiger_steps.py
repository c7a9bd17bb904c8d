"""TIGER's validation NDCG@10 against training steps (docs/tiger.md, section 6).

Builds the run exactly as ``recframe run`` would (``model=tiger``, ML-100K, ratings >= 4,
leave-one-out by time; extra ``key=value`` overrides such as
``model.semantic_ids.source=svd`` are passed on), trains with the model's Adam settings
over the same per-epoch prefix rows as a run, and every ``--every`` steps ranks every
validation user with the beam (seen items masked) and prints NDCG@10 and HR@10 (the
full-ranking protocol). The test part is scored once at the end. Not part of
``run_all.py``: minutes per 100 steps on a 2-core machine.

    RECFRAME_DATA_DIR=../shared/data OMP_NUM_THREADS=1 \\
        python experiments/bench/tiger_steps.py --steps 600 --every 100 [overrides...]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from recframe.hydra_app import compose_config
from recframe.runner import build_experiment


def ranked(model, exp, part: str, k: int = 10) -> tuple[float, float]:
    """Mean NDCG@k and HR@k over the users of ``part`` (the full-ranking protocol)."""
    model.eval()
    users = exp.datamodule.eval_set(part)
    discount = 1.0 / torch.log2(torch.arange(2, k + 2, dtype=torch.float64))
    ndcg = hits = 0.0
    with torch.no_grad():
        for start in range(0, len(users), 512):
            batch = users.__getitems__(list(range(start, min(len(users), start + 512))))
            scores = model.score(batch["users"], batch)
            scores[batch["seen_rows"], batch["seen_cols"]] = -torch.inf
            truth = torch.zeros_like(scores, dtype=torch.bool)
            truth[batch["truth_rows"], batch["truth_cols"]] = True
            hit = truth.gather(1, scores.topk(k, dim=1).indices).double()
            ideal = discount.cumsum(0)[truth.sum(1).clamp(1, k) - 1]  # the best possible DCG
            ndcg += float(((hit * discount).sum(1) / ideal).sum())
            hits += float(hit.amax(1).sum())
    model.train()
    return ndcg / len(users), hits / len(users)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("overrides", nargs="*", help="config overrides, key=value")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = compose_config(["dataset=ml-100k", "preprocess=implicit", "split=leave_one_out",
                          "model=tiger", "logger=none", *args.overrides])
    exp = build_experiment(cfg)
    model = exp.model
    model.prepare(exp.data)
    optimizer = torch.optim.Adam(model.parameters(), lr=float(cfg.model.lr))
    rows = exp.datamodule.make_train_set()
    print(f"{rows.n} prefix rows, {len(rows)} batches per epoch", flush=True)
    step, epoch, started, losses = 0, 0, time.time(), []
    model.train()
    while step < args.steps:
        rows.set_epoch(epoch)
        for b in range(len(rows)):
            loss = model.loss(rows[b])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            step += 1
            if step % args.every == 0 or step == args.steps:
                ndcg, hr = ranked(model, exp, "valid")
                print(f"step {step} epoch {epoch} loss {np.mean(losses[-args.every:]):.3f} "
                      f"valid ndcg@10 {ndcg:.4f} hit@10 {hr:.4f} "
                      f"({time.time() - started:.0f} s)", flush=True)
            if step >= args.steps:
                break
        epoch += 1
    ndcg, hr = ranked(model, exp, "test")
    print(f"test ndcg@10 {ndcg:.4f} hit@10 {hr:.4f}", flush=True)


if __name__ == "__main__":
    main()

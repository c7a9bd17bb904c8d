"""LLM re-ranking with the local SmolLM2 backend: seconds per user, load time, and what
it does to the base model's metrics.

Runs ``recframe run model=bpr rerank=llm rerank.backend=smollm2
rerank.max_users=N rerank.cache=false`` (the issue's acceptance command, with the
answer cache off so every prompt reaches the model) on MovieLens-100K as a
subprocess, and reads its ``results.json``: the stage's seconds per user (model
time only: prompts built, scored and parsed, load excluded), the model load, tokens
read, and base vs re-ranked NDCG@10 on the same users with the paired p-values.
Pointwise mode (the default): one forward pass per user over the shared history
prefix, whose key/value cache is reused for a batch of 20 candidate questions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

NAME = "llm_rerank"


def run(users: int, extra: list[str], out: Path) -> dict[str, Any]:
    cmd = [str(Path(sys.executable).with_name("recframe")), "run", "model=bpr", "rerank=llm",
           "rerank.backend=smollm2", f"rerank.max_users={users}", "rerank.cache=false",
           "logger=none", f"hydra.run.dir={out}", *extra]
    env = {**os.environ, "TQDM_DISABLE": "1"}
    subprocess.run(cmd, check=True, env=env, cwd=common.ROOT, stdout=subprocess.DEVNULL)
    return json.loads((out / "results.json").read_text())


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__.splitlines()[0], "5 users and 2 BPR epochs: a smoke run")
    p.add_argument("--users", type=int, default=100, help="rerank.max_users")
    args = p.parse_args(argv)
    extra = ["trainer.max_epochs=2"] if args.small else []
    users = 5 if args.small else args.users
    with tempfile.TemporaryDirectory(prefix="recframe-llm-bench-") as tmp:
        results = run(users, extra, Path(tmp) / "run")
    rec = results["rerank"]
    paired = rec["paired"]["ndcg@10"]
    figures = {
        "rerank_smollm2_s_per_user": rec["seconds_per_user"],
        "rerank_smollm2_load_s": rec["load_seconds"],
        "rerank_smollm2_base_ndcg@10": round(rec["metrics"]["base"]["ndcg@10"], 4),
        "rerank_smollm2_reranked_ndcg@10": round(rec["metrics"]["reranked"]["ndcg@10"], 4),
    }
    keys = ("ndcg@10", "recall@10", "mrr@10")
    rows = [[arm, *(round(rec["metrics"][arm][k], 4) for k in keys)]
            for arm in ("base", "reranked")]
    md = (f"BPR-MF on MovieLens-100K, then SmolLM2-135M-Instruct ({rec['model']}, GGUF via "
          f"transformers, CPU) re-ranks the top-{rec['top_n']} of {rec['users']} test users "
          f"({rec['mode']}, {rec['target']}). Model load {rec['load_seconds']} s; "
          f"{rec['seconds_per_user']} s per user ({rec['prompts_sent']} prompts, "
          f"{rec['tokens_in']} tokens read); history truncated for "
          f"{rec['history_truncated_users']} users.\n\n"
          + common.md_table(["arm", "NDCG@10", "Recall@10", "MRR@10"], rows)
          + f"\n\nRe-ranked minus base NDCG@10: {paired['mean_diff']:+.4f} "
            f"[{paired['ci_low']:+.4f}, {paired['ci_high']:+.4f}], paired t p = "
            f"{paired['p_t']:.3g}, Wilcoxon p = {paired['p_wilcoxon']:.3g}. A 135M model "
            f"is the backend that proves the stage runs offline, not a strong ranker.")
    common.write_fragment(NAME, args.out, figures, md,
                          {"rerank": {k: v for k, v in rec.items() if k != "paired"},
                           "paired": rec["paired"],
                           "base_test_metrics": results["metrics"]["test"]})
    return 0


if __name__ == "__main__":
    sys.exit(main())

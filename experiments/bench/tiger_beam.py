"""TIGER's constrained beam search: users ranked per second at beam 20 (and 5 and 50).

A TIGER model with conf/model/tiger.yaml's sizes (width 64, 2 encoder and 2 decoder
layers, 10 history items of 4 tokens) over a catalogue of MovieLens-100K's size (1,682
items) with semantic IDs of 3 x 256 codes plus a collision level, as the RQ-VAE gives
them. Timing does not depend on the weights, so they stay at their initialisation and no
data is read. Each measurement is ``model.score`` for a batch of users with full
histories and 20 seen items banned, as the evaluator calls it: encoder, the beam's four
decoder steps (all beams of a user in one block-diagonal decoder sequence), the trie
masks and the padded score matrix. Median of the repeats; one and two threads.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from recframe_generative.semantic_ids import (  # noqa: E402
    SemanticIdSettings,
    add_collision_level,
)
from recframe_generative.tiger import TIGER  # noqa: E402

NAME = "tiger_beam"


def build(n_items: int, beam: int, seed: int = 0) -> TIGER:
    torch.manual_seed(seed)
    model = TIGER(n_items, semantic=SemanticIdSettings(), max_seq_len=10, embedding_dim=64,
                  num_heads=2, encoder_layers=2, decoder_layers=2, ffn_dim=256,
                  beam_size=beam)
    rng = np.random.default_rng(seed)
    # clustered codes, as an RQ-VAE gives: few first-level codes, more below
    base = np.stack([rng.integers(0, 64, n_items), rng.integers(0, 256, n_items),
                     rng.integers(0, 256, n_items)], axis=1)
    model.sem_ids = torch.from_numpy(add_collision_level(base))
    model._after_load()
    return model.eval()


def context(users: int, n_items: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    seq = torch.randint(0, n_items, (users, 10), generator=g)
    seen = torch.randint(0, n_items, (users, 20), generator=g)
    rows = torch.arange(users).repeat_interleave(20)
    return {"seq": seq, "seen_rows": rows, "seen_cols": seen.flatten()}


def time_scoring(model: TIGER, ctx: dict[str, torch.Tensor], repeats: int) -> float:
    users = torch.arange(ctx["seq"].shape[0])
    times = []
    with torch.no_grad():
        model.score(users, ctx)  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            model.score(users, ctx)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--users", type=int, default=512, help="users per scored batch")
    p.add_argument("--items", type=int, default=1682, help="catalogue size")
    p.add_argument("--repeats", type=int, default=3, help="timed batches per case (median)")
    p.add_argument("--threads", default="1,2", help="comma-separated torch thread counts")
    p.add_argument("--beams", default="5,20,50", help="comma-separated beam sizes")
    args = p.parse_args(argv)
    if args.small:
        args.users, args.repeats, args.threads, args.beams = 32, 1, "1", "20"
    figures: dict[str, Any] = {}
    rows, cases = [], []
    ctx = context(args.users, args.items)
    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        for beam in (int(b) for b in args.beams.split(",")):
            model = build(args.items, beam)
            seconds = time_scoring(model, ctx, args.repeats)
            per_s = round(args.users / seconds, 1)
            produced = model.beam_items / max(model.beam_users, 1)
            rows.append([beam, threads, round(seconds, 3), per_s, round(produced, 2)])
            cases.append({"beam": beam, "threads": threads, "seconds": seconds,
                          "users_per_s": per_s, "items_per_user": produced})
            if beam == 20:
                figures[f"tiger_beam20_users_per_s_{threads}t"] = per_s
    best = [c["users_per_s"] for c in cases if c["beam"] == 20]
    if best:
        figures["tiger_beam20_users_per_s"] = max(best)
    md = (f"`TIGER.score` for {args.users} users with 10-item histories and 20 seen items, "
          f"over {args.items:,} items with 3 x 256 + collision-level semantic IDs (width 64, "
          f"2 + 2 layers, random weights); median of {args.repeats} batches. "
          "`tiger_beam20_users_per_s` is the faster thread count at beam 20.\n\n"
          + common.md_table(["beam", "threads", "s per batch", "users/s", "items per user"],
                            rows))
    common.write_fragment(NAME, args.out, figures, md,
                          {"users": args.users, "items": args.items, "cases": cases})
    return 0


if __name__ == "__main__":
    sys.exit(main())

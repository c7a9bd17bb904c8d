"""HSTU vs SASRec at equal size: seconds per training epoch and peak memory.

Both models are built as recframe builds them (``recframe_seq``) with the same
width, depth, heads and loss (HSTU's sampled softmax: 128 uniform negatives,
temperature 0.05, L2 norm), so only the encoder differs: HSTU's pointwise SiLU
attention with gating, one fused ``[B, 1, L, L]`` mask and a relative-position
bias, against SASRec's softmax attention (``scaled_dot_product_attention``
through ``nn.TransformerEncoderLayer``) plus feed-forward. SASRec's feed-forward
width is ``d / 2``, which makes the two non-embedding parameter counts equal
within 2% (HSTU: ~5 d^2 per block, SASRec: 4 d^2 + 2 d * ffn); the counts are
printed. An "epoch" is ``steps`` Adam steps on batches of full rows (ML-100K
sizes: 1,682 items; ``rows`` rows of ``length + 1`` items, the positions per
step of recframe's ``batch_size: auto``), the two models' epochs timed in
alternation, median over ``repeats``. Peak memory: each model trains one epoch in
a fresh subprocess; the figure is that process's peak RSS minus its RSS after
building the model (torch's CPU allocator returns little to the OS, so this is
the training step's high-water mark).
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from recframe.api import DataInfo, parameter_counts  # noqa: E402
from recframe.plugin.manager import default_manager  # noqa: E402

NAME = "hstu_vs_sasrec"
N_ITEMS = 1682  # ML-100K
LOSS = {"name": "sampled_softmax", "num_negatives": 128, "temperature": 0.05,
        "negatives": "uniform", "logq_correction": False, "l2_norm": True}


def build(name: str, dim: int, length: int) -> torch.nn.Module:
    params: dict[str, Any] = {"name": name, "max_seq_len": length, "embedding_dim": dim,
                              "num_blocks": 2, "num_heads": 1, "dropout": 0.2, "loss": LOSS}
    if name == "sasrec":
        params["ffn_dim"] = dim // 2
    model = default_manager().models.get(name).build(
        DataInfo(n_users=943, n_items=N_ITEMS, has_timestamps=True), OmegaConf.create(params))
    model.train_rows = "recent"
    return model.train()


def batches(rows: int, length: int, steps: int, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, N_ITEMS, (rows, length + 1), generator=g) for _ in range(steps)]


def epoch(model: torch.nn.Module, opt: torch.optim.Optimizer, data: list[torch.Tensor]) -> float:
    start = time.perf_counter()
    for seq in data:
        loss = model.loss({"seq": seq})
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def rss_gib() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096 / 2**30


def worker(name: str, dim: int, length: int, rows: int, steps: int, threads: int) -> None:
    """One model, one epoch, in this (fresh) process: print its memory high-water mark."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build(name, dim, length)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    data = batches(rows, length, steps)
    base = rss_gib()
    epoch(model, opt, data)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(json.dumps({"peak_gib": peak, "base_gib": base, "train_peak_mib": (peak - base) * 1024}))


def memory(name: str, dim: int, length: int, rows: int, steps: int, threads: int) -> float:
    out = subprocess.run([sys.executable, __file__, "--worker", name, "--dim", str(dim),
                          "--lengths", str(length), "--rows", str(rows), "--steps", str(steps),
                          "--threads", str(threads)], capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["train_peak_mib"]


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--dim", type=int, default=64, help="width d of both models")
    p.add_argument("--lengths", default="50,200", help="sequence lengths (50: ML-100K's "
                   "auto length; 200: the paper's ML-1M length)")
    p.add_argument("--rows", type=int, default=0,
                   help="rows per step (0: 64 at length 50, scaled by 50 / length)")
    p.add_argument("--steps", type=int, default=32, help="Adam steps per epoch")
    p.add_argument("--repeats", type=int, default=5, help="timed epochs per model (median)")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--worker", default="", help=argparse_hidden())
    args = p.parse_args(argv)
    lengths = [int(x) for x in args.lengths.split(",")]
    if args.worker:
        rows = args.rows or max(1, 64 * 50 // lengths[0])
        worker(args.worker, args.dim, lengths[0], rows, args.steps, args.threads)
        return 0
    if args.small:
        args.dim, lengths, args.steps, args.repeats = 16, [20], 3, 2
    torch.set_num_threads(args.threads)
    figures: dict[str, Any] = {}
    rows_md, details = [], {"dim": args.dim, "steps": args.steps, "repeats": args.repeats,
                            "threads": args.threads, "cases": []}
    for length in lengths:
        rows = args.rows or max(1, 64 * 50 // length)
        torch.manual_seed(0)
        models = {n: build(n, args.dim, length) for n in ("hstu", "sasrec")}
        opts = {n: torch.optim.Adam(m.parameters(), 1e-3) for n, m in models.items()}
        data = batches(rows, length, args.steps)
        for n in models:  # warm-up
            epoch(models[n], opts[n], data[:2])
        times: dict[str, list[float]] = {"hstu": [], "sasrec": []}
        for r in range(args.repeats):
            for n in (("hstu", "sasrec") if r % 2 == 0 else ("sasrec", "hstu")):
                times[n].append(epoch(models[n], opts[n], data))
        med = {n: statistics.median(t) for n, t in times.items()}
        mem = {n: memory(n, args.dim, length, rows, args.steps, args.threads) for n in models}
        sizes = {n: parameter_counts(m)["non_embedding_parameters"] for n, m in models.items()}
        ratio = round(med["hstu"] / med["sasrec"], 3)
        mem_ratio = round(mem["hstu"] / mem["sasrec"], 3) if mem["sasrec"] > 0 else None
        suffix = "" if length == lengths[0] else f"_len{length}"
        figures[f"hstu_epoch_s_ratio_vs_sasrec{suffix}"] = ratio
        figures[f"hstu_train_peak_mem_ratio_vs_sasrec{suffix}"] = mem_ratio
        for n in models:
            rows_md.append([length, rows, n, f"{sizes[n]:,}", round(med[n], 3),
                            round(mem[n], 1)])
        details["cases"].append({"length": length, "rows": rows, "seconds": times,
                                 "median_s": med, "train_peak_mib": mem,
                                 "non_embedding_parameters": sizes})
    md = (f"One training epoch ({args.steps} Adam steps, full rows, {N_ITEMS} items, "
          f"sampled softmax with 128 negatives) of HSTU and SASRec at width {args.dim}, "
          f"2 blocks, 1 head, equal non-embedding parameters (SASRec's feed-forward "
          f"d/2), {args.threads} thread(s); median of {args.repeats} epochs each, timed in "
          "alternation. Memory: peak RSS of a fresh process over one epoch minus its RSS "
          "before training.\n\n"
          + common.md_table(["length", "rows/step", "model", "non-emb. params",
                             "s / epoch", "train peak MiB"], rows_md)
          + "\n\n`hstu_epoch_s_ratio_vs_sasrec` = HSTU's seconds per epoch over SASRec's "
          f"(length {lengths[0]}; `_len{lengths[-1]}`: length {lengths[-1]}). HSTU has no "
          "feed-forward sub-layer, no softmax over the attention row and one mask shared "
          "by its blocks; its attention matrix is materialised (``[B, 1, L, L]``), while "
          "SASRec's goes through PyTorch's fused SDPA kernel.")
    common.write_fragment(NAME, args.out, figures, md, details)
    return 0


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    sys.exit(main())

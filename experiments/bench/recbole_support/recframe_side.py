"""The recframe half of ``recbole_compare``: export a split for RecBole, or run recframe.

Runs in the project's ``.venv`` as its own process (so its peak RSS is its own)::

    python recframe_side.py export SPEC.json RESULT.json
    python recframe_side.py run SPEC.json RESULT.json

``export`` (SPEC: a list of ``{out_dir, name, kind, max_len, overrides}``, kind
``general`` or ``sequential``) loads, preprocesses and splits the data exactly as a
run with the same overrides does (``recframe.pipeline.prepare``), then writes the
encoded train/valid/test parts as RecBole atomic files
``OUT_DIR/NAME/NAME.<part>.inter``
(ids are recframe's contiguous ints, used as RecBole tokens). For sequential
models the files hold RecBole's usual augmented form: one row per target item
with the (at most ``MAX_LEN``) items before it in ``item_id_list``; the valid
row's input is the train history, the test row's input the train + valid
history, as recframe's ``sasrec`` reads them. The data fingerprint is recorded
so the driver can check that the recframe run used the very same split.

``run`` (SPEC: ``{threads, run_dir, overrides, floor, repeat_test}``) runs the
experiment through the real path (``recframe.testing.run`` ->
``recframe.runner.run_experiment``) with ``threads`` torch threads and records its
``results.json`` plus the peak RSS; with ``repeat_test`` the test pass is repeated
(warm passes, :func:`repeat_tests`); with ``floor`` it then times the floor of a
test pass (:func:`eval_floor`).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def peak_rss_gib() -> float:
    """Peak resident set size of this process, in GiB (Linux ``ru_maxrss`` is KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)


def _write(path: Path, header: list[str], columns: list[list[str]]) -> None:
    with open(path, "w") as f:
        f.write("\t".join(header) + "\n")
        f.writelines("\t".join(row) + "\n" for row in zip(*columns, strict=True))


def _sequence_rows(indptr: np.ndarray, items: np.ndarray, users: np.ndarray,
                   max_len: int) -> tuple[list[str], list[str], list[str]]:
    """Training rows of RecBole's augmentation: every item after a user's first, with the
    (at most ``max_len``) items before it."""
    out_u: list[str] = []
    out_seq: list[str] = []
    out_i: list[str] = []
    tokens = items.astype(str)
    for u in users:
        seq = tokens[indptr[u]:indptr[u + 1]]
        name = str(u)
        for j in range(1, len(seq)):
            out_u.append(name)
            out_seq.append(" ".join(seq[max(0, j - max_len):j]))
            out_i.append(seq[j])
    return out_u, out_seq, out_i


def _targets(data: Any, kind: str, max_len: int) -> dict[str, int]:
    """Training targets (and rows) per epoch: every train interaction for pairwise
    models; for next-item models, one row per item after a user's first on both sides
    (RecBole's augmentation, recframe's ``train_rows=prefixes``), and, for recframe's
    default ``train_rows=recent``, each user's last ``max_len + 1`` train items (one row
    per user with at least two, every position a target)."""
    n_train = len(data.events["train"].users)
    if kind == "general":
        return {"targets_per_epoch_recframe": n_train, "targets_per_epoch_recbole": n_train}
    lengths = np.diff(data.history(("train",))[0])
    used = lengths[lengths >= 2]
    prefixes = int((used - 1).sum())
    return {"targets_per_epoch_recframe": prefixes, "train_rows_recframe": prefixes,
            "targets_per_epoch_recbole": int(np.maximum(lengths - 1, 0).sum()),
            "targets_per_epoch_recframe_recent": int((np.minimum(used, max_len + 1) - 1).sum()),
            "train_sequences_recframe_recent": len(used)}


def export(out_dir: Path, name: str, kind: str, max_len: int,
           overrides: list[str]) -> dict[str, Any]:
    """Prepare the data as a run would and write RecBole atomic files."""
    from recframe.pipeline import fingerprint, prepare, resolve
    from recframe.plugin.manager import default_manager
    from recframe.testing import compose

    t = time.perf_counter()
    cfg = compose(*overrides)
    plan = resolve(cfg, default_manager())
    data = prepare(cfg, plan).data
    folder = out_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    ev = data.events
    if kind == "general":
        for part in ("train", "valid", "test"):
            _write(folder / f"{name}.{part}.inter", ["user_id:token", "item_id:token"],
                   [ev[part].users.astype(str).tolist(), ev[part].items.astype(str).tolist()])
    else:
        header = ["user_id:token", "item_id_list:token_seq", "item_id:token"]
        train_hist = data.history(("train",))
        both_hist = data.history(("train", "valid"))
        users = np.arange(data.info.n_users)
        _write(folder / f"{name}.train.inter", header,
               list(_sequence_rows(*train_hist, users, max_len)))
        for part, (indptr, items) in (("valid", train_hist), ("test", both_hist)):
            u, i = ev[part].users, ev[part].items
            if len(np.unique(u)) != len(u):
                raise SystemExit(f"{part}: sequential export expects one held-out item per user")
            seqs = [" ".join(items[max(indptr[x], indptr[x + 1] - max_len):indptr[x + 1]]
                             .astype(str)) for x in u]
            _write(folder / f"{name}.{part}.inter", header,
                   [u.astype(str).tolist(), seqs, i.astype(str).tolist()])
    info = {
        "fingerprint": fingerprint(data),
        "n_users": data.info.n_users,
        "n_items": data.info.n_items,
        **{f"n_{p}": len(ev[p].users) for p in ("train", "valid", "test")},
        "n_test_users": int(len(np.unique(ev["test"].users))),
        "files": sorted(str(p) for p in folder.iterdir()),
        **_targets(data, kind, max_len),
        "seconds": round(time.perf_counter() - t, 3),
    }
    return info


def repeat_tests(repeats: int, warm_loops: list[float], first_calls: list[float]) -> None:
    """Make every ``Trainer.test`` call run ``repeats`` more times right after itself
    (same model and data: the warm passes) and append their ``timings.test_loop``
    counterparts to ``warm_loops``, and the first call's wall seconds to
    ``first_calls``. The first call's loop time is put back, so the run's
    ``results.json`` still reports the first (cold) pass; the metrics of every pass
    are equal (evaluation is deterministic). The counterpart of
    ``run_recbole.py``'s ``repeat_test``."""
    import lightning.pytorch as pl

    original = pl.Trainer.test

    def test_and_repeat(self: Any, model: Any = None, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        out = original(self, model, *args, **kwargs)
        first_calls.append(time.perf_counter() - start)
        first = model.test_loop_seconds
        for _ in range(repeats):
            original(self, model, *args, **kwargs)
            warm_loops.append(model.test_loop_seconds)
        model.test_loop_seconds = first
        return out

    pl.Trainer.test = test_and_repeat


def run(threads: int, run_dir: Path, overrides: list[str],
        repeat_test: int = 0) -> dict[str, Any]:
    """One recframe experiment in this process; its results.json plus peak RSS."""
    import torch

    torch.set_num_threads(threads)
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    from recframe.testing import run as run_recframe

    warm_loops: list[float] = []
    first_calls: list[float] = []
    if repeat_test:
        repeat_tests(repeat_test, warm_loops, first_calls)
    t = time.perf_counter()
    results = run_recframe(*overrides, run_dir=run_dir)
    out = {
        "framework": "recframe",
        "threads": torch.get_num_threads(),
        "wall_seconds": round(time.perf_counter() - t, 3),
        "status": results["status"],
        # with repeats, results.json's ``evaluate`` (the whole trainer.test call) holds
        # them too: the first call alone is what the comparison reports
        "timings": {**results["timings"], **(
            {"evaluate": round(first_calls[0], 4),
             "evaluate_with_repeats": results["timings"]["evaluate"]} if first_calls else {})},
        "epochs_run": results.get("epochs_run"),
        "metrics": results["metrics"],
        "fingerprint": results["protocol"]["data_fingerprint"],
        "counts": results["protocol"]["counts"],
        "peak_rss_gib": peak_rss_gib(),
        "results_memory": results.get("memory"),
        "warm_test_loops": [round(x, 4) for x in warm_loops],
    }
    return out


def eval_floor(overrides: list[str], repeats: int = 3) -> dict[str, Any]:
    """The floor of one full-ranking test pass for this model and split: its ``score``,
    the seen items masked (``index_fill_``) and ``torch.topk`` at the largest cut-off,
    over the same test users in the same batches, batches built beforehand (not
    timed), the model freshly built (the cost does not depend on the weights).
    Median of ``repeats`` passes after a warm-up pass."""
    import torch

    from recframe.runner import build_experiment
    from recframe.testing import compose

    cfg = compose(*overrides)
    exp = build_experiment(cfg)
    model = exp.model.eval()
    model.prepare(exp.data)
    users = exp.datamodule.eval_set("test")
    size = int(cfg.evaluation.batch_size)
    batches = [users.__getitems__(list(range(start, min(start + size, len(users)))))
               for start in range(0, len(users), size)]
    k = max(int(x) for x in cfg.metrics.ks)

    def one_pass() -> float:
        start = time.perf_counter()
        for batch in batches:
            scores = model.score(batch["users"], batch)
            n_items = scores.shape[1]
            seen = batch["seen_rows"] * n_items + batch["seen_cols"]
            scores.view(-1).index_fill_(0, seen, -torch.inf)
            torch.topk(scores, k=min(k, n_items), dim=1)
        return time.perf_counter() - start

    with torch.inference_mode():
        one_pass()
        seconds = sorted(one_pass() for _ in range(repeats))
    return {"seconds": round(seconds[len(seconds) // 2], 4), "batches": len(batches),
            "users": len(users), "k": k, "repeats": repeats}


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] not in ("export", "run"):
        raise SystemExit(__doc__)
    command, spec_path, result_path = argv
    spec = json.loads(Path(spec_path).read_text())
    if command == "export":
        infos = [export(Path(job["out_dir"]), job["name"], job["kind"], int(job["max_len"]),
                        list(job["overrides"])) for job in spec]
        Path(result_path).write_text(json.dumps(infos, indent=2))
    else:
        threads = str(spec["threads"])
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, threads)
        out = run(int(threads), Path(spec["run_dir"]), list(spec["overrides"]),
                  int(spec.get("repeat_test", 0)))
        if spec.get("floor"):  # after the run: its peak RSS is the run's alone
            out["eval_floor"] = eval_floor(list(spec["overrides"]))
        Path(result_path).write_text(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Training throughput on MovieLens-100K through recframe's real training path.

Each model is built the way ``recframe run`` builds it (``build_experiment``:
the dataset plugin, ``preprocess=implicit``, the split, the model's own
config) and trained by a Lightning ``Trainer`` from ``conf/trainer/cpu.yaml``
with validation switched off, so an epoch is only training steps: data
batches (``recframe.train.batches``), the model's loss, backward and the
optimizer step. Like a run, it takes ``steps_per_execution`` steps per batch of
Lightning's loop (``auto``: 8 here; ``recframe.train.execution``).

- gradient models (``bpr``, ``neumf``, ``sasrec``, ``gru4rec``): seconds per
  epoch (median of the epochs after the first, which warms up) and samples
  per second. A *sample* is one row of the training format: a (user,
  positive, negative) triple for BPR, a labelled (user, item) pair for NeuMF
  (each positive brings ``num_negatives`` negatives), a user sequence for
  SASRec and GRU4Rec (their next-item targets per second are in the details);
- closed-form models (``ease``, ``ials``, ``itemknn``): seconds of ``fit``.

After its Lightning epochs each gradient model also trains the same number of
epochs in a bare PyTorch loop (``dataset[b]``, ``loss``, ``zero_grad``,
``backward``, ``step`` with the very optimizer the trainer used), over the
same batches: ``<model>_epoch_vs_bare_loop`` is recframe's seconds per epoch
over the bare loop's, i.e. what Lightning's loop, hooks and data loader add
(once per ``steps_per_execution`` steps).

Sequence models use ``split=leave_one_out`` (as their experiment arms do);
the others ``split=random``.
"""

from __future__ import annotations

import logging
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

NAME = "train_throughput"
GRADIENT = ("bpr", "neumf", "sasrec", "gru4rec")
CLOSED_FORM = ("ease", "ials", "itemknn")
SEQUENTIAL = ("sasrec", "gru4rec")
#: figures measured with this script before the training path was optimised
#: (default sizes; see the markdown for what changed)
BEFORE: dict[str, Any] = {
    "git": "0f8af7a",
    "figures": {"bpr_samples_per_s": 2557.2, "bpr_s_per_epoch": 17.2836,
                "neumf_samples_per_s": 13701.3, "neumf_s_per_epoch": 16.1287,
                "sasrec_samples_per_s": 18.5, "sasrec_s_per_epoch": 50.913,
                "gru4rec_samples_per_s": 17.3, "gru4rec_s_per_epoch": 54.2361,
                "ease_fit_s": 1.759, "ials_fit_s": 15.7175, "itemknn_fit_s": 0.2548},
    "changes": (
        "The before run (4 epochs) shared the 2 cores with three other busy processes: "
        "its epochs of one model varied up to 3x (BPR 7-20 s), so these figures mostly "
        "measure contention. Profiling (py-spy, torch profiler) showed the steps "
        "dominated by the models' forward/backward and `Adam.step`; sampling and batching "
        "(`PairBatches`, `SequenceBatches`) took under 5% of an epoch. The one change on "
        "the training path in `recframe/train`: `RecTask` no longer calls `self.log` per "
        "step; it sums loss x batch size on the device (no host sync) and logs the same "
        "epoch mean once per epoch."),
}


def default_data_dir() -> Path:
    """``$RECFRAME_DATA_DIR``, else ``../shared/data`` next to the repository."""
    env = os.environ.get("RECFRAME_DATA_DIR")
    return Path(env) if env else common.ROOT.parent / "shared" / "data"


def overrides(model: str, epochs: int, data_dir: Path, small: bool) -> list[str]:
    """The ``recframe run`` overrides of one benchmark run."""
    out = [f"model={model}", "logger=none", "callbacks=none", "metrics=default", "seed=0",
           f"trainer.max_epochs={epochs}", "++trainer.limit_val_batches=0",
           "trainer.num_sanity_val_steps=0", "evaluation=full",
           f"split={'leave_one_out' if model in SEQUENTIAL else 'random'}"]
    if small:
        out += ["dataset=synthetic", "dataset.n_users=300", "dataset.n_items=200",
                "preprocess=none"]
    else:
        out += ["dataset=ml-100k", f"dataset.path={data_dir / 'ml-100k'}",
                "dataset.download=false", "preprocess=implicit"]
    return out


def samples_per_epoch(train_set: Any) -> tuple[int, int]:
    """(samples, next-item targets) of one epoch of a training dataset."""
    from recframe.train.batches import PointBatches, SequenceBatches

    if isinstance(train_set, SequenceBatches):
        # a row of n items trains n - 1 next-item targets; a prefix row only its last
        per_row = (1 if train_set.rows == "prefixes"
                   else train_set.ends - train_set.starts - 1)
        return int(train_set.n), int(np.sum(np.broadcast_to(per_row, (train_set.n,))))
    if isinstance(train_set, PointBatches):
        return int(train_set.n) * (1 + int(train_set.num_negatives)), 0
    return int(train_set.n), 0


def run_model(model: str, epochs: int, data_dir: Path, small: bool,
              extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """Build and train one model as a run would (plus ``extra`` overrides); its timings."""
    from hydra.utils import instantiate

    from recframe.runner import build_experiment
    from recframe.testing import compose
    from recframe.train.execution import resolve_steps_per_execution

    cfg = compose(*overrides(model, epochs, data_dir, small), *extra)
    with common.timed() as t_build:
        exp = build_experiment(cfg)
    with tempfile.TemporaryDirectory(prefix="recframe-bench-") as tmp:
        trainer = instantiate(cfg.trainer, callbacks=[], logger=False, default_root_dir=tmp,
                              enable_checkpointing=False, enable_progress_bar=False,
                              use_distributed_sampler=False,
                              **({"max_epochs": 1} if exp.task.is_closed_form else {}))
        steps = resolve_steps_per_execution(cfg.get("steps_per_execution", 1), trainer,
                                            exp.task.is_closed_form)  # as a run resolves it
        exp.task.use_steps_per_execution(steps)
        with common.timed() as t_fit:
            trainer.fit(exp.task, datamodule=exp.datamodule)
    out: dict[str, Any] = {"build_s": round(t_build["s"], 3), "trainer_fit_s": round(t_fit["s"], 3),
                           "train_interactions": int(exp.data.train.nnz),
                           "n_users": exp.data.info.n_users, "n_items": exp.data.info.n_items}
    if exp.task.is_closed_form:
        out["fit_s"] = round(exp.task.fit_seconds, 4)
        return out
    seconds = list(exp.task.epoch_seconds)
    steady = seconds[1:] or seconds
    s_epoch = statistics.median(steady)
    samples, targets = samples_per_epoch(exp.datamodule.train_set)
    bare = bare_loop_epochs(exp.model, exp.datamodule.train_set, trainer.optimizers[0], epochs)
    bare_epoch = statistics.median(bare[1:] or bare)
    out.update({"bare_loop_epoch_seconds": [round(s, 4) for s in bare],
                "bare_loop_s_per_epoch": round(bare_epoch, 4),
                "epoch_vs_bare_loop": round(s_epoch / bare_epoch, 3)})
    out.update({"epoch_seconds": [round(s, 4) for s in seconds], "s_per_epoch": round(s_epoch, 4),
                "samples_per_epoch": samples, "samples_per_s": round(samples / s_epoch, 1),
                "steps_per_epoch": len(exp.datamodule.train_set),
                "steps_per_execution": exp.task.steps_per_execution,
                "batch_size": int(exp.datamodule.batch_size)})
    if targets:
        out["targets_per_epoch"] = targets
        out["targets_per_s"] = round(targets / s_epoch, 1)
    return out


def bare_loop_epochs(model: torch.nn.Module, train_set: Any, optimizer: torch.optim.Optimizer,
                     epochs: int) -> list[float]:
    """Seconds of each of ``epochs`` epochs of a plain PyTorch loop over ``train_set``."""
    model.train()
    seconds = []
    for epoch in range(epochs):
        train_set.set_epoch(epoch)
        start = time.perf_counter()
        for b in range(len(train_set)):
            loss = model.loss(train_set[b])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        seconds.append(time.perf_counter() - start)
    return seconds


def _quiet() -> None:
    import lightning.pytorch  # noqa: F401  (sets its loggers' levels on import)

    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "recframe"):
        logging.getLogger(name).setLevel(logging.ERROR)
    for message in (".*does not have many workers.*", ".*`configure_optimizers` returned.*",
                    ".*`training_step` returned `None`.*", ".*isinstance\\(treespec.*",
                    ".*limit_val_batches=0.*", ".*val_dataloader.*"):
        warnings.filterwarnings("ignore", message=message)


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__.splitlines()[0],
                      "smoke run: small synthetic data instead of ML-100K, 2 epochs")
    p.add_argument("--models", default=",".join(GRADIENT + CLOSED_FORM),
                   help="comma-separated models; any of " + ", ".join(GRADIENT + CLOSED_FORM))
    p.add_argument("--epochs", type=int, default=3,
                   help="epochs per gradient model (the first is a warm-up)")
    p.add_argument("--data-dir", type=Path, default=default_data_dir(),
                   help="folder holding ml-100k/ ($RECFRAME_DATA_DIR, else ../shared/data)")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    p.add_argument("--steps", default="1,2,4,8",
                   help="steps_per_execution values to time BPR with, besides the run's "
                   "default (empty: none)")
    p.add_argument("--steps-epochs", type=int, default=6,
                   help="epochs per --steps run (the first is a warm-up)")
    args = p.parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    unknown = sorted(set(models) - set(GRADIENT + CLOSED_FORM))
    if unknown:
        p.error(f"unknown model(s) {unknown}; available: {', '.join(GRADIENT + CLOSED_FORM)}")
    if args.small:
        args.epochs = min(args.epochs, 2)
    elif not (args.data_dir / "ml-100k" / "u.data").exists():
        raise SystemExit(
            f"MovieLens-100K not found: {args.data_dir / 'ml-100k' / 'u.data'} does not exist. "
            f"Pass --data-dir DIR (the folder holding ml-100k/), set RECFRAME_DATA_DIR, or use "
            f"--small (synthetic data).")
    torch.set_num_threads(args.threads)
    _quiet()

    results: dict[str, dict[str, Any]] = {}
    for model in models:
        results[model] = run_model(model, args.epochs, args.data_dir, args.small)
        print(f"{model}: {results[model]}", flush=True)

    sweep: dict[int, dict[str, Any]] = {}
    sweep_epochs = 2 if args.small else args.steps_epochs
    for k in (int(x) for x in args.steps.split(",") if x):
        sweep[k] = run_model("bpr", sweep_epochs, args.data_dir, args.small,
                             (f"steps_per_execution={k}",))
        print(f"bpr steps_per_execution={k}: {sweep[k]['s_per_epoch']} s/epoch", flush=True)

    figures: dict[str, Any] = {}
    rows, fit_rows = [], []
    for model, r in results.items():
        if "fit_s" in r:
            figures[f"{model}_fit_s"] = r["fit_s"]
            fit_rows.append([model, r["fit_s"]])
        else:
            figures[f"{model}_samples_per_s"] = r["samples_per_s"]
            figures[f"{model}_s_per_epoch"] = r["s_per_epoch"]
            figures[f"{model}_epoch_vs_bare_loop"] = r["epoch_vs_bare_loop"]
            rows.append([model, r["samples_per_s"], r["s_per_epoch"], r["samples_per_epoch"],
                         r["steps_per_epoch"], r.get("targets_per_s", ""),
                         r["bare_loop_s_per_epoch"], r["epoch_vs_bare_loop"]])
    data = "synthetic 300 x 200 (smoke run)" if args.small else (
        "MovieLens-100K, preprocess=implicit (ratings >= 4)")
    md = [f"{data}; {args.epochs} epochs per gradient model, validation off, torch threads: "
          f"{args.threads}. s/epoch is the median over the epochs after the first.", ""]
    if rows:
        md += [common.md_table(["model", "samples/s", "s/epoch", "samples/epoch", "steps/epoch",
                                "next-item targets/s", "bare loop s/epoch",
                                "recframe / bare loop"], rows), "",
               "Bare loop: the same model, batches and optimizer in a plain PyTorch loop "
               "(no Lightning), right after the recframe epochs; the ratio is what "
               "Lightning's loop, hooks and data loader add per epoch. recframe takes "
               "`steps_per_execution` optimizer steps per batch of that loop, as a run "
               "does (`auto`: 8 here; `recframe.train.execution`), so the loop's fixed "
               "per-batch cost is paid once per 8 steps.", ""]
    if sweep:
        base = sweep.get(1, {}).get("s_per_epoch")
        for k, r in sweep.items():
            figures[f"bpr_s_per_epoch_steps{k}"] = r["s_per_epoch"]
            figures[f"bpr_epoch_vs_bare_loop_steps{k}"] = r["epoch_vs_bare_loop"]
        md += [f"BPR by `steps_per_execution` ({sweep_epochs} epochs each, median after "
               "the first; the same mini-batches and updates at every K):", "",
               common.md_table(["steps_per_execution", "steps/epoch", "s/epoch",
                                "vs K=1", "recframe / bare loop"],
                               [[k, r["steps_per_epoch"], r["s_per_epoch"],
                                 round(base / r["s_per_epoch"], 2) if base else "",
                                 r["epoch_vs_bare_loop"]] for k, r in sweep.items()]), ""]
    if fit_rows:
        md += [common.md_table(["closed-form model", "fit s"], fit_rows), ""]
    if BEFORE and not args.small:
        md.append(_before_after(BEFORE, figures))
    details = {"models": results, "epochs": args.epochs, "data_dir": str(args.data_dir),
               "steps_per_execution_sweep": {str(k): r for k, r in sweep.items()},
               "before": BEFORE}
    common.write_fragment(NAME, args.out, figures, "\n".join(md), details)
    return 0


def _before_after(before: dict[str, Any], after: dict[str, Any]) -> str:
    keys = [k for k in after if k in before.get("figures", {})]
    rows = [[k, before["figures"][k], after[k]] for k in keys]
    return ("Before/after the optimisation of the training path (same script and sizes; "
            f"before measured at git {before.get('git', '?')}, on the same machine but a "
            "different run, so compare ratios loosely):\n\n"
            + common.md_table(["figure", "before", "after"], rows) + "\n\n"
            + str(before.get("changes", "")))


if __name__ == "__main__":
    sys.exit(main())

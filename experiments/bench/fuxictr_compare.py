"""recframe against FuxiCTR 2.3.10: LR, FM, DeepFM, DCNv2 on ml-100k-ctr (AUC, LogLoss, rows/s).

The data: ``dataset=ml-100k-ctr`` (each MovieLens-100K rating is an impression,
label 1 when the rating is >= 4), split at random 80/10/10 by recframe's own
pipeline with the split seed pinned to 0. The labeled rows of every part are
exported with recframe's encodings (``fuxictr_support/recframe_side.py export``:
categorical codes as tokens, multi-valued genres joined by ``^``, the
normalized release year), so both frameworks train and test on the very same
rows and field values; FuxiCTR builds its own vocabularies from the train part
(the vocabulary sizes come out equal to recframe's). The fields are the ones
recframe's four models embed: ``user_id``, ``item_id``, ``age`` (quantile
buckets), ``gender``, ``occupation``, ``zip_prefix``, ``genres`` (multi-valued,
mean-pooled; summed for LR on both sides, as FuxiCTR's LR block does) and
``release_year`` (numeric, ``x * v``).

Both sides: the same embedding size, batch size, Adam learning rate, fixed
number of epochs (no early stopping, no validation during training), the final
weights tested on every test impression (AUC and LogLoss), the same MLP widths,
cross layers and structure, and the same number of torch threads (1 by
default). recframe runs through its real path (``recframe.testing.run`` ->
``run_experiment``; ``timings.seconds_per_epoch`` of ``results.json``, training
only); FuxiCTR runs in its own environment ``.venv-fuxictr/`` (created here on
first use: ``fuxictr_support/requirements.txt`` with ``constraints.txt``:
``torch==2.13.0``, the CPU build on local disk, and ``polars<2``) through its own
pipeline (``FeatureProcessor``, ``build_dataset``, ``RankDataLoader`` on Ray
Data, ``BaseModel.train_epoch``; ``fuxictr_support/run_fuxictr.py``). The pip
package ships none of the zoo's models, so LR, FM, DeepFM and DCNv2 are rebuilt
on its ``BaseModel`` and layers as the zoo defines them
(``fuxictr_support/fuxictr_models.py``). Each framework and model runs in its
own process, alternating which goes first.

``ctr_<model>_epoch_speedup_vs_fuxictr`` is recframe's training rows per second
over FuxiCTR's (mean epoch time of each run, the same rows; median over seeds).
Where FuxiCTR's time goes is measured in its runs: the seconds each epoch
spends waiting on its data loader, one pass of the loader alone, the
``train_step`` calls alone over batches collected beforehand, the CPU seconds of
Ray's processes, and one epoch under cProfile.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

NAME = "fuxictr_compare"
HERE = Path(__file__).resolve().parent
SUPPORT = HERE / "fuxictr_support"
REQUIREMENTS = SUPPORT / "requirements.txt"
CONSTRAINTS = SUPPORT / "constraints.txt"
FUXICTR_VENV = common.ROOT / ".venv-fuxictr"
FUXICTR_VERSION = "2.3.10"
MODELS = ("lr", "fm", "deepfm", "dcnv2")
log = logging.getLogger(NAME)


# -- environment ------------------------------------------------------------------------


def fuxictr_python(venv: Path = FUXICTR_VENV) -> Path:
    """The interpreter of FuxiCTR's environment."""
    return venv / "bin" / "python"


def ensure_fuxictr_venv(venv: Path = FUXICTR_VENV) -> dict[str, Any]:
    """Create ``venv`` and install the pinned FuxiCTR into it unless it already works.

    ``pip install -r requirements.txt -c constraints.txt``: the constraints pin
    ``torch==2.13.0`` (the CPU build that installs from local disk; FuxiCTR does not
    list torch, any other version would pull a multi-GB CUDA build) and ``polars<2``.
    """
    python = fuxictr_python(venv)
    probe = [str(python), "-c", "import fuxictr, torch, polars, ray; print(fuxictr.__version__, "
             "torch.__version__, polars.__version__, ray.__version__)"]
    if python.exists():
        done = subprocess.run(probe, capture_output=True, text=True)
        if done.returncode == 0 and done.stdout.split()[:1] == [FUXICTR_VERSION]:
            return {"installed_now": False, "versions": done.stdout.strip()}
    start = time.perf_counter()
    print(f"creating {venv} and installing {REQUIREMENTS.name} (one-off, about a minute)",
          flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    (venv / ".gitignore").write_text("*\n")
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS),
                    "-c", str(CONSTRAINTS)], check=True)
    done = subprocess.run(probe, capture_output=True, text=True, check=True)
    return {"installed_now": True, "install_seconds": round(time.perf_counter() - start, 1),
            "versions": done.stdout.strip()}


def ml100k_path() -> Path:
    """Where MovieLens-100K is: ``$RECFRAME_DATA_DIR/ml-100k``, else ``../shared/data``."""
    base = os.environ.get("RECFRAME_DATA_DIR")
    return Path(base) / "ml-100k" if base else common.ROOT.parent / "shared" / "data" / "ml-100k"


def _env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
                "PYTHONWARNINGS": "ignore", "TQDM_DISABLE": "1",
                "RAY_USAGE_STATS_ENABLED": "0"})
    return env


def _run_json(cmd: list[str], spec: Any, work: Path, tag: str, threads: int) -> Any:
    """Run ``cmd SPEC.json RESULT.json`` in ``work`` and return the result JSON."""
    spec_path, result_path = work / f"{tag}.spec.json", work / f"{tag}.result.json"
    spec_path.write_text(json.dumps(spec, indent=2))
    result_path.unlink(missing_ok=True)
    log_path = work / f"{tag}.log"
    start = time.perf_counter()
    with open(log_path, "w") as out:
        done = subprocess.run([*cmd, str(spec_path), str(result_path)], cwd=work,
                              env=_env(threads), stdout=out, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - start
    if done.returncode != 0 or not result_path.exists():
        tail = log_path.read_text()[-3000:]
        raise SystemExit(f"{tag} failed (exit {done.returncode}); log {log_path}:\n{tail}")
    print(f"  {tag}: {seconds:.0f} s", flush=True)
    result = json.loads(result_path.read_text())
    if isinstance(result, dict):
        result["process_seconds"] = round(seconds, 2)
    return result


# -- protocol ---------------------------------------------------------------------------


@dataclass
class Protocol:
    """What both frameworks share for one model."""

    model: str  # lr | fm | deepfm | dcnv2
    epochs: int
    batch_size: int
    lr: float
    dim: int = 16
    hidden: tuple[int, ...] = ()
    cross_layers: int = 3
    structure: str = "parallel"
    threads: int = 1
    seeds: tuple[int, ...] = (0,)
    profile: bool = True
    bf16: bool = False  # also run recframe under bf16 autocast (trainer.precision=bf16-mixed)

    def recframe_overrides(self, base: list[str], seed: int,
                           multi_fields: list[str]) -> list[str]:
        """The recframe run: ``base`` (data set, split) plus this model's settings.

        The config names of recframe's CTR zoo (``conf/model/{lr,fm,deepfm,dcnv2}.yaml``):
        ``model.embedding_dim``, ``model.batch_size``, ``model.lr``, ``model.hidden``,
        ``model.cross_layers``, ``model.structure``; ``trainer.max_epochs``.
        """
        out = [*base, f"seed={seed}", f"model={self.model}",
               f"model.batch_size={self.batch_size}", f"model.lr={self.lr}",
               f"trainer.max_epochs={self.epochs}", "+trainer.limit_val_batches=0",
               "+trainer.enable_checkpointing=false", "callbacks=none", "logger=none"]
        if self.model != "lr":
            out.append(f"model.embedding_dim={self.dim}")
        if self.model in ("deepfm", "dcnv2"):
            out.append(f"model.hidden=[{','.join(str(h) for h in self.hidden)}]")
        if self.model == "dcnv2":
            out += [f"model.cross_layers={self.cross_layers}",
                    f"model.structure={self.structure}"]
        if self.model == "lr" and multi_fields:
            # FuxiCTR's LR block sums the weights of a multi-valued field
            # (MaskedSumPooling for 1-d embeddings); recframe pools as the field says
            entries = ",".join(f"{{name:{n},pooling:sum}}" for n in multi_fields)
            out.append(f"dataset.fields=[{entries}]")
        return out

    def fuxictr_params(self) -> dict[str, Any]:
        """Keyword arguments of the FuxiCTR model (``fuxictr_models.py``)."""
        if self.model == "deepfm":
            return {"hidden_units": list(self.hidden), "net_dropout": 0.0, "batch_norm": False}
        if self.model == "dcnv2":
            key = ("stacked_dnn_hidden_units" if self.structure == "stacked"
                   else "parallel_dnn_hidden_units")
            return {"model_structure": self.structure, "num_cross_layers": self.cross_layers,
                    key: list(self.hidden), "net_dropout": 0.0, "batch_norm": False}
        return {}


@dataclass
class Pair:
    """Both frameworks' runs of one model: one each per seed."""

    protocol: Protocol
    recframe_runs: list[dict[str, Any]] = field(default_factory=list)
    fuxictr_runs: list[dict[str, Any]] = field(default_factory=list)
    #: recframe under bf16 autocast (``--bf16``), the same rows and settings otherwise
    recframe_bf16_runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def recframe_epoch_s(self) -> float:
        """recframe's mean epoch (training only), median over seeds."""
        return float(np.median([r["timings"]["seconds_per_epoch"] for r in self.recframe_runs]))

    @property
    def fuxictr_epoch_s(self) -> float:
        """FuxiCTR's mean epoch (each ``train_epoch`` call), median over seeds."""
        return float(np.median([np.mean([e["seconds"] for e in r["epochs"]])
                                for r in self.fuxictr_runs]))

    def metric(self, framework: str, name: str) -> tuple[float, float]:
        """Test ``auc`` or ``logloss``: mean and sample standard deviation over seeds."""
        if framework in ("recframe", "recframe_bf16"):
            runs = self.recframe_runs if framework == "recframe" else self.recframe_bf16_runs
            values = [float(r["metrics"]["test"][name]) for r in runs]
        else:
            values = [float(r["test"][name]) for r in self.fuxictr_runs]
        sd = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        return float(np.mean(values)), sd

    def fuxictr_median(self, key: str) -> float:
        """A per-epoch FuxiCTR quantity (mean over epochs), median over seeds."""
        return float(np.median([np.mean([e[key] for e in r["epochs"]])
                                for r in self.fuxictr_runs]))

    def breakdown(self, key: str) -> float:
        return float(np.median([r["breakdown"][key] for r in self.fuxictr_runs]))

    def figures(self, n_train: int) -> dict[str, Any]:
        m = self.protocol.model
        rf_rows = n_train / self.recframe_epoch_s
        fx_rows = n_train / self.fuxictr_epoch_s
        out: dict[str, Any] = {
            f"ctr_{m}_auc_recframe": round(self.metric("recframe", "auc")[0], 5),
            f"ctr_{m}_auc_fuxictr": round(self.metric("fuxictr", "auc")[0], 5),
            f"ctr_{m}_logloss_recframe": round(self.metric("recframe", "logloss")[0], 5),
            f"ctr_{m}_logloss_fuxictr": round(self.metric("fuxictr", "logloss")[0], 5),
            f"ctr_{m}_epoch_speedup_vs_fuxictr": round(rf_rows / fx_rows, 3),
            f"ctr_{m}_rows_per_second_recframe": round(rf_rows, 1),
            f"ctr_{m}_rows_per_second_fuxictr": round(fx_rows, 1),
            f"ctr_{m}_fuxictr_loader_wait_share": round(
                self.fuxictr_median("loader_wait_seconds") / self.fuxictr_epoch_s, 3),
        }
        if all("breakdown" in r for r in self.fuxictr_runs):
            out[f"ctr_{m}_fuxictr_loader_alone_seconds"] = round(
                self.breakdown("loader_alone_seconds"), 3)
            out[f"ctr_{m}_fuxictr_train_steps_alone_seconds"] = round(
                self.breakdown("train_steps_alone_seconds"), 3)
        if len(self.recframe_runs) > 1:
            for fw in ("recframe", "fuxictr"):
                out[f"ctr_{m}_auc_{fw}_sd"] = round(self.metric(fw, "auc")[1], 5)
        if self.recframe_bf16_runs:
            bf16_epoch = float(np.median([r["timings"]["seconds_per_epoch"]
                                          for r in self.recframe_bf16_runs]))
            out.update({
                f"ctr_{m}_auc_recframe_bf16": round(self.metric("recframe_bf16", "auc")[0], 5),
                f"ctr_{m}_logloss_recframe_bf16": round(
                    self.metric("recframe_bf16", "logloss")[0], 5),
                f"ctr_{m}_epoch_speedup_vs_fuxictr_bf16": round(
                    (n_train / bf16_epoch) / fx_rows, 3),
            })
        return out


def check_same_data(export: dict[str, Any], rf: dict[str, Any], fx: dict[str, Any]) -> list[str]:
    """Problems, if any, showing the runs did not see the exported rows."""
    problems = []
    if rf["fingerprint"] != export["fingerprint"]:
        problems.append(f"recframe fingerprint {rf['fingerprint']} != export "
                        f"{export['fingerprint']}")
    for part in ("train", "valid", "test"):
        rows = export["counts"][part]["rows"]
        got = rf["counts"].get(f"n_{part}_impressions")
        if got != rows:
            problems.append(f"recframe {part} impressions {got} != export {rows}")
        if fx[f"n_{part}"] != rows:
            problems.append(f"FuxiCTR {part} rows {fx[f'n_{part}']} != export {rows}")
    vocab = {f["name"]: f["vocab_size"] for f in export["recframe_fields"]
             if f["kind"] in ("categorical", "multi_categorical")}
    for name, size in vocab.items():
        got = fx["features"].get(name, {}).get("vocab_size")
        if got != size:
            problems.append(f"field {name}: FuxiCTR vocab_size {got} != recframe {size}")
    return problems


# -- running ----------------------------------------------------------------------------


def run_all(protocols: list[Protocol], base: list[str], work: Path) -> tuple[dict, list[Pair]]:
    """Export recframe's split once, then run every protocol on both frameworks."""
    threads = protocols[0].threads
    data_dir = work / "csv"
    export = _run_json([sys.executable, str(SUPPORT / "recframe_side.py"), "export"],
                       {"out_dir": str(data_dir), "overrides": [*base, "seed=0", "model=lr"]},
                       work, "export", threads)
    fields = json.loads((data_dir / "fields.json").read_text())
    multi = [f["name"] for f in export["fields"] if f["type"] == "sequence"]
    rf_cmd = [sys.executable, str(SUPPORT / "recframe_side.py"), "run"]
    fx_cmd = [str(fuxictr_python()), str(SUPPORT / "run_fuxictr.py")]
    pairs, turn = [], 0
    for p in protocols:
        pair = Pair(p)
        for seed in p.seeds:
            tag = f"{p.model}_s{seed}"
            rf_spec = {"threads": p.threads, "run_dir": str(work / "runs" / tag),
                       "overrides": p.recframe_overrides(base, seed, multi)}
            fx_spec = {"data_dir": str(data_dir), "work_dir": str(work / "fuxictr" / tag),
                       "label": fields["label"], "fields": fields["fields"],
                       "model": p.model, "embedding_dim": p.dim, "batch_size": p.batch_size,
                       "lr": p.lr, "epochs": p.epochs, "seed": seed, "threads": p.threads,
                       "model_params": p.fuxictr_params(), "breakdown": True,
                       "profile": p.profile and seed == p.seeds[0]}
            # alternate which framework goes first: the machine's load drifts
            jobs = [(rf_cmd, rf_spec, f"{tag}_recframe"), (fx_cmd, fx_spec, f"{tag}_fuxictr")]
            results = {}
            for cmd, spec, name in (jobs if turn % 2 == 0 else jobs[::-1]):
                results[name] = _run_json(cmd, spec, work, name, p.threads)
            turn += 1
            rf, fx = results[f"{tag}_recframe"], results[f"{tag}_fuxictr"]
            problems = check_same_data(export, rf, fx)
            if problems:
                raise SystemExit(f"{tag}: the frameworks saw different data: "
                                 + "; ".join(problems))
            pair.recframe_runs.append(rf)
            pair.fuxictr_runs.append(fx)
            if p.bf16:  # right after the fp32 pair: the same load on the machine
                bf16_spec = {**rf_spec, "run_dir": str(work / "runs" / f"{tag}_bf16"),
                             "overrides": [*rf_spec["overrides"],
                                           "trainer.precision=bf16-mixed"]}
                bf = _run_json(rf_cmd, bf16_spec, work, f"{tag}_recframe_bf16", p.threads)
                problems = check_same_data(export, bf, fx)
                if problems:
                    raise SystemExit(f"{tag} (bf16): " + "; ".join(problems))
                pair.recframe_bf16_runs.append(bf)
        pairs.append(pair)
    return export, pairs


# -- report -----------------------------------------------------------------------------


def _cell_runs(pair: Pair, fw: str, name: str) -> str:
    mean, sd = pair.metric(fw, name)
    return f"{mean:.4f} ± {sd:.4f}" if len(pair.recframe_bf16_runs) > 1 else f"{mean:.4f}"


def _cell(pair: Pair, fw: str, name: str) -> str:
    mean, sd = pair.metric(fw, name)
    return f"{mean:.4f} ± {sd:.4f}" if len(pair.recframe_runs) > 1 else f"{mean:.4f}"


def _hp(p: Protocol) -> str:
    parts = [f"{p.epochs} ep", f"batch {p.batch_size}", f"lr {p.lr:g}"]
    if p.model != "lr":
        parts.append(f"dim {p.dim}")
    if p.model in ("deepfm", "dcnv2"):
        parts.append(f"MLP {list(p.hidden)}")
    if p.model == "dcnv2":
        parts.append(f"{p.cross_layers} cross, {p.structure}")
    return ", ".join(parts)


def markdown(pairs: list[Pair], export: dict[str, Any], figures: dict[str, Any],
             install: dict[str, Any], floors: dict[str, float] | None = None) -> str:
    counts = export["counts"]
    n_train = counts["train"]["rows"]
    seeds = len(pairs[0].recframe_runs) if pairs else 0
    parts = [
        f"recframe against FuxiCTR {FUXICTR_VERSION} on `ml-100k-ctr`: {n_train:,} train, "
        f"{counts['valid']['rows']:,} valid and {counts['test']['rows']:,} test impressions "
        f"(random 80/10/10, split seed 0; click rate "
        f"{counts['test']['clicks'] / counts['test']['rows']:.3f} in test), the same rows and "
        f"field values on both sides (recframe's encodings exported; FuxiCTR's vocabularies "
        f"come out the same size). Fields: "
        + ", ".join(f"`{f['name']}` ({f['type']})" for f in export["fields"])
        + (f"; left out: {', '.join(export['left_out'])} (not embedded by these models)"
           if export["left_out"] else "")
        + f". Fixed epochs, final weights tested, {pairs[0].protocol.threads if pairs else 1} "
        f"torch thread(s), {seeds} seed(s) (AUC/LogLoss: mean{' ± sd' if seeds > 1 else ''}; "
        "speed: median).",
    ]
    rows = []
    for pair in pairs:
        m = pair.protocol.model
        rows.append([m, _hp(pair.protocol), _cell(pair, "recframe", "auc"),
                     _cell(pair, "fuxictr", "auc"), _cell(pair, "recframe", "logloss"),
                     _cell(pair, "fuxictr", "logloss"),
                     f"{figures[f'ctr_{m}_rows_per_second_recframe']:,.0f}",
                     f"{figures[f'ctr_{m}_rows_per_second_fuxictr']:,.0f}",
                     f"{figures[f'ctr_{m}_epoch_speedup_vs_fuxictr']:.2f}x"])
    parts.append(common.md_table(
        ["model", "settings (both)", "AUC recframe", "AUC FuxiCTR", "LogLoss recframe",
         "LogLoss FuxiCTR", "train rows/s recframe", "train rows/s FuxiCTR",
         "recframe speed-up"], rows))
    if any(pair.recframe_bf16_runs for pair in pairs):
        rows = [[pair.protocol.model, _cell_runs(pair, "recframe_bf16", "auc"),
                 _cell_runs(pair, "recframe_bf16", "logloss"),
                 f"{figures[f'ctr_{pair.protocol.model}_epoch_speedup_vs_fuxictr_bf16']:.2f}x"]
                for pair in pairs if pair.recframe_bf16_runs]
        parts.append(
            "recframe with `trainer.precision=bf16-mixed` (bf16 autocast: matrix products "
            "in bfloat16, on this CPU's AMX units; weights, optimizer and loss in float32), "
            "run right after each fp32 pair; FuxiCTR has no such switch, so these rows "
            "compare different precisions and the table above is the like-for-like one:\n\n"
            + common.md_table(["model", "AUC recframe bf16", "LogLoss recframe bf16",
                               "speed-up vs FuxiCTR (fp32)"], rows))
    rows = []
    for pair in pairs:
        fx = pair.fuxictr_runs[0]
        epoch = pair.fuxictr_epoch_s
        rows.append([pair.protocol.model, f"{epoch:.2f}",
                     f"{pair.fuxictr_median('loader_wait_seconds'):.2f} "
                     f"({pair.fuxictr_median('loader_wait_seconds') / epoch:.0%})",
                     f"{pair.fuxictr_median('loader_iter_seconds'):.2f}",
                     f"{pair.breakdown('loader_alone_seconds'):.2f}",
                     f"{pair.breakdown('train_steps_alone_seconds'):.2f}",
                     f"{pair.fuxictr_median('cpu_seconds_self'):.2f}",
                     f"{pair.fuxictr_median('cpu_seconds_tree'):.2f}",
                     f"{fx['preprocess_seconds']:.1f}",
                     f"{pair.recframe_epoch_s:.2f}"])
    parts.append(
        "Where FuxiCTR's time goes (per epoch, median over seeds; seconds): the epoch "
        "(`train_epoch`), the part of it spent waiting on the data loader (`iter()` and "
        "`next()` of its `ParquetDataLoader`), of which in `iter()` (where Ray Data "
        "re-reads the parquet file, materializes and shuffles it; `next()` then "
        "serves `iter_torch_batches`), one pass of the loader "
        "alone (no model), the `train_step` calls alone over the same number of batches "
        "collected beforehand (forward, loss, backward, clipping, Adam), the CPU seconds of "
        "the driver process and of the driver plus Ray's processes (raylet, GCS, workers; "
        "live ones only), and FuxiCTR's preprocessing (`build_dataset`: polars fit, Ray "
        "Data transform to parquet; once per run, not in any epoch). recframe's epoch is "
        "in the last column.\n\n"
        + common.md_table(["model", "epoch", "waiting on loader", "of which iter()",
                           "loader alone",
                           "train_step alone", "CPU driver", "CPU driver + Ray",
                           "preprocess (once)", "recframe epoch"], rows))
    shares = [pair.fuxictr_median("loader_wait_seconds") / pair.fuxictr_epoch_s
              for pair in pairs]
    in_iter = [pair.fuxictr_median("loader_iter_seconds")
               / pair.fuxictr_median("loader_wait_seconds") for pair in pairs]
    busy = [pair.fuxictr_median("cpu_seconds_tree") / pair.fuxictr_epoch_s for pair in pairs]
    parts.append(
        f"Reading it: FuxiCTR's epochs spend {min(shares):.0%}-{max(shares):.0%} of their time "
        f"waiting on the data loader ({min(in_iter):.0%}-{max(in_iter):.0%} of that in "
        "`iter()`, Ray Data materializing and shuffling the training set again each epoch), "
        "the larger share the smaller the model. The CPU seconds of the driver and all of "
        f"Ray's processes together come to {min(busy):.0%}-{max(busy):.0%} of the epoch's "
        "wall time: the loader waits on Ray's task scheduling (the driver polls its "
        "streaming executor with `time.sleep`, the largest item of the profile below) more "
        "than it computes. recframe's gain is that part: its whole epoch takes about as long "
        "as FuxiCTR's `train_step` calls alone.")
    steps = [f"{pair.protocol.model} "
             f"{pair.breakdown('train_steps_alone_seconds') / pair.recframe_epoch_s:.1f}x"
             for pair in pairs]
    parts.append("FuxiCTR's `train_step` calls alone (no data loading) against recframe's "
                 "whole epoch (its batching included): " + ", ".join(steps) + ".")
    if floors:
        by_model = {pair.protocol.model: pair for pair in pairs}
        rows = []
        for model, floor in floors.items():
            pair = by_model[model]
            rows.append([model, f"{pair.fuxictr_epoch_s:.2f}", f"{pair.recframe_epoch_s:.2f}",
                         f"{floor:.2f}", f"{pair.fuxictr_epoch_s / floor:.1f}x",
                         f"{pair.fuxictr_epoch_s / 5:.2f}"])
        parts.append(
            "The deep models' ceiling: the dense arithmetic of one epoch alone (forward and "
            "backward of the same MLP, plus DCNv2's cross network, on random inputs of the "
            "same shape, float32, the same threads; no embeddings, loss, optimizer or data: "
            "`dense_floor_seconds`, measured by `python experiments/bench/fuxictr_compare.py "
            "--floors` after the runs above) bounds any framework's epoch from below, so "
            "no float32 "
            "implementation can be more than `FuxiCTR epoch / floor` times faster than "
            "FuxiCTR here:\n\n"
            + common.md_table(["model", "FuxiCTR epoch", "recframe epoch", "dense floor",
                               "largest possible speed-up", "epoch a 5x speed-up needs"],
                              rows))
    profiles = {pair.protocol.model: r["profile"] for pair in pairs for r in pair.fuxictr_runs
                if "profile" in r}
    model = "deepfm" if "deepfm" in profiles else next(iter(profiles), None)
    if model is not None:
        profiled = profiles[model]
        ranked = sorted(profiled["tottime_by_package"].items(), key=lambda kv: -kv[1])
        top = ", ".join(f"{k} {v:.2f} s" for k, v in ranked[:5])
        def cum(needle: str) -> float:
            return max((r["cumtime"] for r in profiled["top_cumulative"]
                        if needle in r["function"]), default=0.0)

        parts.append(f"cProfile of one more FuxiCTR {model} epoch ({profiled['wall_seconds']:.2f}"
                     f" s; the driver's own time by package, builtins being C calls such as "
                     f"`time.sleep` and torch kernels): {top}. `ParquetDataLoader.__iter__` -> "
                     f"Ray's `Dataset.materialize` took {cum('(materialize)'):.2f} s; "
                     f"`time.sleep` {cum('time.sleep'):.2f} s in all (Ray Data's streaming "
                     f"executor, `get_output_blocking`, polling for its tasks); the "
                     f"`train_step` calls {cum('(train_step)'):.2f} s.")
    parts.append(
        "What differs between the implementations (the models are the same architecture; "
        "FuxiCTR's pip package ships none of its zoo's models, so `fuxictr_models.py` rebuilds "
        "LR, FM, DeepFM and DCNv2 from its `BaseModel` and layers as `model_zoo/*/src` "
        "defines them):\n\n"
        "- **Initialisation.** Both draw embeddings from N(0, 1e-4²) (FuxiCTR's default, "
        "which recframe's CTR zoo adopted). FuxiCTR's `reset_parameters` gives every "
        "`nn.Linear` Xavier-normal weights and zero biases, including the `Linear(1, d)` "
        "that embeds a numeric field (std sqrt(2 / (1 + d)): 1 for LR's 1-d weights), so "
        "`release_year` starts with a large random weight; recframe initialises numeric "
        "vectors like embeddings and MLP layers with torch's default.\n"
        "- **Gradient clipping.** FuxiCTR's `train_step` clips the gradient norm at 10; "
        "recframe does not clip.\n"
        "- **Batching.** FuxiCTR: Ray Data over a parquet file, reshuffled each epoch; "
        "recframe: in-memory tensors, a permutation per epoch, several optimizer steps per "
        "batch of Lightning's loop (`steps_per_execution`, same updates).\n"
        "- **Multi-valued fields (genres).** FuxiCTR's first-order term (the "
        "`LogisticRegression` block, also inside FM and DeepFM) sums a multi-valued field's "
        "weights, its embeddings are mean-pooled (`MaskedAveragePooling`, padding found by "
        "zero vectors). recframe pools both as the field declares: mean, except in the LR "
        "runs, which declare `pooling: sum` to match; FM and DeepFM therefore differ in the "
        "first-order genre term (mean on recframe's side, sum on FuxiCTR's).")
    if install.get("installed_now"):
        parts.append(f"FuxiCTR's environment was installed by this run in "
                     f"{install['install_seconds']:.0f} s (not part of any timing).")
    return "\n\n".join(parts)


def dense_floor_seconds(p: Protocol, n_fields: int, n_train: int, repeats: int = 3) -> float:
    """The dense arithmetic every framework must do for one epoch of ``p``'s deep part:
    forward and backward of the same MLP (and, for DCNv2, cross network) on random
    ``[batch, n_fields * dim]`` inputs for ``ceil(n_train / batch)`` steps, float32, in
    ``p.threads`` threads; no embeddings, loss, optimizer or data. Best of ``repeats``.
    A ratio to FuxiCTR above ``FuxiCTR epoch / floor`` is out of reach at this precision."""
    import torch

    from recframe_ctr._common import glorot_linears, tower
    from recframe_ctr.dcnv2 import CrossNetV2

    torch.set_num_threads(p.threads)
    width = n_fields * p.dim
    parts: list[torch.nn.Module] = [tower(width, list(p.hidden), 0.0)]
    if p.model == "dcnv2":
        parts.append(CrossNetV2(width, p.cross_layers))
    net = torch.nn.ModuleList(parts)
    glorot_linears(net)
    steps = -(-n_train // p.batch_size)
    x = torch.randn(p.batch_size, width)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            net.zero_grad(set_to_none=True)
            sum(m(x).sum() for m in net).backward()
        best = min(best, time.perf_counter() - start)
    return best


def add_floors(out: Path) -> None:
    """Measure :func:`dense_floor_seconds` for the recorded DeepFM/DCNv2 protocols and
    rebuild the fragment with them (the frameworks' runs are not repeated)."""
    frag = json.loads((out / f"{NAME}.json").read_text())
    details = frag["details"]
    pairs = pairs_from_details(details)
    n_train = details["export"]["counts"]["train"]["rows"]
    n_fields = len(details["export"]["fields"])
    details["dense_floor_seconds"] = {
        pair.protocol.model: round(dense_floor_seconds(pair.protocol, n_fields, n_train), 3)
        for pair in pairs if pair.protocol.model in ("deepfm", "dcnv2")}
    frag["details"] = details
    (out / f"{NAME}.json").write_text(json.dumps(frag, indent=2, sort_keys=True,
                                                 default=str) + "\n")
    rerender(out)


def pairs_from_details(details: dict[str, Any]) -> list[Pair]:
    """The pairs recorded in a fragment's ``details`` (for ``--rerender``)."""
    pairs = []
    for run in details["runs"]:
        proto = dict(run["protocol"])
        proto["hidden"], proto["seeds"] = tuple(proto["hidden"]), tuple(proto["seeds"])
        pairs.append(Pair(Protocol(**proto), list(run["recframe"]), list(run["fuxictr"]),
                          list(run.get("recframe_bf16", []))))
    return pairs


def rerender(out: Path) -> None:
    """Rebuild the figures and markdown of ``out/fuxictr_compare.json`` from its recorded
    runs (after a text change; nothing is rerun)."""
    frag = json.loads((out / f"{NAME}.json").read_text())
    details = frag["details"]
    pairs = pairs_from_details(details)
    n_train = details["export"]["counts"]["train"]["rows"]
    figures: dict[str, Any] = {"fuxictr_compare_threads": pairs[0].protocol.threads}
    for pair in pairs:
        figures.update(pair.figures(n_train))
    floors = details.get("dense_floor_seconds", {})
    for model, seconds in floors.items():
        figures[f"ctr_{model}_dense_floor_seconds"] = seconds
    md = markdown(pairs, details["export"], figures, details["install"], floors)
    common.write_fragment(NAME, out, figures, md, details, recorded=frag)


def _layers(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x)


def _lrs(text: str) -> dict[str, float]:
    out = {}
    for item in text.split(","):
        name, _, value = item.partition("=")
        if name not in MODELS or not value:
            raise SystemExit(f"--lrs: {item!r} is not MODEL=RATE with MODEL one of {MODELS}")
        out[name] = float(value)
    return out


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__.splitlines()[0], "tiny sizes: a smoke run (1 epoch, LR and "
                      "DeepFM with a small MLP)")
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated subset")
    p.add_argument("--epochs", type=int, default=3, help="training epochs (both frameworks)")
    p.add_argument("--batch", type=int, default=1024, help="rows per step")
    p.add_argument("--lrs", default="lr=0.01,fm=0.01,deepfm=0.001,dcnv2=0.001",
                   help="Adam learning rate per model (MODEL=RATE,...)")
    p.add_argument("--dim", type=int, default=16, help="embedding size (FM, DeepFM, DCNv2)")
    p.add_argument("--deepfm-hidden", default="300,300,300",
                   help="DeepFM MLP widths (recframe's default, FuxiCTR's DeepFM_base)")
    p.add_argument("--dcnv2-hidden", default="500,500,500",
                   help="DCNv2 MLP widths (recframe's default, FuxiCTR's DCNv2_base)")
    p.add_argument("--cross-layers", type=int, default=3, help="DCNv2 cross layers")
    p.add_argument("--structure", default="parallel", help="DCNv2 structure")
    p.add_argument("--threads", type=int, default=1, help="torch threads of every run")
    p.add_argument("--seeds", default="0,1,2", help="training seeds (one run of each framework "
                   "per seed; the split stays the one of seed 0)")
    p.add_argument("--bf16", action="store_true",
                   help="also run recframe under trainer.precision=bf16-mixed (reported apart)")
    p.add_argument("--no-profile", action="store_true",
                   help="skip the cProfile epoch of each model's first FuxiCTR run")
    p.add_argument("--ml100k", type=Path, default=ml100k_path(),
                   help="the MovieLens-100K folder (u.data, u.item, u.user)")
    p.add_argument("--work-dir", type=Path, default=None,
                   help="keep exported CSVs, logs and run dirs here (default: a temp dir)")
    p.add_argument("--floors", action="store_true",
                   help="measure the dense-arithmetic floor of the recorded DeepFM/DCNv2 "
                   "runs and rebuild the fragment in --out (the frameworks are not rerun)")
    p.add_argument("--rerender", action="store_true",
                   help="only rebuild the markdown of the fragment in --out from its recorded "
                   "runs (after a text change; nothing is rerun)")
    args = p.parse_args(argv)
    if args.rerender:
        rerender(args.out)
        return 0
    if args.floors:
        add_floors(args.out)
        return 0
    models = [m for m in args.models.split(",") if m]
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        p.error(f"unknown model(s) {unknown}; available: {', '.join(MODELS)}")
    lrs = _lrs(args.lrs)
    seeds = tuple(int(x) for x in args.seeds.split(",") if x)
    if args.small:
        models = [m for m in models if m in ("lr", "deepfm")] or models[:1]
        args.epochs, seeds = 1, seeds[:1]
        args.deepfm_hidden = args.dcnv2_hidden = "64"
    logging.basicConfig(level=logging.WARNING)
    install = ensure_fuxictr_venv()
    base = ["dataset=ml-100k-ctr", f"dataset.path={args.ml100k}", "dataset.download=false",
            "evaluation=ctr", "metrics=ctr", "split.seed=0"]
    hidden = {"deepfm": _layers(args.deepfm_hidden), "dcnv2": _layers(args.dcnv2_hidden)}
    protocols = [Protocol(m, args.epochs, args.batch, lrs[m], dim=args.dim,
                          hidden=hidden.get(m, ()), cross_layers=args.cross_layers,
                          structure=args.structure, threads=args.threads, seeds=seeds,
                          profile=not args.no_profile, bf16=args.bf16) for m in models]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fuxictr_compare-") as tmp:
        work = args.work_dir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        export, pairs = run_all(protocols, base, work)
    n_train = export["counts"]["train"]["rows"]
    figures: dict[str, Any] = {"fuxictr_compare_threads": args.threads}
    for pair in pairs:
        figures.update(pair.figures(n_train))
    details = {
        "install": install,
        "requirements": REQUIREMENTS.read_text().splitlines(),
        "constraints": CONSTRAINTS.read_text().splitlines(),
        "export": export,
        "total_seconds": round(time.perf_counter() - start, 1),
        "runs": [{"protocol": {**pair.protocol.__dict__},
                  "recframe": pair.recframe_runs,
                  "recframe_bf16": pair.recframe_bf16_runs,
                  "fuxictr": [{k: v for k, v in r.items() if k != "spec"}
                              for r in pair.fuxictr_runs]} for pair in pairs],
    }
    md = markdown(pairs, export, figures, install)
    common.write_fragment(NAME, args.out, figures, md, details)
    return 0


if __name__ == "__main__":
    sys.exit(main())

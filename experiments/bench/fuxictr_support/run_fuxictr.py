"""Train and test one FuxiCTR 2.3.10 model on train/valid/test CSV files, timing each phase.

Runs inside ``.venv-fuxictr/`` (FuxiCTR's own environment; nothing from recframe
is imported)::

    .venv-fuxictr/bin/python run_fuxictr.py SPEC.json RESULT.json

``SPEC.json``:

- ``data_dir``: folder with ``train.csv``, ``valid.csv``, ``test.csv`` (header row;
  the label column plus one column per field);
- ``work_dir``: an empty folder for FuxiCTR's parquet files, feature map and checkpoints;
- ``label`` (column name, default ``label``) and ``fields``: a list of
  ``{"name", "type"}`` with type ``categorical`` (strings), ``numeric`` (floats, may be
  empty) or ``sequence`` (multi-valued strings joined by ``splitter``, default ``^``;
  optional ``max_len``); optional ``min_categr_count`` (default 1); a numeric field
  may set ``normalizer`` (``null``: the values are used as they are);
- ``model`` (``lr``, ``fm``, ``deepfm``, ``dcnv2``), ``embedding_dim``, ``batch_size``,
  ``lr`` (Adam), ``epochs``, ``seed``, ``threads`` (torch threads of this process);
- ``model_params``: extra keyword arguments of the model (``hidden_units``,
  ``parallel_dnn_hidden_units``, ``num_cross_layers``, ``net_dropout``, ...);
- ``numeric_normalizer``: FuxiCTR's normalizer of numeric fields without their own
  ``normalizer`` (default ``StandardScaler``);
- ``breakdown`` (default true): after the test evaluation, time the training data loader
  alone (one pass, no model) and the model alone (``train_step`` over batches collected
  beforehand, one epoch); ``profile`` (default false): then run one more epoch under
  ``cProfile`` and record where the driver's time goes.

The pipeline is FuxiCTR's own, as its ``run_expid.py`` drives it:
``FeatureProcessor`` + ``build_dataset`` (polars reads the CSVs and fits the
vocabularies / normalizers on the train part; Ray Data transforms every part into
a parquet file), ``FeatureMap.load``, ``RankDataLoader(data_format="parquet")``
(Ray Data's ``iter_torch_batches``, train part reshuffled every epoch), and the
model's ``BaseModel.train_epoch`` / ``train_step`` (Adam, binary cross-entropy on
the sigmoid output, gradient norm clipped at 10) and ``evaluate`` (sklearn's
``roc_auc_score`` and ``log_loss``). The models are ``fuxictr_models.py`` (the zoo's
models, rebuilt on the installed layers: the pip package ships none of them).

One departure from ``BaseModel.fit``: ``fit`` evaluates on the validation part
after every epoch, lowers the learning rate when the monitored AUC stops
improving, stops early and reloads the best checkpoint. Here the epochs are a
fixed number and the final weights are tested, as on the recframe side, so this
script calls ``train_epoch`` itself (with the attributes ``fit`` would set and
validation turned off) and times each call.

Missing numeric values are filled with the train part's mean before FuxiCTR's
``StandardScaler`` (FuxiCTR's own ``fill_na``, whose default of 0.0 would put an
unknown release year at year 0), so they become 0 after scaling; without a
normalizer they are filled with 0.

The result file holds test (and validation) AUC and log loss, every epoch's wall
seconds and training rows per second, the seconds each epoch waited on the data
loader (``iter()`` and ``next()``; ``iter()`` alone too), the CPU seconds of this
process and of all its descendants (Ray's raylet, GCS and workers) per epoch, the
preprocessing and evaluation seconds, the breakdown passes and this process's
peak RSS.
"""

from __future__ import annotations

import cProfile
import json
import logging
import os
import pstats
import resource
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

METRICS = ["AUC", "logloss"]
#: ``BaseModel.fit``'s default gradient clipping
MAX_GRADIENT_NORM = 10.0


def peak_rss_gib() -> float:
    """Peak resident set size of this process, in GiB (Linux ``ru_maxrss`` is KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)


def _proc_cpu_seconds(pid: int) -> tuple[float, int] | None:
    """(utime + stime + reaped children's, parent pid) of ``pid`` from /proc, if alive."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
    ticks = sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK"), int(fields[1])


def cpu_seconds_tree(root: int | None = None) -> dict[str, float]:
    """CPU seconds of this process and of all its live descendants (Ray's processes)."""
    root = os.getpid() if root is None else root
    table: dict[int, tuple[float, int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            got = _proc_cpu_seconds(int(entry))
            if got is not None:
                table[int(entry)] = got
    children: dict[int, list[int]] = {}
    for pid, (_, ppid) in table.items():
        children.setdefault(ppid, []).append(pid)
    own = table.get(root, (0.0, 0))[0]
    total, stack = 0.0, [root]
    while stack:
        pid = stack.pop()
        total += table.get(pid, (0.0, 0))[0]
        stack.extend(children.get(pid, []))
    return {"self": own, "tree": total}


class TimedLoader:
    """Wraps a FuxiCTR data loader: the seconds spent in ``iter()`` and ``next()`` per pass."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader
        self.wait_seconds = 0.0  # iter() and every next()
        self.iter_seconds = 0.0  # iter() alone
        self.batches = 0

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Any]:
        # iter() counts too: FuxiCTR's ParquetDataLoader materializes and shuffles there
        self.batches = 0
        start = time.perf_counter()
        it = iter(self.loader)
        self.iter_seconds = self.wait_seconds = time.perf_counter() - start
        while True:
            start = time.perf_counter()
            try:
                batch = next(it)
            except StopIteration:
                self.wait_seconds += time.perf_counter() - start
                return
            self.wait_seconds += time.perf_counter() - start
            self.batches += 1
            yield batch


def feature_cols(spec: dict[str, Any], train_csv: Path) -> list[dict[str, Any]]:
    """FuxiCTR ``feature_cols`` for the spec's fields (numeric gaps filled with train means)."""
    import polars as pl

    numeric = [f["name"] for f in spec["fields"] if f["type"] == "numeric"]
    means: dict[str, float] = {}
    if numeric:
        frame = pl.read_csv(train_csv, columns=numeric,
                            schema_overrides={n: pl.Float64 for n in numeric})
        means = {n: float(frame[n].mean()) for n in numeric}
    cols = []
    for f in spec["fields"]:
        col: dict[str, Any] = {"name": f["name"], "active": True, "type": f["type"]}
        if f["type"] == "categorical":
            col.update(dtype="str", min_categr_count=f.get("min_categr_count", 1))
        elif f["type"] == "numeric":
            normalizer = f.get("normalizer", spec.get("numeric_normalizer", "StandardScaler"))
            col.update(dtype="float", fill_na=means[f["name"]] if normalizer else 0.0)
            if normalizer:
                col["normalizer"] = normalizer
        elif f["type"] == "sequence":
            col.update(dtype="str", splitter=f.get("splitter", "^"), padding="post",
                       min_categr_count=f.get("min_categr_count", 1))
            if f.get("max_len"):
                col["max_len"] = int(f["max_len"])
        else:
            raise SystemExit(f"field {f['name']!r}: type {f['type']!r} is not one of "
                             "categorical, numeric, sequence")
        cols.append(col)
    return cols


def _init_training(model: Any, steps_per_epoch: int) -> None:
    """The attributes ``BaseModel.fit`` sets before its first ``train_epoch``, with
    validation turned off (``_eval_steps`` beyond the last step)."""
    model._max_gradient_norm = MAX_GRADIENT_NORM
    model._best_metric = -float("inf")
    model._stopping_steps = 0
    model._stop_training = False
    model._steps_per_epoch = steps_per_epoch
    model._total_steps = 0
    model._batch_index = 0
    model._epoch_index = 0
    model._eval_steps = 2**62
    model.valid_gen = None


def _evaluate(model: Any, gen: Any) -> tuple[dict[str, float], float]:
    start = time.perf_counter()
    logs = model.evaluate(gen, metrics=METRICS)
    return {k.lower(): float(v) for k, v in logs.items()}, time.perf_counter() - start


def profile_epoch(model: Any, train_gen: Any, top: int = 25) -> dict[str, Any]:
    """One more ``train_epoch`` under cProfile: the driver's own seconds grouped by the
    package of each function (tottime), and the top functions by cumulative time."""
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    model.train_epoch(train_gen)
    profiler.disable()
    wall = time.perf_counter() - start
    stats = pstats.Stats(profiler)
    by_package: dict[str, float] = {}
    rows = []
    for (filename, line, name), (_, ncalls, tottime, cumtime, _) in stats.stats.items():
        package = _package(filename)
        by_package[package] = by_package.get(package, 0.0) + tottime
        rows.append({"function": f"{package}:{Path(filename).name}:{line}({name})",
                     "calls": ncalls, "tottime": round(tottime, 4), "cumtime": round(cumtime, 4)})
    rows.sort(key=lambda r: -r["cumtime"])
    return {"wall_seconds": round(wall, 3),
            "tottime_by_package": {k: round(v, 3) for k, v in
                                   sorted(by_package.items(), key=lambda kv: -kv[1])},
            "top_cumulative": rows[:top]}


def _package(filename: str) -> str:
    """``.../site-packages/ray/data/x.py`` -> ``ray``; builtins -> ``builtins``."""
    if filename.startswith("~") or filename.startswith("<"):
        return "builtins"
    parts = Path(filename).parts
    for marker in ("site-packages", "dist-packages"):
        if marker in parts:
            return parts[parts.index(marker) + 1]
    if str(HERE) in filename:
        return "benchmark"
    return "stdlib"


def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Preprocess, train for ``epochs``, evaluate, then the optional breakdown passes."""
    t_import = time.perf_counter()
    import fuxictr
    import torch
    from fuxictr.features import FeatureMap
    from fuxictr.preprocess import FeatureProcessor, build_dataset
    from fuxictr.pytorch.dataloaders import RankDataLoader
    from fuxictr.pytorch.torch_utils import seed_everything
    from fuxictr_models import MODELS
    import_seconds = time.perf_counter() - t_import

    torch.set_num_threads(int(spec.get("threads", 1)))
    data_dir, work = Path(spec["data_dir"]), Path(spec["work_dir"])
    work.mkdir(parents=True, exist_ok=True)
    dataset_id = "data"
    if (work / dataset_id / "feature_map.json").exists():
        raise SystemExit(f"{work / dataset_id} holds an earlier run: give an empty work_dir "
                         "(FuxiCTR's build_dataset skips an existing feature map)")
    label = spec.get("label", "label")
    parts = {p: str(data_dir / f"{p}.csv") for p in ("train", "valid", "test")}
    out: dict[str, Any] = {"versions": {"fuxictr": fuxictr.__version__,
                                        "torch": torch.__version__},
                           "threads": torch.get_num_threads(),
                           "import_seconds": round(import_seconds, 3)}

    # FuxiCTR's preprocessing: polars fit on train, Ray Data transform to parquet
    start = time.perf_counter()
    processor = FeatureProcessor(feature_cols=feature_cols(spec, data_dir / "train.csv"),
                                 label_col={"name": label, "dtype": "float"},
                                 dataset_id=dataset_id, data_root=str(work))
    train_data, valid_data, test_data = build_dataset(
        processor, train_data=parts["train"], valid_data=parts["valid"],
        test_data=parts["test"], data_format="csv")
    out["preprocess_seconds"] = round(time.perf_counter() - start, 3)

    start = time.perf_counter()
    feature_map = FeatureMap(dataset_id, str(work / dataset_id))
    feature_map.load(str(work / dataset_id / "feature_map.json"),
                     params={"embedding_dim": spec["embedding_dim"]})
    train_gen, valid_gen, test_gen = RankDataLoader(
        feature_map, stage="both", train_data=train_data, valid_data=valid_data,
        test_data=test_data, batch_size=int(spec["batch_size"]), shuffle=True,
        data_format="parquet")
    out["loader_setup_seconds"] = round(time.perf_counter() - start, 3)
    out["features"] = {name: {k: v for k, v in f.items() if k != "source"}
                       for name, f in feature_map.features.items()}
    out.update(n_train=train_gen.num_samples, n_valid=valid_gen.num_samples,
               n_test=test_gen.num_samples, batches_per_epoch=len(train_gen))

    seed_everything(seed=int(spec.get("seed", 0)))
    name = spec["model"]
    if name not in MODELS:
        raise SystemExit(f"model {name!r}: one of {sorted(MODELS)}")
    model = MODELS[name](feature_map, model_id=name, gpu=-1, learning_rate=float(spec["lr"]),
                         embedding_dim=int(spec["embedding_dim"]), optimizer="adam",
                         loss="binary_crossentropy", verbose=0, metrics=METRICS,
                         model_root=str(work / "checkpoints"),
                         **spec.get("model_params", {}))
    out["n_parameters"] = sum(p.numel() for p in model.parameters() if p.requires_grad)

    timed = TimedLoader(train_gen)
    _init_training(model, len(train_gen))
    epochs = []
    for epoch in range(int(spec["epochs"])):
        model._epoch_index = epoch
        cpu0 = cpu_seconds_tree()
        start = time.perf_counter()
        model.train_epoch(timed)
        seconds = time.perf_counter() - start
        cpu1 = cpu_seconds_tree()
        epochs.append({"seconds": round(seconds, 4),
                       "rows_per_second": round(train_gen.num_samples / seconds, 1),
                       "loader_wait_seconds": round(timed.wait_seconds, 4),
                       "loader_iter_seconds": round(timed.iter_seconds, 4),
                       "batches": timed.batches,
                       "cpu_seconds_self": round(cpu1["self"] - cpu0["self"], 2),
                       "cpu_seconds_tree": round(cpu1["tree"] - cpu0["tree"], 2)})
        print(f"epoch {epoch + 1}: {seconds:.2f} s, waited {timed.wait_seconds:.2f} s on "
              "the loader", flush=True)
    out["epochs"] = epochs

    out["test"], out["test_eval_seconds"] = _evaluate(model, test_gen)
    out["valid"], out["valid_eval_seconds"] = _evaluate(model, valid_gen)
    out["test_eval_seconds"] = round(out["test_eval_seconds"], 4)
    out["valid_eval_seconds"] = round(out["valid_eval_seconds"], 4)
    print(f"test: {out['test']}", flush=True)

    if spec.get("breakdown", True):
        # (after the test: these passes train the model further)
        start = time.perf_counter()
        it = iter(train_gen)
        loader_iter = time.perf_counter() - start
        n = sum(1 for _ in it)
        loader_alone = time.perf_counter() - start
        batches = list(train_gen)
        model.train()
        start = time.perf_counter()
        for batch in batches:
            model.train_step(batch)
        compute_alone = time.perf_counter() - start
        out["breakdown"] = {
            "loader_alone_seconds": round(loader_alone, 4), "loader_batches": n,
            "loader_alone_iter_seconds": round(loader_iter, 4),
            "train_steps_alone_seconds": round(compute_alone, 4),
            "train_steps": len(batches),
            "note": "loader_alone: one pass over the shuffled training loader, no model "
                    "(loader_alone_iter: its iter() call, where Ray Data materializes and "
                    "shuffles the dataset); "
                    "train_steps_alone: BaseModel.train_step (forward, loss, backward, "
                    "clipping, Adam) over the same number of batches collected beforehand"}
    if spec.get("profile", False):
        out["profile"] = profile_epoch(model, train_gen)
    out["peak_rss_gib"] = peak_rss_gib()
    return out


def main() -> None:
    spec_path, result_path = Path(sys.argv[1]), Path(sys.argv[2])
    logging.basicConfig(level=logging.WARNING)
    spec = json.loads(spec_path.read_text())
    result = run(spec)
    result["spec"] = spec
    result_path.write_text(json.dumps(result, indent=2))
    # Ray's background processes are stopped with the driver
    import ray

    if ray.is_initialized():
        ray.shutdown()


if __name__ == "__main__":
    main()

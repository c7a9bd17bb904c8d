"""Train and test one RecBole 1.2.1 model on pre-split atomic files, timing each phase.

Runs inside ``.venv-recbole/`` (RecBole's own environment; nothing from
recframe is imported)::

    .venv-recbole/bin/python run_recbole.py SPEC.json RESULT.json

``SPEC.json`` holds ``model`` (``BPR`` or ``SASRec``), ``data_path`` and
``dataset`` (the folder ``<data_path>/<dataset>/`` with
``<dataset>.{train,valid,test}.inter``), ``threads`` and ``config`` (RecBole
config keys, merged over the defaults below). The result file gets the seconds
of every training epoch (each ``Trainer._train_epoch`` call), of the
validation and the test full-ranking evaluations (each ``Trainer.evaluate``
call), the test NDCG@10 and this process's peak RSS.

With ``"repeat_test": N`` in the spec the test evaluation then runs N more times
(same weights, same loader): ``test_eval_seconds`` lists the first (cold: the
process's first full ranking) and the repeats (warm).

With ``"test_best": true`` in the spec (default false: test the final weights, as
``recbole_compare`` does), training keeps RecBole's best-validation checkpoint
(``fit(saved=True)``, early stopping on ``valid_metric`` after ``stopping_step``
evaluations without improvement) and the test evaluation loads it
(``evaluate(load_best_model=True)``); the result then also holds every validation
result, the best validation score and its epoch.

Shims applied here at run time (site-packages is never edited):

- ``torch.load`` defaults to ``weights_only=False`` again: torch >= 2.6 made it
  ``True``, and RecBole's checkpoints pickle its ``Config`` object, so
  ``Trainer.evaluate(load_best_model=True)`` / ``resume_checkpoint`` would fail.
  (This benchmark tests the final weights and saves no checkpoint, so the shim
  is a safety net.)
- Sequential models (SASRec): RecBole's full-ranking loader gives no
  ``history_index`` for sequential models, i.e. it does not mask items the
  user has already interacted with; recframe masks train (valid) and
  train + valid (test) items for every model. With ``mask_history: true`` the
  loader's ``collate_fn`` is wrapped to mask the same items (each user's full
  train / train + valid set, read from the atomic files), so both frameworks
  compute NDCG@10 over the same candidates.
- ``Pop`` (only with ``pop_count_fix: true``): RecBole 1.2.1's
  ``Pop.calculate_loss`` adds one with ``item_cnt[item] = item_cnt[item] + 1``, so an
  item that occurs several times in one training batch is counted once (RecBole
  issues #1844 and #2198, fix proposed in PR #2199): its popularity depends on the
  batch size. The fix counts every occurrence (``index_add_``), as that PR does.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import resource
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

DEFAULTS: dict[str, Any] = {
    "USER_ID_FIELD": "user_id",
    "ITEM_ID_FIELD": "item_id",
    "TIME_FIELD": "timestamp",
    "load_col": None,  # every column of the atomic files
    "benchmark_filename": ["train", "valid", "test"],
    "metrics": ["NDCG"],
    "topk": [10],
    "valid_metric": "NDCG@10",
    "metric_decimal_place": 6,
    "seed": 0,
    "reproducibility": True,
    "show_progress": False,
    "save_dataset": False,
    "save_dataloaders": False,
    "log_wandb": False,
    "worker": 0,
    "use_gpu": False,
    "gpu_id": "",
    "state": "WARNING",
}


def peak_rss_gib() -> float:
    """Peak resident set size of this process, in GiB (Linux ``ru_maxrss`` is KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)


def shim_torch_load() -> None:
    """Make ``torch.load`` default to ``weights_only=False`` (the pre-2.6 behaviour)."""
    import torch

    original = torch.load

    @functools.wraps(original)
    def load(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("weights_only", False)
        return original(*args, **kwargs)

    torch.load = load


def shim_pop_count() -> None:
    """Make RecBole's ``Pop`` count every occurrence of an item in a batch (see above)."""
    import torch
    from recbole.model.general_recommender.pop import Pop

    def calculate_loss(self: Any, interaction: Any) -> Any:
        item = interaction[self.ITEM_ID]
        ones = torch.ones(len(item), 1, dtype=self.item_cnt.dtype, device=self.item_cnt.device)
        self.item_cnt.index_add_(0, item, ones)
        self.max_cnt = torch.max(self.item_cnt, dim=0)[0]
        return torch.nn.Parameter(torch.zeros(1)).to(self.device)

    Pop.calculate_loss = calculate_loss


def read_seen(folder: Path, dataset: str, parts: tuple[str, ...]) -> dict[str, list[str]]:
    """Per user token, the item tokens of the given parts' atomic files (targets and
    sequence inputs alike), i.e. everything the user interacted with in those parts."""
    seen: dict[str, set[str]] = {}
    for part in parts:
        with open(folder / f"{dataset}.{part}.inter") as f:
            header = f.readline().rstrip("\n").split("\t")
            names = [h.split(":")[0] for h in header]
            u, i = names.index("user_id"), names.index("item_id")
            seq = names.index("item_id_list") if "item_id_list" in names else None
            for line in f:
                cols = line.rstrip("\n").split("\t")
                items = seen.setdefault(cols[u], set())
                items.add(cols[i])
                if seq is not None and cols[seq]:
                    items.update(cols[seq].split(" "))
    return {user: sorted(items) for user, items in seen.items()}


def install_history_mask(dataset: Any, valid_seen: dict[str, list[str]],
                         test_seen: dict[str, list[str]], loaders: dict[str, Any]) -> None:
    """Mask each user's seen items in sequential full-ranking evaluation (see module doc)."""
    import torch

    def to_ids(seen: dict[str, list[str]]) -> dict[int, torch.Tensor]:
        users = dataset.token2id(dataset.uid_field, list(seen))
        return {int(u): torch.as_tensor(dataset.token2id(dataset.iid_field, seen[tok]),
                                        dtype=torch.int64)
                for u, tok in zip(users, seen, strict=True)}

    for name, seen in (("valid", valid_seen), ("test", test_seen)):
        loader = loaders[name]
        history = to_ids(seen)
        original = loader.collate_fn

        def collate(index: Any, original: Callable[..., Any] = original,
                    history: dict[int, torch.Tensor] = history, loader: Any = loader) -> Any:
            interaction, history_index, positive_u, positive_i = original(index)
            if history_index is None:
                users = interaction[loader.uid_field].tolist()
                items = [history.get(int(u), torch.empty(0, dtype=torch.int64)) for u in users]
                rows = torch.repeat_interleave(torch.arange(len(users)),
                                               torch.tensor([len(x) for x in items]))
                history_index = (rows, torch.cat(items))
            return interaction, history_index, positive_u, positive_i

        # RecBole's loaders subclass torch's DataLoader, whose iterators read
        # ``loader.collate_fn`` when an epoch starts: replacing the attribute suffices.
        loader.collate_fn = collate


class Timings:
    """Seconds of each training epoch and of each evaluation, by phase."""

    def __init__(self) -> None:
        self.epochs: list[float] = []
        self.valid: list[float] = []
        self.test: list[float] = []
        self.valid_results: list[dict[str, float]] = []
        self.phase = "valid"


class _Capped:
    """A train loader that stops after ``limit`` batches (timing a partial epoch)."""

    def __init__(self, loader: Any, limit: int) -> None:
        self._loader, self._limit = loader, limit

    def __iter__(self) -> Iterator[Any]:
        for i, batch in enumerate(self._loader):
            if i >= self._limit:
                break
            yield batch

    def __len__(self) -> int:
        return min(len(self._loader), self._limit)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


def instrument(trainer: Any, timings: Timings, max_batches: int | None) -> None:
    """Wrap ``trainer._train_epoch`` and ``trainer.evaluate`` with wall-clock timers."""
    train_epoch, evaluate = trainer._train_epoch, trainer.evaluate

    def timed_train_epoch(train_data: Any, *args: Any, **kwargs: Any) -> Any:
        if max_batches:
            train_data = _Capped(train_data, max_batches)
        start = time.perf_counter()
        out = train_epoch(train_data, *args, **kwargs)
        timings.epochs.append(time.perf_counter() - start)
        print(f"recbole: epoch {len(timings.epochs)} {timings.epochs[-1]:.2f} s "
              f"loss {out:.4f}" if isinstance(out, float) else "", file=sys.stderr, flush=True)
        return out

    def timed_evaluate(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        out = evaluate(*args, **kwargs)
        getattr(timings, timings.phase).append(time.perf_counter() - start)
        if timings.phase == "valid" and isinstance(out, dict):
            timings.valid_results.append({str(k).lower(): float(v) for k, v in out.items()})
        return out

    trainer._train_epoch = timed_train_epoch
    trainer.evaluate = timed_evaluate


def best_epoch(scores: list[float], eval_step: int, bigger: bool = True) -> int | None:
    """The epoch (1-based) whose weights RecBole keeps as best: like its
    ``early_stopping``, a score equal to the best so far replaces it."""
    best, epoch = None, None
    for i, score in enumerate(scores):
        if best is None or (score >= best if bigger else score <= best):
            best, epoch = score, (i + 1) * max(eval_step, 1)
    return epoch


def main(spec_path: str, result_path: str) -> int:
    """Run the spec's model (see the module docstring) and write the result JSON."""
    spec = json.loads(Path(spec_path).read_text())
    threads = int(spec["threads"])
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)
    warnings.filterwarnings("ignore")
    import torch

    shim_torch_load()
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    torch.set_num_threads(threads)
    config_dict = {**DEFAULTS, "data_path": spec["data_path"], **spec["config"]}
    mask_history = bool(config_dict.pop("mask_history", False))
    max_batches = config_dict.pop("max_train_batches", None)
    test_best = bool(spec.get("test_best", False))
    pop_count_fix = bool(config_dict.pop("pop_count_fix", False))
    if pop_count_fix:
        shim_pop_count()
    t0 = time.perf_counter()
    config = Config(model=spec["model"], dataset=spec["dataset"], config_dict=config_dict)
    init_seed(config["seed"], config["reproducibility"])
    logging.getLogger().setLevel(logging.WARNING)
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    if mask_history:
        folder = Path(spec["data_path"]) / spec["dataset"]
        install_history_mask(
            dataset, read_seen(folder, spec["dataset"], ("train",)),
            read_seen(folder, spec["dataset"], ("train", "valid")),
            {"valid": valid_data, "test": test_data})
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    load_seconds = time.perf_counter() - t0
    torch.set_num_threads(threads)  # in case anything above changed it
    timings = Timings()
    instrument(trainer, timings, max_batches)
    rss_loaded = peak_rss_gib()

    t = time.perf_counter()
    trainer.fit(train_data, valid_data, saved=test_best, show_progress=False, verbose=False)
    fit_seconds = time.perf_counter() - t
    timings.phase = "test"
    test = trainer.evaluate(test_data, load_best_model=test_best, show_progress=False)
    for _ in range(int(spec.get("repeat_test", 0))):  # warm passes, timed by instrument()
        trainer.evaluate(test_data, load_best_model=False, show_progress=False)
    result = {
        "framework": "recbole",
        "model": spec["model"],
        "threads": torch.get_num_threads(),
        "epoch_seconds": timings.epochs,
        "valid_eval_seconds": timings.valid,
        "test_eval_seconds": timings.test,
        "fit_seconds": fit_seconds,
        "load_seconds": load_seconds,
        "max_train_batches": max_batches,
        "train_batches_per_epoch": len(train_data),
        "train_rows": len(train_data._dataset),
        "n_users": dataset.user_num - 1,  # RecBole counts the [PAD] user
        "n_items": dataset.item_num - 1,  # and the [PAD] item
        "n_test_users": test_data.sample_size,
        "test": {k.lower(): float(v) for k, v in test.items()},
        "ndcg@10": float(test["ndcg@10"]),
        "mask_history": mask_history,
        "test_best": test_best,
        "pop_count_fix": pop_count_fix,
        "epochs_trained": len(timings.epochs),
        "peak_rss_gib": peak_rss_gib(),
        "peak_rss_after_load_gib": rss_loaded,
        "versions": {"recbole": __import__("recbole").__version__,
                     "torch": torch.__version__, "numpy": __import__("numpy").__version__,
                     "pandas": __import__("pandas").__version__},
    }
    if test_best:
        metric = str(config["valid_metric"]).lower()
        scores = [r[metric] for r in timings.valid_results if metric in r]
        result.update({
            "valid_metric": metric,
            "valid_results": timings.valid_results,
            "best_valid_score": float(trainer.best_valid_score),
            "best_valid_result": {k.lower(): float(v)
                                  for k, v in (trainer.best_valid_result or {}).items()},
            "best_epoch": best_epoch(scores, int(config["eval_step"]),
                                     bool(config["valid_metric_bigger"])),
            "stopped_early": len(timings.epochs) < int(trainer.epochs),
            "max_epochs": int(trainer.epochs),
        })
    Path(result_path).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))

"""Reference implementations: RecBole 1.2.1's own models trained on recframe's ML-100K split.

Published ML-100K tables use other protocols (other positives, other splits,
sampled ranking), so they cannot sit beside recframe's committed figures. The
strongest reference is therefore RecBole's implementation of the same model,
trained and tested on exactly recframe's split:

- the split is protocol 1 of the committed families table
  (``experiments/results/ml100k_families``): ``dataset=ml-100k
  preprocess=implicit split=random`` (ratings >= 4 as positives, 80/10/10 per
  user) with ``seed=<s>``, made once by recframe's pipeline
  (``recbole_support/recframe_side.py export``) and handed to RecBole as
  pre-split atomic files (``benchmark_filename``); RecBole's user/item/test-user
  counts are checked against recframe's, and the split's data fingerprint
  against the families runs' one where it is known;
- RecBole trains ``Pop``, ``ItemKNN``, ``EASE``, ``BPR``, ``LightGCN`` and
  ``NeuMF`` (one process each, ``recbole_support/run_recbole.py`` with
  ``test_best``) with early stopping on the validation NDCG@10
  (``stopping_step`` evaluations without improvement), full ranking with train
  (+ valid) items masked, and tests the best-validation checkpoint;
- hyperparameters are RecBole's defaults (``recbole/properties/model/*.yaml``)
  except embedding size 64 and, where the concept matches, the values of
  recframe's ``conf/model/<name>.yaml`` (training batch size, learning rate,
  EASE's lambda, ItemKNN's neighbours and shrinkage), read from those files;
- recframe's side is read from the committed report
  (``experiments/results/ml100k_families/report.csv``: mean and std over its
  seeds, and the value of each seed), never rerun here.
"""

from __future__ import annotations

import json
import logging
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import recbole_compare as rc  # noqa: E402

NAME = "recbole_reference"
MODELS = ("Pop", "ItemKNN", "EASE", "BPR", "LightGCN", "NeuMF")
# Rows beyond the six: RecBole's Pop exactly as shipped (its batch-dependent count).
VARIANTS = ("PopShipped",)
METRICS = ("ndcg@10", "recall@10", "mrr@10")
METRIC_LABELS = {"ndcg@10": "NDCG@10", "recall@10": "Recall@10", "mrr@10": "MRR@10"}
CONF = common.ROOT / "conf"
FAMILIES_REPORT = common.ROOT / "experiments" / "results" / "ml100k_families" / "report.csv"
# Data fingerprints (results.json protocol.data_fingerprint) of the committed families
# runs' protocol-1 split, by seed (runs families_a/3, /4, /5: bpr seeds 0, 1, 2).
FAMILIES_FINGERPRINTS = {0: "30d8107383b3c4f4", 1: "0ae35cab036a27c6", 2: "9c7fe7f105143c8c"}
SPLIT_OVERRIDES = ["preprocess=implicit", "split=random"]
log = logging.getLogger(NAME)


def label(key: str) -> str:
    """The table row of a model key."""
    return "Pop (RecBole as shipped)" if key == "PopShipped" else key


def recframe_name(key: str) -> str:
    """recframe's model name (``conf/model/<name>.yaml``, report.csv) of a model key."""
    return "pop" if key == "PopShipped" else key.lower()


# -- settings ---------------------------------------------------------------------------


def recframe_model_conf(name: str, conf: Path = CONF) -> dict[str, Any]:
    """recframe's ``conf/model/<name>.yaml``, with ``lr`` filled in from the default
    optimizer (``conf/optim/adam.yaml``) when the model does not override it."""
    cfg = yaml.safe_load((conf / "model" / f"{name}.yaml").read_text()) or {}
    optim = yaml.safe_load((conf / "optim" / "adam.yaml").read_text()) or {}
    cfg.setdefault("lr", optim.get("lr"))
    return cfg


@dataclass
class Setting:
    """RecBole's configuration of one model and how it relates to recframe's."""

    key: str  # --models name and table row
    model: str  # RecBole model class
    config: dict[str, Any]
    recbole: str  # the settings, in words
    recframe: str  # recframe's corresponding settings (conf/model/<name>.yaml)
    differences: str
    trained: bool = False  # gradient-trained (epochs, early stopping) vs closed form


def model_setting(key: str, epochs: int, neumf_epochs: int, conf: Path = CONF) -> Setting:
    """RecBole's configuration of model ``key``: its defaults plus the shared concepts."""
    model = "Pop" if key == "PopShipped" else key
    rf = recframe_model_conf(model.lower(), conf)
    if key == "Pop":
        return Setting(
            key, model, {"train_neg_sample_args": None, "pop_count_fix": True},
            "train interaction counts: `train_neg_sample_args: None` and the count fix of "
            "RecBole PR #2199 (`pop_count_fix`, see below)",
            "train interaction counts", "none")
    if key == "PopShipped":
        return Setting(
            key, model, {},
            "RecBole as shipped: defaults `train_batch_size: 2048`, 1 uniform negative "
            "per positive, no count fix",
            "train interaction counts",
            "RecBole counts an item once per training batch however often it occurs there "
            "(issues #1844/#2198), and counts the sampled negatives too")
    if model == "ItemKNN":
        k, shrink = int(rf["neighbours"]), float(rf["shrink"])
        return Setting(
            key, model, {"k": k, "shrink": shrink, "knn_method": "item",
                    "train_neg_sample_args": None},
            f"`k: {k}`, `shrink: {shrink:g}`, `knn_method: item` (cosine with shrinkage)",
            f"`neighbours: {k}`, `shrink: {shrink:g}`, `normalize: {rf.get('normalize')}`",
            "recframe scales each item's kept similarities to sum to 1 (`normalize`), RecBole "
            "scores with the raw shrunk cosines; test scores from train-only history in "
            "RecBole, train + valid history in recframe (see below)")
    if model == "EASE":
        lam = float(rf["l2"])
        return Setting(
            key, model, {"reg_weight": lam, "train_neg_sample_args": None},
            f"`reg_weight: {lam:g}` (RecBole's default is also 250)",
            f"`l2: {lam:g}`",
            "same closed form (B = I - P / diag(P)); test scores from train-only history in "
            "RecBole, train + valid history in recframe (see below)")
    if model == "BPR":
        batch, lr = int(rf["batch_size"]), float(rf["lr"])
        return Setting(
            key, model, {"embedding_size": 64, "train_batch_size": batch, "learning_rate": lr,
                         "epochs": epochs},
            f"`embedding_size: 64`, `train_batch_size: {batch}`, `learning_rate: {lr:g}`, "
            "Adam, 1 uniform negative per positive (RecBole default), no regularisation",
            f"`embedding_dim: {rf['embedding_dim']}`, `batch_size: {batch}`, lr {lr:g} "
            f"(`optim.lr`), `num_negatives: {rf['num_negatives']}`, `reg: {rf['reg']}`",
            f"init: RecBole Xavier-normal, recframe normal(0, {rf['init_std']})",
            trained=True)
    if model == "LightGCN":
        batch, lr = int(rf["batch_size"]), float(rf["lr"])
        return Setting(
            key, model, {"embedding_size": 64, "train_batch_size": batch, "learning_rate": lr,
                         "epochs": epochs},
            f"`embedding_size: 64`, `train_batch_size: {batch}`, `learning_rate: {lr:g}`; "
            "RecBole defaults `n_layers: 2`, `reg_weight: 1e-05`, 1 uniform negative",
            f"`embedding_dim: {rf['embedding_dim']}`, `batch_size: {batch}`, `lr: {lr:g}`, "
            f"`layers: {rf['layers']}`, `reg: {rf['reg']:g}`, "
            f"`num_negatives: {rf['num_negatives']}`",
            f"layers 2 vs {rf['layers']}, reg 1e-05 vs {rf['reg']:g}, 1 vs "
            f"{rf['num_negatives']} negatives per positive; init Xavier-uniform vs "
            f"normal(0, {rf['init_std']})",
            trained=True)
    if model == "NeuMF":
        positives, lr = int(rf["batch_size"]), float(rf["lr"])
        neg = 1  # RecBole's default train_neg_sample_args: 1 uniform negative, pointwise
        # RecBole's pointwise train_batch_size counts rows after sampling (each positive
        # brings its negatives): positives per step x (1 + negatives) = recframe's batch
        batch = positives * (1 + neg)
        return Setting(
            key, model, {"mf_embedding_size": 64, "mlp_embedding_size": 64,
                         "train_batch_size": batch, "learning_rate": lr,
                         "epochs": neumf_epochs,
                         "train_neg_sample_args": {"distribution": "uniform",
                                                   "sample_num": neg, "alpha": 1.0,
                                                   "dynamic": False, "candidate_num": 0}},
            f"`mf_embedding_size: 64`, `mlp_embedding_size: 64`, `train_batch_size: {batch}` "
            f"(= {positives} positives x (1 + {neg} negative): RecBole counts sampled rows), "
            f"`learning_rate: {lr:g}`; RecBole defaults `mlp_hidden_size: [128, 64]`, "
            "`dropout_prob: 0.1`, BCE, 1 uniform negative per positive",
            f"`gmf_dim: {rf['gmf_dim']}`, `mlp_dim: {rf['mlp_dim']}`, "
            f"`hidden: {rf['hidden']}`, `dropout: {rf['dropout']}`, `reg: {rf['reg']:g}`, "
            f"`num_negatives: {rf['num_negatives']}`, `batch_size: {positives}` positives, "
            f"`lr: {lr:g}`",
            f"towers 64 + 64 vs {rf['gmf_dim']} + {rf['mlp_dim']}, MLP [128, 64] vs "
            f"{rf['hidden']}, dropout 0.1 vs {rf['dropout']}, no reg vs {rf['reg']:g}, 1 vs "
            f"{rf['num_negatives']} negatives per positive",
            trained=True)
    raise ValueError(f"unknown model {key!r}; known: {', '.join(MODELS + VARIANTS)}")


def shared_config(seed: int, stopping_step: int, eval_users: int, n_items: int,
                  checkpoint_dir: Path) -> dict[str, Any]:
    """RecBole keys every model shares: seed, early stopping, full-ranking metrics."""
    return {
        "seed": seed, "eval_step": 1, "stopping_step": stopping_step,
        "valid_metric": "NDCG@10", "valid_metric_bigger": True,
        "metrics": ["Recall", "NDCG", "MRR"], "topk": [10],
        # the split comes from the atomic files (benchmark_filename); RS/RO is inert
        "eval_args": {"split": {"RS": [0.8, 0.1, 0.1]}, "order": "RO", "group_by": "user",
                      "mode": "full"},
        # general models count an eval batch in user x item scores
        "eval_batch_size": eval_users * (n_items + 1),
        "checkpoint_dir": str(checkpoint_dir),
    }


# -- recframe's committed figures -------------------------------------------------------


@dataclass
class Committed:
    """recframe's figures of one model on protocol 1 (one metric)."""

    group: str
    n: int
    mean: float
    std: float
    by_seed: dict[int, float] = field(default_factory=dict)


def read_families(path: Path = FAMILIES_REPORT) -> dict[str, dict[str, Committed]]:
    """``{model: {metric: Committed}}`` of the report's random-split (protocol 1) rows."""
    frame = pd.read_csv(path)
    frame = frame[frame["protocol"].str.contains("split random", regex=False)
                  & ~frame["sampled"].astype(bool)]
    out: dict[str, dict[str, Committed]] = {}
    for (model, metric), rows in frame.groupby(["model", "metric"]):
        if metric not in METRICS:
            continue
        named = rows[rows["group"] == model]
        row = (named if len(named) else rows).iloc[0]
        seeds = [int(s) for s in str(row["seeds"]).split(";")]
        values = [float(v) for v in str(row["values"]).split(";")]
        out.setdefault(str(model), {})[str(metric)] = Committed(
            str(row["group"]), int(row["n_seeds"]), float(row["mean"]), float(row["std"]),
            dict(zip(seeds, values, strict=True)))
    return out


def families_cost(path: Path = FAMILIES_REPORT) -> dict[str, dict[str, float]]:
    """Per model, recframe's mean best epoch and fit seconds on protocol 1."""
    frame = pd.read_csv(path)
    frame = frame[frame["protocol"].str.contains("split random", regex=False)
                  & (frame["metric"] == "ndcg@10")]
    return {str(r["model"]): {"best_epoch": float(r["best_epoch"]),
                              "fit_seconds": float(r["fit_seconds"])}
            for _, r in frame.iterrows()}


# -- running ----------------------------------------------------------------------------


def export_splits(seeds: list[int], ml100k: Path, data_dir: Path, work: Path,
                  threads: int) -> dict[int, dict[str, Any]]:
    """Make recframe's protocol-1 split of every seed and write it as atomic files."""
    jobs = [{"out_dir": str(data_dir), "name": f"ml100k_s{s}", "kind": "general",
             "max_len": 0,
             "overrides": ["dataset=ml-100k", f"dataset.path={ml100k}",
                           "dataset.download=false", *SPLIT_OVERRIDES, f"seed={s}"]}
            for s in seeds]
    cmd = [sys.executable, str(rc.SUPPORT / "recframe_side.py"), "export"]
    infos = rc._run_json(cmd, jobs, work, "export", threads)
    return dict(zip(seeds, infos, strict=True))


def error_line(message: str) -> str:
    """The most telling line of a failed run's log tail (the exception, if any)."""
    lines = [x.strip() for x in message.splitlines() if x.strip()]
    for line in reversed(lines):
        if re.match(r"^[\w.]*(Error|Exception|Exit)\b", line):
            return line[:300]
    return (lines[-1] if lines else "failed")[:300]


def split_problems(export: dict[str, Any], result: dict[str, Any]) -> list[str]:
    """Problems, if any, showing RecBole did not load the exported split."""
    problems = [f"RecBole {key} {result[key]} != recframe {export[key]}"
                for key in ("n_users", "n_items", "n_test_users") if result[key] != export[key]]
    return problems


def run_model(setting: Setting, seed: int, export: dict[str, Any], data_dir: Path,
              work: Path, shared: dict[str, Any], threads: int) -> dict[str, Any]:
    """Train and test one RecBole model on one seed's split; ``{"error": ...}`` on failure."""
    spec = {"model": setting.model, "data_path": str(data_dir), "dataset": f"ml100k_s{seed}",
            "threads": threads, "test_best": True,
            "config": {**shared, **setting.config}}
    cmd = [str(rc.recbole_python()), str(rc.SUPPORT / "run_recbole.py")]
    tag = f"{setting.key}_s{seed}"
    try:
        result = rc._run_json(cmd, spec, work, tag, threads)
    except SystemExit as exc:  # _run_json reports a failed run this way
        print(f"  {tag}: FAILED", flush=True)
        return {"error": error_line(str(exc)), "log_tail": str(exc)[-3000:],
                "config": spec["config"]}
    problems = split_problems(export, result)
    if problems:
        raise SystemExit(f"{tag}: RecBole saw other data than recframe: " + "; ".join(problems))
    result["config"] = spec["config"]
    return result


# -- report -----------------------------------------------------------------------------

NOTES = """What still differs on the identical split, and how to read the gaps:

- **EASE and ItemKNN score test users from different histories.** Both fit their
  item-item weights on train only, but recframe scores a test user from the train + valid
  items (its evaluation context holds every already-seen item), RecBole from the train
  items only (`dataset.inter_matrix` of the train part); the valid items are extra
  evidence for recframe. recframe's ItemKNN also normalises each item's neighbourhood to
  sum to 1.
- **Pop.** RecBole 1.2.1's `Pop` counts an item once per training batch however often
  it occurs in it (`item_cnt[item] = item_cnt[item] + 1`; RecBole issues #1844 and #2198,
  fix in the open PR #2199), so its ranking depends on the batch size, and with the default
  negative sampling it counts the sampled negatives as well. The `Pop` row applies that
  PR's fix at run time (`recbole_support/run_recbole.py`, `pop_count_fix`) and samples no
  negatives; the `Pop (RecBole as shipped)` row is RecBole's default.
- **Trained models** (BPR, LightGCN, NeuMF): the settings table lists what differs beyond
  the shared batch size, learning rate and embedding size (initialisation, LightGCN's
  layers/regularisation/negatives, NeuMF's towers and negatives). Early stopping also
  differs: recframe patience 5 and at most 100 epochs (the families preset; BPR:
  patience 10 and 200 epochs, see `experiments/arm/bpr.yaml`), RecBole
  `stopping_step` 10 and the caps above. One RecBole seed against recframe's seed spread:
  a gap within about two recframe standard deviations is seed noise."""



def _mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def _committed_cell(c: Committed | None) -> str:
    if c is None:
        return "not in the families report"
    return f"{c.mean:.4f} ± {c.std:.4f}" + ("" if c.n == 3 else f" (n={c.n})")


def _same_seeds_cell(c: Committed | None, seeds: list[int]) -> str:
    if c is None:
        return "–"
    values = [c.by_seed[s] for s in seeds if s in c.by_seed]
    if len(values) < len(seeds):
        missing = [s for s in seeds if s not in c.by_seed]
        return (_mean_std(values) + f" (no seed {', '.join(map(str, missing))})" if values
                else f"no seed {', '.join(map(str, missing))}")
    return _mean_std(values)


def _recbole_cell(runs: list[dict[str, Any]], metric: str) -> str:
    if any("error" in r for r in runs):
        return "failed"
    return _mean_std([float(r["test"][metric]) for r in runs])


def results_table(models: list[str], runs: dict[str, list[dict[str, Any]]],
                  committed: dict[str, dict[str, Committed]], seeds: list[int]) -> str:
    """The side-by-side table: per metric, recframe (all seeds, same seeds) and RecBole."""
    seed_label = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {','.join(map(str, seeds))}"
    header = ["model"]
    for metric in METRICS:
        name = METRIC_LABELS[metric]
        header += [f"recframe {name} mean ± std (3 seeds)", f"recframe {name} {seed_label}",
                   f"RecBole {name} {seed_label}"]
    header += ["RecBole epochs (best)"]
    rows = []
    for model in models:
        rf = committed.get(recframe_name(model), {})
        row: list[Any] = [label(model)]
        for metric in METRICS:
            c = rf.get(metric)
            row += [_committed_cell(c), _same_seeds_cell(c, seeds),
                    _recbole_cell(runs[model], metric)]
        ok = [r for r in runs[model] if "error" not in r]
        if len(ok) < len(runs[model]):
            row.append("–")
        else:
            row.append(", ".join(f"{r['epochs_trained']} ({r['best_epoch']})" for r in ok))
        rows.append(row)
    return common.md_table(header, rows)


def settings_table(settings: list[Setting], cost: dict[str, dict[str, float]]) -> str:
    """What RecBole ran with, recframe's corresponding config, and what still differs."""
    rows = []
    for s in settings:
        rf_epochs = cost.get(recframe_name(s.key), {}).get("best_epoch")
        rf_text = s.recframe + (f"; best epoch {rf_epochs:.0f} (mean)" if s.trained and
                                rf_epochs is not None else "")
        rows.append([label(s.key), s.recbole, rf_text, s.differences])
    return common.md_table(["model", "RecBole 1.2.1 settings", "recframe (conf/model)",
                            "still different"], rows)


def cost_table(models: list[str], runs: dict[str, list[dict[str, Any]]],
               committed: dict[str, dict[str, Committed]]) -> str:
    """Per RecBole run: epochs, best epoch, valid NDCG@10, the test NDCG@10 difference to
    recframe on the same seed, fit and process seconds."""
    rows = []
    for model in models:
        c = committed.get(recframe_name(model), {}).get("ndcg@10")
        for r in runs[model]:
            if "error" in r:
                rows.append([label(model), r["seed"], *["–"] * 6, "failed"])
                continue
            diff = "–"
            if c is not None and r["seed"] in c.by_seed:  # + 0.0: no "-0.0000"
                gap = round(float(r["test"]["ndcg@10"]) - c.by_seed[r["seed"]], 4) + 0.0
                diff = f"{gap:+.4f}"
            rows.append([label(model), r["seed"], r["epochs_trained"], r["best_epoch"],
                         "yes" if r["stopped_early"] else "no",
                         f"{r['best_valid_score']:.4f}", diff, f"{r['fit_seconds']:.1f}",
                         f"{r['process_seconds']:.1f}"])
    return common.md_table(["model", "seed", "epochs trained", "best epoch", "stopped early",
                            "valid NDCG@10 (best)", "test NDCG@10 RecBole - recframe (same seed)",
                            "fit s", "process wall s"], rows)


def markdown(models: list[str], settings: list[Setting], runs: dict[str, list[dict[str, Any]]],
             committed: dict[str, dict[str, Committed]], cost: dict[str, dict[str, float]],
             exports: dict[int, dict[str, Any]], args: Any, total_s: float) -> str:
    """The fragment's markdown section."""
    seeds = list(exports)
    ex = exports[seeds[0]]
    checks = []
    for s, e in exports.items():
        known = FAMILIES_FINGERPRINTS.get(s)
        verdict = ("equal to the families runs'" if known == e["fingerprint"]
                   else "unknown for the families runs" if known is None
                   else f"DIFFERENT from the families runs' {known}")
        checks.append(f"seed {s}: `{e['fingerprint']}` ({verdict})")
    missing = [label(m) for m in models if recframe_name(m) not in committed]
    failed = {label(m): r["error"] for m in models for r in runs[m] if "error" in r}
    parts = [
        "RecBole 1.2.1's own implementations trained on **exactly recframe's split** of "
        "protocol 1 of the committed families table (`experiments/results/ml100k_families`): "
        "`dataset=ml-100k preprocess=implicit split=random` (ratings >= 4 as positives, "
        f"random 80/10/10 per user), seed(s) {', '.join(map(str, seeds))}: {ex['n_users']:,} "
        f"users, {ex['n_items']:,} items, {ex['n_train']:,} / {ex['n_valid']:,} / "
        f"{ex['n_test']:,} train / valid / test interactions, {ex['n_test_users']:,} test "
        "users. The split is made once by recframe's pipeline and loaded by RecBole from "
        "atomic files (`benchmark_filename`); RecBole's user/item/test-user counts are "
        "checked equal to recframe's, and the split's data fingerprint is "
        + "; ".join(checks) + ". Published figures use other protocols, so this is the "
        "reference the model-zoo table gets.",
        "Both sides: full ranking over all items with train (+ valid for test) items masked, "
        "Recall/NDCG/MRR at 10 with the same definitions, the best-validation weights "
        "tested. recframe: mean ± std over the committed seeds (sample std, from "
        "`report.csv`) and the value on the same seed(s), i.e. on the identical split; "
        f"early stopping on valid NDCG@10 with patience 5, at most 100 epochs "
        f"(BPR: patience 10, 200 epochs). RecBole: "
        f"`valid_metric: NDCG@10`, `stopping_step: {args.stopping_step}` (stops after "
        f"{args.stopping_step + 1} evaluations without improvement), `eval_step: 1`, at most "
        f"{args.epochs} epochs for BPR and LightGCN and {args.neumf_epochs} for NeuMF "
        "(a guard that keeps the run within ~20 minutes should NeuMF never stop: RecBole's "
        "NeuMF has no `full_sort_predict`, so every validation scores all user-item pairs "
        "through the MLP, ~5-7 s on this machine; a cap that was reached is listed below); "
        "the closed-form models run RecBole's single `TraditionalTrainer` epoch; "
        "`eval_args: {mode: full}`, `topk: [10]`, `seed` = the split seed, "
        f"{args.threads} torch thread(s), one process per model.",
        results_table(models, runs, committed, seeds),
        "RecBole epochs: epochs trained (best-validation epoch). Per run:",
        cost_table(models, runs, committed),
        "Settings (RecBole's defaults, `recbole/properties/model/<Model>.yaml`, except "
        "embedding size 64 and the concepts recframe's `conf/model/<name>.yaml` shares; "
        "the recframe values are read from those files):",
        settings_table(settings, cost),
    ]
    parts.append(NOTES)
    capped = [label(m) for m in models for r in runs[m]
              if "error" not in r and r.get("max_epochs", 1) > 1 and not r["stopped_early"]]
    if capped:
        parts.append("Reached the epoch cap without stopping early (the valid NDCG@10 was "
                     "still improving within the patience): " + ", ".join(sorted(set(capped)))
                     + ".")
    if missing:
        parts.append("Not in the families report (no recframe figure): "
                     + ", ".join(missing) + ".")
    if failed:
        parts.append("Failed in RecBole (the other models ran on):\n\n" + "\n".join(
            f"- **{m}**: `{err}`" for m, err in failed.items()))
    parts.append(f"Total wall time of this run: {total_s / 60:.1f} min.")
    return "\n\n".join(parts)


def figures(models: list[str], runs: dict[str, list[dict[str, Any]]],
            committed: dict[str, dict[str, Committed]], total_s: float) -> dict[str, Any]:
    """Headline figures: RecBole's test metrics per model (mean over seeds) and epochs."""
    out: dict[str, Any] = {"recbole_reference_total_seconds": round(total_s, 1)}
    for model in models:
        key = model.lower()
        ok = [r for r in runs[model] if "error" not in r]
        if not ok or len(ok) < len(runs[model]):
            out[f"recbole_ref_failed_{key}"] = True
            continue
        for metric in METRICS:
            short = metric.replace("@", "")
            out[f"{short}_recbole_ref_{key}"] = round(
                statistics.mean(float(r["test"][metric]) for r in ok), 5)
            c = committed.get(recframe_name(model), {}).get(metric)
            if c is not None:
                out[f"{short}_recframe_families_{key}"] = round(c.mean, 5)
        out[f"epochs_recbole_ref_{key}"] = round(
            statistics.mean(r["epochs_trained"] for r in ok), 1)
    return out


def main(argv: list[str] | None = None) -> int:
    """Parse the flags, export the split(s), run every RecBole model, write the fragment."""
    p = common.parser(__doc__.splitlines()[0], "smoke run: at most 2 epochs, stopping_step 1")
    p.add_argument("--seeds", default="0", help="comma-separated split (and RecBole) seeds")
    p.add_argument("--models", default=",".join(MODELS + VARIANTS),
                   help="comma-separated subset of RecBole models (PopShipped: RecBole's Pop "
                   "as shipped, without the count fix)")
    p.add_argument("--epochs", type=int, default=200, help="most epochs of BPR and LightGCN")
    p.add_argument("--neumf-epochs", type=int, default=80,
                   help="most epochs of NeuMF (RecBole scores all user-item pairs through "
                   "its MLP at every validation: ~7 s each here)")
    p.add_argument("--stopping-step", type=int, default=10,
                   help="RecBole stopping_step: evaluations without improvement tolerated")
    p.add_argument("--eval-users", type=int, default=256,
                   help="users per full-ranking evaluation batch")
    p.add_argument("--threads", type=int, default=1, help="torch threads of every run")
    p.add_argument("--ml100k", type=Path, default=rc.ml100k_path(),
                   help="the MovieLens-100K folder (u.data, u.item, u.user)")
    p.add_argument("--families-report", type=Path, default=FAMILIES_REPORT,
                   help="recframe's committed families report.csv")
    p.add_argument("--work-dir", type=Path, default=None,
                   help="keep exported splits, logs and checkpoints here (default: a temp dir)")
    args = p.parse_args(argv)
    if args.small:
        args.epochs, args.neumf_epochs = min(args.epochs, 2), min(args.neumf_epochs, 2)
        args.stopping_step = 1
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    models = [m for m in args.models.split(",") if m]
    unknown = [m for m in models if m not in MODELS + VARIANTS]
    if unknown or not seeds:
        p.error(f"unknown model(s) {unknown}; known: {', '.join(MODELS + VARIANTS)}" if unknown
                else "no seed")
    logging.basicConfig(level=logging.WARNING)
    install = rc.ensure_recbole_venv()
    committed = read_families(args.families_report)
    cost = families_cost(args.families_report)
    settings = [model_setting(m, args.epochs, args.neumf_epochs) for m in models]
    start = time.perf_counter()
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in models}
    with tempfile.TemporaryDirectory(prefix=f"{NAME}-") as tmp:
        work = args.work_dir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        data_dir = work / "recbole_data"
        print("== export", flush=True)
        exports = export_splits(seeds, args.ml100k, data_dir, work, args.threads)
        for seed in seeds:
            ex = exports[seed]
            shared = shared_config(seed, args.stopping_step, args.eval_users, ex["n_items"],
                                   work / "recbole_saved" / f"s{seed}")
            print(f"== seed {seed}", flush=True)
            for setting in settings:
                result = run_model(setting, seed, ex, data_dir, work, shared, args.threads)
                result["seed"] = seed
                runs[setting.key].append(result)
    total_s = time.perf_counter() - start
    md = markdown(models, settings, runs, committed, cost, exports, args, total_s)
    details = {
        "install": install,
        "requirements": rc.REQUIREMENTS.read_text().splitlines(),
        "seeds": seeds,
        "exports": {str(s): e for s, e in exports.items()},
        "settings": [s.__dict__ for s in settings],
        "recframe_families": {m: {k: v.__dict__ for k, v in metrics.items()}
                              for m, metrics in committed.items()},
        "runs": runs,
        "total_seconds": round(total_s, 1),
    }
    common.write_fragment(NAME, args.out, figures(models, runs, committed, total_s), md,
                          json.loads(json.dumps(details, default=str)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""recframe against RecBole 1.2.1: seconds per epoch, per evaluation, NDCG@10, peak memory.

Same protocol on both sides, on two data sets:

- **ml100k**: MovieLens-100K, implicit (``preprocess=implicit``: one row per
  user-item pair, ratings >= 4 as positives);
- **ml1m_synth**: a synthetic set of MovieLens-1M size (defaults: 1,000,000
  interactions, 6,040 users, 3,706 items) drawn with numpy from a fixed seed:
  latent user/item factors plus power-law popularity pick each user's items,
  and each user's timeline drifts along a latent direction (so the next item
  is predictable from the last ones).

Models: **BPR** (matrix factorisation, pairwise loss, one uniform negative,
random 80/10/10 split per user) and **SASRec** (2 blocks, 1 head, full softmax
cross-entropy, RecBole's ``train_neg_sample_args: None``; leave-one-out split
by time). The split is made once, by recframe's own pipeline
(``recframe.pipeline.prepare`` with the run's overrides), and handed to RecBole
as pre-split atomic files (``benchmark_filename``); the data fingerprint of the
recframe run is checked against the exported one, and the user/item/test-user
counts RecBole reports against recframe's. Both sides use the same batch size,
embedding size 64, learning rate, fixed number of epochs (no early stopping,
no validation), full-ranking evaluation of the final weights on the test part
with train (+ valid) items masked, the same metrics (recall, precision, NDCG,
MRR, hit, MAP at 10 and 20) and the same number of torch threads.

recframe runs through its real path (``recframe.testing.run`` ->
``run_experiment``; ``timings.seconds_per_epoch`` and ``timings.evaluate`` of
``results.json``); RecBole runs in its own environment ``.venv-recbole/``
(created here on first use: ``recbole_support/requirements.txt``), with every
``Trainer._train_epoch`` and ``Trainer.evaluate`` call timed
(``recbole_support/run_recbole.py``). Each framework, model and data set runs
in its own process, so the peak RSS is that run's own.

SASRec trains on the same rows on both sides: one row per training
interaction after a user's first, holding the up-to-50 items before it, and
the loss of that row's last position (RecBole's augmentation; recframe's
``model.train_rows=prefixes``). recframe's default rows (each user's most
recent 51 items, every position trained) are run beside the pair on ML-100K.
A prefix-row epoch re-encodes every prefix of every training sequence and is
too slow to run whole on the large set here; ``--synth-sasrec-batches`` caps
it on both sides at the same number of batches, the epoch times are then
extrapolated from the capped epochs (``batches_per_epoch / cap``) and NDCG@10
is that of the partly trained models (the fraction is a figure).
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
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

NAME = "recbole_compare"
HERE = Path(__file__).resolve().parent
SUPPORT = HERE / "recbole_support"
REQUIREMENTS = SUPPORT / "requirements.txt"
RECBOLE_VENV = common.ROOT / ".venv-recbole"
RECBOLE_VERSION = "1.2.1"
METRICS = ["Recall", "Precision", "NDCG", "MRR", "Hit", "MAP"]
#: test passes repeated right after the first, on both sides (the warm passes)
WARM_PASSES = 2
log = logging.getLogger(NAME)

#: this benchmark's figures before the optimisation round they led to (same script then,
#: one seed, recframe's evaluation timed as the whole ``trainer.test`` call, BPR on the
#: 1M set for 3 epochs)
BEFORE: dict[str, Any] = {
    "git": "995f1d0",
    "figures": {
        "bpr_epoch_speedup_vs_recbole": 1.083,
        "bpr_epoch_speedup_vs_recbole_ml1m_synth": 1.399,
        "bpr_eval_speedup_vs_recbole": 0.651,
        "bpr_eval_speedup_vs_recbole_ml1m_synth": 1.211,
        "sasrec_eval_speedup_vs_recbole": 1.124,
        "sasrec_eval_speedup_vs_recbole_ml1m_synth": 0.743,
        "sasrec_epoch_speedup_vs_recbole": 62.435,
        "sasrec_epoch_speedup_vs_recbole_ml1m_synth": 83.431,
        "seconds_per_epoch_bpr_recframe": 0.136,
        "seconds_per_epoch_bpr_recframe_ml1m_synth": 2.655,
        "eval_seconds_bpr_recframe": 0.14,
        "eval_seconds_bpr_recframe_ml1m_synth": 0.254,
        "eval_seconds_sasrec_recframe": 0.587,
        "eval_seconds_sasrec_recframe_ml1m_synth": 2.842,
        "ndcg10_bpr_recframe": 0.20282,
        "ndcg10_sasrec_recframe": 0.02823,
    },
    # figures whose run changed since: the 'after' value is read from another key
    "same_run_now": {
        # 'before': SASRec with recframe's default rows, 1 epoch, seed 0; that run is now
        # the 'recent_rows' extra (the pair trains on prefix rows)
        "ndcg10_sasrec_recframe": "ndcg10_sasrec_recframe_recent_rows",
    },
    # figures of a protocol that changed: no 'after' to set beside them
    "protocol_changed": {
        "sasrec_epoch_speedup_vs_recbole": "recframe then trained on one row per user",
        "sasrec_epoch_speedup_vs_recbole_ml1m_synth": "recframe then trained on one row per user",
    },
    "changes": (
        "What changed in recframe (each profiled first, each checked by tests): BPR scores "
        "its negatives with an elementwise product instead of `einsum` (a batched matmul of "
        "1 x d by d x 1 products on CPU) and has a hand-written backward (value and "
        "gradients checked against autograd and `gradcheck`); `optim.fused=auto` runs "
        "torch's fused Adam; SASRec/BERT4Rec score with the last block computed for the "
        "last position only and, on CPU, in ~8k-token chunks; evaluation batches of "
        "consecutive users are one CSR slice; test metrics go straight to the loggers and "
        "the per-user frame is built on demand; later rounds added recframe's own top-k "
        "selection, 4,096-token chunks per thread, and 8 optimizer steps per batch of "
        "Lightning's loop (`steps_per_execution=auto`, same updates). The eval rows of the "
        "'before' column time the whole `trainer.test` call (the 'after' ones the test "
        "loop; the whole call is in brackets in the tables above), BPR on the 1M set then "
        "ran 3 epochs, not 10, and NDCG@10 was one seed's (now the mean over the seeds)."),
}


# -- environment ------------------------------------------------------------------------


def recbole_python(venv: Path = RECBOLE_VENV) -> Path:
    """The interpreter of RecBole's environment."""
    return venv / "bin" / "python"


def ensure_recbole_venv(venv: Path = RECBOLE_VENV) -> dict[str, Any]:
    """Create ``venv`` and install the pinned RecBole into it unless it already works.

    The pins (``recbole_support/requirements.txt``) always include ``torch==2.13.0``,
    the CPU build that installs from local disk.
    """
    python = recbole_python(venv)
    probe = [str(python), "-c", "import recbole, torch, numpy; "
             "print(recbole.__version__, torch.__version__, numpy.__version__)"]
    if python.exists():
        done = subprocess.run(probe, capture_output=True, text=True)
        if done.returncode == 0 and done.stdout.split()[:1] == [RECBOLE_VERSION]:
            return {"installed_now": False, "versions": done.stdout.strip()}
    start = time.perf_counter()
    print(f"creating {venv} and installing {REQUIREMENTS.name} (one-off, a few minutes)",
          flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)],
                   check=True)
    done = subprocess.run(probe, capture_output=True, text=True, check=True)
    return {"installed_now": True, "install_seconds": round(time.perf_counter() - start, 1),
            "versions": done.stdout.strip()}


def _env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
                "PYTHONWARNINGS": "ignore", "TQDM_DISABLE": "1"})
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


# -- data -------------------------------------------------------------------------------


def synthetic_interactions(n_users: int, n_items: int, n_interactions: int, seed: int = 0,
                           min_per_user: int = 20, dim: int = 16) -> pd.DataFrame:
    """ML-1M-like implicit data: ``user_id, item_id, timestamp``, unique pairs.

    Per-user counts are log-normal (at least ``min_per_user``, at most half the
    catalogue) and sum to exactly ``n_interactions``. A user picks items without
    replacement by ``softmax(affinity / 0.5 + popularity)`` (Gumbel top-k), with
    affinity from ``dim``-dimensional Gaussian factors and a Zipf popularity prior;
    the user's timeline orders those items along a latent direction (plus noise),
    so consecutive items are similar.
    """
    rng = np.random.default_rng(seed)
    cap = max(min_per_user, n_items // 2)
    if not n_users * min_per_user <= n_interactions <= n_users * cap:
        raise ValueError("n_interactions does not fit n_users x [min_per_user, n_items / 2]")
    raw = rng.lognormal(0.0, 1.0, n_users)
    counts = np.clip(np.floor(raw / raw.sum() * n_interactions), min_per_user, cap).astype(int)
    while counts.sum() != n_interactions:  # spread the rounding/clipping residual
        diff = n_interactions - int(counts.sum())
        room = np.flatnonzero(counts < cap) if diff > 0 else np.flatnonzero(counts > min_per_user)
        pick = rng.choice(room, size=min(abs(diff), len(room)), replace=False)
        counts[pick] += 1 if diff > 0 else -1
    users_f = rng.normal(size=(n_users, dim)).astype(np.float32)
    items_f = rng.normal(size=(n_items, dim)).astype(np.float32)
    popularity = -1.0 * np.log(rng.permutation(n_items) + 1.0).astype(np.float32)
    direction = rng.normal(size=dim).astype(np.float32)
    along = items_f @ direction / np.sqrt(dim)  # where an item sits on the timeline
    out_u, out_i, out_t = [], [], []
    chunk = 512
    for lo in range(0, n_users, chunk):
        hi = min(lo + chunk, n_users)
        logits = users_f[lo:hi] @ items_f.T / np.sqrt(dim) / 0.5 + popularity
        logits += rng.gumbel(size=logits.shape).astype(np.float32)
        ranked = np.argsort(-logits, axis=1)
        for row, u in enumerate(range(lo, hi)):
            items = ranked[row, :counts[u]]
            order = np.argsort(along[items] + rng.normal(scale=0.3, size=len(items)))
            out_u.append(np.full(len(items), u))
            out_i.append(items[order])
            start = 978_300_000 + int(rng.integers(0, 10_000_000))
            out_t.append(start + np.arange(len(items)) * 60)
    return pd.DataFrame({"user_id": np.concatenate(out_u), "item_id": np.concatenate(out_i),
                         "timestamp": np.concatenate(out_t)})


def ml100k_path() -> Path:
    """Where MovieLens-100K is: ``$RECFRAME_DATA_DIR/ml-100k``, else ``../shared/data``."""
    base = os.environ.get("RECFRAME_DATA_DIR")
    return Path(base) / "ml-100k" if base else common.ROOT.parent / "shared" / "data" / "ml-100k"


# -- protocol ---------------------------------------------------------------------------


@dataclass
class Protocol:
    """What both frameworks share for one (data set, model) pair."""

    model: str  # "bpr" | "sasrec"
    epochs: int
    batch_size: int
    lr: float
    dim: int = 64
    max_len: int = 50
    eval_batch_users: int = 512
    threads: int = 1
    max_batches: int = 0  # training batches per epoch on both sides; 0: whole epochs
    # training seeds (the split stays the one made with seed 0): each seed is one run of
    # each framework; timings are medians over them, NDCG@10 their mean
    seeds: tuple[int, ...] = (0,)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def sequential(self) -> bool:
        return self.model == "sasrec"

    def split_overrides(self) -> list[str]:
        # the random split's own seed pinned, so every training seed sees the same split
        return ["split=leave_one_out"] if self.sequential else ["split=random", "split.seed=0"]

    def recframe_overrides(self, seed: int) -> list[str]:
        common_ = [f"model={self.model}", f"model.embedding_dim={self.dim}",
                   f"model.batch_size={self.batch_size}", f"trainer.max_epochs={self.epochs}",
                   "+trainer.limit_val_batches=0", "+trainer.enable_checkpointing=false",
                   "callbacks=none", "logger=none", f"seed={seed}",
                   f"evaluation.batch_size={self.eval_batch_users}",
                   "metrics.names=[recall,precision,ndcg,mrr,hit,map]", "metrics.ks=[10,20]"]
        if self.max_batches:
            common_.append(f"+trainer.limit_train_batches={self.max_batches}")
        if self.sequential:  # RecBole's rows: one per target, trained on its last position
            return [*common_, "model.loss=ce", "model.num_blocks=2", "model.num_heads=1",
                    "model.ffn_dim=256", "model.dropout=0.2", f"model.max_seq_len={self.max_len}",
                    f"model.lr={self.lr}", "model.train_rows=prefixes"]
        return [*common_, "model.num_negatives=1", "model.reg=0.0", f"optim.lr={self.lr}"]

    def recbole_config(self, n_items: int, seed: int) -> dict[str, Any]:
        cfg: dict[str, Any] = {
            "epochs": self.epochs, "train_batch_size": self.batch_size,
            "learning_rate": self.lr, "eval_step": 0, "stopping_step": 10**6,
            "metrics": METRICS, "topk": [10, 20], "seed": seed,
            "max_train_batches": self.max_batches or None,
        }
        if self.sequential:
            return {**cfg, "hidden_size": self.dim, "inner_size": 256, "n_layers": 2,
                    "n_heads": 1, "hidden_dropout_prob": 0.2, "attn_dropout_prob": 0.2,
                    "hidden_act": "gelu", "initializer_range": 0.02, "loss_type": "CE",
                    "MAX_ITEM_LIST_LENGTH": self.max_len, "alias_of_item_id": ["item_id_list"],
                    "train_neg_sample_args": None, "mask_history": True,
                    # rows (users) per evaluation batch, as recframe's evaluation.batch_size
                    "eval_batch_size": self.eval_batch_users,
                    "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO",
                                  "group_by": "user", "mode": "full"}}
        return {**cfg, "embedding_size": self.dim,
                "train_neg_sample_args": {"distribution": "uniform", "sample_num": 1,
                                          "alpha": 1.0, "dynamic": False, "candidate_num": 0},
                # general models count an eval batch in user x item scores: the same
                # users per batch as recframe means eval_batch_users x (n_items + [PAD])
                "eval_batch_size": self.eval_batch_users * (n_items + 1),
                "eval_args": {"split": {"RS": [0.8, 0.1, 0.1]}, "order": "RO",
                              "group_by": "user", "mode": "full"}}


@dataclass
class Pair:
    """Both frameworks' results on one data set and model: one run each per seed."""

    dataset: str
    protocol: Protocol
    export: dict[str, Any]
    recframe_runs: list[dict[str, Any]]
    recbole_runs: list[dict[str, Any]]

    @property
    def recframe(self) -> dict[str, Any]:
        """The first seed's recframe run (data fingerprint and counts are the same in all)."""
        return self.recframe_runs[0]

    @property
    def recbole(self) -> dict[str, Any]:
        return self.recbole_runs[0]

    @property
    def n_seeds(self) -> int:
        return len(self.recframe_runs)

    @property
    def recbole_epoch_fraction(self) -> float:
        rb = self.recbole
        if not rb.get("max_train_batches"):
            return 1.0
        return min(1.0, rb["max_train_batches"] / rb["train_batches_per_epoch"])

    @property
    def recframe_epoch_fraction(self) -> float:
        cap = self.protocol.max_batches
        if not cap:
            return 1.0
        rows = self.export.get("train_rows_recframe", self.export["targets_per_epoch_recframe"])
        return min(1.0, cap / -(-rows // self.protocol.batch_size))

    @property
    def recbole_epoch_s(self) -> float:
        """RecBole seconds per epoch (each run's mean epoch, median over seeds),
        extrapolated to a whole epoch when capped."""
        per_run = [float(np.mean(r["epoch_seconds"])) for r in self.recbole_runs]
        return float(np.median(per_run)) / self.recbole_epoch_fraction

    @property
    def recframe_epoch_s(self) -> float:
        """recframe seconds per epoch (median over seeds), extrapolated when capped."""
        per_run = [r["timings"]["seconds_per_epoch"] for r in self.recframe_runs]
        return float(np.median(per_run)) / self.recframe_epoch_fraction

    @property
    def recbole_eval_s(self) -> float:
        """RecBole's ``Trainer.evaluate`` on the test loader (median over seeds)."""
        return float(np.median([r["test_eval_seconds"][0] for r in self.recbole_runs]))

    @property
    def recbole_eval_warm_s(self) -> float | None:
        """RecBole's repeated test evaluations (median of each run's, then over seeds)."""
        runs = [r["test_eval_seconds"][1:] for r in self.recbole_runs]
        return float(np.median([np.median(x) for x in runs])) if all(runs) else None

    @property
    def recframe_eval_warm_s(self) -> float | None:
        """recframe's repeated test loops (median of each run's, then over seeds)."""
        runs = [r.get("warm_test_loops") for r in self.recframe_runs]
        return float(np.median([np.median(x) for x in runs])) if all(runs) else None

    @property
    def recframe_eval_s(self) -> float:
        """recframe's test loop: batches, scoring, metrics (``timings.test_loop``), the
        counterpart of RecBole's ``Trainer.evaluate`` (median over seeds)."""
        return float(np.median([r["timings"]["test_loop"] for r in self.recframe_runs]))

    @property
    def recframe_eval_call_s(self) -> float:
        """The whole ``trainer.test`` call: the loop plus Lightning's set-up and teardown
        and building the test users' masks (``timings.evaluate``)."""
        return float(np.median([r["timings"]["evaluate"] for r in self.recframe_runs]))

    @property
    def eval_floor_s(self) -> float | None:
        """The floor of a test pass (score + mask + top-k over the same batches, timed in
        recframe's process after its run; median over seeds), if measured."""
        values = [r["eval_floor"]["seconds"] for r in self.recframe_runs if "eval_floor" in r]
        return float(np.median(values)) if values else None

    def ndcg(self, framework: str) -> tuple[float, float]:
        """Test NDCG@10: mean and sample standard deviation over seeds."""
        if framework == "recframe":
            values = [float(r["metrics"]["test"]["ndcg@10"]) for r in self.recframe_runs]
        else:
            values = [float(r["ndcg@10"]) for r in self.recbole_runs]
        return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0

    def row_figures(self, suffix: str) -> dict[str, Any]:
        m = self.protocol.model
        (rf_ndcg, rf_sd), (rb_ndcg, rb_sd) = self.ndcg("recframe"), self.ndcg("recbole")
        figures = {
            f"{m}_epoch_speedup_vs_recbole{suffix}": round(
                self.recbole_epoch_s / self.recframe_epoch_s, 3),
            f"{m}_eval_speedup_vs_recbole{suffix}": round(
                self.recbole_eval_s / self.recframe_eval_s, 3),
            f"{m}_eval_call_speedup_vs_recbole{suffix}": round(
                self.recbole_eval_s / self.recframe_eval_call_s, 3),
            f"{m}_target_throughput_ratio_vs_recbole{suffix}": round(
                (self.export["targets_per_epoch_recframe"] / self.recframe_epoch_s)
                / (self.export["targets_per_epoch_recbole"] / self.recbole_epoch_s), 3),
            f"ndcg10_{m}_recframe{suffix}": round(rf_ndcg, 5),
            f"ndcg10_{m}_recbole{suffix}": round(rb_ndcg, 5),
            f"ndcg10_{m}_recframe_sd{suffix}": round(rf_sd, 5),
            f"ndcg10_{m}_recbole_sd{suffix}": round(rb_sd, 5),
            f"seeds_{m}{suffix}": self.n_seeds,
            f"seconds_per_epoch_{m}_recframe{suffix}": round(self.recframe_epoch_s, 3),
            f"seconds_per_epoch_{m}_recbole{suffix}": round(self.recbole_epoch_s, 3),
            f"eval_seconds_{m}_recframe{suffix}": round(self.recframe_eval_s, 3),
            f"eval_call_seconds_{m}_recframe{suffix}": round(self.recframe_eval_call_s, 3),
            f"eval_seconds_{m}_recbole{suffix}": round(self.recbole_eval_s, 3),
            f"peak_rss_gib_{m}_recframe{suffix}": max(r["peak_rss_gib"]
                                                      for r in self.recframe_runs),
            f"peak_rss_gib_{m}_recbole{suffix}": max(r["peak_rss_gib"]
                                                     for r in self.recbole_runs),
        }
        if self.recbole_epoch_fraction < 1.0:
            figures[f"{m}_recbole_epochs_trained{suffix}"] = round(
                self.protocol.epochs * self.recbole_epoch_fraction, 4)
        rf_warm, rb_warm = self.recframe_eval_warm_s, self.recbole_eval_warm_s
        if rf_warm and rb_warm:
            figures[f"{m}_eval_warm_speedup_vs_recbole{suffix}"] = round(rb_warm / rf_warm, 3)
            figures[f"eval_warm_seconds_{m}_recframe{suffix}"] = round(rf_warm, 4)
            figures[f"eval_warm_seconds_{m}_recbole{suffix}"] = round(rb_warm, 4)
        floor = self.eval_floor_s
        if floor and rf_warm and rb_warm:  # the floor is warm too
            figures[f"eval_floor_seconds_{m}{suffix}"] = round(floor, 4)
            figures[f"{m}_eval_warm_vs_floor_recframe{suffix}"] = round(rf_warm / floor, 3)
            figures[f"{m}_eval_warm_vs_floor_recbole{suffix}"] = round(rb_warm / floor, 3)
        if self.protocol.seeds[0] == 0:
            figures[f"ndcg10_{m}_recframe_seed0{suffix}"] = round(
                float(self.recframe["metrics"]["test"]["ndcg@10"]), 5)
        if self.recframe_epoch_fraction < 1.0:
            figures[f"{m}_recframe_epochs_trained{suffix}"] = round(
                self.protocol.epochs * self.recframe_epoch_fraction, 4)
        return figures


def check_same_split(pair: Pair) -> list[str]:
    """Problems, if any, showing the two runs did not see the same data."""
    problems = []
    ex, rf, rb = pair.export, pair.recframe, pair.recbole
    if rf["fingerprint"] != ex["fingerprint"]:
        problems.append(f"recframe fingerprint {rf['fingerprint']} != export {ex['fingerprint']}")
    for key in ("n_users", "n_items"):
        if rb[key] != ex[key]:
            problems.append(f"RecBole {key} {rb[key]} != recframe {ex[key]}")
    if rb["n_test_users"] != ex["n_test_users"]:
        problems.append(f"RecBole test users {rb['n_test_users']} != {ex['n_test_users']}")
    return problems


# -- running ----------------------------------------------------------------------------


def sasrec_extras(long_epochs: int) -> list[dict[str, Any]]:
    """recframe-only SASRec runs beside the pair on ML-100K, with recframe's default
    rows (``train_rows=recent``: each user's most recent ``max_seq_len + 1`` train items,
    every position a target): ~50x fewer optimizer steps per epoch than prefix rows at
    the same rows per batch. One epoch, and ``long_epochs`` epochs."""
    recent = ["model.train_rows=recent"]
    label = "with its default rows (one per user, every position trained)"
    extras = [{"key": "recent_rows", "overrides": recent, "label": f"{label}, 1 epoch"}]
    if long_epochs:
        extras.append({"key": f"recent_rows_{long_epochs}epochs",
                       "overrides": [*recent, f"trainer.max_epochs={long_epochs}"],
                       "label": f"{label}, {long_epochs} epochs"})
    return extras


def run_dataset(name: str, base: list[str], protocols: list[Protocol], work: Path,
                extra_recframe: dict[str, list[dict[str, Any]]]
                ) -> tuple[list[Pair], list[dict[str, Any]]]:
    """Export the splits of ``name``, then run recframe and RecBole for each protocol."""
    data_dir = work / "recbole_data"
    jobs = [{"out_dir": str(data_dir), "name": f"{name}_{p.model}",
             "kind": "sequential" if p.sequential else "general", "max_len": p.max_len,
             "overrides": [*base, *p.split_overrides()]} for p in protocols]
    exports = _run_json([sys.executable, str(SUPPORT / "recframe_side.py"), "export"], jobs,
                        work, f"{name}_export", protocols[0].threads)
    pairs, extras = [], []
    rf_cmd = [sys.executable, str(SUPPORT / "recframe_side.py"), "run"]
    rb_cmd = [str(recbole_python()), str(SUPPORT / "run_recbole.py")]
    turn = 0
    for p, ex in zip(protocols, exports, strict=True):
        rf_runs, rb_runs = [], []
        for seed in p.seeds:
            tag = f"{name}_{p.model}_s{seed}"
            rf_spec = {"threads": p.threads, "run_dir": str(work / "runs" / tag), "floor": True,
                       "repeat_test": WARM_PASSES,
                       "overrides": [*base, *p.split_overrides(), *p.recframe_overrides(seed)]}
            rb_spec = {"model": "SASRec" if p.sequential else "BPR", "data_path": str(data_dir),
                       "dataset": f"{name}_{p.model}", "threads": p.threads,
                       "repeat_test": WARM_PASSES,
                       "config": {**p.recbole_config(ex["n_items"], seed),
                                  "checkpoint_dir": str(work / "recbole_saved")}}
            # alternate which framework goes first: the machine's load drifts
            if turn % 2 == 0:
                rf_runs.append(_run_json(rf_cmd, rf_spec, work, f"{tag}_recframe", p.threads))
                rb_runs.append(_run_json(rb_cmd, rb_spec, work, f"{tag}_recbole", p.threads))
            else:
                rb_runs.append(_run_json(rb_cmd, rb_spec, work, f"{tag}_recbole", p.threads))
                rf_runs.append(_run_json(rf_cmd, rf_spec, work, f"{tag}_recframe", p.threads))
            turn += 1
        pair = Pair(name, p, ex, rf_runs, rb_runs)
        problems = [f"seed {seed}: {problem}"
                    for seed, rf, rb in zip(p.seeds, rf_runs, rb_runs, strict=True)
                    for problem in check_same_split(Pair(name, p, ex, [rf], [rb]))]
        if problems:
            raise SystemExit(f"{name} {p.model}: the two frameworks saw different data: "
                             + "; ".join(problems))
        pairs.append(pair)
        for extra in extra_recframe.get(p.model, []):
            # recframe alone with other settings: what its cheaper epochs buy
            seed, key = p.seeds[0], extra["key"]
            spec = {"threads": p.threads,
                    "run_dir": str(work / "runs" / f"{name}_{p.model}_s{seed}_{key}"),
                    "overrides": [*base, *p.split_overrides(), *p.recframe_overrides(seed),
                                  *extra["overrides"]]}
            out = _run_json(rf_cmd, spec, work, f"{name}_{p.model}_recframe_{key}", p.threads)
            extras.append({"dataset": name, "model": p.model, **extra,
                           "ndcg@10": out["metrics"]["test"]["ndcg@10"],
                           "epochs_run": out["epochs_run"],
                           "seconds_per_epoch": out["timings"]["seconds_per_epoch"],
                           "fit_seconds": out["timings"]["fit"],
                           "recbole_epoch_seconds": pair.recbole_epoch_s,
                           "peak_rss_gib": out["peak_rss_gib"]})
    return pairs, extras


# -- report -----------------------------------------------------------------------------


def _ndcg_cell(pair: Pair, framework: str) -> str:
    mean, sd = pair.ndcg(framework)
    return f"{mean:.4f} ± {sd:.4f}" if pair.n_seeds > 1 else f"{mean:.4f}"


def _table(pairs: list[Pair]) -> str:
    rows = []
    for pair in pairs:
        p, ex = pair.protocol, pair.export

        def epochs(frac: float, p: Protocol = p) -> str:
            return f"{p.epochs * frac:.3g}" if frac < 1 else str(p.epochs)

        def per_epoch(seconds: float, frac: float) -> str:
            return f"{seconds:,.3g}" + (f" (extrapolated from {frac:.1%})" if frac < 1 else "")

        rb_frac, rf_frac = pair.recbole_epoch_fraction, pair.recframe_epoch_fraction
        model = p.model.upper() if p.model == "bpr" else "SASRec"
        rows.append([model, "recframe", epochs(rf_frac), f"{ex['targets_per_epoch_recframe']:,}",
                     per_epoch(pair.recframe_epoch_s, rf_frac),
                     f"{pair.recframe_eval_s:.3f} ({pair.recframe_eval_call_s:.3f})",
                     _seconds(pair.recframe_eval_warm_s),
                     _ndcg_cell(pair, "recframe"),
                     max(r["peak_rss_gib"] for r in pair.recframe_runs)])
        rows.append([model, "RecBole", epochs(rb_frac), f"{ex['targets_per_epoch_recbole']:,}",
                     per_epoch(pair.recbole_epoch_s, rb_frac), f"{pair.recbole_eval_s:.3f}",
                     _seconds(pair.recbole_eval_warm_s),
                     _ndcg_cell(pair, "recbole"),
                     max(r["peak_rss_gib"] for r in pair.recbole_runs)])
        rows.append(["", f"**speedup** ({pair.n_seeds} seed(s))", "", "",
                     f"**{pair.recbole_epoch_s / pair.recframe_epoch_s:.2f}x**",
                     f"**{pair.recbole_eval_s / pair.recframe_eval_s:.2f}x** "
                     f"({pair.recbole_eval_s / pair.recframe_eval_call_s:.2f}x)",
                     _ratio(pair.recbole_eval_warm_s, pair.recframe_eval_warm_s), "", ""])
    return common.md_table(["model", "framework", "epochs", "train targets / epoch",
                            "s / epoch", "test eval s, first pass (whole call)",
                            "test eval s, warm", "NDCG@10", "peak RSS GiB"], rows)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _ratio(numerator: float | None, denominator: float | None) -> str:
    return "-" if not (numerator and denominator) else f"**{numerator / denominator:.2f}x**"


def _before_after(figures: dict[str, Any]) -> str:
    rows = []
    for key, before in BEFORE["figures"].items():
        changed = BEFORE["protocol_changed"].get(key)
        after_key = BEFORE["same_run_now"].get(key, key)
        after = f"- ({changed})" if changed else figures.get(after_key, "-")
        rows.append([key if after_key == key else f"{key} (now {after_key})", before, after])
    # recframe's NDCG@10 on ML-100K, seed 0, runs configured as 'before' (the figures are
    # seed means now; the BEFORE ones were seed 0)
    seed0 = {"bpr": figures.get("ndcg10_bpr_recframe_seed0"),
             "sasrec": figures.get(BEFORE["same_run_now"]["ndcg10_sasrec_recframe"])}
    before = {m: BEFORE["figures"][f"ndcg10_{m}_recframe"] for m in seed0}
    same = all(v is not None and abs(v - before[m]) < 5e-5 for m, v in seed0.items())
    listed = "; ".join(f"{m} {v if v is None else round(v, 4)} (before {before[m]})"
                       for m, v in seed0.items())
    verdict = ("unchanged to 4 decimals: the changes alter float rounding, not results"
               if same else "CHANGED: see the commits of this round")
    return (f"Before and after the optimisation round this benchmark led to ('before' "
            f"measured with this script at git {BEFORE['git']}):\n\n"
            + common.md_table(["figure", "before", "after"], rows) + "\n\n"
            + BEFORE["changes"] + f" recframe's NDCG@10 at seed 0 on ML-100K, settings as "
            f"'before': {listed}; {verdict}.")


def rerender(out: Path) -> None:
    """Rebuild the markdown of an existing ``recbole_compare`` fragment from the runs it
    recorded (no run is repeated): for text changes after a long run."""
    path = Path(out) / f"{NAME}.json"
    fragment = json.loads(path.read_text())
    details = fragment["details"]
    results = {
        name: [Pair(name, Protocol(**{**r["protocol"], "seeds": tuple(r["protocol"]["seeds"])}),
                    r["export"], r["recframe"], r["recbole"]) for r in runs]
        for name, runs in details["runs"].items()}
    md = markdown(results, details["recframe_long_runs"], details["sizes"],
                  fragment["figures"]["recbole_compare_threads"], details["install"],
                  fragment["figures"])
    common.write_fragment(NAME, out, fragment["figures"], md, details,
                          recorded={k: fragment[k] for k in ("command", "machine")})


def markdown(results: dict[str, list[Pair]], extras: list[dict[str, Any]],
             sizes: dict[str, dict[str, Any]], threads: int, install: dict[str, Any],
             figures: dict[str, Any]) -> str:
    parts = [
        "recframe and RecBole 1.2.1 side by side on the same splits (made once by recframe's "
        "pipeline, handed to RecBole as pre-split atomic files; the data fingerprint and the "
        "user/item/test-user counts are checked equal), one process per framework, model and "
        f"data set, **{threads} torch thread(s)** each (the development machine is shared; "
        "with 2 threads on 2 busy cores OpenMP spinning made single runs up to 30x slower). "
        "Speedup = RecBole seconds / recframe seconds. Each framework runs once per "
        "training seed (same split), alternating which goes first; times are medians over "
        "the seeds, NDCG@10 is mean ± sd over them. s / epoch: recframe's "
        "`timings.seconds_per_epoch`, RecBole's mean `Trainer._train_epoch` time. Test eval "
        "s: RecBole's `Trainer.evaluate` on the test loader (its loader and history index "
        "are built beforehand, in data preparation) against recframe's test loop "
        "(`timings.test_loop`: batches fetched, scored, masked, ranked and turned into "
        "metrics, first batch to final metrics); in brackets recframe's whole "
        "`trainer.test` call (`timings.evaluate`), which adds Lightning's set-up and "
        "teardown and building the test users' seen-item matrix. First pass: the "
        "process's first full ranking, which also pays one-off costs (BPR training never "
        "multiplies matrices, so the first `matmul` of the process is in it, on both "
        "sides). Warm: the same test evaluation repeated right after it "
        f"({WARM_PASSES} more times on each side, median), what each evaluation of a "
        "training run with validation costs. Both score every item, "
        "mask train (+ valid) items and compute recall/precision/NDCG/MRR/hit/MAP at 10 "
        "and 20. Final weights are tested (no validation, no early stopping, no "
        "checkpoints).",
    ]
    for name, pairs in results.items():
        s = sizes[name]
        protos = "; ".join(
            f"{p.protocol.model}: batch {p.protocol.batch_size}, dim {p.protocol.dim}, "
            f"lr {p.protocol.lr}, {p.protocol.epochs} epoch(s)"
            + (f", max_seq_len {p.protocol.max_len}" if p.protocol.sequential else "")
            for p in pairs)
        parts.append(f"### {name}\n\n{s['description']}: {s['n_users']:,} users, "
                     f"{s['n_items']:,} items, {s['n_interactions']:,} interactions. "
                     f"Protocol: {protos}; {threads} thread(s); evaluation in batches of "
                     f"{pairs[0].protocol.eval_batch_users} users.\n\n" + _table(pairs))
        floors = [f"{'BPR' if pair.protocol.model == 'bpr' else 'SASRec'} "
                  f"{pair.eval_floor_s:.3f} s: recframe's warm loop "
                  f"{pair.recframe_eval_warm_s / pair.eval_floor_s:.2f}x it, RecBole's "
                  f"{pair.recbole_eval_warm_s / pair.eval_floor_s:.2f}x"
                  for pair in pairs
                  if pair.eval_floor_s and pair.recframe_eval_warm_s and pair.recbole_eval_warm_s]
        if floors:
            parts.append("Floor of a warm test pass (the model's `score`, seen items masked, "
                         "`torch.topk`, over the same test batches; batches built beforehand; "
                         "timed in recframe's process after its run, median of 3 passes after "
                         "a warm-up): " + "; ".join(floors) + ". Neither framework can be "
                         "more than (its warm time / floor) times faster than the other.")
        more = [e for e in extras if e["dataset"] == name]
        for e in more:
            parts.append(f"recframe {e['model']} alone, {e['label']}: {e['epochs_run']} "
                         f"epoch(s), {e['seconds_per_epoch']:.2f} s each, "
                         f"{e['fit_seconds']:.0f} s of fit = "
                         f"{e['fit_seconds'] / e['recbole_epoch_seconds']:.0%} of one RecBole "
                         f"epoch; NDCG@10 {e['ndcg@10']:.4f}.")
    parts.append(
        "What differs between the implementations:\n\n"
        "- **SASRec training data.** Both train on the same rows: every training "
        "interaction after a user's first is one row (the up-to-50 items before it, "
        "left-padded) whose last position is the target, so an epoch re-encodes each "
        "sequence once per prefix (RecBole's augmentation; recframe's "
        "`model.train_rows=prefixes`, which computes the last block for the last position "
        "only). recframe's default, `train_rows=recent`, feeds one row per user (the last "
        "`max_seq_len + 1` train items) and trains every position at once: an epoch is a "
        "fraction of the work with ~50x fewer optimizer steps, so at equal epochs it "
        "trains far less; the runs of it beside the ML-100K pair show what it buys per "
        "second.\n"
        "- **SASRec architecture.** recframe: pre-LN blocks (torch `TransformerEncoder`, "
        "`norm_first`) with a final LayerNorm, embeddings scaled by sqrt(d), an output bias; "
        "RecBole: post-LN blocks, LayerNorm + dropout on the input embeddings, no output "
        "bias. Both: 2 blocks, 1 head, FFN 256, GELU, dropout 0.2, tied output embeddings, "
        "full softmax CE over all items.\n"
        "- **SASRec evaluation masking.** RecBole masks nothing for sequential models in full "
        "ranking; `run_recbole.py` masks each user's train (+ valid) items as recframe does, "
        "so NDCG is over the same candidates (the masking is inside the timed evaluation).\n"
        "- **Evaluation batching.** RecBole's general-model `eval_batch_size` counts user x "
        "item scores (default 4096: two ML-100K users per batch); it is set to 512 x "
        "(items + 1) here, i.e. 512 users as recframe's `evaluation.batch_size`. At ML-100K "
        "size a test pass takes tens of milliseconds, so its ratio moves with the machine's "
        "load more than the others; the whole-call figures show what Lightning's set-up adds.\n"
        "- **BPR.** RecBole: Xavier-normal init, one sampled negative per positive rejecting "
        "the user's train items, loss `-log(1e-10 + sigmoid(pos - neg))` averaged over the "
        "batch; recframe: normal(0, 0.01) init, same negative sampling (seen items "
        "excluded), `-logsigmoid(pos - neg)` averaged; no regularisation on either side. "
        "Both use `torch.optim.Adam`: recframe's `optim.fused=auto` default runs its fused "
        "multi-tensor kernel, RecBole the default per-tensor loop.")
    parts.append(
        "Where the time goes (py-spy and the torch profiler, 1 thread, on this machine): a "
        "recframe BPR step spends most of its time in the embedding gradients, the fused "
        "`Adam` kernel over both full tables, the forward, batching (vectorized negative "
        "sampling against a users x items bitmap) and Lightning's loop. That loop costs a "
        "fixed ~0.5 ms per batch, a third of an ML-100K epoch (22 steps) when every batch "
        "was one step; recframe now takes 8 optimizer steps per batch of the loop "
        "(`steps_per_execution=auto`: the same mini-batches and updates, bit-identical "
        "weights; `recframe.train.execution`). The hand-written BPR backward uses plain "
        "row-broadcast products (no reduction over a length-1 axis) and negated sources "
        "rather than `index_add_(alpha=-1)`, which on CPU takes a path ~3x slower. Before "
        "the first speed round "
        "the step was slower: the negatives were scored with `einsum('bd,bnd->bn')`, "
        "which on CPU runs a batched matmul of 1 x d by d x 1 products (the largest single "
        "op of the step, forward and backward; now an elementwise product and a sum), "
        "and `Adam` ran its per-tensor path. RecBole's BPR epoch spends much of its time building "
        "batches (`Interaction.__getitem__`, a Python-level rejection loop for negatives). "
        "Full-ranking test time: the floors above are the model's scores, the masking and "
        "`torch.topk`. recframe ranks with its own selection instead "
        "(`recframe.eval.topk.topk_rows`: the top-k strided column groups by their maxima, "
        "then an exact top-k over their members, same values, ties by item index; see "
        "`topk_select`), so its BPR loop can come in under that floor; the selection is "
        "still its largest share, then the matrix product. At ML-100K size a pass is only "
        "two batches, so fixed per-pass costs (Lightning's loop, each op's first call, the "
        "final metric reduction) weigh more, most of all in the first pass. SASRec scores "
        "only the last position, so recframe's scorer computes the last block for that "
        "position alone (attention of one query over all keys, one feed-forward row; "
        "`recframe_seq._common.encode_last_position`), runs the encoder in 4,096-token "
        "chunks per thread on CPU (L2-sized intermediates), and runs the blocks before the "
        "last as one packed projection and `scaled_dot_product_attention` on views (no "
        "`nn.MultiheadAttention` transposes and copies); RecBole runs every block over all "
        "50 positions. What remains is the first block over all positions, which the last "
        "one reads. SASRec training on prefix rows: recframe computes the last block for "
        "each row's last position only (the one trained), as its scorer does; the largest "
        "single op of a CPU step is then drawing dropout masks (torch's `bernoulli_`), "
        "then the matmuls.")
    # the 'before' figures are for the default sizes (the 1M-interaction synthetic set)
    if (BEFORE and "ml100k" in results
            and sizes.get("ml1m_synth", {}).get("n_interactions") == 1_000_000):
        parts.append(_before_after(figures))
    if install.get("installed_now"):
        parts.append(f"RecBole's environment was installed by this run in "
                     f"{install['install_seconds']:.0f} s (not part of any timing).")
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__.splitlines()[0], "tiny sizes: a smoke run (1 epoch each, "
                      "a 20k-interaction synthetic set)")
    p.add_argument("--threads", type=int, default=1, help="torch threads of every run")
    p.add_argument("--seeds", default="0,1,2,3,4",
                   help="BPR training seeds (one run of each framework per seed)")
    p.add_argument("--sasrec-seeds", default="0,1,2",
                   help="SASRec training seeds (a RecBole SASRec epoch on ml100k takes minutes)")
    p.add_argument("--bpr-epochs", type=int, default=20, help="BPR epochs on ml100k")
    p.add_argument("--bpr-batch", type=int, default=2048, help="BPR triples per step")
    p.add_argument("--bpr-lr", type=float, default=0.005, help="BPR Adam learning rate")
    p.add_argument("--sasrec-epochs", type=int, default=1, help="SASRec epochs on ml100k")
    p.add_argument("--sasrec-batch", type=int, default=64,
                   help="SASRec prefix rows per step (both frameworks)")
    p.add_argument("--sasrec-lr", type=float, default=0.001, help="SASRec Adam learning rate")
    p.add_argument("--recframe-sasrec-long-epochs", type=int, default=10,
                   help="also run recframe's SASRec alone with its default rows for this many "
                   "epochs on ml100k (0: skip)")
    p.add_argument("--sasrec-batches", type=int, default=0,
                   help="cap SASRec epochs on ml100k at this many batches, both frameworks "
                   "(0: whole)")
    p.add_argument("--synth-users", type=int, default=6040, help="ml1m_synth users")
    p.add_argument("--synth-items", type=int, default=3706, help="ml1m_synth items")
    p.add_argument("--synth-interactions", type=int, default=1_000_000,
                   help="ml1m_synth interactions")
    p.add_argument("--synth-bpr-epochs", type=int, default=10, help="BPR epochs on ml1m_synth")
    p.add_argument("--synth-sasrec-epochs", type=int, default=1,
                   help="SASRec epochs on ml1m_synth")
    p.add_argument("--synth-sasrec-batches", type=int, default=200,
                   help="cap SASRec epochs on ml1m_synth at this many batches, both frameworks "
                   "(0: whole)")
    p.add_argument("--datasets", default="ml100k,ml1m_synth", help="comma-separated subset")
    p.add_argument("--ml100k", type=Path, default=ml100k_path(),
                   help="the MovieLens-100K folder (u.data, u.item, u.user)")
    p.add_argument("--work-dir", type=Path, default=None,
                   help="keep exported splits, logs and run dirs here (default: a temp dir)")
    p.add_argument("--rerender", action="store_true",
                   help="only rebuild the markdown of the fragment in --out from its recorded "
                   "runs (after a text change; nothing is rerun)")
    args = p.parse_args(argv)
    if args.rerender:
        rerender(args.out)
        return 0
    seeds = tuple(int(x) for x in args.seeds.split(",") if x)
    sasrec_seeds = tuple(int(x) for x in args.sasrec_seeds.split(",") if x)
    if args.small:
        seeds, sasrec_seeds = seeds[:1], sasrec_seeds[:1]
        args.bpr_epochs = args.sasrec_epochs = args.synth_bpr_epochs = 1
        args.synth_sasrec_epochs = 1
        args.recframe_sasrec_long_epochs = 0
        args.sasrec_batches = args.synth_sasrec_batches = 20
        args.synth_users, args.synth_items, args.synth_interactions = 500, 400, 20_000
    logging.basicConfig(level=logging.WARNING)
    install = ensure_recbole_venv()
    names = [n for n in args.datasets.split(",") if n]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="recbole_compare-") as tmp:
        work = args.work_dir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        results: dict[str, list[Pair]] = {}
        extras: list[dict[str, Any]] = []
        sizes: dict[str, dict[str, Any]] = {}
        for name in names:
            print(f"== {name}", flush=True)
            synth = name == "ml1m_synth"
            if synth:
                frame = synthetic_interactions(args.synth_users, args.synth_items,
                                               args.synth_interactions, seed=0)
                path = work / f"{name}.parquet"
                frame.to_parquet(path, index=False)
                base = ["dataset=csv", f"dataset.path={path}", "dataset.columns.rating=null",
                        "preprocess=none"]
                sizes[name] = {"description": "synthetic (numpy, seed 0), implicit",
                               "n_users": frame.user_id.nunique(),
                               "n_items": frame.item_id.nunique(),
                               "n_interactions": len(frame)}
            elif name == "ml100k":
                base = ["dataset=ml-100k", f"dataset.path={args.ml100k}", "dataset.download=false",
                        "preprocess=implicit"]
            else:
                p.error(f"unknown data set {name!r}; known: ml100k, ml1m_synth")
            protocols = [
                Protocol("bpr", args.synth_bpr_epochs if synth else args.bpr_epochs,
                         args.bpr_batch, args.bpr_lr, threads=args.threads, seeds=seeds),
                Protocol("sasrec", args.synth_sasrec_epochs if synth else args.sasrec_epochs,
                         args.sasrec_batch, args.sasrec_lr, threads=args.threads,
                         seeds=sasrec_seeds,
                         max_batches=(args.synth_sasrec_batches if synth
                                      else args.sasrec_batches)),
            ]
            extra_runs = [] if synth else sasrec_extras(args.recframe_sasrec_long_epochs)
            pairs, more = run_dataset(name, base, protocols, work, {"sasrec": extra_runs})
            results[name], extras = pairs, extras + more
            if not synth:
                ex = pairs[0].export
                sizes[name] = {"description": "MovieLens-100K, ratings >= 4 as positives",
                               "n_users": ex["n_users"], "n_items": ex["n_items"],
                               "n_interactions": ex["n_train"] + ex["n_valid"] + ex["n_test"]}
    figures: dict[str, Any] = {"recbole_compare_threads": args.threads}
    for name, pairs in results.items():
        suffix = "" if name == "ml100k" else f"_{name}"
        for pair in pairs:
            figures.update(pair.row_figures(suffix))
    for e in extras:
        suffix = "" if e["dataset"] == "ml100k" else f"_{e['dataset']}"
        figures[f"ndcg10_{e['model']}_recframe_{e['key']}{suffix}"] = round(
            float(e["ndcg@10"]), 5)
        figures[f"{e['model']}_recframe_{e['key']}_time_vs_recbole_epoch{suffix}"] = (
            round(e["fit_seconds"] / e["recbole_epoch_seconds"], 3))
    details = {
        "install": install,
        "requirements": REQUIREMENTS.read_text().splitlines(),
        "sizes": sizes,
        "total_seconds": round(time.perf_counter() - start, 1),
        "recframe_long_runs": extras,
        "runs": {name: [{"protocol": pair.protocol.__dict__, "export": pair.export,
                         "recframe": pair.recframe_runs, "recbole": pair.recbole_runs}
                        for pair in pairs] for name, pairs in results.items()},
    }
    md = markdown(results, extras, sizes, args.threads, install, figures)
    common.write_fragment(NAME, args.out, figures, md, details)
    return 0


if __name__ == "__main__":
    sys.exit(main())

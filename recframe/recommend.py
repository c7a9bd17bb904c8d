"""``recframe recommend``: top-K lists from a finished run's best checkpoint.

Known users are scored with their whole known history (train + valid + test)
as context and masked; new users are scored from a list of item ids by the
model's fold-in (:meth:`RecModel.score_new_users`).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from omegaconf import OmegaConf
from rich.console import Console
from rich.table import Table

from recframe.errors import ConfigError, DataError
from recframe.eval.topk import topk_rows
from recframe.pipeline import fingerprint
from recframe.results import RESULTS_FILE, write_parquet
from recframe.runner import Experiment, build_experiment
from recframe.train.batches import left_padded


@dataclass
class Recommender:
    """A trained model plus the encoded data of its run."""

    exp: Experiment
    history: sp.csr_matrix  # all known interactions (train + valid + test)

    @property
    def data(self) -> Any:
        return self.exp.data


def load_run(run_dir: Path | str, checkpoint: str = "best") -> Recommender:
    """Rebuild a run's data and model and load its checkpoint (``weights_only=True``)."""
    run_dir = Path(run_dir)
    results_path = run_dir / RESULTS_FILE
    if not results_path.exists():
        raise ConfigError(f"{run_dir} is not a run dir: no {RESULTS_FILE}")
    results = json.loads(results_path.read_text())
    if results.get("status") != "ok":
        raise ConfigError(f"{run_dir}: the run did not finish (status {results.get('status')!r})")
    cfg = OmegaConf.create(results["config"])
    ckpt = {"best": results.get("best_checkpoint"),
            "last": str(run_dir / "checkpoints" / "last.ckpt")}.get(checkpoint, checkpoint)
    if not ckpt or not Path(ckpt).exists():
        raise ConfigError(f"{run_dir}: checkpoint {checkpoint!r} not found ({ckpt})")
    exp = build_experiment(cfg)
    expected = results.get("protocol", {}).get("data_fingerprint")
    if expected and fingerprint(exp.data) != expected:
        raise DataError(f"the data behind {run_dir} changed since the run (fingerprint "
                        f"{fingerprint(exp.data)} != {expected}); recommendations would not "
                        f"match the trained model")
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    weights = {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}
    exp.model.prepare(exp.data)
    exp.model.load_state_dict(weights, strict=False)
    exp.model.eval()
    data = exp.data
    history = (data.train + data.valid + data.test).tocsr()
    history.data[:] = 1.0
    return Recommender(exp, history)


def _encode_ids(index: pd.Index, raw: Sequence[str], kind: str) -> np.ndarray:
    values: list[Any] = []
    for r in raw:
        candidates = [r]
        if r.lstrip("-").isdigit():
            candidates.insert(0, int(r))
        found = next((c for c in candidates if c in index), None)
        if found is None:
            raise ConfigError(f"unknown {kind} id {r!r}: not in the run's data "
                              f"(e.g. {', '.join(map(str, index[:5]))}, ...)")
        values.append(found)
    return index.get_indexer(values)


def _topk(rec: Recommender, scores: torch.Tensor, seen: sp.csr_matrix, k: int
          ) -> tuple[np.ndarray, np.ndarray]:
    scores = scores.float().clone()
    rows = np.repeat(np.arange(seen.shape[0]), np.diff(seen.indptr))
    scores[torch.from_numpy(rows), torch.from_numpy(seen.indices.astype(np.int64))] = -torch.inf
    values, items = topk_rows(scores, min(k, scores.shape[1]))
    return items.numpy(), values.numpy()


@torch.no_grad()
def recommend_users(rec: Recommender, users: np.ndarray, k: int, batch_size: int = 512
                    ) -> pd.DataFrame:
    """Top-``k`` (user, rank, item, score) rows for encoded ``users``, in batches."""
    model = rec.exp.model
    max_len = int(getattr(model, "max_seq_len", 0))
    history = rec.data.history(("train", "valid", "test")) if max_len else None
    frames = []
    for start in range(0, len(users), batch_size):
        batch_users = users[start:start + batch_size]
        seen = rec.history[batch_users]
        rows = np.repeat(np.arange(len(batch_users), dtype=np.int64), np.diff(seen.indptr))
        context = {
            "users": torch.from_numpy(batch_users),
            "seen_rows": torch.from_numpy(rows),
            "seen_cols": torch.from_numpy(seen.indices.astype(np.int64)),
        }
        if history is not None:
            context["seq"] = left_padded(history, batch_users, max_len)
        scores = model.score(context["users"], context)
        items, values = _topk(rec, scores, rec.history[batch_users], k)
        frames.append(_frame(rec, batch_users, items, values))
    return pd.concat(frames, ignore_index=True)


@torch.no_grad()
def recommend_history(rec: Recommender, item_ids: Sequence[str], k: int) -> pd.DataFrame:
    """Top-``k`` for a new user who consumed ``item_ids`` (in this order)."""
    items = _encode_ids(rec.data.item_ids, item_ids, "item")
    n_items = rec.data.info.n_items
    seen = sp.csr_matrix((np.ones(len(items)), (np.zeros(len(items), int), items)),
                         shape=(1, n_items))
    seen.sum_duplicates()
    max_len = int(getattr(rec.exp.model, "max_seq_len", 0))
    context = {
        "users": torch.tensor([-1]),
        "seen_rows": torch.zeros(seen.nnz, dtype=torch.long),
        "seen_cols": torch.from_numpy(seen.indices.astype(np.int64)),
    }
    if max_len:
        seq = np.full((1, max_len), -1, dtype=np.int64)
        tail = items[-max_len:]
        seq[0, max_len - len(tail):] = tail
        context["seq"] = torch.from_numpy(seq)
    scores = rec.exp.model.score_new_users(context)
    top, values = _topk(rec, scores, seen, k)
    return _frame(rec, np.array([-1]), top, values, user_label="new user")


def _frame(rec: Recommender, users: np.ndarray, items: np.ndarray, values: np.ndarray,
           user_label: str | None = None) -> pd.DataFrame:
    k = items.shape[1]
    user_ids = ([user_label] * len(users) if user_label is not None
                else rec.data.user_ids[users].astype(str).tolist())
    frame = pd.DataFrame({
        "user_id": np.repeat(user_ids, k),
        "rank": np.tile(np.arange(1, k + 1), len(users)),
        "item_id": rec.data.item_ids[items.ravel()].astype(str),
        "score": values.ravel().astype(np.float64),
    })
    titles = _titles(rec)
    if titles is not None:
        frame["title"] = titles[items.ravel()]
    annotate = getattr(rec.exp.model, "item_annotations", None)
    for column, values in (annotate(items) if callable(annotate) else {}).items():
        frame[column] = np.asarray(values).ravel()  # e.g. a generative model's semantic IDs
    return frame


def _titles(rec: Recommender) -> np.ndarray | None:
    features = rec.data.item_features
    if features is None or "title" not in features.columns:
        return None
    return features["title"].astype(str).to_numpy()


def _history_table(rec: Recommender, user: int, limit: int = 10) -> list[str]:
    indptr, items = rec.data.history(("train", "valid", "test"))
    mine = items[indptr[user]:indptr[user + 1]][-limit:]
    titles = _titles(rec)
    raw = rec.data.item_ids[mine].astype(str)
    return [f"{r} {titles[i]}" if titles is not None else str(r) for r, i in zip(raw, mine,
                                                                                strict=True)]


_BASE_COLUMNS = ("user_id", "rank", "item_id", "score", "title")


def print_recommendations(rec: Recommender, frame: pd.DataFrame, console: Console,
                          users: np.ndarray | None = None) -> None:
    for n, (user_id, rows) in enumerate(frame.groupby("user_id", sort=False)):
        table = Table(title=f"user {user_id}: top {len(rows)}")
        table.add_column("rank", justify="right")
        table.add_column("item")
        if "title" in rows:
            table.add_column("title")
        extra = [c for c in rows.columns if c not in _BASE_COLUMNS]
        for column in extra:  # the model's own item annotations (RecModel.item_annotations)
            table.add_column(column)
        table.add_column("score", justify="right")
        for row in rows.itertuples():
            cells = [str(row.rank), str(row.item_id)]
            if "title" in rows:
                cells.append(str(row.title))
            cells += [str(getattr(row, c)) for c in extra]
            table.add_row(*cells, f"{row.score:.4f}")
        if users is not None:
            history = _history_table(rec, int(users[n]))
            console.print(f"[bold]user {user_id}[/] recent history: " + "; ".join(history),
                          highlight=False, soft_wrap=True)
        console.print(table)


def recommend_command(argv: Sequence[str], console: Console | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="recframe recommend",
        description="Top-K recommendations from a finished run's checkpoint.")
    parser.add_argument("run_dir", type=Path, help="a run directory (holds results.json)")
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--users", help="comma-separated user ids, e.g. 1,2,3")
    who.add_argument("--all", action="store_true", help="every known user (use with --out)")
    who.add_argument("--history", help="comma-separated item ids of a new user (fold-in)")
    parser.add_argument("-k", type=int, default=10, help="list length (default 10)")
    parser.add_argument("--out", type=Path, help="write a parquet file instead of printing")
    parser.add_argument("--checkpoint", default="best", help="best | last | a .ckpt path")
    args = parser.parse_args(list(argv))
    if args.k < 1:
        raise ConfigError(f"-k must be a positive integer, got {args.k}")
    console = console or Console()
    rec = load_run(args.run_dir, args.checkpoint)
    users = None
    if args.history:
        frame = recommend_history(rec, args.history.split(","), args.k)
    else:
        if args.all:
            users = np.arange(rec.data.info.n_users)
        else:
            users = _encode_ids(rec.data.user_ids, args.users.split(","), "user")
        frame = recommend_users(rec, users, args.k)
    if args.out:
        write_parquet(args.out, frame)
        console.print(f"wrote {len(frame)} rows to {args.out}")
    else:
        print_recommendations(rec, frame, console, users)
    return 0

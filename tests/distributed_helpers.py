"""Helpers for the distributed tests: per-user equality and a raw gloo evaluation."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd


def assert_same_per_user(got: pd.DataFrame, expected: pd.DataFrame, atol: float = 1e-6) -> None:
    """Same users exactly once each, same per-user values (to float tolerance)."""
    if got["user"].duplicated().any():
        dup = got.loc[got["user"].duplicated(), "user"].tolist()[:5]
        raise AssertionError(f"users evaluated more than once: {dup}")
    missing = set(expected["user"]) - set(got["user"])
    extra = set(got["user"]) - set(expected["user"])
    if missing or extra:
        raise AssertionError(f"users dropped: {sorted(missing)[:5]}, added: {sorted(extra)[:5]}")
    a = got.sort_values("user").reset_index(drop=True)
    b = expected.sort_values("user").reset_index(drop=True)
    # every metric column (ranking: ndcg@10, ...; CTR protocol: gauc, logloss, n_impressions)
    cols = [c for c in b.columns
            if c not in ("user", "user_id") and pd.api.types.is_numeric_dtype(b[c])]
    assert cols, "no per-user metric column to compare"
    np.testing.assert_allclose(a[cols].to_numpy(), b[cols].to_numpy(), atol=atol)


def gloo_worker(rank: int, world: int, port: int, payload: dict[str, Any], out: Any) -> None:
    """One rank: shard evaluation users through RecDataModule, score, gather per-user values."""
    import torch
    import torch.distributed as dist

    from recframe.train.datamodule import RecDataModule

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        dm = RecDataModule(payload["data"], "fit", eval_batch_size=payload["batch_size"],
                           eval_sampler=payload.get("sampler"))
        dm.world = (world, rank)
        evaluator, scores_all = payload["evaluator"], payload["scores"]
        users, values = [], {}
        for batch in dm.test_dataloader():
            scores = scores_all[batch["users"]]
            for k, v in evaluator.evaluate_batch(scores, batch).items():
                values.setdefault(k, []).append(v)
            users.append(batch["users"])
        local = (torch.cat(users) if users else torch.empty(0, dtype=torch.long),
                 {k: torch.cat(v) for k, v in values.items()})
        gathered: list[Any] = [None] * world
        dist.all_gather_object(gathered, local)
        if rank == 0:
            frames = []
            for u, vals in gathered:
                frame = pd.DataFrame({"user": u.numpy()})
                for k, v in vals.items():
                    frame[k] = v.numpy()
                frames.append(frame)
            out.put(pd.concat(frames, ignore_index=True))
    finally:
        dist.destroy_process_group()

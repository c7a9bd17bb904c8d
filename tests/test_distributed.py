"""DDP on CPU (gloo, 2 processes) reports exactly what one process reports.

Two levels: raw gloo process groups exercise the user sharding of
`RecDataModule` (and a deliberate mutation, the padding `DistributedSampler`,
shows the equality check catches duplicated users); the CLI with
`trainer=ddp` trains and evaluates end to end and is compared with a
single-process evaluation of its own best checkpoint.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.multiprocessing as mp
from torch.utils.data.distributed import DistributedSampler

from recframe.plugin import default_manager
from recframe.runner import build_experiment, evaluate_checkpoint
from tests.distributed_helpers import assert_same_per_user, gloo_worker

pytestmark = pytest.mark.distributed
BIN = Path(sys.executable).parent / "recframe"
# 301 users: not divisible by world size 2 nor by the evaluation batch size 8.
SMALL = ["dataset=synthetic", "dataset.n_users=301", "dataset.n_items=120", "preprocess=none",
         "logger=none", "evaluation.batch_size=8", "metrics.ks=[5,10]"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _padding_sampler(dataset, world, rank):
    return DistributedSampler(dataset, world, rank, shuffle=False)  # pads by repeating users


def _gloo_eval(payload, world=2) -> pd.DataFrame:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=gloo_worker, args=(r, world, port, payload, out))
             for r in range(world)]
    for p in procs:
        p.start()
    frame = out.get(timeout=120)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return frame


@pytest.fixture(scope="module")
def sharding_payload():
    from recframe.hydra_app import compose_config

    exp = build_experiment(compose_config(SMALL + ["model=pop"]), default_manager())
    n_items = exp.data.info.n_items
    scores = torch.from_numpy(np.random.default_rng(0).normal(size=(exp.data.info.n_users,
                                                                    n_items))).float()
    dm = exp.datamodule
    users, values = [], {}
    for batch in dm.test_dataloader():
        for k, v in exp.plan.evaluator.evaluate_batch(scores[batch["users"]], batch).items():
            values.setdefault(k, []).append(v)
        users.append(batch["users"])
    single = pd.DataFrame({"user": torch.cat(users).numpy(),
                           **{k: torch.cat(v).numpy() for k, v in values.items()}})
    payload = {"data": exp.data, "evaluator": exp.plan.evaluator, "scores": scores,
               "batch_size": 8}
    return payload, single


def test_gloo_sharding_equals_single_process(sharding_payload):
    payload, single = sharding_payload
    assert len(single) % 2 == 1  # uneven on purpose
    assert_same_per_user(_gloo_eval(payload), single)


def test_equality_check_catches_padding_sampler(sharding_payload):
    """Mutation: Lightning's default-style padding sampler repeats a user; the check fails."""
    payload, single = sharding_payload
    frame = _gloo_eval({**payload, "sampler": _padding_sampler})
    with pytest.raises(AssertionError, match="more than once"):
        assert_same_per_user(frame, single)


def test_equality_check_catches_a_dropped_user(sharding_payload):
    _, single = sharding_payload
    with pytest.raises(AssertionError, match="dropped"):
        assert_same_per_user(single.iloc[1:], single)


def _run_cli(tmp_path: Path, *overrides: str) -> dict:
    env = {**os.environ, "RECFRAME_OUTPUT_DIR": str(tmp_path), "WANDB_MODE": "offline",
           "PYTHONUNBUFFERED": "1"}
    out = subprocess.run([str(BIN), "run", *overrides], env=env, capture_output=True, text=True,
                         timeout=900, cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    path = next(tmp_path.rglob("results.json"))
    return json.loads(path.read_text()) | {"_dir": str(path.parent)}


@pytest.fixture(scope="module")
def ddp_bpr(tmp_path_factory):
    overrides = SMALL + ["model=bpr", "optim.lr=0.01", "trainer.max_epochs=6",
                         "metrics.names=[ndcg,recall,mrr,coverage,gini]"
                         if "coverage" in default_manager().metrics else "metrics.names=[ndcg]"]
    ddp = _run_cli(tmp_path_factory.mktemp("ddp"), *overrides, "trainer=ddp",
                   "trainer.devices=2")
    single = _run_cli(tmp_path_factory.mktemp("single"), *overrides)
    return overrides, ddp, single


def test_ddp_run_evaluates_every_user_once_like_one_process(ddp_bpr):
    from recframe.hydra_app import compose_config

    overrides, ddp, _ = ddp_bpr
    assert ddp["status"] == "ok" and ddp["world_size"] == 2
    ddp_frame = pd.read_parquet(Path(ddp["_dir"]) / "per_user.parquet")
    metrics, frame = evaluate_checkpoint(compose_config(overrides), ddp["best_checkpoint"])
    assert_same_per_user(ddp_frame, frame)
    for key, value in metrics.items():  # global metrics (coverage, gini) included
        assert ddp["metrics"]["test"][key] == pytest.approx(value, abs=1e-6), key


def test_ddp_training_is_comparable_to_single_process(ddp_bpr):
    _, ddp, single = ddp_bpr
    a, b = ddp["metrics"]["test"]["ndcg@10"], single["metrics"]["test"]["ndcg@10"]
    assert a == pytest.approx(b, rel=0.35), (a, b)


@pytest.mark.slow
@pytest.mark.parametrize("model, extra", [
    ("ease", []),
    ("pop", []),
    ("sasrec", ["split=leave_one_out", "model.max_seq_len=20", "trainer.max_epochs=2"]),
    # streamed from shards: batches dealt by row group, evaluation read from the shards
    ("bpr", ["trainer.max_epochs=1", "data.engine=duckdb", "data.streaming=true",
             "data.shard_rows=20000", "data.shard_dir={tmp}/shards"]),
])
def test_ddp_closed_form_and_sequence_models_match_one_process(model, extra, tmp_path):
    """Closed-form models fit identically on every rank; a sequence model trains under DDP;
    both evaluate exactly like one process on the saved checkpoint."""
    from recframe.hydra_app import compose_config

    if model not in default_manager().models:
        pytest.skip(f"model {model} is not installed")
    overrides = SMALL + [f"model={model}", *(e.format(tmp=tmp_path) for e in extra)]
    ddp = _run_cli(tmp_path, *overrides, "trainer=ddp", "trainer.devices=2")
    assert ddp["status"] == "ok" and ddp["world_size"] == 2
    metrics, frame = evaluate_checkpoint(compose_config(overrides), ddp["best_checkpoint"])
    assert_same_per_user(pd.read_parquet(Path(ddp["_dir"]) / "per_user.parquet"), frame)
    for key, value in metrics.items():
        assert ddp["metrics"]["test"][key] == pytest.approx(value, abs=1e-6), key


@pytest.mark.slow
def test_ddp_ctr_protocol_matches_one_process(tmp_path):
    """Under the CTR protocol each rank scores whole batches of labeled rows (6,001 rows,
    batches of 997: uneven across ranks); the gathered AUC/GAUC/LogLoss and per-user
    values equal one process scoring the same checkpoint."""
    from recframe.hydra_app import compose_config

    overrides = ["dataset=synthetic_ctr", "dataset.n_rows=6001", "dataset.n_users=301",
                 "model=fm", "model.batch_size=512", "model.lr=0.01", "trainer.max_epochs=2",
                 "logger=none", "evaluation.row_batch_size=997"]
    ddp = _run_cli(tmp_path, *overrides, "trainer=ddp", "trainer.devices=2")
    assert ddp["status"] == "ok" and ddp["world_size"] == 2
    assert ddp["protocol"]["kind"] == "ctr"
    metrics, frame = evaluate_checkpoint(compose_config(overrides), ddp["best_checkpoint"])
    ddp_frame = pd.read_parquet(Path(ddp["_dir"]) / "per_user.parquet")
    assert_same_per_user(ddp_frame, frame)  # NaN (one-class users) equal NaN
    assert frame["n_impressions"].sum() == ddp["protocol"]["counts"]["n_test_impressions"]
    for key, value in metrics.items():
        assert ddp["metrics"]["test"][key] == pytest.approx(value, abs=1e-9), key

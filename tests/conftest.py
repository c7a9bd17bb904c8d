"""Shared fixtures: config composition, fast synthetic runs, the real-data dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

from tests.hypothesis_db import DATABASE

# every property test replays the committed example database first (tests/hypothesis_db.py)
settings.register_profile("recframe", database=DATABASE)
settings.load_profile("recframe")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("RECFRAME_DATA_DIR", REPO.parent / "shared" / "data"))
ML100K = SHARED_DATA / "ml-100k"

# A small planted-structure problem that trains in seconds on 2 cores.
FAST = [
    "dataset=synthetic",
    "dataset.n_users=300",
    "dataset.n_items=200",
    "preprocess=none",
    "trainer.max_epochs=8",
    "logger=none",
    "metrics.ks=[10,20]",
]


@pytest.fixture
def compose():
    """Compose the run config exactly as `recframe run` would."""
    from recframe.hydra_app import compose_config

    def _compose(*overrides: str, fast: bool = True):
        return compose_config([*(FAST if fast else []), *overrides])

    return _compose


@pytest.fixture
def ml100k_dir() -> Path:
    if not (ML100K / "u.data").exists():
        pytest.skip(f"MovieLens-100K not found at {ML100K}")
    return ML100K


@pytest.fixture(autouse=True)
def _no_network_wandb(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")


@pytest.fixture(scope="module")
def one_thread():
    """2-core CI machines shared by several jobs: intra-op threads only add contention."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def pop_ndcg(tmp_path_factory) -> float:
    """Pop's test NDCG@10 on the FAST synthetic problem: the bar every model must clear."""
    from recframe.hydra_app import compose_config
    from recframe.runner import run_experiment

    results = run_experiment(compose_config([*FAST, "model=pop"]), tmp_path_factory.mktemp("pop"))
    return results["metrics"]["test"]["ndcg@10"]

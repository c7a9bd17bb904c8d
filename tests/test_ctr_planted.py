"""Click models against the truth of a planted click log (dataset=synthetic_ctr), and the
documented command on MovieLens-100K as impressions: end to end, through the CLI/runner.

The simulator records the Bayes-optimal metrics on the same test rows
(results.json ``bayes_optimal``): the AUC of the true click probabilities.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from recframe.hydra_app import compose_config
from recframe.runner import run_experiment

from .conftest import ML100K

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent / "recframe"


def _run(tmp_path: Path, *overrides: str) -> dict:
    cfg = compose_config(["dataset=synthetic_ctr", "logger=none", *overrides])
    return run_experiment(cfg, tmp_path / "_".join(o.replace("/", "_") for o in overrides)[:80])


def _gap(results: dict) -> float:
    return results["bayes_optimal"]["test"]["auc"] - results["metrics"]["test"]["auc"]


def test_fm_reaches_the_optimum_on_pairwise_data_where_lr_cannot(tmp_path):
    """Clicks from first-order + low-rank pairwise terms (an FM's own form), enough rows
    per user and item: FM ends within 0.01 AUC of the Bayes optimum; LR, which has no
    pairwise term, stays well below it."""
    data = ["dataset.sequence_effect=0", "dataset.n_users=100", "dataset.n_items=50",
            "dataset.n_rows=160000"]
    fm = _run(tmp_path, *data, "model=fm", "model.embedding_dim=8", "model.lr=0.005")
    lr = _run(tmp_path, *data, "model=lr", "model.lr=0.01")
    assert _gap(fm) < 0.01, (fm["metrics"]["test"], fm["bayes_optimal"]["test"])
    assert _gap(lr) > 0.03, (lr["metrics"]["test"], lr["bayes_optimal"]["test"])


def test_din_beats_deepfm_when_a_sequence_effect_is_planted(tmp_path):
    """Clicks also depend on the categories of the user's last 3 clicks (hist_len=3):
    DIN attends over that history; DeepFM has no sequence input."""
    data = ["dataset.n_users=200", "dataset.n_items=100", "dataset.n_rows=80000",
            "dataset.hist_len=3", "model.lr=0.003"]
    din = _run(tmp_path, *data, "model=din")
    deepfm = _run(tmp_path, *data, "model=deepfm")
    assert din["metrics"]["test"]["auc"] > deepfm["metrics"]["test"]["auc"] + 0.01


def test_the_documented_command_prints_auc_gauc_logloss(tmp_path):
    """`recframe run dataset=ml-100k-ctr model=deepfm` (the issue's command) prints the
    test AUC, GAUC and LogLoss and beats a coin flip by far."""
    if not (ML100K / "u.data").exists():
        pytest.skip(f"MovieLens-100K not found at {ML100K}")
    env = {**os.environ, "RECFRAME_OUTPUT_DIR": str(tmp_path), "COLUMNS": "120",
           "RECFRAME_DATA_DIR": str(ML100K.parent)}
    out = subprocess.run([str(BIN), "run", "dataset=ml-100k-ctr", "model=deepfm",
                          "trainer.max_epochs=3", "logger=none"], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    for name in ("auc", "gauc", "logloss"):
        assert f"│ {name} " in out.stdout, out.stdout
    results = json.loads(next(tmp_path.rglob("results.json")).read_text())
    assert results["protocol"]["kind"] == "ctr" and results["metrics"]["test"]["auc"] > 0.7

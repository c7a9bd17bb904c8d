"""recframe-example passes recframe's conformance kit and does what it documents."""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from recframe.api import TIMESTAMP, USER
from recframe.testing import (
    check_metric,
    check_model,
    check_preprocessor,
    compose,
    evaluate_metric,
    run,
    sample_dataset,
)

HERE = Path(__file__).resolve().parents[1]
SYNTHETIC = ("dataset=synthetic", "dataset.n_users=300", "dataset.n_items=200",
             "preprocess=none", "logger=none", "callbacks=none", "metrics.ks=[10,20]")


def _installed() -> bool:
    try:
        importlib.metadata.distribution("recframe-example")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


# -- model ---------------------------------------------------------------------------------


def test_model_conforms(pm):
    check_model("example", pm=pm)


def test_model_beats_pop_on_planted_structure(pm):
    ours = run("model=example", *SYNTHETIC, pm=pm)["metrics"]["test"]
    pop = run("model=pop", *SYNTHETIC, pm=pm)["metrics"]["test"]
    assert ours["ndcg@10"] > 1.2 * pop["ndcg@10"], (ours, pop)
    assert ours["recall@20"] > pop["recall@20"], (ours, pop)


def test_model_config_ships_with_the_package(pm):
    cfg = compose("model=example", pm=pm)
    assert cfg.model.name == "example" and cfg.model.alpha == 0.5
    steps = compose("preprocess=capped", pm=pm).preprocess
    assert [s.name for s in steps] == ["dedup", "binarize", "cap_user_history"]


def test_bad_parameter_is_a_config_error(pm):
    from recframe.api import ConfigError

    with pytest.raises(ConfigError, match="model.alpha"):
        run("model=example", "model.alpha=2.0", *SYNTHETIC, pm=pm)


# -- metric --------------------------------------------------------------------------------


def test_rprecision_conforms(pm):
    check_metric("rprecision", pm=pm)


def _rprecision_brute_force(scores, truth, seen, k):
    out = []
    for s, t, m in zip(scores.tolist(), truth.tolist(), seen.tolist(), strict=True):
        ranked = sorted((i for i in range(len(s)) if not m[i]), key=lambda i: -s[i])
        r = min(sum(t), k)
        out.append(sum(t[i] for i in ranked[:r]) / r if r else 0.0)
    return torch.tensor(out)


def test_rprecision_matches_brute_force(pm):
    g = torch.Generator().manual_seed(0)
    scores = torch.rand(50, 40, generator=g)  # distinct scores: no ties to break
    truth = torch.rand(50, 40, generator=g) < 0.2
    seen = (torch.rand(50, 40, generator=g) < 0.2) & ~truth
    values = evaluate_metric("rprecision", scores, truth, seen=seen, ks=[1, 3, 10, 50],
                             batch_size=7, pm=pm)
    for k in (1, 3, 10, 50):
        expected = _rprecision_brute_force(scores, truth, seen, k)
        torch.testing.assert_close(values[f"rprecision@{k}"], expected)


# -- preprocessor --------------------------------------------------------------------------


def test_cap_user_history_conforms(pm):
    check_preprocessor("cap_user_history", {"max_per_user": 5}, pm=pm)


def test_cap_user_history_keeps_the_latest_rows(pm):
    ds = sample_dataset(messy=False)
    out = check_preprocessor("cap_user_history", {"max_per_user": 4}, dataset=ds, pm=pm)
    df, kept = ds.interactions, out.interactions
    assert kept[USER].value_counts().max() == 4
    for user, rows in df.groupby(USER):
        latest = rows.sort_values(TIMESTAMP, kind="stable").index[-4:]
        assert set(kept.index[kept[USER] == user]) == set(latest)
    # without timestamps the last rows in file order are kept
    plain = ds.with_interactions(df.drop(columns=[TIMESTAMP]))
    out = check_preprocessor("cap_user_history", {"max_per_user": 1}, dataset=plain, pm=pm)
    assert list(out.interactions.index) == list(df.groupby(USER).tail(1).index)


# -- packaging and the CLI -----------------------------------------------------------------


@pytest.mark.skipif(not _installed(), reason="recframe-example is not installed")
def test_recframe_run_uses_the_installed_plugin(tmp_path):
    recframe = Path(sys.executable).parent / "recframe"
    env = {**os.environ, "RECFRAME_OUTPUT_DIR": str(tmp_path), "WANDB_MODE": "offline"}
    out = subprocess.run(
        [str(recframe), "run", "model=example", "dataset=synthetic", "logger=none",
         "metrics.names=[ndcg,rprecision]"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    results = json.loads(next(tmp_path.rglob("results.json")).read_text())
    assert results["status"] == "ok" and results["config"]["model"]["name"] == "example"
    assert 0 < results["metrics"]["test"]["rprecision@10"] <= 1


@pytest.mark.slow
def test_wheel_ships_the_config(tmp_path):
    build = HERE / "build"
    shutil.rmtree(build, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(HERE), "--no-deps",
                    "--no-build-isolation", "-q", "-w", str(tmp_path)], check=True,
                   timeout=300)
    shutil.rmtree(build, ignore_errors=True)
    shutil.rmtree(HERE / "recframe_example.egg-info", ignore_errors=True)
    wheel = next(tmp_path.glob("recframe_example-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        entry_points = next(zf.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    assert {"recframe_example/plugin.py", "recframe_example/conf/__init__.py",
            "recframe_example/conf/model/example.yaml",
            "recframe_example/conf/preprocess/capped.yaml"} <= names
    assert "[recframe]" in entry_points and "example = recframe_example.plugin" in entry_points


"""fuxictr_compare: both frameworks get the same settings and data, and FuxiCTR's runner
trains and tests in its own environment."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "experiments" / "bench"
SUPPORT = BENCH / "fuxictr_support"
FUXICTR_PYTHON = ROOT / ".venv-fuxictr" / "bin" / "python"


def _load(name: str, path: Path):
    sys.path.insert(0, str(path.parent))
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(path.parent))


@pytest.fixture(scope="module")
def compare():
    return _load("fuxictr_compare", BENCH / "fuxictr_compare.py")


@pytest.fixture(scope="module")
def side():
    return _load("fuxictr_recframe_side", SUPPORT / "recframe_side.py")


def test_help_documents_size_flags():
    out = subprocess.run([sys.executable, str(BENCH / "fuxictr_compare.py"), "--help"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "--out" in out.stdout and "--small" in out.stdout


def test_both_sides_get_the_same_hyperparameters(compare):
    p = compare.Protocol("dcnv2", epochs=3, batch_size=512, lr=0.002, dim=8, hidden=(32, 16),
                         cross_layers=2, structure="stacked")
    rf = p.recframe_overrides(["dataset=ml-100k-ctr"], seed=7, multi_fields=["genres"])
    for expected in ("model=dcnv2", "model.batch_size=512", "model.lr=0.002",
                     "trainer.max_epochs=3", "model.embedding_dim=8", "model.hidden=[32,16]",
                     "model.cross_layers=2", "model.structure=stacked", "seed=7"):
        assert expected in rf
    assert not any(o.startswith("dataset.fields") for o in rf)  # pooling override: LR only
    fx = p.fuxictr_params()
    assert fx["stacked_dnn_hidden_units"] == [32, 16] and fx["num_cross_layers"] == 2
    assert fx["model_structure"] == "stacked"
    parallel = compare.Protocol("dcnv2", 1, 1, 0.1, hidden=(4,)).fuxictr_params()
    assert parallel["parallel_dnn_hidden_units"] == [4]
    assert compare.Protocol("deepfm", 1, 1, 0.1, hidden=(5, 6)).fuxictr_params()[
        "hidden_units"] == [5, 6]


def test_lr_sums_multi_valued_fields_as_fuxictr_does(compare):
    rf = compare.Protocol("lr", 1, 64, 0.01).recframe_overrides([], 0, ["genres", "tags"])
    assert "dataset.fields=[{name:genres,pooling:sum},{name:tags,pooling:sum}]" in rf
    assert not any(o.startswith("model.embedding_dim") for o in rf)  # LR has no such key


def test_learning_rates_parse_and_reject_unknown_models(compare):
    assert compare._lrs("lr=0.01,dcnv2=0.001") == {"lr": 0.01, "dcnv2": 0.001}
    with pytest.raises(SystemExit, match="MODEL=RATE"):
        compare._lrs("xgboost=0.1")


def _export(rows: int = 5) -> dict:
    counts = {p: {"rows": rows, "clicks": 2} for p in ("train", "valid", "test")}
    return {"fingerprint": "abc", "counts": counts,
            "recframe_fields": [{"name": "user_id", "kind": "categorical", "vocab_size": 9},
                                {"name": "age", "kind": "numeric", "vocab_size": 0}]}


def test_same_data_check_catches_every_mismatch(compare):
    export = _export()
    rf = {"fingerprint": "abc",
          "counts": {f"n_{p}_impressions": 5 for p in ("train", "valid", "test")}}
    fx = {"n_train": 5, "n_valid": 5, "n_test": 5, "features": {"user_id": {"vocab_size": 9}}}
    assert compare.check_same_data(export, rf, fx) == []
    assert "fingerprint" in compare.check_same_data(export, {**rf, "fingerprint": "x"}, fx)[0]
    assert "FuxiCTR test rows" in compare.check_same_data(export, rf, {**fx, "n_test": 4})[0]
    bad_vocab = {**fx, "features": {"user_id": {"vocab_size": 8}}}
    assert "vocab_size 8" in compare.check_same_data(export, rf, bad_vocab)[0]
    bad_rf = {**rf, "counts": {**rf["counts"], "n_valid_impressions": 6}}
    assert "recframe valid impressions 6" in compare.check_same_data(export, bad_rf, fx)[0]


def test_export_tokens_keep_codes_and_drop_padding(side):
    assert side._tokens(np.array([3, 0, 12])).tolist() == ["3", "", "12"]
    assert side._joined(np.array([[4, 7, 0], [0, 0, 0], [2, 0, 0]])) == ["4^7", "", "2"]


def _pair(compare):
    pair = compare.Pair(compare.Protocol("fm", 2, 100, 0.01))
    pair.recframe_runs.append({"timings": {"seconds_per_epoch": 0.5},
                               "metrics": {"test": {"auc": 0.8, "logloss": 0.5}}})
    epochs = [{"seconds": 3.0, "loader_wait_seconds": 2.0, "loader_iter_seconds": 1.0},
              {"seconds": 1.0, "loader_wait_seconds": 0.5, "loader_iter_seconds": 0.2}]
    for e in epochs:
        e.update(cpu_seconds_self=0.5, cpu_seconds_tree=0.9)
    pair.fuxictr_runs.append({"epochs": epochs, "test": {"auc": 0.7, "logloss": 0.6},
                              "preprocess_seconds": 9.0,
                              "breakdown": {"loader_alone_seconds": 1.5,
                                            "train_steps_alone_seconds": 0.2},
                              "profile": {"wall_seconds": 2.0,
                                          "tottime_by_package": {"builtins": 1.5, "ray": 0.1},
                                          "top_cumulative": [
                                              {"function": "ray:dataset.py:1(materialize)",
                                               "cumtime": 1.25}]}})
    return pair


def test_figures_ratio_is_recframe_rows_per_second_over_fuxictr(compare):
    fig = _pair(compare).figures(n_train=1000)
    assert fig["ctr_fm_epoch_speedup_vs_fuxictr"] == 4.0  # 2 s mean epoch / 0.5 s
    assert fig["ctr_fm_rows_per_second_recframe"] == 2000.0
    assert fig["ctr_fm_auc_fuxictr"] == 0.7 and fig["ctr_fm_logloss_recframe"] == 0.5
    assert fig["ctr_fm_fuxictr_loader_wait_share"] == 0.625


def test_markdown_reports_both_sides_and_the_breakdown(compare):
    pair = _pair(compare)
    export = {**_export(1000), "fields": [{"name": "user_id", "type": "categorical"}],
              "left_out": ["hist (sequence)"]}
    md = compare.markdown([pair], export, pair.figures(1000), {"installed_now": False})
    assert "| fm |" in md and "4.00x" in md and "0.7000" in md
    assert "hist (sequence)" in md and "builtins 1.50 s, ray 0.10 s" in md
    assert "`Dataset.materialize` took 1.25 s" in md
    assert "fm 0.4x" in md  # FuxiCTR's train_step alone (0.2 s) / recframe's epoch (0.5 s)


@pytest.mark.slow
@pytest.mark.skipif(not FUXICTR_PYTHON.exists(),
                    reason=".venv-fuxictr missing: python experiments/bench/fuxictr_compare.py "
                           "--small creates it")
@pytest.mark.parametrize("model", ["lr", "dcnv2"])
def test_fuxictr_runner_trains_and_tests_on_csv(tmp_path, model):
    rng = np.random.default_rng(0)
    data = tmp_path / "csv"
    data.mkdir()
    n = {"train": 600, "valid": 200, "test": 200}
    for part, rows in n.items():
        user = rng.integers(0, 20, rows)
        label = (user % 2 == 0).astype(int) ^ (rng.random(rows) < 0.1)
        lines = ["label,user_id,genres,year"] + [
            f"{y},u{u},g{u % 3}^g{u % 5},{1990 + u}" for y, u in zip(label, user, strict=True)]
        (data / f"{part}.csv").write_text("\n".join(lines) + "\n")
    spec = {"data_dir": str(data), "work_dir": str(tmp_path / "work"),
            "fields": [{"name": "user_id", "type": "categorical"},
                       {"name": "genres", "type": "sequence", "splitter": "^"},
                       {"name": "year", "type": "numeric"}],
            "model": model, "embedding_dim": 4, "batch_size": 64, "lr": 0.05, "epochs": 3,
            "seed": 0, "threads": 1, "breakdown": True,
            "model_params": {"parallel_dnn_hidden_units": [8], "num_cross_layers": 1}
            if model == "dcnv2" else {}}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([str(FUXICTR_PYTHON), str(SUPPORT / "run_fuxictr.py"),
                          str(tmp_path / "spec.json"), str(tmp_path / "result.json")],
                         capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())
    assert (result["n_train"], result["n_valid"], result["n_test"]) == (600, 200, 200)
    assert result["features"]["user_id"]["vocab_size"] == 22  # 20 users + PAD + OOV
    assert len(result["epochs"]) == 3
    assert all(e["batches"] == 10 and e["seconds"] > 0 for e in result["epochs"])
    assert result["test"]["auc"] > 0.75  # the label is the user's parity, 10% flipped
    assert result["breakdown"]["train_steps"] == 10

"""The report's summary: every arm that does not beat its protocol's baseline is flagged,
and runs on several datasets get a rank table (per protocol, mean rank)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recframe.report import build_report
from recframe.report.collect import ReportError

N_USERS = 200


def _run(root: Path, name: str, *, dataset: str, split: str, model: str, seed: int,
         per_user: np.ndarray) -> None:
    run_dir = root / name
    run_dir.mkdir(parents=True)
    results = {
        "status": "ok",
        "config": {"dataset": {"name": dataset}, "split": {"name": split, "seed": seed},
                   "model": {"name": model}, "seed": seed},
        "protocol": {"dataset": {"name": dataset, "raw_fingerprint": dataset},
                     "preprocess": [], "split": {"name": split, "seed": seed},
                     "data_fingerprint": f"{dataset}-{split}-{seed}",
                     "candidates": {"policy": "full"}},
        "metrics": {"valid": {}, "test": {"ndcg@10": float(per_user.mean())}},
        "timings": {"fit": 1.0},
        "memory": {},
    }
    (run_dir / "results.json").write_text(json.dumps(results))
    frame = pd.DataFrame({"user": np.arange(N_USERS), "user_id": np.arange(N_USERS).astype(str),
                          "ndcg@10": per_user})
    frame.to_parquet(run_dir / "per_user.parquet")


@pytest.fixture(scope="module")
def two_datasets(tmp_path_factory) -> Path:
    """Two datasets; on `b` the model `weak` equals Pop plus noise (not significant)."""
    root = tmp_path_factory.mktemp("summary")
    rng = np.random.default_rng(0)
    for seed in (0, 1, 2):
        base = rng.uniform(0, 0.2, N_USERS)
        for dataset, weak_gain in (("a", 0.1), ("b", 0.0)):
            _run(root, f"{dataset}-pop-{seed}", dataset=dataset, split="random", model="pop",
                 seed=seed, per_user=base)
            _run(root, f"{dataset}-strong-{seed}", dataset=dataset, split="random",
                 model="strong", seed=seed, per_user=base + 0.2 + rng.normal(0, 0.01, N_USERS))
            _run(root, f"{dataset}-weak-{seed}", dataset=dataset, split="random", model="weak",
                 seed=seed, per_user=base + weak_gain + rng.normal(0, 0.05, N_USERS))
    return root


def test_arms_that_do_not_beat_the_baseline_are_flagged(two_datasets, tmp_path):
    report = build_report([two_datasets], out_dir=tmp_path, baseline="pop", plots=False)
    md = (tmp_path / "report.md").read_text()
    assert "## Summary" in md and "3 of 4 arm(s) beat their protocol's baseline" in md
    flags = [w for w in report.warnings if w.startswith("**FLAG**")]
    assert len(flags) == 1 and "weak on b / random" in flags[0]
    assert "**FLAG** weak on b / random" in md


def test_ranks_across_datasets(two_datasets, tmp_path):
    build_report([two_datasets], out_dir=tmp_path, baseline="pop", plots=False)
    md = (tmp_path / "report.md").read_text()
    assert "### Ranks across datasets (ndcg@10)" in md
    lines = [ln for ln in md.splitlines() if ln.startswith("| strong ") or ln.startswith("| pop ")]
    assert lines[0].startswith("| strong | 1 (") and lines[0].endswith("| 1.00 |")
    assert lines[1].startswith("| pop | 3 (") and lines[1].endswith("| 2.50 |")


def test_no_summary_for_one_dataset_without_a_baseline(two_datasets, tmp_path):
    build_report([two_datasets / "a-pop-0", two_datasets / "a-weak-0"], out_dir=tmp_path,
                 plots=False)
    assert "## Summary" not in (tmp_path / "report.md").read_text()


def test_unknown_summary_metric_is_named(two_datasets, tmp_path):
    with pytest.raises(ReportError, match=r"--summary-metric 'ndcg@5'.*Did you mean 'ndcg@10'"):
        build_report([two_datasets], out_dir=tmp_path, baseline="pop", plots=False,
                     summary_metric="ndcg@5")


def test_a_failed_arm_is_flagged_too(two_datasets, tmp_path):
    import shutil

    root = tmp_path / "runs"
    shutil.copytree(two_datasets, root)
    bad = root / "b-content-0"
    bad.mkdir()
    (bad / "results.json").write_text(json.dumps({
        "status": "failed",
        "config": {"dataset": {"name": "b"}, "split": {"name": "random"},
                   "model": {"name": "content"}, "seed": 0},
        "error": {"type": "ConfigError", "message": "model 'content' needs item features"}}))
    report = build_report([root], out_dir=tmp_path / "out", baseline="pop", plots=False)
    flags = [w for w in report.warnings if w.startswith("**FLAG** content")]
    assert flags == ["**FLAG** content on b / random: the run failed (seed 0; ConfigError: "
                     "model 'content' needs item features)"]
    assert flags[0] in (tmp_path / "out" / "report.md").read_text()


def test_an_arm_never_run_on_a_dataset_is_flagged_and_fewer_seeds_noted(two_datasets, tmp_path):
    import shutil

    root = tmp_path / "runs"
    shutil.copytree(two_datasets, root)
    for seed in (0, 1, 2):
        shutil.rmtree(root / f"b-strong-{seed}")
    shutil.rmtree(root / "a-weak-2")
    report = build_report([root], out_dir=tmp_path / "out", baseline="pop", plots=False)
    flags = [w for w in report.warnings if "not run" in w]
    assert flags == ["**FLAG** strong on b / random: not run (it ran under random on a)"]
    md = (tmp_path / "out" / "report.md").read_text()
    assert flags[0] in md
    assert "- a / random: weak (2) of 3 seeds" in md


def test_arm_names_differing_only_by_dataset_keys_are_the_same_arm():
    from recframe.report.cross import _without_protocol_keys

    assert _without_protocol_keys("neumf item_text=none dataset.name=ml-100k") == \
        "neumf item_text=none"
    assert _without_protocol_keys("bpr split.name=random") == "bpr"


def test_summary_metric_defaults_to_one_with_paired_tests():
    from recframe.report import _summary_metric

    assert _summary_metric(["auc", "gauc", "logloss"], None, ("gauc", "logloss")) == "gauc"
    assert _summary_metric(["recall@10", "ndcg@10"], None, ("recall@10",)) == "ndcg@10"
    assert _summary_metric(["auc"], None, ()) == "auc"  # nothing tested: the first
    assert _summary_metric(["auc", "gauc"], "auc", ("gauc",)) == "auc"  # asked for


def test_a_flag_shows_the_paired_difference_when_the_means_disagree_with_it():
    from recframe.report.cross import BaselineCheck

    def check(mean, base, diff, higher=True):
        return BaselineCheck("p", "arm", "lr", mean, base, diff, 0.5, 0.5, False,
                             higher).line("gauc", 0.05)

    # an impression-weighted mean ahead, the per-user paired difference behind
    assert "(0.7356 vs 0.7266; per-user paired difference -0.0026, Holm p=0.5)" in check(
        0.7356, 0.7266, -0.0026)
    assert "per-user" not in check(0.7356, 0.7266, 0.004)  # both agree: nothing added
    # lower is better (logloss): mean_diff is oriented (> 0 better), the text is raw
    assert "per-user paired difference +0.0040" in check(0.5600, 0.5700, -0.004, False)
    assert "per-user" not in check(0.5600, 0.5700, 0.01, False)

"""One run end to end on synthetic data: results, per-user values, both training paths."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest

from recframe.runner import run_experiment
from recframe.train.task import NonFiniteLossError


@pytest.fixture(scope="module")
def pop_and_bpr(tmp_path_factory):
    from recframe.hydra_app import compose_config
    from tests.conftest import FAST

    out = {}
    for name in ("pop", "bpr"):
        cfg = compose_config([*FAST, f"model={name}", "trainer.max_epochs=30", "optim.lr=0.01"])
        run_dir = tmp_path_factory.mktemp(name)
        out[name] = (run_experiment(cfg, run_dir), run_dir)
    return out


def test_results_json_has_the_promised_record(pop_and_bpr):
    results, run_dir = pop_and_bpr["bpr"]
    on_disk = json.loads((run_dir / "results.json").read_text())
    assert on_disk["status"] == "ok"
    for part in ("valid", "test"):
        assert {"ndcg@10", "recall@20", "precision@10", "mrr@10", "hit@10", "map@20"} <= set(
            on_disk["metrics"][part])
    assert isinstance(on_disk["best_epoch"], int)
    timings = on_disk["timings"]
    assert {"load", "preprocess", "split", "encode", "fit", "evaluate", "test_loop"} <= set(timings)
    assert 0 < timings["test_loop"] <= timings["evaluate"]
    assert on_disk["memory"]["peak_rss_gib"] > 0
    assert "torch" in on_disk["versions"] and "git_sha" in on_disk
    proto = on_disk["protocol"]
    assert proto["candidates"] == {"policy": "full"}
    assert proto["split"]["name"] == "random"
    assert len(proto["data_fingerprint"]) == 16
    assert on_disk["config"]["model"]["name"] == "bpr"
    assert list((run_dir / "checkpoints").glob("best-epoch*.ckpt"))


def test_per_user_parquet_matches_reported_means(pop_and_bpr):
    results, run_dir = pop_and_bpr["bpr"]
    frame = pd.read_parquet(run_dir / "per_user.parquet")
    assert frame["user"].is_unique
    assert len(frame) == results["protocol"]["counts"]["n_users"] or len(frame) > 0
    per_user_keys = [c for c in frame.columns if "@" in c]
    assert {"ndcg@10", "recall@20"} <= set(per_user_keys)
    for key in per_user_keys:
        assert frame[key].mean() == pytest.approx(results["metrics"]["test"][key], abs=1e-6)


def test_bpr_beats_pop_on_planted_structure(pop_and_bpr):
    pop = pop_and_bpr["pop"][0]["metrics"]["test"]["ndcg@10"]
    bpr = pop_and_bpr["bpr"][0]["metrics"]["test"]["ndcg@10"]
    assert bpr > 1.2 * pop, (bpr, pop)


def test_pop_is_closed_form_and_same_data_as_bpr(pop_and_bpr):
    pop, bpr = pop_and_bpr["pop"][0], pop_and_bpr["bpr"][0]
    assert pop["epochs_run"] == 1 and pop["timings"]["closed_form_fit"] > 0
    assert pop["protocol"]["data_fingerprint"] == bpr["protocol"]["data_fingerprint"]


def test_eval_batch_size_does_not_change_metrics(compose, tmp_path):
    runs = []
    for bs in (7, 512):
        cfg = compose("model=bpr", "trainer.max_epochs=2", f"evaluation.batch_size={bs}")
        runs.append(run_experiment(cfg, tmp_path / str(bs)))
    a, b = (r["metrics"]["test"] for r in runs)
    assert a.keys() == b.keys()
    for key in a:
        assert a[key] == pytest.approx(b[key], abs=1e-7), key
    pa = pd.read_parquet(tmp_path / "7" / "per_user.parquet")
    pb = pd.read_parquet(tmp_path / "512" / "per_user.parquet")
    pd.testing.assert_frame_equal(pa, pb)


def test_same_seed_same_metrics_different_seed_differs(compose, tmp_path):
    r = [run_experiment(compose("model=bpr", "trainer.max_epochs=2", f"seed={s}"), tmp_path / n)
         for s, n in ((3, "a"), (3, "b"), (4, "c"))]
    assert r[0]["metrics"]["test"] == r[1]["metrics"]["test"]
    assert r[0]["metrics"]["test"] != r[2]["metrics"]["test"]


def test_failed_run_writes_failed_results(compose, tmp_path):
    cfg = compose("model=bpr", "optim.lr=1e30", "trainer.max_epochs=3", "model.init_std=1e10")
    with pytest.raises(NonFiniteLossError, match=r"epoch \d+, step \d+"):
        run_experiment(cfg, tmp_path)
    record = json.loads((tmp_path / "results.json").read_text())
    assert record["status"] == "failed"
    assert record["error"]["type"] == "NonFiniteLossError" and record["error"]["user_error"]


def test_bf16_mixed_precision_trains(compose, tmp_path):
    cfg = compose("model=bpr", "trainer.max_epochs=2", "trainer.precision=bf16-mixed")
    results = run_experiment(cfg, tmp_path)
    assert results["status"] == "ok"
    assert 0 < results["metrics"]["test"]["ndcg@10"] <= 1


def test_result_files_are_readable_like_any_written_file(tmp_path):
    """Atomic writes go through mkstemp (mode 0600); the final file gets the umask's mode."""
    import stat

    from recframe.results import write_json

    old = os.umask(0o022)
    try:
        write_json(tmp_path / "results.json", {"status": "ok"})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "results.json").stat().st_mode) == 0o644


def test_seconds_per_epoch_counts_training_not_validation(compose, tmp_path):
    cfg = compose("dataset.n_users=120", "dataset.n_items=60", "model=bpr",
                  "trainer.max_epochs=1", "logger=none",
                  "+callbacks.slow._target_=tests.hang_callback.SlowValidation",
                  "+callbacks.slow.seconds=3.0")
    timings = run_experiment(cfg, tmp_path)["timings"]
    assert timings["validation_seconds_per_epoch"] >= 3.0
    assert timings["seconds_per_epoch"] < 3.0  # a few tiny batches: well under, even on a busy box


def test_evaluating_a_sample_of_users(compose, tmp_path):
    """evaluation.test_users: a seeded sample of users, each with the value a full
    evaluation gives it; recorded in results.json; the same sample for another model."""
    from recframe.errors import ConfigError

    full = run_experiment(compose("model=pop"), tmp_path / "full")
    runs = {m: run_experiment(compose(f"model={m}", "evaluation.test_users=40",
                                      "trainer.max_epochs=1"), tmp_path / m)
            for m in ("pop", "bpr")}
    assert runs["pop"]["protocol"]["evaluated_users_sample"] == {"valid": None, "test": 40}
    assert full["protocol"]["evaluated_users_sample"] == {"valid": None, "test": None}
    everyone = pd.read_parquet(tmp_path / "full" / "per_user.parquet").set_index("user")
    sample = pd.read_parquet(tmp_path / "pop" / "per_user.parquet").set_index("user")
    assert len(sample) == 40 < len(everyone)
    pd.testing.assert_frame_equal(sample, everyone.loc[sample.index])
    other = pd.read_parquet(tmp_path / "bpr" / "per_user.parquet")
    assert sorted(other["user"]) == sorted(sample.index)
    assert runs["pop"]["metrics"]["test"]["ndcg@10"] == pytest.approx(
        sample["ndcg@10"].mean(), abs=1e-6)
    with pytest.raises(ConfigError, match="evaluation.valid_users must be a whole number"):
        run_experiment(compose("model=pop", "evaluation.valid_users=0"), tmp_path / "bad")

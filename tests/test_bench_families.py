"""Helpers of the families_multi benchmark scripts (experiments/bench/)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "experiments" / "bench"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sampled_config_switches_only_the_evaluation():
    module = _load("sampled_vs_full")
    config = {"seed": 3, "model": {"name": "sasrec"},
              "evaluation": {"protocol": "auto", "candidates": "full", "batch_size": 512}}
    out = module.sampled_config(config, 100, "uniform")
    assert out["evaluation"] == {"protocol": "ranking", "candidates": "sampled",
                                 "num_negatives": 100, "sampling": "uniform", "seed": 3,
                                 "batch_size": 512}
    assert out["model"] == config["model"] and config["evaluation"]["candidates"] == "full"


def test_the_published_reference_is_the_sasrec_papers():
    module = _load("sampled_vs_full")
    _, hr, ndcg = module.PUBLISHED[("amazon-games", "sasrec")]
    assert (hr, ndcg) == (0.7410, 0.5360)


def test_families_summary_reshapes_the_report_csv(tmp_path):
    import pandas as pd

    module = _load("families_summary")
    proto = "dataset toy (raw data abc), preprocess none, split leave_one_out n_test=1, full"
    pd.DataFrame([
        {"protocol": proto, "group": "pop", "model": "pop", "metric": "ndcg@10", "mean": 0.1,
         "std": 0.0, "n_seeds": 3, "baseline": "pop", "vs_baseline_p_t_holm": float("nan")},
        {"protocol": proto, "group": "sasrec", "model": "sasrec", "metric": "ndcg@10",
         "mean": 0.3, "std": 0.01, "n_seeds": 3, "baseline": "pop",
         "vs_baseline_p_t_holm": 0.0},
        {"protocol": proto, "group": "sasrec", "model": "sasrec", "metric": "recall@10",
         "mean": 0.5, "std": 0.01, "n_seeds": 3, "baseline": "pop",
         "vs_baseline_p_t_holm": 0.2},
    ]).to_csv(tmp_path / "report.csv", index=False)
    lines = module.summary_table(tmp_path / "report.csv").splitlines()
    assert lines[2] == "| toy | leave-one-out | sasrec | 0.3000 ± 0.0100 | 3 | < 1e-300 |"
    assert lines[3] == "| toy | leave-one-out | pop | 0.1000 ± 0.0000 | 3 | – |"
    assert len(lines) == 4


def test_families_summary_lists_arms_without_a_result(tmp_path):
    import pandas as pd

    module = _load("families_summary")
    rows = []
    for dataset, models in (("a", ("pop", "bpr", "ease")), ("b", ("pop", "bpr"))):
        proto = f"dataset {dataset} (raw data abc), preprocess none, split random, full"
        rows += [{"protocol": proto, "group": m, "model": m, "metric": "ndcg@10", "mean": 0.1,
                  "std": 0.0, "n_seeds": 1, "baseline": "pop", "vs_baseline_p_t_holm": 0.01}
                 for m in models]
    pd.DataFrame(rows).to_csv(tmp_path / "report.csv", index=False)
    lines = module.summary_table(tmp_path / "report.csv").splitlines()
    assert lines[-1] == "- **no result**: ease on b (random 80/10/10; it ran on other datasets)"
    assert sum("no result" in line for line in lines) == 1


def test_text_features_summary_pairs_each_mode_with_the_id_only_model(tmp_path):
    import json

    import numpy as np
    import pandas as pd
    from scipy import stats

    module = _load("text_features_summary")
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 0.3, 50)
    values = {"none": base, "add": base + 0.05 + rng.normal(0, 0.02, 50), "ref": base / 2,
              "click_none": base, "field": base - 0.01}
    for k, (mode, per_user) in enumerate(values.items()):
        run = tmp_path / str(k)
        run.mkdir()
        model = ({"name": "pop"} if mode == "ref" else
                 {"name": "deepfm", "item_text": mode.removeprefix("click_")}
                 if mode in ("click_none", "field") else {"name": "bpr", "item_text": mode})
        (run / "results.json").write_text(json.dumps({
            "status": "ok", "config": {"dataset": {"name": "d"}, "split": {"name": "random"},
                                       "model": model, "seed": 0},
            "metrics": {"test": {"ndcg@10": float(per_user.mean())}},
            "item_text": {"encode_seconds": 2.5} if mode == "add" else None,
            "timings": {"fit": 4.0}, "memory": {"peak_rss_gib": 1.0}}))
        pd.DataFrame({"user": range(50), "user_id": [str(u) for u in range(50)],
                      "ndcg@10": per_user}).to_parquet(run / "per_user.parquet")
    lines = module.summary([tmp_path]).splitlines()
    bpr = next(line for line in lines if "| bpr |" in line)
    p = stats.ttest_rel(values["add"], values["none"]).pvalue  # one comparison: Holm = raw
    diff = values["add"].mean() - base.mean()
    assert f"{values['add'].mean():.4f} ({diff:+.4f}, p {p:.0e}) ▲" in bpr
    assert "| – |" in bpr and "| 2.5 | 4 / 4 / – |" in bpr  # bpr has no field runs; costs
    assert "add (Δ, Holm p) | field (Δ, Holm p)" in lines[0] and "init" not in lines[0]
    deepfm = next(line for line in lines if "| deepfm |" in line)
    assert "(-0.0100, p" in deepfm and "▼" in deepfm  # a constant loss on every user
    assert any(line.startswith("| d | random | pop | 1 |") for line in lines)

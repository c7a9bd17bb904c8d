"""`recframe report` on CTR-protocol runs: own tables, RelaImpr against a baseline, paired
tests on per-user GAUC/LogLoss with NaN users dropped pairwise, reliability diagrams.

Run directories are fabricated (no training): impressions are simulated, their metrics
computed with the CTR metric plugin, and written the way the runner writes them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from recframe.api import PointwiseInput
from recframe.eval.ctr import reliability_table
from recframe.report import build_report
from recframe.report.collect import find_runs, group_runs, make_blocks
from recframe.report.ctr import pcoc, pooled_calibration, relaimpr
from recframe_metrics import ctr

SEEDS = (0, 1, 2)
#: model -> how strongly its logits follow the true click propensity
STRENGTH = {"lr": 0.6, "din": 1.2, "fm": 0.9}
CTR_LOWER = {"logloss", "ece"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
N_USERS, N_ROWS = 60, 900


def _impressions(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Users, true propensity logits and clicks of one seed's test part (same for every
    model of that seed: the runs share a split)."""
    g = np.random.default_rng(100 + seed)
    users = g.integers(0, N_USERS, N_ROWS)
    users[:4] = [55, 55, 56, 57]  # a few users with one or two impressions
    users[users >= 55] = g.choice([55, 56, 57], size=(users >= 55).sum())
    truth = g.normal(-0.8, 1.0, N_ROWS)
    clicks = (g.random(N_ROWS) < 1 / (1 + np.exp(-truth))).astype(np.float64)
    clicks[users == 56] = 0.0  # a user with no click: GAUC NaN for that user
    return users, truth, clicks


def _ctr_run(run_dir: Path, model: str, seed: int, *, lead_format: bool = False,
             calibration: bool = True, extra_config: dict | None = None) -> dict:
    users, truth, clicks = _impressions(seed)
    g = np.random.default_rng(hash((model, seed)) % 2**32)
    logits = np.round(STRENGTH[model] * truth + g.normal(0, 1.0, N_ROWS) - 0.2, 2)
    inp = PointwiseInput.build(torch.as_tensor(users), torch.as_tensor(logits),
                               torch.as_tensor(clicks))
    test, per_user = {}, {}
    for name in ("auc", "gauc", "logloss", "ece"):
        value, by_user = getattr(ctr, name)(inp)
        test[name] = float(value)
        if by_user is not None:
            per_user[name] = by_user.numpy()
    config = {
        "dataset": {"name": "ml-100k-ctr"},
        "split": {"name": "random", "ratios": [0.8, 0.1, 0.1], "seed": seed},
        "model": {"name": model, **(extra_config or {})},
        "evaluation": {"protocol": "ctr", "seed": seed},
        "metrics": {"names": ["auc", "gauc", "logloss", "ece"], "monitor": "auc"},
        "seed": seed,
        "output_root": str(run_dir.parent),
    }
    results = {
        "status": "ok",
        "config": config,
        "protocol": {
            "kind": "ctr",
            "dataset": {"name": "ml-100k-ctr", "raw_fingerprint": "abc"},
            "preprocess": [],
            "split": config["split"],
            "data_fingerprint": f"fp{seed}",
            "metrics": {n: {"description": n, "higher_is_better": n not in CTR_LOWER}
                        for n in test},
            "monitor": "val/auc",
        },
        "metrics": {"valid": dict(test), "test": test},
        "timings": {"fit": 2.0, "seconds_per_epoch": 1.0},
        "memory": {"peak_rss_gib": 0.5},
    }
    run_dir.mkdir(parents=True)
    (run_dir / "results.json").write_text(json.dumps(results))
    index = inp.user_index.numpy()
    frame = pd.DataFrame({"user": index, "user_id": [f"u{u}" for u in index],
                          "gauc": per_user["gauc"], "logloss": per_user["logloss"],
                          "n_impressions": np.bincount(inp.row_user.numpy()).astype(float)})
    frame.to_parquet(run_dir / "per_user.parquet")
    if calibration:
        table = (reliability_table(torch.sigmoid(inp.logits), inp.labels) if lead_format
                 else ctr.reliability_bins(inp))
        (run_dir / "calibration.json").write_text(json.dumps({"test": table}))
    return results


def _ranking_run(run_dir: Path, model: str, seed: int, ndcg: float) -> None:
    results = {
        "status": "ok",
        "config": {"dataset": {"name": "ml-100k"},
                   "split": {"name": "random", "ratios": [0.8, 0.1, 0.1], "seed": seed},
                   "model": {"name": model}, "seed": seed},
        "protocol": {"kind": "ranking", "dataset": {"name": "ml-100k", "raw_fingerprint": "r"},
                     "preprocess": [], "split": {"name": "random", "seed": seed},
                     "data_fingerprint": f"rk{seed}"},
        "metrics": {"valid": {}, "test": {"ndcg@10": ndcg + seed / 100,
                                          "auc@10": 0.8 + seed / 100}},
        "timings": {"fit": 1.0, "seconds_per_epoch": 0.5},
        "memory": {"peak_rss_gib": 0.5},
    }
    run_dir.mkdir(parents=True)
    (run_dir / "results.json").write_text(json.dumps(results))
    g = np.random.default_rng(seed + (7 if model == "bpr" else 0))
    pd.DataFrame({"user": np.arange(30), "user_id": [str(u) for u in range(30)],
                  "ndcg@10": g.random(30), "auc@10": g.random(30)}).to_parquet(
        run_dir / "per_user.parquet")


@pytest.fixture(scope="module")
def ctr_root(tmp_path_factory) -> Path:
    """3 CTR models x 3 seeds; lr's calibration.json is in the runner's format (NaN for
    empty bins, predicted/observed rates), the others in reliability_bins' (None, pcoc)."""
    root = tmp_path_factory.mktemp("ctr")
    for model in STRENGTH:
        for seed in SEEDS:
            _ctr_run(root / "runs" / f"{model}-{seed}", model, seed, lead_format=model == "lr")
    return root


@pytest.fixture(scope="module")
def built(ctr_root, tmp_path_factory):
    first = build_report([ctr_root / "runs"], out_dir=tmp_path_factory.mktemp("out1"))
    second = build_report([ctr_root / "runs"], out_dir=tmp_path_factory.mktemp("out2"))
    return first, second


def _raw(root: Path) -> dict[str, dict[int, tuple[dict, Path]]]:
    out: dict[str, dict[int, tuple[dict, Path]]] = {}
    for path in sorted(root.rglob("results.json")):
        res = json.loads(path.read_text())
        out.setdefault(res["config"]["model"]["name"], {})[res["config"]["seed"]] = (
            res, path.parent)
    return out


# -- tables and RelaImpr -------------------------------------------------------------------


def test_ctr_table_means_stds_and_best(built, ctr_root):
    report = built[0]
    table = pd.read_csv(report.out_dir / "report.csv")
    raw = _raw(ctr_root / "runs")
    assert set(table["metric"]) == {"auc", "gauc", "logloss", "ece"}
    assert table["k"].isna().all() and (table["block"] == 1).all()
    assert table["protocol"].str.contains("CTR protocol").all()
    for key in ("auc", "gauc", "logloss", "ece"):
        rows = table[table["metric"] == key].set_index("group")
        assert bool(rows["higher_is_better"].iloc[0]) == (key not in CTR_LOWER), key
        means = {}
        for model in STRENGTH:
            x = np.array([raw[model][s][0]["metrics"]["test"][key] for s in SEEDS])
            assert rows.loc[model, "mean"] == pytest.approx(x.mean(), rel=1e-12)
            assert rows.loc[model, "std"] == pytest.approx(x.std(ddof=1), rel=1e-9)
            means[model] = x.mean()
        best = (min if key in CTR_LOWER else max)(means, key=means.get)
        assert bool(rows.loc[best, "best"]) and rows["best"].sum() == 1, key


def test_relaimpr_against_the_default_lr_baseline(built, ctr_root):
    report = built[0]
    table = pd.read_csv(report.out_dir / "report.csv")
    raw = _raw(ctr_root / "runs")
    assert set(table["baseline"]) == {"lr"}
    for key in ("auc", "gauc"):
        base = np.mean([raw["lr"][s][0]["metrics"]["test"][key] for s in SEEDS])
        for model in STRENGTH:
            mean = np.mean([raw[model][s][0]["metrics"]["test"][key] for s in SEEDS])
            row = table[(table["group"] == model) & (table["metric"] == key)].iloc[0]
            assert row["relaimpr"] == pytest.approx(((mean - 0.5) / (base - 0.5) - 1) * 100)
    assert table.loc[table["group"] == "lr", "relaimpr"].dropna().eq(0).all()
    assert table.loc[table["metric"].isin(["logloss", "ece"]), "relaimpr"].isna().all()
    md = (report.out_dir / "report.md").read_text()
    assert "## Results (CTR protocol)" in md and "### CTR metrics" in md
    assert "| group | n | AUC ↑ | GAUC ↑ | LogLoss ↓ | ECE ↓ | RelaImpr AUC vs lr |" in md
    din = table[(table["group"] == "din") & (table["metric"] == "auc")].iloc[0]
    assert f"{din['relaimpr']:+.2f}%" in md
    assert "baseline=none (CTR protocols: lr)" in md
    assert "RelaImpr (Yan et al. 2014, as in DIN)" in md


def test_a_named_baseline_replaces_lr(ctr_root, tmp_path):
    report = build_report([ctr_root / "runs"], out_dir=tmp_path, baseline="din", plots=False)
    table = report.table
    auc = table[table["metric"] == "auc"].set_index("group")["mean"]
    expected = ((auc["lr"] - 0.5) / (auc["din"] - 0.5) - 1) * 100
    row = table[(table["group"] == "lr") & (table["metric"] == "auc")].iloc[0]
    assert row["relaimpr"] == pytest.approx(expected) and expected < 0
    assert set(table["baseline"]) == {"din"}
    assert "RelaImpr AUC vs din" in (tmp_path / "report.md").read_text()


def test_no_lr_and_no_baseline_means_no_relaimpr(ctr_root, tmp_path):
    dirs = [ctr_root / "runs" / f"{m}-{s}" for m in ("din", "fm") for s in SEEDS]
    report = build_report(dirs, out_dir=tmp_path, plots=False)
    assert report.table["relaimpr"].isna().all() and (report.table["baseline"] == "").all()
    md = (tmp_path / "report.md").read_text()
    assert "RelaImpr AUC" not in md and "baseline=none," in md
    assert "Paired tests against the baseline" not in md


def test_two_lr_groups_give_no_default_baseline(tmp_path):
    for seed in (0, 1):
        _ctr_run(tmp_path / "runs" / f"a{seed}", "lr", seed, extra_config={"l2": 0.0})
        _ctr_run(tmp_path / "runs" / f"b{seed}", "lr", seed, extra_config={"l2": 0.1})
    report = build_report([tmp_path / "runs"], out_dir=tmp_path / "out", plots=False)
    assert [g.label for g in report.groups] == ["lr l2=0.0", "lr l2=0.1"]
    assert report.table["relaimpr"].isna().all()


def test_relaimpr_hand_worked():
    assert relaimpr(0.75, 0.70) == pytest.approx(25.0)  # 0.25 / 0.20 - 1
    assert relaimpr(0.70, 0.75) == pytest.approx(-20.0)
    assert relaimpr(0.70, 0.70) == 0.0
    assert math.isnan(relaimpr(0.70, 0.5)) and math.isnan(relaimpr(0.7, 0.45))
    assert math.isnan(relaimpr(math.nan, 0.7))


# -- paired tests ----------------------------------------------------------------------------


def _paired(raw, a: str, b: str, key: str) -> tuple[np.ndarray, np.ndarray]:
    parts = []
    for seed in SEEDS:
        fa = pd.read_parquet(raw[a][seed][1] / "per_user.parquet")
        fb = pd.read_parquet(raw[b][seed][1] / "per_user.parquet")
        parts.append(fa[["user_id", key]].merge(fb[["user_id", key]], on="user_id").dropna())
    both = pd.concat(parts).groupby("user_id").mean()
    return both[f"{key}_x"].to_numpy(), both[f"{key}_y"].to_numpy()


def test_paired_tests_on_per_user_gauc_and_logloss_drop_nan_users(built, ctr_root):
    table = built[0].table
    raw = _raw(ctr_root / "runs")
    frame = pd.read_parquet(raw["lr"][0][1] / "per_user.parquet")
    assert frame["gauc"].isna().sum() >= 1  # single-class users exist in the data
    nan_user = frame.loc[frame["gauc"].isna(), "user_id"].iloc[0]
    tested = table[table["vs_baseline_n_users"] > 0]
    assert set(tested["metric"]) == {"gauc", "logloss"}  # auc, ece: global, no test
    assert set(tested["group"]) == {"din", "fm"}
    for _, row in tested.iterrows():
        a, b = _paired(raw, row["group"], "lr", row["metric"])
        assert not np.isnan(a).any() and not np.isnan(b).any()
        assert row["vs_baseline_n_users"] == len(a)
        assert row["vs_baseline_mean_diff"] == pytest.approx((a - b).mean(), abs=1e-12)
        assert row["vs_baseline_p_t"] == pytest.approx(stats.ttest_rel(a, b).pvalue,
                                                       rel=1e-9, abs=1e-300)
        p_w = stats.wilcoxon(np.round(a - b, 12), zero_method="pratt").pvalue
        assert row["vs_baseline_p_wilcoxon"] == pytest.approx(p_w, rel=1e-9, abs=1e-300)
    gauc_users = tested.loc[tested["metric"] == "gauc", "vs_baseline_n_users"].iloc[0]
    logloss_users = tested.loc[tested["metric"] == "logloss", "vs_baseline_n_users"].iloc[0]
    assert gauc_users < logloss_users  # users with one class in every seed are dropped
    assert all(nan_user in pd.read_parquet(raw["lr"][s][1] / "per_user.parquet")["user_id"]
               .to_numpy() for s in SEEDS)
    # GAUC: a better model; the test finds it against lr (strength 1.2 vs 0.6)
    din = tested[(tested["group"] == "din") & (tested["metric"] == "gauc")].iloc[0]
    assert din["vs_baseline_mean_diff"] > 0 and din["vs_baseline_direction"] == "better"
    md = (built[0].out_dir / "report.md").read_text()
    assert "Paired tests against the baseline lr" in md and "| gauc | din | lr |" in md


# -- calibration -------------------------------------------------------------------------------


def test_pooled_calibration_sums_counts_and_weights_means(built, ctr_root):
    groups = {g.label: g for g in built[0].groups}
    for model in ("lr", "din"):  # the runner's format and reliability_bins' format
        pooled = pooled_calibration(groups[model])
        assert pooled is not None and pooled["n_runs"] == 3
        cals = [json.loads((ctr_root / "runs" / f"{model}-{s}" / "calibration.json")
                           .read_text())["test"] for s in SEEDS]
        counts = np.array([c["count"] for c in cals], dtype=float)
        np.testing.assert_array_equal(pooled["count"], counts.sum(axis=0))
        assert pooled["count"].sum() == N_ROWS * len(SEEDS)
        for b in range(len(pooled["count"])):
            if counts[:, b].sum() == 0:
                assert math.isnan(pooled["mean_predicted"][b])
                continue
            num = sum(c["count"][b] * c["observed"][b] for c in cals if c["count"][b])
            assert pooled["observed"][b] == pytest.approx(num / counts[:, b].sum())
        assert pooled["pcoc"] == pytest.approx(np.mean([pcoc(c) for c in cals]))


def test_pcoc_reads_either_calibration_format():
    users, truth, clicks = _impressions(0)
    inp = PointwiseInput.build(torch.as_tensor(users), torch.as_tensor(truth),
                               torch.as_tensor(clicks))
    expected = ctr.pcoc(inp).item()
    assert pcoc(ctr.reliability_bins(inp)) == pytest.approx(expected)
    assert pcoc(reliability_table(torch.sigmoid(inp.logits), inp.labels)) == pytest.approx(
        expected)
    table = ctr.reliability_bins(inp)  # neither ratio stored: from the bins
    del table["pcoc"]
    assert pcoc(table) == pytest.approx(expected)


def test_reliability_plot_is_drawn(built):
    from matplotlib.image import imread

    out = built[0].out_dir
    assert sorted(p.name for p in out.glob("*.png")) == ["metrics_bars.png", "reliability.png",
                                                         "training_curves.png"] or \
        sorted(p.name for p in out.glob("*.png")) == ["metrics_bars.png", "reliability.png"]
    data = (out / "reliability.png").read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 5_000
    img = imread(out / "reliability.png")
    assert img.shape[0] > 200 and img[..., :3].std() > 0.01
    md = (out / "report.md").read_text()
    assert "![reliability diagrams (calibration)](reliability.png)" in md
    html = (out / "report.html").read_text()
    assert "reliability.png" in html and "PCOC (1 = calibrated)" in md


def test_no_calibration_files_means_no_reliability_plot(tmp_path):
    for seed in (0, 1):
        _ctr_run(tmp_path / "runs" / f"lr-{seed}", "lr", seed, calibration=False)
    report = build_report([tmp_path / "runs"], out_dir=tmp_path / "out")
    assert not (tmp_path / "out" / "reliability.png").exists()
    assert "PCOC" not in (tmp_path / "out" / "report.md").read_text()
    assert len(report.groups) == 1


def test_two_builds_are_byte_identical(built):
    a, b = (r.out_dir for r in built)
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir()) and "reliability.png" in names
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


# -- CTR and ranking runs in one report ------------------------------------------------------


def test_ctr_and_ranking_runs_get_separate_tables(ctr_root, tmp_path):
    for model, ndcg in (("pop", 0.1), ("bpr", 0.2)):
        for seed in (0, 1):
            _ranking_run(tmp_path / "ranking" / f"{model}-{seed}", model, seed, ndcg)
    mixed = build_report([tmp_path / "ranking", ctr_root / "runs"], out_dir=tmp_path / "mixed",
                         baseline="pop")
    alone = build_report([tmp_path / "ranking"], out_dir=tmp_path / "alone", baseline="pop")
    runs, _ = find_runs([tmp_path / "ranking", ctr_root / "runs"])
    blocks, warnings = make_blocks(group_runs(runs)[0])
    assert [b.ctr for b in blocks] == [False, True]  # ranking first
    assert any("NOT all comparable" in w and "kind" in w for w in warnings)
    table = mixed.table
    ranking, ctr_rows = table[table["block"] == 1], table[table["block"] == 2]
    assert set(ranking["metric"]) == {"ndcg@10", "auc@10"}
    assert set(ctr_rows["metric"]) == {"auc", "gauc", "logloss", "ece"}
    assert set(ranking["group"]) == {"pop", "bpr"} and set(ctr_rows["group"]) == set(STRENGTH)
    # the ranking block is exactly the ranking-only report (CTR rows never leak into it)
    cols = [c for c in alone.table.columns if c not in ("block", "protocol")]
    pd.testing.assert_frame_equal(ranking[cols].reset_index(drop=True),
                                  alone.table[cols].reset_index(drop=True), check_dtype=False)
    assert "relaimpr" not in alone.table.columns
    assert ranking["relaimpr"].isna().all()
    # --baseline pop names a ranking model: the CTR protocol says it was not run there
    assert (ctr_rows["baseline"] == "").all() and ctr_rows["relaimpr"].isna().all()
    md = (tmp_path / "mixed" / "report.md").read_text()
    assert "## Protocol 1\n" in md and "## Protocol 2 (CTR protocol)" in md
    assert "The baseline pop was not run under this protocol." in md
    assert (tmp_path / "mixed" / "protocol2_reliability.png").exists()
    assert not (tmp_path / "mixed" / "protocol1_reliability.png").exists()
    # a ranking-only report has no CTR notes
    assert "RelaImpr" not in (tmp_path / "alone" / "report.md").read_text()


def test_cli_baseline_and_metric_selection(ctr_root, tmp_path):
    from recframe.report.cli import report_command

    rc = report_command([str(ctr_root / "runs"), "--out", str(tmp_path), "--baseline", "fm",
                         "--metrics", "gauc,logloss", "--no-plots"])
    assert rc == 0
    out = pd.read_csv(tmp_path / "report.csv")
    assert list(dict.fromkeys(out["metric"])) == ["gauc", "logloss"]
    assert set(out["baseline"]) == {"fm"} and not list(tmp_path.glob("*.png"))
    md = (tmp_path / "report.md").read_text()
    assert "| group | n | GAUC ↑ | LogLoss ↓ | RelaImpr GAUC vs fm |" in md

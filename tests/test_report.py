"""`recframe report`: grouping over seeds, statistics checked against an independent
recomputation from the raw run files, failed runs, plots, determinism."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from recframe.errors import ConfigError
from recframe.report import ReportError, build_report, holm, paired_cohens_d, paired_test
from recframe.report.collect import canonical, find_runs, group_runs, label_groups
from recframe.report.stats import summarize

TINY = [
    "dataset=synthetic",
    "dataset.n_users=150",
    "dataset.n_items=80",
    "preprocess=none",
    "trainer.max_epochs=2",
    "logger=csv",
    "metrics=beyond_accuracy",
    "metrics.ks=[5,10]",
]
MODELS, SEEDS = ("pop", "bpr"), (0, 1)
LOWER = {"gini", "avg_popularity", "logloss"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory) -> Path:
    """2 models x 2 seeds of real runs on tiny synthetic data, plus one failed run."""
    from recframe.hydra_app import compose_config
    from recframe.runner import run_experiment

    root = tmp_path_factory.mktemp("runs")
    for model in MODELS:
        for seed in SEEDS:
            cfg = compose_config([*TINY, f"model={model}", f"seed={seed}"])
            run_experiment(cfg, root / "sweep" / f"{model}-{seed}")
    with pytest.raises(ConfigError, match="embedding_dim"):
        run_experiment(compose_config([*TINY, "model=bpr", "model.embedding_dim=-1"]),
                       root / "sweep" / "broken")
    return root


@pytest.fixture(scope="module")
def built(runs_root, tmp_path_factory):
    """The report built twice: to the default <dir>/report, and to another directory."""
    first = build_report([runs_root], baseline="pop")
    second = build_report([runs_root], out_dir=tmp_path_factory.mktemp("again"),
                          baseline="pop")
    return first, second


@pytest.fixture(scope="module")
def table(built) -> pd.DataFrame:
    return pd.read_csv(built[0].out_dir / "report.csv")


def _raw_runs(root: Path) -> dict[str, dict[int, tuple[dict, Path]]]:
    """model -> seed -> (results.json, run dir), read straight from disk."""
    out: dict[str, dict[int, tuple[dict, Path]]] = {}
    for path in sorted(root.rglob("results.json")):
        res = json.loads(path.read_text())
        if res["status"] == "ok":
            out.setdefault(res["config"]["model"]["name"], {})[res["config"]["seed"]] = (
                res, path.parent)
    return out


def _naive_holm(p: list[float]) -> list[float]:
    """Holm by its definition: adj(i) = max over j ranked <= i of min(1, (m-rank_j+1) p_j)."""
    m = len(p)
    ranked = sorted(range(m), key=lambda i: p[i])
    rank = {i: r + 1 for r, i in enumerate(ranked)}
    return [max(min(1.0, (m - rank[j] + 1) * p[j]) for j in range(m) if rank[j] <= rank[i])
            for i in range(m)]


_PARQUETS: dict[Path, pd.DataFrame] = {}


def _per_user(run_dir: Path) -> pd.DataFrame:
    if run_dir not in _PARQUETS:
        _PARQUETS[run_dir] = pd.read_parquet(run_dir / "per_user.parquet")
    return _PARQUETS[run_dir]


def _paired(raw, model_a: str, model_b: str, key: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-user values of a and b: joined on user_id per seed, averaged over seeds."""
    parts = []
    for seed in SEEDS:
        fa = _per_user(raw[model_a][seed][1])
        fb = _per_user(raw[model_b][seed][1])
        assert raw[model_a][seed][0]["protocol"]["data_fingerprint"] == \
            raw[model_b][seed][0]["protocol"]["data_fingerprint"]
        parts.append(fa[["user_id", key]].merge(fb[["user_id", key]], on="user_id"))
    both = pd.concat(parts).groupby("user_id").mean()
    return both[f"{key}_x"].to_numpy(), both[f"{key}_y"].to_numpy()


# -- the report on real runs --------------------------------------------------------------

def test_writes_every_file_to_the_default_dir(built, runs_root):
    report = built[0]
    assert report.out_dir == runs_root / "report"
    names = sorted(p.name for p in report.out_dir.iterdir())
    assert names == ["metrics_at_k.png", "metrics_bars.png", "report.csv", "report.html",
                     "report.md", "training_curves.png"]
    assert not [p for p in report.out_dir.iterdir() if p.name.startswith(".")]  # no temp files
    html = (report.out_dir / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and html.count("data:image/png;base64,") == 3


def test_grouping_ignores_seed(built, table):
    report = built[0]
    assert [g.label for g in report.groups] == ["bpr", "pop"]
    assert all(g.seeds == [0, 1] for g in report.groups)
    assert set(table["group"]) == {"bpr", "pop"}
    assert (table["n_seeds"] == 2).all() and (table["seeds"] == "0;1").all()


def test_means_stds_cis_and_best_match_the_raw_results(runs_root, table):
    raw = _raw_runs(runs_root)
    keys = list(raw["bpr"][0][0]["metrics"]["test"])
    assert set(table["metric"]) == set(keys)
    assert {"gini@5", "coverage@10", "novelty@5", "avg_popularity@10"} <= set(keys)
    for key in keys:
        means = {}
        for model in MODELS:
            x = np.array([raw[model][s][0]["metrics"]["test"][key] for s in SEEDS])
            row = table[(table["group"] == model) & (table["metric"] == key)].iloc[0]
            half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
            assert row["mean"] == pytest.approx(x.mean(), rel=1e-12, abs=1e-15)
            assert row["std"] == pytest.approx(x.std(ddof=1), rel=1e-9, abs=1e-15)
            assert row["ci_low"] == pytest.approx(x.mean() - half, rel=1e-9, abs=1e-12)
            assert row["ci_high"] == pytest.approx(x.mean() + half, rel=1e-9, abs=1e-12)
            means[model] = x.mean()
        lower = key.split("@")[0] in LOWER
        best = "bpr"  # groups in label order; a tie keeps the first
        if (means["pop"] < means[best]) if lower else (means["pop"] > means[best]):
            best = "pop"
        rows = table[table["metric"] == key].set_index("group")
        assert bool(rows.loc[best, "best"]) and not bool(rows.drop(index=best)["best"].any()), key
        assert rows["higher_is_better"].iloc[0] == (not lower)


def test_paired_tests_and_holm_match_an_independent_recomputation(runs_root, table):
    raw = _raw_runs(runs_root)
    per_user = set(pd.read_parquet(raw["bpr"][0][1] / "per_user.parquet").columns) - {
        "user_id", "user"}
    for prefix in ("vs_best", "vs_baseline"):
        rows = table[table[f"{prefix}_n_users"] > 0]
        assert set(rows["metric"]) == per_user  # global metrics (coverage, gini): no test
        expected_t, expected_w = [], []
        for _, row in rows.iterrows():
            ref = row["best_group"] if prefix == "vs_best" else "pop"
            assert row["group"] != ref
            a, b = _paired(raw, row["group"], ref, row["metric"])
            diff = a - b
            assert row[f"{prefix}_n_users"] == len(a)
            assert row[f"{prefix}_mean_diff"] == pytest.approx(diff.mean(), abs=1e-12)
            half = stats.t.ppf(0.975, len(a) - 1) * diff.std(ddof=1) / math.sqrt(len(a))
            assert row[f"{prefix}_diff_ci_low"] == pytest.approx(diff.mean() - half, abs=1e-12)
            assert row[f"{prefix}_diff_ci_high"] == pytest.approx(diff.mean() + half, abs=1e-12)
            assert row[f"{prefix}_cohens_d"] == pytest.approx(diff.mean() / diff.std(ddof=1),
                                                              rel=1e-9)
            p_t = stats.ttest_rel(a, b).pvalue
            p_w = stats.wilcoxon(np.round(diff, 12), zero_method="pratt").pvalue
            assert row[f"{prefix}_p_t"] == pytest.approx(p_t, rel=1e-9, abs=1e-300)
            assert row[f"{prefix}_p_wilcoxon"] == pytest.approx(p_w, rel=1e-9, abs=1e-300)
            expected_t.append(p_t)
            expected_w.append(p_w)
        np.testing.assert_allclose(rows[f"{prefix}_p_t_holm"], _naive_holm(expected_t),
                                   rtol=1e-9, atol=1e-300)
        np.testing.assert_allclose(rows[f"{prefix}_p_wilcoxon_holm"], _naive_holm(expected_w),
                                   rtol=1e-9, atol=1e-300)
        holm_t = rows[f"{prefix}_p_t_holm"].to_numpy()
        sig = holm_t < 0.05
        if prefix == "vs_best":  # marked only when significantly worse than the best
            worse = np.where(rows["higher_is_better"], rows["vs_best_mean_diff"] < 0,
                             rows["vs_best_mean_diff"] > 0)
            sig = sig & worse
        assert (rows[f"{prefix}_sig_t"].to_numpy() == sig).all()
    # The best of a column and the baseline itself are never tested against themselves.
    assert (table.loc[table["best"], "vs_best_n_users"] == 0).all()
    assert (table.loc[table["group"] == "pop", "vs_baseline_n_users"] == 0).all()


def test_baseline_comparison_and_marks_appear_in_markdown(built, table):
    md = (built[0].out_dir / "report.md").read_text()
    assert "Paired tests against the baseline pop" in md
    assert "| ndcg@10 | bpr | pop |" in md
    assert "Paired tests against the best" in md and "**" in md
    assert set(table["baseline"]) == {"pop"}
    marked = table[table["vs_best_sig_t"]]
    for _, row in marked.iterrows():  # a significant row carries its dagger in the table
        assert f"{row['mean']:.4f} ± {row['std']:.4f}" in md
    assert ("†" in md) == (len(marked) > 0)


def test_failed_run_is_listed_with_its_error(built):
    report = built[0]
    assert [r.run_dir.name for r in report.failed] == ["broken"]
    md = (report.out_dir / "report.md").read_text()
    section = md.split("## Failed runs", 1)[1]
    assert "broken" in section and "ConfigError" in section
    assert "model.embedding_dim must be a positive integer, got -1" in section
    assert "1 failed" in md
    html = (report.out_dir / "report.html").read_text()
    assert "Failed runs" in html and "ConfigError" in html


def test_only_failed_runs_still_give_a_report(runs_root, tmp_path):
    report = build_report([runs_root / "sweep" / "broken"], out_dir=tmp_path, baseline="pop")
    assert not report.groups and len(report.failed) == 1
    assert "ConfigError" in (tmp_path / "report.md").read_text()
    header = (tmp_path / "report.csv").read_text().splitlines()
    assert len(header) == 1 and header[0].startswith("block,protocol,group,model")


def test_pngs_are_real_images(built):
    from matplotlib.image import imread

    pngs = sorted(built[0].out_dir.glob("*.png"))
    assert len(pngs) == 3
    for png in pngs:
        data = png.read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 5_000, png
        img = imread(png)
        assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
        assert img[..., :3].std() > 0.01  # not a blank canvas


def test_two_builds_are_byte_identical(built):
    a, b = (r.out_dir for r in built)
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_metric_selection_and_cli(runs_root, tmp_path):
    from recframe.report.cli import report_command

    rc = report_command([str(runs_root / "sweep"), "--out", str(tmp_path / "cli"),
                         "--baseline", "pop", "--metrics", "ndcg@10,gini@10", "--no-plots"])
    assert rc == 0
    out = pd.read_csv(tmp_path / "cli" / "report.csv")
    assert list(dict.fromkeys(out["metric"])) == ["ndcg@10", "gini@10"]
    assert not list((tmp_path / "cli").glob("*.png"))
    # One metric in the family now: Holm leaves a single p-value unchanged.
    row = out[out["vs_baseline_n_users"] > 0].iloc[0]
    assert row["vs_baseline_p_t_holm"] == pytest.approx(row["vs_baseline_p_t"])


def test_bad_options_are_clear_errors(runs_root, tmp_path):
    with pytest.raises(ReportError, match="Did you mean 'ndcg@10'"):
        build_report([runs_root / "sweep"], out_dir=tmp_path, metrics="ndgc@10", plots=False)
    with pytest.raises(ReportError, match="matches no group"):
        build_report([runs_root / "sweep"], out_dir=tmp_path, baseline="ease", plots=False)
    with pytest.raises(ReportError, match="no results.json"):
        build_report([tmp_path], plots=False)


# -- grouping, labels, protocols on hand-made records -------------------------------------

def _fake(run_dir: Path, seed: int, lr: float = 0.001, model: str = "bpr",
          candidates: str = "full", ndcg: float = 0.1) -> None:
    cand = {"policy": "full"} if candidates == "full" else {
        "policy": "sampled", "num_negatives": 100, "sampling": "uniform", "seed": seed,
        "note": "NOT comparable"}
    results = {
        "status": "ok",
        "config": {
            "dataset": {"name": "synthetic", "seed": 0, "n_users": 50},
            "split": {"name": "random", "ratios": [0.8, 0.1, 0.1], "seed": seed},
            "model": {"name": model, "embedding_dim": 8},
            "optim": {"lr": lr},
            "evaluation": {"candidates": candidates, "batch_size": 512, "seed": seed},
            "logger": {"csv": {"save_dir": str(run_dir)}},
            "seed": seed,
            "output_root": str(run_dir.parent),
        },
        "protocol": {
            "dataset": {"name": "synthetic", "raw_fingerprint": "abc"},
            "preprocess": [],
            "split": {"name": "random", "ratios": [0.8, 0.1, 0.1], "seed": seed},
            "data_fingerprint": f"fp{seed}",
            "candidates": cand,
        },
        "metrics": {"valid": {}, "test": {"ndcg@10": ndcg + seed / 100}},
        "timings": {"fit": 1.0, "seconds_per_epoch": 0.5},
        "memory": {"peak_rss_gib": 0.5},
    }
    run_dir.mkdir(parents=True)
    (run_dir / "results.json").write_text(json.dumps(results))


def test_group_runs_drops_seed_keys_and_labels_by_what_differs(tmp_path):
    for seed in (0, 1, 2):
        _fake(tmp_path / f"a{seed}", seed, lr=0.001)
        _fake(tmp_path / f"b{seed}", seed, lr=0.01)
    _fake(tmp_path / "p0", 0, model="pop")
    runs, skipped = find_runs([tmp_path])
    assert len(runs) == 7 and not skipped
    groups, warnings = group_runs(runs)
    assert not warnings
    assert [g.label for g in groups] == ["bpr lr=0.001", "bpr lr=0.01", "pop"]
    assert [len(g.runs) for g in groups] == [3, 3, 1]
    # dataset.seed is a fixed 0 next to seed=0,1,2: it stays part of the configuration
    assert "dataset.seed" in groups[0].flat and "split.seed" not in groups[0].flat


def test_label_groups_is_minimal_and_model_first():
    flats = [{k: canonical(v) for k, v in f.items()} for f in (
        {"model.name": "bpr", "model.dim": 64, "optim.lr": 0.01, "trainer.max_epochs": 5},
        {"model.name": "bpr", "model.dim": 64, "optim.lr": 0.001, "trainer.max_epochs": 5},
        {"model.name": "bpr", "model.dim": 32, "optim.lr": 0.001, "trainer.max_epochs": 5},
        {"model.name": "pop", "optim.lr": 0.001, "trainer.max_epochs": 5},
    )]
    labels = label_groups(flats)
    assert labels[3] == "pop"
    assert len(set(labels)) == 4 and all(lab.startswith("bpr ") for lab in labels[:3])
    assert all("max_epochs" not in lab for lab in labels)


def test_sampled_and_incomparable_protocols_are_flagged(tmp_path):
    _fake(tmp_path / "full", 0, ndcg=0.1)
    _fake(tmp_path / "sampled", 0, candidates="sampled", ndcg=0.5)
    report = build_report([tmp_path], plots=False)
    md = (report.out_dir / "report.md").read_text()
    assert "SAMPLED (not comparable to full ranking)" in md
    assert "NOT all comparable" in md and "## Protocol 1" in md and "## Protocol 2" in md
    # one seed everywhere: said once, not as "(n=1)" in every cell
    assert "(n=1)" not in md and "One seed per configuration" in md
    table = report.table
    assert table["best"].all()  # each protocol has its own best: nothing crosses protocols
    assert table.loc[table["sampled"], "group"].str.endswith("[SAMPLED]").all()


def test_n1_marks_only_single_seed_cells_among_several_seeds(tmp_path):
    for seed in (0, 1):
        _fake(tmp_path / f"b{seed}", seed)
    _fake(tmp_path / "p0", 0, model="pop")
    md = (build_report([tmp_path], plots=False).out_dir / "report.md").read_text()
    assert "| pop | 1 | 0.1000 (n=1) |" in md  # the metric table's row of the one-seed group
    bpr = [line for line in md.splitlines() if line.startswith("| bpr | 2 | ")]
    assert bpr and "±" in bpr[0] and "(n=1)" not in bpr[0]


def test_plot_legends_sit_outside_every_panel(tmp_path, monkeypatch):
    """Long group labels: the legend is right of the panels, inside the figure, and
    covers no panel (before, it was pinned to the figure's corner over the last one)."""
    from recframe.report import plots

    figures = []
    save = plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path: (figures.append(fig), save(fig, path)))
    long_name = "a_model_with_a_long_name"
    for seed in (0, 1):
        for i in range(6):
            _fake(tmp_path / f"m{i}_{seed}", seed, model=f"{long_name}_{i}", ndcg=0.1 + i / 50)
    build_report([tmp_path], plots=True)
    assert figures
    for fig in figures:
        renderer = fig.canvas.get_renderer()
        legends = fig.legends
        assert len(legends) == 1
        box = legends[0].get_window_extent(renderer)
        frame = fig.bbox
        assert box.x0 >= frame.x0 and box.x1 <= frame.x1 + 1 and box.y0 >= frame.y0
        for ax in fig.axes:
            if ax.get_visible():
                assert not box.overlaps(ax.get_window_extent(renderer)), fig.texts


# -- hand-worked statistics ---------------------------------------------------------------

def test_holm_hand_worked():
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> max(0.06, 0.04)=0.06
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(holm([0.5, 0.2]), [0.5, 0.4])
    np.testing.assert_allclose(holm([0.9, 0.8, 0.7]), [1.0, 1.0, 1.0])  # capped at 1
    out = holm([0.01, float("nan"), 0.02])  # NaN (no test) does not count in m
    assert math.isnan(out[1]) and out[0] == pytest.approx(0.02) and out[2] == pytest.approx(0.02)


def test_paired_cohens_d_hand_worked():
    # diffs 1, 2, 3: mean 2, sample std 1 -> d = 2
    assert paired_cohens_d([2, 4, 6], [1, 2, 3]) == pytest.approx(2.0)
    # diffs 2, 3, 4, 5: mean 3.5, std sqrt(5/3) -> d = 3.5 / 1.29099 = 2.7111
    assert paired_cohens_d([3, 5, 7, 9], [1, 2, 3, 4]) == pytest.approx(3.5 / math.sqrt(5 / 3))
    assert math.isnan(paired_cohens_d([1, 2], [0, 1]))  # no spread: undefined
    res = paired_test([2, 4, 6], [1, 2, 3])
    assert res.mean_diff == pytest.approx(2.0) and res.cohens_d == pytest.approx(2.0)
    half = stats.t.ppf(0.975, 2) / math.sqrt(3)  # std 1, n 3
    assert (res.diff_ci_low, res.diff_ci_high) == pytest.approx((2 - half, 2 + half))
    same = paired_test([0.1, 0.0, 0.3], [0.1, 0.0, 0.3])
    assert same.p_t == 1.0 and same.p_wilcoxon == 1.0


def test_summarize_over_seeds():
    one = summarize([0.25])
    assert one.n == 1 and one.mean == 0.25 and math.isnan(one.std) and math.isnan(one.ci_low)
    two = summarize([1.0, 3.0])  # mean 2, std sqrt(2), half = t(0.975, 1) * sqrt(2)/sqrt(2)
    assert two.ci_high - two.mean == pytest.approx(12.706204736174707)


def test_labels_prefer_a_key_every_group_has_and_name_keys():
    from recframe.report.collect import label_groups

    flats = [{"model.name": '"pop"', "split.name": '"random"'},
             {"model.name": '"pop"', "split.name": '"leave_one_out"', "split.n_test": "1"},
             {"model.name": '"bpr"', "split.name": '"random"'}]
    assert label_groups(flats) == ["pop split.name=random", "pop split.name=leave_one_out",
                                   "bpr"]

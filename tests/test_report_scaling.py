"""`recframe report`'s scaling curves: metric vs non-embedding parameters, seconds, FLOPs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from recframe.api import parameter_counts
from recframe.report import build_report
from recframe.report.scaling import scaling_table

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _run(run_dir: Path, model: str, dim: int, seed: int, ndcg: float) -> None:
    params = 5 * dim * dim
    results = {
        "status": "ok",
        "config": {"dataset": {"name": "synthetic"}, "split": {"name": "leave_one_out"},
                   "model": {"name": model, "embedding_dim": dim}, "seed": seed},
        "protocol": {"dataset": {"name": "synthetic", "raw_fingerprint": "abc"},
                     "preprocess": [], "split": {"name": "leave_one_out"},
                     "data_fingerprint": "fp", "candidates": {"policy": "full"}},
        "metrics": {"valid": {}, "test": {"ndcg@10": ndcg + seed / 100}},
        "model_size": {"parameters": params + 1000, "embedding_parameters": 1000,
                       "non_embedding_parameters": params},
        "timings": {"fit": 1.0, "seconds_per_epoch": 0.5, "train_seconds": dim / 8 + seed},
        "training_compute": {"trained_positions": 100, "flops_estimate": 600 * params},
    }
    run_dir.mkdir(parents=True)
    (run_dir / "results.json").write_text(json.dumps(results))


@pytest.fixture
def sweep(tmp_path) -> Path:
    for model, base in (("hstu", 0.10), ("sasrec", 0.08)):
        for dim in (8, 16, 32):
            for seed in (0, 1, 2):
                _run(tmp_path / "sweep" / f"{model}-{dim}-{seed}", model, dim, seed,
                     base + dim / 1000)
    return tmp_path / "sweep"


def test_scaling_section_table_and_plot(sweep, tmp_path):
    report = build_report([sweep], out_dir=tmp_path / "out", metrics="ndcg@10")
    md = (tmp_path / "out" / "report.md").read_text()
    assert "Scaling: test ndcg@10 by model size" in md
    png = tmp_path / "out" / "scaling.png"
    assert png.read_bytes()[:8] == PNG_MAGIC and png in report.files
    # hstu at dim 16: 1280 parameters, seconds 2, 3, 4 -> mean 3, ndcg 0.116 + 0.01 mean
    assert "1,280" in md and "3.0" in md and "7.68e+05" in md


def test_scaling_table_values_come_from_the_runs(sweep, tmp_path):
    from recframe.report.collect import find_runs, group_runs, make_blocks
    from recframe.report.tables import block_table

    runs, _ = find_runs([sweep])
    groups, _ = group_runs(runs, ())
    blocks, _ = make_blocks(groups)
    frame = block_table(blocks[0], 1, ["ndcg@10"], None, 0.05, 0.95)
    table = scaling_table(frame, blocks[0], "ndcg@10")
    assert list(table["model"]) == ["hstu"] * 3 + ["sasrec"] * 3
    row = table.iloc[1]
    assert row["non_embedding_parameters"] == 1280 and row["train_seconds"] == 3.0
    assert row["mean"] == pytest.approx(0.10 + 0.016 + 0.01)
    assert row["ci_low"] < row["mean"] < row["ci_high"]


def test_no_scaling_section_without_several_sizes(tmp_path):
    for model in ("hstu", "sasrec"):
        for seed in (0, 1):
            _run(tmp_path / "runs" / f"{model}-{seed}", model, 16, seed, 0.1)
    build_report([tmp_path / "runs"], out_dir=tmp_path / "out")
    assert "Scaling" not in (tmp_path / "out" / "report.md").read_text()
    assert not (tmp_path / "out" / "scaling.png").exists()


def test_parameter_counts_separate_embedding_tables_and_item_vectors():
    class Toy(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.n_items = 7
            self.item_emb = torch.nn.Embedding(8, 4)
            self.pos = torch.nn.Embedding(5, 4)
            self.out_bias = torch.nn.Parameter(torch.zeros(7))
            self.layer = torch.nn.Linear(4, 3)

    counts = parameter_counts(Toy())
    assert counts == {"parameters": 32 + 20 + 7 + 15, "embedding_parameters": 59,
                      "non_embedding_parameters": 15}

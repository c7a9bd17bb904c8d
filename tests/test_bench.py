"""The benchmarks stay runnable: each one runs at tiny size and leaves a fragment,
and run_all merges the fragments into bench.json / bench.md."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "experiments" / "bench"
#: every benchmark that runs without RecBole's own venv
LOCAL = ["eval_floor", "topk_select", "pipeline_20m", "train_throughput", "cf_20m"]


def _run(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("name", [*LOCAL, "recbole_compare", "recbole_reference", "run_all"])
def test_every_benchmark_documents_its_size_flags(name):
    out = _run(str(BENCH / f"{name}.py"), "--help", timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "--out" in out.stdout and "--small" in out.stdout


@pytest.mark.slow
def test_small_benchmarks_write_fragments_that_merge(tmp_path):
    out = _run(str(BENCH / "run_all.py"), "--small", "--only", ",".join(LOCAL),
               "--out", str(tmp_path))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    figures = json.loads((tmp_path / "bench.json").read_text())
    for name in LOCAL:
        fragment = json.loads((tmp_path / "bench" / f"{name}.json").read_text())
        assert fragment["figures"], f"{name}: no figures"
        assert fragment["command"].startswith("python experiments/bench/")
        for key, value in fragment["figures"].items():
            assert figures[key] == value
    md = (tmp_path / "bench.md").read_text()
    assert all(f"## {name}" in md for name in LOCAL)
    assert "Not run yet" in md  # recbole_compare was not asked for

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
LOCAL = ["eval_floor", "topk_select", "pipeline_20m", "ooc_engines", "pipeline_ooc",
         "pipeline_200m", "train_throughput", "cf_20m",
         "hstu_vs_sasrec", "startup", "tiger_beam"]


def _run(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("name", [*LOCAL, "recbole_compare", "recbole_reference", "llm_rerank",
                                  "run_all"])
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


def test_fragments_carry_no_absolute_paths_of_this_machine(tmp_path):
    """write_fragment makes repository paths relative and temporary work dirs `<tmp>`;
    every committed fragment is already in that form."""
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments" / "bench"))
    import common

    work = Path(tempfile.gettempdir()) / "recbole_compare-abc123" / "data" / "x.inter"
    details = {"files": [str(work)], "out": str(common.ROOT / "experiments" / "results"),
               "data": str(common.ROOT.parent / "shared" / "data"), "n": 3}
    common.write_fragment("portable_check", tmp_path, {"f": 1.0}, "text", details)
    text = (tmp_path / "portable_check.json").read_text()
    assert str(common.ROOT) not in text and tempfile.gettempdir() + "/" not in text
    payload = json.loads(text)["details"]
    assert payload == {"files": ["<tmp>/data/x.inter"], "out": "experiments/results",
                       "data": "../shared/data", "n": 3}
    for path in (common.ROOT / "experiments" / "results" / "bench").glob("*.json"):
        assert common.portable(json.loads(path.read_text())) == json.loads(path.read_text()), \
            path.name


def test_bench_md_records_commands_relative_to_the_repository(tmp_path):
    """run_all's merge makes a fragment's command and text relative even when the fragment
    was written with absolute paths (issue 20, part 8), and the committed bench.md/json
    name no path of the machine that generated them."""
    sys.path.insert(0, str(BENCH))
    import common
    import run_all

    (tmp_path / "bench").mkdir()
    script = common.ROOT / "experiments" / "bench" / "startup.py"
    fragment = {"name": "startup", "figures": {"import_api_s": 0.1},
                "command": f"python {script} --out {common.ROOT}/experiments/results/bench",
                "markdown": f"ran in {common.ROOT}/experiments\n", "machine": {}}
    (tmp_path / "bench" / "startup.json").write_text(json.dumps(fragment))
    _, md = run_all.merge(tmp_path)
    assert str(common.ROOT) not in md
    assert ("Command: `python experiments/bench/startup.py --out experiments/results/bench`"
            in md)
    for name in ("bench.md", "bench.json"):
        text = (common.ROOT / "experiments" / "results" / name).read_text()
        assert str(common.ROOT) not in text and str(common.ROOT.parent) + "/" not in text
        commands = [line for line in text.splitlines() if line.startswith("Command: ")]
        assert all(c.startswith("Command: `python experiments/bench/") for c in commands)

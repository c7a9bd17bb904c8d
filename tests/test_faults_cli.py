"""Kill points of the CLI's own writes (Hydra's ``.hydra/*.yaml``) and a second resume
through ``recframe run``: killed at each write point of the job's first writes and at
the last one, resumed with ``resume=<run dir>`` (or rerun when the kill came before
``overrides.yaml`` existed, which is what makes a dir resumable), the run ends with the
uninterrupted run's results; a second ``resume=`` of the finished run changes no file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from recframe import faults
from tests.fault_harness import TINY, check_nothing_torn, fingerprint_outputs

BIN = Path(sys.executable).parent / "recframe"


def _run(tmp_path: Path, args: list[str], **env: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "RECFRAME_OUTPUT_DIR": str(tmp_path / "out"),
                "WANDB_MODE": "offline", **env}
    return subprocess.run([str(BIN), "run", *args], env=full_env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_cli_kill_points_and_second_resume(tmp_path):
    clean = tmp_path / "clean"
    log_file = tmp_path / "writes.log"
    done = _run(tmp_path, [*TINY, f"hydra.run.dir={clean}"], **{faults.FAULT_LOG: str(log_file)})
    assert done.returncode == 0, done.stderr[-2000:]
    points = [line.split("\t")[1] for line in log_file.read_text().splitlines()]
    assert points[:3] == ["config.yaml", "hydra.yaml", "overrides.yaml"], points
    expected = json.loads((clean / "results.json").read_text())["metrics"]["test"]
    exercised = [1, 2, 3, 4, len(points)]
    for n in exercised:
        run_dir = tmp_path / f"kill{n}"
        killed = _run(tmp_path, [*TINY, f"hydra.run.dir={run_dir}"],
                      **{faults.FAULT_AT: str(n), faults.FAULT_KIND: "kill"})
        assert killed.returncode == -9, (n, killed.stderr[-2000:])
        check_nothing_torn(run_dir)
        resumable = (run_dir / ".hydra" / "overrides.yaml").exists()
        again = _run(tmp_path, [f"resume={run_dir}"] if resumable
                     else [*TINY, f"hydra.run.dir={run_dir}"])
        assert again.returncode == 0, (n, again.stderr[-2000:])
        got = json.loads((run_dir / "results.json").read_text())["metrics"]["test"]
        assert got == pytest.approx(expected, abs=1e-6), n
        before = fingerprint_outputs(run_dir)
        second = _run(tmp_path, [f"resume={run_dir}"])
        assert second.returncode == 0 and "already finished" in second.stdout + second.stderr
        assert fingerprint_outputs(run_dir) == before, n
    print(f"\nCLI kill points exercised: {len(exercised)} of {len(points)}")

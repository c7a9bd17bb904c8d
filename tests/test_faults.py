"""Fault injection at every write: SIGKILL, a full disk, a read-only disk.

A clean run counts its write points (:mod:`recframe.faults`); the run is then
stopped at each one, and the test checks that nothing torn is left under a final
name, that a resume ends with exactly the uninterrupted run's results, and that a
second resume of the finished run would change nothing. The fast suite exercises a
spread subset of the points; ``-m slow`` exercises all of them (and the CLI's own
writes: tests/test_faults_cli.py).
"""

from __future__ import annotations

import errno
import os
import sys

import pytest

from recframe import faults
from recframe.sweep import finished_result
from tests.fault_harness import (
    SIGKILL,
    TINY,
    check_nothing_torn,
    count_writes,
    fingerprint_outputs,
    outcome_metrics,
    run_child,
    with_resume,
)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="fork and SIGKILL")


def spread(n: int, k: int) -> list[int]:
    """``k`` points of ``1..n`` spread evenly, first and last included."""
    return sorted({1 + round(i * (n - 1) / max(k - 1, 1)) for i in range(k)})


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run: its config, write points and results."""
    from recframe.hydra_app import compose_config

    cfg = compose_config(TINY)
    run_dir = tmp_path_factory.mktemp("clean") / "run"
    points = count_writes(cfg, run_dir)
    return cfg, points, outcome_metrics(run_dir)


def kill_and_resume(cfg, run_dir, n, expected) -> None:
    code, outcome = run_child(cfg, run_dir, {faults.FAULT_AT: str(n),
                                             faults.FAULT_KIND: "kill"})
    assert code == SIGKILL, f"write point {n} did not kill the run: {outcome}"
    check_nothing_torn(run_dir)
    code, outcome = run_child(with_resume(cfg, run_dir), run_dir)
    assert code == 0 and outcome == "ok", f"resume after kill point {n}: {outcome}"
    assert check_nothing_torn(run_dir) == []  # the killed attempt's temp files are removed
    got = outcome_metrics(run_dir)
    assert got["best_epoch"] == expected["best_epoch"], n
    assert got["per_user_rows"] == expected["per_user_rows"], n
    assert got["test"] == pytest.approx(expected["test"], abs=1e-6), n
    assert got["valid"] == pytest.approx(expected["valid"], abs=1e-6), n
    # a second resume finds the run finished (recframe run skips it): nothing changes
    before = fingerprint_outputs(run_dir)
    assert finished_result(run_dir, with_resume(cfg, run_dir)) is not None, n
    assert fingerprint_outputs(run_dir) == before


def exercise_kills(reference, tmp_path, which: list[int]) -> int:
    cfg, points, expected = reference
    for n in which:
        kill_and_resume(cfg, tmp_path / f"kill{n}", n, expected)
    kinds = sorted({points[n - 1][1] for n in which})
    print(f"\nkill points exercised: {len(which)} of {len(points)} ({', '.join(kinds)})")
    return len(which)


def test_the_clean_run_writes_every_kind_of_file(reference):
    _, points, _ = reference
    kinds = {what for _, what, _ in points}
    assert {"checkpoint", "last.ckpt", "metrics.csv", "per_user.parquet",
            "results.json"} <= kinds, kinds
    assert [n for n, _, _ in points] == list(range(1, len(points) + 1))


def test_kill_at_spread_write_points_then_resume(reference, tmp_path):
    assert exercise_kills(reference, tmp_path, spread(len(reference[1]), 4)) == 4


@pytest.mark.slow
def test_kill_at_every_write_point_then_resume(reference, tmp_path):
    n = len(reference[1])
    assert exercise_kills(reference, tmp_path, list(range(1, n + 1))) == n


def full_disk_at(reference, tmp_path, n) -> None:
    cfg, points, expected = reference
    run_dir = tmp_path / f"full{n}"
    code, outcome = run_child(cfg, run_dir, {faults.FAULT_AT: str(n),
                                             faults.FAULT_KIND: "enospc"})
    assert code == 0
    kind, _, message = outcome.partition("\n")
    assert kind == "recframe.faults.OutputError", outcome
    assert "no space left on the device" in message and str(run_dir / points[n - 1][2]) in message
    assert check_nothing_torn(run_dir) == [], "a temp file was left behind"
    if points[n - 1][1] != "results.json":  # the failure itself is on record
        import json

        record = json.loads((run_dir / "results.json").read_text())
        assert record["status"] == "failed" and record["error"]["user_error"] is True
    # space freed: the same run dir resumes to the uninterrupted results
    code, outcome = run_child(with_resume(cfg, run_dir), run_dir)
    assert outcome == "ok", outcome
    got = outcome_metrics(run_dir)
    assert got["test"] == pytest.approx(expected["test"], abs=1e-6)


def test_disk_full_at_spread_write_points(reference, tmp_path):
    which = spread(len(reference[1]), 3)
    for n in which:
        full_disk_at(reference, tmp_path, n)
    print(f"\ndisk-full faults injected: {len(which)}")


@pytest.mark.slow
def test_disk_full_at_every_write_point(reference, tmp_path):
    for n in range(1, len(reference[1]) + 1):
        full_disk_at(reference, tmp_path, n)
    print(f"\ndisk-full faults injected: {len(reference[1])}")


def test_read_only_disk_is_a_clear_error_and_leaves_nothing(reference, tmp_path):
    cfg, _, _ = reference
    run_dir = tmp_path / "ro"
    code, outcome = run_child(cfg, run_dir, {faults.FAULT_AT: "1", faults.FAULT_KIND: "erofs"})
    kind, _, message = outcome.partition("\n")
    assert kind == "recframe.faults.OutputError", outcome
    assert "read-only file system" in message and "RECFRAME_OUTPUT_DIR" in message
    assert check_nothing_torn(run_dir) == []


def test_output_error_codes():
    full = faults.output_error(OSError(errno.ENOSPC, "x"), "/o/results.json")
    assert isinstance(full, faults.OutputError) and "no space left" in str(full)
    ro = faults.output_error(OSError(errno.EROFS, "x"), "/o/a")
    assert isinstance(ro, faults.OutputError) and "read-only" in str(ro)
    other = OSError(errno.EIO, "x")
    assert faults.output_error(other, "/o/a") is other  # not the disk's fault: as it is


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root writes into read-only directories")
def test_read_only_output_dir_fails_before_composing(tmp_path):
    from recframe.hydra_app import check_output_dir

    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(faults.OutputError, match="not a writable directory"):
            check_output_dir([f"hydra.run.dir={locked / 'run'}"])
    finally:
        locked.chmod(0o755)


def test_output_dir_under_a_file_fails_before_composing(tmp_path):
    from recframe.hydra_app import check_output_dir

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(faults.OutputError, match="not a writable directory"):
        check_output_dir([f"output_root={blocker / 'out'}"])
    check_output_dir([f"output_root={tmp_path / 'fine' / 'out'}"])  # created on demand

"""Concurrency: two sweeps into one sweep dir, a report over a sweep still running,
locks that time out with a clear message (recframe.joblock, the download lock)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from filelock import FileLock

from recframe import joblock
from recframe.report import build_report

BIN = Path(sys.executable).parent / "recframe"


@pytest.fixture(autouse=True)
def _short_lock(monkeypatch):
    monkeypatch.setenv(joblock.LOCK_TIMEOUT_ENV, "0.2")
    yield
    joblock._held.clear()
    joblock._blocked.clear()


def test_a_held_run_dir_times_out_with_a_clear_message(tmp_path):
    other = FileLock(str(tmp_path / joblock.LOCK_FILE))  # another process's hold
    other.acquire()
    try:
        assert joblock.is_running(tmp_path)
        assert not joblock.claim(tmp_path, {"seed": 0})
        with pytest.raises(joblock.RunDirLocked, match="is in use: another recframe process"):
            joblock.raise_if_blocked(tmp_path)
    finally:
        other.release()
    assert not joblock.is_running(tmp_path)
    assert joblock.claim(tmp_path, {"seed": 0})
    joblock.release(tmp_path)


def test_a_run_dir_with_another_configs_results_is_not_overwritten(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps(
        {"status": "ok", "config": {"model": {"name": "pop"}, "seed": 0}}))
    assert not joblock.claim(tmp_path, {"model": {"name": "bpr"}, "seed": 0})
    with pytest.raises(joblock.RunDirTaken, match="model.name='pop' there, 'bpr' here"):
        joblock.raise_if_blocked(tmp_path)
    assert joblock.claim(tmp_path, {"model": {"name": "pop"}, "seed": 0})  # same: fine
    joblock.release(tmp_path)


def test_download_lock_times_out_with_a_clear_message(tmp_path, monkeypatch):
    from recframe.api import DataError
    from recframe_datasets import download

    monkeypatch.setattr(download, "LOCK_TIMEOUT_S", 0.2)
    target = tmp_path / "ml-100k"
    held = FileLock(str(target) + ".lock")
    held.acquire()
    try:
        with pytest.raises(DataError, match="waited 0s for another process downloading"), \
                download.target_lock(target):
            pass
    finally:
        held.release()


def test_report_over_a_running_sweep_marks_unfinished_jobs(tmp_path, compose):
    from recframe.runner import run_experiment

    sweep = tmp_path / "sweep"
    run_experiment(compose("model=pop", "seed=0"), sweep / "0")
    for job in ("1", "2"):
        (sweep / job / ".hydra").mkdir(parents=True)
        (sweep / job / ".hydra" / "config.yaml").write_text("model: {name: bpr}\n")
    running = FileLock(str(sweep / "1" / joblock.LOCK_FILE))
    running.acquire()
    try:
        report = build_report([sweep], plots=False)
    finally:
        running.release()
    states = {u.display: u.reason for u in report.unfinished}
    assert states == {"sweep/1": "running", "sweep/2": "unfinished"}
    text = (report.out_dir / "report.md").read_text()
    assert "2 not finished" in text and "Unfinished runs" in text
    assert len(report.groups) == 1  # only the finished job is in the tables


def _sweep(tmp_path: Path, sweep_dir: Path, *overrides: str) -> subprocess.Popen:
    env = {**os.environ, "RECFRAME_OUTPUT_DIR": str(tmp_path / "out"), "WANDB_MODE": "offline",
           joblock.LOCK_TIMEOUT_ENV: "600"}
    return subprocess.Popen(
        [str(BIN), "run", "-m", "dataset=synthetic", "dataset.n_users=80", "dataset.n_items=50",
         "preprocess=none", "trainer.max_epochs=2", "logger=csv", *overrides,
         f"hydra.sweep.dir={sweep_dir}"], env=env, cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_two_sweeps_into_one_sweep_dir(tmp_path):
    """The same sweep started twice at once: each job runs once, and the results are
    those of a sweep run alone; then a different sweep into the same dir is refused
    job by job, and nothing of the first is overwritten."""
    sweep = tmp_path / "sweep"
    first = _sweep(tmp_path, sweep, "model=pop,bpr", "seed=0")
    second = _sweep(tmp_path, sweep, "model=pop,bpr", "seed=0")
    outs = [p.communicate(timeout=900)[0] for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outs
    records = {d.name: json.loads((d / "results.json").read_text())
               for d in sweep.iterdir() if (d / "results.json").exists()}
    assert sorted(records) == ["0", "1"]
    assert [records[j]["config"]["model"]["name"] for j in ("0", "1")] == ["pop", "bpr"]
    assert all(r["status"] == "ok" for r in records.values())
    assert sum(o.count("already finished") for o in outs) == 2, outs  # each ran once
    alone = _sweep(tmp_path, tmp_path / "alone", "model=pop,bpr", "seed=0")
    alone.communicate(timeout=900)
    for job in ("0", "1"):
        expected = json.loads((tmp_path / "alone" / job / "results.json").read_text())
        assert records[job]["metrics"]["test"] == pytest.approx(expected["metrics"]["test"])
    before = {j: (sweep / j / "results.json").read_bytes() for j in ("0", "1")}
    other = _sweep(tmp_path, sweep, "model=bpr,pop", "seed=0")
    out = other.communicate(timeout=900)[0]
    assert out.count("not run:") == 2 and "holds the finished results of another config" in out, out
    assert {j: (sweep / j / "results.json").read_bytes() for j in ("0", "1")} == before


def _download(url: str, target: str, checksums: dict, out: str) -> None:
    from recframe_datasets.download import download_and_extract

    download_and_extract(url, Path(target), checksums)
    Path(out).write_text("ok")


def test_two_processes_download_into_one_cache_at_once(tmp_path):
    """The shared data cache: two processes installing the same archive at once both
    get the complete, checksummed directory; one of them downloads, nothing is left
    half-installed (the archive is a file:// URL: no network)."""
    import hashlib
    import multiprocessing
    import zipfile

    archive = tmp_path / "data.zip"
    payload = {"u.data": "1\t2\t5\t0\n" * 1000, "u.item": "1|x\n"}
    with zipfile.ZipFile(archive, "w") as zf:
        for name, body in payload.items():
            zf.writestr(f"ml/{name}", body)
    checksums = {n: hashlib.md5(b.encode()).hexdigest() for n, b in payload.items()}
    target = tmp_path / "cache" / "ml"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_download, args=(archive.as_uri(), str(target), checksums,
                                                 str(tmp_path / f"ok{i}"))) for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    assert all((tmp_path / f"ok{i}").read_text() == "ok" for i in range(2))
    assert sorted(p.name for p in target.iterdir()) == sorted(payload)
    leftovers = [p.name for p in target.parent.iterdir() if p.name not in ("ml", "ml.lock")]
    assert leftovers == []

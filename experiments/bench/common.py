"""Shared plumbing of the benchmarks: timing, peak memory, machine facts, result fragments.

Every benchmark is a script ``experiments/bench/<name>.py`` that runs alone
(``python experiments/bench/<name>.py --help`` lists its size flags) and, at the
end, calls :func:`write_fragment`: one JSON file ``<out>/<name>.json`` holding

- ``figures``: the headline numbers, one key each (these are merged into
  ``experiments/results/bench.json`` by ``run_all.py``);
- ``markdown``: a section for ``experiments/results/bench.md`` (tables, what
  was measured, what it means);
- ``command``: the exact command line that produced it;
- ``details``: anything else worth keeping (raw timings, sizes).

Ratios are measured side by side in one process (or one script run), never by
comparing absolute times across runs: the development machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from importlib import metadata
from pathlib import Path
from typing import Any

from recframe.results import atomic_write

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "experiments" / "results" / "bench"


def peak_rss_gib() -> float:
    """Peak resident set size of this process so far, in GiB (Linux ``ru_maxrss`` is KiB)."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if sys.platform == "darwin":
        kib /= 1024
    return round(kib / 2**20, 3)


def current_rss_gib() -> float:
    """Resident set size now, in GiB (from /proc; falls back to the peak elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except OSError:
        return peak_rss_gib()
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**30, 3)


@contextmanager
def timed() -> Iterator[dict[str, float]]:
    """``with timed() as t: ...`` then ``t["s"]`` holds the wall seconds."""
    out: dict[str, float] = {}
    start = time.perf_counter()
    try:
        yield out
    finally:
        out["s"] = time.perf_counter() - start


def machine() -> dict[str, Any]:
    """CPU, cores, memory, GPU and library versions: the context every figure needs."""
    info: dict[str, Any] = {"platform": platform.platform(), "python": platform.python_version(),
                            "cores": os.cpu_count()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
        info["memory_gib"] = round(mem_kib / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    versions = {}
    for package in ("recframe", "torch", "lightning", "numpy", "scipy", "pandas", "pyarrow"):
        with suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    info["versions"] = versions
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    with suppress(OSError, subprocess.CalledProcessError):
        info["git_sha"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                         capture_output=True, text=True,
                                         check=True).stdout.strip()
    return info


def parser(description: str,
           small_help: str = "tiny sizes: a smoke run, not figures") -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark shares: ``--out`` and
    ``--small`` (what the smoke test and ``run_all.py --small`` pass)."""
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help="folder for the result fragment <name>.json")
    p.add_argument("--small", action="store_true", help=small_help)
    return p


def command_line() -> str:
    """The command that is running now, relative to the repository root where possible."""
    argv = list(sys.argv)
    for i, arg in enumerate(argv):  # paths inside the repository, relative to it
        if i == 0 or arg.startswith("/"):
            with suppress(ValueError, OSError):
                argv[i] = str(Path(arg).resolve().relative_to(ROOT))
    return "python " + shlex.join(argv)


_TEMP_RUN = re.compile(re.escape(tempfile.gettempdir().rstrip("/")) + r"/[^/\s\"']+")


def portable(value: Any) -> Any:
    """``value`` with this machine's paths removed from every string: the repository
    root becomes relative (``experiments/...``) and a temporary work dir becomes
    ``<tmp>``, so committed fragments carry no absolute paths."""
    if isinstance(value, str):
        value = value.replace(str(ROOT) + "/", "").replace(str(ROOT.parent) + "/", "../")
        return _TEMP_RUN.sub("<tmp>", value)
    if isinstance(value, dict):
        return {k: portable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [portable(v) for v in value]
    return value


def write_fragment(name: str, out: Path, figures: dict[str, Any], markdown: str,
                   details: dict[str, Any] | None = None,
                   recorded: dict[str, Any] | None = None) -> Path:
    """Write ``<out>/<name>.json`` atomically and print the markdown section.

    ``recorded`` (``command`` and ``machine`` of an earlier fragment) keeps the
    provenance of figures that were measured before, when only the text is rebuilt.
    """
    recorded = recorded or {}
    payload = portable({"name": name, "figures": figures, "markdown": markdown.strip() + "\n",
                        "command": recorded.get("command", command_line()),
                        "machine": recorded.get("machine", machine()),
                        "details": details or {}})
    text = json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n"
    path = out / f"{name}.json"
    atomic_write(path, lambda tmp: tmp.write_text(text))
    print(markdown)
    print(json.dumps(figures, indent=2, sort_keys=True, default=str))
    return path


def md_table(header: list[str], rows: list[list[Any]]) -> str:
    """A GitHub-flavoured markdown table; floats get 3 significant decimals."""
    def cell(v: Any) -> str:
        if isinstance(v, float):
            if abs(v) < 1e-2 or abs(v) >= 1e4:
                return f"{v:.3g}"
            return f"{v:,.3f}".rstrip("0").rstrip(".")
        return str(v)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)

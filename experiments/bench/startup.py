"""Startup time: ``import recframe.api``, ``recframe plugins`` and ``recframe run --help``.

Each command runs in a fresh interpreter, as a user starts it; the figure is the
median wall time over ``--repeats`` rounds, the commands alternating within a
round so that a busy machine slows them alike. For context the same rounds time
``python -c pass`` (the interpreter alone) and ``python -c "import torch"``.
A probe run of each command records whether it imported torch, Lightning or
pandas (none of them should be: names in ``recframe.api`` resolve lazily, plugins
register ``lazy("module:name")`` builders, and ``run --help`` is rendered without
importing the runner).

``--baseline REV`` times the same commands on the code of git revision ``REV``
(extracted with ``git archive`` into a temporary folder and put first on
``PYTHONPATH``), in the same rounds, for a before/after table.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

NAME = "startup"
#: figure key -> (what a user types, the arguments after ``python``)
COMMANDS: dict[str, tuple[str, list[str]]] = {
    "python_startup_s": ("python -c pass", ["-c", "pass"]),
    "import_torch_s": ('python -c "import torch"', ["-c", "import torch"]),
    "import_api_s": ('python -c "import recframe.api"', ["-c", "import recframe.api"]),
    "plugins_cli_s": ("recframe plugins", ["-m", "recframe.cli", "plugins"]),
    "run_help_s": ("recframe run --help", ["-m", "recframe.cli", "run", "--help"]),
}
#: the headline figures and their goals in seconds (issue 20, part 6)
GOALS = {"import_api_s": 1.0, "plugins_cli_s": 3.0, "run_help_s": 3.0}
HEAVY = ("torch", "lightning", "pandas")
PROBE = """
import atexit, os, runpy, sys
def report():
    with open(os.environ["RECFRAME_STARTUP_PROBE"], "w") as f:
        f.write(",".join(m for m in {heavy!r} if m in sys.modules))
atexit.register(report)
sys.argv = {argv!r}
{body}
"""


def run_once(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, *args], cwd=env.get("PYTHONPATH_ROOT", common.ROOT),
                         env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"python {' '.join(args)} failed:\n{out.stderr[-2000:]}")
    return seconds


def heavy_imports(args: list[str], env: dict[str, str]) -> list[str]:
    """Which of HEAVY the command imported (a probe run that reports ``sys.modules``)."""
    if args[0] == "-c":
        body, argv = args[1], ["-c"]
    else:  # -m module args...
        body = f"runpy.run_module({args[1]!r}, run_name='__main__', alter_sys=True)"
        argv = [args[1], *args[2:]]
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "modules"
        probe = PROBE.format(heavy=HEAVY, argv=argv, body=body)
        subprocess.run([sys.executable, "-c", probe], cwd=env.get("PYTHONPATH_ROOT", common.ROOT),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env={**env, "RECFRAME_STARTUP_PROBE": str(report)})
        return [m for m in report.read_text().split(",") if m] if report.exists() else ["?"]


def baseline_env(rev: str, into: Path) -> dict[str, str]:
    """An environment whose PYTHONPATH puts the code of ``rev`` before the installed one
    (commands then run in that folder: ``PYTHONPATH_ROOT``, since ``python -c`` and
    ``-m`` put the working directory first on ``sys.path``)."""
    archive = subprocess.run(["git", "archive", rev], cwd=common.ROOT, capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    conf = into / "recframe" / "conf"  # the wheel maps conf/ to recframe.conf
    if not conf.exists():
        conf.symlink_to(into / "conf", target_is_directory=True)
    experiment = into / "conf" / "experiment"
    if experiment.is_symlink() and not experiment.exists():
        experiment.unlink()
        experiment.symlink_to(into / "experiments", target_is_directory=True)
    paths = [into, into / "plugins", into / "plugins" / "recframe-example"]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in paths),
            "PYTHONPATH_ROOT": str(into)}


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__.splitlines()[0], "one round: a smoke run")
    p.add_argument("--repeats", type=int, default=5, help="rounds (the figure is the median)")
    p.add_argument("--baseline", default="", help="also time git revision REV (before/after)")
    args = p.parse_args(argv)
    repeats = 1 if args.small else args.repeats
    envs = {"now": dict(os.environ)}
    tmp = Path(tempfile.mkdtemp(prefix="startup-baseline-"))
    try:
        if args.baseline:
            envs["baseline"] = baseline_env(args.baseline, tmp)
        times: dict[str, dict[str, list[float]]] = {w: {k: [] for k in COMMANDS} for w in envs}
        for _, cmd in COMMANDS.values():  # warm the file cache once
            for env in envs.values():
                run_once(cmd, env)
        for r in range(repeats):
            order = list(COMMANDS) if r % 2 == 0 else list(reversed(COMMANDS))
            for key in order:
                for which, env in envs.items():
                    times[which][key].append(run_once(COMMANDS[key][1], env))
        heavy = {w: {k: heavy_imports(COMMANDS[k][1], env) for k in GOALS}
                 for w, env in envs.items()}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    med = {w: {k: round(statistics.median(v), 3) for k, v in t.items()} for w, t in times.items()}
    figures: dict[str, Any] = {k: med["now"][k] for k in GOALS}
    header = ["command", "figure", "median s", "goal"]
    if args.baseline:
        header += [f"at {args.baseline}", "speed-up"]
    rows = []
    for key, (typed, _) in COMMANDS.items():
        row: list[Any] = [f"`{typed}`", f"`{key}`" if key in GOALS else "(context)",
                          med["now"][key], f"<= {GOALS[key]:g}" if key in GOALS else ""]
        if args.baseline:
            before = med["baseline"][key]
            row += [before, f"{before / med['now'][key]:.1f}x" if key in GOALS else ""]
        rows.append(row)
    imported = "; ".join(f"`{COMMANDS[k][0]}`: {', '.join(v) or 'none'}"
                         for k, v in heavy["now"].items())
    met = all(figures[k] <= goal for k, goal in GOALS.items())
    markdown = (
        f"Wall time of each command in a fresh interpreter, median of {repeats} alternating "
        f"rounds after one warm-up run.\n\n{common.md_table(header, rows)}\n\n"
        f"Goals met: **{'yes' if met else 'no'}**. Heavy modules imported (of "
        f"{', '.join(HEAVY)}): {imported}.\n\n"
        "How: `recframe.api` resolves its names on first use (PEP 562 `__getattr__`); "
        "plugins register `lazy(\"module:name\")` builders, imported when a run asks for "
        "the name (`Registry.get`); `recframe run --help` composes the config once and "
        "lists the config groups from one repository instead of Hydra's copy per group "
        "(`recframe/run_help.py`, same text as Hydra's). `import torch` alone costs more "
        "than the goal of `import recframe.api`, so none of these may import it.\n")
    details = {"repeats": repeats, "times": times, "heavy_imports": heavy,
               "baseline": args.baseline or None}
    common.write_fragment(NAME, args.out, figures, markdown, details)
    return 0


if __name__ == "__main__":
    sys.exit(main())

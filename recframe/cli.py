"""The ``recframe`` command: ``run`` (Hydra) and ``plugins``."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from rich.console import Console

from recframe.errors import RecframeError, closest

USAGE = """usage: recframe COMMAND [ARGS]

commands:
  run [-m] [OVERRIDES]   run an experiment (Hydra overrides, e.g. model=bpr dataset=ml-100k);
                         -m / --multirun sweeps comma-separated values (model=pop,bpr seed=0,1)
  plugins                list installed plugins and every name each registers, by kind
  datasets               list the registered data sets, with a description of each
  describe dataset=NAME [OVERRIDES] [--json]
                         load a data set as a run would and print its statistics (users,
                         items, density, history lengths, timestamps, ratings, fields)
  new-plugin NAME [--dest DIR]
                         create a plugin package in DIR/NAME: a model NAME, its config, tests
  recommend RUN_DIR      top-K lists from a run's best checkpoint: --users 1,2,3 | --all --out
                         recs.parquet | --history 50,172,133 (a new user, by fold-in)
  report DIR [DIR ...]   compare finished runs over seeds: md/csv/html tables, paired
                         significance tests, plots (`recframe report --help`)

`recframe run --help` shows Hydra's help, the config groups and their options.
"""
COMMANDS = ("run", "plugins", "datasets", "describe", "report", "recommend", "new-plugin")


def plugins_command(console: Console | None = None) -> int:
    """Print each installed plugin, its distribution, and the names it registers by kind."""
    from recframe.plugin.manager import default_manager

    console = console or Console()
    pm = default_manager()
    for info in pm.plugins():
        dist = f"{info.distribution} {info.version}".strip() or "in-process"
        console.print(f"[bold]{info.name}[/] ({dist})", highlight=False)
        for kind, names in pm.registered_by(info.name).items():
            console.print(f"  {kind}: {', '.join(names)}", highlight=False, soft_wrap=True)
        for path in info.searchpaths:
            console.print(f"  config: {path}", highlight=False, soft_wrap=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    err = Console(stderr=True)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    command, rest = args[0], args[1:]
    try:
        if command == "run":
            from recframe.hydra_app import run_hydra

            run_hydra(rest)
            return 0
        if command == "plugins":
            return plugins_command()
        if command in ("datasets", "describe"):
            from recframe.describe import datasets_command, describe_command

            return (datasets_command if command == "datasets" else describe_command)(rest)
        if command == "recommend":
            from recframe.recommend import recommend_command

            return recommend_command(rest)
        if command == "new-plugin":
            from recframe.scaffold import new_plugin_command

            return new_plugin_command(rest)
        if command == "report":
            from recframe.report.cli import report_command

            return report_command(rest)
    except RecframeError as exc:
        err.print(f"[bold red]recframe: error:[/] {exc}", highlight=False, soft_wrap=True)
        return 2
    hint = closest(command, COMMANDS)
    err.print(f"recframe: unknown command {command!r}; commands: {', '.join(COMMANDS)}"
              + (f". Did you mean {hint!r}?" if hint else ""), highlight=False)
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""Hydra glue: the plugin search path and the task function behind ``recframe run``."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from hydra.core.config_search_path import ConfigSearchPath
from hydra.core.hydra_config import HydraConfig
from hydra.core.plugins import Plugins
from hydra.plugins.search_path_plugin import SearchPathPlugin
from omegaconf import DictConfig

from recframe.errors import ConfigError, RecframeError

CONFIG_MODULE = "pkg://recframe.conf"
CONFIG_NAME = "config"
log = logging.getLogger("recframe")


class RecframeSearchPathPlugin(SearchPathPlugin):
    """Appends every installed plugin's config dir after recframe's own ``conf/``.

    Appending (never prepending) means a plugin can add config files but not
    shadow core ones.
    """

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        from recframe.plugin.manager import default_manager

        for plugin, path in default_manager().searchpaths():
            search_path.append(provider=f"recframe-plugin-{plugin}", path=path)


_registered = False


def register_searchpath_plugin() -> None:
    """Register :class:`RecframeSearchPathPlugin` with Hydra (idempotent)."""
    global _registered
    if not _registered:
        Plugins.instance().register(RecframeSearchPathPlugin)
        _registered = True


def task_function(cfg: DictConfig) -> float | None:
    """Run one job; return the monitored validation metric (what sweepers maximize).

    In a multirun a failing job never stops the sweep: its ``results.json``
    says ``failed`` with the error, and the job returns None. A job whose run
    dir already holds an ``ok`` result for the same config is skipped, so a
    restarted sweep (same ``hydra.sweep.dir``) only runs what is missing. The job
    holds its run dir's lock (:mod:`recframe.joblock`) while it runs, so a second
    sweep into the same dir neither mixes nor overwrites results.
    """
    from hydra.types import RunMode

    from recframe import joblock

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    try:
        joblock.raise_if_blocked(run_dir)  # another process's job dir (concurrent sweeps)
        joblock.claim(run_dir, cfg)  # no-op when Hydra's config writes already did
        joblock.raise_if_blocked(run_dir)
    except RecframeError as exc:
        print(f"recframe: error: {exc}", file=sys.stderr)
        if multirun:
            log.error("job %s not run: %s", hydra_cfg.job.num, exc)
            return None
        raise SystemExit(2) from None
    try:
        return _run_job(cfg, run_dir, multirun, hydra_cfg)
    finally:
        joblock.release(run_dir)


def _run_job(cfg: DictConfig, run_dir: Path, multirun: bool, hydra_cfg: Any) -> float | None:
    from recframe.runner import run_experiment
    from recframe.summary import print_summary
    from recframe.sweep import apply_gpu_round_robin, finished_result, monitored_value

    previous = finished_result(run_dir, cfg)
    if previous is not None:
        job = "" if not multirun else f" {hydra_cfg.job.num}"  # job.num is ??? in a run
        log.info("job%s already finished in %s; skipping it", job, run_dir)
        return monitored_value(previous)
    if multirun:
        apply_gpu_round_robin(cfg, int(hydra_cfg.job.num))
    try:
        results = run_experiment(cfg, run_dir, sweep_name=_sweep_name() if multirun else None)
    except RecframeError as exc:
        print(f"recframe: error: {exc}", file=sys.stderr)
        print(f"recframe: results with status 'failed' are in {run_dir}", file=sys.stderr)
        if multirun:
            return None
        raise SystemExit(2) from None
    except Exception:
        if not multirun:
            raise
        log.exception("job %s failed; the sweep goes on (see %s/results.json)",
                      hydra_cfg.job.num, run_dir)
        return None
    print_summary(results)
    return monitored_value(results)


def _sweep_name() -> str:
    """A name shared by all jobs of one multirun (wandb group): the sweep dir's path."""
    sweep_dir = Path(HydraConfig.get().sweep.dir)
    return f"{sweep_dir.parent.name}-{sweep_dir.name}"


def _save_config_atomically(cfg: Any, filename: str, output_dir: Path) -> None:
    """Hydra's ``.hydra/*.yaml`` writer, through :func:`recframe.results.atomic_write`
    (``resume=`` reads ``overrides.yaml`` back: a kill must never leave half of it)."""
    from omegaconf import OmegaConf

    from recframe import joblock
    from recframe.results import atomic_write

    run_dir = Path(output_dir).parent  # hydra.output_subdir is .hydra, in the run dir
    if filename == "config.yaml" and not joblock.claim(run_dir, cfg):
        return  # another process's job dir: task_function reports it, nothing is written
    if filename != "config.yaml" and Path(run_dir).resolve() in joblock._blocked:
        return
    text = OmegaConf.to_yaml(cfg)
    atomic_write(Path(output_dir) / filename,
                 lambda tmp: tmp.write_text(text, encoding="utf-8"), filename)


def route_hydra_writes() -> None:
    """Send Hydra's per-job config files through recframe's counted atomic writes."""
    import hydra.core.utils

    hydra.core.utils._save_config = _save_config_atomically


def run_hydra(overrides: list[str]) -> None:
    """Run Hydra on ``overrides`` (``-m`` and ``--cfg`` flags included) without touching sys.argv.

    Keeping ``sys.argv`` as typed (``recframe run ...``) matters: Lightning's
    DDP launcher re-executes the command line for each extra rank.
    """
    from hydra._internal.utils import _run_hydra, get_args_parser

    register_searchpath_plugin()
    route_hydra_writes()
    parser = get_args_parser()
    overrides = resume_overrides(overrides)
    check_output_dir(overrides)
    if not any(o in ("--help", "-h", "--hydra-help", "--info") or o.startswith("--cfg")
               for o in overrides):
        from recframe.config_keys import check_override_keys

        check_override_keys(overrides)  # a misspelled key: the closest known one
    args: Any = parser.parse_args(overrides)
    if args.help:  # Hydra's help text, without its slow per-group repository copies
        from recframe.run_help import render_help

        print(render_help(list(args.overrides), resolve=bool(args.resolve)))
        return
    _run_hydra(
        args=args,
        args_parser=parser,
        task_function=task_function,
        config_path=CONFIG_MODULE,
        config_name=CONFIG_NAME,
    )


def check_output_dir(overrides: list[str]) -> None:
    """Fail before composing (E871) when the outputs would go to a read-only place:
    ``hydra.run.dir`` / ``hydra.sweep.dir`` / ``output_root`` as given, else
    ``$RECFRAME_OUTPUT_DIR``, else ``outputs``."""
    import os

    from recframe.faults import check_writable

    multirun = "-m" in overrides or "--multirun" in overrides
    keys = ("hydra.sweep.dir=" if multirun else "hydra.run.dir=", "output_root=")
    given = [o.split("=", 1)[1] for o in overrides if o.startswith(keys)]
    target = given[0] if given else os.environ.get("RECFRAME_OUTPUT_DIR") or "outputs"
    if "${" not in target and "," not in target:
        check_writable(target, "run outputs to")


def resume_overrides(overrides: list[str]) -> list[str]:
    """``resume=DIR``: replay DIR's saved overrides, then the new ones, in DIR itself."""
    resume = [o for o in overrides if o.startswith("resume=")]
    if not resume:
        return overrides
    run_dir = Path(resume[-1].split("=", 1)[1]).expanduser().resolve()
    saved_file = run_dir / ".hydra" / "overrides.yaml"
    if not saved_file.exists():
        raise ConfigError(
            f"resume={run_dir}: not a recframe run dir (no .hydra/overrides.yaml). Pass the "
            f"directory of the interrupted run, e.g. outputs/runs/bpr-ml-100k/<time>."
        )
    from omegaconf import OmegaConf

    saved = [str(o) for o in OmegaConf.load(saved_file)
             if not str(o).startswith(("resume=", "hydra.run.dir="))]
    new = [o for o in overrides if not o.startswith("resume=")]
    if "-m" in new or "--multirun" in new:
        raise ConfigError("resume= resumes one run; to resume a sweep, rerun it with the same "
                          "hydra.sweep.dir (finished jobs are skipped)")
    return [*saved, *new, f"resume={run_dir}", f"hydra.run.dir={run_dir}"]


def compose_config(overrides: list[str] | None = None) -> DictConfig:
    """Compose the run config as ``recframe run`` would (for tests and notebooks)."""
    from hydra import compose, initialize_config_module

    register_searchpath_plugin()
    with initialize_config_module(config_module="recframe.conf", version_base="1.3"):
        return compose(config_name=CONFIG_NAME, overrides=list(overrides or []))


__all__ = ["compose_config", "register_searchpath_plugin", "run_hydra"]

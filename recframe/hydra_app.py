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

from recframe.errors import RecframeError

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
    """Run one job; return the monitored validation metric (for sweepers)."""
    from recframe.runner import run_experiment
    from recframe.summary import print_summary

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        results = run_experiment(cfg, run_dir)
    except RecframeError as exc:
        print(f"recframe: error: {exc}", file=sys.stderr)
        print(f"recframe: results with status 'failed' are in {run_dir}", file=sys.stderr)
        raise SystemExit(2) from None
    print_summary(results)
    monitor = results.get("protocol", {}).get("monitor", "").removeprefix("val/")
    value = results.get("metrics", {}).get("valid", {}).get(monitor)
    return float(value) if value is not None else None


def run_hydra(overrides: list[str]) -> None:
    """Run Hydra on ``overrides`` (``-m`` and ``--cfg`` flags included) without touching sys.argv.

    Keeping ``sys.argv`` as typed (``recframe run ...``) matters: Lightning's
    DDP launcher re-executes the command line for each extra rank.
    """
    from hydra._internal.utils import _run_hydra, get_args_parser

    register_searchpath_plugin()
    parser = get_args_parser()
    args: Any = parser.parse_args(overrides)
    _run_hydra(
        args=args,
        args_parser=parser,
        task_function=task_function,
        config_path=CONFIG_MODULE,
        config_name=CONFIG_NAME,
    )


def compose_config(overrides: list[str] | None = None) -> DictConfig:
    """Compose the run config as ``recframe run`` would (for tests and notebooks)."""
    from hydra import compose, initialize_config_module

    register_searchpath_plugin()
    with initialize_config_module(config_module="recframe.conf", version_base="1.3"):
        return compose(config_name=CONFIG_NAME, overrides=list(overrides or []))


__all__ = ["compose_config", "register_searchpath_plugin", "run_hydra"]

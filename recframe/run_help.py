"""``recframe run --help``: Hydra's help text, rendered without Hydra's slow group scan.

Hydra's own ``--help`` lists the options of each config group through a fresh
deep copy of the whole config repository per group (about 190 copies here, ~3 s
on 2 cores). This module composes the config once, lists groups and options from
one repository, and fills the same template (``hydra.help.template``), so the text
is the same as Hydra's (``tests/test_lazy_imports.py`` compares them). It imports
neither torch nor Lightning: the runner is imported only when a run starts.
"""

from __future__ import annotations

import copy
import string
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig, OmegaConf

HELP_FLAGS = ("-h", "--help")


def wants_help(args: list[str]) -> bool:
    """True for ``recframe run --help`` (not ``--hydra-help``, which Hydra renders)."""
    return any(a in HELP_FLAGS for a in args)


def config_groups(loader: Any, parent: str = "") -> dict[str, list[str]]:
    """Every config group below ``parent`` that holds configs -> its sorted options."""
    from hydra.core.object_type import ObjectType

    # One repository for all queries; Hydra's loader would copy it per query.
    repo: Any = getattr(loader, "repository", None)
    options: Callable[[str, Any], list[str]] = (
        repo.get_group_options if repo is not None
        else lambda group, kind: loader.get_group_options(group, kind))
    out: dict[str, list[str]] = {}
    for group in options(parent, ObjectType.GROUP):
        name = f"{parent}/{group}" if parent else group
        files = options(name, ObjectType.CONFIG)
        if files:
            out[name] = sorted(files)
        if options(name, ObjectType.GROUP):
            out.update(config_groups(loader, name))
    return dict(sorted(out.items()))


def format_groups(groups: dict[str, list[str]], hydra: bool) -> str:
    """``group: a, b, c`` lines, Hydra's compact format, for app or ``hydra/`` groups."""
    return "".join(
        f"{g}: {', '.join(opts)}\n" for g, opts in groups.items()
        if (g == "hydra" or g.startswith("hydra/")) == hydra
    )


def render_help(overrides: list[str], resolve: bool = False) -> str:
    """The text ``recframe run [OVERRIDES] --help`` prints."""
    from hydra import compose, initialize_config_module
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import get_args_parser
    from hydra.core.global_hydra import GlobalHydra

    from recframe.hydra_app import CONFIG_NAME, register_searchpath_plugin

    register_searchpath_plugin()
    with initialize_config_module(config_module="recframe.conf", version_base="1.3"):
        cfg: DictConfig = compose(config_name=CONFIG_NAME, overrides=overrides,
                                  return_hydra_config=True)
        template = str(cfg.hydra.help.template)
        loader = GlobalHydra.instance().config_loader()
        groups = config_groups(loader) if "CONFIG_GROUPS" in template else {}
    job_cfg = copy.deepcopy(cfg)
    with _open(job_cfg):
        del job_cfg["hydra"]
    fields: dict[str, Callable[[], str]] = {
        "FLAGS_HELP": lambda: Hydra.format_args_help(get_args_parser()),
        "HYDRA_CONFIG_GROUPS": lambda: format_groups(groups, hydra=True),
        "APP_CONFIG_GROUPS": lambda: format_groups(groups, hydra=False),
        "CONFIG": lambda: OmegaConf.to_yaml(job_cfg, resolve=resolve),
    }
    values = {k: make() for k, make in fields.items() if k in template}
    return string.Template(template).substitute(values)


def _open(cfg: DictConfig) -> Any:
    from omegaconf import open_dict

    return open_dict(cfg)

"""Misspelled config keys on the command line: the closest known key, before Hydra runs.

Hydra answers ``model.embeding_dim=64`` with "Key 'embeding_dim' is not in struct"
and a traceback hint. :func:`check_override_keys` composes the config once with the
group choices of the command line (the first value of a sweep), walks each dotted
override's path and, at the first part that does not exist, raises a
:class:`ConfigError` naming the closest existing key, as recframe does for columns,
metrics and plugin names.
"""

from __future__ import annotations

from collections.abc import Sequence

from omegaconf import DictConfig

from recframe.errors import ConfigError, closest


def _single(override) -> str:  # type: ignore[no-untyped-def]
    """The override as typed, with a sweep replaced by its first value."""
    if not override.is_sweep_override():
        return str(override.input_line)
    prefix = {"ADD": "+", "FORCE_ADD": "++", "DEL": "~"}.get(override.type.name, "")
    first = next(iter(override.sweep_string_iterator()))
    return f"{prefix}{override.key_or_group}={first}"


def check_override_keys(overrides: Sequence[str]) -> None:
    """Raise a :class:`ConfigError` with a "did you mean" for an override of a key that
    does not exist (an addition, ``+key=value``, is never checked). Overrides Hydra
    cannot parse or compose are left to Hydra's own message."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from recframe.hydra_app import compose_config

    plain = [o for o in overrides if not o.startswith("-")]
    try:
        parsed = OverridesParser.create().parse_overrides(plain)
    except Exception:  # noqa: BLE001 - Hydra reports syntax errors itself
        return
    parsed = [o for o in parsed if not o.is_hydra_override()]
    dotted = [o for o in parsed if "." in o.key_or_group and o.type.name == "CHANGE"]
    if not dotted:
        return
    groups = [_single(o) for o in parsed if "." not in o.key_or_group]
    try:
        cfg = compose_config(groups)
    except Exception:  # noqa: BLE001 - a bad group choice: Hydra lists the options
        return
    choices = {o.key_or_group: _single(o).split("=", 1)[1] for o in parsed
               if "." not in o.key_or_group}
    for override in dotted:
        node: object = cfg
        parts = override.key_or_group.split(".")
        for depth, part in enumerate(parts):
            if not isinstance(node, DictConfig) or node._is_none() or node._is_missing():
                break
            if part not in list(node.keys()):  # noqa: SIM118 - ``in`` is False for ??? values
                _raise_unknown(override, parts, depth, node, choices)
            node = node._get_node(part)  # no interpolation is resolved


def _raise_unknown(override, parts: list[str], depth: int, node: DictConfig,  # type: ignore[no-untyped-def]
                   choices: dict[str, str]) -> None:
    key = ".".join(parts)
    parent = ".".join(parts[:depth])
    known = [str(k) for k in node.keys()]  # noqa: SIM118 - keys with ??? values too
    hint = closest(parts[depth], known)
    where = f"`{parent}`" if parent else "the top level"
    group = parts[0]
    chosen = f" (with {group}={choices[group]})" if group in choices and depth else ""
    value = str(override.input_line).split("=", 1)[1] if "=" in str(override.input_line) else ""
    message = f"unknown config key `{key}`: {where}{chosen} has no key {parts[depth]!r}."
    if hint:
        message += f" Did you mean `{'.'.join([*parts[:depth], hint])}`?"
    message += (f" Keys of {where}: {', '.join(sorted(known))}. To add a new key on purpose, "
                f"prefix it with +: `+{key}={value}`.")
    raise ConfigError(message)

"""Errors a user can hit. Each says what went wrong, where, and how to fix it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class RecframeError(Exception):
    """Base class: an error caused by input or configuration, not by a bug.

    The CLI prints these without a traceback and exits with status 2.
    """


class ConfigError(RecframeError):
    """A config value is missing, of the wrong type, or out of range."""


class DataError(RecframeError):
    """Input data is missing, malformed or unusable."""


class UnknownNameError(ConfigError, KeyError):
    """A plugin, metric or other registered name does not exist."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class DuplicateNameError(RecframeError):
    """Two plugins registered the same name."""


class BackendError(RecframeError):
    """An external service a stage relies on (e.g. an LLM endpoint) failed for good:
    unreachable, timing out after every retry, or answering with an error."""


class PluginLoadError(RecframeError):
    """An installed plugin failed to import or register."""


def closest(name: str, choices: Iterable[str]) -> str | None:
    """Return the choice closest to ``name`` (difflib ratio), if any is close."""
    matches = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.5)
    return matches[0] if matches else None


def unknown_name_message(kind: str, name: str, available: Iterable[str], key: str = "") -> str:
    """Build the message for an unknown name: what is available and the closest one."""
    available = sorted(available)
    where = f" (config key `{key}`)" if key else ""
    msg = f"unknown {kind} {name!r}{where}. Available: {', '.join(available) or '(none)'}."
    suggestion = closest(name, available)
    if suggestion:
        msg += f" Did you mean {suggestion!r}?"
    if kind in {"model", "dataset", "metric", "preprocessor", "splitter"}:
        msg += " Run `recframe plugins` to see every installed plugin."
    return msg

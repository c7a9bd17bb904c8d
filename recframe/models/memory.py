"""A model's memory need checked against the machine before it is built (E940).

Closed-form models that hold item x item state (``ease``, ``itemknn``) know their size
from the data's shape alone; :func:`check_fits_in_memory` turns "it would not fit" into
a ConfigError naming the formula and the fix, before anything is allocated, instead of
the operating system killing the run halfway (docs/scaling.md lists every formula).
"""

from __future__ import annotations

from recframe.errors import ConfigError


def available_memory() -> int:
    """Bytes of memory the system can give a process now (psutil's ``available``)."""
    import psutil

    return int(psutil.virtual_memory().available)


def check_fits_in_memory(model: str, need: int, formula: str, fix: str,
                         available: int | None = None) -> None:
    """ConfigError (E940) when ``need`` bytes exceed the memory available now."""
    available = available_memory() if available is None else available
    if need > available:
        raise ConfigError(
            f"model {model!r} needs about {need / 2**30:.1f} GiB of memory ({formula}), "
            f"but {available / 2**30:.1f} GiB is available on this machine. {fix}")

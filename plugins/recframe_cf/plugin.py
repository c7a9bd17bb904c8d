"""Entry point module of recframe_cf."""

from recframe.api import hookimpl  # noqa: F401

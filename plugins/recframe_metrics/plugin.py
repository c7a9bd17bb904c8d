"""Entry point module of recframe_metrics."""

from recframe.api import hookimpl  # noqa: F401

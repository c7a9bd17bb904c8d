"""Entry point module of recframe_hybrid."""

from recframe.api import hookimpl  # noqa: F401

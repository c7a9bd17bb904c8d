"""Entry point module of recframe_splitters."""

from recframe.api import hookimpl  # noqa: F401

"""Entry point module of recframe_seq."""

from recframe.api import hookimpl  # noqa: F401

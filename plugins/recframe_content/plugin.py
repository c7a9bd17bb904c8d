"""Entry point module of recframe_content."""

from recframe.api import hookimpl  # noqa: F401

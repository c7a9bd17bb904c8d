"""Entry point module of recframe_mlp."""

from recframe.api import hookimpl  # noqa: F401

"""Entry point module of recframe_preprocess."""

from recframe.api import hookimpl  # noqa: F401

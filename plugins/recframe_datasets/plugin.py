"""Entry point module of recframe_datasets."""

from recframe.api import hookimpl  # noqa: F401

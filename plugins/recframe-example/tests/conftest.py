"""Make the package importable when it is not installed (e.g. run from recframe's own suite).

Installed (``pip install -e plugins/recframe-example``), the entry point registers the
plugin with every recframe process; otherwise ``recframe.testing.plugin_manager`` adds
the module to an isolated manager for these tests.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

if importlib.util.find_spec("recframe_example") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


@pytest.fixture(scope="session")
def pm():
    """The plugin manager holding this plugin (the default one when it is installed)."""
    import recframe_example.plugin
    from recframe.testing import plugin_manager

    return plugin_manager(recframe_example.plugin)

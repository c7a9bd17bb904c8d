"""The README's plugin example is real code: it registers and runs."""

from __future__ import annotations

import re
import types
from pathlib import Path

from recframe.plugin import PluginManager
from recframe.runner import run_experiment

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_plugin_example_runs(compose, tmp_path):
    text = README.read_text()
    section = text[text.index("## Writing a plugin"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    module = types.ModuleType("readme_plugin")
    exec(compile(code, "README.md", "exec"), module.__dict__)
    pm = PluginManager([module])
    assert pm.models.plugin_of("item_index") == "readme_plugin"
    results = run_experiment(compose("model=pop", "model.name=item_index"), tmp_path, pm=pm)
    assert results["status"] == "ok" and results["metrics"]["test"]["ndcg@10"] >= 0

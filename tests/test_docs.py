"""Every hook has a doc entry (the generated reference in docs/plugins.md is current) and
a test (an in-test plugin implementing it is seen by the manager)."""

from __future__ import annotations

import inspect
import subprocess
import sys
import types

import pytest

from recframe.docs_gen import DOC_PATH, END, START, hook_names, hook_reference, is_current, update
from recframe.plugin import PluginManager, hookimpl
from recframe.plugin import hookspecs as hookspecs_module
from recframe.plugin.manager import KINDS

HOOKS = hook_names()
REGISTER_HOOKS = {hook: (attr, spec_type) for attr, (hook, spec_type) in KINDS.items()}


def test_hook_reference_in_docs_is_current():
    assert is_current(DOC_PATH), (
        f"the hook reference in {DOC_PATH} is stale: the hook or spec docstrings changed. "
        f"Run `python -m recframe.docs_gen --write` and commit docs/plugins.md."
    )


def test_check_flag_reports_a_stale_file(tmp_path):
    stale = tmp_path / "plugins.md"
    stale.write_text(f"intro\n{START}\nold text\n{END}\noutro\n")
    assert not is_current(stale)
    out = subprocess.run([sys.executable, "-m", "recframe.docs_gen", "--check", "--path",
                          str(stale)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "--write" in out.stderr
    fresh = update(stale.read_text())
    assert fresh.startswith("intro\n") and fresh.endswith("outro\n") and "old text" not in fresh


def test_every_hookspec_is_found():
    declared = [n for n in dir(hookspecs_module) if n.startswith("recframe_")]
    assert sorted(HOOKS) == sorted(declared)
    assert set(REGISTER_HOOKS) | {"recframe_config_searchpath"} == set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_doc_entry(hook):
    fn = getattr(hookspecs_module, hook)
    assert len(inspect.getdoc(fn) or "") > 40, f"{hook} needs a docstring (the hook reference)"
    reference = hook_reference()
    assert f"#### `{hook}`" in reference and f"def {hook}(" in reference
    assert f"#### `{hook}`" in DOC_PATH.read_text(encoding="utf-8")


def test_specs_are_documented_with_their_fields():
    reference = hook_reference()
    for _, spec_type in KINDS.values():
        assert f"#### `{spec_type.__name__}`" in reference
        assert spec_type.__doc__ and "| `name` | `str` | required |" in reference


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_called(hook):
    """An in-test plugin implementing the hook is seen by an isolated manager."""
    if hook == "recframe_config_searchpath":
        def impl():
            return "file:///tmp/toy-conf"
    else:
        attr, spec_type = REGISTER_HOOKS[hook]

        def impl(registry):
            registry.add(spec_type("toy_thing", lambda *args: None))
    plugin = types.SimpleNamespace(**{hook: hookimpl(impl)})
    plugin.__name__ = "toy_plugin"
    pm = PluginManager([plugin], load_entry_points=False)
    if hook == "recframe_config_searchpath":
        assert pm.searchpaths() == [("toy_plugin", "file:///tmp/toy-conf")]
    else:
        registry = getattr(pm, attr)
        assert registry.names() == ["toy_thing"] and registry.plugin_of("toy_thing") == "toy_plugin"
        assert pm.registered_by("toy_plugin") == {attr: ["toy_thing"]}


def test_plugins_md_click_model_example_runs(tmp_path):
    """The click-model example in docs/plugins.md registers, trains under the CTR
    protocol and beats a coin flip on a planted click log."""
    import re
    from pathlib import Path

    from recframe.hydra_app import compose_config
    from recframe.plugin import PluginManager
    from recframe.runner import run_experiment

    text = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text()
    # hand-written, before the generated hook reference
    section = text[text.index("## Fields and click models"):
                   text.index("<!-- hook-reference:start -->")]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    module = types.ModuleType("docs_fm_plugin")
    exec(compile(code, "docs/plugins.md", "exec"), module.__dict__)
    pm = PluginManager([module])
    cfg = compose_config(["dataset=synthetic_ctr", "dataset.n_rows=8000", "logger=none",
                          "model=fm", "model.name=tiny_fm", "trainer.max_epochs=3",
                          "model.lr=0.01", "model.batch_size=512"])
    results = run_experiment(cfg, tmp_path, pm=pm)
    assert results["protocol"]["kind"] == "ctr"
    assert results["metrics"]["test"]["auc"] > 0.6

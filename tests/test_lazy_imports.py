"""Startup stays cheap: importing the API, loading every plugin and ``recframe run --help``
import neither torch nor Lightning (issue 20, part 6).

The checks assert which modules are absent from ``sys.modules`` in a fresh
interpreter, not timings (``experiments/bench/startup.py`` measures those).
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import recframe.api as api
from recframe.errors import PluginLoadError
from recframe.plugin import PluginManager, hookimpl, lazy
from recframe.plugin.lazyref import Lazy
from recframe.plugin.specs import ModelSpec

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "lightning", "pandas")


def heavy_modules_after(code: str) -> list[str]:
    """Run ``code`` in a fresh interpreter; return which of HEAVY it imported."""
    probe = textwrap.dedent(code) + textwrap.dedent(f"""
        import sys
        print(",".join(m for m in {HEAVY!r} if m in sys.modules))
    """)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    return [m for m in line.split(",") if m]


def test_import_api_imports_no_torch_lightning_or_pandas():
    assert heavy_modules_after("import recframe.api") == []


def test_star_import_of_the_plugin_names_stays_light():
    code = "from recframe.api import ModelSpec, MetricSpec, DatasetSpec, hookimpl, lazy"
    assert heavy_modules_after(code) == []


def test_loading_every_installed_plugin_imports_no_torch():
    """What ``recframe plugins`` does: every entry point loads, every hook registers."""
    code = """
        from recframe.plugin.manager import PluginManager
        pm = PluginManager()
        assert "bpr" in pm.models and "ndcg" in pm.metrics and "random" in pm.splitters
        assert "example" in pm.models  # the out-of-tree plugin too
    """
    assert heavy_modules_after(code) == []


def test_plugins_command_imports_no_torch():
    code = """
        import io
        from rich.console import Console
        from recframe.cli import plugins_command
        plugins_command(Console(file=io.StringIO()))
    """
    assert heavy_modules_after(code) == []


def test_run_help_imports_no_torch_or_lightning():
    code = """
        import contextlib, io
        from recframe.cli import main
        with contextlib.redirect_stdout(io.StringIO()) as out:
            main(["run", "--help"])
        assert "== Configuration groups ==" in out.getvalue()
    """
    assert not {"torch", "lightning"} & set(heavy_modules_after(code))


def test_asking_for_a_model_imports_its_module():
    """The lazy path really is taken: getting the spec imports torch (a check of the probe)."""
    code = """
        from recframe.plugin.manager import PluginManager
        PluginManager().models.get("bpr")
    """
    assert "torch" in heavy_modules_after(code)


# --------------------------------------------------------------- recframe.api contents

def _type_checking_names() -> dict[str, str]:
    tree = ast.parse((ROOT / "recframe" / "api.py").read_text())
    names: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom)
                for alias in imp.names:
                    names[alias.asname or alias.name] = str(imp.module)
    return names


def test_api_lists_agree():
    """``__all__``, the lazy table and the TYPE_CHECKING imports name the same things."""
    static = _type_checking_names()
    assert static == api._EXPORTS
    assert sorted(api.__all__) == sorted(static)
    assert len(api.__all__) == len(set(api.__all__))


@pytest.mark.parametrize("name", sorted(api.__all__))
def test_every_exported_name_resolves_to_its_source(name):
    value = getattr(api, name)
    module = importlib.import_module(api._EXPORTS[name])
    expected = getattr(module, name, None)
    if expected is None:  # a submodule, e.g. text_encoders
        expected = importlib.import_module(f"{api._EXPORTS[name]}.{name}")
    assert value is expected
    assert name in dir(api)


def test_unknown_api_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="has no attribute 'NoSuchThing'"):
        api.NoSuchThing  # noqa: B018
    with pytest.raises(ImportError):
        exec("from recframe.api import NoSuchThing", {})


# ------------------------------------------------------------------------ lazy refs

def _plugin(register):
    import types

    plugin = types.SimpleNamespace(recframe_register_models=hookimpl(register))
    plugin.__name__ = "toy"
    return plugin


def test_registry_get_swaps_a_lazy_reference_for_the_object():
    from recframe.data.sorting import stable_argsort

    def register(registry):
        registry.add(ModelSpec(name="toy", build=lazy("recframe.data.sorting:stable_argsort"),
                               description="d"))

    pm = PluginManager([_plugin(register)], load_entry_points=False)
    assert pm.models.description("toy") == "d"
    spec = pm.models.get("toy")
    assert spec.build is stable_argsort
    assert pm.models.get("toy") is spec  # resolved once


def test_lazy_is_callable_and_names_dotted_attributes():
    ref = lazy("recframe.plugin.lazyref:Lazy.resolve")
    assert ref.resolve() is Lazy.resolve
    assert lazy("os.path:join")("a", "b") == "a/b" or sys.platform == "win32"
    assert repr(ref) == "lazy('recframe.plugin.lazyref:Lazy.resolve')"


@pytest.mark.parametrize("target", ["os.path.join", "os.path:", ":join", "os path:join", 3])
def test_malformed_targets_fail_when_registered(target):
    with pytest.raises(PluginLoadError, match="a lazy reference is 'package.module:attribute'"):
        lazy(target)  # type: ignore[arg-type]


def test_a_missing_attribute_names_the_plugin_and_the_spec():
    def register(registry):
        registry.add(ModelSpec(name="toy", build=lazy("recframe.data.sorting:no_such")))

    pm = PluginManager([_plugin(register)], load_entry_points=False)
    with pytest.raises(PluginLoadError,
                       match=r"plugin 'toy', ModelSpec 'toy', field 'build'.*no_such"):
        pm.models.get("toy")


def test_every_builtin_lazy_reference_resolves():
    """No typo hides behind a lazy reference: resolve every registered spec of every kind."""
    from recframe.plugin.manager import KINDS

    pm = PluginManager()
    for attr in KINDS:
        registry = getattr(pm, attr)
        for name in registry.names():
            spec = registry.get(name)
            for value in vars(spec).values():
                assert not isinstance(value, Lazy), (attr, name)


# ---------------------------------------------------------------------- run --help

@pytest.mark.slow
def test_run_help_matches_hydras_own_help(capsys):
    """Our fast ``--help`` prints what Hydra's would, for the default and an override."""
    from hydra._internal.utils import _run_hydra, get_args_parser

    from recframe.hydra_app import CONFIG_MODULE, CONFIG_NAME, register_searchpath_plugin
    from recframe.run_help import render_help

    register_searchpath_plugin()
    for overrides in ([], ["model=sasrec"]):
        parser = get_args_parser()
        args = parser.parse_args([*overrides, "--help"])
        with pytest.raises(SystemExit):
            _run_hydra(args=args, args_parser=parser, task_function=lambda cfg: None,
                       config_path=CONFIG_MODULE, config_name=CONFIG_NAME)
        hydra_text = capsys.readouterr().out
        assert hydra_text == render_help(overrides) + "\n"


def test_testing_kit_accepts_a_lazy_spec_equal_to_the_installed_one():
    """check_metric(spec) with the installed spec's lazy form finds the installed one."""
    from recframe.api import MetricSpec
    from recframe.testing import check_metric

    spec = MetricSpec(name="rprecision", fn=lazy("recframe_example.metric:rprecision"),
                      description="Truncated R-precision@K: hits in the top min(|R_u|, K) / "
                                  "min(|R_u|, K).")
    check_metric(spec)

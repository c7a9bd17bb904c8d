"""`recframe new-plugin NAME` writes a plugin package that registers, composes and passes
its own tests, on PYTHONPATH and installed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

from recframe.scaffold import ScaffoldError, new_plugin, new_plugin_command

REPO = Path(__file__).resolve().parents[1]


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "WANDB_MODE": "offline", **extra}


def test_writes_a_complete_skeleton(tmp_path):
    root = new_plugin("myrec", tmp_path)
    assert root == tmp_path / "myrec"
    for rel in ("pyproject.toml", "README.md", "myrec/__init__.py", "myrec/plugin.py",
                "myrec/conf/__init__.py", "myrec/conf/model/myrec.yaml",
                "tests/test_myrec.py"):
        assert (root / rel).is_file(), rel
    project = (root / "pyproject.toml").read_text()
    assert '[project.entry-points.recframe]\nmyrec = "myrec.plugin"' in project
    assert 'include = ["myrec*"]' in project and '"*" = ["*.yaml"]' in project
    assert yaml.safe_load((root / "myrec/conf/model/myrec.yaml").read_text())["name"] == "myrec"
    for py in root.rglob("*.py"):
        compile(py.read_text(), str(py), "exec")


@pytest.mark.parametrize("bad", ["MyRec", "1rec", "my-rec", "my rec", "", "class", "json",
                                 "recframe_x", "torch"])
def test_rejects_unusable_names(tmp_path, bad):
    with pytest.raises(ScaffoldError, match=repr(bad).strip("'") or "name"):
        new_plugin(bad, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_overwrite(tmp_path):
    (tmp_path / "myrec").mkdir()
    (tmp_path / "myrec" / "keep.txt").write_text("mine")
    with pytest.raises(ScaffoldError, match="already exists"):
        new_plugin("myrec", tmp_path)
    assert (tmp_path / "myrec" / "keep.txt").read_text() == "mine"


def test_command_prints_next_steps(tmp_path, capsys):
    assert new_plugin_command(["fancy_mf", "--dest", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "pip install -e" in out and "model=fancy_mf" in out
    assert "class FancyMfModel(RecModel)" in (tmp_path / "fancy_mf/fancy_mf/plugin.py").read_text()


def test_generated_plugin_registers_and_composes(tmp_path):
    root = new_plugin("myrec", tmp_path)
    script = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "import myrec.plugin\n"
        "from recframe.plugin import PluginManager\n"
        "from recframe.testing import compose\n"
        "pm = PluginManager([myrec.plugin], load_entry_points=False)\n"
        "assert pm.models.names() == ['myrec'], pm.models.names()\n"
        "assert pm.searchpaths() == [('myrec.plugin', 'pkg://myrec.conf')]\n"
        "cfg = compose('model=myrec', pm=pm)\n"
        "print(cfg.model.name, cfg.model.embedding_dim)\n"
    )
    out = subprocess.run([sys.executable, "-c", script, str(root)], capture_output=True,
                         text=True, cwd=tmp_path, env=_env(), timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split()[-2:] == ["myrec", "32"]


def test_generated_tests_pass_on_pythonpath(tmp_path):
    root = new_plugin("myrec", tmp_path)
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-m", "not slow", "-p", "no:cacheprovider",
         str(root / "tests")],
        capture_output=True, text=True, cwd=root, env=_env(PYTHONPATH=str(root)), timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "1 passed" in out.stdout


def _overlay_venv(path: Path) -> Path:
    """A throwaway venv that sees this environment's packages but installs into its own.

    Its site-packages holds a .pth that adds ours as a site dir (so our editable
    install of recframe works there too); `pip install` writes only to the new venv.
    """
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True,
                   timeout=120)
    python = path / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; "
                           "print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    ours = sysconfig.get_paths()["purelib"]
    (Path(site) / "_recframe_parent.pth").write_text(
        f"import site; site.addsitedir({ours!r})\n")
    return python


@pytest.mark.slow
def test_full_flow_installed_in_a_fresh_venv(tmp_path):
    """new-plugin -> pip install -e -> recframe plugins -> recframe run -> its own tests."""
    root = new_plugin("myrec", tmp_path)
    python = _overlay_venv(tmp_path / "venv")
    env = _env(RECFRAME_OUTPUT_DIR=str(tmp_path / "out"))
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "-e", str(root)],
                   check=True, cwd=tmp_path, env=env, timeout=300)
    plugins = subprocess.run([str(python), "-m", "recframe.cli", "plugins"],
                             capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert plugins.returncode == 0, plugins.stderr
    assert "myrec (myrec 0.1.0)" in plugins.stdout and "pkg://myrec.conf" in plugins.stdout
    run = subprocess.run([str(python), "-m", "recframe.cli", "run", "model=myrec",
                          "dataset=synthetic", "trainer.max_epochs=1", "logger=none"],
                         capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(next((tmp_path / "out").rglob("results.json")).read_text())
    assert results["status"] == "ok" and results["config"]["model"]["name"] == "myrec"
    tests = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                           capture_output=True, text=True, cwd=root, env=env, timeout=600)
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-3000:]
    assert "2 passed" in tests.stdout
    # nothing leaked into this environment
    assert "myrec" not in subprocess.run(
        [sys.executable, "-m", "pip", "list", "--format=freeze"],
        capture_output=True, text=True, check=True).stdout


def _cli_has_new_plugin() -> bool:
    from recframe import cli

    return "new-plugin" in cli.COMMANDS


@pytest.mark.skipif(not _cli_has_new_plugin(), reason="`recframe new-plugin` not wired yet")
def test_cli_new_plugin(tmp_path, capsys):
    from recframe.cli import main

    assert main(["new-plugin", "myrec", "--dest", str(tmp_path)]) == 0
    assert (tmp_path / "myrec" / "myrec" / "plugin.py").is_file()
    assert main(["new-plugin", "MyRec", "--dest", str(tmp_path)]) == 2
    assert "lowercase" in " ".join(capsys.readouterr().err.split())  # rich may wrap lines
    assert main(["new-plugin", "myrec", "--dest", str(tmp_path)]) == 2
    assert "already exists" in " ".join(capsys.readouterr().err.split())


@pytest.mark.parametrize("name,why", [
    ("bpr", "already registered as a model by plugin 'cf'"),
    ("ndcg", "already registered as a metric by plugin 'metrics'"),
    ("recframe_vae", "starts with 'recframe'"),
    ("json", "is a standard-library module"),
])
def test_refusals_say_why_and_what_is_allowed(tmp_path, name, why):
    with pytest.raises(ScaffoldError) as info:
        new_plugin(name, tmp_path)
    text = str(info.value)
    assert why in text and "Allowed: a lowercase Python identifier" in text
    suggestion = text.rsplit("For example: ", 1)[1].strip("'")
    new_plugin(suggestion, tmp_path)  # the suggested name is accepted
    assert not (tmp_path / name).exists()

"""The documentation site: the generated configuration reference is current and complete,
every page is in the navigation, the build hook rewrites repository links, and (slow)
``mkdocs build --strict`` succeeds, so a broken link or missing reference fails CI."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from recframe import config_docs

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


# ------------------------------------------------------------------ configuration reference

def test_config_reference_is_current():
    assert config_docs.OUT.read_text(encoding="utf-8") == config_docs.render(), (
        "docs/reference/config.md is out of date: run `python -m recframe.config_docs --write`")


def test_check_flag_reports_a_stale_page(tmp_path, monkeypatch, capsys):
    stale = tmp_path / "config.md"
    stale.write_text("# old\n")
    monkeypatch.setattr(config_docs, "OUT", stale)
    monkeypatch.setattr(config_docs, "ROOT", tmp_path)
    assert config_docs.main(["--check"]) == 1
    assert "is out of date" in capsys.readouterr().err
    assert config_docs.main(["--write"]) == 0 and config_docs.main(["--check"]) == 0


def test_every_group_and_option_hydra_sees_is_documented():
    """Independent of the generator's own walk: the groups and options Hydra lists from
    recframe's conf/ (not plugins' search paths) each have a section."""
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from recframe.run_help import config_groups

    page = config_docs.OUT.read_text(encoding="utf-8")
    with initialize_config_module(config_module="recframe.conf", version_base="1.3"):
        groups = config_groups(GlobalHydra.instance().config_loader())
    checked = 0
    for group, options in groups.items():
        if group == "hydra" or group.startswith("hydra/"):
            continue
        assert f"\n## {group}\n" in page, group
        for option in options:
            if (ROOT / "conf" / group / f"{option}.yaml").exists():
                assert f"\n### {group}={option}\n" in page, (group, option)
                checked += 1
    assert checked > 80


def test_comments_become_descriptions(tmp_path):
    path = tmp_path / "toy.yaml"
    path.write_text(
        "# A toy option.\n"
        "# Second line.\n"
        "name: toy\n"
        "dim: 8          # factors per item\n"
        "                # (continued)\n"
        "# the budget\n"
        "training:\n"
        "  epochs: 3     # at most\n"
        "steps:\n"
        "  - name: a     # not a key of the option\n"
        "ratio: '#1'     # a hash inside quotes\n"
    )
    opt = config_docs.parse_option(path, "model")
    assert opt.description == "A toy option.\nSecond line."
    keys = {k.path: k.comment for k in opt.keys}
    assert keys == {"name": [], "dim": ["factors per item", "(continued)"],
                    "training": ["the budget"], "training.epochs": ["at most"], "steps": [],
                    "ratio": ["a hash inside quotes"]}
    assert opt.package == "model"
    lines = config_docs._option_section(opt, "### model=toy")
    assert "| `model.dim` | `8` | factors per item (continued) |" in lines
    assert "| `model.ratio` | `#1` | a hash inside quotes |" in lines


# --------------------------------------------------------------------------- navigation

class _Loader(yaml.SafeLoader):
    """mkdocs.yml with its ``!!python/name:`` tags read as plain strings."""


_Loader.add_multi_constructor("tag:yaml.org,2002:python/name:",
                              lambda loader, suffix, node: suffix)


def _nav_pages(nav) -> list[str]:
    out = []
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        out += _nav_pages(value) if isinstance(value, list) else [value]
    return out


def test_every_page_is_in_the_navigation():
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=_Loader)  # noqa: S506
    nav = _nav_pages(config["nav"])
    generated = {"index.md", "benchmarks.md"}  # added by docs/_hooks/site.py
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")
             if not p.relative_to(DOCS).as_posix().startswith("_hooks/")}
    assert sorted(pages - set(nav)) == []
    assert sorted(set(nav) - pages - generated) == []


# --------------------------------------------------------------------------- build hook

@pytest.fixture(scope="module")
def hook():
    pytest.importorskip("mkdocs")
    spec = importlib.util.spec_from_file_location("site_hook", DOCS / "_hooks" / "site.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("line", "source", "page", "expected"), [
    # README (the home page): docs pages become site pages, images are copied
    ("see [errors](docs/errors.md#e401-x).", "README.md", "index.md",
     "see [errors](errors.md#e401-x)."),
    ("![plot](experiments/results/a/b.png)", "README.md", "index.md",
     "![plot](repo/experiments/results/a/b.png)"),
    # other repository files become their path in code
    ("[`plugins/recframe-example/`](../plugins/recframe-example/)", "docs/plugins.md",
     "plugins.md", "`plugins/recframe-example/`"),
    ("in [the results](../experiments/r/README.md).", "docs/llm_rerank.md", "llm_rerank.md",
     "in the results (`experiments/r/README.md`)."),
    # links between docs pages, external links, anchors and code stay as they are
    ("[a](../plugins.md#x) [b](https://x.org/y.md) [c](#here) `[d](e.md)`",
     "docs/tutorials/t.md", "tutorials/t.md",
     "[a](../plugins.md#x) [b](https://x.org/y.md) [c](#here) `[d](e.md)`"),
])
def test_hook_rewrites_repository_links(hook, line, source, page, expected):
    assert hook._rewrite_line(line, source, page) == expected


def test_hook_leaves_code_blocks_alone(hook):
    class Page:
        class file:  # noqa: N801
            src_uri = "index.md"

    text = "[x](docs/a.md)\n```python\n[x](docs/a.md)\n```\n"
    expected = "[x](a.md)\n```python\n[x](docs/a.md)\n```\n"
    assert hook.on_page_markdown(text, Page, None, None) == expected


def test_hook_drops_sphinx_roles_of_docstrings(hook):
    html = "returns a :class:<code>RecModel</code>; see :func:<code>lazy</code> and a:b"
    assert hook.on_page_content(html, None, None, None) == (
        "returns a <code>RecModel</code>; see <code>lazy</code> and a:b")


# ---------------------------------------------------------------------------------- build

@pytest.mark.slow
def test_site_builds_in_strict_mode(tmp_path):
    pytest.importorskip("mkdocs")
    out = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert out.returncode == 0, out.stderr[-4000:]
    assert (tmp_path / "index.html").exists()
    api = (tmp_path / "reference" / "api" / "index.html").read_text()
    assert 'id="recframe.api.ModelSpec"' in api and 'id="recframe.api.RecModel"' in api
    assert ":class:<code>" not in api
    assert (tmp_path / "tutorials" / "model_plugin" / "index.html").exists()

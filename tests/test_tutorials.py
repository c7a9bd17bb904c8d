"""The tutorials of the documentation site run: every fenced ``python`` block of
``docs/tutorials/*.md``, in order, one namespace per page, in a temporary directory.

So a tutorial cannot rot: an API change that breaks one fails here. The dataset
tutorial is skipped (``tests/test_tutorial_dataset_plugin.py`` runs it). Pages whose
blocks train models take a few seconds each on tiny data; the ones listed in ``SLOW``
take longer and carry the ``slow`` marker.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs" / "tutorials"
#: tested elsewhere (the contracts branch's own test)
SKIP = {"dataset_plugin.md"}
#: pages that run longer than the fast suite allows (none yet: each takes a few seconds)
SLOW: set[str] = set()
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def code_blocks(page: Path) -> list[str]:
    return BLOCK.findall(page.read_text(encoding="utf-8"))


def pages() -> list:
    out = []
    for page in sorted(DOCS.glob("*.md")):
        if page.name in SKIP:
            continue
        marks = [pytest.mark.slow] if page.name in SLOW else []
        out.append(pytest.param(page, id=page.stem, marks=marks))
    return out


def test_every_tutorial_has_code():
    for param in pages():
        assert code_blocks(param.values[0]), f"{param.values[0].name} has no python block"


@pytest.mark.parametrize("page", pages())
def test_tutorial_runs(page: Path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": f"tutorial_{page.stem}"}
    for i, code in enumerate(code_blocks(page)):
        exec(compile(code, f"{page.name} (python block {i + 1})", "exec"), namespace)

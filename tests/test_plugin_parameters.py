"""docs/plugin_parameters.md: its examples run, and its table lists exactly the
validation helpers recframe.api exports."""

from __future__ import annotations

import re
from pathlib import Path

import recframe.api as api
import recframe.params as params

DOC = Path(__file__).resolve().parents[1] / "docs" / "plugin_parameters.md"


def test_examples_run():
    blocks = re.findall(r"^```python\n(.*?)^```", DOC.read_text(encoding="utf-8"),
                        flags=re.S | re.M)
    assert len(blocks) == 2
    for i, block in enumerate(blocks):
        exec(compile(block, f"{DOC.name}[block {i}]", "exec"), {"__name__": "doc"})  # noqa: S102


def test_table_lists_every_exported_helper():
    text = DOC.read_text(encoding="utf-8").split("<!-- helpers -->", 1)[1]
    documented = set(re.findall(r"^\| `(\w+)\(", text, flags=re.M))
    exported = {name for name in api.__all__
                if getattr(getattr(api, name), "__module__", "") == params.__name__}
    assert documented == exported
    for name in exported:  # each has a docstring
        assert (getattr(api, name).__doc__ or "").strip(), name

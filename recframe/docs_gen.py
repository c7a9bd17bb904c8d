"""Generate the hook reference of ``docs/plugins.md`` from the hook specs' docstrings.

The docstrings in :mod:`recframe.plugin.hookspecs` and the spec dataclasses in
:mod:`recframe.plugin.specs` are the single source; ``docs/plugins.md`` keeps
a generated copy between the markers :data:`START` and :data:`END`::

    python -m recframe.docs_gen            # print the reference
    python -m recframe.docs_gen --write    # refresh docs/plugins.md
    python -m recframe.docs_gen --check    # exit 1 if docs/plugins.md is stale
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from recframe.data.fields import FieldSpec
from recframe.eval.evaluator import GlobalInput, MetricInput
from recframe.eval.pointwise import PointwiseInput
from recframe.plugin import hookspecs, specs

START = "<!-- hook-reference:start -->"
END = "<!-- hook-reference:end -->"
DOC_PATH = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"
SPEC_CLASSES: tuple[type, ...] = (specs.DatasetSpec, specs.PreprocessorSpec,
                                  specs.SplitterSpec, specs.ModelSpec, specs.MetricSpec,
                                  specs.LLMBackendSpec)
INPUT_CLASSES: tuple[type, ...] = (MetricInput, GlobalInput, PointwiseInput)
#: what feature-aware models read from ``DataInfo.fields``
DATA_CLASSES: tuple[type, ...] = (FieldSpec,)
_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")


def _markdown(doc: str) -> str:
    """reST-flavoured docstring -> Markdown: roles and ````code```` become `code`."""
    doc = _ROLE.sub(r"`\1`", doc)
    doc = doc.replace("``", "`")
    return re.sub(r"::\n", ":\n", doc)


def hook_names() -> list[str]:
    """Every hook spec in :mod:`recframe.plugin.hookspecs`, in source order."""
    return [name for name, _ in _hooks()]


def _hooks() -> list[tuple[str, Callable[..., Any]]]:
    found = [(name, fn) for name, fn in vars(hookspecs).items()
             if callable(fn) and hasattr(fn, f"{hookspecs.hookspec.project_name}_spec")]
    return sorted(found, key=lambda item: item[1].__code__.co_firstlineno)


def _annotation(value: Any) -> str:
    if value is inspect.Parameter.empty:
        return ""
    return value if isinstance(value, str) else inspect.formatannotation(value)


def _signature(name: str, fn: Callable[..., Any]) -> str:
    sig = inspect.signature(fn)
    params = []
    for p in sig.parameters.values():
        ann = _annotation(p.annotation)
        params.append(f"{p.name}: {ann}" if ann else p.name)
    ret = _annotation(sig.return_annotation)
    return f"def {name}({', '.join(params)})" + (f" -> {ret}" if ret else "")


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _default(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        return f"`{f.default!r}`"
    if f.default_factory is not dataclasses.MISSING:
        return f"`{f.default_factory()!r}`"
    return "required"


def _dataclass_section(cls: type) -> list[str]:
    lines = [f"#### `{cls.__name__}`", "", _markdown(inspect.getdoc(cls) or ""), "",
             "| field | type | default |", "|---|---|---|"]
    for f in dataclasses.fields(cls):
        if f.name.startswith("_"):
            continue
        lines.append(f"| `{f.name}` | `{_cell(_annotation(f.type))}` | {_cell(_default(f))} |")
    return [*lines, ""]


def hook_reference() -> str:
    """The hook reference as Markdown: every hook's signature and docstring, then the
    spec dataclasses plugins register and the inputs metrics receive."""
    lines = [
        "## Hook reference",
        "",
        "Generated from the docstrings of `recframe/plugin/hookspecs.py`, "
        "`recframe/plugin/specs.py` and `recframe/eval/evaluator.py` by "
        "`python -m recframe.docs_gen --write`; edit those docstrings, not this section.",
        "",
        _markdown(inspect.getdoc(hookspecs) or ""),
        "",
        "### Hooks",
        "",
    ]
    for name, fn in _hooks():
        lines += [f"#### `{name}`", "", "```python", _signature(name, fn), "```", "",
                  _markdown(inspect.getdoc(fn) or "(undocumented)"), ""]
    lines += ["### Specs", "", "What the registration hooks pass to `registry.add(...)`, "
              "all importable from `recframe.api`.", ""]
    for cls in SPEC_CLASSES:
        lines += _dataclass_section(cls)
    lines += ["### Metric inputs", "", "What a metric function receives "
              "(`recframe.api.MetricInput`, `recframe.api.GlobalInput`; under the CTR "
              "protocol `recframe.api.PointwiseInput`).", ""]
    for cls in INPUT_CLASSES:
        lines += _dataclass_section(cls)
    lines += ["### Fields", "", "What a feature-aware model reads from `DataInfo.fields` "
              "(`recframe.api.FieldSpec`; the encodings are in `recframe.data.fields`).", ""]
    for cls in DATA_CLASSES:
        lines += _dataclass_section(cls)
    return "\n".join(lines).rstrip() + "\n"


def render_section() -> str:
    """The generated block including its markers."""
    return f"{START}\n{hook_reference()}{END}"


def update(text: str) -> str:
    """``text`` with the block between the markers replaced by a fresh one."""
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"markers {START} ... {END} not found")
    return pattern.sub(lambda _: render_section(), text, count=1)


def is_current(path: Path = DOC_PATH) -> bool:
    """Whether ``path`` holds the reference the current docstrings generate."""
    text = path.read_text(encoding="utf-8")
    return update(text) == text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recframe.docs_gen",
                                     description="Generate the plugin hook reference.")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help="update the file in place")
    group.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    parser.add_argument("--path", type=Path, default=DOC_PATH, help="the Markdown file")
    args = parser.parse_args(argv)
    if args.write:
        text = args.path.read_text(encoding="utf-8")
        args.path.write_text(update(text), encoding="utf-8")
        print(f"updated the hook reference in {args.path}")
        return 0
    if args.check:
        if is_current(args.path):
            return 0
        print(f"{args.path}: the hook reference is stale; run "
              f"`python -m recframe.docs_gen --write`", file=sys.stderr)
        return 1
    print(hook_reference(), end="")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

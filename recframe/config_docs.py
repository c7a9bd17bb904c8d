"""The configuration reference (``docs/reference/config.md``), generated from ``conf/``.

Every config group, every option of it (one YAML file) and every key of the
option, with its default and the comments the YAML file holds about it::

    python -m recframe.config_docs --write   # regenerate docs/reference/config.md
    python -m recframe.config_docs --check   # exit 1 if it is out of date (tests/test_docs_site.py)

Comments are read as the YAML files write them: the comment lines before the
first key describe the option, comment lines right above a key describe that
key, and an inline ``# ...`` (with the comment-only lines aligned under it that
continue it) too. Values are shown as written (``${seed}`` stays an interpolation).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
OUT = ROOT / "docs" / "reference" / "config.md"
KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[\w.-]+):(?P<rest>.*)$")
#: groups whose options live in other repositories' files (Hydra's own launchers)
SKIP_GROUPS = ("hydra",)


@dataclass
class Key:
    path: str
    comment: list[str] = field(default_factory=list)


@dataclass
class Option:
    group: str
    name: str
    package: str
    description: str
    keys: list[Key]
    values: dict[str, Any]


def _split_comment(rest: str) -> tuple[str, str | None, int]:
    """(value text, inline comment or None, column of the '#') of a key line's rest."""
    quote = None
    for i, ch in enumerate(rest):
        if ch in "'\"" and quote in (None, ch):
            quote = None if quote == ch else ch
        elif ch == "#" and quote is None and (i == 0 or rest[i - 1] in " \t"):
            return rest[:i].strip(), rest[i + 1:].strip(), i
    return rest.strip(), None, -1


def parse_option(path: Path, group: str) -> Option:
    """Keys, defaults and comments of one option file."""
    text = path.read_text(encoding="utf-8")
    values = yaml.safe_load(text) or {}
    package = group.replace("/", ".")
    description: list[str] = []
    pending: list[str] = []
    keys: list[Key] = []
    stack: list[tuple[int, str]] = []  # (indent, key) of the enclosing mappings
    last: Key | None = None
    last_comment_col = -1
    seen_key = False
    in_list_item = -1  # indentation of a list item's body ("- name: x") being skipped
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("# @package"):
            package = stripped.split(None, 2)[2].strip()
            package = "" if package == "_global_" else package.replace("_group_", package)
            continue
        if stripped.startswith("#"):
            body = stripped[1:].strip()
            col = len(raw) - len(raw.lstrip())
            if last is not None and last_comment_col >= 0 and col >= last_comment_col:
                last.comment.append(body)  # continues the inline comment above
            elif not seen_key:
                description.append(body)
            else:
                pending.append(body)
            continue
        if not stripped:
            if not seen_key and description:
                description.append("")
            pending = [] if seen_key else pending
            last_comment_col = -1
            continue
        indent = len(raw) - len(raw.lstrip())
        if stripped.startswith("- ") or (in_list_item >= 0 and indent > in_list_item):
            in_list_item = indent if stripped.startswith("- ") else in_list_item
            last_comment_col = -1
            pending = []
            continue
        in_list_item = -1
        m = KEY_LINE.match(raw)
        if m is None:
            continue
        seen_key = True
        while stack and stack[-1][0] >= indent:
            stack.pop()
        dotted = ".".join([k for _, k in stack] + [m.group("key")])
        value, inline, col = _split_comment(m.group("rest"))
        last = Key(dotted, [*pending, *([inline] if inline else [])])
        keys.append(last)
        pending = []
        last_comment_col = (len(raw) - len(m.group("rest")) + col) if inline is not None else -1
        if not value:
            stack.append((indent, m.group("key")))
    while description and not description[-1]:
        description.pop()
    return Option(group, path.stem, package, "\n".join(description), keys,
                  values if isinstance(values, dict) else {})


def _lookup(values: dict[str, Any], dotted: str) -> Any:
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _show(value: Any) -> str:
    if isinstance(value, str):
        text = value if value and value.strip() == value else repr(value)
    else:
        text = yaml.safe_dump(value, default_flow_style=True, width=10_000, sort_keys=False).strip()
        text = text.removesuffix("\n...").removesuffix("...").strip()
    return "`" + text.replace("|", "\\|").replace("`", "'") + "`"


def _cell(lines: list[str]) -> str:
    text = " ".join(line for line in lines if line)
    return text.replace("|", "\\|")


def groups(conf: Path = CONF) -> dict[str, list[Path]]:
    """Config group (``model``, ``experiment/arm``, ...) -> its option files, sorted."""
    out: dict[str, list[Path]] = {}
    found = [Path(d) / f for d, _, files in os.walk(conf, followlinks=True)  # experiment/ is
             for f in files if f.endswith(".yaml")]                            # a symlink
    for path in sorted(found):
        rel = path.relative_to(conf)
        if len(rel.parts) == 1 or rel.parts[0] in SKIP_GROUPS:
            continue
        out.setdefault("/".join(rel.parts[:-1]), []).append(path)
    return dict(sorted(out.items()))


def _option_section(opt: Option, heading: str) -> list[str]:
    lines = [heading, ""]
    if opt.description:
        lines += [opt.description.replace("\n\n", "\n\n").strip(), ""]
    rows = []
    for key in opt.keys:
        value = _lookup(opt.values, key.path)
        if isinstance(value, dict) and not key.comment:
            continue
        full = f"{opt.package}.{key.path}" if opt.package else key.path
        shown = "(section)" if isinstance(value, dict) else _show(value)
        rows.append(f"| `{full}` | {shown} | {_cell(key.comment)} |")
    if rows:
        lines += ["| key | default | meaning |", "|---|---|---|", *rows, ""]
    return lines


def render(conf: Path = CONF) -> str:
    """The whole reference page."""
    found = groups(conf)
    lines = [
        "# Configuration reference",
        "",
        "Every config group of `conf/` (the package `recframe.conf`), each of its options and",
        "each key with its default and what the YAML file says about it. Choose an option with",
        "`recframe run GROUP=OPTION`, override a key with `recframe run KEY=VALUE`",
        "(`recframe run --help` prints the composed config). Plugins add options to these",
        "groups from their own `conf/` (e.g. `model=example`); they are not listed here.",
        "",
        "Generated from the YAML files by `python -m recframe.config_docs --write`; edit the",
        "comments in `conf/`, not this page (`tests/test_docs_site.py` checks it is current).",
        "",
        "Groups: " + ", ".join(f"[`{g}`](#{_anchor(g)})" for g in ["config.yaml", *found]) + ".",
        "",
    ]
    root = parse_option(conf / "config.yaml", "")
    root.package = ""
    lines += _option_section(root, "## config.yaml")
    for group, paths in found.items():
        lines += [f"## {group}", "",
                  "Options: " + ", ".join(f"`{p.stem}`" for p in paths) + ".", ""]
        for path in paths:
            opt = parse_option(path, group)
            lines += _option_section(opt, f"### {group}={opt.name}")
    return "\n".join(lines).rstrip() + "\n"


def _anchor(title: str) -> str:
    """The id MkDocs' toc extension gives a heading (lower case, punctuation dropped)."""
    slug = re.sub(r"[^\w\s-]", "", title.lower()).strip()
    return re.sub(r"[-\s]+", "-", slug)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--write", action="store_true", help=f"write {OUT.relative_to(ROOT)}")
    g.add_argument("--check", action="store_true", help="exit 1 if the page is out of date")
    args = p.parse_args(argv)
    text = render()
    if args.check:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != text:
            print(f"{OUT.relative_to(ROOT)} is out of date: run "
                  f"`python -m recframe.config_docs --write`", file=sys.stderr)
            return 1
        return 0
    from recframe.results import atomic_write

    OUT.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(OUT, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""MkDocs hook of the documentation site (``mkdocs.yml``: ``hooks:``).

- Pages that live outside ``docs/`` are added at build time: ``index.md`` is the
  README and ``benchmarks.md`` is ``experiments/results/bench.md`` (one source each,
  nothing copied into ``docs/``).
- Links are written for GitHub, relative to the file that holds them. Here every
  relative link is resolved from its source file: a page of ``docs/`` becomes a
  link to that page of the site, an image elsewhere in the repository is copied
  into the site (``repo/<path>``), and any other repository file becomes its path
  in code (the site has no repository browser), so strict mode fails only on links
  that are broken on GitHub too.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
#: site page -> the repository file it shows
INCLUDED = {"index.md": "README.md", "benchmarks.md": "experiments/results/bench.md"}
IMAGES = (".png", ".svg", ".jpg", ".jpeg", ".gif")
LINK = re.compile(r"(!?)\[([^\]\n]*)\]\(([^)\s]+)\)")
#: a link, or inline code (left alone); a link's text may hold code itself
LINK_OR_CODE = re.compile(r"`[^`\n]*`|" + LINK.pattern)
FENCE = re.compile(r"^\s*(```|~~~)")


def _source_of(src_uri: str) -> str:
    """The repository path of the markdown behind a site page."""
    return INCLUDED.get(src_uri, f"docs/{src_uri}")


def _outside_targets(markdown: str, source: str) -> list[str]:
    """Repository paths (outside docs/) of the relative links in ``markdown``."""
    out = []
    for m in LINK_OR_CODE.finditer(_strip_code(markdown)):
        if m.group(0).startswith("`"):
            continue
        path = _resolve(m.group(3), source)
        if path is not None and not path.startswith("docs/"):
            out.append(path)
    return out


def _strip_code(markdown: str) -> str:
    keep, fenced = [], False
    for line in markdown.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            keep.append(line)
    return "\n".join(keep)


def _resolve(target: str, source: str) -> str | None:
    """The repository path ``target`` points at from ``source``; None if not relative."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith(("#", "/")):
        return None
    path = target.split("#", 1)[0]
    if not path:
        return None
    return posixpath.normpath(posixpath.join(posixpath.dirname(source), path))


def on_files(files: Files, config: Any) -> Files:
    """Add the included pages and the repository images their links show."""
    for page, repo_path in INCLUDED.items():
        files.append(File.generated(config, page, abs_src_path=str(ROOT / repo_path)))
    sources = [(p, INCLUDED[p]) for p in INCLUDED]
    sources += [(f.src_uri, f"docs/{f.src_uri}") for f in files.documentation_pages()
                if f.src_uri not in INCLUDED]
    seen = set()
    for _, source in sources:
        text = (ROOT / source).read_text(encoding="utf-8") if (ROOT / source).exists() else ""
        for path in _outside_targets(text, source):
            if path.lower().endswith(IMAGES) and path not in seen and (ROOT / path).is_file():
                seen.add(path)
                files.append(File.generated(config, f"repo/{path}",
                                            abs_src_path=str(ROOT / path)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Rewrite the page's relative links for the site (see the module docstring)."""
    src_uri = page.file.src_uri
    source = _source_of(src_uri)
    out, fenced = [], False
    for line in markdown.splitlines(keepends=True):
        if FENCE.match(line):
            fenced = not fenced
        out.append(line if fenced else _rewrite_line(line, source, src_uri))
    return "".join(out)


def _rewrite_line(line: str, source: str, src_uri: str) -> str:
    return LINK_OR_CODE.sub(
        lambda m: m.group(0) if m.group(0).startswith("`") else _rewrite_link(m, source, src_uri),
        line)


def _rewrite_link(m: re.Match[str], source: str, src_uri: str) -> str:
    bang, text, target = m.group(1), m.group(2), m.group(3)
    path = _resolve(target, source)
    if path is None or source.startswith("docs/") and path.startswith("docs/"):
        return m.group(0)  # external, an anchor, or already a link between docs pages
    anchor = "#" + target.split("#", 1)[1] if "#" in target else ""
    here = posixpath.dirname(src_uri)
    if path.startswith("docs/"):
        return f"{bang}[{text}]({posixpath.relpath(path[5:], here or '.')}{anchor})"
    if path.lower().endswith(IMAGES):
        return f"{bang}[{text}]({posixpath.relpath('repo/' + path, here or '.')})"
    if text.strip("`").rstrip("/") == path:  # the text already names the file
        return text if text.startswith("`") else f"`{text}`"
    return f"{text} (`{path}`)"


#: Sphinx roles in docstrings (":class:`RecModel`") that Markdown leaves in front of the code
ROLE = re.compile(r":(?:class|func|mod|meth|attr|data|exc|obj):(?=<code>)")


def on_page_content(html: str, page: Any, config: Any, files: Files) -> str:
    """Drop the Sphinx role prefixes the API reference's docstrings carry."""
    return ROLE.sub("", html)

"""A tiny document model rendered to Markdown and to a standalone HTML page."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Cell:
    text: str
    bold: bool = False


@dataclass
class Document:
    """Headings, paragraphs, bullet lists, tables and images, in order."""

    title: str
    items: list[tuple[str, object]] = field(default_factory=list)

    def heading(self, level: int, text: str) -> None:
        self.items.append(("h", (level, text)))

    def para(self, text: str) -> None:
        self.items.append(("p", text))

    def bullets(self, lines: list[str]) -> None:
        if lines:
            self.items.append(("ul", list(lines)))

    def table(self, header: list[str], rows: list[list[Cell | str]],
              align_right: set[int] | None = None) -> None:
        cells = [[c if isinstance(c, Cell) else Cell(str(c)) for c in row] for row in rows]
        self.items.append(("table", (list(header), cells, set(align_right or ()))))

    def image(self, path: Path, alt: str) -> None:
        self.items.append(("img", (path, alt)))

    # -- Markdown -------------------------------------------------------------------------

    def to_markdown(self) -> str:
        out = [f"# {self.title}", ""]
        for kind, payload in self.items:
            if kind == "h":
                level, text = payload
                out += [f"{'#' * (level + 1)} {text}", ""]
            elif kind == "p":
                out += [payload, ""]
            elif kind == "ul":
                out += [f"- {line}" for line in payload] + [""]
            elif kind == "table":
                header, rows, right = payload
                out.append("| " + " | ".join(_md_cell(Cell(h)) for h in header) + " |")
                out.append("|" + "|".join("---:" if i in right else "---"
                                          for i in range(len(header))) + "|")
                for row in rows:
                    out.append("| " + " | ".join(_md_cell(c) for c in row) + " |")
                out.append("")
            elif kind == "img":
                path, alt = payload
                out += [f"![{alt}]({path.name})", ""]
        return "\n".join(out).rstrip("\n") + "\n"

    # -- HTML -----------------------------------------------------------------------------

    def to_html(self, image_dir: Path) -> str:
        """A standalone page: CSS inline, PNGs embedded as data URIs (read from image_dir)."""
        esc = html.escape
        out = [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            f"<title>{esc(self.title)}</title>",
            "<style>",
            _CSS,
            "</style>",
            "</head>",
            "<body>",
            f"<h1>{esc(self.title)}</h1>",
        ]
        for kind, payload in self.items:
            if kind == "h":
                level, text = payload
                lv = min(level + 1, 6)
                out.append(f"<h{lv}>{esc(text)}</h{lv}>")
            elif kind == "p":
                out.append(f"<p>{esc(payload)}</p>")
            elif kind == "ul":
                out.append("<ul>" + "".join(f"<li>{esc(x)}</li>" for x in payload) + "</ul>")
            elif kind == "table":
                header, rows, right = payload
                out.append("<table>")
                out.append("<thead><tr>" + "".join(
                    f'<th{_cls(i, right)}>{esc(h)}</th>' for i, h in enumerate(header))
                    + "</tr></thead>")
                out.append("<tbody>")
                for row in rows:
                    tds = []
                    for i, c in enumerate(row):
                        text = esc(c.text)
                        if c.bold:
                            text = f"<strong>{text}</strong>"
                        tds.append(f"<td{_cls(i, right)}>{text}</td>")
                    out.append("<tr>" + "".join(tds) + "</tr>")
                out.append("</tbody></table>")
            elif kind == "img":
                path, alt = payload
                data = base64.b64encode((image_dir / path.name).read_bytes()).decode("ascii")
                out.append(f'<figure><img alt="{esc(alt)}" src="data:image/png;base64,{data}">'
                           f"<figcaption>{esc(alt)} ({esc(path.name)})</figcaption></figure>")
        out += ["</body>", "</html>"]
        return "\n".join(out) + "\n"


def _cls(i: int, right: set[int]) -> str:
    return ' class="num"' if i in right else ""


def _md_cell(cell: Cell) -> str:
    text = cell.text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
    if cell.bold and text:
        text = f"**{text}**"
    return text


_CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;
margin:2em auto;max-width:1200px;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em 0;font-size:0.9em}
th,td{border:1px solid #ccc;padding:0.25em 0.6em;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1em 0}img{max-width:100%;height:auto;border:1px solid #ddd}
figcaption{font-size:0.85em;color:#555}"""

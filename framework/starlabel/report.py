"""A self-contained HTML report: sections of text, tables and figures, written into one folder.

Figures are referenced by relative paths (the PNGs sit in the report folder or below it), so the folder
can be moved or archived as a whole. Every string is HTML-escaped.
"""

from __future__ import annotations

import html
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from starlabel._version import __version__


@dataclass
class Section:
    """One section of the report."""

    title: str
    text: list[str] = field(default_factory=list)
    tables: list[tuple[list[str], list[list[str]]]] = field(default_factory=list)
    figures: list[tuple[Path, str]] = field(default_factory=list)

    def paragraph(self, text: str) -> Section:
        """Add a paragraph."""
        self.text.append(text)
        return self

    def table(self, header: Sequence[str], rows: Sequence[Sequence[object]]) -> Section:
        """Add a table (cells are formatted with ``str``)."""
        self.tables.append(([str(h) for h in header], [[_cell(c) for c in row] for row in rows]))
        return self

    def figure(self, path: Path, caption: str) -> Section:
        """Add a PNG figure."""
        self.figures.append((Path(path), caption))
        return self


def _cell(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


_STYLE = """
body { font-family: sans-serif; max-width: 1200px; margin: 2em auto; color: #222; }
h1 { border-bottom: 2px solid #345; } h2 { margin-top: 2em; color: #345; }
table { border-collapse: collapse; margin: 1em 0; } td, th { border: 1px solid #bbb; padding: 3px 8px; }
th { background: #eef; } td { text-align: right; } td:first-child { text-align: left; }
figure { margin: 1em 0; } img { max-width: 100%; border: 1px solid #ddd; } figcaption { color: #555; }
"""


def write_report(folder: str | Path, title: str, intro: str, sections: Sequence[Section]) -> Path:
    """Write ``folder/index.html`` and return its path; figure paths are made relative to ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        f"<p>{e(intro)}</p>",
        f"<p><small>starlabel {e(__version__)}, {e(time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()))}</small></p>",
    ]
    for section in sections:
        parts.append(f"<h2>{e(section.title)}</h2>")
        parts += [f"<p>{e(t)}</p>" for t in section.text]
        for header, rows in section.tables:
            parts.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>")
            parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows]
            parts.append("</table>")
        for path, caption in section.figures:
            rel = os.path.relpath(path, folder)
            parts.append(f'<figure><img src="{e(rel)}" alt="{e(caption)}"><figcaption>{e(caption)}</figcaption></figure>')
    parts.append("</body></html>")
    index = folder / "index.html"
    index.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return index

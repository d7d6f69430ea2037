"""A small report document rendered twice: Markdown (``report.md``) and standalone HTML (``report.html``).

The demo builds a :class:`Report` from headings, paragraphs, tables and figures (PNG files beside the
report) and writes both renderings from the same blocks, so they never disagree.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Figure", "Heading", "Paragraph", "Report", "Table"]


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Paragraph:
    text: str


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]


@dataclass
class Figure:
    path: str
    """Relative to the report's folder."""
    caption: str


Block = Heading | Paragraph | Table | Figure


@dataclass
class Report:
    title: str
    blocks: list[Block] = field(default_factory=list)

    def add(self, *blocks: Block) -> None:
        self.blocks.extend(blocks)

    def markdown(self) -> str:
        out = [f"# {self.title}", ""]
        for b in self.blocks:
            if isinstance(b, Heading):
                out += ["#" * b.level + " " + b.text, ""]
            elif isinstance(b, Paragraph):
                out += [b.text, ""]
            elif isinstance(b, Table):
                out.append("| " + " | ".join(b.headers) + " |")
                out.append("|" + "---|" * len(b.headers))
                out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in b.rows]
                out.append("")
            else:
                out += [f"![{b.caption}]({b.path})", "", f"*{b.caption}*", ""]
        return "\n".join(out)

    def html(self) -> str:
        e = html.escape
        body = [f"<h1>{e(self.title)}</h1>"]
        for b in self.blocks:
            if isinstance(b, Heading):
                body.append(f"<h{b.level}>{e(b.text)}</h{b.level}>")
            elif isinstance(b, Paragraph):
                body.append(f"<p>{e(b.text)}</p>")
            elif isinstance(b, Table):
                head = "".join(f"<th>{e(h)}</th>" for h in b.headers)
                rows = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in b.rows)
                body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
            else:
                body.append(f'<figure><img src="{e(b.path)}" alt="{e(b.caption)}">'
                            f"<figcaption>{e(b.caption)}</figcaption></figure>")
        style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.4}"
                 "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.25em .6em;"
                 "text-align:right}th{background:#f3f3f3}img{max-width:100%}figcaption{color:#555}")
        return (f"<!doctype html><html><head><meta charset='utf-8'><title>{e(self.title)}</title>"
                f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n")

    def write(self, folder: Path) -> tuple[Path, Path]:
        """Write ``report.md`` and ``report.html`` into ``folder``; returns both paths."""
        md, page = folder / "report.md", folder / "report.html"
        md.write_text(self.markdown())
        page.write_text(self.html())
        return md, page

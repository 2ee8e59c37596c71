"""The report's building blocks: a list of blocks (heading, paragraph, table, image, list),
rendered twice, as Markdown and as one self-contained HTML page."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd


@dataclass
class Block:
    kind: str  # h1, h2, h3, p, quote, table, image, list
    content: Any
    caption: str = ""


def fmt(value: Any, pattern: str = "{:.2f}", missing: str = "–") -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return missing
    return pattern.format(value)


def table_block(columns: Sequence[str], rows: list[Sequence[Any]], caption: str = "") -> Block:
    return Block("table", (list(columns), [[str(c) for c in r] for r in rows]), caption)


def render_markdown(blocks: list[Block], out: Path) -> str:
    lines: list[str] = []
    for block in blocks:
        if block.kind == "h1":
            lines += [f"# {block.content}", ""]
        elif block.kind == "h2":
            lines += [f"## {block.content}", ""]
        elif block.kind == "h3":
            lines += [f"### {block.content}", ""]
        elif block.kind == "p":
            lines += [block.content, ""]
        elif block.kind == "quote":
            lines += [f"> {block.content}", ""]
        elif block.kind == "list":
            lines += [f"- {item}" for item in block.content] + [""]
        elif block.kind == "image":
            rel = Path(block.content).relative_to(out)
            lines += [f"![{block.caption or rel.stem}]({rel.as_posix()})", ""]
            if block.caption:
                lines += [f"*{block.caption}*", ""]
        elif block.kind == "table":
            columns, rows = block.content
            lines.append("| " + " | ".join(columns) + " |")
            lines.append("| " + " | ".join("---" for _ in columns) + " |")
            lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
            lines.append("")
            if block.caption:
                lines += [f"*{block.caption}*", ""]
    return "\n".join(lines)


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3} blockquote{border-left:4px solid #888;margin:1em 0;padding:.2em 1em;
color:#444;font-style:italic} img{max-width:100%;height:auto} figcaption{font-size:.85em;
color:#555} code{background:#f3f3f3;padding:0 .2em}
@media print{body{max-width:none} img{page-break-inside:avoid} h2{page-break-after:avoid}}
"""


def _inline(text: str) -> str:
    escaped = html.escape(text)
    parts = escaped.split("**")
    escaped = "".join(f"<strong>{p}</strong>" if i % 2 else p for i, p in enumerate(parts))
    parts = escaped.split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def render_html(blocks: list[Block], title: str) -> str:
    body: list[str] = []
    for block in blocks:
        if block.kind in ("h1", "h2", "h3"):
            body.append(f"<{block.kind}>{html.escape(block.content)}</{block.kind}>")
        elif block.kind == "p":
            body.append(f"<p>{_inline(block.content)}</p>")
        elif block.kind == "quote":
            body.append(f"<blockquote>{html.escape(block.content)}</blockquote>")
        elif block.kind == "list":
            body.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in block.content)
                        + "</ul>")
        elif block.kind == "image":
            data = base64.b64encode(Path(block.content).read_bytes()).decode()
            body.append(f'<figure><img alt="{html.escape(Path(block.content).stem)}" '
                        f'src="data:image/png;base64,{data}"><figcaption>'
                        f"{html.escape(block.caption)}</figcaption></figure>")
        elif block.kind == "table":
            columns, rows = block.content
            head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
            cells = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                            for r in rows)
            caption = f"<caption>{html.escape(block.caption)}</caption>" if block.caption \
                else ""
            body.append(f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{cells}"
                        "</tbody></table>")
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")

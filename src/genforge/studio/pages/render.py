"""Templates (Jinja2, HTML autoescaped: file names and messages from users are text, never
markup) and the small formatting helpers they use."""
from __future__ import annotations

import html
import re
import time
from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, Undefined, select_autoescape
from markupsafe import Markup

HERE = Path(__file__).parent
STATIC = HERE / "static"
FINAL = ("done", "failed", "stopped")


def when(stamp: float | None) -> str:
    if not stamp or isinstance(stamp, Undefined):
        return "-"
    return time.strftime("%d %b %H:%M", time.localtime(stamp))


def size(n: int | None) -> str:
    n = 0 if isinstance(n, Undefined) else n or 0
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def duration(seconds: float | None) -> str:
    if seconds is None or isinstance(seconds, Undefined):
        return "-"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def percent(progress: dict | None) -> int:
    progress = progress or {}
    total = progress.get("total") or 0
    return int(100 * min(1.0, (progress.get("done") or 0) / total)) if total else 0


_INLINE = [(re.compile(r"`([^`]+)`"), r"<code>\1</code>"),
           (re.compile(r"\*\*([^*]+)\*\*"), r"<strong>\1</strong>"),
           (re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)"), r'<a href="\2">\1</a>')]


def _inline(text: str) -> str:
    text = html.escape(text, quote=False)
    for pattern, replacement in _INLINE:
        text = pattern.sub(replacement, text)
    return text


def markdown(text: str) -> Markup:
    """A model card (README.md) as HTML: front matter dropped; headings, lists, tables, code
    spans, bold and links; everything else as paragraphs (all text escaped first)."""
    lines = text.splitlines()
    if lines and lines[0].strip() == "---" and "---" in (s.strip() for s in lines[1:]):
        lines = lines[[s.strip() for s in lines].index("---", 1) + 1:]
    out, para, in_list, in_table = [], [], False, False

    def flush() -> None:
        nonlocal in_list, in_table
        if para:
            out.append(f"<p>{_inline(' '.join(para))}</p>")
            para.clear()
        if in_list:
            out.append("</ul>")
        if in_table:
            out.append("</table>")
        in_list = in_table = False

    for line in lines:
        stripped = line.strip()
        heading = re.match(r"^(#{1,4})\s+(.*)", stripped)
        if not stripped or stripped.startswith("<!--"):
            flush()
        elif heading:
            flush()
            level = min(6, len(heading.group(1)) + 1)  # the page has its own h1
            out.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif stripped.startswith(("- ", "* ")):
            if not in_list:
                flush()
                out.append("<ul>")
                in_list = True
            out.append(f"<li>{_inline(stripped[2:])}</li>")
        elif stripped.startswith("|"):
            cells = [c.strip() for c in stripped.strip("|").split("|")]
            if all(set(c) <= set("-: ") for c in cells):
                continue
            if not in_table:
                flush()
                out.append('<table class="card">')
                in_table = True
            out.append("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in cells) + "</tr>")
        else:
            para.append(stripped)
    flush()
    return Markup("\n".join(out))


ENV = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(),
                  trim_blocks=True, lstrip_blocks=True)
ENV.filters.update(when=when, size=size, duration=duration, percent=percent, markdown=markdown)
ENV.globals.update(FINAL=FINAL)


def render(request: Request, template: str, status: int = 200, **context) -> HTMLResponse:
    """A page (or a fragment) rendered with its context."""
    body = ENV.get_template(template).render(path=request.url.path, **context)
    return HTMLResponse(body, status_code=status)

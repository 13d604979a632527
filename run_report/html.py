"""A minimal HTML page builder for the report: escaped text, tables, embedded PNGs.

Everything the page shows is inside the file (images as data: URIs, the style
sheet inline) and it has no scripts, so it opens offline and nothing in it can
reach the network.
"""

import base64
import html
from typing import Iterable, List, Optional, Sequence

from contracts import metric_values

_STYLE = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 0 auto;
       max-width: 1100px; padding: 1em 2em; color: #1d1d1f; line-height: 1.45; }
h1 { margin-bottom: 0.2em; }
h2 { border-bottom: 2px solid #d0d7de; padding-bottom: 0.2em; margin-top: 2em; }
nav a { margin-right: 1em; }
table { border-collapse: collapse; margin: 0.6em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #d0d7de; padding: 3px 8px; text-align: left;
         vertical-align: top; overflow-wrap: anywhere; }
th { background: #f6f8fa; overflow-wrap: normal; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.pass { color: #1a7f37; font-weight: 600; }
.fail { color: #cf222e; font-weight: 600; }
.note { color: #57606a; font-size: 0.9em; }
figure { display: inline-block; margin: 0.5em 1em 0.5em 0; vertical-align: top; }
figcaption { font-size: 0.85em; color: #57606a; max-width: 520px; }
img { max-width: 100%; }
img.thumb { width: 72px; height: 72px; object-fit: contain; background: #000;
            margin: 0 4px 4px 0; vertical-align: top; }
pre { background: #f6f8fa; padding: 0.6em; overflow-x: auto; font-size: 0.85em; }
"""


def text(value) -> str:
  return html.escape(str(value))


class Raw(str):
  """Markup that is already safe, e.g. a pass/fail badge."""


def _cell(value) -> str:
  if isinstance(value, Raw):
    return f'<td>{value}</td>'
  if value is None or isinstance(value, float):
    return f'<td class="num">{metric_values.text(value)}</td>'
  if isinstance(value, int) and not isinstance(value, bool):
    return f'<td class="num">{text(value)}</td>'
  return f'<td>{text(value)}</td>'


def table(headers: Sequence[str], rows: Iterable[Sequence], caption: str = '') -> str:
  """Cells are escaped unless passed as `Raw`; numbers are right-aligned, "n/a" if undefined."""
  head = ''.join(f'<th>{text(h)}</th>' for h in headers)
  body = ''.join('<tr>' + ''.join(_cell(cell) for cell in row) + '</tr>' for row in rows)
  caption_html = f'<caption>{text(caption)}</caption>' if caption else ''
  return f'<table>{caption_html}<tr>{head}</tr>{body}</table>'


def badge(passed: bool, yes: str = 'pass', no: str = 'fail') -> Raw:
  return Raw(f'<span class="{"pass" if passed else "fail"}">{text(yes if passed else no)}</span>')


def thumbnail(png: bytes, alt: str) -> Raw:
  """A small embedded image, for a table cell."""
  data = base64.b64encode(png).decode('ascii')
  return Raw(f'<img class="thumb" src="data:image/png;base64,{data}" alt="{text(alt)}">')


def figure(png: bytes, caption: str, alt: Optional[str] = None) -> str:
  data = base64.b64encode(png).decode('ascii')
  return (f'<figure><img src="data:image/png;base64,{data}" alt="{text(alt or caption)}">'
          f'<figcaption>{text(caption)}</figcaption></figure>')


def paragraph(value: str, note: bool = False) -> str:
  return f'<p{" class=note" if note else ""}>{text(value)}</p>'


def preformatted(value: str) -> str:
  return f'<pre>{text(value)}</pre>'


class Page:
  """Sections in order, each with an id that the navigation bar links to."""

  def __init__(self, title: str):
    self._title = title
    self._sections: List[tuple] = []

  def section(self, section_id: str, title: str, parts: Sequence[str]) -> None:
    self._sections.append((section_id, title, parts))

  def render(self) -> str:
    nav = ''.join(f'<a href="#{i}">{text(t)}</a>' for i, t, _ in self._sections)
    body = ''.join(
        f'<section id="{i}"><h2>{text(t)}</h2>{"".join(parts)}</section>'
        for i, t, parts in self._sections)
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{text(self._title)}</title><style>{_STYLE}</style></head>'
            f'<body><h1>{text(self._title)}</h1><nav>{nav}</nav>{body}</body></html>\n')

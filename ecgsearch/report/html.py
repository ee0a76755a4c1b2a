"""The report's page: sections of text, figures and tables rendered by one escaped jinja2 template.

Every text that comes from a run (trial ids, option names, error messages) passes through jinja2's
autoescaping, so a hyperparameter value such as ``<b>`` shows as text and never as markup. A figure is
either an ``Image`` (a PNG) or a ``Plot`` (an interactive figure's markup, made by ``interactive``, which
escapes what it puts in hover texts and menus itself); the JavaScript the plots need is inlined once in
the page's head (``render(script=...)``), so the page needs no network.
"""

from __future__ import annotations

import base64
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import jinja2


@dataclass
class Table:
    caption: str
    header: list[str]
    rows: list[list[str]]


@dataclass
class Image:
    file: str  # relative to the report's folder, or a data: URI (``embed_images``)
    caption: str


@dataclass
class Plot:
    """An interactive figure: ``html`` is its ``<div>`` and the script that draws it (trusted markup, put in
    the page as it is), ``name`` the id of that div."""

    html: str
    caption: str
    name: str
    figure: Any = field(default=None, repr=False, compare=False)  # the plotly figure, for notebooks and tests


@dataclass
class Section:
    """One part of the report; ``notes`` say why a figure or table that belongs here could not be made."""

    title: str
    anchor: str
    intro: str = ""
    images: list[Image] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    plots: list[Plot] = field(default_factory=list)

    def show(self, figure: Image | Plot | None) -> None:
        """Add a figure where it belongs (nothing for None: a view the renderer does not draw)."""
        if isinstance(figure, Image):
            self.images.append(figure)
        elif figure is not None:
            self.plots.append(figure)


def fmt(value: Any, digits: int = 4) -> str:
    """A cell: ``-`` for missing, 3 significant digits for large numbers, ``digits`` otherwise."""
    if value is None:
        return "-"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, float) and math.isnan(value):
            return "-"
        if abs(value) >= 1e5 or (value != 0 and abs(value) < 1e-3):
            return f"{value:.3g}"
        if isinstance(value, float):
            return f"{value:.{digits}g}" if abs(value) >= 10 else f"{value:.{digits}f}".rstrip("0").rstrip(".")
        return str(value)
    try:
        if math.isnan(value):
            return "-"
    except TypeError:
        pass
    return str(value)


TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
{% if refresh %}{{ refresh|safe }}
{% endif %}<title>{{ title }}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .8em 0; font-size: .9em; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
caption { caption-side: top; text-align: left; font-weight: 600; padding-bottom: .3em; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: .9em; color: #444; }
.note { background: #fff6e0; border-left: 4px solid #e0a800; padding: .4em .8em; }
.intro { color: #333; } nav a { margin-right: 1em; }
figure.plot { border: 1px solid #eee; padding: .3em; }
</style>
{% if script %}<script type="text/javascript">{{ script|safe }}</script>
{% endif %}</head>
<body>
<h1>{{ title }}</h1>
<table class="summary">
{% for key, value in summary %}<tr><th>{{ key }}</th><td>{{ value }}</td></tr>
{% endfor %}</table>
<nav>{% for section in sections %}<a href="#{{ section.anchor }}">{{ section.title }}</a>{% endfor %}</nav>
{% for section in sections %}
<section id="{{ section.anchor }}">
<h2>{{ section.title }}</h2>
{% if section.intro %}<p class="intro">{{ section.intro }}</p>{% endif %}
{% for note in section.notes %}<p class="note">{{ note }}</p>
{% endfor %}
{% for image in section.images %}<figure><img src="{{ image.file }}" alt="{{ image.caption }}">
<figcaption>{{ image.caption }}</figcaption></figure>
{% endfor %}
{% for plot in section.plots %}<figure class="plot">{{ plot.html|safe }}
<figcaption>{{ plot.caption }}</figcaption></figure>
{% endfor %}
{% for table in section.tables %}<table>
<caption>{{ table.caption }}</caption>
<tr>{% for cell in table.header %}<th>{{ cell }}</th>{% endfor %}</tr>
{% for row in table.rows %}<tr>{% for cell in row %}<td>{{ cell }}</td>{% endfor %}</tr>
{% endfor %}</table>
{% endfor %}
</section>
{% endfor %}
<p class="intro">Written by {{ by }}{% if generated %} on {{ generated }}{% endif %}.</p>
</body>
</html>
"""


def refresh_tag(seconds: int) -> str:
    """The head line that makes a browser reload the page every ``seconds`` (``render(refresh=...)``)."""
    return f'<meta http-equiv="refresh" content="{int(seconds)}">'


def render(title: str, summary: Sequence[tuple[str, str]], sections: Sequence[Section], generated: str = "",
           by: str = "ecgsearch report", script: str = "", refresh: int | None = None) -> str:
    """The whole page as a string (all run-provided text escaped); ``by`` names the command in its footer,
    ``script`` is JavaScript inlined once in the head (the plots' library), ``refresh`` makes an open tab
    reload the page every that many seconds."""
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return environment.from_string(TEMPLATE).render(title=title, summary=list(summary), sections=list(sections),
                                                    generated=generated, by=by, script=script,
                                                    refresh=refresh_tag(refresh) if refresh else "")


def write_page(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file renamed over it: a browser reloading the page
    reads the old page or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def embed_images(sections: Sequence[Section], folder: Path) -> None:
    """Replace each image's file (a PNG in ``folder``) by a data: URI of its bytes: a page that needs no
    file beside it."""
    for section in sections:
        for image in section.images:
            data = base64.b64encode((folder / image.file).read_bytes()).decode("ascii")
            image.file = f"data:image/png;base64,{data}"

"""Hostile strings for every surface that shows user data (ids, captions, labels, column names, queries).

``HOSTILE`` holds markup, script, event handlers, links, plotly's pseudo-HTML tags and
entities, TeX, bidirectional marks, control characters, line separators, quotes, template
syntax and a 10 kB string. Every ``alert`` in them fires a dialog if it ever runs: browser
tests count ``dialog`` events (there must be none) and check that the text shows literally.

:func:`hostile_space` builds a small shapes-world space whose ids, captions, attribute
values and column names are these strings.
"""

from __future__ import annotations

import re
from typing import Any

HOSTILE: list[str] = [
    "<script>alert('script tag')</script>",
    "</script><script>alert('closed the block')</script>",
    "<img src=x onerror=\"alert('img onerror')\">",
    "<svg onload=alert('svg onload')>",
    "\" onmouseover=\"alert('attribute breakout')\" x=\"",
    "' onclick='alert(1)' data-x='",
    "javascript:alert('js scheme')",
    "<a href=\"javascript:alert('js link')\">js link</a>",
    "<a href=\"https://example.com/\">click me</a>",
    "<b>bold</b> <i>italic</i> <sup>up</sup><sub>down</sub> <br> after br",
    "<span style=\"font-size:60px;color:red\">big red</span>",
    "&lt;b&gt;not bold&lt;/b&gt; &amp;amp; &#36; &#x3C;em&#x3E;",
    "Tom & Jerry &copy; &nbsp; AT&T",
    "$\\alpha + \\beta$ costs $5 and $6",
    "\u202eevil\u202c right-to-left \u200f mark \u2066isolate\u2069",
    "line one\nline two\r\nthree\ttab",
    "separators\u2028line\u2029paragraph",
    "ansi \x1b[31mred\x1b[0m \x1b]0;title\x07 bell\x07 nul\x00 del\x7f csi\x9b",
    "\"double\" 'single' `back` \\backslash",
    "<!-- comment --> <![CDATA[ cdata ]]> <!--<script>",
    "%{customdata} %{x} {{template}} ${injection}",
    "x" * 10_000 + "<b>end of 10 kB</b>",
    "emoji \U0001f9ea ünïcødé 中文 עברית",
]

#: Attribute values for the colours of the shapes world (short enough to click in a bar chart).
HOSTILE_LABELS: list[str] = [HOSTILE[i] for i in (1, 8, 9, 11, 13, 15, 2, 20, 17, 14)]

#: A column name and an attribute with markup in them.
HOSTILE_COLUMN = "<img src=x onerror=\"alert('column')\">col"
HOSTILE_CAPTION_COLUMN = "caption"


def displayed_by_plotly(text: str) -> str:
    """What plotly.js shows for ``text``: newlines become spaces (it renders no other control)."""
    return text.replace("\r\n", " ").replace("\r", " ").replace("\n", " ")


def plotly_display(s: str) -> str:
    """What plotly.js shows for a string holding no tags: its entities decoded (plotly's own table)."""
    table = {"amp": "&", "lt": "<", "gt": ">", "nbsp": "\xa0", "mu": "μ", "times": "×", "plusmn": "±", "deg": "°"}

    def one(m: re.Match[str]) -> str:
        r = m.group(1)
        if r.startswith("#"):
            return chr(int(r[2:], 16) if r[1] == "x" else int(r[1:]))
        return table.get(r, m.group(0))

    return re.sub(r"&(#\d+|#x[\da-fA-F]+|[a-z]+);", one, s)


def hostile_labels(n: int) -> list[str]:
    """``n`` distinct hostile labels (the list, cycled with a suffix when ``n`` is larger)."""
    return [HOSTILE[i % len(HOSTILE)] + ("" if i < len(HOSTILE) else f" #{i}") for i in range(n)]


def hostile_gallery(n: int = 120, seed: int = 0) -> Any:
    """The shapes world with hostile ids, captions, colour labels and a hostile column name.

    Ids: a hostile string per row (unique); captions: hostile strings; the colour column is
    renamed :data:`HOSTILE_COLUMN` and its values replaced by hostile labels (one per colour).
    """
    import cirscope as cs

    shapes = cs.datasets.shapes(n, seed=seed)
    meta = shapes.metadata.copy()
    ids = hostile_labels(len(meta))
    meta["id"] = [f"{h} [{i}]" if i >= len(HOSTILE) else h for i, h in enumerate(ids)]
    meta[HOSTILE_CAPTION_COLUMN] = [HOSTILE[(i + 3) % len(HOSTILE)] for i in range(len(meta))]
    colors = sorted(meta["color"].unique())
    relabel = dict(zip(colors, HOSTILE_LABELS, strict=False))
    meta["color"] = meta["color"].map(relabel)
    meta = meta.rename(columns={"color": HOSTILE_COLUMN})
    return cs.Gallery(meta, shapes.sources)

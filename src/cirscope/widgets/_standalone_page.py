"""The kernel-free report's HTML: one file with its styles, script, data and images inline.

The script is ``js/standalone.js`` preceded by the map's pure helpers, copied at build time
from ``js/map_view.js`` (:data:`MAP_HELPERS`: projection, pan and zoom, hit tests, point
stamping, density, the marks and the legend), so the report draws the map with the widget's
own code. The data goes into a ``<script type="application/json">`` element through
:func:`cirscope._core.text.script_json` (no ``</script>`` can end it early); the script
reads it with ``JSON.parse`` and shows every text with ``textContent``. A
Content-Security-Policy allows inline script, styles and ``data:`` images only: the page
can make no network request.
"""

from __future__ import annotations

import re
from typing import Any

from cirscope._core.text import html_text, script_json
from cirscope.widgets._static import static_file

__all__ = ["CSP", "MAP_HELPERS", "js_definitions", "page_script", "render_page"]

#: What the report's script takes from js/map_view.js (constants and functions, by name).
MAP_HELPERS: tuple[str, ...] = (
    "HOVER_RADIUS", "CELL", "DENSITY_MIN_ALPHA", "autoRadius", "dataBounds", "fitView", "zoomAt",
    "viewAfterResize", "panView", "projectPoints", "buildGrid", "nearestPoint", "packColors", "discStamp",
    "stampPoints", "binDensity", "densityPixels", "wantsDensity", "toScreen", "pointRadius", "cardTop",
    "keyAction", "wheelZoom", "dragMoved", "cssColor", "starPoints", "drawPath", "drawMarks", "fillLegend", "sizeCanvas",
)  # fmt: skip

#: The page may run its own inline script and styles and show data: images; nothing else.
CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; "
       "base-uri 'none'; form-action 'none'")


def js_definitions(source: str, names: tuple[str, ...] | list[str]) -> str:
    """The top-level ``const NAME = ...;`` lines and ``function NAME(...) {...}`` blocks of ``source``.

    A function runs from its ``function`` line to the first line that is a lone ``}``
    (how the project's modules close their top-level functions).

    Examples
    --------
    >>> src = "const A = 1; // one\\nfunction f(x) {\\n  return x + A;\\n}\\nfunction g() {}\\n"
    >>> print(js_definitions(src, ["f", "A"]), end="")
    function f(x) {
      return x + A;
    }
    const A = 1; // one
    """
    out = []
    for name in names:
        match = (re.search(rf"^function {re.escape(name)}\(.*?^\}}\n", source, re.M | re.S)
                 or re.search(rf"^const {re.escape(name)} = [^\n]*;[^\n]*\n", source, re.M))
        if match is None:
            raise LookupError(f"js/map_view.js no longer defines {name!r} at the top level; the report's script "
                              "needs it (see MAP_HELPERS in cirscope/widgets/_standalone_page.py)")
        out.append(match.group(0))
    return "".join(out)


def page_script() -> str:
    """The report's script: the map helpers of js/map_view.js, then js/standalone.js, in one function scope."""
    helpers = js_definitions(static_file("map_view.js").read_text(encoding="utf-8"), MAP_HELPERS)
    body = static_file("standalone.js").read_text(encoding="utf-8")
    script = f'(() => {{\n"use strict";\n// from js/map_view.js\n{helpers}\n// js/standalone.js\n{body}\n}})();\n'
    if re.search(r"</script|<!--", script, flags=re.IGNORECASE):  # pragma: no cover - a front-end edit problem
        raise RuntimeError("The report's script holds '</script' or '<!--' and cannot be inlined")
    return script


def render_page(data: dict[str, Any]) -> str:
    """The whole page for the data of :func:`cirscope.widgets._standalone.report_data`.

    Examples
    --------
    >>> page = render_page({"title": "</title><script>alert(1)</script>", "queries": []})
    >>> "<script>alert(1)" in page, page.count("<script")
    (False, 2)
    """
    css = static_file("cirscope.css").read_text(encoding="utf-8") + static_file("standalone.css").read_text(
        encoding="utf-8")
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html_text(data.get('title', ''))}</title><style>{css}</style></head><body>"
        "<div id='cs-report' class='cirscope cirscope-report'><noscript>This report needs JavaScript.</noscript></div>"
        f"<script type='application/json' id='cs-data'>{script_json(data)}</script>"
        f"<script>{page_script()}</script></body></html>\n"
    )

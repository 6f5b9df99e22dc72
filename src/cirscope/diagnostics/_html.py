"""The audit report as one standalone HTML file: plotly.js inlined, thumbnails embedded, no network.

User data (ids, labels, captions, column names) reaches the page in two ways only: as HTML
text through :func:`cirscope._core.text.html_text` (or pandas' escaping ``to_html``), and as data
for the scripts through :func:`_script`, which serialises every value with
:func:`cirscope._core.text.script_json`; the JavaScript around it is constant. The charts' own
strings are escaped for plotly by the diagnostics (:func:`cirscope._core.text.plotly_text`).
"""

from __future__ import annotations

import base64
import datetime as _dt
import inspect
import re
from typing import TYPE_CHECKING, Any

from cirscope._core.text import escape_script_json, html_text, script_json

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.diagnostics._audit import AuditReport

_ROWS_PER_POINT = 24
_MAX_THUMBNAILS = 2000
_TABLE_ROWS = 30

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1180px;
       padding: 16px 28px; color: #222; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.86em; } td, th { padding: 3px 8px; border-bottom: 1px solid #eee; }
th { text-align: left; background: #f6f6f6; } .meta { color: #666; }
pre.doc { background: #f8f8f8; padding: 8px 12px; font-size: 0.82em; white-space: pre-wrap; }
.images { display: flex; flex-wrap: wrap; gap: 6px; min-height: 24px; margin: 6px 0 12px; }
.images figure { margin: 0; text-align: center; font-size: 0.7em; color: #555; }
.images img { display: block; border: 1px solid #ccc; }
.hint { color: #888; font-size: 0.85em; } .skipped { color: #a33; }
p.sentence { font-size: 1.02em; background: #f3f7fb; padding: 6px 10px; border-left: 3px solid #4C78A8; }
"""

_JS = """
function cirscopeLink(plotId) {
  var el = document.getElementById(plotId);
  if (!el || !el.on) { return; }
  el.on('plotly_click', function (ev) {
    var p = ev.points[0];
    var links = CS_LINKS[plotId] || {};
    var rows = links[p.curveNumber + ':' + p.pointNumber] || [];
    var box = document.getElementById(plotId + '-images');
    box.innerHTML = '';
    if (!rows.length) { box.textContent = 'No images behind this element.'; return; }
    rows.forEach(function (r) {
      var fig = document.createElement('figure');
      if (CS_THUMBS[r]) {
        var img = document.createElement('img');
        img.src = CS_THUMBS[r]; img.alt = CS_IDS[r] || String(r); img.title = 'row ' + r;
        fig.appendChild(img);
      }
      var cap = document.createElement('figcaption');
      cap.textContent = CS_IDS[r] || ('row ' + r);
      fig.appendChild(cap);
      box.appendChild(fig);
    });
  });
}
"""


class _JSON(str):
    """JSON text serialised elsewhere (plotly's encoder); :func:`_script` escapes it like the rest."""


_SLOT = re.compile(r"/\*@(\w+)\*/")


def _script(code: str, **data: Any) -> str:
    """An inline ``<script>``: constant ``code`` whose ``/*@name*/`` slots receive ``data`` as escaped JSON.

    The only way data enters a script of the report.

    Examples
    --------
    >>> _script("var A = /*@a*/;", a=["</script>"])
    '<script>var A = ["\\\\u003c/script\\\\u003e"];</script>'
    """

    def fill(match: re.Match[str]) -> str:
        value = data[match.group(1)]
        return escape_script_json(value) if isinstance(value, _JSON) else script_json(value)

    return f"<script>{_SLOT.sub(fill, code)}</script>"


def _figure_div(fig: Any, plot_id: str) -> str:
    """A chart: its ``<div>`` and the script that draws it with plotly.js and links its clicks."""
    from plotly.io.json import to_json_plotly

    spec = fig.to_dict()
    height = int(spec.get("layout", {}).get("height") or 450)
    draw = ("Plotly.newPlot(/*@id*/, /*@data*/, /*@layout*/, /*@config*/)"
            ".then(function () { cirscopeLink(/*@id*/); });")
    return (f"<div id='{html_text(plot_id)}' class=\"plotly-graph-div\" style='height:{height}px; width:100%;'></div>"
            + _script(draw, id=plot_id, data=_JSON(to_json_plotly(spec.get("data", []))),
                      layout=_JSON(to_json_plotly(spec.get("layout", {}))),
                      config={"displaylogo": False, "responsive": True}))


def _plotly_js() -> str:
    """plotly.js, inlined once (checked: nothing in it can end its script element early)."""
    from plotly.offline import get_plotlyjs

    js = get_plotlyjs()
    if re.search(r"</script|<!--", js, flags=re.IGNORECASE):  # pragma: no cover - a plotly.js build problem
        raise RuntimeError("This plotly.js build cannot be inlined safely (it holds '</script' or '<!--')")
    return f"<script type='text/javascript'>window.PlotlyConfig = {{MathJaxConfig: 'local'}};</script>" \
           f"<script charset='utf-8' type='text/javascript'>{js}</script>"


def _doc(result: Any) -> str:
    """The description and formula of the function that made ``result`` (its docstring up to Parameters).

    That function is named ``result.name`` and lives in the module of the result's class
    (:func:`~cirscope.diagnostics.skew` beside ``SkewResult``): the renderer needs no registry.
    """
    func = getattr(inspect.getmodule(type(result)), result.name, None)
    text = (inspect.getdoc(func) or "") if callable(func) else ""
    return text.split("\nParameters\n")[0].strip()


def _links(result: Any, fig: Any) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for curve, trace in enumerate(fig.data):
        meta = trace.meta if isinstance(trace.meta, dict) else {}
        if not meta.get("keys") or trace.customdata is None:
            continue
        for point in range(len(trace.customdata)):
            rows = result.rows_at(fig, curve, point)[:_ROWS_PER_POINT]
            out[f"{curve}:{point}"] = [int(r) for r in rows]
    return out


def _table(frame: Any) -> str:
    shown = frame.head(_TABLE_ROWS)
    body = shown.to_html(index=False, float_format=lambda x: f"{x:.4g}", border=0)
    more = f"<p class='hint'>First {_TABLE_ROWS} of {len(frame)} rows.</p>" if len(frame) > _TABLE_ROWS else ""
    return body + more


def _readings(result: Any) -> str:
    """The result's sentence and, per headline number, its range, meaning, noise floor and interval (text)."""
    sentence = result.sentence()
    readings = result.readings()
    readings = readings[(readings["range"] != "") | (readings["random"] != "") | (readings["interval"] != "")]
    body = readings.to_html(index=False, escape=True, border=0) if len(readings) else ""
    return (f"<p class='sentence'>{html_text(sentence)}</p>" if sentence else "") + (
        f"<details open><summary>Reading the numbers</summary>{body}</details>" if body else "")


def render_report(report: AuditReport, *, thumbnails: bool = True, thumb_size: int = 80,
                  findings: Any = None) -> str:
    """The report's HTML: findings (when given), summary, then per diagnostic its sentence, method,
    readings, chart, linked images and table."""
    sections: list[str] = []
    links: dict[str, dict[str, list[int]]] = {}
    for name, result in report.results.items():
        fig = result.figure()
        plot_id = f"fig-{name}"
        links[plot_id] = _links(result, fig)
        summary = "".join(f"<tr><th>{html_text(q)}</th><td>{html_text(text)}</td></tr>"
                          for q, text in result.summary_text())
        sections.append(
            f"<section id='{html_text(name)}'><h2>{html_text(result.title)} <span class='meta'>({html_text(name)})"
            f"</span></h2>{_readings(result)}<pre class='doc'>{html_text(_doc(result))}</pre>"
            f"<table>{summary}</table>{_figure_div(fig, plot_id)}"
            f"<p class='hint'>Click a bar or a point to see the images behind it.</p>"
            f"<div class='images' id='{html_text(plot_id)}-images'></div>"
            f"<details><summary>Table</summary>{_table(result.to_frame())}</details></section>"
        )
    thumbs: dict[int, str] = {}
    ids: dict[int, str] = {}
    if report.space is not None:
        gallery = report.space.gallery
        # in the order the charts come, so the first sections get their pictures when the budget runs out
        wanted = list(dict.fromkeys(r for per_fig in links.values() for rows in per_fig.values() for r in rows))
        all_ids = gallery.ids
        ids = {r: str(all_ids[r]) for r in wanted}
        if thumbnails:
            for r in wanted[:_MAX_THUMBNAILS]:
                data = gallery.thumbnail(r, size=thumb_size)
                thumbs[r] = "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")
    skipped = "".join(f"<li><b>{html_text(k)}</b>: {html_text(v)}</li>" for k, v in report.skipped.items())
    info = report.info
    summary_table = report.summary_text().to_html(index=False, border=0)
    data_js = _script("var CS_THUMBS = /*@thumbs*/;\nvar CS_IDS = /*@ids*/;\nvar CS_LINKS = /*@links*/;\n",
                      thumbs={str(k): v for k, v in thumbs.items()}, ids={str(k): v for k, v in ids.items()},
                      links=links)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    from cirscope._version import __version__

    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>cirscope audit: {html_text(info.get('attribute'))}</title>"
        f"<style>{_CSS}</style>{data_js}{_script(_JS)}{_plotly_js()}</head><body>"
        f"<h1>cirscope audit</h1><p class='meta'>{html_text(info.get('images'))} images, "
        f"{html_text(info.get('dim'))} dimensions, model <code>{html_text(info.get('model'))}</code>, attribute "
        f"<code>{html_text(info.get('attribute'))}</code>. Written {stamp} by cirscope {__version__}. "
        "Self-contained: opens without a network.</p>"
        + ("" if findings is None else "<h2>Findings: what to do</h2>"
           + findings.to_html(index=False, escape=True, border=0))
        + f"<h2>Summary</h2>{summary_table}"
        + (f"<h2 class='skipped'>Skipped</h2><ul class='skipped'>{skipped}</ul>" if skipped else "")
        + "".join(sections)
        + "</body></html>\n"
    )

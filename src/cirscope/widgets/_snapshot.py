"""A static HTML snapshot of an Explorer, sent beside its live view in every display.

Each display of an Explorer sends the widget view together with this self-contained
``text/html``: the map as inline SVG, the query and the grid's thumbnails as ``data:``
images, and a note that it is a snapshot and how to make it live. A saved notebook keeps
both. Live clients show the widget. ``jupyter nbconvert --to html`` (7.x) shows this
snapshot only for a notebook saved *without* widget state: with widget state it prefers the
widget view (``display_data_priority`` puts ``application/vnd.jupyter.widget-view+json``
first), drops the snapshot, and the page loads the widget manager and anywidget from CDNs,
so it is blank offline. ``cirscope export NOTEBOOK.ipynb`` (:mod:`cirscope.cli._export_page`)
drops the widget state: its page shows these snapshots and loads nothing from the network.
Every text from user data goes through :func:`cirscope._core.text.html_text`.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

import numpy as np

from cirscope._core.text import html_text
from cirscope.query._methods import method_label

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.widgets._explorer import Explorer

__all__ = ["SNAPSHOT_NOTE", "explorer_snapshot", "map_svg"]

#: the note shown on every snapshot
SNAPSHOT_NOTE = (
    "Snapshot: a static copy of this Explorer as it was displayed; no Python kernel is connected, so "
    "clicks and typing do nothing. To make it live, open the notebook in JupyterLab, Notebook 7, "
    "VS Code, Voila or marimo and run it."
)
MAX_POINTS = 3000
_IMAGE_TYPES = {b"\x89P": "image/png", b"\xff\xd8": "image/jpeg", b"RI": "image/webp", b"GI": "image/gif"}


def map_svg(coords: np.ndarray, colors: np.ndarray | None, highlighted: np.ndarray, *, width: int = 420,
            height: int = 300, max_points: int = MAX_POINTS) -> str:
    """The map as an inline SVG: up to ``max_points`` points (evenly spaced rows), highlighted ones larger.

    Examples
    --------
    >>> svg = map_svg(np.array([[0.0, 0.0], [1.0, 1.0]]), None, np.array([1]))
    >>> svg.startswith("<svg") and svg.count("<circle") == 2
    True
    """
    coords = np.asarray(coords, dtype=np.float64)
    n = len(coords)
    rows = np.unique(np.linspace(0, n - 1, num=min(n, max_points)).astype(np.int64)) if n else np.empty(0, np.int64)
    rows = rows[np.isfinite(coords[rows]).all(axis=1)] if n else rows
    hl = np.intersect1d(np.asarray(highlighted, dtype=np.int64), np.arange(n))
    rows = np.setdiff1d(rows, hl)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'style="border:1px solid #d9d9d9;border-radius:4px;background:#fff">']
    if len(rows) or len(hl):
        shown = np.concatenate([rows, hl])
        lo, hi = coords[shown].min(axis=0), coords[shown].max(axis=0)
        span = np.where(hi - lo > 0, hi - lo, 1.0)
        xy = (coords[shown] - lo) / span
        sx = 8 + xy[:, 0] * (width - 16)
        sy = height - 8 - xy[:, 1] * (height - 16)
        rgb = colors[shown] if colors is not None and len(colors) == n else np.full((len(shown), 3), 90)
        for i, (x, y, c) in enumerate(zip(sx, sy, rgb, strict=True)):
            big = i >= len(rows)
            stroke = ' stroke="#000" stroke-width="1"' if big else ""
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{4.5 if big else 2.2}" '
                         f'fill="rgb({int(c[0])},{int(c[1])},{int(c[2])})"{stroke}/>')
    parts.append("</svg>")
    return "".join(parts)


def _data_uri(image: bytes) -> str:
    kind = _IMAGE_TYPES.get(bytes(image[:2]), "image/jpeg")
    return f"data:{kind};base64,{base64.b64encode(bytes(image)).decode('ascii')}"


def explorer_snapshot(ex: Explorer) -> str:
    """The static HTML of an Explorer's current state (what its display stores as ``text/html``).

    Examples
    --------
    >>> ex = cs.Explorer(space, map="pca", reference=0, text="make it blue", k=5)
    >>> page = explorer_snapshot(ex)
    >>> "Snapshot:" in page and page.count("<img") == 6  # the reference and 5 results
    True
    >>> ex.close()
    """
    esc = html_text
    query, grid = ex.query, ex.grid
    out = ['<div class="cirscope-snapshot" style="font-family:system-ui,sans-serif;font-size:13px;color:#1f1f1f">',
           f'<p class="cs-snapshot-note" style="background:#fff8e1;border:1px solid #f0c36d;border-radius:4px;'
           f'padding:6px 8px;margin:0 0 8px">{esc(SNAPSHOT_NOTE)}</p>',
           '<div style="display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start">',
           map_svg(ex.map.coords, ex.map.colors, ex.map.highlighted), '<div class="cs-snapshot-query">']
    if query.reference >= 0:
        thumb = query.reference_thumbnail
        if thumb:
            out.append(f'<img src="{_data_uri(thumb)}" width="96" height="96" style="object-fit:contain" alt="">')
        out.append(f'<div><b>Reference</b>: {esc(query.reference_id)} (row {query.reference})</div>'
                   f'<div class="cs-snapshot-caption">{esc(query.reference_caption)}</div>')
    else:
        out.append("<div><b>Reference</b>: none</div>")
    out.append(f'<div><b>Modification</b>: {esc(query.text)}</div><div><b>Method</b>: {esc(method_label(query.method))}</div>'
               f'<div style="color:#5f5f5f">{esc(query.status)}</div></div></div>')
    out.append(f'<div style="margin-top:8px"><b>{esc(grid.title)}</b></div>'
               '<div class="cs-snapshot-grid" style="display:flex;flex-wrap:wrap;gap:6px">')
    scores = np.asarray(grid.scores if grid.scores is not None else [], dtype=np.float64)
    for i, (image, ident) in enumerate(zip(grid.thumbnails, grid.ids, strict=False)):
        score = f"{scores[i]:.3f} " if i < len(scores) else ""
        out.append(f'<figure style="margin:0;width:96px;text-align:center"><img src="{_data_uri(image)}" width="96" '
                   f'height="96" style="object-fit:contain" alt=""><figcaption style="font-size:11px">{esc(score)}'
                   f"{esc(ident)}</figcaption></figure>")
    out.append("</div></div>")
    return "".join(out)

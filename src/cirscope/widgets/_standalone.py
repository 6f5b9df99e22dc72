"""An interactive report that needs no kernel: one HTML file with the map, saved queries and their sliders.

:func:`to_html` (also ``Explorer.to_html``) searches each saved query at every setting of
its sliders on a grid (PDV's ``alpha_t``, ``alpha_i`` and ``beta``; the text weight ``a`` of
WeiMoCIR and Slerp), and writes one self-contained page: the map pans and zooms, hovering a
point shows its thumbnail and metadata, a menu switches between the saved queries, and the
sliders snap to the precomputed values, showing the very results ``space.search`` gives
there. The page inlines its script, styles, data and images (no network request; a
Content-Security-Policy forbids any); every text from the data is shown as text.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cirscope._core.atomic import atomic_write_bytes
from cirscope.query._composed import ComposedQuery
from cirscope.query._methods import METHODS, method_label
from cirscope.widgets._standalone_data import (
    DEFAULT_ALPHAS,
    DEFAULT_BETAS,
    DEFAULT_WEIGHTS,
    SCORE_SCALE,
    GridResults,
    SavedQuery,
    grid_results,
    map_frame,
    packed,
    quantize_coords,
    query_axes,
    text_columns,
    thumbnails,
)

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.space._space import Space

__all__ = ["report_data", "saved_queries", "to_html"]

_QUERY_KEYS = ("reference", "text", "method", "reference_text", "composed_text", "label")
#: Default budget of distinct thumbnail bytes in one report (before base64).
THUMB_BUDGET = 40_000_000


def _explorer_parts(source: Any) -> tuple[Space, Any]:
    """``(space, explorer or None)`` of a Space or an Explorer."""
    from cirscope.space._space import Space

    if isinstance(source, Space):
        return source, None
    # an Explorer (recognised by its parts: its module imports this one, not the other way round)
    if all(hasattr(source, name) for name in ("map", "query", "grid")) and isinstance(getattr(source, "space", None),
                                                                                    Space):
        return source.space, source
    raise TypeError(f"to_html takes a cs.Space or a cs.Explorer, got {type(source).__name__}")


def _check_keys(given: Mapping[str, Any], allowed: Sequence[str]) -> None:
    for key in given:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), list(allowed), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"use {list(allowed)}"
            raise TypeError(f"A saved query has an unknown key {key!r}; {hint}")


def _label(query: Any, method: str, space: Space) -> str:
    if isinstance(query, ComposedQuery):
        ref = query.reference
        ref_s = (str(space.gallery.ids[int(ref)]) if isinstance(ref, (int, np.integer))
                 else str(ref) if isinstance(ref, (str, Path)) else f"<{type(ref).__name__}>")
        return f"{ref_s} + \u201c{query.text}\u201d ({method_label(method)})"
    if isinstance(query, (int, np.integer)):
        return f"images like {space.gallery.ids[int(query)]}"
    if isinstance(query, str):
        return f"text \u201c{query}\u201d"
    return f"images like {query}" if isinstance(query, Path) else f"images like <{type(query).__name__}>"


def _gallery_row(space: Space, reference: Any) -> Any:
    """A reference given by gallery id as its row (other references unchanged)."""
    if isinstance(reference, str):
        hit = np.flatnonzero(space.gallery.ids == reference)
        if hit.size:
            return int(hit[0])
        if not Path(reference).is_file():
            raise KeyError(f"Reference {reference!r} is neither an id in the gallery nor an image file")
        return Path(reference)
    return reference


def _saved(spec: Any, space: Space, default_method: str) -> SavedQuery:
    """One entry of ``queries=`` as a :class:`SavedQuery`."""
    if isinstance(spec, SavedQuery):
        return spec
    if isinstance(spec, ComposedQuery):
        return SavedQuery(spec, default_method, _label(spec, default_method, space))
    if isinstance(spec, (bool, np.bool_)):
        raise TypeError("A saved query must be a dict, a cs.ComposedQuery, a text or a gallery row, not a bool")
    if isinstance(spec, (int, np.integer)):
        row = int(spec)
        if not 0 <= row < len(space):
            raise IndexError(f"Saved query row {row} is outside the gallery (0..{len(space) - 1})")
        return SavedQuery(row, "image", _label(row, "image", space))
    if isinstance(spec, str):
        if not spec.strip():
            raise ValueError("A saved text query is empty")
        return SavedQuery(spec, "text", _label(spec, "text", space))
    if not isinstance(spec, Mapping):
        raise TypeError(f"A saved query must be a dict, a cs.ComposedQuery, a text or a gallery row, got "
                        f"{type(spec).__name__}")
    method = str(spec.get("method", default_method))
    if method not in METHODS:
        raise ValueError(f"Unknown composing method {method!r}; choose one of {list(METHODS)}")
    names = [p.name for p in METHODS[method].params]
    _check_keys(spec, [*_QUERY_KEYS, *names])
    reference, text = spec.get("reference", -1), str(spec.get("text", "") or "").strip()
    if reference is None or (isinstance(reference, (int, np.integer)) and reference < 0):
        if not text:
            raise ValueError("A saved query needs a reference, a text or both")
        saved = SavedQuery(text, "text", _label(text, "text", space))
    elif not text:
        reference = _gallery_row(space, reference)
        saved = (_saved(reference, space, default_method) if isinstance(reference, (int, np.integer))
                 else SavedQuery(reference, "image", _label(reference, "image", space)))
    else:
        query = ComposedQuery(reference, text, reference_text=spec.get("reference_text") or None,
                              composed_text=spec.get("composed_text") or None)
        start = {name: float(spec[name]) for name in names if spec.get(name) is not None}
        saved = SavedQuery(query, method, _label(query, method, space), start)
    if spec.get("label"):
        saved.label = str(spec["label"])
    return saved


def saved_queries(space: Space, queries: Any = None, explorer: Any = None) -> list[SavedQuery]:
    """The report's queries: the Explorer's current one (if any) followed by ``queries``.

    ``queries`` is one query or a list of them, each a dict (``reference``, ``text``,
    ``method``, optional ``reference_text``, ``composed_text``, ``label`` and the method's
    parameters as the sliders' starting values), a :class:`~cirscope.ComposedQuery` (PDV),
    a text or a gallery row. Duplicates are kept once.

    Examples
    --------
    >>> [q.label for q in saved_queries(space, [{"reference": 0, "text": "make it blue", "method": "slerp"},
    ...                                          "a red star"])]  # doctest: +ELLIPSIS
    ['... + “make it blue” (Slerp)', 'text “a red star”']
    """
    out: list[SavedQuery] = []
    if explorer is not None:
        p = explorer.query
        spec = {"reference": p.reference, "text": p.text, "method": p.method,
                "reference_text": p.reference_text_override, "composed_text": p.composed_text_override,
                **{prm.name: getattr(p, prm.name) for prm in METHODS[p.method].params}}
        if p.text.strip() or 0 <= p.reference < len(space):
            out.append(_saved(spec, space, p.method))
    if queries is not None:
        items = queries if isinstance(queries, (list, tuple)) else [queries]
        out.extend(_saved(q, space, "pdv") for q in items)
    unique: dict[tuple, SavedQuery] = {}
    for q in out:
        key = (repr(q.query), q.method, tuple(sorted(q.start.items())))
        unique.setdefault(key, q)
    return list(unique.values())


def _query_payload(saved: SavedQuery, res: GridResults, k: int, n: int, frame: dict, coords: np.ndarray) -> dict:
    from cirscope.projection._place import place_rows
    from cirscope.widgets._controller import PLACE_NEIGHBORS

    info = res.info
    method = METHODS.get(saved.method)
    composed = isinstance(saved.query, ComposedQuery)
    places = place_rows(res.rows, np.nan_to_num(res.scores, nan=-1.0), coords, k=PLACE_NEIGHBORS)
    found = np.isfinite(places).all(axis=1)
    row_dtype = "uint16" if n < 65535 else "uint32"
    empty = np.iinfo(row_dtype).max
    start = [values.index(saved.start[p.name]) if p.name in saved.start else
             int(np.argmin(np.abs(np.asarray(values) - p.default))) for p, values in res.axes]
    ref_row = info.get("reference_row")
    return {
        "label": saved.label,
        "kind": "composed" if composed else saved.method,
        "method": saved.method,
        "method_title": method_label(saved.method),
        "method_name": method.full_name if method is not None else "",
        "formula": method.formula if method is not None and composed else "",
        "reference_row": int(ref_row) if ref_row is not None else -1,
        "reference": str(info.get("reference") or ""),
        "text": str(info.get("text") or (saved.query if isinstance(saved.query, str) else "")),
        "reference_text": str(info.get("reference_text") or ""),
        "reference_text_source": str(info.get("reference_text_source") or ""),
        "composed_text": str(info.get("composed_text") or ""),
        "composed_text_source": str(info.get("composed_text_source") or ""),
        "axes": [{"name": p.name, "doc": p.doc, "values": values} for p, values in res.axes],
        "start": start,
        "k": k,
        "points": len(res.rows),
        "rows": packed(np.where(res.rows >= 0, res.rows, empty), row_dtype),
        "empty": int(empty),
        "scores": packed(np.rint(np.nan_to_num(res.scores) * SCORE_SCALE), "int16"),
        "place": packed(quantize_coords(np.where(found[:, None], places, frame["x0"]), frame), "uint16"),
        "placed": packed(found, "uint8"),
    }


def report_data(space: Space, saved: list[SavedQuery], *, explorer: Any = None, grids: Mapping[str, Any],
                k: int = 20, thumbs: bool | str = True, thumb_size: int = 64, thumb_budget: int = THUMB_BUDGET,
                map: Any = "auto", color_by: str | None = None, title: str = "", progress: bool = True) -> dict:
    """Everything the page shows, as JSON-ready data (what :func:`to_html` embeds).

    Examples
    --------
    >>> data = report_data(space, saved_queries(space, ["a red star"]), grids={}, k=5, thumbs=False, map="pca")
    >>> data["n"], len(data["queries"]), data["queries"][0]["points"], data["thumbs"]["count"]
    (120, 1, 1, 0)
    """
    from tqdm.auto import tqdm

    from cirscope.widgets._map_data import color_encoding, default_color_column, drawing_columns, map_coords

    meta = space.gallery.metadata
    n = len(space)
    if explorer is not None:
        m = explorer.map
        coords = np.asarray(m.coords, dtype=np.float32)
        color = {"rgb": m.colors, "legend": list(m.legend), "colorbar": dict(m.colorbar), "by": m.color_by}
    else:
        coords = map_coords(space, map)
        by = default_color_column(meta) if color_by is None else color_by
        if by and by not in meta.columns:
            raise KeyError(f"Cannot colour by {by!r}: not a metadata column; columns are {list(meta.columns)}")
        enc = color_encoding(meta[by] if by else None)
        color = {"rgb": enc["rgb"], "legend": enc["legend"], "colorbar": enc["colorbar"], "by": by}
    frame = map_frame(coords)
    axes = [query_axes(q, grids) for q in saved]
    sizes = [int(np.prod([len(v) for _, v in a])) for a in axes]
    queries, results = [], []
    with tqdm(total=sum(sizes), desc="Report searches", unit="search", disable=not progress or sum(sizes) < 200,
              leave=False) as bar:
        for q, a in zip(saved, axes, strict=True):
            res = grid_results(space, q, a, k, progress=bar)
            results.append(res)
            queries.append(_query_payload(q, res, k, n, frame, coords))
    order = np.empty(0, np.int64)
    if thumbs:
        shown = [np.asarray([q["reference_row"]]) for q in queries] + [r.rows.ravel() for r in results]
        first = np.concatenate(shown) if shown else np.empty(0, np.int64)
        first = first[first >= 0]
        _, where = np.unique(first, return_index=True)
        order = first[np.sort(where)]
        if thumbs != "results":
            rest = np.setdiff1d(np.arange(n), order)
            order = np.concatenate([order, rest])
    th = thumbnails(space.gallery, order, size=thumb_size, budget=thumb_budget, progress=progress)
    hidden = drawing_columns(meta)
    shown_columns = [c for c in meta.columns if c != "id" and c not in hidden]
    from cirscope._version import __version__

    rgb = color["rgb"]
    return {
        "format": 1,
        "title": title,
        "n": n,
        "about": {"images": n, "dim": int(space.dim), "model": str(getattr(space.embedder, "name", "") or ""),
                  "written": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                  "version": __version__, "settings": int(sum(sizes))},
        "map": {"frame": frame, "xy": packed(quantize_coords(coords, frame), "uint16"),
                "rgb": packed(rgb, "uint8") if rgb is not None and len(rgb) == n else None,
                "color_by": str(color["by"] or ""), "legend": color["legend"], "colorbar": color["colorbar"],
                "height": int(getattr(explorer.map, "height", 440)) if explorer is not None else 440},
        "ids": [str(i) for i in space.gallery.ids],
        "columns": text_columns(meta, shown_columns),
        "thumbs": {**th, "index": th["index"] if th["count"] else None, "size": int(thumb_size),
                   "asked": thumbs if isinstance(thumbs, str) else bool(thumbs)},
        "queries": queries,
    }


def to_html(
    source: Any,
    path: str | os.PathLike,
    queries: Any = None,
    *,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    betas: Sequence[float] = DEFAULT_BETAS,
    weights: Sequence[float] = DEFAULT_WEIGHTS,
    grid: Mapping[str, Sequence[float]] | None = None,
    k: int | None = None,
    thumbs: bool | str = True,
    thumb_size: int = 64,
    thumb_budget: int = THUMB_BUDGET,
    map: Any = "auto",
    color_by: str | None = None,
    title: str | None = None,
    progress: bool = True,
) -> Path:
    """Write an interactive report that opens offline in any browser, without a Python kernel.

    Parameters
    ----------
    source
        A :class:`~cirscope.Explorer` (its map, colours and current query are used) or a
        :class:`~cirscope.Space`.
    path
        The ``.html`` file to write (written atomically; its folder must exist).
    queries
        Saved queries besides the Explorer's current one: a dict (``reference``, ``text``,
        ``method``, optional ``reference_text``, ``composed_text``, ``label`` and slider
        starting values such as ``alpha_t=1.2``), a :class:`~cirscope.ComposedQuery`
        (PDV), a text or a gallery row, or a list of them.
    alphas, betas, weights
        The slider values to precompute: PDV's ``alpha_t`` and ``alpha_i``, PDV's ``beta``,
        and the text weight ``a`` of WeiMoCIR and Slerp. Each query's own starting values are
        added. A PDV query costs ``len(alphas)**2 * len(betas)`` searches (180 by default).
    grid
        Values for other parameters by name (e.g. a registered method's), overriding the above.
    k
        Results per setting (default: the Explorer's, else 20).
    thumbs
        ``True``: a thumbnail for every image (hover cards and results), up to
        ``thumb_budget`` bytes, the results' images first; ``"results"``: only the images
        that can appear as results or references; ``False``: none.
    thumb_size
        Longest side of the thumbnails (WebP) in pixels.
    map, color_by
        For a Space: the map (``"auto"``, ``"umap"``, ``"pca"`` or an ``(N, 2)`` array) and
        the column colouring it.
    title
        The page title (default: "cirscope report").
    progress
        Show progress bars.

    Returns
    -------
    pathlib.Path
        The written file.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     page = cs.to_html(space, f"{folder}/report.html", {"reference": 0, "text": "make it blue"},
    ...                       alphas=[0.5, 1.0], betas=[0.75], thumbs="results", map="pca", progress=False)
    ...     text = page.read_text(encoding="utf-8")
    >>> "http://" in text or "https://" in text
    False
    """
    from cirscope.widgets._standalone_page import render_page

    space, explorer = _explorer_parts(source)
    if k is None:
        k = int(explorer.query.k) if explorer is not None else 20
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= 500:
        raise ValueError(f"k must be an integer from 1 to 500, got {k!r}")
    if thumbs not in (True, False, "results"):
        raise ValueError(f"thumbs must be True, False or 'results', got {thumbs!r}")
    if not 16 <= int(thumb_size) <= 256:
        raise ValueError(f"thumb_size must be 16..256 pixels, got {thumb_size}")
    target = Path(path)
    if not target.parent.is_dir():
        raise FileNotFoundError(f"The folder {target.parent} does not exist; create it first")
    grids: dict[str, Any] = {"alpha_t": alphas, "alpha_i": alphas, "beta": betas, "a": weights, **(grid or {})}
    saved = saved_queries(space, queries, explorer)
    data = report_data(space, saved, explorer=explorer, grids=grids, k=int(k), thumbs=thumbs,
                       thumb_size=int(thumb_size), thumb_budget=int(thumb_budget), map=map, color_by=color_by,
                       title=title or "cirscope report", progress=progress)
    atomic_write_bytes(target, render_page(data).encode("utf-8"))
    return target

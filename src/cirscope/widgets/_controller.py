"""The logic linking the map, the query panel and the grid to a :class:`~cirscope.Space`.

Widgets hold state only; this module observes their traits, runs
``space.search(query, method=..., k=..., **params)`` and writes the results back: rows,
scores and thumbnails to the grid, highlights and the query's position to the map, the
texts actually used to the panel.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cirscope._compose import METHODS
from cirscope._query import ComposedQuery
from cirscope.widgets._map_data import color_encoding, pca_coords, place_query, row_metadata

if TYPE_CHECKING:  # pragma: no cover
    from cirscope._space import Space
    from cirscope.widgets._grid import NeighborGrid
    from cirscope.widgets._map_view import MapView
    from cirscope.widgets._query_panel import QueryPanel

__all__ = [
    "ExplorerController",
    "MapBinding",
    "color_columns",
    "default_color_column",
    "map_coords",
    "query_for",
]

# errors a bad query can raise (shown in the panel instead of an unseen traceback)
QUERY_ERRORS = (ValueError, TypeError, KeyError, IndexError, RuntimeError, FileNotFoundError)
_SKIP_COLUMNS = ("id",)
AUTO_UMAP_LIMIT = 20_000


def map_coords(space: Space, method: Any = "auto") -> np.ndarray:
    """The map coordinates for ``space``: ``"umap"``, ``"pca"``, ``"auto"`` or an ``(N, 2)`` array.

    ``"auto"`` is UMAP up to :data:`AUTO_UMAP_LIMIT` images (cached on disk by
    ``space.map``) and PCA above. PCA falls back to :func:`pca_coords` where ``space.map``
    is not available.

    Examples
    --------
    >>> map_coords(space, np.zeros((len(space), 2))).shape  # doctest: +SKIP
    (300, 2)
    """
    n = len(space)
    if not isinstance(method, str):
        arr = np.asarray(method, dtype=np.float32)
        if arr.shape != (n, 2):
            raise ValueError(f"map coordinates must have shape ({n}, 2), one row per image; got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError("map coordinates contain NaN or infinite values")
        return arr
    if method not in ("auto", "umap", "pca"):
        raise ValueError(f"Unknown map method {method!r}; use 'umap', 'pca', 'auto' or pass an (N, 2) array")
    wanted = method
    if method == "auto":
        method = "umap" if n <= AUTO_UMAP_LIMIT else "pca"
    try:
        return np.asarray(space.map(method), dtype=np.float32)
    except ModuleNotFoundError as exc:
        if exc.name != "cirscope._map" or wanted == "umap":
            raise
        return pca_coords(space.image_embeddings)


def color_columns(metadata: pd.DataFrame) -> list[str]:
    """Columns worth colouring by: numeric ones and text ones that repeat values.

    Examples
    --------
    >>> color_columns(pd.DataFrame({"id": ["a", "b", "c"], "k": ["x", "x", "y"], "u": ["p", "q", "r"]}))
    ['k']
    """
    out = []
    for name in metadata.columns:
        if name in _SKIP_COLUMNS:
            continue
        col = metadata[name]
        if pd.api.types.is_numeric_dtype(col) or col.nunique(dropna=True) < max(2, len(col)):
            if col.nunique(dropna=True) >= 1:
                out.append(str(name))
    return out


def default_color_column(metadata: pd.DataFrame) -> str:
    """The first column with 2 to 20 distinct values ("" when there is none).

    Examples
    --------
    >>> default_color_column(pd.DataFrame({"id": ["a", "b"], "shape": ["star", "circle"]}))
    'shape'
    """
    for name in color_columns(metadata):
        if 2 <= metadata[name].nunique(dropna=True) <= 20:
            return name
    return ""


def query_for(
    reference: int,
    text: str,
    method: str,
    reference_text: str = "",
    composed_text: str = "",
) -> tuple[Any, str] | None:
    """The query object and method for the panel's state, or ``None`` when there is nothing to search.

    No reference: a text query. No text: an image query on the reference row. Both: a
    :class:`~cirscope.ComposedQuery` searched with ``method``; typed texts ("" = automatic)
    override the reference and composed texts.

    Examples
    --------
    >>> query_for(-1, "a red star", "pdv")
    ('a red star', 'text')
    >>> query_for(4, "", "pdv")
    (4, 'image')
    >>> query_for(4, "make it blue", "slerp")
    (ComposedQuery(reference=4, text='make it blue'), 'slerp')
    """
    text = text.strip()
    if reference < 0:
        return (text, "text") if text else None
    if not text:
        return reference, "image"
    query = ComposedQuery(
        reference, text, reference_text=reference_text.strip() or None, composed_text=composed_text.strip() or None
    )
    return query, method


class MapBinding:
    """Keeps a :class:`MapView` in step with a space: colours by ``color_by``, hover cards.

    Examples
    --------
    >>> binding = MapBinding(view, space)  # doctest: +SKIP
    >>> view.color_by = "color"            # doctest: +SKIP  (recolours the points)
    """

    def __init__(self, view: MapView, space: Space, thumb_size: int = 128):
        self.view = view
        self.space = space
        self.metadata = space.gallery.metadata
        self.thumb_size = thumb_size
        view.color_columns = color_columns(self.metadata)
        if not view.color_by:
            view.color_by = default_color_column(self.metadata)
        self.recolor()
        view.observe(self._on_color_by, "color_by")
        view.observe(self._on_hover, "hovered")

    def recolor(self) -> None:
        """Recompute point colours and the legend from ``view.color_by``."""
        name = self.view.color_by
        if name and name not in self.metadata.columns:
            raise KeyError(f"Cannot colour by {name!r}: not a metadata column; columns are {list(self.metadata.columns)}")
        enc = color_encoding(self.metadata[name] if name else None)
        with self.view.hold_sync():
            self.view.colors = enc["rgb"]
            self.view.legend = enc["legend"]
            self.view.colorbar = enc["colorbar"]

    def _on_color_by(self, change: dict) -> None:
        self.recolor()

    def _on_hover(self, change: dict) -> None:
        row = int(change["new"])
        if row < 0 or row >= len(self.metadata):
            return
        meta = row_metadata(self.metadata, [row])[0]
        image = self.space.gallery.thumbnail(row, size=self.thumb_size)
        with self.view.hold_sync():
            self.view.hover_image = image
            self.view.hover_meta = meta
            self.view.hover_row = row

    def close(self) -> None:
        self.view.unobserve(self._on_color_by, "color_by")
        self.view.unobserve(self._on_hover, "hovered")


class ExplorerController:
    """Links a map, a query panel and a grid to a space.

    Every change of the panel's reference, text, method, sliders, ``k`` or text
    overrides re-runs the search; clicking a thumbnail or a map point makes it the
    reference; the grid's ``mode`` switches between the results and the map selection.

    Parameters
    ----------
    space
        The :class:`~cirscope.Space`.
    map_view, panel, grid
        The widgets.
    coords
        ``(N, 2)`` map coordinates (see :func:`map_coords`).
    selection_limit
        Most map-selected rows shown in the grid.

    Attributes
    ----------
    result : pandas.DataFrame or None
        The last search result (``space.search`` output).

    Examples
    --------
    >>> ctl = ExplorerController(space, MapView(), QueryPanel(), NeighborGrid(), coords=xy)  # doctest: +SKIP
    >>> ctl.panel.reference = 0; ctl.panel.text = "make it blue"  # doctest: +SKIP
    >>> ctl.result[["rank", "id", "score"]]  # doctest: +SKIP
    """

    def __init__(
        self,
        space: Space,
        map_view: MapView,
        panel: QueryPanel,
        grid: NeighborGrid,
        *,
        coords: np.ndarray,
        selection_limit: int = 200,
    ):
        self.space = space
        self.map = map_view
        self.panel = panel
        self.grid = grid
        self.coords = np.asarray(coords, dtype=np.float32)
        self.metadata = space.gallery.metadata
        self.selection_limit = selection_limit
        self.result: pd.DataFrame | None = None
        self._query_key: tuple | None = None
        self._query: Any = None
        self.map.coords = self.coords
        self.map_binding = MapBinding(map_view, space)
        self._watch = [
            (panel, self._on_reference, ["reference"]),
            (panel, self._on_query, ["text", "method", "alpha_t", "alpha_i", "beta", "a", "k",
                                     "reference_text_override", "composed_text_override", "run_count"]),
            (map_view, self._on_selection, ["selected"]),
            (grid, self._on_mode, ["mode"]),
        ]  # fmt: skip
        for widget, handler, names in self._watch:
            widget.observe(handler, names)
        map_view.on_msg(self._on_msg)
        grid.on_msg(self._on_msg)
        self._on_reference({"new": panel.reference})

    # ------------------------------------------------------------------ events
    def _on_msg(self, widget: Any, content: dict, buffers: list) -> None:
        if isinstance(content, dict) and content.get("event") == "click":
            row = int(content.get("row", -1))
            if 0 <= row < len(self.metadata):
                self.panel.reference = row

    def _on_reference(self, change: dict) -> None:
        row = int(change["new"])
        with self.panel.hold_sync():
            if 0 <= row < len(self.metadata):
                meta = self.metadata.iloc[row]
                self.panel.reference_id = str(meta["id"])
                caption = meta["caption"] if "caption" in meta.index else ""
                self.panel.reference_caption = caption if isinstance(caption, str) else ""
                self.panel.reference_thumbnail = self.space.gallery.thumbnail(row, size=128)
            else:
                self.panel.reference_id = ""
                self.panel.reference_caption = ""
                self.panel.reference_thumbnail = b""
            # typed texts described the previous reference
            self.panel.reference_text_override = ""
            self.panel.composed_text_override = ""
        self.map.reference = row
        self.run()

    def _on_query(self, change: dict) -> None:
        self.run()

    def _on_selection(self, change: dict) -> None:
        if self.grid.mode == "selection":
            self.show_selection()

    def _on_mode(self, change: dict) -> None:
        if change["new"] == "selection":
            self.show_selection()
        else:
            self._show_result()

    # ------------------------------------------------------------------ actions
    def params(self) -> dict[str, float]:
        """The current values of the selected method's parameters."""
        return {p.name: float(getattr(self.panel, p.name)) for p in METHODS[self.panel.method].params}

    def _current_query(self) -> tuple[Any, str] | None:
        p = self.panel
        key = (p.reference, p.text.strip(), p.reference_text_override.strip(), p.composed_text_override.strip())
        if key != self._query_key:  # a new ComposedQuery only when its inputs change (it caches its texts)
            self._query = query_for(p.reference, p.text, p.method, p.reference_text_override, p.composed_text_override)
            self._query_key = key
        if self._query is None:
            return None
        query, method = self._query
        return query, (p.method if isinstance(query, ComposedQuery) else method)

    def run(self) -> pd.DataFrame | None:
        """Search with the panel's settings and update the grid and the map; returns the result."""
        current = self._current_query()
        if current is None:
            self.result = None
            self.panel.status = "Click a thumbnail or a map point to set the reference, or type a text."
            self._show_result()
            return None
        query, method = current
        params = self.params() if isinstance(query, ComposedQuery) else {}
        start = time.perf_counter()
        try:
            result = self.space.search(query, method=method, k=int(self.panel.k), **params)
        except QUERY_ERRORS as exc:
            self.panel.error = f"{type(exc).__name__}: {exc}"
            return None
        elapsed = (time.perf_counter() - start) * 1000
        self.result = result
        info = result.attrs.get("query", {})
        with self.panel.hold_sync():
            self.panel.error = ""
            self.panel.reference_text = str(info.get("reference_text") or "")
            self.panel.reference_text_source = str(info.get("reference_text_source") or "")
            self.panel.composed_text = str(info.get("composed_text") or "")
            self.panel.composed_text_source = str(info.get("composed_text_source") or "")
            self.panel.status = f"{METHODS[method].title}: {len(result)} results in {elapsed:.0f} ms"
        self._show_result()
        return result

    def _show_result(self) -> None:
        result = self.result
        rows = np.empty(0, np.int64) if result is None else result["row"].to_numpy(np.int64)
        scores = np.empty(0, np.float32) if result is None else result["score"].to_numpy(np.float32)
        point = place_query(self.coords, rows, scores)
        with self.map.hold_sync():
            self.map.highlighted = rows.astype(np.int32)
            self.map.query_point = list(point) if point is not None else []
        if self.grid.mode == "query":
            title = "" if result is None else f"Top {len(result)}"
            self._fill_grid(rows, scores, result if result is not None else pd.DataFrame(), title)

    def show_selection(self) -> None:
        """Fill the grid with the map's selected rows (at most ``selection_limit``)."""
        selected = np.asarray(self.map.selected, dtype=np.int64)
        shown = selected[: self.selection_limit]
        frame = self.metadata.iloc[shown].reset_index(drop=True)
        frame.insert(0, "row", shown)
        more = f" (showing {len(shown):,})" if len(shown) < len(selected) else ""
        self._fill_grid(shown, None, frame, f"Map selection: {len(selected):,} images{more}")

    def _fill_grid(self, rows: np.ndarray, scores: np.ndarray | None, frame: pd.DataFrame, title: str) -> None:
        gallery = self.space.gallery
        size = int(self.grid.thumb_size)
        with self.grid.hold_sync():
            self.grid.frame = frame
            self.grid.rows = [int(r) for r in rows]
            self.grid.ids = [str(i) for i in gallery.ids[rows]] if len(rows) else []
            self.grid.scores = scores if scores is not None else np.empty(0, np.float32)
            self.grid.thumbnails = [gallery.thumbnail(int(r), size=size) for r in rows]
            self.grid.metadata = row_metadata(self.metadata, rows, skip=("id",))
            self.grid.title = title
            self.grid.version += 1

    def close(self) -> None:
        """Stop observing the widgets."""
        for widget, handler, names in self._watch:
            widget.unobserve(handler, names)
        self.map_binding.close()

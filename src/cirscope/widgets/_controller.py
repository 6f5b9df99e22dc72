"""The links between a bound map, query panel and grid (what makes them one Explorer).

* a click on a map point or a thumbnail makes it the panel's reference;
* each finished search highlights the top-k on the map, places the query there (with
  :func:`cirscope.projection._place.place`) and fills the grid;
* a box/lasso selection on the map, or the rows a diagnostics panel shows
  (its ``shown_rows`` trait), fill the grid too; the grid's toggle flips between the two;
* a composed query's path (``alpha`` from 0 to its maximum) is drawn on the map, computed
  once per query (not per ``alpha`` move); when a fixed parameter's slider (``beta``) moves,
  the slider's pass stays one search and the path follows once the slider rests
  (:data:`PATH_DELAY_S`, on the kernel's event loop; without one, :meth:`refresh_path`);
  when the map's Play reaches its end, the panel's ``alpha`` is set to that value, so Python
  and the grid agree with what was shown.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from cirscope.query._methods import method_label
from cirscope.widgets._map_data import panel_path, path_key
from cirscope.widgets._refine import FeedbackLink

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.space._space import Space
    from cirscope.widgets._grid import NeighborGrid
    from cirscope.widgets._map_view import MapView
    from cirscope.widgets._query_panel import QueryPanel

__all__ = ["ExplorerController", "gallery_sample", "query_position"]

SELECTION_LIMIT = 200
PLACE_NEIGHBORS = 10
#: After a fixed parameter's slider move, the path is computed once the slider rests this long (s).
PATH_DELAY_S = 0.25


def gallery_sample(n: int, k: int) -> np.ndarray:
    """``k`` rows spread evenly over a gallery of ``n`` (what the grid shows before any query).

    Examples
    --------
    >>> gallery_sample(10, 4).tolist()
    [0, 3, 6, 9]
    """
    k = max(0, min(int(k), n))
    return np.unique(np.linspace(0, n - 1, num=k).astype(np.int64)) if k else np.empty(0, np.int64)


def query_position(
    space: Space | None,
    vector: np.ndarray | None,
    coords: np.ndarray,
    *,
    rows: np.ndarray | None = None,
    scores: np.ndarray | None = None,
) -> list[float]:
    """Where a query falls on the map (``[]`` for none), via :func:`cirscope.projection._place.place`.

    Pass the search's top rows and scores (``rows=``, ``scores=``) to place it from them
    without a second neighbour search (what the Explorer does on every slider move); a bare
    ``vector`` is placed through the space's index.

    Examples
    --------
    >>> xy = np.array([[0.0, 0.0], [1.0, 1.0]])
    >>> query_position(None, None, xy, rows=np.array([1, 0]), scores=np.array([0.9, 0.9]))
    [0.5, 0.5]
    >>> coords = space.map("pca")
    >>> x, y = query_position(space, space.image_embeddings[0], coords)
    >>> bool(coords[:, 0].min() <= x <= coords[:, 0].max())
    True
    """
    from cirscope.projection._place import place

    if rows is not None and scores is not None:
        if len(rows) == 0:
            return []
        xy = place(coords=coords, rows=rows, scores=scores, k=PLACE_NEIGHBORS)[0]
    elif vector is None or space is None:
        return []
    else:
        k = min(PLACE_NEIGHBORS, len(coords))
        xy = place(vector, space.image_embeddings, coords, k=k, index=space.index)[0]
    return [float(xy[0]), float(xy[1])] if np.all(np.isfinite(xy)) else []


class ExplorerController:
    """Links a map, a query panel and a grid that are bound to the same space.

    Parameters
    ----------
    space
        The :class:`~cirscope.Space`.
    map_view, panel, grid
        A :class:`MapView`, :class:`QueryPanel` and :class:`NeighborGrid` made with ``space``.
    diagnostics
        Optional widget with a ``shown_rows`` trait (list of rows); they are shown in the
        grid and selected on the map.
    selection_limit
        Most selected rows shown in the grid.

    Examples
    --------
    >>> from cirscope.widgets import MapView, NeighborGrid, QueryPanel
    >>> ctl = ExplorerController(space, MapView(space, map="pca"), QueryPanel(space), NeighborGrid(space))
    >>> ctl.panel.reference = 0  # an image query: its top 20 fill the grid, the map highlights them
    >>> ctl.grid.rows == ctl.panel.results, len(ctl.map.highlighted), ctl.map.reference
    (True, 20, 0)
    >>> ctl.close()
    """

    def __init__(
        self,
        space: Space,
        map_view: MapView,
        panel: QueryPanel,
        grid: NeighborGrid,
        *,
        diagnostics: Any = None,
        selection_limit: int = SELECTION_LIMIT,
    ):
        for part, name in ((map_view, "MapView"), (panel, "QueryPanel"), (grid, "NeighborGrid")):
            if getattr(part, "binding", None) is None:
                raise ValueError(f"The {name} must be made with the space, e.g. {name}(space)")
        self.space = space
        self.map = map_view
        self.panel = panel
        self.grid = grid
        self.diagnostics = diagnostics
        self.selection_limit = selection_limit
        self.coords = map_view.binding.coords  # type: ignore[union-attr]
        self.selection_label = "Map selection"
        self._selection_rows = np.empty(0, np.int64)
        self._keep_mode = False  # set by select(..., show=False): the grid stays on what it shows
        #: the rows inside the metadata filters (``None``: all), see :meth:`set_filter_mask`
        self.filter_mask: np.ndarray | None = None
        self._filtering = False
        self._path_key: tuple | None = None
        self._path_timer: Any = None
        #: the query's path on the map (``None``: none) and what computing it took
        self.path: Any = None
        self.path_ms = 0.0
        self._watch: list[tuple[Any, Any, str]] = [
            (panel, self._on_result, "result_version"),
            (panel, self._on_reference, "reference"),
            (map_view, self._on_selected, "selected"),
            (map_view, self._on_coords, "coords"),
            (grid, self._on_mode, "mode"),
        ]
        if diagnostics is not None and diagnostics.has_trait("shown_rows"):
            self._watch.append((diagnostics, self._on_shown_rows, "shown_rows"))
        for widget, handler, name in self._watch:
            widget.observe(handler, name)
        map_view.on_click(self.pick)
        map_view.on_path_end(self._on_path_end)
        grid.on_click(self.pick)
        grid.show_toggle = True
        #: the grid's relevance marks refine the panel's composed query (its Refine button)
        self.feedback = FeedbackLink(space, panel, grid, map_view)
        self._on_reference({"new": panel.reference})
        self._on_result({})

    # ------------------------------------------------------------------ events
    def pick(self, row: int) -> None:
        """Make ``row`` the reference (what a click on a point or a thumbnail does)."""
        if 0 <= row < len(self.space):
            self.panel.reference = int(row)

    def select(self, rows: Any, *, show: bool = True) -> None:
        """Set the map's selection to ``rows``; ``show=False`` leaves the grid on what it shows
        (its toggle still counts the selection), e.g. when the detail view adds one image."""
        self._keep_mode = not show
        try:
            self.map.selected = rows
        finally:
            self._keep_mode = False

    def _on_reference(self, change: dict) -> None:
        row = int(change["new"])
        self.map.reference = row
        self.grid.reference = row

    def _on_result(self, change: dict) -> None:
        hits = self.panel.binding.hits  # type: ignore[union-attr]
        rows = hits.rows if hits is not None else np.empty(0, np.int64)
        # the marker comes from the search's own top rows and scores: no second neighbour search
        position = query_position(None, None, self.coords, rows=rows, scores=hits.scores) if hits is not None else []
        with self.map.hold_sync():
            self.map.highlighted = rows.astype(np.int32)
            self.map.query_point = position
            self._update_path()
        if self.grid.mode == "query":
            self.show_results()
        elif change and not self._filtering:  # a new search brings the results back into view
            self.grid.mode = "query"

    def _on_coords(self, change: dict) -> None:
        """A new layout (the UMAP replacing the PCA preview): the query's marker and path move with it."""
        if change["new"] is None or len(change["new"]) != len(self.space):
            return
        self.coords = np.asarray(change["new"])
        hits = self.panel.binding.hits  # type: ignore[union-attr]
        with self.map.hold_sync():
            self.map.query_point = (query_position(None, None, self.coords, rows=hits.rows, scores=hits.scores)
                                    if hits is not None else [])
            self._path_key = None  # recomputed on the new layout
            self._update_path()

    def _update_path(self) -> None:
        """Recompute the query's path when the query (not just its ``alpha``) changed."""
        key = path_key(self.panel.binding)
        old, self._path_key = self._path_key, key
        if key == old:
            return
        if key is not None and old is not None and (key[0], key[1], key[3]) == (old[0], old[1], old[3]):
            # only a fixed parameter moved (a slider): this pass stays one search, the path follows later
            self.path = None
            self.map.show_path(None)
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no event loop (a script): refresh_path() computes it
                return
            if self._path_timer is not None:
                self._path_timer.cancel()
            self._path_timer = loop.call_later(PATH_DELAY_S, self.refresh_path)
            return
        self._compute_path()

    def refresh_path(self) -> None:
        """Compute the query's path now (for the panel's current settings) and send it to the map."""
        self._path_timer = None
        self._path_key = path_key(self.panel.binding)
        self._compute_path()

    def _compute_path(self) -> None:
        if self._path_key is None:
            self.path = None
            self.map.show_path(None)
            return
        start = time.perf_counter()
        self.path = p = panel_path(self.panel.binding, self.coords)
        self.path_ms = (time.perf_counter() - start) * 1000
        self.map.show_path(p.positions, p.rows.astype(np.int32), p.values, "α")

    def _on_path_end(self, step: int, value: float) -> None:
        """Play reached a step: set the panel's alpha to its value (one search)."""
        from cirscope.analysis._path import path_params

        if self.path is None:
            return
        with self.panel.hold_trait_notifications():
            for name in path_params(self.path.method, self.path.param):
                setattr(self.panel, name, value)

    def _on_selected(self, change: dict) -> None:
        rows = self.map.selected.array  # int64, validated by the trait (no per-row conversion)
        self._selection_rows = rows
        self.grid.n_selected = int(rows.size)
        if rows.size == 0:
            if self.grid.mode == "selection":
                self.grid.mode = "query"
            return
        if self.grid.mode == "selection":
            self.show_selection()
        elif not self._keep_mode:
            self.grid.mode = "selection"

    def _on_shown_rows(self, change: dict) -> None:
        # a diagnostic may name a row twice (both sides of several duplicate pairs): show each once
        named = np.asarray(change["new"] if change["new"] is not None else [], dtype=np.int64).ravel()
        rows = named[np.sort(np.unique(named, return_index=True)[1])]  # first occurrences, in order
        self.selection_label = "Diagnostics"
        try:
            if np.array_equal(self.map.selected.array, rows):
                self._on_selected({})
            else:
                self.map.selected = rows
        finally:
            self.selection_label = "Map selection"

    def _on_mode(self, change: dict) -> None:
        if change["new"] == "selection":
            self.show_selection()
        else:
            self.show_results()

    # ------------------------------------------------------------------ grid contents
    def show_results(self) -> None:
        """Fill the grid with the panel's results (a gallery sample before any query)."""
        hits = self.panel.binding.hits  # type: ignore[union-attr]
        if hits is None:
            pool = None if self.filter_mask is None else np.flatnonzero(self.filter_mask)
            n = len(self.space) if pool is None else pool.size
            rows = gallery_sample(n, self.panel.k)
            rows = rows if pool is None else pool[rows]
            inside = "" if pool is None else " inside the filters"
            self.grid.show(rows, title=f"Gallery sample ({len(rows)} of {n:,}{inside}): click an image "
                                       "to make it the reference")
            return
        title = f"Top {len(hits)}"
        if hits.method:
            title += f" · {method_label(hits.method)}"
        # the grid's table is built from these hits only if someone asks for it
        self.grid.show(hits.rows, hits.scores, title=title, frame=hits.to_frame)

    def show_selection(self) -> None:
        """Fill the grid with the selected rows (at most ``selection_limit``)."""
        rows = self._selection_rows
        outside = ""
        if self.filter_mask is not None and rows.size:
            inside = rows[self.filter_mask[rows]]
            outside = f" ({rows.size - inside.size:,} outside the filters hidden)" if inside.size < rows.size else ""
            rows = inside
        shown = rows[: self.selection_limit]
        more = f", showing the first {len(shown):,}" if len(shown) < len(rows) else ""
        self.grid.selection_label = self.selection_label
        self.grid.show(shown, title=f"{self.selection_label}: {len(rows):,} images{outside}{more}")

    def set_filter_mask(self, mask: np.ndarray | None) -> None:
        """Keep the map, the grid and every search to the rows where ``mask`` is true (``None``: all).

        The map dims the other rows, the panel searches again inside the mask (one search) and
        the grid's selection and gallery sample keep to it; the grid stays on what it shows.
        """
        self.filter_mask = None if mask is None else np.asarray(mask, dtype=bool)
        self.map.dimmed = np.empty(0, np.int64) if mask is None else ~self.filter_mask
        self._filtering = True
        try:
            self.panel.binding.set_mask(self.filter_mask, source="filters")  # type: ignore[union-attr]
        finally:
            self._filtering = False
        if self.grid.mode == "selection":
            self.show_selection()

    def close(self) -> None:
        """Stop linking the widgets."""
        if not self._watch:
            return
        for widget, handler, name in self._watch:
            widget.unobserve(handler, name)
        self._watch = []
        self.feedback.close()
        self.map.on_click(self.pick, remove=True)
        self.map.on_path_end(self._on_path_end, remove=True)
        if self._path_timer is not None:
            self._path_timer.cancel()
        self.grid.on_click(self.pick, remove=True)

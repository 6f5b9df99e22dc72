"""What keeps each widget in step with a space (the widgets themselves hold state only).

* :class:`MapBinding` fills a :class:`~cirscope.widgets.MapView`: coordinates from
  :meth:`cirscope.Space.map`, colours by ``color_by``, a thumbnail and metadata for the
  hovered point.
* :class:`GridBinding` fills a :class:`~cirscope.widgets.NeighborGrid` for its ``rows``:
  thumbnails, ids, metadata, the table behind ``to_dataframe()``.
* :class:`QueryBinding` searches (one neighbour search per change) whenever a
  :class:`~cirscope.widgets.QueryPanel` changes and writes the results back.

Each can be used (and tested) without a browser.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cirscope.query._composed import ComposedQuery
from cirscope.query._methods import METHODS
from cirscope.query._search import Hits, search_hits
from cirscope.widgets._codec import check_rows
from cirscope.widgets._map_data import (
    MetadataText,
    color_columns,
    color_encoding,
    default_color_column,
    map_coords,
)

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.space._space import Space
    from cirscope.widgets._grid import NeighborGrid
    from cirscope.widgets._map_view import MapView
    from cirscope.widgets._query_panel import QueryPanel

__all__ = ["QUERY_ERRORS", "GridBinding", "MapBinding", "QueryBinding", "query_for", "query_vector"]

#: Errors a bad query can raise; they are shown in the panel instead of an unseen traceback.
QUERY_ERRORS = (ValueError, TypeError, KeyError, IndexError, RuntimeError, FileNotFoundError)
HOVER_THUMB = 128
REFERENCE_THUMB = 128


def _check_rows(rows: Sequence[int] | np.ndarray, n: int) -> np.ndarray:
    """Gallery rows as int64, checked with numpy (``TypeError``: not ints, ``IndexError``: outside the gallery)."""
    return check_rows(rows, n, name="rows", within="gallery")


class MapBinding:
    """Keeps a :class:`MapView` in step with a space: coordinates, colours by ``color_by``, hover cards.

    Examples
    --------
    >>> view = MapView()                                     # doctest: +SKIP
    >>> binding = MapBinding(view, space, map="pca")         # doctest: +SKIP
    >>> view.color_by = "color"  # recolours                 # doctest: +SKIP
    """

    def __init__(self, view: MapView, space: Space, *, map: Any = "auto", color_by: str | None = None):
        self.view = view
        self.space = space
        self.metadata = space.gallery.metadata
        self.coords = map_coords(space, map)
        self.text = MetadataText(self.metadata)
        columns = color_columns(self.metadata)
        if color_by is not None and color_by != "" and color_by not in self.metadata.columns:
            raise KeyError(f"Cannot colour by {color_by!r}: not a metadata column; columns are {list(self.metadata.columns)}")
        if color_by and color_by not in columns:
            columns.append(color_by)
        with view.hold_sync():
            view.coords = self.coords
            view.color_columns = columns
            view.color_by = default_color_column(self.metadata) if color_by is None else color_by
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
        try:
            self.recolor()
        except KeyError:
            self.view.color_by = change["old"]  # keep the colours and the menu consistent
            raise

    def _on_hover(self, change: dict) -> None:
        row = int(change["new"])
        if not 0 <= row < len(self.metadata):
            return
        meta = self.text.rows([row])[0]
        image = self.space.gallery.thumbnail(row, size=HOVER_THUMB)
        with self.view.hold_sync():
            self.view.hover_image = image
            self.view.hover_meta = meta
            self.view.hover_row = row

    def close(self) -> None:
        """Stop following the view."""
        if getattr(self, "_closed", False):
            return
        self._closed = True
        self.view.unobserve(self._on_color_by, "color_by")
        self.view.unobserve(self._on_hover, "hovered")


class GridBinding:
    """Fills a :class:`NeighborGrid` for its rows: thumbnails, ids, metadata and the export table.

    Examples
    --------
    >>> binding = GridBinding(grid, space)     # doctest: +SKIP
    >>> grid.rows = [5, 2]  # fetches two thumbnails  # doctest: +SKIP
    """

    def __init__(self, grid: NeighborGrid, space: Space):
        self.grid = grid
        self.space = space
        self.metadata = space.gallery.metadata
        self.ids = space.gallery.ids
        self.text = MetadataText(self.metadata, skip=("id",))
        self._filling = False
        grid.observe(self._on_rows, "rows")
        grid.observe(self._on_thumb_size, "thumb_size")

    def _on_rows(self, change: dict) -> None:
        if not self._filling:
            try:
                self.show(change["new"])
            except (IndexError, TypeError, ValueError):
                self._filling = True  # put the old rows back without showing them again
                try:
                    self.grid.rows = change["old"]
                finally:
                    self._filling = False
                raise

    def _on_thumb_size(self, change: dict) -> None:
        frame = self.grid.frame
        scores = self.grid.scores if self.grid.scores is not None and len(self.grid.scores) else None
        self.show(list(self.grid.rows), scores, title=self.grid.title, frame=frame)

    def table(self, rows: np.ndarray, scores: np.ndarray | None) -> pd.DataFrame:
        """The default export table: rank, row, id, (score,) then the metadata columns."""
        frame = self.metadata.iloc[rows].reset_index(drop=True)
        ids = frame.pop("id")
        front = {"rank": np.arange(1, len(rows) + 1), "row": rows, "id": ids}
        if scores is not None:
            front["score"] = scores
        return pd.concat([pd.DataFrame(front), frame], axis=1)

    def show(self, rows: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray | None = None, *,
             title: str | None = None, frame: pd.DataFrame | Callable[[], pd.DataFrame] | None = None) -> None:
        """Show ``rows`` (and ``scores``) in one update of the grid."""
        arr = _check_rows(rows, len(self.metadata))
        sc = None if scores is None else np.asarray(scores, dtype=np.float32).ravel()
        if sc is not None and sc.shape != arr.shape:
            raise ValueError(f"scores has {sc.size} values for {arr.size} rows: pass one score per row")
        gallery = self.space.gallery
        size = int(self.grid.thumb_size)
        grid = self.grid
        self._filling = True
        try:
            with grid.hold_sync():
                grid.frame = (lambda: self.table(arr, sc)) if frame is None else frame  # built when asked for
                grid.rows = arr.tolist()
                grid.ids = [str(i) for i in self.ids[arr]]
                grid.scores = sc if sc is not None else np.empty(0, np.float32)
                grid.thumbnails = [gallery.thumbnail(int(r), size=size) for r in arr]
                grid.metadata = self.text.rows(arr)
                if title is not None:
                    grid.title = title
                grid.version += 1
        finally:
            self._filling = False

    def close(self) -> None:
        """Stop following the grid."""
        if getattr(self, "_closed", False):
            return
        self._closed = True
        self.grid.unobserve(self._on_rows, "rows")
        self.grid.unobserve(self._on_thumb_size, "thumb_size")


def query_for(
    reference: int,
    text: str,
    method: str,
    reference_text: str = "",
    composed_text: str = "",
) -> tuple[Any, str] | None:
    """The query and method for a panel's state, or ``None`` when there is nothing to search.

    No reference: a text query. No text: an image query on the reference row. Both: a
    :class:`~cirscope.ComposedQuery` searched with ``method``; typed texts ("" = automatic)
    fix the reference and composed texts.

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


def query_vector(space: Space, query: Any, method: str, params: dict[str, float]) -> np.ndarray:
    """The query vector ``space.search`` ranks by.

    The widgets take it from the search itself (``QueryBinding.hits.vector``); this is for
    code that wants the vector without searching.

    Examples
    --------
    >>> query_vector(space, 3, "image", {}).shape  # doctest: +SKIP
    (128,)
    """
    if isinstance(query, ComposedQuery):
        return query.resolve(space).vector(method, **params)
    if isinstance(query, str):
        return space.encode_text([query])[0]
    return np.asarray(space.image_embeddings[int(query)])


class QueryBinding:
    """Searches the space for a :class:`QueryPanel` whenever its settings change.

    A new :class:`~cirscope.ComposedQuery` is made only when the reference, the text or a
    typed text changes (it caches its text embeddings), so a slider move costs one vector
    composition and one neighbour search (:func:`cirscope.query._search.search_hits`): its rows,
    scores and query vector serve the panel, the grid and the map marker, and
    ``panel.result`` becomes a DataFrame only when Python code reads it. Every browser request is answered by setting
    ``panel.served``, which lets the front end drop intermediate slider positions while a
    search runs.

    Attributes
    ----------
    hits : cirscope.query._search.Hits or None
        The last search's rows, scores and query vector.
    vector : numpy.ndarray or None
        The last query vector.
    elapsed_ms : float
        How long the last search took.

    Examples
    --------
    >>> panel = QueryPanel()                      # doctest: +SKIP
    >>> binding = QueryBinding(panel, space)      # doctest: +SKIP
    >>> panel.reference = 0; panel.text = "make it blue"  # doctest: +SKIP
    >>> panel.result[["rank", "id", "score"]]     # doctest: +SKIP
    """

    WATCH = ("text", "method", "alpha_t", "alpha_i", "beta", "a", "k", "reference_text_override",
             "composed_text_override", "request")  # fmt: skip

    def __init__(self, panel: QueryPanel, space: Space):
        self.panel = panel
        self.space = space
        self.metadata = space.gallery.metadata
        #: the last search's rows, scores and query vector (``None`` without results)
        self.hits: Hits | None = None
        self.vector: np.ndarray | None = None
        self.elapsed_ms = 0.0
        self._key: tuple | None = None
        self._query_key: tuple | None = None
        self._query: tuple[Any, str] | None = None
        panel.observe(self._on_reference, "reference")
        panel.observe(self._on_change, list(self.WATCH))
        self._describe_reference(panel.reference)
        self.run()

    # ------------------------------------------------------------------ events
    def _on_reference(self, change: dict) -> None:
        self._describe_reference(int(change["new"]))
        with self.panel.hold_trait_notifications():
            # typed texts described the previous reference
            self.panel.reference_text_override = ""
            self.panel.composed_text_override = ""
        self.run()

    def _on_change(self, change: dict) -> None:
        self.run()

    def _describe_reference(self, row: int) -> None:
        panel = self.panel
        n = len(self.metadata)
        if row >= n:
            panel.error = f"Reference row {row} is outside the gallery (0..{n - 1})"
            row = -1
        with panel.hold_sync():
            if row >= 0:
                meta = self.metadata.iloc[row]
                caption = meta["caption"] if "caption" in meta.index else ""
                panel.reference_id = str(meta["id"])
                panel.reference_caption = caption if isinstance(caption, str) else ""
                panel.reference_thumbnail = self.space.gallery.thumbnail(row, size=REFERENCE_THUMB)
            else:
                panel.reference_id = ""
                panel.reference_caption = ""
                panel.reference_thumbnail = b""

    # ------------------------------------------------------------------ searching
    def _state(self) -> tuple:
        p = self.panel
        return (p.reference, p.text.strip(), p.method, p.alpha_t, p.alpha_i, p.beta, p.a, p.k,
                p.reference_text_override.strip(), p.composed_text_override.strip(), p.request)  # fmt: skip

    def current_query(self) -> tuple[Any, str] | None:
        """``(query, method)`` for the panel's state (``None``: nothing to search)."""
        p = self.panel
        if not 0 <= p.reference < len(self.metadata):
            reference = -1
        else:
            reference = p.reference
        key = (reference, p.text.strip(), p.reference_text_override.strip(), p.composed_text_override.strip())
        if key != self._query_key:  # a new ComposedQuery only when its inputs change (it caches its texts)
            self._query = query_for(reference, p.text, p.method, p.reference_text_override,
                                    p.composed_text_override)
            self._query_key = key
        if self._query is None:
            return None
        query, method = self._query
        return query, (p.method if isinstance(query, ComposedQuery) else method)

    def run(self, force: bool = False) -> Hits | None:
        """Search with the panel's settings (skipped when nothing changed) and write the results back.

        Returns the search's :class:`~cirscope.query._search.Hits` (``None`` without results);
        ``panel.result`` gives them as a DataFrame.
        """
        panel = self.panel
        key = self._state()
        try:
            if key == self._key and not force:
                return self.hits
            self._key = key
            return self._search()
        finally:
            panel.served = panel.request

    def _reference_error(self) -> str:
        """Why the panel's reference cannot be used ("" when it can, or when there is none)."""
        n, row = len(self.metadata), int(self.panel.reference)
        return f"Reference row {row} is outside the gallery (0..{n - 1})" if row >= n else ""

    def _clear_results(self, status: str, error: str) -> None:
        panel = self.panel
        self.vector = None
        self.hits = None
        with panel.hold_sync():
            panel.result = None
            panel.results = []
            panel.scores = np.empty(0, np.float32)
            panel.error = error
            panel.status = status
            panel.result_version += 1

    def _search(self) -> Hits | None:
        panel = self.panel
        current = self.current_query()
        if current is None:
            self.vector = None
            self.hits = None
            with panel.hold_sync():
                panel.result = None
                panel.results = []
                panel.scores = np.empty(0, np.float32)
                panel.reference_text = panel.composed_text = ""
                panel.reference_text_source = panel.composed_text_source = ""
                panel.error = self._reference_error()
                panel.status = "Click an image (grid or map) to make it the reference, or type a text and press Enter."
                panel.result_version += 1
            return None
        query, method = current
        params = panel.params() if isinstance(query, ComposedQuery) else {}
        start = time.perf_counter()
        try:  # one search: rows, scores and the query vector (no DataFrame, no second composition)
            hits = search_hits(self.space, query, method=method, k=int(panel.k), **params)
        except QUERY_ERRORS as exc:  # old results must not look like the answer to this query
            self._clear_results("The search failed: see the message.", f"{type(exc).__name__}: {exc}")
            return None
        self.elapsed_ms = (time.perf_counter() - start) * 1000
        self.hits = hits
        self.vector = hits.vector
        info = hits.info
        with panel.hold_sync():
            panel.error = self._reference_error()
            panel.reference_text = str(info.get("reference_text") or "")
            panel.reference_text_source = str(info.get("reference_text_source") or "")
            panel.composed_text = str(info.get("composed_text") or "")
            panel.composed_text_source = str(info.get("composed_text_source") or "")
            kind = METHODS[method].title if isinstance(query, ComposedQuery) else f"{method} query"
            panel.status = f"{kind}: {len(hits)} results in {self.elapsed_ms:.0f} ms"
            panel.result = hits  # the DataFrame is built when Python code reads panel.result
            panel.results = hits.rows.tolist()
            panel.scores = hits.scores
            panel.served = panel.request  # answered: one message with the results
            panel.result_version += 1
        return hits

    def close(self) -> None:
        """Stop following the panel."""
        if getattr(self, "_closed", False):
            return
        self._closed = True
        self.panel.unobserve(self._on_reference, "reference")
        self.panel.unobserve(self._on_change, list(self.WATCH))

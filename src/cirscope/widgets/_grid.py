"""The neighbour grid and its binding: thumbnails of the current results (or of the map selection).

:class:`NeighborGrid` holds the traits the browser shows; :class:`GridBinding` fills them
for its ``rows`` from a space (thumbnails, ids, metadata, the table behind ``to_dataframe()``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import traitlets as t

from cirscope.widgets._base import ClickEvents, WidgetBase
from cirscope.widgets._binding import Binding
from cirscope.widgets._codec import Array, RowList
from cirscope.widgets._map_data import MetadataText
from cirscope.widgets._rowset import check_rows
from cirscope.widgets._static import static_file

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.space._space import Space

__all__ = ["GridBinding", "NeighborGrid"]


class NeighborGrid(WidgetBase, ClickEvents):
    """Thumbnails with rank, score and a metadata card on hover; a click picks an image.

    Set :attr:`rows` (or call :meth:`show`) and the grid fetches the thumbnails, ids and
    metadata from the space. A click on a thumbnail (or Enter on a focused one; arrow keys,
    Home and End move between them, with a visible focus ring) sets :attr:`clicked` and
    calls the :meth:`on_click` callbacks; with :attr:`details` on, each thumbnail has an ⓘ
    button (or ``i`` / Space on a focused one) that calls the :meth:`on_detail` callbacks,
    and Escape calls the :meth:`on_escape` ones. The
    toggle at the top switches :attr:`mode` between ``"query"`` (the results) and
    ``"selection"`` (the rows selected on the map); the :class:`Explorer` fills both.

    Parameters
    ----------
    space
        The :class:`~cirscope.Space` the rows refer to (needed for thumbnails).
    rows
        Gallery rows to show right away.
    **traits
        Any trait below, e.g. ``thumb_size=128``.

    Attributes
    ----------
    rows : list of int
        The shown gallery rows, in order.
    scores : (k,) float32
        Their scores (empty: none shown).
    mode : {"query", "selection"}
        What the grid shows; flipped by the toggle in the browser.

    Examples
    --------
    >>> grid = NeighborGrid(space, rows=[3, 1, 4])
    >>> grid.to_dataframe()["id"].tolist()
    ['shape-0-00003', 'shape-0-00001', 'shape-0-00004']
    >>> NeighborGrid().to_dataframe().empty
    True
    """

    _esm = static_file("neighbor_grid.js")

    rows = RowList().tag(sync=True)
    ids = t.List(t.Unicode()).tag(sync=True)
    scores = Array(np.float32, ndim=1).tag(sync=True)
    thumbnails = t.List(t.Bytes(), help="Image bytes (JPEG/PNG), one per row").tag(sync=True)
    metadata = t.List(t.Dict(), help="Metadata as text, one dict per row (hover cards)").tag(sync=True)
    reference = t.Int(-1, min=-1, help="The reference row (marked when shown)").tag(sync=True)
    mode = t.Enum(["query", "selection"], default_value="query").tag(sync=True)
    show_toggle = t.Bool(False, help="Show the results/selection toggle").tag(sync=True)
    n_selected = t.Int(0, help="How many rows the selection holds (toggle label)").tag(sync=True)
    selection_label = t.Unicode("Map selection").tag(sync=True)
    title = t.Unicode("").tag(sync=True)
    thumb_size = t.Int(96, min=32, max=256).tag(sync=True)
    max_height = t.Int(0, min=0, help="Scroll the thumbnails beyond this height in px (0: no limit)").tag(sync=True)
    version = t.Int(0, help="Counts updates of the shown rows").tag(sync=True)
    feedback = t.Bool(False, help="Show relevant / not relevant marks and the Refine action").tag(sync=True)
    marks = t.Dict(value_trait=t.Enum(["relevant", "not relevant"]), help="{row: mark}, set in the browser").tag(
        sync=True)
    feedback_method = t.Enum(["rocchio", "pdv"], default_value="rocchio", help="How Refine refines").tag(sync=True)
    notes = t.List(t.Unicode(), help="A short text per shown row (rank change after Refine)").tag(sync=True)
    feedback_status = t.Unicode("", help="What the last Refine did").tag(sync=True)
    details = t.Bool(False, help="Show each thumbnail's details button (i / Space); see on_detail").tag(sync=True)

    def __init__(self, space: Space | None = None, *, rows: Sequence[int] | None = None, **traits: Any):
        super().__init__(**traits)
        self._click_dispatcher()
        #: the shown rows as a table, or a function that builds it (what :meth:`to_dataframe` copies); not synced
        self.frame: pd.DataFrame | Callable[[], pd.DataFrame] | None = None
        self.binding: GridBinding | None = None
        if space is not None:
            self.binding = GridBinding(self, space)
        if rows is not None:
            self.rows = [int(r) for r in rows]

    def show(self, rows: Sequence[int], scores: Sequence[float] | None = None, *, title: str | None = None,
             frame: pd.DataFrame | Callable[[], pd.DataFrame] | None = None, notes: Sequence[str] | None = None) -> None:
        """Show gallery ``rows`` (with optional ``scores``) in one update.

        ``frame`` is what :meth:`to_dataframe` returns, or a function that builds it on
        request (default: rank, row, id, score and the metadata of the rows); ``notes`` is a
        short text per row (e.g. a rank change, "12 -> 1").
        """
        if self.binding is None:
            raise RuntimeError("This grid has no space to fetch thumbnails from: create it as NeighborGrid(space)")
        self.binding.show(rows, scores, title=title, frame=frame, notes=notes)

    def marked(self) -> tuple[list[int], list[int]]:
        """The rows marked relevant and not relevant (``marks``, set by the buttons or the r / n keys).

        Examples
        --------
        >>> grid = NeighborGrid(marks={"4": "relevant", "2": "not relevant"})
        >>> grid.marked()
        ([4], [2])
        """
        rel = sorted(int(r) for r, m in self.marks.items() if m == "relevant")
        return rel, sorted(int(r) for r, m in self.marks.items() if m == "not relevant")

    def on_refine(self, callback: Callable[[], Any], remove: bool = False) -> None:
        """Call ``callback()`` when the Refine button is pressed (``remove=True`` unregisters)."""
        if not hasattr(self, "_refine_callbacks"):
            from ipywidgets import CallbackDispatcher

            self._refine_callbacks = CallbackDispatcher()
            self.on_msg(self._handle_refine_msg)
        self._refine_callbacks.register_callback(callback, remove=remove)

    def _handle_refine_msg(self, widget: Any, content: Any, buffers: list) -> None:
        if isinstance(content, dict) and content.get("event") == "refine":
            self._refine_callbacks()

    def on_detail(self, callback: Callable[[int], Any], remove: bool = False) -> None:
        """Call ``callback(row)`` when a thumbnail's details are asked for (its ⓘ button, or ``i`` / Space on it).

        Examples
        --------
        >>> grid = NeighborGrid()
        >>> grid.on_detail(lambda row: print("details of", row))
        >>> grid._handle_custom_msg({"event": "detail", "row": 3}, [])  # what the browser sends
        details of 3
        """
        self._key_dispatcher("detail").register_callback(callback, remove=remove)

    def on_escape(self, callback: Callable[[], Any], remove: bool = False) -> None:
        """Call ``callback()`` when Escape is pressed in the grid (the Explorer closes its detail view,
        or clears the map's selection)."""
        self._key_dispatcher("escape").register_callback(callback, remove=remove)

    def _key_dispatcher(self, event: str) -> Any:
        if "_key_callbacks" not in self.__dict__:
            from ipywidgets import CallbackDispatcher

            self._key_callbacks = {"detail": CallbackDispatcher(), "escape": CallbackDispatcher()}
            self.on_msg(self._handle_key_msg)
        return self._key_callbacks[event]

    def _handle_key_msg(self, widget: Any, content: Any, buffers: list) -> None:
        event = content.get("event") if isinstance(content, dict) else None
        if event == "escape":
            self._key_callbacks["escape"]()
        elif event == "detail":
            try:
                row = int(content.get("row", -1))
            except (TypeError, ValueError):
                return
            if row >= 0:
                self._key_callbacks["detail"](row)

    def to_dataframe(self) -> pd.DataFrame:
        """The shown rows as a DataFrame (for results: rank, row, id, score and metadata)."""
        if callable(self.frame):  # built on first request, not on every update
            self.frame = self.frame()
        return pd.DataFrame() if self.frame is None else self.frame.copy()


class GridBinding(Binding):
    """Fills a :class:`NeighborGrid` for its rows: thumbnails, ids, metadata and the export table.

    Examples
    --------
    >>> grid = NeighborGrid()
    >>> binding = GridBinding(grid, space)
    >>> grid.rows = [5, 2]  # fetches two thumbnails
    >>> grid.ids, len(grid.thumbnails)
    (['shape-0-00005', 'shape-0-00002'], 2)
    """

    def __init__(self, grid: NeighborGrid, space: Space):
        self.grid = grid
        self.space = space
        self.metadata = space.gallery.metadata
        self.ids = space.gallery.ids
        self.text = MetadataText(self.metadata, skip=("id",))
        self._filling = False
        self.follow(grid, self._on_rows, "rows")
        self.follow(grid, self._on_thumb_size, "thumb_size")

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
             title: str | None = None, frame: pd.DataFrame | Callable[[], pd.DataFrame] | None = None,
             notes: Sequence[str] | None = None) -> None:
        """Show ``rows`` (and ``scores``, ``notes``) in one update of the grid."""
        arr = check_rows(rows, len(self.metadata), name="rows", within="gallery")
        if notes is not None and len(notes) != arr.size:
            raise ValueError(f"notes has {len(notes)} texts for {arr.size} rows: pass one per row")
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
                grid.notes = [str(x) for x in notes] if notes is not None else []
                if title is not None:
                    grid.title = title
                grid.version += 1
        finally:
            self._filling = False

"""The map widget and its binding: a scatter of the gallery's 2-D map (canvas drawing in ``js/map_view.js``).

:class:`MapView` holds the traits the browser draws; :class:`MapBinding` fills them from a
space (coordinates, colours by ``color_by``, hover cards).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
import traitlets as t

from cirscope.widgets._base import ClickEvents, WidgetBase
from cirscope.widgets._binding import Binding
from cirscope.widgets._codec import Array
from cirscope.widgets._map_data import (
    MetadataText,
    color_columns,
    color_encoding,
    default_color_column,
    hover_columns,
)
from cirscope.widgets._rowset import RowSet
from cirscope.widgets._static import static_file

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.space._space import Space

__all__ = ["HOVER_THUMB", "MapBinding", "MapView"]

# A browser selection arriving this soon after a kernel-side set is answered with the kernel's
# value (far longer than a round trip, so a crossing on the wire is always caught).
_RESYNC_SECONDS = 5.0
#: Size in px of the hover card's thumbnail.
HOVER_THUMB = 128


class MapView(WidgetBase, ClickEvents):
    """The gallery's 2-D map (UMAP or PCA): colours, hover cards, box/lasso selection, query highlights.

    Drag to select (box or lasso, see ``select_mode``; Shift adds to the selection), wheel
    to zoom, double-click or ``0`` to reset the view, Escape to clear the selection. Selected
    points keep their colours (thinly ringed) over a dimmed map. Hovering a point shows a
    small card (thumbnail and a few facts: ``id``, the colouring column, the columns for
    people); a click, a wheel, a drag or Escape hides it. The map follows the notebook's light
    or dark theme (JupyterLab's CSS variables, else the system's preference). A click
    on a point sets :attr:`clicked` and calls the :meth:`on_click` callbacks (the
    :class:`Explorer` makes it the reference). Points are drawn on a 2-D canvas straight
    into a pixel buffer, once per animation frame however fast the input comes, which stays
    interactive at 1,000,000 points without a GPU; when many points are in view it draws
    their density instead (see ``density_threshold``). While a pan or zoom is under way and
    a full redraw is slow (a density image, or more than ~16 ms) each frame moves and scales
    the last image; every point is drawn again once the wheel pauses (~130 ms) or the pan
    drag ends.

    Parameters
    ----------
    space
        A :class:`~cirscope.Space`: fills the coordinates, colours and hover cards. Leave it
        out to drive the widget yourself (set ``coords``, ``colors``...).
    map
        ``"auto"`` (UMAP up to 20,000 images, else PCA), ``"umap"``, ``"pca"`` or an
        ``(N, 2)`` array. Maps are computed by :meth:`cirscope.Space.map` (cached on disk).
        ``"auto"`` never waits: a UMAP not cached yet is fitted in the background once the map
        is drawn, the PCA layout shows meanwhile, with "UMAP 40% · ETA 12 s" on the map, and
        the UMAP replaces it when ready (:meth:`map_ready` waits for it;
        :mod:`cirscope.widgets._map_progress`). ``"umap"`` computes it before returning.
    color_by
        The metadata column colouring the points (default: the one the dataset marks, see
        :func:`~cirscope.widgets._map_data.column_roles`: ``color`` for the shapes world, else
        the first with 2 to 20 values); categories get a legend, numbers a colour bar. Change
        it live with ``view.color_by``. The colour menu offers the columns for people only.
    **traits
        Any trait below, e.g. ``height=500``.

    Attributes
    ----------
    coords : (N, 2) float32
        Point positions (the view fits them).
    colors : (N, 3) uint8
        Per-point RGB; ``legend`` / ``colorbar`` describe them.
    selected : list of int
        Rows inside the last box/lasso selection (set from the browser; settable from Python
        with a list, an integer array or a boolean mask). Reads as a list whose ``.array`` is
        the same rows as a read-only int64 array (the Python ints are made on first use as a
        list). Travels both ways as one buffer, int32 rows or, when smaller, a bitmask of one
        bit per point (125 KB at 1,000,000 points), and is validated with numpy (a bad value
        is refused and the previous selection kept).
        :attr:`selected_ids` gives their gallery ids.
    dimmed : list of int
        Rows drawn faded under the others (the rows outside an :class:`Explorer`'s metadata
        filters); travels like ``selected``, as int32 rows or a bitmask.
    density_threshold : int
        Above this many points in view (or more points than pixels) the map draws a density
        image (per-pixel counts, coloured by the points' mean colour, opacity by log count)
        instead of single points; zooming in brings the points back. ``-1``: always points.
    highlighted : (k,) int32
        Rows to emphasise, best first (the current top-k).
    query_point : list of float
        ``[x, y]`` where the current query falls on the map, or ``[]``.
    reference : int
        The reference row, outlined (-1: none).
    clicked : int
        The last clicked row.
    map_status, map_status_kind : str
        The status line on the map while UMAP computes in the background
        (``"progress"``), the note when it replaced the PCA layout (``"note"``) or why it failed
        (``"error"``); ``""`` when there is nothing to say.
    path, path_rows, path_values : arrays
        The query's path (:func:`cirscope.analysis.query_path`): ``(S, 2)`` positions,
        ``(S, k)`` top rows (``-1`` padding) and ``(S,)`` values of the moved parameter, sent
        once per query; drawn as a line under the marks. The "Play" button (shown with a
        path) sweeps it in the browser in ``play_ms``, moving the query star and the
        highlights step by step, then tells Python (:meth:`on_path_end`). Set with
        :meth:`show_path`.

    Examples
    --------
    >>> view = cs.MapView(space, map="pca", color_by="color")
    >>> view.coords.shape, view.color_by
    ((120, 2), 'color')
    >>> view.selected = [12, 40, 41]  # what a drag in the browser sets
    >>> view.selected, view.selected_ids[0]
    ([12, 40, 41], 'shape-0-00012')
    >>> MapView(coords=np.zeros((3, 2))).coords.dtype
    dtype('float32')
    """

    _esm = static_file("map_view.js")
    _from_browser = False
    _kernel_set_at = -float("inf")

    coords = Array(np.float32, ndim=2, width=2).tag(sync=True)
    colors = Array(np.uint8, ndim=2, width=3).tag(sync=True)
    color_by = t.Unicode("", help="The metadata column the colours show").tag(sync=True)
    color_columns = t.List(t.Unicode(), help="Columns offered in the colour menu").tag(sync=True)
    legend = t.List(t.Dict(), help="Categorical legend: [{label, color, count}]").tag(sync=True)
    colorbar = t.Dict(help="Continuous colour bar: {min, max, stops}").tag(sync=True)
    highlighted = Array(np.int32, ndim=1).tag(sync=True)
    query_point = t.List(t.Float(), maxlen=2).tag(sync=True)
    reference = t.Int(-1, min=-1).tag(sync=True)
    # echo_update=False: the kernel does not echo a browser's selection back to it (a 500k-row
    # selection would cross twice). That opens a race: the browser sends A while the kernel sets B;
    # the browser then shows B and the kernel holds A. So a browser selection arriving within
    # _RESYNC_SECONDS of a kernel-side set is answered with the kernel's value (set_state).
    selected = RowSet(size_trait="coords", help="Selected rows (distinct), as int32 rows or a bitmask").tag(
        sync=True, echo_update=False
    )
    dimmed = RowSet(size_trait="coords", help="Rows drawn faded (outside the Explorer's metadata filters)").tag(
        sync=True
    )
    select_mode = t.Enum(["box", "lasso", "pan"], default_value="box").tag(sync=True)
    hovered = t.Int(-1, help="The row under the pointer (set from the browser)").tag(sync=True)
    hover_row = t.Int(-1, help="The row hover_image and hover_meta describe").tag(sync=True)
    hover_image = t.Bytes(b"").tag(sync=True)
    hover_meta = t.Dict().tag(sync=True)
    density_threshold = t.Int(
        200_000, min=-1,
        help="Draw a density image when more points than this (or than pixels) are in view (-1: always points)",
    ).tag(sync=True)
    point_size = t.Float(0.0, min=0.0, help="Point radius in px (0: by the number of points in view)").tag(sync=True)
    height = t.Int(440, min=120).tag(sync=True)
    title = t.Unicode("").tag(sync=True)
    path = Array(np.float32, ndim=2, width=2, help="The query's position at each path step").tag(sync=True)
    path_rows = Array(np.int32, ndim=2, help="The top rows at each path step (-1: padding)").tag(sync=True)
    path_values = Array(np.float32, ndim=1, help="The moved parameter's value at each path step").tag(sync=True)
    path_label = t.Unicode("", help="The moved parameter's name (on the Play button)").tag(sync=True)
    play_ms = t.Int(2400, min=100, help="How long Play takes to sweep the path, in ms").tag(sync=True)
    map_status = t.Unicode("", help="The layout's status line: UMAP progress, a note or an error").tag(sync=True)
    map_status_kind = t.Enum(["", "progress", "note", "error"], "").tag(sync=True)

    def __init__(self, space: Space | None = None, *, map: Any = "auto", color_by: str | None = None, **traits: Any):
        super().__init__(**traits)
        self._click_dispatcher()
        self.binding: MapBinding | None = None
        if space is not None:
            self.binding = MapBinding(self, space, map=map, color_by=color_by)
        elif color_by is not None:
            self.color_by = color_by

    def show_path(self, positions: Any = None, rows: Any = None, values: Any = None, label: str = "") -> None:
        """Send a query path (``None``: remove it); a path whose positions are not all finite is removed.

        Examples
        --------
        >>> view = MapView(coords=np.zeros((3, 2)))
        >>> view.show_path([[0, 0], [1, 1]], [[0, 1], [1, 2]], [0.0, 2.0], "alpha")
        >>> view.path.shape, view.path_rows.tolist(), view.path_label
        ((2, 2), [[0, 1], [1, 2]], 'alpha')
        >>> view.show_path(None); view.path is None
        True
        """
        ok = positions is not None and bool(np.all(np.isfinite(np.asarray(positions, dtype=np.float64))))
        self._path_exact = np.asarray(values, dtype=np.float64) if ok else None  # float32 on the wire
        with self.hold_sync():
            self.path = positions if ok else None
            self.path_rows = rows if ok else None
            self.path_values = values if ok else None
            self.path_label = label if ok else ""

    def on_path_end(self, callback: Any, remove: bool = False) -> None:
        """Call ``callback(step, value)`` when Play reaches the path's end in the browser."""
        if not hasattr(self, "_path_callbacks"):
            self._path_callbacks: list[Any] = []
            self.on_msg(self._handle_path_msg)
        if remove:
            if callback in self._path_callbacks:
                self._path_callbacks.remove(callback)
        else:
            self._path_callbacks.append(callback)

    def _handle_path_msg(self, widget: Any, content: Any, buffers: list) -> None:
        exact = getattr(self, "_path_exact", None)
        if not isinstance(content, dict) or content.get("event") != "path_end" or exact is None:
            return
        try:
            step = int(content.get("step", -1))
        except (TypeError, ValueError):
            return
        if not 0 <= step < len(exact):
            return
        value = float(exact[step])  # the kernel's own value, not the browser's float32
        for callback in list(self._path_callbacks):
            callback(step, value)

    def map_ready(self, timeout: float | None = None) -> bool:
        """Wait until the UMAP layout is shown (``map="auto"`` opens on PCA while it computes).

        Starts the fit if no view has been drawn yet. ``True`` when UMAP is shown (at once for a
        map that needs no background fit), ``False`` after ``timeout`` seconds; a failed fit
        raises ``RuntimeError``. See :mod:`cirscope.widgets._map_progress`.
        """
        progressive = getattr(self.binding, "progressive", None)
        return True if progressive is None else progressive.ready(timeout)

    @property
    def selected_ids(self) -> list[str]:
        """The gallery ids of :attr:`selected` (needs a space).

        Examples
        --------
        >>> view = MapView(space, map="pca", selected=[12, 40])
        >>> view.selected_ids
        ['shape-0-00012', 'shape-0-00040']
        """
        if self.binding is None:
            raise RuntimeError("This map has no space to look ids up in: create it as MapView(space)")
        ids = np.asarray(self.binding.space.gallery.ids)
        return ids[self.selected.array].astype(str).tolist()

    @t.observe("coords")
    def _drop_stale_selection(self, change: dict) -> None:
        n = 0 if change["new"] is None else len(change["new"])
        rows = self.selected.array
        if rows.size and int(rows.max()) >= n:  # the selection named points that are gone
            self.selected = []

    @t.observe("selected")
    def _note_kernel_set(self, change: dict) -> None:
        if not self._from_browser:
            self._kernel_set_at = time.monotonic()

    def set_state(self, sync_data: dict) -> None:
        """Apply a browser update; a refused selection is sent back so the browser shows the kept one.

        A selection arriving shortly after the kernel set one may have crossed the kernel's value
        on the wire: the kernel's value is then sent back, so both sides end up holding the same.
        """
        msg = sync_data.get("selected")
        if isinstance(msg, dict) and isinstance(msg.get("data"), memoryview) and msg["data"].contiguous:
            # as bytes, ipywidgets' check "is the value the browser just sent" is one memcmp, not a
            # per-byte comparison of memoryviews (tens of ms at 500k rows)
            sync_data = {**sync_data, "selected": {**msg, "data": msg["data"].tobytes()}}
        self._from_browser = True
        try:
            super().set_state(sync_data)
        except (t.TraitError, TypeError, ValueError):
            if "selected" in sync_data:
                self.send_state("selected")
            raise
        finally:
            self._from_browser = False
        if "selected" in sync_data and time.monotonic() - self._kernel_set_at < _RESYNC_SECONDS:
            self.send_state("selected")


class MapBinding(Binding):
    """Keeps a :class:`MapView` in step with a space: coordinates, colours by ``color_by``, hover cards.

    Examples
    --------
    >>> view = MapView()
    >>> binding = MapBinding(view, space, map="pca")
    >>> view.coords.shape, view.color_by  # the shapes world: coloured by its points' own colours
    ((120, 2), 'color')
    >>> view.color_by = "shape"  # recolours
    >>> sum(item["count"] for item in view.legend)
    120
    >>> view.hovered = 3
    >>> list(view.hover_meta)  # the card's few facts, the colouring column first
    ['id', 'shape', 'color', 'background', 'size', 'caption']
    """

    def __init__(self, view: MapView, space: Space, *, map: Any = "auto", color_by: str | None = None):
        self.view = view
        self.space = space
        self.metadata = space.gallery.metadata
        from cirscope.widgets._map_progress import ProgressiveMap, first_coords

        self.coords, later = first_coords(space, map)  # "auto": a cached UMAP, or PCA now and UMAP later
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
        self.follow(view, self._on_color_by, "color_by")
        self.follow(view, self._on_hover, "hovered")
        #: the background UMAP fit of a ``map="auto"`` view opened on PCA (``None``: none)
        self.progressive = ProgressiveMap(view, self, space) if later else None

    def show_coords(self, coords: Any) -> None:
        """Show another layout of the same points (rows, selection and colours stay)."""
        self.coords = np.asarray(coords, dtype=np.float32)
        self.view.coords = self.coords

    def close(self) -> None:
        """Stop following the view and let go of a background fit."""
        if self.__dict__.get("progressive") is not None:
            self.progressive.close()
        super().close()

    def recolor(self) -> None:
        """Recompute point colours and the legend from ``view.color_by``."""
        name = self.view.color_by
        if name and name not in self.metadata.columns:
            raise KeyError(f"Cannot colour by {name!r}: not a metadata column; columns are {list(self.metadata.columns)}")
        enc = color_encoding(self.metadata[name] if name else None)
        self.hover_columns = hover_columns(self.metadata, name)
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
        full = self.text.rows([row])[0]
        meta = {name: full[name] for name in self.hover_columns if name in full}
        image = self.space.gallery.thumbnail(row, size=HOVER_THUMB)
        with self.view.hold_sync():
            self.view.hover_image = image
            self.view.hover_meta = meta
            self.view.hover_row = row

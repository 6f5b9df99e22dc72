"""The detail view: one image large, every metadata value as text, its nearest neighbours.

:class:`DetailView` holds the traits the browser shows; :class:`DetailBinding` fills them
for the open ``row`` from a space (a larger thumbnail, the metadata as text, the nearest
neighbours and their thumbnails); :class:`DetailLink` ties the view into an Explorer: the
grid's details button (or ``i`` / Space on a thumbnail) opens it, its buttons make the row
the reference or add it to (remove it from) the map's selection, and Escape in the grid
closes it (or, when it is closed, clears the selection).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import traitlets as t
from ipywidgets import CallbackDispatcher

from cirscope.gallery._decode import describe_source
from cirscope.widgets._base import WidgetBase
from cirscope.widgets._binding import Binding
from cirscope.widgets._codec import Array, RowList
from cirscope.widgets._static import static_file

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.space._space import Space
    from cirscope.widgets._controller import ExplorerController

__all__ = ["ACTIONS", "DetailBinding", "DetailLink", "DetailView", "field_text", "fields_of"]

#: What the view's buttons ask for (sent as ``{"event": "action", "action": ..., "row": r}``).
ACTIONS = ("reference", "select", "unselect")
#: Longest metadata text shown in full (longer values are cut, saying how long they were).
TEXT_LIMIT = 4000


def field_text(value: Any, limit: int = TEXT_LIMIT) -> tuple[str, str]:
    """A metadata value as ``(text, kind)``: kind is ``"missing"``, ``"number"`` or ``"text"``.

    Numbers keep their full precision (Python's shortest round-trip form); a text longer
    than ``limit`` characters is cut and says how long it was. The text is shown as text in
    the browser, never parsed as markup.

    Examples
    --------
    >>> field_text(0.1 + 0.2), field_text(np.float32(0.5)), field_text(None), field_text(float("nan"))
    (('0.30000000000000004', 'number'), ('0.5', 'number'), ('', 'missing'), ('', 'missing'))
    >>> field_text("<b>x</b>")
    ('<b>x</b>', 'text')
    >>> field_text("a" * 10, limit=4)
    ('aaaa… (10 characters)', 'text')
    """
    if value is None or (np.ndim(value) == 0 and not isinstance(value, str) and bool(pd.isna(value))):
        return "", "missing"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)), "text"
    if isinstance(value, (int, float, np.integer, np.floating)):
        return str(value.item() if isinstance(value, np.generic) else value), "number"
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    if len(text) > limit:
        text = f"{text[:limit]}… ({len(text):,} characters)"
    return text, "text"


def fields_of(pairs: Iterable[tuple[Any, Any]], limit: int = TEXT_LIMIT) -> list[dict[str, str]]:
    """``(column, value)`` pairs as ``[{"name", "value", "kind"}, ...]`` (see :func:`field_text`), in order.

    Examples
    --------
    >>> frame = pd.DataFrame({"id": ["a", "b"], "n": [1.5, None]})
    >>> fields_of(frame.iloc[1].items())
    [{'name': 'id', 'value': 'b', 'kind': 'text'}, {'name': 'n', 'value': '', 'kind': 'missing'}]
    """
    out = []
    for name, value in pairs:
        text, kind = field_text(value, limit)
        out.append({"name": str(name), "value": text, "kind": kind})
    return out


class DetailView(WidgetBase):
    """One gallery image in detail: large, with every metadata value and its nearest neighbours.

    Set :attr:`row` (``-1`` closes the view) and the view's binding fills the rest from the
    space. In the browser a neighbour's thumbnail opens that image, × or Escape closes the
    view, and (in an :class:`~cirscope.Explorer`) "Use as reference" and "Add to selection"
    act on the query panel and the map.

    Parameters
    ----------
    space
        The :class:`~cirscope.Space` the rows refer to.
    row
        The row to open right away (``-1``: closed).
    **traits
        Any trait below, e.g. ``n_neighbors=12``.

    Examples
    --------
    >>> view = DetailView(space, row=3)
    >>> view.item_id, len(view.neighbors), view.fields[0]
    ('shape-0-00003', 8, {'name': 'id', 'value': 'shape-0-00003', 'kind': 'text'})
    >>> 3 in view.neighbors
    False
    >>> view.row = -1; view.image
    b''
    """

    _esm = static_file("detail_view.js")

    row = t.Int(-1, min=-1, help="The open row (-1: closed); the binding fills the rest").tag(sync=True)
    filled = t.Int(-1, help="The row the content below describes (the browser waits for it to equal row)").tag(
        sync=True)
    item_id = t.Unicode("").tag(sync=True)
    image = t.Bytes(b"", help="JPEG bytes of the image, at most image_size px").tag(sync=True)
    source = t.Unicode("", help="Where the image comes from (a path, or a short description)").tag(sync=True)
    problem = t.Unicode("", help="Why the image could not be decoded ('' when it could)").tag(sync=True)
    fields = t.List(t.Dict(), help="Every metadata column as text: {name, value, kind}").tag(sync=True)
    tags = t.List(t.Unicode(), help="The space's tags on this row (see cirscope.Space.tag)").tag(sync=True)
    neighbors = RowList(help="The nearest rows by image embedding, best first").tag(sync=True)
    neighbor_ids = t.List(t.Unicode()).tag(sync=True)
    neighbor_scores = Array(np.float32, ndim=1).tag(sync=True)
    neighbor_thumbnails = t.List(t.Bytes()).tag(sync=True)
    n_neighbors = t.Int(8, min=0, max=64, help="How many neighbours to show").tag(sync=True)
    image_size = t.Int(320, min=64, max=1024, help="Longer side of the large image (px)").tag(sync=True)
    neighbor_size = t.Int(64, min=32, max=256, help="Side of the neighbours' thumbnails (px)").tag(sync=True)
    actions = t.Bool(False, help="Show the reference and selection buttons (an Explorer links them)").tag(sync=True)
    is_reference = t.Bool(False, help="The open row is the query's reference").tag(sync=True)
    is_selected = t.Bool(False, help="The open row is in the map's selection").tag(sync=True)
    version = t.Int(0, help="Counts fills").tag(sync=True)

    def __init__(self, space: Space | None = None, *, row: int = -1, **traits: Any):
        super().__init__(**traits)
        self.binding: DetailBinding | None = None
        if space is not None:
            self.binding = DetailBinding(self, space)
        self.row = int(row)

    def show(self, row: int) -> None:
        """Open ``row`` (``-1`` closes); a row outside the gallery raises ``IndexError``."""
        self.row = int(row)

    def on_action(self, callback: Callable[[str, int], Any], remove: bool = False) -> None:
        """Call ``callback(action, row)`` when a button asks for one of :data:`ACTIONS` (``remove=True`` unregisters).

        Examples
        --------
        >>> view = DetailView(row=4)  # no space: nothing is filled
        >>> view.on_action(lambda action, row: print(action, row))
        >>> view._handle_action_msg(view, {"event": "action", "action": "select", "row": 4}, [])  # a click
        select 4
        """
        if "_action_callbacks" not in self.__dict__:
            self._action_callbacks = CallbackDispatcher()
            self.on_msg(self._handle_action_msg)
        self._action_callbacks.register_callback(callback, remove=remove)

    def _handle_action_msg(self, widget: Any, content: Any, buffers: list) -> None:
        if not isinstance(content, dict) or content.get("event") != "action" or content.get("action") not in ACTIONS:
            return
        try:
            row = int(content.get("row", -1))
        except (TypeError, ValueError):
            return
        if row >= 0 and row == self.row:  # a click meant for a row no longer open does nothing
            self._action_callbacks(content["action"], row)


class DetailBinding(Binding):
    """Fills a :class:`DetailView` for its ``row``: image, source, metadata, tags, neighbours.

    Examples
    --------
    >>> view = DetailView()
    >>> binding = DetailBinding(view, space)
    >>> view.row = 7
    >>> view.filled, view.image[:2] == b"\\xff\\xd8", [f["name"] for f in view.fields][:3]
    (7, True, ['id', 'shape', 'color'])
    >>> view.row = 10**6
    Traceback (most recent call last):
    ...
    IndexError: row 1000000 is outside the gallery (0..119)
    >>> view.row
    7
    """

    def __init__(self, view: DetailView, space: Space):
        self.view = view
        self.space = space
        self.columns = list(space.gallery.metadata.columns)  # (the frame itself is not kept)
        self.ids = space.gallery.ids
        self._reverting = False
        self.follow(view, self._on_row, "row")
        self.follow(view, self._on_sizes, ["n_neighbors", "image_size", "neighbor_size"])

    def _on_row(self, change: dict) -> None:
        if self._reverting:
            return
        try:
            self.fill(int(change["new"]))
        except IndexError:
            self._reverting = True  # put the old row back: the view keeps showing it
            try:
                self.view.row = change["old"]
            finally:
                self._reverting = False
            raise

    def _on_sizes(self, change: dict) -> None:
        self.fill(self.view.row)

    def neighbors(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """The view's ``n_neighbors`` nearest rows to ``row`` (itself left out) and their cosines."""
        k = min(int(self.view.n_neighbors), len(self.ids) - 1)
        if k <= 0:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        return self.space.index.query(self.space.image_embeddings[row], k=k, exclude=[row])

    def fill(self, row: int) -> None:
        """Show ``row`` (``-1``: empty the view) in one update."""
        n = len(self.ids)
        if not -1 <= row < n:
            raise IndexError(f"row {row} is outside the gallery (0..{n - 1})")
        view = self.view
        gallery = self.space.gallery
        with view.hold_sync():
            if row < 0:
                view.item_id, view.image, view.source, view.problem, view.fields, view.tags = "", b"", "", "", [], []
                view.neighbors, view.neighbor_ids, view.neighbor_thumbnails = [], [], []
                view.neighbor_scores = np.empty(0, np.float32)
            else:
                rows, scores = self.neighbors(row)
                size = int(view.neighbor_size)
                view.item_id = str(self.ids[row])
                view.image = gallery.thumbnail(row, size=int(view.image_size))
                # one source, read in place: Gallery.sources copies the whole list (Arrow paths: every string)
                view.source = describe_source(gallery._sources[row])
                problems = gallery.problems
                hit = problems.loc[problems["id"] == view.item_id, "reason"]
                view.problem = str(hit.iloc[0]) if len(hit) else ""
                view.fields = fields_of((name, gallery.column(name).iat[row]) for name in self.columns)
                tags = self.space.tags
                view.tags = tags.of([row])[0] if len(tags) else []
                view.neighbors = rows.tolist()
                view.neighbor_ids = [str(i) for i in self.ids[rows]]
                view.neighbor_scores = scores
                view.neighbor_thumbnails = [gallery.thumbnail(int(r), size=size) for r in rows]
            view.filled = row
            view.version += 1


class DetailLink(Binding):
    """Ties a :class:`DetailView` to an Explorer's grid, query panel and map.

    * the grid's details button (or ``i`` / Space on a focused thumbnail) opens the view;
    * "Use as reference" makes the open row the panel's reference (the grid then shows its
      results); "Add to selection" / "Remove from selection" change the map's selection
      and leave the grid showing what it showed (its toggle counts the selection);
    * Escape in the grid closes the view, or when it is closed clears the map's selection;
    * the view's ``is_reference`` and ``is_selected`` follow the panel and the map.

    Examples
    --------
    >>> ex = cs.Explorer(space, map="pca")
    >>> ex.grid._handle_custom_msg({"event": "detail", "row": 5}, [])  # the grid's details button
    >>> ex.detail.row, ex.detail.is_reference
    (5, False)
    >>> ex.detail._handle_custom_msg({"event": "action", "action": "reference", "row": 5}, [])
    >>> ex.query.reference, ex.detail.is_reference
    (5, True)
    >>> ex.detail._handle_custom_msg({"event": "action", "action": "select", "row": 5}, [])
    >>> list(ex.map.selected), ex.detail.is_selected, ex.grid.mode
    ([5], True, 'query')
    >>> ex.grid._handle_custom_msg({"event": "escape"}, [])  # closes the view
    >>> ex.grid._handle_custom_msg({"event": "escape"}, [])  # then clears the selection
    >>> ex.detail.row, list(ex.map.selected)
    (-1, [])
    >>> ex.close()
    """

    def __init__(self, view: DetailView, controller: ExplorerController):
        self.view = view
        self.controller = controller
        self.panel = controller.panel
        self.map = controller.map
        self.grid = controller.grid
        view.actions = True
        self.grid.details = True
        self.grid.on_detail(self.open)
        self.grid.on_escape(self.escape)
        view.on_action(self.act)
        self.follow(view, self._update_marks, "row")
        self.follow(self.panel, self._update_marks, "reference")
        self.follow(self.map, self._update_marks, "selected")

    def open(self, row: int) -> None:
        """Show ``row`` in the view (what the grid's details button asks)."""
        if 0 <= row < len(self.controller.space):
            self.view.row = int(row)

    def escape(self) -> None:
        """Escape in the grid: close the view if it is open, else clear the map's selection."""
        if self.view.row >= 0:
            self.view.row = -1
        elif len(self.map.selected):
            self.map.selected = []

    def act(self, action: str, row: int) -> None:
        """Carry out one of :data:`ACTIONS` for ``row``."""
        if action == "reference":
            self.controller.pick(row)
            return
        selected = self.map.selected.array
        if action == "select" and not np.any(selected == row):
            self.controller.select(np.append(selected, row), show=False)
        elif action == "unselect":
            self.controller.select(selected[selected != row], show=False)

    def _update_marks(self, change: dict) -> None:
        row = self.view.row
        with self.view.hold_sync():
            self.view.is_reference = row >= 0 and row == self.panel.reference
            self.view.is_selected = row >= 0 and bool(np.any(self.map.selected.array == row))

    def close(self) -> None:
        """Stop linking (calling it again does nothing)."""
        if "_observers" in self.__dict__ and self._observers:
            self.grid.on_detail(self.open, remove=True)
            self.grid.on_escape(self.escape, remove=True)
            self.view.on_action(self.act, remove=True)
        super().close()

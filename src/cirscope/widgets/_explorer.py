"""The Explorer: map, query panel and neighbour grid linked to one space, plus a diagnostics slot."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ipywidgets as ipw

from cirscope.widgets._controller import ExplorerController
from cirscope.widgets._grid import NeighborGrid
from cirscope.widgets._map_view import MapView
from cirscope.widgets._query_panel import QueryPanel

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.space._space import Space

__all__ = ["Explorer"]


def _diagnostics_widget(space: Space, diagnostics: Any) -> ipw.Widget | None:
    """The widget for the diagnostics slot: ``True`` builds a DiagnosticsPanel, a widget is used as is."""
    if diagnostics is None or diagnostics is False:
        return None
    if isinstance(diagnostics, ipw.Widget):
        return diagnostics
    if diagnostics is not True:
        raise TypeError(f"diagnostics must be True, False or a widget, got {type(diagnostics).__name__}")
    from cirscope.widgets._diagnostics_panel import DiagnosticsPanel

    return DiagnosticsPanel(space)


class Explorer(ipw.VBox):
    """Explore a space: a map, a composed-query panel and the top-k grid, linked.

    Click a thumbnail or a map point to make it the reference, type a modification
    ("make it blue") and press Enter, move the sliders (arrow keys work on a focused
    slider): the grid and the map's highlights follow live. Drag on the map to select
    (box or lasso): the grid shows the selection, and its toggle flips back to the results.
    Keyboard: Tab moves between the parts; in the grid the arrow keys move and Enter picks
    the reference; on the map ``+``/``-`` zoom, ``0`` resets and Escape clears the selection.

    Parameters
    ----------
    space
        The :class:`~cirscope.Space`.
    map
        ``"auto"`` (UMAP up to 20,000 images, else PCA), ``"umap"``, ``"pca"`` or an
        ``(N, 2)`` array of coordinates.
    color_by
        Metadata column colouring the map (default: the first with 2 to 20 values).
    reference, text, method, k
        Initial query: reference row (-1: none), modification text, composing method
        (``"image"``, ``"text"``, ``"sum"``, ``"weimocir"``, ``"slerp"``, ``"pdv"``) and the
        number of results.
    thumb_size
        Grid thumbnail size in pixels.
    height
        Map height in pixels.
    diagnostics
        ``True`` adds a "Diagnostics" tab with a :class:`~cirscope.DiagnosticsPanel` of the
        space (or pass your own widget); the rows it shows (its ``shown_rows``) appear in
        the grid and are selected on the map.

    Attributes
    ----------
    map, query, grid
        The linked :class:`MapView`, :class:`QueryPanel` and :class:`NeighborGrid`.
    diagnostics
        The diagnostics widget (``None`` without one).
    controller
        The :class:`~cirscope.widgets._controller.ExplorerController` doing the linking.

    Examples
    --------
    >>> ex = cs.Explorer(space, map="pca")
    >>> ex.query.reference = 0; ex.query.text = "make it blue"
    >>> ex.grid.to_dataframe()[["rank", "id", "score"]].shape
    (20, 3)
    >>> ex.close()
    """

    def __init__(
        self,
        space: Space,
        *,
        map: Any = "auto",
        color_by: str | None = None,
        reference: int = -1,
        text: str = "",
        method: str = "pdv",
        k: int = 20,
        thumb_size: int = 96,
        height: int = 440,
        diagnostics: Any = False,
    ):
        self.controller: ExplorerController | None = None
        self.diagnostics = _diagnostics_widget(space, diagnostics)
        self.map = MapView(space, map=map, color_by=color_by, height=height)
        self.query = QueryPanel(space, reference=reference, text=text, method=method, k=k)
        self.grid = NeighborGrid(space, thumb_size=thumb_size, max_height=2 * thumb_size + 120)
        self.controller = ExplorerController(space, self.map, self.query, self.grid, diagnostics=self.diagnostics)
        self.map.layout = ipw.Layout(flex="3 1 0%", min_width="320px")
        self.query.layout = ipw.Layout(flex="2 1 0%", min_width="300px")
        top = ipw.HBox([self.map, self.query], layout=ipw.Layout(width="100%", align_items="stretch"))
        main = ipw.VBox([top, self.grid], layout=ipw.Layout(width="100%"))
        if self.diagnostics is None:
            self.tabs = None
            children = [main]
        else:
            self.tabs = ipw.Tab(children=[main, self.diagnostics])
            self.tabs.set_title(0, "Explore")
            self.tabs.set_title(1, "Diagnostics")
            children = [self.tabs]
        super().__init__(children, layout=ipw.Layout(width="100%"))
        self.add_class("cirscope-explorer")

    @property
    def space(self) -> Space:
        """The explored :class:`~cirscope.Space`."""
        return self.map.binding.space  # type: ignore[union-attr]

    def close(self) -> None:
        """Unlink and close every part (calling it again does nothing)."""
        controller = self.__dict__.get("controller")
        if controller is not None:
            controller.close()
        for name in ("map", "query", "grid"):
            part = self.__dict__.get(name)
            if part is not None:
                if part.binding is not None:
                    part.binding.close()
                part.close()
        super().close()

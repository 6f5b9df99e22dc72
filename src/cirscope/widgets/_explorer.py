"""The Explorer: map, query panel and neighbour grid linked to one space, plus a diagnostics slot."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ipywidgets as ipw

from cirscope.widgets._controller import ExplorerController, MapBinding, map_coords
from cirscope.widgets._grid import NeighborGrid
from cirscope.widgets._map_view import MapView
from cirscope.widgets._query_panel import QueryPanel

if TYPE_CHECKING:  # pragma: no cover
    from cirscope._space import Space

__all__ = ["Explorer", "map_view"]


class Explorer(ipw.VBox):
    """Explore a space: a map, a composed-query panel and the top-k grid, linked.

    Click a thumbnail or a map point to make it the reference, type a modification
    ("make it blue") and press Enter, move the sliders (arrow keys work): the grid and the
    map's highlights follow. Drag on the map to select; the grid's toggle shows the selection.

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
        (``"image"``, ``"text"``, ``"sum"``, ``"weimocir"``, ``"slerp"``, ``"pdv"``), results.
    thumb_size
        Grid thumbnail size in pixels.
    height
        Map height in pixels.

    Attributes
    ----------
    map, query, grid
        The :class:`MapView`, :class:`QueryPanel` and :class:`NeighborGrid`.
    diagnostics
        An empty ``ipywidgets.VBox`` shown in the "Diagnostics" tab; put widgets in its ``children``.
    controller
        The :class:`~cirscope.widgets._controller.ExplorerController` doing the linking.

    Examples
    --------
    >>> import cirscope as cs
    >>> space = cs.Space(cs.datasets.shapes(300, seed=0), cs.Embedder.toy())  # doctest: +SKIP
    >>> ex = cs.Explorer(space)                                               # doctest: +SKIP
    >>> ex.query.reference = 0; ex.query.text = "make it blue"                # doctest: +SKIP
    >>> ex.grid.to_dataframe().head()                                         # doctest: +SKIP
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
    ):
        coords = map_coords(space, map)
        self.map = MapView(height=height, color_by=color_by or "")
        self.query = QueryPanel(reference=reference, text=text, method=method, k=k)
        self.grid = NeighborGrid(thumb_size=thumb_size)
        self.diagnostics = ipw.VBox([ipw.HTML("<i>Diagnostics appear here.</i>")])
        self.controller = ExplorerController(space, self.map, self.query, self.grid, coords=coords)
        self.map.layout = ipw.Layout(flex="3 1 0%", min_width="320px")
        self.query.layout = ipw.Layout(flex="2 1 0%", min_width="280px")
        top = ipw.HBox([self.map, self.query], layout=ipw.Layout(width="100%", align_items="stretch"))
        main = ipw.VBox([top, self.grid], layout=ipw.Layout(width="100%"))
        self.tabs = ipw.Tab(children=[main, self.diagnostics])
        self.tabs.set_title(0, "Explore")
        self.tabs.set_title(1, "Diagnostics")
        super().__init__([self.tabs], layout=ipw.Layout(width="100%"))
        self.add_class("cirscope-explorer")

    @property
    def space(self) -> Space:
        return self.controller.space

    def close(self) -> None:
        """Unlink and close every part."""
        self.controller.close()
        for part in (self.map, self.query, self.grid):
            part.close()
        super().close()


def map_view(space: Space, *, map: Any = "auto", color_by: str | None = None, height: int = 440) -> MapView:
    """A stand-alone :class:`MapView` of ``space``, recoloured and with hover cards.

    Examples
    --------
    >>> view = map_view(space, map="pca", color_by="color")  # doctest: +SKIP
    >>> view.selected                                         # doctest: +SKIP  (rows after a drag)
    """
    view = MapView(coords=map_coords(space, map), color_by=color_by or "", height=height)
    view._binding = MapBinding(view, space)  # kept alive with the view
    return view

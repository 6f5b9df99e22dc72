"""The Explorer: map, query panel and neighbour grid linked to one space, plus a diagnostics slot.

The Explorer is one anywidget whose traits hold its parts (``anywidget.WidgetTrait``);
its front end (``js/explorer.js``) lays them out and has each drawn by its own module
through anywidget's host API, so the same object shows in JupyterLab, Notebook 7, Voila,
marimo and VS Code, and every part stays a widget of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ipywidgets as ipw
import traitlets as t
from anywidget import WidgetTrait

from cirscope.widgets._base import WidgetBase
from cirscope.widgets._controller import ExplorerController
from cirscope.widgets._grid import NeighborGrid
from cirscope.widgets._map_view import MapView
from cirscope.widgets._query_panel import QueryPanel
from cirscope.widgets._static import static_file

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


class Explorer(WidgetBase):
    """Explore a space: a map, a composed-query panel and the top-k grid, linked.

    Click a thumbnail or a map point to make it the reference, type a modification
    ("make it blue") and press Enter, move the sliders (arrow keys work on a focused
    slider): the grid and the map's highlights follow live. Drag on the map to select
    (box or lasso): the grid shows the selection, and its toggle flips back to the results.
    Keyboard: Tab moves between the parts; in the grid the arrow keys move and Enter picks
    the reference; on the map ``+``/``-`` zoom, ``0`` resets and Escape clears the selection.

    The same object shows in JupyterLab, Notebook 7, Voila, VS Code and marimo
    (``mo.ui.anywidget(ex)``, or ``ex`` as a cell's last expression). Each display also
    stores a static snapshot (``text/html``, see :mod:`cirscope.widgets._snapshot`) that
    pages without a widget front end show, e.g. a notebook exported to HTML.

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
    analysis
        ``True`` adds an :class:`~cirscope.widgets._slider_bias.AnalysisView` under the query
        panel: the skew of an attribute along PDV's alpha slider, and paraphrase robustness.

    Attributes
    ----------
    map, query, grid
        The linked :class:`MapView`, :class:`QueryPanel` and :class:`NeighborGrid`.
    diagnostics
        The diagnostics widget (``None`` without one).
    analysis
        The analysis view (``None`` without one).
    tab
        The tab on display: ``"explore"`` or ``"diagnostics"``.
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

    _esm = static_file("explorer.js")

    map = WidgetTrait().tag(sync=True)
    query = WidgetTrait().tag(sync=True)
    grid = WidgetTrait().tag(sync=True)
    diagnostics = WidgetTrait().tag(sync=True)
    analysis = WidgetTrait().tag(sync=True)
    tab = t.Enum(["explore", "diagnostics"], "explore", help="The tab on display").tag(sync=True)

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
        analysis: bool = False,
    ):
        self.controller: ExplorerController | None = None
        panel = _diagnostics_widget(space, diagnostics)
        map_view = MapView(space, map=map, color_by=color_by, height=height)
        query = QueryPanel(space, reference=reference, text=text, method=method, k=k)
        grid = NeighborGrid(space, thumb_size=thumb_size, max_height=2 * thumb_size + 120)
        self.controller = ExplorerController(space, map_view, query, grid, diagnostics=panel)
        view = None
        if analysis:
            from cirscope.widgets._slider_bias import AnalysisView

            view = AnalysisView(space, query)
        super().__init__(map=map_view, query=query, grid=grid, diagnostics=panel, analysis=view)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The widget view, plus a static HTML snapshot for pages without a widget front end."""
        from cirscope.widgets._snapshot import explorer_snapshot

        bundle = super()._repr_mimebundle_(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        if isinstance(data, dict) and self._trait_values.get("map") is not None:
            data["text/html"] = explorer_snapshot(self)
        return bundle

    @property
    def space(self) -> Space:
        """The explored :class:`~cirscope.Space`."""
        return self.map.binding.space  # type: ignore[union-attr]

    def close(self) -> None:
        """Unlink and close every part (calling it again does nothing)."""
        controller = self.__dict__.get("controller")
        if controller is not None:
            controller.close()
        for name in ("map", "query", "grid", "analysis"):
            part = self._trait_values.get(name)
            if part is not None:
                if part.binding is not None:
                    part.binding.close()
                part.close()
        super().close()

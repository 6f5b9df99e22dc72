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
from cirscope.widgets._curation import CurationBar, CurationBinding
from cirscope.widgets._detail import DetailLink, DetailView
from cirscope.widgets._filters import FilterPanel
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


def _filter_panel(space: Space, filters: Any, height: int) -> FilterPanel | None:
    """The sidebar of metadata filters: ``True`` (columns meant for people), a list of columns or
    a dict of initial filters; ``None`` when off or when no column is worth a chart."""
    if filters is None or filters is False:
        return None
    if isinstance(filters, FilterPanel):
        return filters
    if filters is True or isinstance(filters, dict):
        from cirscope.widgets._filter_charts import filter_columns

        columns = filter_columns(space.gallery.metadata)
        if isinstance(filters, dict):
            columns += [str(c) for c in filters if str(c) not in columns]
        if not columns:
            return None
        panel = FilterPanel(space, columns=columns, max_height=height + 480)
        if isinstance(filters, dict):
            panel.filters = filters
        return panel
    if isinstance(filters, (list, tuple)):
        return FilterPanel(space, columns=[str(c) for c in filters], max_height=height + 480)
    raise TypeError(
        f"filters must be True, False, a list of columns or a dict of filters, got {type(filters).__name__}"
    )


class Explorer(WidgetBase):
    """Explore a space: a map, a composed-query panel and the top-k grid, linked.

    Click a thumbnail or a map point to make it the reference, type a modification
    ("make it blue") and press Enter, move the sliders (arrow keys work on a focused
    slider): the grid and the map's highlights follow live. Drag on the map to select
    (box or lasso): the grid shows the selection, and its toggle flips back to the results.
    Keyboard: Tab moves between the parts; in the grid the arrow keys (and Home / End)
    move a visible focus ring, Enter picks the reference, ``i`` or Space opens the detail
    view and Escape closes it (or, when it is closed, clears the selection); on the map
    ``+``/``-`` zoom, ``0`` resets and Escape clears the selection.

    The detail view (each thumbnail's ⓘ button, or :meth:`show_detail`) shows one image
    large with every metadata value as text, its nearest neighbours (click one to open
    it) and buttons to make it the reference or add it to the map's selection.

    The same object shows in JupyterLab, Notebook 7, Voila, VS Code and marimo
    (``mo.ui.anywidget(ex)``, or ``ex`` as a cell's last expression). Each display also
    stores a static snapshot (``text/html``, see :mod:`cirscope.widgets._snapshot`) that
    pages without a widget front end show, e.g. a page written by ``cirscope export``.

    Parameters
    ----------
    space
        The :class:`~cirscope.Space`.
    map
        ``"auto"`` (UMAP up to 20,000 images, else PCA), ``"umap"``, ``"pca"`` or an
        ``(N, 2)`` array of coordinates. ``"auto"`` shows a cached UMAP at once; otherwise it
        opens on the PCA layout and fits UMAP in the background once the Explorer is drawn
        (progress on the map, then the UMAP layout replaces it, keeping the selection, the
        reference and the results; :meth:`map_ready` waits for it). A script that never shows
        the Explorer never pays for a UMAP. ``"umap"`` computes it before returning.
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
    compare
        Another :class:`~cirscope.Space` of the same gallery (another model, or another
        checkpoint): adds a "Compare" tab with a :class:`~cirscope.CompareView` of the two.
    analysis
        ``True`` adds an :class:`~cirscope.widgets._slider_bias.AnalysisView` under the query
        panel: the skew of an attribute along PDV's alpha slider, and paraphrase robustness.
    filters
        ``True`` (default) adds a sidebar of metadata filters (:class:`~cirscope.FilterPanel`):
        a chart per column meant for people; a click filters the map (the rows outside are
        dimmed), the grid and every search (text, composed, neighbours, slider moves, Refine).
        Pass a list of columns to chart, a dict of initial filters, or ``False`` for none.

    Attributes
    ----------
    map, query, grid
        The linked :class:`MapView`, :class:`QueryPanel` and :class:`NeighborGrid`.
    diagnostics
        The diagnostics widget (``None`` without one).
    compare
        The :class:`~cirscope.CompareView` (``None`` without ``compare=``).
    analysis
        The analysis view (``None`` without one).
    filter_panel
        The :class:`~cirscope.FilterPanel` (``None`` without one).
    filters
        The active metadata filters, ``{column: [values]}`` or ``{column: (low, high)}``;
        settable from Python (``ex.filters = {"color": ["red"]}``, ``{}`` clears them).
    tab
        The tab on display: ``"explore"``, ``"diagnostics"`` or ``"compare"``.
    controller
        The :class:`~cirscope.widgets._controller.ExplorerController` doing the linking.
    detail
        The :class:`~cirscope.widgets._detail.DetailView` (its ``row`` trait: the open row,
        -1 when closed), linked by :attr:`detail_link`.
    curation, curator
        The bar under the map (tag the selection or the results, filter, export, save and
        restore views) and its :class:`~cirscope.widgets._curation.CurationBinding`.

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
    curation = WidgetTrait().tag(sync=True)
    compare = WidgetTrait().tag(sync=True)
    analysis = WidgetTrait().tag(sync=True)
    detail = WidgetTrait().tag(sync=True)
    filter_panel = WidgetTrait().tag(sync=True)
    tab = t.Enum(["explore", "diagnostics", "compare"], "explore", help="The tab on display").tag(sync=True)

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
        compare: Space | None = None,
        analysis: bool = False,
        filters: Any = True,
    ):
        self.controller: ExplorerController | None = None
        panel = _diagnostics_widget(space, diagnostics)
        map_view = MapView(space, map=map, color_by=color_by, height=height)
        compare_view = None
        if compare is not None:
            from cirscope.widgets._compare_view import CompareView

            compare_view = CompareView(space, compare, map_a=map_view.coords, color_by=color_by)
        query = QueryPanel(space, reference=reference, text=text, method=method, k=k)
        grid = NeighborGrid(space, thumb_size=thumb_size, max_height=2 * thumb_size + 120)
        self.controller = ExplorerController(space, map_view, query, grid, diagnostics=panel)
        sidebar = _filter_panel(space, filters, height)
        if sidebar is not None and sidebar.binding is not None:
            sidebar.binding.on_change(self.controller.set_filter_mask)
            if sidebar.mask is not None:
                self.controller.set_filter_mask(sidebar.mask)
        bar = CurationBar()
        #: tags, filter, exports and saved views (:mod:`cirscope.widgets._curation`)
        self.curator = CurationBinding(bar, space, map_view, query, grid)
        self.curator.filter_panel = sidebar
        detail = DetailView(space)
        #: opens the detail view from the grid and carries out its buttons (:mod:`cirscope.widgets._detail`)
        self.detail_link = DetailLink(detail, self.controller)
        view = None
        if analysis:
            from cirscope.widgets._slider_bias import AnalysisView

            view = AnalysisView(space, query)
        super().__init__(map=map_view, query=query, grid=grid, diagnostics=panel, curation=bar, compare=compare_view,
                         analysis=view, detail=detail, filter_panel=sidebar)
        if compare_view is not None:  # the Compare tab's first map follows the Explorer's layout
            map_view.observe(self._follow_layout, "coords")
        self.on_msg(self._on_drawn)

    # ------------------------------------------------------------------ progressive map
    def _on_drawn(self, widget: Any, content: Any, buffers: list) -> None:
        """A view of the Explorer pinged (it was drawn): start the background UMAP fits."""
        if isinstance(content, dict) and content.get("event") == "ping":
            for part in (self.map, self.compare.map_b if self.compare is not None else None):
                if part is not None and getattr(part.binding, "progressive", None) is not None:
                    part.binding.progressive.start()

    def _follow_layout(self, change: dict) -> None:
        if self.compare is not None and change["new"] is not None:
            self.compare.map_a.binding.show_coords(change["new"])

    def map_ready(self, timeout: float | None = None) -> bool:
        """Wait until the map shows UMAP (see ``map=``); ``False`` after ``timeout`` seconds.

        Starts the background fit if the Explorer has not been drawn yet; a failed fit raises
        ``RuntimeError`` (the map's status line says so too).

        Examples
        --------
        >>> ex = cs.Explorer(space, map="pca")
        >>> ex.map_ready()  # nothing to wait for: the map shows the layout asked for
        True
        >>> ex.close()
        """
        return self.map.map_ready(timeout)

    # ------------------------------------------------------------------ detail view
    def show_detail(self, row: int) -> None:
        """Open the detail view on gallery ``row`` (``-1`` closes it); ``IndexError`` outside the gallery.

        Examples
        --------
        >>> ex = cs.Explorer(space, map="pca")
        >>> ex.show_detail(4)
        >>> ex.detail.row, ex.detail.item_id, len(ex.detail.neighbors)
        (4, 'shape-0-00004', 8)
        >>> ex.close_detail(); ex.detail.row
        -1
        >>> ex.close()
        """
        self.detail.show(row)

    def close_detail(self) -> None:
        """Close the detail view (what × and Escape do)."""
        self.detail.show(-1)

    # ------------------------------------------------------------------ curation
    def tag_selection(self, name: str) -> int:
        """Tag the map's selection with ``name`` (see :meth:`cirscope.Space.tag`); returns how many were new."""
        return self.curator.tag("selection", name)

    def export_selection(self, path: Any, format: str | None = None, **options: Any) -> Any:
        """Export the map's selection (CSV, Parquet, a folder or FiftyOne; see :func:`cirscope.export`)."""
        return self.curator.export("selection", path, format, **options)

    def export_results(self, path: Any, format: str | None = None, **options: Any) -> Any:
        """Export the current results with their ranks and scores (see :func:`cirscope.export`)."""
        return self.curator.export("results", path, format, **options)

    def save_view(self, path: Any) -> Any:
        """Save the state (query, sliders, colours, filters, selection, tags) to a small JSON file.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> ex = cs.Explorer(space, map="pca", reference=2, text="make it blue")
        >>> with tempfile.TemporaryDirectory() as d:
        ...     path = ex.save_view(pathlib.Path(d) / "view.json")
        ...     again = cs.Explorer.from_view(space, path, map="pca")
        >>> again.query.reference, again.query.text, again.grid.rows == ex.grid.rows
        (2, 'make it blue', True)
        >>> ex.close(); again.close()
        """
        return self.curator.save_view(path)

    def restore_view(self, path: Any) -> list[str]:
        """Show a saved view (tags are added, none removed); returns notes on what did not fit this space."""
        return self.curator.restore_view(path)

    @classmethod
    def from_view(cls, space: Space, path: Any, **options: Any) -> Explorer:
        """A new Explorer of ``space`` showing the view saved at ``path``."""
        explorer = cls(space, **options)
        explorer.restore_view(path)
        return explorer

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The widget view, plus a static HTML snapshot for pages without a widget front end."""
        from cirscope.widgets._snapshot import explorer_snapshot

        bundle = super()._repr_mimebundle_(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        if isinstance(data, dict) and self._trait_values.get("map") is not None:
            data["text/html"] = explorer_snapshot(self)
        return bundle

    def to_html(self, path: Any, queries: Any = None, **options: Any) -> Any:
        """Write an interactive report that needs no kernel: see :func:`cirscope.to_html`.

        The map, its colours and the current query (with its slider values) come from this
        Explorer; ``queries`` adds more saved queries.
        """
        from cirscope.widgets._standalone import to_html

        return to_html(self, path, queries, **options)

    @property
    def filters(self) -> dict[str, Any]:
        """The active metadata filters (see the class docstring); ``{}`` without a filter panel.

        Examples
        --------
        >>> ex = cs.Explorer(space, map="pca", reference=0)
        >>> ex.filters = {"color": "red"}
        >>> set(ex.grid.to_dataframe()["color"]), ex.filters
        ({'red'}, {'color': ['red']})
        >>> ex.close()
        """
        panel = self._trait_values.get("filter_panel")
        return panel.filters if panel is not None else {}

    @filters.setter
    def filters(self, value: Any) -> None:
        panel = self._trait_values.get("filter_panel")
        if panel is None:
            raise RuntimeError("This Explorer has no filter panel: create it with filters=True (and a gallery "
                               "with metadata columns to filter by)")
        panel.filters = value

    @property
    def space(self) -> Space:
        """The explored :class:`~cirscope.Space`."""
        return self.map.binding.space  # type: ignore[union-attr]

    def close(self) -> None:
        """Unlink and close every part (calling it again does nothing)."""
        controller = self.__dict__.get("controller")
        if controller is not None:
            controller.close()
        if self.__dict__.get("detail_link") is not None:
            self.detail_link.close()
        if self._trait_values.get("compare") is not None and self._trait_values.get("map") is not None:
            self.map.unobserve(self._follow_layout, "coords")
        if self.__dict__.get("curator") is not None:
            self.curator.close()
            if self._trait_values.get("curation") is not None:
                self.curation.close()
        for name in ("map", "query", "grid", "analysis", "detail", "filter_panel"):
            part = self._trait_values.get(name)
            if part is not None:
                if part.binding is not None:
                    part.binding.close()
                part.close()
        if self._trait_values.get("compare") is not None:
            self.compare.close()
        super().close()

"""Jupyter widgets for exploring a :class:`~cirscope.Space`.

:class:`Explorer` links a :class:`MapView` (the 2-D map), a :class:`QueryPanel`
(reference image, modification text, method and sliders), a :class:`NeighborGrid`
(the top-k thumbnails) and a :class:`FilterPanel` (metadata filters); each is also a widget on its own, to lay out with ipywidgets and
link with traitlets. The widget classes hold state; each widget's module also holds its
binding (``MapBinding``, ``GridBinding``, ``QueryBinding``), which fills the widget from a
space, and :mod:`cirscope.widgets._controller` links them.

Examples
--------
>>> explorer = cs.Explorer(space, map="pca")
>>> explorer.query.text = "make it blue"
>>> len(explorer.grid.rows)
20
>>> explorer.close()

Parts on their own, linked with traitlets:

>>> import ipywidgets, traitlets
>>> panel, grid = cs.QueryPanel(space, reference=0), cs.NeighborGrid(space)
>>> link = traitlets.dlink((panel, "results"), (grid, "rows"))
>>> grid.rows == panel.results
True
>>> box = ipywidgets.VBox([panel, grid])  # shown in a notebook cell
"""

from __future__ import annotations

from typing import Any

from cirscope.widgets._explorer import Explorer
from cirscope.widgets._filters import FilterPanel
from cirscope.widgets._grid import NeighborGrid
from cirscope.widgets._map_view import MapView
from cirscope.widgets._query_panel import QueryPanel

__all__ = ["AnalysisView", "CompareView", "DiagnosticsPanel", "Explorer", "FilterPanel", "MapView", "NeighborGrid",
           "QueryPanel"]


def __getattr__(name: str) -> Any:
    # the diagnostics panel lives in its own module (imported on first use)
    if name == "DiagnosticsPanel":
        from cirscope.widgets._diagnostics_panel import DiagnosticsPanel

        return DiagnosticsPanel
    if name == "CompareView":  # the two-model comparison, in its own module too
        from cirscope.widgets._compare_view import CompareView

        return CompareView
    if name == "AnalysisView":
        from cirscope.widgets._slider_bias import AnalysisView

        return AnalysisView
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

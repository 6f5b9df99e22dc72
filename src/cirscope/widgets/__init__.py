"""Jupyter widgets for exploring a :class:`~cirscope.Space`.

:class:`Explorer` links a :class:`MapView` (scatter of the 2-D map), a :class:`QueryPanel`
(reference image, modification text, method and sliders) and a :class:`NeighborGrid`
(the top-k thumbnails). The widget classes hold state only; the linking logic lives in
:mod:`cirscope.widgets._controller`.

Examples
--------
>>> import cirscope as cs
>>> from cirscope.widgets import Explorer
>>> Explorer(cs.Space(cs.datasets.shapes(300), cs.Embedder.toy()))  # doctest: +SKIP
"""

from cirscope.widgets._controller import ExplorerController, MapBinding
from cirscope.widgets._explorer import Explorer, map_view
from cirscope.widgets._grid import NeighborGrid
from cirscope.widgets._map_view import MapView
from cirscope.widgets._query_panel import QueryPanel

__all__ = ["Explorer", "ExplorerController", "MapBinding", "MapView", "NeighborGrid", "QueryPanel", "map_view"]

"""The map widget: a scatter of the gallery's 2-D map (canvas drawing in ``js/map_view.js``)."""

from __future__ import annotations

import anywidget
import numpy as np
import traitlets as t

from cirscope.widgets._codec import Array, RowList
from cirscope.widgets._static import static_file

__all__ = ["MapView"]


class MapView(anywidget.AnyWidget):
    """A scatter of 2-D coordinates with colours, highlights, hover cards and box/lasso selection.

    The widget only holds state; :func:`cirscope.widgets.map_view` (or the
    :class:`~cirscope.widgets.Explorer`) fills it from a space and keeps it up to date.
    Drag to select (box or lasso, see ``select_mode``), wheel to zoom, double-click to
    reset the view, Escape to clear the selection; a click on a point sends a ``click``
    message.

    Attributes
    ----------
    coords : (N, 2) float32
        Point positions (any units; the view fits them).
    colors : (N, 3) uint8
        Per-point RGB; ``legend`` / ``colorbar`` describe them, ``color_by`` names the column.
    highlighted : (k,) int32
        Rows to emphasise (the current top-k, best first).
    query_point : list of float
        ``[x, y]`` where the current query falls, or ``[]``.
    reference : int
        The reference row (-1: none).
    selected : list of int
        Rows inside the last box/lasso selection (set from the browser; settable from Python).
    hovered : int
        The row under the pointer (-1: none); ``hover_image``/``hover_meta`` describe ``hover_row``.

    Examples
    --------
    >>> view = MapView(coords=np.zeros((3, 2)))
    >>> view.coords.dtype, view.selected
    (dtype('float32'), [])
    """

    _esm = static_file("map_view.js")
    _css = static_file("cirscope.css")

    coords = Array(np.float32, ndim=2, width=2).tag(sync=True)
    colors = Array(np.uint8, ndim=2, width=3).tag(sync=True)
    color_by = t.Unicode("").tag(sync=True)
    color_columns = t.List(t.Unicode()).tag(sync=True)
    legend = t.List(t.Dict()).tag(sync=True)
    colorbar = t.Dict().tag(sync=True)
    highlighted = Array(np.int32, ndim=1).tag(sync=True)
    query_point = t.List(t.Float(), maxlen=2).tag(sync=True)
    reference = t.Int(-1).tag(sync=True)
    selected = RowList().tag(sync=True)
    select_mode = t.Enum(["box", "lasso", "pan"], default_value="box").tag(sync=True)
    hovered = t.Int(-1).tag(sync=True)
    hover_row = t.Int(-1).tag(sync=True)
    hover_image = t.Bytes(b"").tag(sync=True)
    hover_meta = t.Dict().tag(sync=True)
    point_size = t.Float(0.0, min=0.0).tag(sync=True)
    height = t.Int(440, min=120).tag(sync=True)
    title = t.Unicode("").tag(sync=True)

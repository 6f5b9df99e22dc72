"""The neighbour grid: thumbnails of the current results (or of the map selection)."""

from __future__ import annotations

import anywidget
import numpy as np
import pandas as pd
import traitlets as t

from cirscope.widgets._codec import Array
from cirscope.widgets._static import static_file

__all__ = ["NeighborGrid"]


class NeighborGrid(anywidget.AnyWidget):
    """Thumbnails with rank, score and a metadata card on hover; a click sends a ``click`` message.

    ``mode`` is ``"query"`` (the top-k of the current query) or ``"selection"`` (the
    rows selected on the map); ``frame`` holds the shown rows as a DataFrame and
    :meth:`to_dataframe` returns a copy of it.

    Examples
    --------
    >>> grid = NeighborGrid()
    >>> grid.to_dataframe().empty
    True
    """

    _esm = static_file("neighbor_grid.js")
    _css = static_file("cirscope.css")

    rows = t.List(t.Int()).tag(sync=True)
    ids = t.List(t.Unicode()).tag(sync=True)
    scores = Array(np.float32, ndim=1).tag(sync=True)
    thumbnails = t.List(t.Bytes()).tag(sync=True)
    metadata = t.List(t.Dict()).tag(sync=True)
    mode = t.Enum(["query", "selection"], default_value="query").tag(sync=True)
    title = t.Unicode("").tag(sync=True)
    thumb_size = t.Int(96, min=32, max=256).tag(sync=True)
    version = t.Int(0).tag(sync=True)
    frame = t.Instance(pd.DataFrame, allow_none=True)

    def to_dataframe(self) -> pd.DataFrame:
        """The shown rows (rank, row, id, score and metadata for query results)."""
        return pd.DataFrame() if self.frame is None else self.frame.copy()

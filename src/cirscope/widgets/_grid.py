"""The neighbour grid: thumbnails of the current results (or of the map selection)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import traitlets as t

from cirscope.widgets._base import ClickEvents, WidgetBase
from cirscope.widgets._codec import Array, RowList
from cirscope.widgets._static import static_file

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.space._space import Space

__all__ = ["NeighborGrid"]


class NeighborGrid(WidgetBase, ClickEvents):
    """Thumbnails with rank, score and a metadata card on hover; a click picks an image.

    Set :attr:`rows` (or call :meth:`show`) and the grid fetches the thumbnails, ids and
    metadata from the space. A click on a thumbnail (or Enter on a focused one; arrow keys
    move between them) sets :attr:`clicked` and calls the :meth:`on_click` callbacks. The
    toggle at the top switches :attr:`mode` between ``"query"`` (the results) and
    ``"selection"`` (the rows selected on the map); the :class:`Explorer` fills both.

    Parameters
    ----------
    space
        The :class:`~cirscope.Space` the rows refer to (needed for thumbnails).
    rows
        Gallery rows to show right away.
    **traits
        Any trait below, e.g. ``thumb_size=128``.

    Attributes
    ----------
    rows : list of int
        The shown gallery rows, in order.
    scores : (k,) float32
        Their scores (empty: none shown).
    mode : {"query", "selection"}
        What the grid shows; flipped by the toggle in the browser.

    Examples
    --------
    >>> grid = NeighborGrid(space, rows=[3, 1, 4])  # doctest: +SKIP
    >>> grid.to_dataframe()["id"].tolist()          # doctest: +SKIP
    ['shape-0-00003', 'shape-0-00001', 'shape-0-00004']
    >>> NeighborGrid().to_dataframe().empty
    True
    """

    _esm = static_file("neighbor_grid.js")

    rows = RowList().tag(sync=True)
    ids = t.List(t.Unicode()).tag(sync=True)
    scores = Array(np.float32, ndim=1).tag(sync=True)
    thumbnails = t.List(t.Bytes(), help="Image bytes (JPEG/PNG), one per row").tag(sync=True)
    metadata = t.List(t.Dict(), help="Metadata as text, one dict per row (hover cards)").tag(sync=True)
    reference = t.Int(-1, min=-1, help="The reference row (marked when shown)").tag(sync=True)
    mode = t.Enum(["query", "selection"], default_value="query").tag(sync=True)
    show_toggle = t.Bool(False, help="Show the results/selection toggle").tag(sync=True)
    n_selected = t.Int(0, help="How many rows the selection holds (toggle label)").tag(sync=True)
    selection_label = t.Unicode("Map selection").tag(sync=True)
    title = t.Unicode("").tag(sync=True)
    thumb_size = t.Int(96, min=32, max=256).tag(sync=True)
    max_height = t.Int(0, min=0, help="Scroll the thumbnails beyond this height in px (0: no limit)").tag(sync=True)
    version = t.Int(0, help="Counts updates of the shown rows").tag(sync=True)

    def __init__(self, space: Space | None = None, *, rows: Sequence[int] | None = None, **traits: Any):
        super().__init__(**traits)
        self._click_dispatcher()
        #: the shown rows as a table, or a function that builds it (what :meth:`to_dataframe` copies); not synced
        self.frame: pd.DataFrame | Callable[[], pd.DataFrame] | None = None
        self.binding = None
        if space is not None:
            from cirscope.widgets._bindings import GridBinding

            self.binding = GridBinding(self, space)
        if rows is not None:
            self.rows = [int(r) for r in rows]

    def show(self, rows: Sequence[int], scores: Sequence[float] | None = None, *, title: str | None = None,
             frame: pd.DataFrame | Callable[[], pd.DataFrame] | None = None) -> None:
        """Show gallery ``rows`` (with optional ``scores``) in one update.

        ``frame`` is what :meth:`to_dataframe` returns, or a function that builds it on
        request (default: rank, row, id, score and the metadata of the rows).
        """
        if self.binding is None:
            raise RuntimeError("This grid has no space to fetch thumbnails from: create it as NeighborGrid(space)")
        self.binding.show(rows, scores, title=title, frame=frame)

    def to_dataframe(self) -> pd.DataFrame:
        """The shown rows as a DataFrame (for results: rank, row, id, score and metadata)."""
        if callable(self.frame):  # built on first request, not on every update
            self.frame = self.frame()
        return pd.DataFrame() if self.frame is None else self.frame.copy()

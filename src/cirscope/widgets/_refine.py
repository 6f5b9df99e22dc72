"""Relevance feedback in the Explorer: the grid's marks refine the query panel's composed query.

Pressing Refine in the grid (:class:`~cirscope.widgets.NeighborGrid` with ``feedback=True``)
runs :func:`cirscope.analysis.feedback` on the panel's current composed query with every row
marked so far, shows the new top K in the grid with the rank change of the marked rows
("12 -> 1") and highlights it on the map. Pressing Refine again refines the refined query
(one more round); a new reference or text clears the marks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from cirscope.query._composed import ComposedQuery
from cirscope.query._methods import METHODS
from cirscope.widgets._binding import Binding
from cirscope.widgets._query_state import QUERY_ERRORS

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.space._space import Space
    from cirscope.widgets._grid import NeighborGrid
    from cirscope.widgets._map_view import MapView
    from cirscope.widgets._query_panel import QueryPanel

__all__ = ["FeedbackLink"]

_LABELS = {"rocchio": "Rocchio", "pdv": "PDV-aware"}


class FeedbackLink(Binding):
    """Refines the panel's query from the grid's marks (see the module docstring).

    Examples
    --------
    >>> from cirscope.widgets import NeighborGrid, QueryPanel
    >>> panel, grid = QueryPanel(space, reference=0, text="make it blue"), NeighborGrid(space)
    >>> link = FeedbackLink(space, panel, grid)
    >>> grid.marks = {str(panel.results[3]): "relevant", str(panel.results[0]): "not relevant"}
    >>> result = link.refine()
    >>> result.round, grid.notes[0] != "", grid.rows == result.rows.tolist()
    (1, True, True)
    >>> link.close()
    """

    def __init__(self, space: Space, panel: QueryPanel, grid: NeighborGrid, map_view: MapView | None = None):
        self.space = space
        self.panel = panel
        self.grid = grid
        self.map = map_view
        self.last: Any = None
        self._key: tuple | None = None
        grid.feedback = True
        grid.on_refine(self.refine)
        self.follow(panel, self._on_query, ["reference", "text", "reference_text_override", "composed_text_override"])

    def _on_query(self, change: dict) -> None:
        self.last = None
        self._key = None
        with self.grid.hold_sync():
            self.grid.marks = {}
            self.grid.feedback_status = ""

    def refine(self) -> Any:
        """One round of feedback with the current marks; returns the :class:`~cirscope.analysis.FeedbackResult`."""
        from cirscope.analysis._feedback import feedback

        grid, panel = self.grid, self.panel
        current = panel.binding.current_query() if panel.binding is not None else None
        if current is None or not isinstance(current[0], ComposedQuery):
            grid.feedback_status = "Refine needs a composed query: pick a reference image and type a modification."
            return None
        relevant, irrelevant = grid.marked()
        if not relevant and not irrelevant:
            grid.feedback_status = "Mark results first: the check mark (or r) for relevant, the cross (or n) for not."
            return None
        query, method = current
        variant = grid.feedback_method
        base = "pdv" if variant == "pdv" else method
        params = {p.name: float(getattr(panel, p.name)) for p in METHODS[base].params}
        key = (query, variant, base, tuple(sorted(params.items())))
        start = self.last if (self.last is not None and key == self._key) else query
        try:
            res = feedback(self.space, start, relevant, irrelevant, method=variant, k=int(panel.k),
                           mask=panel.binding.mask,  # the Explorer's filters
                           **({} if start is not query else {"base": base, **params}))
        except QUERY_ERRORS as exc:
            grid.feedback_status = f"Refine failed: {type(exc).__name__}: {exc}"
            return None
        self.last, self._key = res, key
        changes = res.rank_changes()
        notes = [changes.get(int(r), "") for r in res.rows]
        summary = res.summary()
        title = f"Refined · {_LABELS[variant]} · round {res.round}"
        grid.show(res.rows, res.scores, title=title, notes=notes)
        moved = "; ".join(f"{row}: {text}" for row, text in list(changes.items())[:8])
        grid.feedback_status = (f"{title}: {summary['relevant']} relevant, {summary['not_relevant']} not relevant. "
                                f"Rank before -> after: {moved}")
        if self.map is not None:
            self.map.highlighted = np.asarray(res.rows, dtype=np.int32)
        return res

    def close(self) -> None:
        """Stop refining (calling it again does nothing)."""
        if self.__dict__.get("_observers"):
            self.grid.on_refine(self.refine, remove=True)
        super().close()

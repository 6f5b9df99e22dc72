"""The filter panel and its binding: one small chart per metadata column, clicks filter the gallery.

:class:`FilterPanel` holds the traits the browser draws (``js/filter_panel.js``): the charts
(bars of the top values and "other" for categories, a binned histogram for numbers), their
counts and the active filters as chips. :class:`FilterBinding` keeps the filters, computes
the mask and the cross-filter counts with :class:`cirscope.space._filters.FilterTable` (array
operations), and tells its listeners the new mask; in an :class:`~cirscope.Explorer` the map
dims the rows outside it and the grid and every search keep to the rows inside.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import traitlets as t

from cirscope.space._filters import DEFAULT_BINS, Filter, FilterTable
from cirscope.widgets._base import WidgetBase
from cirscope.widgets._binding import Binding
from cirscope.widgets._filter_charts import (
    TOP_VALUES,
    active_keys,
    bar_counts,
    chart_spec,
    chip_text,
    click_filter,
    filter_columns,
    range_of_bins,
)
from cirscope.widgets._static import static_file

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.space._space import Space

__all__ = ["FilterBinding", "FilterPanel"]

_MSG_ERRORS = (KeyError, ValueError, TypeError)


class FilterPanel(WidgetBase):
    """Metadata filters: a chart per column; click a bar (or drag over histogram bins) to filter.

    Within a column a click adds a value (OR); across columns the filters combine (AND). Each
    chart counts its values within the filters of the *other* columns (cross-filtering), over
    a faint bar of the whole gallery's count. The active filters show as chips with a × to
    remove them, and "Clear all" removes every one. Numbers with more than 20 values get a
    histogram: click a bin, or drag across bins, for a range.

    Parameters
    ----------
    space
        The :class:`~cirscope.Space` whose metadata is filtered (leave out for an empty panel).
    columns
        The columns to chart (default: those meant for people, see
        :func:`~cirscope.widgets._filter_charts.filter_columns`).
    bins
        Histogram bins of numeric columns.
    top
        Bars of a categorical column before "other".
    **traits
        Any trait below, e.g. ``max_height=400``.

    Attributes
    ----------
    filters : dict
        The active filters, ``{column: [values]}`` or ``{column: (low, high)}`` (inclusive;
        ``None`` for an open end, or as a value: missing). Settable from Python; a bad filter
        raises and changes nothing.
    mask : numpy.ndarray or None
        The rows every filter keeps (``None``: no filter).
    n_matching, n_total : int
        How many rows the filters keep, out of how many.

    Examples
    --------
    >>> panel = cs.FilterPanel(space)
    >>> [chart["column"] for chart in panel.charts]
    ['shape', 'color', 'background', 'size']
    >>> panel.filters = {"color": ["red", "blue"], "size": "small"}
    >>> meta = space.metadata
    >>> panel.n_matching == int((meta["color"].isin(["red", "blue"]) & (meta["size"] == "small")).sum())
    True
    >>> sorted(panel.filters["color"]), panel.chips[1]
    (['blue', 'red'], {'column': 'size', 'text': 'small'})
    """

    _esm = static_file("filter_panel.js")

    charts = t.List(t.Dict(), help="One chart per column: {column, kind, bars: [{key, label}], total}").tag(sync=True)
    counts = t.Dict(help="{column: counts per bar} within the other columns' filters").tag(sync=True)
    active = t.Dict(help="{column: {on: [bar keys], partial: [bar keys]}}").tag(sync=True)
    chips = t.List(t.Dict(), help="The active filters: [{column, text}]").tag(sync=True)
    n_matching = t.Int(0, help="Rows inside every filter").tag(sync=True)
    n_total = t.Int(0, help="Rows in the gallery").tag(sync=True)
    max_height = t.Int(0, min=0, help="Scroll the charts beyond this height in px (0: no limit)").tag(sync=True)
    error = t.Unicode("").tag(sync=True)
    version = t.Int(0, help="Counts updates of the counts").tag(sync=True)

    def __init__(self, space: Space | None = None, *, columns: list[str] | None = None, bins: int = DEFAULT_BINS,
                 top: int = TOP_VALUES, **traits: Any):
        super().__init__(**traits)
        self.binding: FilterBinding | None = None
        if space is not None:
            self.binding = FilterBinding(self, space, columns=columns, bins=bins, top=top)

    def _bound(self) -> FilterBinding:
        if self.binding is None:
            raise RuntimeError("This filter panel has no space: create it as FilterPanel(space)")
        return self.binding

    @property
    def filters(self) -> dict[str, Any]:
        """The active filters as ``{column: [values]}`` or ``{column: (low, high)}`` (a copy)."""
        return self._bound().filters if self.binding is not None else {}

    @filters.setter
    def filters(self, value: Mapping[str, Any] | None) -> None:
        self._bound().set_filters(value)

    @property
    def mask(self) -> np.ndarray | None:
        """The rows every filter keeps (bool, one per row), ``None`` without filters."""
        return self.binding.mask if self.binding is not None else None

    def on_change(self, callback: Callable[[np.ndarray | None], Any], remove: bool = False) -> None:
        """Call ``callback(mask)`` after every change of the filters (``remove=True`` unregisters)."""
        self._bound().on_change(callback, remove=remove)


class FilterBinding(Binding):
    """Keeps a :class:`FilterPanel` in step with a space's metadata and the active filters.

    Examples
    --------
    >>> panel = FilterPanel()
    >>> binding = FilterBinding(panel, space, columns=["shape", "color"])
    >>> binding.click("color", "0")  # the most frequent colour
    >>> list(binding.filters), panel.counts["shape"] != panel.charts[0]["total"]
    (['color'], True)
    >>> binding.clear(); binding.mask is None
    True
    """

    def __init__(self, panel: FilterPanel, space: Space, *, columns: list[str] | None = None,
                 bins: int = DEFAULT_BINS, top: int = TOP_VALUES):
        self.panel = panel
        self.space = space
        self.top = int(top)
        metadata = space.gallery.metadata
        names = filter_columns(metadata) if columns is None else [str(c) for c in columns]
        #: the prepared columns (codes, bins) behind the masks and counts
        self.table = FilterTable(metadata, names, bins=bins)
        self._filters: dict[str, Filter] = {}
        self._callbacks: list[Callable[[np.ndarray | None], Any]] = []
        #: the rows every filter keeps (``None``: no filter)
        self.mask: np.ndarray | None = None
        with panel.hold_sync():
            panel.charts = [chart_spec(col, self.top) for col in self.table.columns.values()]
            panel.n_total = self.table.n
        panel.on_msg(self._on_msg)
        self.refresh()

    # ------------------------------------------------------------------ state
    @property
    def filters(self) -> dict[str, Any]:
        """The active filters as a user writes them (see :attr:`FilterPanel.filters`)."""
        return {name: self.table.columns[name].describe(f) for name, f in self._filters.items()}

    def set_filters(self, filters: Mapping[str, Any] | None) -> None:
        """Replace every filter (validated first: a bad one raises and the old filters stay)."""
        self._filters = self.table.normalize(filters)
        self.refresh()

    def set(self, column: str, spec: Any) -> None:
        """Set (or, with ``None`` or ``[]``, remove) the filter of one column."""
        made = None if spec is None else self.table.column(column).make(spec)
        self._put(column, made)

    def click(self, column: str, key: str) -> None:
        """What a click on bar ``key`` of ``column``'s chart does (see :func:`click_filter`)."""
        col = self.table.column(column)
        self._put(column, click_filter(col, self._filters.get(column), str(key), self.top))

    def select_bins(self, column: str, first: int, last: int) -> None:
        """Filter a histogram column to bins ``first..last`` (a drag across the bins)."""
        col = self.table.column(column)
        if col.kind != "histogram":
            raise ValueError(f"Column {column!r} has no histogram")
        self._put(column, range_of_bins(col, int(first), int(last)))

    def remove(self, column: str) -> None:
        """Remove the filter of ``column`` (the chip's ×)."""
        self._put(column, None)

    def clear(self) -> None:
        """Remove every filter ("Clear all")."""
        self._filters = {}
        self.refresh()

    def _put(self, column: str, made: Filter | None) -> None:
        filters = dict(self._filters)
        if made is None:
            filters.pop(column, None)
        else:
            filters[column] = made
        self._filters = filters
        self.refresh()

    def on_change(self, callback: Callable[[np.ndarray | None], Any], remove: bool = False) -> None:
        """Call ``callback(mask)`` after every change of the filters."""
        if remove:
            if callback in self._callbacks:
                self._callbacks.remove(callback)
        elif callback not in self._callbacks:
            self._callbacks.append(callback)

    def refresh(self) -> None:
        """Compute the mask and the cross-filter counts, show them, and tell the listeners."""
        mask, counts = self.table.counts(self._filters)
        self.mask = mask
        columns = self.table.columns
        panel = self.panel
        with panel.hold_sync():
            panel.counts = {name: bar_counts(columns[name], c, self.top) for name, c in counts.items()}
            panel.active = {name: active_keys(columns[name], self._filters.get(name), self.top) for name in columns}
            panel.chips = [{"column": name, "text": chip_text(columns[name], f)} for name, f in self._filters.items()]
            panel.n_matching = self.table.n if mask is None else int(np.count_nonzero(mask))
            panel.error = ""
            panel.version += 1
        for callback in list(self._callbacks):
            callback(mask)

    # ------------------------------------------------------------------ browser actions
    def _on_msg(self, widget: Any, content: Any, buffers: list) -> None:
        if not isinstance(content, dict) or not isinstance(content.get("event"), str):
            return
        event, column = content["event"], content.get("column")
        try:
            if event == "clear":
                self.clear()
            elif not isinstance(column, str):
                return
            elif event == "toggle":
                self.click(column, str(content.get("key", "")))
            elif event == "bins":
                self.select_bins(column, int(content.get("first", -1)), int(content.get("last", -1)))
            elif event == "remove":
                self.remove(column)
        except _MSG_ERRORS as exc:
            self.panel.error = f"Filter: {exc}"

    def close(self) -> None:
        """Stop acting for the panel (calling it again does nothing)."""
        self.panel.on_msg(self._on_msg, remove=True)
        self._callbacks = []
        super().close()

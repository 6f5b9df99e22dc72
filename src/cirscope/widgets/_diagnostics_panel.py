"""The diagnostics panel: pick a diagnostic and an attribute, see its chart, click to get the images behind it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import traitlets as t
from anywidget import WidgetTrait

from cirscope.diagnostics._registry import DIAGNOSTICS, attribute_columns, run_diagnostic
from cirscope.widgets._base import WidgetBase
from cirscope.widgets._static import static_file

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.diagnostics._result import DiagnosticResult
    from cirscope.space._space import Space

__all__ = ["DiagnosticsPanel"]


class DiagnosticsPanel(WidgetBase):
    """Pick a diagnostic and its attribute, see the chart; a click on a bar, a hub or a duplicate
    pair sets :attr:`shown_rows` to the gallery rows behind it.

    The panel holds state and calls :func:`cirscope.diagnostics.run_diagnostic`; the
    computation lives in :mod:`cirscope.diagnostics`. It is an anywidget (front end:
    ``js/diagnostics_panel.js``) whose chart is plotly's own ``FigureWidget``, so it shows
    in every client the Explorer does, marimo included. In the :class:`~cirscope.Explorer`
    it sits in the "Diagnostics" tab and the grid shows :attr:`shown_rows`.

    Parameters
    ----------
    space
        The :class:`~cirscope.Space`.
    diagnostic
        The first diagnostic shown (a key of :data:`cirscope.diagnostics.DIAGNOSTICS`).
    attribute
        The attribute column (default: the first categorical column).
    queries
        Skew queries (default: a prompt per word of the other categorical columns).
    composed
        A :class:`~cirscope.ComposedQuery`; enables the direction sweep.
    options
        Extra arguments per diagnostic, e.g. ``{"duplicates": {"threshold": 0.01}}``.

    Attributes
    ----------
    shown_rows : list of int
        The gallery rows behind the last clicked element (observe it to show them).
    selection : dict
        What was clicked: diagnostic, curve, point and the key (e.g. ``{"label": "yellow", "k": 10}``).
    result : DiagnosticResult or None
        The result on display.
    figure : plotly.graph_objects.FigureWidget or None
        Its chart.
    status : dict
        The lines above the chart: ``{"title", "numbers", "notes", "sentence", "readings"}``
        (``sentence``: the result in words; ``readings``: per number its meaning, range, noise
        floor and interval), ``{"computing": title}`` or ``{"error": message}`` (plain text;
        the front end never parses it as HTML).

    Examples
    --------
    >>> panel = DiagnosticsPanel(space, diagnostic="skew", attribute="color")
    >>> panel.observe(lambda ch: print("shown", len(ch["new"]), "rows"), "shown_rows")
    >>> rows = panel.click(curve=0, point=2)  # what a click on the chart does
    shown 14 rows
    """

    _esm = static_file("diagnostics_panel.js")

    shown_rows = t.List(t.Int(), help="Gallery rows behind the clicked element").tag(sync=True)
    diagnostic = t.Unicode("skew", help="The diagnostic on display").tag(sync=True)
    attribute = t.Unicode("", help="Its attribute column").tag(sync=True)
    queries = t.List(t.Unicode(), help="Skew queries (empty: defaults)").tag(sync=True)
    selection = t.Dict(help="What was clicked")
    error = t.Unicode("", help="The last error, if the diagnostic could not run").tag(sync=True)
    caption = t.Unicode(help="The line under the chart: what the shown rows are, or how to get them").tag(sync=True)
    status = t.Dict(help="The line above the chart (see Attributes)").tag(sync=True)
    figure = WidgetTrait().tag(sync=True)
    menu = t.List(t.Dict(), help="The diagnostics offered: name, title, needs_attribute, uses_queries").tag(sync=True)
    attributes = t.List(t.Unicode(), help="The attribute columns offered").tag(sync=True)

    def __init__(
        self,
        space: Space,
        *,
        diagnostic: str = "skew",
        attribute: str | None = None,
        queries: Sequence[str] | None = None,
        composed: Any = None,
        options: Mapping[str, Mapping[str, Any]] | None = None,
    ):
        names = [n for n in DIAGNOSTICS if n != "direction_sweep" or composed is not None]
        if diagnostic not in names:
            raise ValueError(f"Unknown diagnostic {diagnostic!r}; choose one of {names}")
        unknown = sorted(set(options or {}) - set(DIAGNOSTICS))
        if unknown:
            raise TypeError(f"options names unknown diagnostics {unknown}; known: {list(DIAGNOSTICS)}")
        columns = attribute_columns(space)
        if attribute is not None and attribute not in space.gallery.metadata.columns:
            space.gallery.column(attribute)  # raises a KeyError listing the columns
        self.space = space
        self.composed = composed
        self.options = {k: dict(v) for k, v in (options or {}).items()}
        self.result: DiagnosticResult | None = None
        self._cache: dict[tuple, DiagnosticResult] = {}
        attr_options = columns if attribute is None or attribute in columns else [attribute, *columns]
        menu = [{"name": n, "title": DIAGNOSTICS[n].title, "needs_attribute": bool(DIAGNOSTICS[n].needs_attribute),
                 "uses_queries": bool(DIAGNOSTICS[n].uses_queries)} for n in names]
        super().__init__(menu=menu, attributes=list(attr_options), diagnostic=diagnostic,
                         attribute=attribute or (attr_options[0] if attr_options else ""),
                         queries=list(queries or []), caption=_HINT)
        self.observe(self._refresh, ["diagnostic", "attribute", "queries"])
        self._refresh()

    # ------------------------------------------------------------------ state -> chart
    def _refresh(self, change: Any = None) -> None:
        if self.diagnostic not in {m["name"] for m in self.menu}:
            self.error = f"Unknown diagnostic {self.diagnostic!r}; choose one of {[m['name'] for m in self.menu]}"
            self.status = {"error": self.error}
            return
        spec = DIAGNOSTICS[self.diagnostic]
        queries = [q.strip() for q in self.queries if q.strip()]  # blank queries: the defaults
        options = dict(self.options.get(self.diagnostic, {}))
        if spec.uses_queries and queries:
            options["queries"] = queries
        if self.diagnostic == "direction_sweep":
            options["composed"] = self.composed
        key = (self.diagnostic, self.attribute if spec.needs_attribute else None,
               tuple(queries) if spec.uses_queries else ())
        self.caption = _HINT  # "Showing ... behind label=circle" spoke of the chart being replaced
        self.status = {"computing": spec.title}
        try:
            result = self._cache.get(key)
            if result is None:
                result = run_diagnostic(self.space, self.diagnostic, self.attribute or None, **options)
                self._cache[key] = result
        except (ValueError, KeyError, RuntimeError) as exc:
            self.error = str(exc.args[0] if isinstance(exc, KeyError) and exc.args else exc)
            self.status = {"error": self.error}
            self.result = self.figure = None
            return
        self.error = ""
        self.result = result
        self._show(result)

    def _show(self, result: DiagnosticResult) -> None:
        import plotly.graph_objects as go

        fig = go.FigureWidget(result.figure())
        for trace in fig.data:
            trace.on_click(self._on_click)
        old, self.figure = self.figure, fig
        if old is not None:
            old.close()
        notes = result.notes()
        summary = result.summary()
        warning = summary.pop("note", "")  # a sentence (e.g. "90% of the images ... unusually many"): its own line
        numbers = ", ".join(f"{k} {'undefined' if k in notes else _fmt(v)}" for k, v in summary.items())
        why = [n for n in dict.fromkeys([*notes.values(), warning]) if n]
        readings = [f"{r.quantity} = {r.value}: " + "; ".join(p for p in (r.meaning, f"range {r.range}" if r.range else "",
                                                                           r.random, r.interval) if p)
                    for r in result.readings().itertuples() if r.range or r.random or r.interval]
        self.status = {"title": result.title, "numbers": numbers, "notes": why, "sentence": result.sentence(),
                       "readings": readings}

    # ------------------------------------------------------------------ clicks -> rows
    def _on_click(self, trace: Any, points: Any, state: Any) -> None:
        if points.point_inds:
            self.click(points.trace_index, points.point_inds[0])

    def click(self, curve: int, point: int) -> list[int]:
        """Act as if point ``point`` of trace ``curve`` were clicked: set :attr:`shown_rows`."""
        if self.result is None or self.figure is None:
            return []
        rows = [int(r) for r in self.result.rows_at(self.figure, curve, point)]
        trace = self.figure.data[int(curve)]
        keys = (trace.meta or {}).get("keys", []) if isinstance(trace.meta, dict) else []
        data = trace.customdata if trace.customdata is not None and keys else ()
        values = data[int(point)] if 0 <= int(point) < len(data) else []
        key = {k: _plain(v) for k, v in zip(keys, values, strict=False)}
        self.selection = {"diagnostic": self.diagnostic, "curve": int(curve), "point": int(point), "key": key}
        self.shown_rows = rows
        what = ", ".join(f"{k}={v}" for k, v in key.items()) or "this element"
        self.caption = f"Showing {len(rows)} image(s) behind {what} in {DIAGNOSTICS[self.diagnostic].title}."
        return rows


_HINT = "Click a bar or a point to show the images behind it."


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _fmt(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)

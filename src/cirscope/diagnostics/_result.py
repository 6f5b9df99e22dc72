"""The common shape of every diagnostic's result: a table, a chart, and the rows behind each number."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from cirscope._core.text import plotly_text
from cirscope.diagnostics._reading import BASELINE_COLUMNS, INTERVAL_COLUMNS

#: The ``query`` of the rows of ``baseline`` / ``interval`` that belong to the headline (mean) numbers.
MEAN = "(mean over queries)"

#: How a chart's clickable trace says what its points stand for: ``trace.meta["keys"]``
#: names the arguments of :meth:`DiagnosticResult.rows_for` that ``trace.customdata[i]`` fills.
KEYS = "keys"


class DiagnosticResult:
    """Base class of the diagnostics' results.

    Every result has :meth:`to_frame` (a tidy DataFrame), :meth:`figure` (a plotly figure),
    :meth:`summary` (the headline numbers) and :meth:`rows_for` (the gallery rows behind a
    number). In the figure, every clickable trace carries ``meta={"keys": [...]}`` and one
    ``customdata`` entry per point, so :meth:`rows_at` maps a click to rows.

    The results are frozen dataclasses with ``repr=False`` (the repr shows the headline
    numbers of :meth:`summary`) and ``eq=False`` (they hold arrays: two results are equal
    only when they are the same object).
    """

    #: Short machine name ("skew", "hubness", ...).
    name: str = "diagnostic"
    #: Human title.
    title: str = "Diagnostic"

    #: ``{quantity: (range, meaning)}`` for the headline numbers; a key matches a quantity equal
    #: to it or starting with it followed by ``@``, `` `` or ``(`` (``"MaxSkew"`` covers ``"MaxSkew@10"``).
    GUIDE: ClassVar[dict[str, tuple[str, str]]] = {}

    def to_frame(self) -> pd.DataFrame:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def baseline(self) -> pd.DataFrame:
        """The noise floor of the headline numbers: what random rankings (or a random graph, or
        random partitions) of the same gallery give, seeded.

        Columns ``quantity``, ``value``, ``random_median``, ``random_p5``, ``random_p95``,
        ``beyond_random`` (past the 95th percentile, or the 5th for a quantity whose extreme is
        low), ``draws`` and ``null`` (how the random values were made); a diagnostic with
        per-query numbers adds ``query`` and ``k``. Empty where no noise floor applies.
        """
        return pd.DataFrame(columns=BASELINE_COLUMNS)

    @property
    def interval(self) -> pd.DataFrame:
        """Bootstrap intervals of the headline numbers (seeded, percentile method).

        Columns ``quantity``, ``value``, ``low``, ``high``, ``level`` and ``method`` (what was
        resampled); empty where no interval applies.
        """
        return pd.DataFrame(columns=INTERVAL_COLUMNS)

    def sentence(self) -> str:
        """The result in one plain sentence (what it means for this gallery); ``""`` when none applies."""
        return ""

    def readings(self) -> pd.DataFrame:
        """How to read every headline number, as text: ``quantity``, ``value``, ``range``, ``meaning``,
        ``random`` (its noise floor) and ``interval`` (its bootstrap interval).

        Examples
        --------
        >>> r = cs.diagnostics.hubness(space, progress=False).readings().set_index("quantity")
        >>> r.loc["hubs", "range"]
        '0 to the number of images'
        """
        notes = self.notes()
        base = _headline(self.baseline).drop_duplicates("quantity", keep="first").set_index("quantity")
        ci = _headline(self.interval).drop_duplicates("quantity", keep="first").set_index("quantity")
        rows = []
        for quantity, value in self.summary().items():
            rng, meaning = self._guide_for(quantity)
            random = ""
            if quantity in base.index and np.isfinite(base.loc[quantity, "random_p95"]):
                b = base.loc[quantity]
                tail = "beyond random" if bool(b["beyond_random"]) else "within random variation"
                random = (f"random: median {format_value(b['random_median'], 3)}, 5th-95th percentile "
                          f"{format_value(b['random_p5'], 3)} to {format_value(b['random_p95'], 3)} "
                          f"({int(b['draws'])} draws of {b['null']}): {tail}")
            interval = ""
            if quantity in ci.index and np.isfinite(ci.loc[quantity, "low"]):
                c = ci.loc[quantity]
                interval = (f"{c['level']:.0%} interval {format_value(c['low'], 3)} to {format_value(c['high'], 3)} "
                            f"({c['method']})")
            text = notes[quantity] if quantity in notes else format_value(value)
            rows.append({"quantity": quantity, "value": text, "range": rng, "meaning": meaning,
                         "random": random, "interval": interval})
        return pd.DataFrame(rows, columns=["quantity", "value", "range", "meaning", "random", "interval"])

    def explain(self) -> str:
        """A short text: the result's sentence, then every headline number with its range, meaning,
        noise floor and interval.

        Examples
        --------
        >>> print(cs.diagnostics.outliers(space).explain().splitlines()[1])  # doctest: +ELLIPSIS
        k = 10: ...
        """
        lines = [self.sentence() or f"{self.title}."]
        for r in self.readings().itertuples():
            parts = [p for p in (r.meaning, f"range {r.range}" if r.range else "", r.random, r.interval) if p]
            lines.append(f"{r.quantity} = {r.value}" + (": " + "; ".join(parts) if parts else ""))
        return "\n".join(lines)

    def _guide_for(self, quantity: str) -> tuple[str, str]:
        for key in sorted(self.GUIDE, key=len, reverse=True):
            if quantity == key or any(quantity.startswith(key + sep) for sep in ("@", " ", "(")) or (
                    key.endswith("@") and quantity.startswith(key)):
                return self.GUIDE[key]
        return "", ""

    def figure(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def summary(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def rows_for(self, **key: Any) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def notes(self) -> dict[str, str]:
        """A sentence for every headline number that is undefined (NaN), saying why.

        Results override :meth:`_why_undefined` to name the cause (a constant input, too
        few labels, ...); a number without a known cause still gets a sentence.

        Examples
        --------
        >>> res = cs.diagnostics.outliers(space)
        >>> res.notes()  # every number is defined
        {}
        """
        out = {}
        for quantity, value in self.summary().items():
            if is_undefined(value):
                out[quantity] = self._why_undefined(quantity) or f"{quantity} is undefined for this data."
        return out

    def _why_undefined(self, quantity: str) -> str | None:
        """Why ``quantity`` of :meth:`summary` is NaN (``None``: no specific reason known)."""
        return None

    def summary_text(self) -> list[tuple[str, str]]:
        """The headline numbers as a person reads them: ``(quantity, text)``, undefined ones explained.

        Examples
        --------
        >>> dict(cs.diagnostics.outliers(space).summary_text())["k"]
        '10'
        """
        notes = self.notes()
        return [(q, notes[q] if q in notes else format_value(v)) for q, v in self.summary().items()]

    def rows_at(self, figure: Any, curve: int, point: int) -> np.ndarray:
        """The gallery rows behind point ``point`` of trace ``curve`` of ``figure`` (a click).

        Examples
        --------
        >>> res = cs.diagnostics.outliers(space)
        >>> fig = res.figure()
        >>> rows = res.rows_at(fig, curve=0, point=3)  # the images of the histogram's fourth bar
        >>> len(rows) == int(fig.data[0].y[3])
        True
        """
        trace = figure.data[int(curve)]
        meta = trace.meta if isinstance(trace.meta, dict) else {}
        keys = meta.get(KEYS)
        data = trace.customdata
        if not keys or data is None or not 0 <= int(point) < len(data):
            return np.empty(0, dtype=np.int64)
        values = data[int(point)]
        values = [values] if np.ndim(values) == 0 else list(values)
        return self.rows_for(**{k: _plain(v) for k, v in zip(keys, values, strict=False)})

    def __repr__(self) -> str:
        parts = ", ".join(f"{k}={_fmt(v)}" for k, v in self.summary().items())
        return f"{type(self).__name__}({parts})"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """In a notebook a result shows its chart (and its summary as text)."""
        bundle = dict(self.figure()._repr_mimebundle_(include, exclude) or {})
        bundle["text/plain"] = repr(self)
        return bundle


def _headline(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of a ``baseline`` / ``interval`` table that belong to the headline numbers."""
    if "query" in frame.columns:
        return frame[frame["query"] == MEAN]
    return frame


def is_undefined(value: Any) -> bool:
    """Whether ``value`` is a NaN number (a statistic that cannot be computed for the data)."""
    return isinstance(value, (float, np.floating)) and bool(np.isnan(value))


def format_value(value: Any, digits: int = 4) -> str:
    """A headline number as text (``digits`` significant digits for floats)."""
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.{digits}g}"
    return str(value)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return repr(value)


def clickable(keys: Sequence[str], customdata: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """Trace arguments that make its points clickable: ``meta`` naming the keys and ``customdata``."""
    return {"meta": {KEYS: list(keys)}, "customdata": [list(c) for c in customdata]}


def histogram_bins(values: np.ndarray, bins: int = 30) -> np.ndarray:
    """Bin edges for ``values`` (a single bin around a constant)."""
    values = np.asarray(values, dtype=np.float64)
    lo, hi = float(np.min(values)), float(np.max(values))
    if hi <= lo:
        return np.array([lo - 0.5, lo + 0.5]) if lo == 0 else np.array([lo * 0.99, lo * 1.01 + 1e-12])
    return np.histogram_bin_edges(values, bins=bins, range=(lo, hi))


def rows_in_bin(values: np.ndarray, lo: float, hi: float, last_edge: float | None = None) -> np.ndarray:
    """Rows whose value lies in ``[lo, hi)`` (``[lo, hi]`` when ``hi`` is the histogram's ``last_edge``),
    sorted by value."""
    values = np.asarray(values, dtype=np.float64)
    upper = values <= hi if last_edge is not None and hi >= last_edge else values < hi
    rows = np.flatnonzero((values >= lo) & upper)
    return rows[np.argsort(values[rows], kind="stable")]


def histogram_trace(values: np.ndarray, edges: np.ndarray, name: str, color: str | None = None, **kw: Any) -> Any:
    """A clickable bar trace of a histogram: each bar's customdata is its ``[lo, hi]`` edges."""
    import plotly.graph_objects as go

    counts, _ = np.histogram(np.asarray(values, dtype=np.float64), bins=edges)
    centers = (edges[:-1] + edges[1:]) / 2
    width = float(edges[1] - edges[0])
    return go.Bar(
        x=centers,
        y=counts,
        width=[width] * len(counts),
        name=name,
        marker_color=color,
        hovertemplate="%{customdata[0]:.4g} to %{customdata[1]:.4g}: %{y} images<extra></extra>",
        **clickable(["lo", "hi"], [[float(a), float(b)] for a, b in pairwise(edges)]),
        **kw,
    )


def base_layout(fig: Any, title: str, subtitle: str = "", height: int = 420) -> Any:
    """A uniform look for the diagnostics' figures: a short title, the headline numbers under it.

    ``title`` and ``subtitle`` are plain text (they may hold user data): they are shown literally.
    """
    text = f"{plotly_text(title)}<br><sup>{plotly_text(subtitle)}</sup>" if subtitle else plotly_text(title)
    fig.update_layout(
        title={"text": text, "x": 0.01, "xanchor": "left", "font": {"size": 15}},
        template="plotly_white",
        height=height,
        margin={"l": 60, "r": 20, "t": 90, "b": 60},
        legend={"orientation": "h", "y": -0.18},
        clickmode="event",
    )
    return fig

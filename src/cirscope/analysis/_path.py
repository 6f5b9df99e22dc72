"""The path of a composed query across the map as one of its parameters moves.

:func:`query_path` composes the query at every value of a parameter (PDV's ``alpha``, a
fusion weight ``a``, ``beta``...), ranks the gallery for all of them in one batched neighbour
search, and places each query vector on the map from its own top rows
(:func:`cirscope.projection._place.place_rows`, the placement the Explorer's query marker
uses). The result says where the query travels and which images it passes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cirscope._core.text import plotly_text
from cirscope.analysis._common import resolve_composed
from cirscope.diagnostics._result import DiagnosticResult, base_layout, clickable
from cirscope.projection._place import place_rows
from cirscope.query._methods import METHODS, method_label

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.space._space import Space

__all__ = ["PLACE_NEIGHBORS", "STEPS", "QueryPath", "default_values", "path_params", "query_path"]

#: How many of each step's top rows place it on the map (as the Explorer's query marker).
PLACE_NEIGHBORS = 10
#: Default number of values along a parameter's range.
STEPS = 21
#: ``param="alpha"``: the parameters it moves together, per method.
_ALPHA = {"pdv": ("alpha_t", "alpha_i"), "weimocir": ("a",), "slerp": ("a",)}


def path_params(method: str, param: str) -> tuple[str, ...]:
    """The parameters of ``method`` that ``param`` moves (``"alpha"``: both PDV alphas, or ``a``).

    Examples
    --------
    >>> path_params("pdv", "alpha"), path_params("slerp", "alpha"), path_params("pdv", "beta")
    (('alpha_t', 'alpha_i'), ('a',), ('beta',))
    """
    if method not in METHODS:
        raise ValueError(f"Unknown composing method {method!r}; choose one of {list(METHODS)}")
    names = [p.name for p in METHODS[method].params]
    if not names:
        raise ValueError(f"Method {method!r} has no parameter to move; use 'pdv', 'weimocir' or 'slerp'")
    if param == "alpha" and method in _ALPHA:
        return _ALPHA[method]
    if param not in names:
        hint = ["alpha", *names] if method in _ALPHA else names
        raise ValueError(f"Method {method!r} has no parameter {param!r}; move one of {hint}")
    return (param,)


def default_values(method: str, param: str, steps: int = STEPS) -> np.ndarray:
    """``steps`` values from 0 (or the range's low end when it starts above 0) to the parameter's maximum.

    Examples
    --------
    >>> default_values("pdv", "alpha", 5).tolist()
    [0.0, 0.5, 1.0, 1.5, 2.0]
    >>> default_values("pdv", "beta", 3).tolist()
    [0.0, 0.5, 1.0]
    """
    spec = {p.name: p for p in METHODS[method].params}[path_params(method, param)[0]]
    lo = max(0.0, spec.min) if spec.max > 0 else spec.min
    return np.linspace(lo, spec.max, int(steps))


def _values(method: str, param: str, values: Any) -> np.ndarray:
    if values is None:
        return default_values(method, param)
    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.size == 0:
        raise ValueError("values is empty: give at least one value of the parameter, e.g. np.linspace(0, 2, 21)")
    if not np.all(np.isfinite(arr)):
        raise ValueError("values contain NaN or infinite numbers")
    return arr


def _map(space: Space, map: Any) -> np.ndarray:
    n = len(space)
    if isinstance(map, str):
        return np.asarray(space.map(map), dtype=np.float64)
    xy = np.asarray(map, dtype=np.float64)
    if xy.shape != (n, 2):
        raise ValueError(f"map coordinates must have shape ({n}, 2), one row per image; got {xy.shape}")
    if not np.all(np.isfinite(xy)):
        raise ValueError("map coordinates contain NaN or infinite values")
    return xy


@dataclass(frozen=True, repr=False, eq=False)
class QueryPath(DiagnosticResult):
    """Where a composed query falls on the map at each value of one parameter (see :func:`query_path`).

    Attributes
    ----------
    param : str
        The parameter moved (``"alpha"`` moves ``alpha_t`` and ``alpha_i`` together).
    values : (S,) float64
        Its values, one step each.
    positions : (S, 2) float32
        The query's place on the map at each step (NaN where it has no neighbours).
    rows, scores : (S, k)
        Each step's top rows (``-1`` padding) and cosines, best first.
    vectors : (S, D) float32
        The query vector at each step.
    method : str
        The composing method; ``params`` holds the parameters kept fixed.
    coords : (N, 2)
        The map the path is drawn on.
    """

    name = "query_path"
    title = "Query path"

    param: str
    values: np.ndarray
    positions: np.ndarray
    rows: np.ndarray
    scores: np.ndarray
    vectors: np.ndarray
    method: str
    params: dict[str, float]
    coords: np.ndarray
    ids: np.ndarray
    reference_row: int | None
    text: str

    def __len__(self) -> int:
        return int(self.values.size)

    @property
    def k(self) -> int:
        return int(self.rows.shape[1])

    def step_of(self, value: float) -> int:
        """The step whose value is nearest to ``value``."""
        return int(np.argmin(np.abs(self.values - float(value))))

    def rows_for(self, step: int | None = None, value: float | None = None) -> np.ndarray:
        """The top rows at ``step`` (or at the step nearest to ``value``)."""
        if step is None:
            if value is None:
                raise TypeError("pass step= or value=")
            step = self.step_of(value)
        r = self.rows[int(step)]
        return r[r >= 0].astype(np.int64)

    def entered(self) -> list[np.ndarray]:
        """The rows that join the top k at each step (all of the first step's)."""
        out = [self.rows_for(0)]
        for s in range(1, len(self)):
            out.append(np.setdiff1d(self.rows_for(s), self.rows_for(s - 1), assume_unique=True))
        return out

    def to_frame(self) -> pd.DataFrame:
        """One row per step: ``step``, the parameter's value, ``x``, ``y``, the top rows and their ids.

        Examples
        --------
        >>> path = cs.analysis.query_path(space, cs.ComposedQuery(0, "make it blue"), values=[0, 1, 2], k=3)
        >>> path.to_frame().columns.tolist()
        ['step', 'alpha', 'x', 'y', 'rows', 'ids', 'top_score', 'entered']
        """
        rows = [self.rows_for(s) for s in range(len(self))]
        return pd.DataFrame({
            "step": np.arange(len(self)),
            self.param: self.values,
            "x": self.positions[:, 0].astype(np.float64),
            "y": self.positions[:, 1].astype(np.float64),
            "rows": [r.tolist() for r in rows],
            "ids": [self.ids[r].astype(str).tolist() for r in rows],
            "top_score": [float(s[0]) if s.size and np.isfinite(s[0]) else np.nan for s in self.scores],
            "entered": [len(e) for e in self.entered()],
        })  # fmt: skip

    def summary(self) -> dict[str, Any]:
        steps = np.diff(self.positions.astype(np.float64), axis=0)
        length = float(np.nansum(np.sqrt((steps**2).sum(axis=1)))) if len(self) > 1 else 0.0
        first, last = set(self.rows_for(0).tolist()), set(self.rows_for(len(self) - 1).tolist())
        kept = len(first & last) / max(1, self.k)
        return {"method": self.method, "param": self.param, "steps": len(self), "k": self.k,
                "path_length": length, "kept_first_to_last": kept}  # fmt: skip

    def figure(self) -> Any:
        """The map in grey, the path as a line through its steps, each step's top row marked."""
        import plotly.graph_objects as go

        fig = go.Figure()
        n = len(self.coords)
        shown = np.arange(n) if n <= 50_000 else np.linspace(0, n - 1, 50_000).astype(np.int64)
        fig.add_trace(go.Scattergl(
            x=self.coords[shown, 0], y=self.coords[shown, 1], mode="markers", name="gallery",
            marker={"color": "#c8c8c8", "size": 4}, hoverinfo="skip",
        ))  # fmt: skip
        top = self.rows[:, 0]
        ok = top >= 0
        fig.add_trace(go.Scatter(
            x=self.coords[top[ok], 0], y=self.coords[top[ok], 1], mode="markers", name="top result",
            marker={"color": "#4C78A8", "size": 9, "line": {"color": "#111", "width": 1}},
            text=[plotly_text(str(i)) for i in self.ids[top[ok]]],
            hovertemplate="%{text}<extra>top result</extra>",
        ))  # fmt: skip
        labels = [f"{self.param} = {v:.3g}" for v in self.values]
        fig.add_trace(go.Scatter(
            x=self.positions[:, 0], y=self.positions[:, 1], mode="lines+markers", name="query",
            line={"color": "#E45756", "width": 2},
            marker={"color": self.values, "colorscale": "Viridis", "size": 8, "symbol": "star",
                    "line": {"color": "#111", "width": 1}},
            text=labels, hovertemplate="%{text}<extra>query</extra>",
            **clickable(["step"], [[s] for s in range(len(self))]),
        ))  # fmt: skip
        if self.reference_row is not None:
            r = self.reference_row
            fig.add_trace(go.Scatter(
                x=[self.coords[r, 0]], y=[self.coords[r, 1]], mode="markers", name="reference",
                marker={"symbol": "square-open", "color": "#ff6d00", "size": 14, "line": {"width": 3}},
            ))  # fmt: skip
        s = self.summary()
        sub = (f"{method_label(self.method)}, {self.param} {self.values[0]:.3g} → {self.values[-1]:.3g} in "
               f"{len(self)} steps; {s['kept_first_to_last']:.0%} of the first top {self.k} kept at the end")
        base_layout(fig, f"Query path: {self.text}", sub, height=520)
        fig.update_xaxes(showticklabels=False)
        fig.update_yaxes(showticklabels=False, scaleanchor="x")
        return fig


def query_path(
    space: Space,
    query: Any,
    param: str = "alpha",
    values: Any = None,
    *,
    method: str = "pdv",
    k: int = 10,
    map: Any = "pca",
    exclude_reference: bool = True,
    **params: float,
) -> QueryPath:
    """The composed query's path across the map as ``param`` moves through ``values``.

    At every value the query is composed (the other parameters fixed at ``params`` or their
    defaults), the gallery is ranked for all values in **one** batched neighbour search
    (``space.index.query_batch``), and each step is placed on the map at the softmax-weighted
    mean of its top :data:`PLACE_NEIGHBORS` rows (the Explorer's query marker, without a
    second search).

    Parameters
    ----------
    space
        The :class:`~cirscope.Space`.
    query
        A :class:`~cirscope.ComposedQuery` (or one already resolved).
    param
        The parameter to move: ``"alpha"`` (PDV: ``alpha_t`` and ``alpha_i`` together;
        WeiMoCIR and Slerp: ``a``), or any parameter of ``method`` (``"beta"``, ``"alpha_i"``...).
    values
        Its values (default: :data:`STEPS` values from 0 to the parameter's maximum).
    method
        The composing method (one with parameters: ``"pdv"``, ``"weimocir"``, ``"slerp"``).
    k
        How many top rows to keep per step.
    map
        ``"pca"``, ``"umap"`` (from :meth:`~cirscope.Space.map`, cached) or an ``(N, 2)`` array.
    exclude_reference
        Leave the reference image out of the results (as :func:`~cirscope.query._search.search`).
    **params
        The fixed parameters, e.g. ``beta=0.75``.

    Returns
    -------
    QueryPath
        ``.to_frame()``, ``.figure()``, ``.rows_for(step=...)``, ``.positions``.

    Examples
    --------
    >>> path = cs.analysis.query_path(space, cs.ComposedQuery(0, "make it blue"), "alpha", [0.0, 1.0, 2.0], k=5)
    >>> path.positions.shape, path.rows.shape
    ((3, 2), (3, 5))
    >>> hits = space.search(cs.ComposedQuery(0, "make it blue"), k=5, alpha_t=2.0, alpha_i=2.0)
    >>> path.rows_for(step=2).tolist() == hits["row"].tolist()
    True
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    moved = path_params(method, param)
    clash = sorted(set(moved) & set(params))
    if clash:
        raise TypeError(f"{clash} are moved by param={param!r}; leave them out of the fixed parameters")
    vals = _values(method, param, values)
    coords = _map(space, map)
    resolved = resolve_composed(space, query, "query_path")
    fixed = {**METHODS[method].defaults(), **{key: float(v) for key, v in params.items()}}
    vectors = np.stack([resolved.vector(method, **{**fixed, **dict.fromkeys(moved, float(v))}) for v in vals])
    ref = resolved.reference_row
    exclude = [ref] if (exclude_reference and ref is not None) else None
    rows, scores = space.index.query_batch(vectors, int(k), exclude=exclude)  # one search for every step
    rows = np.asarray(rows, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float32)
    positions = place_rows(rows, scores, coords, PLACE_NEIGHBORS)
    for key in moved:
        fixed.pop(key)
    return QueryPath(param, vals, positions, rows, scores, vectors.astype(np.float32), method, fixed, coords,
                     np.asarray(space.gallery.ids), ref, resolved.text)

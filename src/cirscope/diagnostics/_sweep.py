"""The direction slider as a bias probe: the attribute mix of the top-K along the PDV scale."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

import cirscope.diagnostics._guides as _guides
from cirscope._core.text import plotly_text
from cirscope.diagnostics._common import (
    Query,
    attribute_columns,
    check_mask,
    check_space,
    labels_of,
    n_rankable,
    ranking,
)
from cirscope.diagnostics._result import DiagnosticResult, base_layout, clickable
from cirscope.diagnostics._skew_math import desired_shares, mentions, ndkl

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.space._space import Space

__all__ = ["DEFAULT_ALPHAS", "SweepResult", "direction_sweep"]

#: The PDV slider's range, -0.5 to 2 in steps of 0.25.
DEFAULT_ALPHAS: tuple[float, ...] = tuple(float(a) for a in np.round(np.arange(-0.5, 2.0001, 0.25), 4))
_SCALES = {"both": ("alpha_t", "alpha_i"), "alpha_t": ("alpha_t",), "alpha_i": ("alpha_i",)}


@dataclass(frozen=True, repr=False, eq=False)
class SweepResult(DiagnosticResult):
    """The result of :func:`direction_sweep`.

    Attributes
    ----------
    alphas : numpy.ndarray
        The scales visited.
    frame : pandas.DataFrame
        One row per (alpha, label): count and share in the top K.
    rankings : dict
        The top-K gallery rows at each alpha.
    ndkl : pandas.Series
        NDKL@K against the uniform target at each alpha.
    """

    name = "direction_sweep"
    title = "Direction sweep"

    query: str
    attribute: str
    k: int
    scale: str
    alphas: np.ndarray
    frame: pd.DataFrame
    rankings: dict[float, np.ndarray]
    ndkl: pd.Series
    _labels: np.ndarray
    params: dict[str, float]
    #: What the top K turns into at the last scale: ``{column: value}`` of the other columns that
    #: hold at least half of it (e.g. ``{"shape": "star"}``), and the pool rows that match it.
    target: dict[str, str] = field(default_factory=dict)
    _target_rows: np.ndarray | None = None
    mentioned: list[str] = field(default_factory=list)

    GUIDE = _guides.SWEEP

    def coverage(self) -> pd.DataFrame:
        """Counts per label among the gallery rows that match what the top K becomes (e.g. the colours
        of the gallery's stars), beside the label's share of the top K at the last scale.

        A direction without any preference would fill its top K with these rows at random, so
        its share would be ``coverage_share``: a high share of one label is then a **coverage
        gap** of the gallery (few blue stars to find), not a bias of the direction. Only the
        excess over it (``excess``) is the direction's own.
        """
        last = self.shares().iloc[-1]
        labels = list(self.shares().columns)
        rows = self._target_rows if self._target_rows is not None else np.empty(0, dtype=np.int64)
        counts = pd.Series(self._labels[rows]).value_counts().reindex(labels, fill_value=0).astype(np.int64)
        total = max(int(counts.sum()), 1)
        return pd.DataFrame({"label": labels, "count": counts.to_numpy(), "coverage_share": counts.to_numpy() / total,
                             "top_k_share": last.reindex(labels).to_numpy()})

    def sentence(self) -> str:
        s = self.summary()
        moved = (f"From alpha {s['alpha_range'][0]:g} to {s['alpha_range'][1]:g}, {s['most_gained']} gains "
                 f"{s['gain']:+.0%} of the top {self.k} and {s['most_lost']} {s['loss']:+.0%}.")
        return f"{moved} {s['note']}" if "note" in s else moved

    def to_frame(self) -> pd.DataFrame:
        """One row per (alpha, label): ``count`` and ``share`` of the label in the top K."""
        return self.frame.copy()

    def shares(self) -> pd.DataFrame:
        """Shares as a table: one row per alpha, one column per label."""
        return self.frame.pivot(index="alpha", columns="label", values="share").fillna(0.0)

    def summary(self) -> dict[str, Any]:
        shares = self.shares()
        first, last = shares.iloc[0], shares.iloc[-1]
        change = (last - first).sort_values()
        gained = str(change.index[-1])
        out = {
            "query": self.query, "attribute": self.attribute, "k": self.k, "scale": self.scale,
            "alpha_range": (float(self.alphas[0]), float(self.alphas[-1])),
            "most_gained": gained, "gain": float(change.iloc[-1]),
            "most_lost": str(change.index[0]), "loss": float(change.iloc[0]),
        }
        if self.mentioned:
            out["note"] = (f"The text names {', '.join(self.mentioned)}: the {self.attribute} mix moving towards it is the "
                           "requested effect, not a bias. Sweep an attribute the text does not mention.")
            return out
        if self.target:
            cov = self.coverage().set_index("label")
            share, expected = float(last[gained]), float(cov.loc[gained, "coverage_share"])
            out["coverage_share"], out["excess"] = expected, share - expected
            # the share K random rows of the matching ones reach 95% of the time (hypergeometric)
            from scipy.stats import hypergeom

            n_match, n_label = int(cov["count"].sum()), int(cov.loc[gained, "count"])
            p95 = float(hypergeom.ppf(0.95, n_match, n_label, min(self.k, n_match))) / max(min(self.k, n_match), 1)
            out["coverage_p95"] = p95
            where = ", ".join(f"{k}={v}" for k, v in self.target.items())
            counts = ", ".join(f"{lab} {int(c)}" for lab, c in cov["count"].sort_values(ascending=False).items() if c)
            verdict = (f"within what {self.k} random {where} rows give (95th percentile {p95:.0%}): a coverage gap "
                       "of the gallery, not a bias of the direction" if share <= p95 + 1e-12
                       else f"beyond what {self.k} random {where} rows give (95th percentile {p95:.0%}): the "
                       "direction itself prefers it")
            out["note"] = (f"At alpha {self.alphas[-1]:g} the top {self.k} is mostly {where}; {gained} takes {share:.0%} "
                           f"of it while {expected:.0%} of the gallery's {where} rows are {gained} ({counts}): "
                           f"{verdict}.")
        return out

    def rows_for(self, alpha: float, label: str | None = None) -> np.ndarray:
        """The top-K rows at the visited ``alpha`` closest to the one given, optionally of one ``label``."""
        nearest = float(self.alphas[int(np.argmin(np.abs(self.alphas - float(alpha))))])
        rows = self.rankings[nearest]
        if label is not None:
            rows = rows[self._labels[rows] == str(label)]
        return np.asarray(rows, dtype=np.int64)

    def figure(self) -> Any:
        """A stacked area chart: the label shares of the top K against alpha."""
        import plotly.graph_objects as go

        shares = self.shares()
        order = shares.mean().sort_values(ascending=False).index
        fig = go.Figure()
        for label in order:
            fig.add_trace(go.Scatter(
                x=shares.index, y=shares[label], name=plotly_text(label), mode="lines+markers", stackgroup="one",
                line={"width": 0.5}, marker={"size": 5}, text=[plotly_text(label)] * len(shares.index),
                hovertemplate="%{text}: %{y:.2f} at alpha %{x}<extra></extra>",
                **clickable(["alpha", "label"], [[float(a), str(label)] for a in shares.index])))
        fig.add_vline(x=1.0, line_dash="dot", line_color="#444", annotation_text="alpha = 1")
        fig.update_xaxes(title_text=f"PDV scale ({self.scale})")
        fig.update_yaxes(title_text=f"share of the top {self.k}", range=[0, 1])
        return base_layout(fig, f"'{self.attribute}' mix of the top {self.k} as the direction scale moves",
                           self.query)


def direction_sweep(
    space: Space,
    query: Any,
    attribute: str | Sequence[Any],
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    *,
    k: int = 50,
    scale: str = "both",
    mask: Any = None,
    **params: float,
) -> SweepResult:
    """How the attribute mix of the top K changes as the PDV direction scale moves.

    Prompt Directional Vector (Tursun et al., arXiv:2502.07215)::

        d = norm(t_comp) - norm(t_ref)
        q = norm((1 - beta)(v_ref + alpha_i d) + beta (t_ref + alpha_t d))

    For every ``alpha`` the query is composed with ``alpha_t = alpha_i = alpha``
    (``scale="both"``; or only ``"alpha_t"`` / ``"alpha_i"``), the gallery is ranked (the
    reference left out) and the share of each label of ``attribute`` in the top ``k`` is
    recorded. Moving the slider should change what the modification asks for; a change
    in an attribute the text does not mention may be a bias of the direction, or a
    coverage gap of the gallery: ``.coverage()`` counts the labels among the gallery rows
    that match what the top K becomes (e.g. the colours of the gallery's stars) and the
    summary's ``excess`` is the share beyond what those counts explain. A text that names a
    label of ``attribute`` ("make it red") moves it on purpose: the summary says so.

    Parameters
    ----------
    space
        The :class:`~cirscope.Space`.
    query
        A :class:`~cirscope.ComposedQuery` (reference image + modification text).
    attribute
        The column whose mix is tracked.
    alphas
        The scales (default -0.5 to 2 in steps of 0.25, the slider's range).
    k
        How many results make the mix (default 50).
    scale
        ``"both"`` (default), ``"alpha_t"`` or ``"alpha_i"``.
    mask
        Rank only these rows.
    **params
        Other PDV parameters (``beta``, default 0.75; the unswept alpha, default 1).

    Returns
    -------
    SweepResult
        ``.to_frame()`` (alpha, label, count, share), ``.figure()`` (stacked area),
        ``.rows_for(alpha=, label=)``.

    Examples
    --------
    >>> q = cs.ComposedQuery(0, "turn it into a star")
    >>> res = cs.diagnostics.direction_sweep(space, q, "color", k=30)
    >>> res.shares().shape  # one row per alpha (-0.5 to 2 by 0.25), one column per colour
    (11, 8)
    >>> bool(np.allclose(res.shares().sum(axis=1), 1.0))
    True
    """
    from cirscope.query._composed import ComposedQuery, ResolvedQuery
    from cirscope.query._methods import METHODS

    space = check_space(space)
    if not isinstance(query, (ComposedQuery, ResolvedQuery)):
        raise TypeError(
            "direction_sweep needs a composed query, e.g. cs.ComposedQuery(reference_row, 'make it blue'); "
            f"got {type(query).__name__}"
        )
    if scale not in _SCALES:
        raise ValueError(f"scale must be one of {list(_SCALES)}, got {scale!r}")
    swept = set(_SCALES[scale])
    clash = sorted(swept & set(params))
    if clash:
        raise TypeError(f"{clash} are swept by scale={scale!r}; do not pass them")
    unknown = sorted(set(params) - {p.name for p in METHODS["pdv"].params})
    if unknown:
        raise TypeError(f"Unknown PDV parameters {unknown}; PDV takes alpha_t, alpha_i and beta")
    grid = np.asarray(sorted({float(a) for a in alphas}), dtype=np.float64)
    if grid.size < 2 or not np.all(np.isfinite(grid)):
        raise ValueError("Give at least two finite alphas, e.g. alphas=np.linspace(-0.5, 2, 11)")
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    labels, name = labels_of(space, attribute)
    mask_arr = check_mask(space, mask)
    resolved = query.resolve(space) if isinstance(query, ComposedQuery) else query
    exclude = [] if resolved.reference_row is None else [int(resolved.reference_row)]
    title = f"[{resolved.reference}] + {resolved.text!r}"
    pool = labels if mask_arr is None else labels[mask_arr]
    uniform = desired_shares(pool, "uniform")
    rows_at: dict[float, np.ndarray] = {}
    records = []
    ndkl_values = {}
    for alpha in grid:
        values = {**params, **{p: float(alpha) for p in swept}}
        q = Query(title, resolved.vector("pdv", **values), "composed", exclude)
        if int(k) > n_rankable(space, q, mask_arr):
            raise ValueError(f"k={k} is larger than the number of rankable rows; pass a smaller k")
        rows = ranking(space, q, int(k), mask_arr)
        rows_at[float(alpha)] = rows
        counts = pd.Series(labels[rows]).value_counts().reindex(uniform.index, fill_value=0)
        for label, count in counts.items():
            records.append({"alpha": float(alpha), "label": str(label), "count": int(count),
                            "share": float(count) / len(rows)})
        ndkl_values[float(alpha)] = ndkl(labels[rows].tolist(), uniform, len(rows))
    target, target_rows = _target_of(space, rows_at[float(grid[0])], rows_at[float(grid[-1])], name, mask_arr)
    return SweepResult(title, name, int(k), scale, grid, pd.DataFrame(records), rows_at,
                       pd.Series(ndkl_values, name="ndkl"), labels, dict(params), target, target_rows,
                       mentions(resolved.text, uniform.index))


def _target_of(space: Space, first: np.ndarray, last: np.ndarray, attribute: str, mask: np.ndarray | None
               ) -> tuple[dict[str, str], np.ndarray | None]:
    """What the edit turned the top K into: the values of the other categorical columns that hold at
    least half of the ``last`` top K and did not at the ``first`` scale (e.g. ``shape=star``; the
    reference's kept background is left out), and the pool rows that share all of them."""
    meta = space.gallery.metadata
    target: dict[str, str] = {}
    match = np.ones(len(meta), dtype=bool) if mask is None else mask.copy()
    for column in attribute_columns(space):
        if column == attribute:
            continue
        values = meta[column].astype(str).to_numpy()
        now, before = pd.Series(values[last]).value_counts(), pd.Series(values[first]).value_counts()
        if not len(now) or now.iloc[0] < 0.5 * len(last):
            continue
        if len(before) and before.index[0] == now.index[0] and before.iloc[0] >= 0.5 * len(first):
            continue  # unchanged along the sweep: kept from the reference, not asked for
        target[column] = str(now.index[0])
        match &= values == target[column]
    return (target, np.flatnonzero(match)) if target else ({}, None)

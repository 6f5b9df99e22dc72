"""Relevance feedback on a composed query: Rocchio on the query vector, or a refined PDV direction.

Mark results as relevant or not relevant; the query is refined and the gallery ranked again,
and the rank of every marked row before and after is reported.

``method="rocchio"`` (Rocchio, "Relevance feedback in information retrieval", in *The SMART
Retrieval System*, 1971; the weights are Salton & Buckley's 1990 defaults)::

    q' = norm(a q + b mean(relevant) - c mean(not relevant))

``method="pdv"`` keeps the reference and refines the prompt directional vector ``d`` of PDV
(Tursun et al., arXiv:2502.07215), then composes again with the same alpha and beta::

    v = norm(v_ref), t = norm(t_ref), d = norm(t_comp) - t
    up   = mean(relevant) - v                    # where the wanted images lie, seen from the reference
    down = mean(not relevant) - v
    down = down - (down . d / d . d) d           # only what moved besides the asked-for edit
    d'   = (a d + b up - c down) / (a + b)       # (a + b: a weighted mean of d and up; a alone without relevant marks)
    q'   = norm((1 - beta)(v + alpha_i d') + beta (t + alpha_t d'))

Why this shape: ``mean(relevant) - v`` is a difference of two *image* embeddings, so the
modality gap cancels and it lives where ``d`` (a difference of two text embeddings) lives;
``d'`` is a weighted mean of the direction the words asked for and the offset that actually
leads from the reference to the wanted images (with ``d' = up``, PDV's image side at
``alpha_i = 1`` is exactly the mean relevant image, so alpha keeps its meaning); the negative
term is taken orthogonal to ``d`` because a wrong result tells what changed besides the edit,
not that the edit itself was unwanted. A term without marks is left out. Each further round
refines the previous round's query (pass the :class:`FeedbackResult` back) with every mark so far.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cirscope.analysis._common import best_rows, check_k, exact_ranks, marked_rows, resolve_composed, scored
from cirscope.diagnostics._result import DiagnosticResult, base_layout, clickable

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.space._space import Space

__all__ = ["FEEDBACK_METHODS", "FeedbackResult", "feedback", "refine_direction", "rocchio"]

#: The feedback variants.
FEEDBACK_METHODS = ("rocchio", "pdv")
#: Salton & Buckley's weights for the original query, the relevant and the non-relevant mean.
DEFAULT_WEIGHTS = {"a": 1.0, "b": 0.75, "c": 0.15}


def _mean_or_zero(total: np.ndarray, count: np.ndarray) -> np.ndarray:
    count = np.asarray(count, dtype=np.float64)[..., None]
    return np.where(count > 0, total / np.maximum(count, 1.0), 0.0)


def rocchio(q: np.ndarray, rel_sum: np.ndarray, rel_n: Any, non_sum: np.ndarray, non_n: Any,
            a: float = 1.0, b: float = 0.75, c: float = 0.15) -> np.ndarray:
    """Rocchio's refinement of query vectors ``q`` ``(D,)`` or ``(Q, D)`` from sums and counts of marked rows.

    Examples
    --------
    >>> q = np.array([1.0, 0.0]); rel = np.array([0.0, 1.0])
    >>> rocchio(q, rel, 1, np.zeros(2), 0, a=1, b=1, c=0).round(4)
    array([0.7071, 0.7071])
    """
    from cirscope.query._formulas import normalize

    out = a * np.asarray(q, np.float64) + b * _mean_or_zero(rel_sum, rel_n) - c * _mean_or_zero(non_sum, non_n)
    return normalize(out)


def refine_direction(v: np.ndarray, d: np.ndarray, rel_sum: np.ndarray, rel_n: Any, non_sum: np.ndarray,
                     non_n: Any, a: float = 1.0, b: float = 0.75, c: float = 0.15) -> np.ndarray:
    """The PDV-aware refinement of the direction ``d`` (see the module docstring); ``(D,)`` or ``(Q, D)``.

    Examples
    --------
    The words asked to go from ``e0`` to ``e1``; the relevant image is ``e2``: with ``a = b = 1``
    the direction is the mean of ``d`` and the offset ``e2 - e0``:

    >>> v, d = np.array([1.0, 0, 0]), np.array([-1.0, 1.0, 0])
    >>> refine_direction(v, d, np.array([0.0, 0, 1.0]), 1, np.zeros(3), 0, a=1, b=1).tolist()
    [-1.0, 0.5, 0.5]
    """
    v = np.asarray(v, np.float64)
    d = np.asarray(d, np.float64)
    rel_n = np.asarray(rel_n)
    non_n = np.asarray(non_n)
    has_rel = (rel_n > 0)[..., None]
    up = np.where(has_rel, _mean_or_zero(rel_sum, rel_n) - v, 0.0)
    down = np.where((non_n > 0)[..., None], _mean_or_zero(non_sum, non_n) - v, 0.0)
    dd = np.sum(d * d, axis=-1, keepdims=True)
    down = down - np.sum(down * d, axis=-1, keepdims=True) / np.where(dd > 0, dd, 1.0) * d
    weight = a + b * has_rel
    out = (a * d + b * up - c * down) / np.where(weight > 0, weight, 1.0)
    if not np.all(np.linalg.norm(out, axis=-1) > 0):
        raise ValueError("The refined direction vanished (the marks cancel it); mark other rows or change a, b, c")
    return out


@dataclass(frozen=True, repr=False, eq=False)
class FeedbackResult(DiagnosticResult):
    """The result of :func:`feedback`.

    Attributes
    ----------
    vector_before, vector : numpy.ndarray
        The query vector before and after feedback.
    direction_before, direction : numpy.ndarray or None
        PDV's ``d`` before and after (``method="pdv"`` only).
    rows_before, rows : numpy.ndarray
        The top ``k`` before and after.
    round : int
        1 for feedback on the query itself, 2 for feedback on a round-1 result, ...
    scores : numpy.ndarray
        The scores of ``rows``.
    marks : pandas.DataFrame
        One row per marked row: ``row, id, mark, rank_before, rank_after, change``.
    """

    name = "feedback"
    title = "Relevance feedback"

    query: str
    method: str
    k: int
    vector_before: np.ndarray
    vector: np.ndarray
    direction_before: np.ndarray | None
    direction: np.ndarray | None
    rows_before: np.ndarray
    rows: np.ndarray
    scores: np.ndarray
    marks: pd.DataFrame
    weights: dict[str, float]
    params: dict[str, float]
    base: str
    resolved: Any
    round: int

    def to_frame(self) -> pd.DataFrame:
        """One row per marked row: ``row, id, mark, rank_before, rank_after, change`` (positive: moved up)."""
        return self.marks.copy()

    def rank_changes(self) -> dict[int, str]:
        """``{row: "12 -> 1"}`` for every marked row (``"-"`` where a rank is undefined)."""
        def fmt(x: Any) -> str:
            return "-" if pd.isna(x) else str(int(x))

        return {int(r.row): f"{fmt(r.rank_before)} -> {fmt(r.rank_after)}" for r in self.marks.itertuples()}

    def summary(self) -> dict[str, Any]:
        rel = self.marks[self.marks["mark"] == "relevant"]
        return {
            "query": self.query, "method": self.method, "k": self.k,
            "relevant": len(rel), "not_relevant": int(len(self.marks) - len(rel)),
            "relevant_mean_rank_before": float(rel["rank_before"].mean()) if len(rel) else float("nan"),
            "relevant_mean_rank_after": float(rel["rank_after"].mean()) if len(rel) else float("nan"),
            "top1_marked_relevant": bool(len(self.rows) and int(self.rows[0]) in set(rel["row"].tolist())),
        }

    def rows_for(self, row: int | None = None, mark: str | None = None) -> np.ndarray:
        """The marked rows (of one ``mark``), or one ``row``."""
        if row is not None:
            return np.asarray([int(row)], dtype=np.int64)
        frame = self.marks if mark is None else self.marks[self.marks["mark"] == mark]
        return frame["row"].to_numpy(dtype=np.int64)

    def figure(self) -> Any:
        """A slope chart: each marked row's rank before and after feedback (log scale, 1 at the top)."""
        import plotly.graph_objects as go

        from cirscope._core.text import plotly_text

        fig = go.Figure()
        colors = {"relevant": "#1a9850", "not relevant": "#d73027"}
        for mark, group in self.marks.groupby("mark", sort=True):
            xs, ys, data, labels = [], [], [], []
            for r in group.itertuples():
                xs += ["before", "after", None]
                ys += [r.rank_before, r.rank_after, None]
                data += [[int(r.row)], [int(r.row)], [int(r.row)]]
                labels += [plotly_text(str(r.id))] * 3
            fig.add_trace(go.Scatter(
                x=xs, y=ys, mode="lines+markers", name=str(mark), line={"color": colors.get(str(mark), "#666")},
                text=labels, hovertemplate="%{text}: rank %{y}<extra></extra>", **clickable(["row"], data)))
        fig.update_yaxes(type="log", autorange="reversed", title_text="rank (1 = top)")
        fig.update_xaxes(title_text=f"feedback ({self.method})")
        return base_layout(fig, f"Rank of the marked rows before and after feedback ({self.method})", self.query)


def feedback(
    space: Space,
    query: Any,
    relevant: Sequence[int] | np.ndarray = (),
    irrelevant: Sequence[int] | np.ndarray = (),
    *,
    method: str = "rocchio",
    a: float = 1.0,
    b: float = 0.75,
    c: float = 0.15,
    k: int = 20,
    base: str = "pdv",
    mask: Any = None,
    **params: float,
) -> FeedbackResult:
    """Refine a composed query from rows marked relevant / not relevant, and rank the gallery again.

    Parameters
    ----------
    space
        The :class:`~cirscope.Space`.
    query
        A :class:`~cirscope.ComposedQuery` (or its resolution).
        Or a :class:`FeedbackResult`: a further round refines *its* query (vector or direction).
    relevant, irrelevant
        Gallery rows marked relevant / not relevant (a row cannot be both). The judgments
        accumulate: in a further round pass every mark so far.
    method
        ``"rocchio"`` (refine the query vector) or ``"pdv"`` (refine PDV's direction ``d``);
        the formulas are in :mod:`cirscope.analysis._feedback`.
    a, b, c
        Weights of the original query (or direction), the relevant and the non-relevant mean
        (Salton & Buckley's 1, 0.75, 0.15 by default).
    k
        How many results to return.
    base
        The composing method of the query before feedback (Rocchio only; PDV-aware feedback is PDV).
    mask
        Rank only these rows (a boolean array, one per gallery row).
    **params
        The base method's parameters (PDV: ``alpha_t``, ``alpha_i``, ``beta``).

    Returns
    -------
    FeedbackResult
        ``.rows`` (new top ``k``), ``.vector``, ``.to_frame()`` (rank before/after of each
        marked row), ``.rank_changes()``, ``.figure()``.

    Examples
    --------
    >>> q = cs.ComposedQuery(0, "make it blue")
    >>> res = cs.analysis.feedback(space, q, relevant=[5], irrelevant=[7], k=10)
    >>> res.to_frame()[["row", "mark"]].values.tolist()
    [[5, 'relevant'], [7, 'not relevant']]
    >>> res.rows.shape
    (10,)
    """
    from cirscope.query._formulas import STEPS
    from cirscope.query._methods import METHODS

    if method not in FEEDBACK_METHODS:
        raise ValueError(f"method must be one of {list(FEEDBACK_METHODS)}, got {method!r}")
    for name, value in (("a", a), ("b", b), ("c", c)):
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"The weight {name} must be finite and >= 0, got {value!r}")
    k = check_k(k)
    previous = query if isinstance(query, FeedbackResult) else None
    if previous is not None:
        if previous.method != method:
            raise ValueError(f"The previous round used method={previous.method!r}; continue with the same method")
        base, params = previous.base, {**previous.params, **params}
    resolved = resolve_composed(space, previous.resolved if previous is not None else query, "feedback")
    base = "pdv" if method == "pdv" else base
    if base not in METHODS:
        raise ValueError(f"Unknown composing method {base!r}; choose one of {list(METHODS)}")
    settings = {**METHODS[base].defaults(), **params}
    unknown = sorted(set(settings) - set(METHODS[base].defaults()))
    if unknown:
        raise TypeError(f"Unknown parameters {unknown} for {base}; it takes {list(METHODS[base].defaults())}")
    n = len(space.gallery)
    rel = marked_rows(relevant, n, "relevant")
    non = marked_rows(irrelevant, n, "irrelevant")
    both = np.intersect1d(rel, non)
    if both.size:
        raise ValueError(f"Rows {both[:5].tolist()} are marked both relevant and not relevant; mark each once")
    if rel.size + non.size == 0:
        raise ValueError("Mark at least one row relevant or not relevant")
    mask_arr = None if mask is None else np.asarray(mask, dtype=bool)
    if mask_arr is not None and mask_arr.shape != (n,):
        raise ValueError(f"mask must hold one bool per gallery row ({n}), got shape {mask_arr.shape}")
    emb = space.image_embeddings
    rel_sum = np.asarray(emb[rel], np.float64).sum(axis=0)
    non_sum = np.asarray(emb[non], np.float64).sum(axis=0)
    before = resolved.vector(base, **settings) if previous is None else previous.vector.astype(np.float64)
    d_before = d_after = None
    if previous is not None and method == "pdv" and previous.direction is None:  # pragma: no cover - guarded above
        raise ValueError("The previous round has no PDV direction")
    if method == "rocchio":
        after = rocchio(before, rel_sum, rel.size, non_sum, non.size, a, b, c)
    else:
        prep = STEPS["pdv"][0](resolved.v_ref, resolved.t_ref, resolved.t_comp)
        d_before = prep["d"] if previous is None else previous.direction
        d_after = refine_direction(prep["v"], d_before, rel_sum, rel.size, non_sum, non.size, a, b, c)
        after = STEPS["pdv"][1](prep["v"], prep["t_ref_n"], d_after, **settings)
    exclude = [] if resolved.reference_row is None else [int(resolved.reference_row)]
    scores = scored(emb, np.stack([before, after]), exclude, mask_arr)
    top = best_rows(scores, k)
    marked = np.concatenate([rel, non])
    ranks = exact_ranks(scores, marked)
    rows_after = top[1][top[1] >= 0]
    frame = pd.DataFrame({
        "row": marked,
        "id": np.asarray(space.gallery.ids)[marked].astype(str),
        "mark": ["relevant"] * rel.size + ["not relevant"] * non.size,
        "rank_before": pd.array(ranks[0], dtype="Float64").astype("Int64"),
        "rank_after": pd.array(ranks[1], dtype="Float64").astype("Int64"),
    })
    frame["change"] = frame["rank_before"] - frame["rank_after"]
    return FeedbackResult(
        query=f"[{resolved.reference}] + {resolved.text!r}", method=method, k=k,
        vector_before=before.astype(np.float32), vector=after.astype(np.float32),
        direction_before=d_before, direction=d_after,
        rows_before=top[0][top[0] >= 0], rows=rows_after, scores=scores[1, rows_after],
        marks=frame, weights={"a": float(a), "b": float(b), "c": float(c)}, params=dict(settings),
        base=base, resolved=resolved, round=1 if previous is None else previous.round + 1,
    )

"""Retrieval skew over a sensitive attribute: Skew@K, MaxSkew@K, MinSkew@K and NDKL.

Geyik, Ambler & Kenthapadi, "Fairness-Aware Ranking in Search & Recommendation Systems with
Application to LinkedIn Talent Search" (KDD 2019); used for CLIP retrieval by Berg et al.,
"A Prompt Array Keeps the Bias Away" (AACL 2022).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cirscope._core.text import plotly_text, plotly_texts
from cirscope.diagnostics._common import (
    check_ks,
    check_mask,
    check_space,
    labels_of,
    n_rankable,
    ranking,
    resolve_queries,
)
from cirscope.diagnostics._result import DiagnosticResult, base_layout, clickable

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.space._space import Space

__all__ = ["SkewResult", "desired_shares", "label_skew", "ndkl", "skew"]


def desired_shares(pool_labels: Sequence[str], desired: str | Mapping[str, float] = "uniform") -> pd.Series:
    """The desired share ``q_a`` of every label.

    ``"uniform"``: ``1 / |labels|`` (equal opportunity); ``"gallery"``: ``n_a / N``, the
    label's share of ``pool_labels`` (demographic parity); or ``{label: weight}``
    (normalised to sum to 1).

    Examples
    --------
    >>> desired_shares(["a", "a", "a", "b"], "uniform").to_dict()
    {'a': 0.5, 'b': 0.5}
    >>> desired_shares(["a", "a", "a", "b"], "gallery").to_dict()
    {'a': 0.75, 'b': 0.25}
    """
    pool = pd.Series(np.asarray(pool_labels, dtype=object), dtype=object).map(str)
    if pool.empty:
        raise ValueError("No gallery rows to take label shares from")
    present = sorted(pool.unique().tolist())
    if isinstance(desired, Mapping):
        q = pd.Series({str(k): float(v) for k, v in desired.items()}, dtype=np.float64)
        missing = sorted(set(present) - set(q.index))
        if missing:
            raise ValueError(f"The desired shares lack labels present in the gallery: {missing[:10]}")
        if (q < 0).any() or q.sum() <= 0 or not np.isfinite(q).all():
            raise ValueError("Desired shares must be finite, non-negative and not all zero")
        zero = sorted(label for label in present if q[label] == 0)
        if zero:
            raise ValueError(f"The desired share of {zero[:10]} is 0 but the gallery holds them: Skew = ln(p/q) "
                             "would be infinite. Give every present label a positive share.")
        return (q / q.sum()).sort_index()
    if desired == "uniform":
        return pd.Series(1.0 / len(present), index=present, dtype=np.float64)
    if desired == "gallery":
        counts = pool.value_counts()
        return (counts / counts.sum()).reindex(present).astype(np.float64)
    raise ValueError(f"desired must be 'uniform', 'gallery' or {{label: share}}, got {desired!r}")


def label_skew(ranked_labels: Sequence[str], desired: pd.Series | Mapping[str, float], k: int) -> pd.DataFrame:
    """Skew of every label in the top ``k`` of a ranking.

    Geyik et al. (KDD 2019)::

        p_a      = count of label a among the top K / K     (1 / K when the count is 0)
        Skew_a@K = ln(p_a) - ln(q_a)
        MaxSkew@K = max_a Skew_a@K,   MinSkew@K = min_a Skew_a@K

    Parameters
    ----------
    ranked_labels
        The label of each ranked item, best first (at least ``k`` of them).
    desired
        ``q_a`` per label (see :func:`desired_shares`); it defines the label set.
    k
        The cut-off.

    Returns
    -------
    pandas.DataFrame
        Columns ``label``, ``count``, ``share`` (``p_a``), ``desired`` (``q_a``), ``skew``.

    Examples
    --------
    A 10-item ranking with 6 "x", 3 "y", 1 "z" against the uniform target 1/3:

    >>> ranked = list("xxyxxyxzxy")
    >>> t = label_skew(ranked, {"x": 1 / 3, "y": 1 / 3, "z": 1 / 3}, k=10)
    >>> t.set_index("label")["skew"].round(4).to_dict()  # ln(.6*3), ln(.3*3), ln(.1*3)
    {'x': 0.5878, 'y': -0.1054, 'z': -1.204}
    """
    q = pd.Series(desired, dtype=np.float64)
    k = int(k)
    if len(ranked_labels) < k:
        raise ValueError(f"The ranking has {len(ranked_labels)} items, fewer than k={k}")
    top = pd.Series(np.asarray(ranked_labels[:k], dtype=object))
    unknown = sorted(set(top) - set(q.index))
    if unknown:
        raise ValueError(f"Labels {unknown[:5]} in the ranking have no desired share")
    counts = top.value_counts().reindex(q.index, fill_value=0).astype(np.int64)
    share = counts / k
    p = np.where(counts.to_numpy() == 0, 1.0 / k, share.to_numpy())
    with np.errstate(divide="ignore"):
        skew_values = np.log(p) - np.log(q.to_numpy())
    return pd.DataFrame(
        {"label": q.index.to_numpy(), "count": counts.to_numpy(), "share": share.to_numpy(),
         "desired": q.to_numpy(), "skew": skew_values}
    )


def ndkl(ranked_labels: Sequence[str], desired: pd.Series | Mapping[str, float], k: int) -> float:
    """Normalised discounted cumulative KL-divergence of the top ``k`` from the desired shares.

    Geyik et al. (KDD 2019)::

        NDKL = (1 / Z) sum_{i=1..K} KL(P_i || Q) / log2(i + 1),   Z = sum_{i=1..K} 1 / log2(i + 1)

    where ``P_i`` holds the label shares among the top ``i`` and ``Q`` the desired shares;
    natural log, ``0 log 0 = 0``. 0 means every prefix matches ``Q``.

    Examples
    --------
    >>> round(ndkl(["a", "b"], {"a": 0.5, "b": 0.5}, k=2), 4)  # KL(P_1) = ln 2, KL(P_2) = 0
    0.425
    """
    q = pd.Series(desired, dtype=np.float64)
    k = int(k)
    if len(ranked_labels) < k:
        raise ValueError(f"The ranking has {len(ranked_labels)} items, fewer than k={k}")
    index = {label: j for j, label in enumerate(q.index)}
    try:
        cols = np.array([index[label] for label in ranked_labels[:k]], dtype=np.int64)
    except KeyError as exc:
        raise ValueError(f"Label {exc.args[0]!r} in the ranking has no desired share") from None
    onehot = np.zeros((k, len(q)))
    onehot[np.arange(k), cols] = 1.0
    p = np.cumsum(onehot, axis=0) / np.arange(1, k + 1)[:, None]
    qv = q.to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(p) - np.log(qv)[None, :]), 0.0)
    kl = terms.sum(axis=1)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    return float(np.sum(kl * discount) / np.sum(discount))


@dataclass(frozen=True, repr=False, eq=False)
class SkewResult(DiagnosticResult):
    """The result of :func:`skew`.

    Attributes
    ----------
    attribute : str
        The attribute column.
    desired : pandas.Series
        ``q_a`` per label.
    ks : tuple of int
        The cut-offs.
    per_label : pandas.DataFrame
        One row per (query, k, label): count, share, desired, skew.
    per_query : pandas.DataFrame
        One row per (query, k): max_skew, max_label, min_skew, min_label, ndkl.
    rankings : dict
        The top ``max(ks)`` gallery rows of each query.
    """

    name = "skew"
    title = "Retrieval skew"

    attribute: str
    desired_name: str
    desired: pd.Series
    ks: tuple[int, ...]
    per_label: pd.DataFrame
    per_query: pd.DataFrame
    rankings: dict[str, np.ndarray]
    _labels: np.ndarray

    @property
    def queries(self) -> list[str]:
        return list(self.rankings)

    def to_frame(self, level: str = "query") -> pd.DataFrame:
        """``level="query"``: per (query, k) MaxSkew/MinSkew/NDKL; ``"label"``: per (query, k, label)
        skew; ``"mean"``: per k, averaged over the queries."""
        if level == "query":
            return self.per_query.copy()
        if level == "label":
            return self.per_label.copy()
        if level == "mean":
            return self.mean()
        raise ValueError(f"level must be 'query', 'label' or 'mean', got {level!r}")

    def mean(self) -> pd.DataFrame:
        """MaxSkew@K, MinSkew@K and NDKL@K averaged over the queries, one row per K."""
        g = self.per_query.groupby("k", sort=True)
        return pd.DataFrame(
            {"max_skew": g["max_skew"].mean(), "min_skew": g["min_skew"].mean(), "ndkl": g["ndkl"].mean(),
             "queries": g.size()}
        ).reset_index()

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"attribute": self.attribute, "desired": self.desired_name, "queries": len(self.rankings)}
        for row in self.mean().itertuples():
            out[f"MaxSkew@{row.k}"] = float(row.max_skew)
            out[f"MinSkew@{row.k}"] = float(row.min_skew)
            out[f"NDKL@{row.k}"] = float(row.ndkl)
        return out

    def rows_for(self, query: str | int | None = None, label: str | None = None, k: int | None = None) -> np.ndarray:
        """The gallery rows in the top ``k`` (default: the largest K) of ``query`` (name or
        position; default: every query, in order, without repeats) that carry ``label``."""
        k = int(k) if k is not None else max(self.ks)
        names = self.queries
        if query is None:
            chosen = names
        elif isinstance(query, (int, np.integer)) and not isinstance(query, bool) and str(query) not in self.rankings:
            chosen = [names[int(query)]]
        else:
            if str(query) not in self.rankings:
                raise KeyError(f"No query named {query!r}; the queries are {names}")
            chosen = [str(query)]
        out: list[int] = []
        seen: set[int] = set()
        for name in chosen:
            for r in self.rankings[name][:k]:
                if (label is None or self._labels[r] == str(label)) and int(r) not in seen:
                    seen.add(int(r))
                    out.append(int(r))
        return np.asarray(out, dtype=np.int64)

    def figure(self) -> Any:
        """Left: per-label Skew@K averaged over the queries; right: MaxSkew@K per query."""
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        fig = make_subplots(rows=1, cols=2, column_widths=[0.55, 0.45], horizontal_spacing=0.1,
                            subplot_titles=(f"Skew@K per {plotly_text(self.attribute)} (mean over queries)",
                                            "MaxSkew@K per query"))
        mean_label = self.per_label.groupby(["k", "label"], sort=False)[["skew", "share"]].mean().reset_index()
        palette = ["#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2"]
        for i, k in enumerate(self.ks):
            sub = mean_label[mean_label["k"] == k]
            color = palette[i % len(palette)]
            fig.add_trace(go.Bar(
                x=plotly_texts(sub["label"]), y=sub["skew"], name=f"K={k}", marker_color=color, legendgroup=f"k{k}",
                hovertemplate="%{x}: Skew@" + str(k) + " = %{y:.3f}<br>share %{text}<extra></extra>",
                text=[f"{s:.2f}" for s in sub["share"]], textposition="none",
                **clickable(["label", "k"], [[lab, int(k)] for lab in sub["label"]])), row=1, col=1)
            qsub = self.per_query[self.per_query["k"] == k]
            fig.add_trace(go.Bar(
                x=plotly_texts(qsub["query"]), y=qsub["max_skew"], name=f"K={k}", marker_color=color, legendgroup=f"k{k}",
                showlegend=False, text=plotly_texts(qsub["max_label"]), textposition="none",
                hovertemplate="%{x}<br>MaxSkew@" + str(k) + " = %{y:.3f} (%{text})<extra></extra>",
                **clickable(["query", "k"], [[q, int(k)] for q in qsub["query"]])), row=1, col=2)
        fig.update_layout(barmode="group")
        fig.add_hline(y=0, line_color="#888", line_width=1)
        kmax = max(self.ks)
        s = self.summary()
        title = f"Skew of '{self.attribute}' vs the {self.desired_name} target, {len(self.rankings)} queries"
        numbers = (f"MaxSkew@{kmax} {s[f'MaxSkew@{kmax}']:.2f}, MinSkew@{kmax} {s[f'MinSkew@{kmax}']:.2f}, "
                   f"NDKL@{kmax} {s[f'NDKL@{kmax}']:.3f}")
        fig.update_yaxes(title_text="ln(p_a) - ln(q_a)", row=1, col=1)
        return base_layout(fig, title, numbers, height=480)


def skew(
    space: Space,
    queries: Any,
    attribute: str | Sequence[Any],
    k: int | Sequence[int] = (10, 50, 100),
    desired: str | Mapping[str, float] = "uniform",
    *,
    method: str | None = None,
    mask: Any = None,
    **params: Any,
) -> SkewResult:
    """Skew@K, MaxSkew@K, MinSkew@K and NDKL of an attribute in the top-K of queries.

    Geyik, Ambler & Kenthapadi (KDD 2019), used for CLIP by Berg et al. (AACL 2022). For each
    query take the top K results and their labels ``a`` in ``attribute``::

        p_a       = share of label a in the top K (1/K when the count is 0)
        q_a       = 1/|labels| (desired="uniform", equal opportunity)
                    or n_a/N (desired="gallery", demographic parity)
        Skew_a@K  = ln(p_a) - ln(q_a);   MaxSkew@K = max_a Skew_a@K;   MinSkew@K = min_a Skew_a@K
        NDKL      = (1/Z) sum_{i=1..K} KL(P_i || Q) / log2(i+1),  Z = sum_{i=1..K} 1/log2(i+1)

    Values are reported per query and averaged over queries. K must be smaller than the
    number of rankable rows: at K = N the demographic-parity skew is 0 by construction.

    Parameters
    ----------
    space
        The :class:`~cirscope.Space`.
    queries
        A text, a :class:`~cirscope.ComposedQuery`, a gallery row, a query vector, a list of
        them or ``{name: query}`` (e.g. prompt templates x concepts).
    attribute
        The metadata column holding the sensitive attribute (or one label per gallery row).
    k
        One cut-off or several (default ``(10, 50, 100)``).
    desired
        ``"uniform"`` (default), ``"gallery"`` or ``{label: share}``.
    method, **params
        How composed queries are turned into vectors (default ``"pdv"`` and its defaults).
    mask
        Rank only these rows (``{column: value}``, a boolean mask or rows); the gallery
        shares are then taken over them too.

    Returns
    -------
    SkewResult
        ``.to_frame()`` (per query; ``level="label"`` or ``"mean"``), ``.figure()``,
        ``.rows_for(query=, label=, k=)``.

    Examples
    --------
    >>> res = cs.diagnostics.skew(space, ["a star", "a circle"], "color", k=(10, 50))
    >>> res.to_frame()[["query", "k"]].values.tolist()
    [['a star', 10], ['a star', 50], ['a circle', 10], ['a circle', 50]]
    >>> rows = res.rows_for(query="a star", label="yellow", k=10)  # the yellow images of its top 10
    >>> set(space.gallery.metadata["color"].iloc[rows]) <= {"yellow"}
    True
    """
    space = check_space(space)
    ks = check_ks(k)
    labels, name = labels_of(space, attribute)
    mask_arr = check_mask(space, mask)
    pool = labels if mask_arr is None else labels[mask_arr]
    q = desired_shares(pool, desired)
    desired_name = desired if isinstance(desired, str) else "custom"
    resolved = resolve_queries(space, queries, method, **params)
    kmax = max(ks)
    per_label, per_query = [], []
    rankings: dict[str, np.ndarray] = {}
    for query in resolved:
        available = n_rankable(space, query, mask_arr)
        if kmax > available:
            raise ValueError(
                f"k={kmax} is larger than the {available} rows the query {query.name!r} can rank; pass smaller "
                "cut-offs, e.g. k=(10, 50)"
            )
        if kmax == available and desired == "gallery":
            warnings.warn(
                f"k={kmax} ranks every row: the demographic-parity skew is 0 by construction. Use a smaller k.",
                UserWarning, stacklevel=2,
            )
        rows = ranking(space, query, kmax, mask_arr)
        rankings[query.name] = rows
        ranked = labels[rows].tolist()
        for kk in ks:
            table = label_skew(ranked, q, kk)
            table.insert(0, "k", kk)
            table.insert(0, "query", query.name)
            per_label.append(table)
            imax, imin = int(np.argmax(table["skew"].to_numpy())), int(np.argmin(table["skew"].to_numpy()))
            per_query.append({
                "query": query.name, "k": kk,
                "max_skew": float(table["skew"].iat[imax]), "max_label": str(table["label"].iat[imax]),
                "min_skew": float(table["skew"].iat[imin]), "min_label": str(table["label"].iat[imin]),
                "ndkl": ndkl(ranked, q, kk),
            })
    return SkewResult(name, desired_name, q, ks, pd.concat(per_label, ignore_index=True),
                      pd.DataFrame(per_query), rankings, labels)

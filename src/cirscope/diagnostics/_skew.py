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

import cirscope.diagnostics._guides as _guides
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
from cirscope.diagnostics._reading import (
    BASELINE_COLUMNS,
    DRAWS,
    INTERVAL_COLUMNS,
    floor_row,
    interval_row,
    label_index,
    max_skew_bound,
    min_skew_floor,
    ndkl_max,
    random_topk,
    resample_ranking,
    skew_stats,
)
from cirscope.diagnostics._result import MEAN, DiagnosticResult, base_layout, clickable
from cirscope.diagnostics._skew_math import desired_shares, label_skew, mentions, ndkl

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.space._space import Space

__all__ = ["SkewResult", "desired_shares", "label_skew", "mentions", "ndkl", "skew"]


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
    _baseline: pd.DataFrame
    _interval: pd.DataFrame
    mentioned: dict[str, list[str]]

    GUIDE = _guides.SKEW

    @property
    def queries(self) -> list[str]:
        return list(self.rankings)

    @property
    def baseline(self) -> pd.DataFrame:
        """MaxSkew@K, MinSkew@K and NDKL@K of random rankings of the same rows (K rows drawn at random
        from the rows the query can rank, 1000 draws, seeded): per query and K, and for the mean over
        the queries (``query == "(mean over queries)"``).

        Examples
        --------
        >>> res = cs.diagnostics.skew(space, "a star", "color", k=10)
        >>> b = res.baseline.set_index(["query", "quantity"]).loc[("a star", "MinSkew@10")]
        >>> round(float(b["random_median"]), 4)  # a colour absent from 10 random rows: the floor -ln(10/8)
        -0.2231
        """
        return self._baseline.copy()

    @property
    def interval(self) -> pd.DataFrame:
        """Bootstrap 95% intervals of MaxSkew@K, MinSkew@K and NDKL@K: the top K resampled with
        replacement in rank order (1000 resamples, seeded), per query and for the mean."""
        return self._interval.copy()

    def floors(self) -> pd.DataFrame:
        """The bounds of each K: ``min_skew_floor`` (``-ln(K max q_a)``, what a missing label reads),
        ``max_skew_bound`` and ``ndkl_max`` (both ``-ln(min q_a)``)."""
        q = self.desired.to_numpy()
        return pd.DataFrame([{"k": k, "min_skew_floor": min_skew_floor(q, k), "max_skew_bound": max_skew_bound(q),
                              "ndkl_max": ndkl_max(q)} for k in self.ks])

    def sentence(self) -> str:
        kmax = max(self.ks)
        b = self._baseline
        row = b[(b["query"] == MEAN) & (b["quantity"] == f"MaxSkew@{kmax}")].iloc[0]
        verdict = ("beyond" if row["beyond_random"] else "within") + " what random rankings of the same rows give"
        text = (f"MaxSkew@{kmax} {row['value']:.2f} is {verdict} (95th percentile {row['random_p95']:.2f}); "
                f"MinSkew@K at {min_skew_floor(self.desired.to_numpy(), kmax):.2f} only means a label is missing "
                "from the top K.")
        if self.mentioned:
            names = ", ".join(f"{q!r} names {', '.join(m)}" for q, m in self.mentioned.items())
            text += (f" Careful: {names}; the skew of {self.attribute} for such a query measures the requested "
                     "effect, not a bias. Audit an attribute the text does not mention.")
        return text

    def to_frame(self, level: str = "query") -> pd.DataFrame:
        """``level="query"``: per (query, k) MaxSkew/MinSkew/NDKL; ``"label"``: per (query, k, label)
        skew; ``"mean"``: per k, averaged over the queries."""
        if level == "query":
            return self._query_frame()
        if level == "label":
            return self.per_label.copy()
        if level == "mean":
            return self.mean()
        raise ValueError(f"level must be 'query', 'label' or 'mean', got {level!r}")

    def _query_frame(self) -> pd.DataFrame:
        """Per (query, k): the numbers, their intervals, their noise floor and the bounds."""
        out = self.per_query.copy()
        keys = ["query", "k"]
        b = self._baseline[self._baseline["query"] != MEAN]
        ci = self._interval[self._interval["query"] != MEAN]
        for name, quantity in (("max_skew", "MaxSkew"), ("min_skew", "MinSkew"), ("ndkl", "NDKL")):
            qb = b[b["quantity"].str.startswith(quantity + "@")].set_index(keys)
            qc = ci[ci["quantity"].str.startswith(quantity + "@")].set_index(keys)
            idx = pd.MultiIndex.from_frame(out[keys])
            out[f"{name}_low"] = qc["low"].reindex(idx).to_numpy()
            out[f"{name}_high"] = qc["high"].reindex(idx).to_numpy()
            out[f"{name}_random_median"] = qb["random_median"].reindex(idx).to_numpy()
            edge = "random_p5" if name == "min_skew" else "random_p95"
            out[f"{name}_{edge}"] = qb[edge].reindex(idx).to_numpy()
            if name == "max_skew":
                out["beyond_random"] = qb["beyond_random"].reindex(idx).to_numpy().astype(bool)
        floors = self.floors().set_index("k")
        for col in floors.columns:
            out[col] = floors[col].reindex(out["k"]).to_numpy()
        return out

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
    draws: int = DRAWS,
    seed: int = 0,
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
        shares are then taken over them too. With ``desired="gallery"`` this separates the
        gallery from the model: ``mask={"shape": "star"}`` and the query "a star" compare the
        colour mix of the model's top K with the stars' own colour shares.
    draws, seed
        Random draws of the noise floor and bootstrap resamples (default 1000), and their seed.

    Reading the numbers
    -------------------
    ``.baseline`` holds what K random rows of the same pool give (median and 5th/95th
    percentiles), ``.interval`` a bootstrap interval of each number, ``.floors()`` the
    MinSkew smoothing floor ``-ln(K max q_a)`` and the maxima of MaxSkew and NDKL
    (``-ln(min q_a)``); ``.to_frame()`` shows them as columns and ``.explain()`` in words.

    Returns
    -------
    SkewResult
        ``.to_frame()`` (per query; ``level="label"`` or ``"mean"``), ``.figure()``,
        ``.rows_for(query=, label=, k=)``, ``.baseline``, ``.interval``, ``.explain()``.

    Examples
    --------
    >>> res = cs.diagnostics.skew(space, ["a star", "a circle"], "color", k=(10, 50))
    >>> res.to_frame()[["query", "k"]].values.tolist()
    [['a star', 10], ['a star', 50], ['a circle', 10], ['a circle', 50]]
    >>> res.to_frame()["min_skew_floor"].round(3).tolist()  # -ln(K/8): a colour missing from the top K
    [-0.223, -1.833, -0.223, -1.833]
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
    if isinstance(draws, bool) or int(draws) < 10:
        raise ValueError(f"draws must be an integer of at least 10, got {draws!r}")
    resolved = resolve_queries(space, queries, method, **params)
    kmax = max(ks)
    per_label, per_query = [], []
    rankings: dict[str, np.ndarray] = {}
    codes_all = label_index(labels, q.index)
    qv = q.to_numpy()
    base_rows, ci_rows = [], []
    random_draws: dict[tuple[int, str], list[np.ndarray]] = {}
    boot_draws: dict[tuple[int, str], list[np.ndarray]] = {}
    for i, query in enumerate(resolved):
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
        allowed = np.ones(len(labels), dtype=bool) if mask_arr is None else mask_arr.copy()
        allowed[query.exclude] = False
        pool_counts = np.bincount(codes_all[allowed], minlength=len(q))
        for kk in ks:
            rng = np.random.default_rng([int(seed), i, kk])
            null = skew_stats(random_topk(pool_counts, kk, int(draws), rng), qv)
            boot = skew_stats(resample_ranking(codes_all[rows[:kk]], int(draws), rng), qv)
            observed = skew_stats(codes_all[rows[:kk]][None, :], qv)
            for key, quantity in (("max_skew", "MaxSkew"), ("min_skew", "MinSkew"), ("ndkl", "NDKL")):
                label = f"{quantity}@{kk}"
                random_draws.setdefault((kk, key), []).append(null[key])
                boot_draws.setdefault((kk, key), []).append(boot[key])
                base_rows.append({"query": query.name, "k": kk, **floor_row(
                    label, observed[key][0], null[key], f"{kk} random rows", low_is_extreme=key == "min_skew")})
                ci_rows.append({"query": query.name, "k": kk, **interval_row(
                    label, observed[key][0], boot[key], "bootstrap of the top K")})
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
    per_query_frame = pd.DataFrame(per_query)
    means = per_query_frame.groupby("k")[["max_skew", "min_skew", "ndkl"]].mean()
    for kk in ks:
        for key, quantity in (("max_skew", "MaxSkew"), ("min_skew", "MinSkew"), ("ndkl", "NDKL")):
            label = f"{quantity}@{kk}"
            value = float(means.loc[kk, key])
            base_rows.append({"query": MEAN, "k": kk, **floor_row(
                label, value, np.mean(random_draws[(kk, key)], axis=0), f"{kk} random rows per query",
                low_is_extreme=key == "min_skew")})
            ci_rows.append({"query": MEAN, "k": kk, **interval_row(
                label, value, np.mean(boot_draws[(kk, key)], axis=0), "bootstrap of each query's top K")})
    mentioned = {query.name: found for query in resolved if (found := mentions(query.text, q.index))}
    return SkewResult(name, desired_name, q, ks, pd.concat(per_label, ignore_index=True),
                      per_query_frame, rankings, labels,
                      pd.DataFrame(base_rows, columns=["query", "k", *BASELINE_COLUMNS]),
                      pd.DataFrame(ci_rows, columns=["query", "k", *INTERVAL_COLUMNS]), mentioned)


"""Source bias: does retrieval favour one image source (e.g. generated over real) at equal relevance?"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

import cirscope.diagnostics._guides as _guides
from cirscope._core.text import plotly_text
from cirscope.diagnostics._common import check_space, labels_of, ranking, resolve_queries, selector_rows
from cirscope.diagnostics._reading import DRAWS, INTERVAL_COLUMNS, interval_row
from cirscope.diagnostics._result import DiagnosticResult, base_layout, clickable

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.space._space import Space

__all__ = ["SourceBiasResult", "ndcg_at_k", "recall_share_at_k", "relative_delta", "source_bias"]


def recall_share_at_k(ranked: np.ndarray, relevant: np.ndarray, k: int) -> float:
    """Recall@k: the share of the relevant items found in the top ``k`` (nan without relevant items).

    Examples
    --------
    >>> recall_share_at_k(np.array([5, 1, 7, 2]), np.array([1, 2, 9]), k=2)
    0.3333333333333333
    """
    relevant = np.asarray(relevant)
    if relevant.size == 0:
        return float("nan")
    return float(np.isin(np.asarray(ranked)[:k], relevant).sum() / relevant.size)


def ndcg_at_k(ranked: np.ndarray, relevant: np.ndarray, k: int) -> float:
    """Binary NDCG@k: ``DCG = sum_{i<=k} rel_i / log2(i+1)`` over the ideal DCG (nan without relevant items).

    Järvelin & Kekäläinen, "Cumulated gain-based evaluation of IR techniques" (TOIS 2002).

    Examples
    --------
    >>> round(ndcg_at_k(np.array([5, 1, 7]), np.array([1]), k=3), 4)  # 1/log2(3)
    0.6309
    """
    relevant = np.asarray(relevant)
    if relevant.size == 0:
        return float("nan")
    rel = np.isin(np.asarray(ranked)[:k], relevant).astype(np.float64)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = discount[: min(k, relevant.size)].sum()
    return float((rel * discount[: rel.size]).sum() / ideal)


def relative_delta(m_a: float, m_b: float) -> float:
    """Relative difference ``2 (M_a - M_b) / (M_a + M_b) * 100`` (Xu et al., SIGIR 2024).

    Examples
    --------
    >>> relative_delta(0.25, 0.75)  # negative: source b is favoured
    -100.0
    """
    total = m_a + m_b
    return float(2.0 * (m_a - m_b) / total * 100.0) if total > 0 else float("nan")


@dataclass(frozen=True, repr=False, eq=False)
class SourceBiasResult(DiagnosticResult):
    """The result of :func:`source_bias`.

    Attributes
    ----------
    per_query : pandas.DataFrame
        Tidy: ``query``, ``source``, ``metric`` (``R@k`` or ``NDCG@k``), ``value``.
    compare : tuple of str
        ``(a, b)``: the relative Delta is ``2 (M_a - M_b) / (M_a + M_b) * 100``.
    twin_share : float or None
        Share of queries (averaged over their twin pairs) where b's twin outranks a's.
    """

    name = "source_bias"
    title = "Source bias"
    GUIDE = _guides.SOURCE_BIAS

    def sentence(self) -> str:
        """The result in one plain sentence."""
        return _guides.source_bias_sentence(self.summary(), self.compare)

    k: int
    source_column: str
    compare: tuple[str, str]
    per_query: pd.DataFrame
    twin_share: float | None
    _top: dict[str, np.ndarray]
    _relevant: dict[str, np.ndarray]
    _sources: np.ndarray

    @property
    def interval(self) -> pd.DataFrame:
        """Bootstrap 95% intervals of each relative Delta: the queries resampled with replacement
        (1000 times, seeded). Few queries give wide intervals: read the Delta with them."""
        a, b = self.compare
        rows = []
        rng = np.random.default_rng(0)
        for metric, value in self.deltas().items():
            wide = self.per_query[self.per_query["metric"] == metric].pivot_table(
                index="query", columns="source", values="value", aggfunc="mean")
            if a not in wide or b not in wide:
                continue
            pick = rng.integers(0, len(wide), size=(DRAWS, len(wide)))
            ma = np.nanmean(wide[a].to_numpy()[pick], axis=1)
            mb = np.nanmean(wide[b].to_numpy()[pick], axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                draws = 200.0 * (ma - mb) / (ma + mb)
            rows.append(interval_row(f"Delta {metric} (%)", value, draws, "bootstrap of the queries"))
        return pd.DataFrame(rows, columns=INTERVAL_COLUMNS)

    def to_frame(self) -> pd.DataFrame:
        """Per query, source and metric: the value (tidy)."""
        return self.per_query.copy()

    def means(self) -> pd.DataFrame:
        """Mean of every metric per source (rows: metric, columns: source)."""
        return self.per_query.pivot_table(index="metric", columns="source", values="value", aggfunc="mean")

    def deltas(self) -> dict[str, float]:
        """Relative Delta of every metric between the compared sources (negative: b favoured)."""
        m = self.means()
        a, b = self.compare
        return {metric: relative_delta(float(m.loc[metric, a]), float(m.loc[metric, b])) for metric in m.index}

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"k": self.k, "compare": f"{self.compare[0]} vs {self.compare[1]}"}
        m = self.means()
        for metric in m.index:
            for source in m.columns:
                out[f"{metric} {source}"] = float(m.loc[metric, source])
        for metric, value in self.deltas().items():
            out[f"Delta {metric} (%)"] = value
        if self.twin_share is not None:
            out[f"{self.compare[1]} twin first"] = self.twin_share
        return out

    def rows_for(self, source: str | None = None, query: str | None = None, relevant_only: bool = True) -> np.ndarray:
        """The top-k rows (of ``source``, relevant ones only by default) of ``query`` or of every query."""
        names = list(self._top) if query is None else [str(query)]
        out: list[int] = []
        for name in names:
            if name not in self._top:
                raise KeyError(f"No query named {name!r}; the queries are {list(self._top)}")
            rows = self._top[name]
            if relevant_only:
                rows = rows[np.isin(rows, self._relevant[name])]
            if source is not None:
                rows = rows[self._sources[rows] == str(source)]
            out += [int(r) for r in rows if int(r) not in out]
        return np.asarray(out, dtype=np.int64)

    def figure(self) -> Any:
        """Mean R@k and NDCG@k per source, grouped by metric."""
        import plotly.graph_objects as go

        m = self.means()
        fig = go.Figure()
        palette = ["#4C78A8", "#F58518", "#54A24B", "#E45756"]
        for i, source in enumerate(m.columns):
            fig.add_trace(go.Bar(
                x=list(m.index), y=m[source], name=plotly_text(source), marker_color=palette[i % len(palette)],
                text=[plotly_text(source)] * len(m.index), textposition="none",
                hovertemplate="%{text}: %{x} = %{y:.3f}<extra></extra>",
                **clickable(["source"], [[str(source)] for _ in m.index])))
        fig.update_layout(barmode="group")
        fig.update_yaxes(title_text="mean over queries", range=[0, 1.05])
        deltas = ", ".join(f"{k} {v:+.1f}%" for k, v in self.deltas().items())
        twin = "" if self.twin_share is None else f"; {self.compare[1]} twin first in {self.twin_share:.0%}"
        return base_layout(fig, f"Source bias ({self.compare[0]} vs {self.compare[1]})", f"relative Delta {deltas}{twin}")


def source_bias(
    space: Space,
    source_column: str,
    queries: Mapping[Any, Any] | Sequence[tuple[Any, Any]],
    k: int = 10,
    *,
    compare: tuple[str, str] | None = None,
    pair_column: str | None = None,
    method: str | None = None,
    **params: Any,
) -> SourceBiasResult:
    """Per-source R@k and NDCG@k on the mixed ranking, and their relative Delta.

    Xu et al., "Invisible Relevance Bias: Text-Image Retrieval Models Prefer AI-Generated
    Images" (SIGIR 2024). Every query ranks the whole (mixed) gallery; for each source ``s``
    only the relevant items of that source count as relevant::

        R@k_s    = |top-k ∩ relevant_s| / |relevant_s|
        NDCG@k_s = sum_{i<=k} [item_i in relevant_s] / log2(i+1) / IDCG
        Delta    = 2 (M_a - M_b) / (M_a + M_b) * 100       (negative: the model favours b)

    With ``pair_column`` (items sharing a value are twins, e.g. a real photo and its
    generated copy), it also reports the share of queries where b's twin outranks a's
    (averaged over each query's relevant twin pairs).

    Parameters
    ----------
    space
        The :class:`~cirscope.Space`.
    source_column
        The column naming each image's source (e.g. real / generated), or one label per image.
    queries
        ``{query: relevant}`` or ``[(query, relevant), ...]``: a text or
        :class:`~cirscope.ComposedQuery` and its relevant images as ``{column: value}``,
        a mask or rows.
    k
        Cut-off (default 10).
    compare
        ``(a, b)`` sources of the Delta; default ``("real", "generated")`` when present,
        else the column's first two values in sorted order.
    pair_column
        Column whose equal values mark twins.
    method, **params
        How composed queries become vectors.

    Returns
    -------
    SourceBiasResult
        ``.to_frame()``, ``.means()``, ``.deltas()``, ``.twin_share``, ``.figure()``.

    Examples
    --------
    The shapes world has one source; pretend every other image was generated:

    >>> source = np.where(np.arange(len(space)) % 2 == 0, "real", "generated")
    >>> res = cs.diagnostics.source_bias(space, source, {"a star": {"shape": "star"}}, k=10)
    >>> res.compare, sorted(res.deltas())
    (('real', 'generated'), ['NDCG@10', 'R@10'])
    """
    space = check_space(space)
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    k = int(k)
    sources, source_name = labels_of(space, source_column)
    values = sorted(set(sources.tolist()))
    if len(values) < 2:
        raise ValueError(f"Column {source_name!r} has one source only ({values}); source bias needs two")
    if compare is None:
        compare = ("real", "generated") if {"real", "generated"} <= set(values) else (values[0], values[1])
    compare = (str(compare[0]), str(compare[1]))
    for c in compare:
        if c not in values:
            raise ValueError(f"Source {c!r} is not in column {source_name!r}; its values are {values}")
    items = list(queries.items()) if isinstance(queries, Mapping) else [tuple(q) for q in queries]
    if not items:
        raise ValueError("No queries given: pass {query: relevant selector}")
    resolved = resolve_queries(space, [q for q, _ in items], method, **params)
    pairs = labels_of(space, pair_column)[0] if pair_column is not None else None
    records, twin_shares = [], []
    top: dict[str, np.ndarray] = {}
    relevant_of: dict[str, np.ndarray] = {}
    for query, (_, selector) in zip(resolved, items, strict=True):
        relevant = selector_rows(space, selector, f"relevant set of {query.name!r}")
        if relevant.size == 0:
            raise ValueError(f"The query {query.name!r} has no relevant images: check its selector {selector!r}")
        ranked = ranking(space, query, None)
        top[query.name] = ranked[:k]
        relevant_of[query.name] = relevant
        for source in values:
            rel_s = relevant[sources[relevant] == source]
            if rel_s.size == 0:
                continue
            records.append({"query": query.name, "source": source, "metric": f"R@{k}",
                            "value": recall_share_at_k(ranked, rel_s, k)})
            records.append({"query": query.name, "source": source, "metric": f"NDCG@{k}",
                            "value": ndcg_at_k(ranked, rel_s, k)})
        if pairs is not None:
            share = _twin_share(ranked, relevant, sources, pairs, compare)
            if share is not None:
                twin_shares.append(share)
    per_query = pd.DataFrame(records)
    missing = [c for c in compare if c not in set(per_query["source"])]
    if missing:
        raise ValueError(f"No query has relevant images of source {missing}: the Delta needs both")
    twin = float(np.mean(twin_shares)) if twin_shares else None
    return SourceBiasResult(k, source_name, compare, per_query, twin, top, relevant_of, sources)


def _twin_share(ranked: np.ndarray, relevant: np.ndarray, sources: np.ndarray, pairs: np.ndarray,
                compare: tuple[str, str]) -> float | None:
    """Share of the query's relevant twin pairs (one ``a``, one ``b``) where ``b`` ranks above ``a``."""
    position = np.full(sources.size, sources.size, dtype=np.int64)  # unranked rows (a left-out reference) last
    position[ranked] = np.arange(ranked.size)
    a, b = compare
    wins = []
    groups: dict[str, dict[str, int]] = {}
    for r in relevant:
        groups.setdefault(str(pairs[r]), {})[str(sources[r])] = int(r)
    for members in groups.values():
        if a in members and b in members:
            wins.append(position[members[b]] < position[members[a]])
    return float(np.mean(wins)) if wins else None

"""Hubness of the k-nearest-neighbour graph (N_k, k-skewness, hubs, antihubs, Robin Hood index)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

import cirscope.diagnostics._guides as _guides
from cirscope._core.arrays import top_k
from cirscope._core.text import plotly_texts
from cirscope.diagnostics._common import check_space, default_texts, progress_bar
from cirscope.diagnostics._reading import BASELINE_COLUMNS, floor_row, random_graph_hubness
from cirscope.diagnostics._result import DiagnosticResult, base_layout, clickable

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.space._space import Space

__all__ = ["MITIGATIONS", "HubnessResult", "hubness", "hubness_stats", "k_occurrence", "robin_hood"]

MITIGATIONS = ("inverted_softmax", "csls")
_CHUNK = 4096  # the most query rows scored at once
_CELLS = 2**24  # and at most this many scores (128 MB of float64) per block


def k_occurrence(neighbors: np.ndarray, n_items: int) -> np.ndarray:
    """``N_k(x)``: how many queries list item ``x`` among their neighbours.

    Radovanović, Nanopoulos & Ivanović, "Hubs in Space" (JMLR 2010).

    Examples
    --------
    >>> k_occurrence(np.array([[1, 2], [0, 2], [0, 1], [0, 2]]), 4).tolist()
    [3, 2, 3, 0]
    """
    return np.bincount(np.asarray(neighbors, dtype=np.int64).ravel(), minlength=n_items)[:n_items]


def robin_hood(n_k: np.ndarray) -> float:
    """Robin Hood index ``0.5 * sum |N_k - mean(N_k)| / sum N_k``: the share of occurrences
    that would have to move to make every ``N_k`` equal (Feldbauer et al., 2018).

    Examples
    --------
    >>> robin_hood(np.array([3, 1]))  # 0.5 * (1 + 1) / 4
    0.25
    """
    n_k = np.asarray(n_k, dtype=np.float64)
    total = n_k.sum()
    return float(0.5 * np.abs(n_k - n_k.mean()).sum() / total) if total > 0 else 0.0


def hubness_stats(n_k: np.ndarray, k: int, n_queries: int) -> dict[str, float]:
    """The hubness measures of a k-occurrence vector (scikit-hubness definitions).

    ``k_skewness`` = ``scipy.stats.skew(N_k)`` (biased: m3 / m2^1.5); hubs have
    ``N_k >= 2k``; ``hub_occurrence`` = ``sum_hubs N_k / (k * n_queries)``;
    ``antihub_share`` = share of items with ``N_k = 0``; ``robin_hood`` (see :func:`robin_hood`).

    Examples
    --------
    >>> s = hubness_stats(np.array([4, 0, 1, 1]), k=2, n_queries=3)
    >>> s["hubs"], s["hub_occurrence"], s["antihub_share"]
    (1, 0.6666666666666666, 0.25)
    """
    from scipy.stats import skew as scipy_skew

    n_k = np.asarray(n_k, dtype=np.float64)
    hubs = n_k >= 2 * k
    constant = n_k.size < 2 or np.all(n_k == n_k[0])
    return {
        "k_skewness": 0.0 if constant else float(scipy_skew(n_k)),
        "hubs": int(hubs.sum()),
        "hub_occurrence": float(n_k[hubs].sum() / (k * n_queries)) if n_queries else 0.0,
        "antihub_share": float(np.mean(n_k == 0)),
        "robin_hood": robin_hood(n_k),
        "max_n_k": int(n_k.max()) if n_k.size else 0,
    }


def _topk(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the ``k`` largest scores of each row, best first."""
    return top_k(scores, k)


def _mean_topk(sims: np.ndarray, k: int) -> np.ndarray:
    k = min(k, sims.shape[1])
    return np.mean(np.partition(sims, sims.shape[1] - k, axis=1)[:, -k:], axis=1)


def _chunk(n_columns: int) -> int:
    return max(1, min(_CHUNK, _CELLS // max(n_columns, 1)))


def _column_logsumexp(bank: np.ndarray, gallery: np.ndarray, beta: float, self_pairs: bool) -> np.ndarray:
    """``log sum_{q' in bank} exp(beta * s(q', g))`` for every gallery item (chunked, stable)."""
    chunk = _chunk(len(gallery))
    out = np.full(len(gallery), -np.inf)
    for start in range(0, len(bank), chunk):
        s = beta * (bank[start:start + chunk] @ gallery.T)
        if self_pairs:
            idx = np.arange(start, min(start + chunk, len(bank)))
            s[idx - start, idx] = -np.inf
        out = np.logaddexp(out, np.logaddexp.reduce(s, axis=0))
    return out


def _neighbors(queries: np.ndarray, gallery: np.ndarray, k: int, self_pairs: bool, method: str,
               bank: np.ndarray, beta: float, csls_k: int, progress: bool) -> np.ndarray:
    """The k nearest gallery items of every query under plain cosine or a hubness reduction."""
    shift = None
    chunk = _chunk(max(len(gallery), len(bank)))
    r_q = r_g = None
    if method == "inverted_softmax":
        shift = _column_logsumexp(bank, gallery, beta, self_pairs and bank is queries)
    elif method == "csls":
        r_g = np.empty(len(gallery))
        for start in range(0, len(gallery), chunk):
            s = gallery[start:start + chunk] @ bank.T
            if self_pairs and bank is queries:
                idx = np.arange(start, min(start + chunk, len(gallery)))
                s[idx - start, idx] = -np.inf
            r_g[start:start + chunk] = _mean_topk(s, csls_k)
        r_q = np.empty(len(queries))
    out = np.empty((len(queries), k), dtype=np.int64)
    starts = range(0, len(queries), chunk)
    for start in progress_bar(starts, len(starts), f"hubness ({method})", progress and len(queries) > 4 * chunk):
        s = queries[start:start + chunk] @ gallery.T
        if self_pairs:
            idx = np.arange(start, min(start + chunk, len(queries)))
            s[idx - start, idx] = -np.inf
        if method == "inverted_softmax":
            s = beta * s - shift[None, :]
        elif method == "csls":
            rq = _mean_topk(s, csls_k)
            r_q[start:start + chunk] = rq
            s = 2.0 * s - rq[:, None] - r_g[None, :]
        out[start:start + chunk] = _topk(s, k)
    return out


@dataclass(frozen=True, repr=False, eq=False)
class HubnessResult(DiagnosticResult):
    """The result of :func:`hubness`.

    Attributes
    ----------
    k : int
    queries : str
        ``"images"``, ``"texts"`` or ``"custom"``.
    query_labels : list of str
        What each query is (texts, or image ids).
    n_k : dict of str to numpy.ndarray
        ``N_k`` of every gallery item, per method (``"none"`` and any mitigation).
    neighbors : dict of str to numpy.ndarray
        ``(n_queries, k)`` neighbour rows of every query, per method.
    """

    name = "hubness"
    title = "Hubness"
    GUIDE = _guides.HUBNESS

    def sentence(self) -> str:
        """The result in one plain sentence."""
        return _guides.hubness_sentence(self.summary(), self.baseline)

    k: int
    queries: str
    query_labels: list[str]
    query_rows: np.ndarray | None
    n_k: dict[str, np.ndarray]
    neighbors: dict[str, np.ndarray]
    _ids: np.ndarray
    params: dict[str, Any]

    @cached_property
    def baseline(self) -> pd.DataFrame:
        """k-skewness, hubs, hub occurrence, antihub share and Robin Hood of 200 random k-NN graphs of
        the same size (seeded; see :func:`~cirscope.diagnostics._reading.random_graph_hubness`)."""
        n_q, n = len(self.query_labels), len(self._ids)
        draws = random_graph_hubness(n, n_q, self.k, 200, hubness_stats)
        stats = hubness_stats(self.n_k["none"], self.k, n_q)
        rows = [floor_row(q, stats[q], draws[q], f"random {self.k}-NN graphs")
                for q in ("k_skewness", "hubs", "hub_occurrence", "antihub_share", "robin_hood")]
        return pd.DataFrame(rows, columns=BASELINE_COLUMNS)

    @property
    def methods(self) -> list[str]:
        return list(self.n_k)

    def to_frame(self) -> pd.DataFrame:
        """One row per method (``none`` = plain cosine, then mitigations): the hubness measures, and the 95th
        percentile of k-skewness, hubs and Robin Hood over random k-NN graphs of the same size."""
        n_q = len(self.query_labels)
        frame = pd.DataFrame([{"method": m, "k": self.k, "queries": self.queries, "n_queries": n_q,
                               **hubness_stats(v, self.k, n_q)} for m, v in self.n_k.items()])
        floor = self.baseline.set_index("quantity")["random_p95"]  # the same random graph for every method
        for q in ("k_skewness", "hubs", "robin_hood"):
            frame[f"{q}_random_p95"] = float(floor[q])
        return frame

    def items(self, method: str = "none") -> pd.DataFrame:
        """One row per gallery item: ``row``, ``id``, ``n_k``, ``hub``, ``antihub``, sorted by ``n_k``."""
        n_k = self._method(method)
        df = pd.DataFrame({"row": np.arange(n_k.size), "id": self._ids, "n_k": n_k,
                           "hub": n_k >= 2 * self.k, "antihub": n_k == 0})
        return df.sort_values(["n_k", "row"], ascending=[False, True], kind="stable").reset_index(drop=True)

    def hubs(self, method: str = "none") -> pd.DataFrame:
        """The hubs (``N_k >= 2k``), most frequent first."""
        df = self.items(method)
        return df[df["hub"]].reset_index(drop=True)

    def summary(self) -> dict[str, Any]:
        n_q = len(self.query_labels)
        stats = {m: hubness_stats(v, self.k, n_q) for m, v in self.n_k.items()}
        out: dict[str, Any] = {"k": self.k, "queries": self.queries,
                               **{c: stats["none"][c] for c in ("k_skewness", "hubs", "hub_occurrence",
                                                                "antihub_share", "robin_hood")}}
        for m in self.methods[1:]:
            out[f"k_skewness ({m})"] = stats[m]["k_skewness"]
            out[f"robin_hood ({m})"] = stats[m]["robin_hood"]
        return out

    def _method(self, method: str) -> np.ndarray:
        if method not in self.n_k:
            raise KeyError(f"No method {method!r} in this result; it has {self.methods}")
        return self.n_k[method]

    def rows_for(self, method: str = "none", n_k: int | None = None, hub: int | None = None,
                 kind: str | None = None) -> np.ndarray:
        """Rows behind a number.

        ``hub=row``: that item, then the query images that list it (image queries);
        ``n_k=v``: the items with exactly that ``N_k``; ``kind="hubs"`` or ``"antihubs"``.
        """
        counts = self._method(method)
        if hub is not None:
            hub = int(hub)
            out = [hub]
            if self.query_rows is not None:
                hits = np.flatnonzero((self.neighbors[method] == hub).any(axis=1))
                out += [int(self.query_rows[i]) for i in hits]
            return np.asarray(out, dtype=np.int64)
        if n_k is not None:
            return np.flatnonzero(counts == int(n_k))
        if kind == "hubs":
            rows = np.flatnonzero(counts >= 2 * self.k)
            return rows[np.argsort(-counts[rows], kind="stable")]
        if kind == "antihubs":
            return np.flatnonzero(counts == 0)
        raise TypeError("Pass hub=row, n_k=value or kind='hubs'/'antihubs'")

    def figure(self) -> Any:
        """Left: the distribution of N_k (per method); right: the top hubs."""
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        fig = make_subplots(rows=1, cols=2, column_widths=[0.6, 0.4], horizontal_spacing=0.1,
                            subplot_titles=(f"How many items have each N_{self.k}", "Most frequent neighbours"))
        colors = {"none": "#4C78A8", "inverted_softmax": "#F58518", "csls": "#54A24B"}
        for m, counts in self.n_k.items():
            values, freq = np.unique(counts, return_counts=True)
            fig.add_trace(go.Bar(
                x=values, y=freq, name="cosine" if m == "none" else m, marker_color=colors.get(m),
                hovertemplate="N_k = %{x}: %{y} items<extra>" + m + "</extra>",
                **clickable(["method", "n_k"], [[m, int(v)] for v in values])), row=1, col=1)
        top = self.items("none").head(20)
        fig.add_trace(go.Bar(
            x=plotly_texts(top["id"]), y=top["n_k"], name="most frequent (cosine)", marker_color="#E45756",
            hovertemplate="%{x}: N_k = %{y}<extra></extra>",
            **clickable(["method", "hub"], [["none", int(r)] for r in top["row"]])), row=1, col=2)
        fig.add_vline(x=2 * self.k - 0.5, line_dash="dot", line_color="#E45756", row=1, col=1,
                      annotation_text="hub: N_k ≥ 2k")
        fig.update_layout(barmode="group")
        fig.update_xaxes(title_text=f"N_{self.k}", row=1, col=1)
        fig.update_yaxes(type="log", dtick=1, title_text="items", row=1, col=1)
        s = self.summary()
        return base_layout(fig, f"Hubness ({self.queries} → images, k={self.k})", f"skewness {s['k_skewness']:.2f}, "
                                f"hubs {s['hubs']}, antihubs {s['antihub_share']:.0%}, "
                                f"Robin Hood {s['robin_hood']:.2f}", height=460)


def hubness(
    space: Space,
    k: int = 10,
    queries: str | Sequence[str] | np.ndarray = "images",
    *,
    mitigation: str | Sequence[str] | None = None,
    beta: float = 20.0,
    query_bank: Sequence[str] | np.ndarray | None = None,
    csls_k: int = 10,
    progress: bool = True,
) -> HubnessResult:
    """Hubness of the k-nearest-neighbour relation from queries to the gallery images.

    Radovanović, Nanopoulos & Ivanović, "Hubs in Space" (JMLR 2010); measures as in
    scikit-hubness (Feldbauer et al., 2020)::

        N_k(x)          = number of queries with gallery item x among their k nearest (self excluded)
        k-skewness      = scipy.stats.skew(N_k)              (m3 / m2^1.5)
        hubs            = items with N_k >= 2k
        hub occurrence  = sum_hubs N_k / (k * n_queries)
        antihub share   = share of items with N_k = 0
        Robin Hood      = 0.5 * sum |N_k - mean N_k| / sum N_k

    With ``queries="texts"`` it measures cross-modal hubness (one image near many prompts).

    Optional mitigations (never the default), each reported before/after:

    * ``"inverted_softmax"`` (Smith et al., ICLR 2017):
      ``s'(q, g) = exp(beta s(q, g)) / sum_{q' in bank} exp(beta s(q', g))``;
    * ``"csls"`` (Conneau et al., ICLR 2018): ``2 cos(q, g) - r(q) - r(g)``, ``r`` the mean
      cosine to the ``csls_k`` nearest of the other set.

    Parameters
    ----------
    space
        The :class:`~cirscope.Space`.
    k
        Neighbourhood size (default 10).
    queries
        ``"images"`` (every gallery image, itself excluded), ``"texts"`` (the gallery's
        captions, else prompts of its metadata), a list of texts or an ``(n, D)`` array.
    mitigation
        ``None``, ``"inverted_softmax"``, ``"csls"``, a list of them or ``"all"``.
    beta
        Inverse temperature of the inverted softmax (default 20).
    query_bank
        The bank ``q'`` of the mitigations (texts or vectors; default: the queries).
    csls_k
        Neighbourhood of CSLS's ``r`` (default 10).
    progress
        Show a progress bar on large galleries.

    Returns
    -------
    HubnessResult
        ``.to_frame()`` (one row per method), ``.items()``, ``.hubs()``, ``.figure()``,
        ``.rows_for(hub=row)``.

    Examples
    --------
    >>> res = cs.diagnostics.hubness(space, k=10, queries="texts", mitigation="all", progress=False)
    >>> res.to_frame()["method"].tolist()
    ['none', 'inverted_softmax', 'csls']
    >>> res.to_frame().columns.tolist()[:6]
    ['method', 'k', 'queries', 'n_queries', 'k_skewness', 'hubs']
    """
    space = check_space(space)
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    k = int(k)
    # float64 unit rows: N_k follows the exact cosine order (float32 scores are off by ~1e-7)
    gallery = _unit64(space.image_embeddings)
    query_rows: np.ndarray | None = None
    if isinstance(queries, str) and queries == "images":
        kind = "images"
        q = gallery
        labels = [str(i) for i in space.gallery.ids]
        query_rows = np.arange(len(gallery))
        self_pairs = True
    else:
        kind = "texts" if isinstance(queries, str) else "custom"
        if isinstance(queries, str) and queries != "texts":
            raise ValueError(f"queries must be 'images', 'texts', a list of texts or an array; got {queries!r}")
        q, labels = _query_vectors(space, default_texts(space) if kind == "texts" else queries)
        self_pairs = False
    limit = len(gallery) - (1 if self_pairs else 0)
    if k > limit:
        raise ValueError(f"k={k} is larger than the {limit} gallery items a query can have as neighbours")
    if mitigation is None:
        methods: list[str] = []
    elif mitigation == "all":
        methods = list(MITIGATIONS)
    else:
        methods = [mitigation] if isinstance(mitigation, str) else list(mitigation)
    bad = sorted(set(methods) - set(MITIGATIONS))
    if bad:
        raise ValueError(f"Unknown mitigation {bad}; choose from {list(MITIGATIONS)} or 'all'")
    bank = q if query_bank is None else _query_vectors(space, query_bank)[0]
    n_k: dict[str, np.ndarray] = {}
    neighbors: dict[str, np.ndarray] = {}
    for method in ["none", *methods]:
        nb = _neighbors(q, gallery, k, self_pairs, method, bank, float(beta), int(csls_k), progress)
        neighbors[method] = nb
        n_k[method] = k_occurrence(nb, len(gallery))
    return HubnessResult(k, kind, labels, query_rows, n_k, neighbors, space.gallery.ids,
                         {"beta": beta, "csls_k": csls_k, "bank": "queries" if query_bank is None else "custom"})


def _query_vectors(space: Space, queries: Any) -> tuple[np.ndarray, list[str]]:
    if isinstance(queries, np.ndarray) and queries.ndim == 2 and queries.dtype.kind == "f":
        if queries.shape[1] != space.dim:
            raise ValueError(f"Query vectors must have {space.dim} dimensions, got {queries.shape[1]}")
        return _unit64(queries), [f"vector {i}" for i in range(len(queries))]
    texts = [str(t) for t in queries]
    if not texts:
        raise ValueError("No query texts given")
    return _unit64(space.encode_text(texts)), texts


def _unit64(x: Any) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if not np.all(np.isfinite(x)) or np.any(norms == 0):
        raise ValueError("Hubness needs finite, non-zero vectors")
    return x / norms

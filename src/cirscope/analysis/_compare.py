"""Two embedding models compared on the same gallery: whose neighbourhoods changed, and how the diagnostics differ.

:func:`compare` finds every image's ``k`` nearest other images in each space (exact cosine,
in blocks of matrix products), and measures per image how many neighbours the two spaces
share (``|N_a ∩ N_b| / k``) and their Jaccard index. The images whose neighbourhoods changed
most are the ones to look at; a few health numbers of each space (hubness from the same
neighbour lists, near-duplicates, the modality gap, optionally a query's skew) sit side by side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cirscope._core.arrays import top_k
from cirscope.diagnostics._common import check_space, progress_bar
from cirscope.diagnostics._result import (
    DiagnosticResult,
    base_layout,
    histogram_trace,
    rows_in_bin,
)

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.space._space import Space

__all__ = ["CompareResult", "check_same_gallery", "compare", "exact_knn", "neighbor_overlap"]

_CELLS = 2**24  # scores per block (64 MB of float32)


def check_same_gallery(space_a: Space, space_b: Space) -> None:
    """Raise ``ValueError`` unless both spaces hold the same gallery (same images, same order).

    Examples
    --------
    >>> check_same_gallery(space, space)
    >>> other = cs.Space.from_embeddings(cs.datasets.shapes(10), np.eye(10))
    >>> check_same_gallery(space, other)
    Traceback (most recent call last):
    ...
    ValueError: compare needs two spaces of the same gallery: the first has 120 images, the second 10; embed one gallery with both models, e.g. cs.Space(space_a.gallery, other_model)
    """
    ids_a, ids_b = np.asarray(space_a.gallery.ids), np.asarray(space_b.gallery.ids)
    fix = "embed one gallery with both models, e.g. cs.Space(space_a.gallery, other_model)"
    if ids_a.shape != ids_b.shape:
        raise ValueError(
            f"compare needs two spaces of the same gallery: the first has {ids_a.size} images, the second "
            f"{ids_b.size}; {fix}"
        )
    differ = np.flatnonzero(ids_a.astype(str) != ids_b.astype(str))
    if differ.size:
        first = int(differ[0])
        raise ValueError(
            f"compare needs two spaces of the same gallery in the same order: {differ.size} ids differ (first at "
            f"row {first}: {str(ids_a[first])!r} vs {str(ids_b[first])!r}); {fix}"
        )


def exact_knn(
    embeddings: Any, k: int, *, backend: str = "auto", progress: bool = False, desc: str = "neighbours"
) -> tuple[np.ndarray, np.ndarray]:
    """Every row's ``k`` nearest *other* rows by cosine (exact), best first: ``(rows, scores)``.

    ``backend="faiss"`` searches a ``faiss.IndexFlatIP`` (exact; 2-4x faster than numpy on
    the project's machines, ``benchmarks/bench_compare.py``), in blocks of rows;
    ``"numpy"`` scores blocks of rows against all rows with one matrix product each (at
    most ``2**24`` scores per block) and cuts them with :func:`cirscope._core.arrays.top_k`;
    ``"auto"``: faiss when it imports, else numpy. Equal scores may come in another order.

    Examples
    --------
    >>> emb = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    >>> rows, scores = exact_knn(emb, 1)
    >>> rows.ravel().tolist(), [round(float(v), 2) for v in scores.ravel()]
    ([1, 0, 1], [0.8, 0.8, 0.6])
    """
    emb = np.asarray(embeddings, dtype=np.float32)
    n = len(emb)
    if not 1 <= k < n:
        raise ValueError(f"k must be between 1 and {n - 1} (the gallery has {n} images), got {k}")
    if backend not in ("auto", "faiss", "numpy"):
        raise ValueError(f"backend must be 'auto', 'faiss' or 'numpy', got {backend!r}")
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    emb = np.ascontiguousarray(emb / np.maximum(norms, 1e-12), dtype=np.float32)
    if backend != "numpy":
        try:
            import faiss
        except ImportError:
            if backend == "faiss":
                raise ImportError("backend='faiss' needs faiss: pip install faiss-cpu") from None
        else:
            return _faiss_knn(faiss, emb, k, progress, desc)
    block = max(1, min(n, _CELLS // n))
    rows = np.empty((n, k), dtype=np.int64)
    scores = np.empty((n, k), dtype=np.float32)
    starts = range(0, n, block)
    for start in progress_bar(starts, len(starts), desc, progress and n > 20_000):
        stop = min(n, start + block)
        s = emb[start:stop] @ emb.T
        s[np.arange(stop - start), np.arange(start, stop)] = -np.inf  # not its own neighbour
        rows[start:stop], scores[start:stop] = top_k(s, k, with_scores=True)
    return rows, scores


def _faiss_knn(faiss: Any, emb: np.ndarray, k: int, progress: bool, desc: str) -> tuple[np.ndarray, np.ndarray]:
    """:func:`exact_knn` with a flat inner-product faiss index: ``k + 1`` found per row, itself dropped."""
    n = len(emb)
    index = faiss.IndexFlatIP(emb.shape[1])
    index.add(emb)
    rows = np.empty((n, k), dtype=np.int64)
    scores = np.empty((n, k), dtype=np.float32)
    block = 8192
    starts = range(0, n, block)
    for start in progress_bar(starts, len(starts), desc, progress and n > 20_000):
        stop = min(n, start + block)
        sc, ind = index.search(emb[start:stop], k + 1)
        own = ind == np.arange(start, stop)[:, None]
        # drop the row itself; when ties hide it past k + 1, drop the last instead
        drop = np.where(own.any(axis=1), own.argmax(axis=1), k)
        keep = np.ones_like(own)
        keep[np.arange(stop - start), drop] = False
        rows[start:stop] = ind[keep].reshape(-1, k)
        scores[start:stop] = sc[keep].reshape(-1, k)
    return rows, scores


def neighbor_overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``|A_i ∩ B_i|`` for every row of two ``(n, k)`` neighbour lists (rows hold distinct values).

    Vectorised: both lists side by side, sorted per row; a value in both appears twice in a row.

    Examples
    --------
    >>> neighbor_overlap(np.array([[1, 2, 3], [0, 2, 3]]), np.array([[3, 1, 2], [4, 5, 6]])).tolist()
    [3, 0]
    """
    both = np.sort(np.concatenate([a, b], axis=1), axis=1)
    return (np.diff(both, axis=1) == 0).sum(axis=1)


def _diagnostics(space: Space, rows: np.ndarray, scores: np.ndarray, k: int, query: Any, attribute: str | None,
                 skew_k: int) -> dict[str, float]:  # fmt: skip
    """A few health numbers of one space, the hubness ones from the neighbour lists already found."""
    from cirscope.diagnostics._duplicates import default_duplicate_threshold
    from cirscope.diagnostics._hubness import hubness_stats, k_occurrence

    n = len(rows)
    hub = hubness_stats(k_occurrence(rows, n), k, n)
    nearest = np.clip(1.0 - scores[:, 0].astype(np.float64), 0.0, 2.0)
    threshold = default_duplicate_threshold(space, nearest)
    out = {
        f"k_skewness@{k}": hub["k_skewness"],
        f"hubs@{k}": float(hub["hubs"]),
        f"antihub_share@{k}": hub["antihub_share"],
        f"robin_hood@{k}": hub["robin_hood"],
        "near_duplicate_images": float((nearest < threshold).sum()),
        "duplicate_threshold": threshold,
        "mean_nn_cosine": float(scores[:, 0].mean()),
        "modality_gap": np.nan,
    }
    if space.embedder is not None:
        from cirscope.diagnostics._gap import modality_gap

        out["modality_gap"] = float(modality_gap(space).gap)
    if query is not None and attribute is not None:
        from cirscope.diagnostics._skew import skew

        out[f"max_skew@{skew_k}"] = out[f"min_skew@{skew_k}"] = np.nan
        if space.embedder is not None or not _needs_model(query):
            res = skew(space, query, attribute, k=skew_k).summary()
            out[f"max_skew@{skew_k}"] = float(res[f"MaxSkew@{skew_k}"])
            out[f"min_skew@{skew_k}"] = float(res[f"MinSkew@{skew_k}"])
    return out


def _needs_model(query: Any) -> bool:
    """Whether a query must be encoded by a model (a text or a composed query)."""
    from cirscope.query._composed import ComposedQuery

    return isinstance(query, (str, ComposedQuery)) or (
        isinstance(query, (list, tuple)) and any(isinstance(q, (str, ComposedQuery)) for q in query)
    )


@dataclass(frozen=True, repr=False, eq=False)
class CompareResult(DiagnosticResult):
    """Two spaces of one gallery compared (see :func:`compare`).

    Attributes
    ----------
    k : int
        Neighbourhood size.
    names : tuple of str
        The two spaces' names (their models by default).
    neighbors_a, neighbors_b : (N, k) int64
        Every image's nearest other images in each space, best first.
    shared : (N,) int64
        ``|N_a ∩ N_b|`` per image; ``overlap = shared / k``, ``jaccard = shared / (2k - shared)``.
    diagnostics : dict
        ``{name: {quantity: value}}`` for both spaces.
    """

    name = "compare"
    title = "Two models compared"

    k: int
    names: tuple[str, str]
    ids: np.ndarray
    neighbors_a: np.ndarray
    neighbors_b: np.ndarray
    shared: np.ndarray
    diagnostics: dict[str, dict[str, float]] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.shared.size)

    @property
    def overlap(self) -> np.ndarray:
        """``|N_a ∩ N_b| / k`` per image (1: the same neighbours in both spaces)."""
        return self.shared / float(self.k)

    @property
    def jaccard(self) -> np.ndarray:
        """``|N_a ∩ N_b| / |N_a ∪ N_b|`` per image."""
        return self.shared / (2.0 * self.k - self.shared)

    def to_frame(self) -> pd.DataFrame:
        """One row per image: ``row``, ``id``, ``shared``, ``overlap``, ``jaccard``.

        Examples
        --------
        >>> cs.compare(space, space, k=5, diagnostics=False).to_frame().columns.tolist()
        ['row', 'id', 'shared', 'overlap', 'jaccard']
        """
        return pd.DataFrame({
            "row": np.arange(len(self)), "id": self.ids, "shared": self.shared,
            "overlap": self.overlap, "jaccard": self.jaccard,
        })  # fmt: skip

    def most_changed(self, n: int = 20) -> pd.DataFrame:
        """The ``n`` images whose neighbourhoods changed most (lowest overlap first, then by row),
        with their neighbours in each space.

        Examples
        --------
        >>> cs.compare(space, space, k=5, diagnostics=False).most_changed(3)["overlap"].tolist()
        [1.0, 1.0, 1.0]
        """
        order = np.lexsort((np.arange(len(self)), self.shared))[: max(0, int(n))]
        frame = self.to_frame().iloc[order].reset_index(drop=True)
        a, b = self.names
        frame[f"neighbors_{a}"] = [r.tolist() for r in self.neighbors_a[order]]
        frame[f"neighbors_{b}"] = [r.tolist() for r in self.neighbors_b[order]]
        return frame

    def changed(self, max_overlap: float = 0.5) -> np.ndarray:
        """Rows whose overlap is at most ``max_overlap`` (ascending rows)."""
        return np.flatnonzero(self.overlap <= max_overlap + 1e-12)

    def diagnostics_frame(self) -> pd.DataFrame:
        """The diagnostics side by side: one row per quantity, one column per space, and their difference."""
        a, b = self.names
        da, db = self.diagnostics.get(a, {}), self.diagnostics.get(b, {})
        keys = list(dict.fromkeys([*da, *db]))
        va = np.array([da.get(q, np.nan) for q in keys], dtype=np.float64)
        vb = np.array([db.get(q, np.nan) for q in keys], dtype=np.float64)
        return pd.DataFrame({"quantity": keys, a: va, b: vb, "difference": vb - va})

    def summary(self) -> dict[str, Any]:
        ov = self.overlap
        return {"k": self.k, "images": len(self), "mean_overlap": float(ov.mean()) if ov.size else np.nan,
                "median_overlap": float(np.median(ov)) if ov.size else np.nan,
                "unchanged_share": float(np.mean(self.shared == self.k)) if ov.size else np.nan,
                "disjoint_share": float(np.mean(self.shared == 0)) if ov.size else np.nan}  # fmt: skip

    def rows_for(self, lo: float | None = None, hi: float | None = None, row: int | None = None) -> np.ndarray:
        """``lo``/``hi``: the images whose overlap lies in that histogram bar; ``row``: that image."""
        if row is not None:
            return np.asarray([int(row)], dtype=np.int64)
        edges = self._edges()
        lo = float(edges[0]) if lo is None else float(lo)
        hi = float(edges[-1]) if hi is None else float(hi)
        return rows_in_bin(self.overlap, lo, hi, last_edge=float(edges[-1]))

    def _edges(self) -> np.ndarray:
        step = 1.0 / self.k
        return np.arange(-step / 2, 1.0 + step, step)  # one bar per possible count of shared neighbours

    def figure(self) -> Any:
        """A histogram of the per-image overlap (one bar per number of shared neighbours)."""
        import plotly.graph_objects as go

        fig = go.Figure()
        fig.add_trace(histogram_trace(self.overlap, self._edges(), "images", "#4C78A8"))
        s = self.summary()
        fig.add_vline(x=s["mean_overlap"], line_dash="dot", line_color="#E45756",
                      annotation_text=f"mean {s['mean_overlap']:.2f}")
        fig.update_xaxes(title_text=f"share of the {self.k} nearest neighbours kept", range=[-0.05, 1.05])
        fig.update_yaxes(title_text="images")
        a, b = self.names
        return base_layout(fig, f"Neighbourhoods: {a} vs {b}",
                           f"{s['unchanged_share']:.0%} of images keep all {self.k} neighbours, "
                           f"{s['disjoint_share']:.0%} keep none", height=420)


def _name(space: Space, fallback: str) -> str:
    model = getattr(space, "model", {}) or {}
    name = str(model.get("model") or fallback)
    return name if name not in ("unknown", "None") else fallback


def compare(
    space_a: Space,
    space_b: Space,
    k: int = 10,
    *,
    names: tuple[str, str] | None = None,
    diagnostics: bool = True,
    query: Any = None,
    attribute: str | None = None,
    skew_k: int = 50,
    progress: bool = True,
) -> CompareResult:
    """Compare two spaces of the same gallery (two models, or two checkpoints of one).

    For every image, its ``k`` nearest other images in each space (exact cosine) and how
    many of them both spaces share: ``overlap = |N_a ∩ N_b| / k`` and
    ``jaccard = |N_a ∩ N_b| / |N_a ∪ N_b|``. The images with the lowest overlap are where
    the models disagree about what looks alike (:meth:`CompareResult.most_changed`).

    With ``diagnostics=True`` a few numbers of each space sit side by side
    (:meth:`CompareResult.diagnostics_frame`): k-skewness, hubs, antihub share and Robin Hood
    index of the same neighbour lists (:func:`cirscope.diagnostics.hubness` definitions),
    the images with a near-duplicate (nearest neighbour closer than
    :func:`~cirscope.diagnostics._duplicates.default_duplicate_threshold`), the mean
    nearest-neighbour cosine, the modality gap, and, given ``query`` and ``attribute``, the
    query's MaxSkew/MinSkew@``skew_k``. The gap, and the skew of a text or composed query,
    need the space's model to encode texts: NaN for a space made without one.

    Parameters
    ----------
    space_a, space_b
        :class:`~cirscope.Space` objects of one gallery (same ids, same order).
    k
        Neighbourhood size.
    names
        What to call the two spaces (default: their model names, else "A" and "B").
    diagnostics
        Compute the side-by-side numbers.
    query, attribute, skew_k
        A query and a metadata column for the skew row (optional).
    progress
        Show progress bars on large galleries.

    Returns
    -------
    CompareResult
        ``.to_frame()``, ``.most_changed(n)``, ``.diagnostics_frame()``, ``.figure()``.

    Examples
    --------
    >>> res = cs.compare(space, space, k=5, diagnostics=False)
    >>> res.summary()["mean_overlap"], res.summary()["unchanged_share"]
    (1.0, 1.0)
    """
    space_a, space_b = check_space(space_a), check_space(space_b)
    check_same_gallery(space_a, space_b)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise ValueError(f"k must be a positive integer, got {k!r}")
    k = int(k)
    if names is None:
        names = (_name(space_a, "A"), _name(space_b, "B"))
        if names[0] == names[1]:
            names = (f"{names[0]} (A)", f"{names[1]} (B)")
    names = (str(names[0]), str(names[1]))
    if names[0] == names[1]:
        raise ValueError(f"the two spaces need different names, got {names}")
    rows_a, scores_a = exact_knn(space_a.image_embeddings, k, progress=progress, desc=f"neighbours in {names[0]}")
    if space_b is space_a:
        rows_b, scores_b = rows_a, scores_a
    else:
        rows_b, scores_b = exact_knn(space_b.image_embeddings, k, progress=progress, desc=f"neighbours in {names[1]}")
    shared = neighbor_overlap(rows_a, rows_b)
    diag: dict[str, dict[str, float]] = {}
    if diagnostics:
        diag[names[0]] = _diagnostics(space_a, rows_a, scores_a, k, query, attribute, skew_k)
        diag[names[1]] = _diagnostics(space_b, rows_b, scores_b, k, query, attribute, skew_k)
    return CompareResult(k, names, np.asarray(space_a.gallery.ids), rows_a, rows_b, shared, diag)

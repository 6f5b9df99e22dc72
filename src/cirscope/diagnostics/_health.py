"""Gallery health: near-duplicates, uniqueness and outliers, from cosine distances between images."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cirscope._core.text import plotly_text
from cirscope.diagnostics._common import check_space
from cirscope.diagnostics._result import (
    DiagnosticResult,
    base_layout,
    clickable,
    histogram_bins,
    histogram_trace,
    rows_in_bin,
)

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.space._space import Space

__all__ = [
    "DuplicatesResult",
    "OutliersResult",
    "UniquenessResult",
    "duplicates",
    "group_pairs",
    "outliers",
    "uniqueness",
    "uniqueness_scores",
]

_MAX_PLOTTED_PAIRS = 100


def _knn_distances(emb: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Cosine distances and rows of every image's ``k`` nearest *other* images (scikit-learn, brute force).

    In float64: scikit-learn computes in the input's precision, and float32 distances are
    off by about 1e-7.
    """
    from sklearn.neighbors import NearestNeighbors

    if len(emb) <= k:
        raise ValueError(f"The gallery has {len(emb)} images; this needs more than k={k}")
    emb = np.asarray(emb, dtype=np.float64)
    nn = NearestNeighbors(n_neighbors=k, metric="cosine", algorithm="brute").fit(emb)
    dist, ind = nn.kneighbors()  # no X: each point's neighbours exclude itself
    return np.clip(dist, 0.0, 2.0), ind


def group_pairs(n: int, neighbors: list[np.ndarray]) -> np.ndarray:
    """Greedy grouping of near-duplicates: the item with the most duplicates (then the lowest
    row) leads a group of itself and its not-yet-grouped duplicates; repeat. ``-1``: no group.

    Examples
    --------
    >>> group_pairs(5, [np.array([1, 2]), np.array([0]), np.array([0]), np.array([]), np.array([])]).tolist()
    [0, 0, 0, -1, -1]
    """
    group = np.full(n, -1, dtype=np.int64)
    sizes = np.array([len(nb) for nb in neighbors])
    next_id = 0
    for i in np.lexsort((np.arange(n), -sizes)):
        if sizes[i] == 0 or group[i] >= 0:
            continue
        members = [int(j) for j in neighbors[i] if group[j] < 0]
        group[[int(i), *members]] = next_id
        next_id += 1
    return group


@dataclass(frozen=True, repr=False, eq=False)
class DuplicatesResult(DiagnosticResult):
    """The result of :func:`duplicates`.

    Attributes
    ----------
    pairs : pandas.DataFrame
        ``row_a < row_b``, ``id_a``, ``id_b``, ``distance`` (cosine), ``group``; closest first.
    group : numpy.ndarray
        The group of every row (``-1``: no duplicate).
    nearest : numpy.ndarray
        Every image's cosine distance to its nearest other image.
    """

    name = "duplicates"
    title = "Near-duplicates"

    threshold: float
    pairs: pd.DataFrame
    group: np.ndarray
    nearest: np.ndarray

    @cached_property
    def edges(self) -> np.ndarray:
        """Bin edges of the nearest-distance histogram (the threshold inside them)."""
        return histogram_bins(np.concatenate([self.nearest, [self.threshold]]), 40)

    def to_frame(self) -> pd.DataFrame:
        """The pairs below the threshold, closest first."""
        return self.pairs.copy()

    def groups(self) -> pd.DataFrame:
        """One row per group: ``group``, ``size``, ``rows``."""
        rows = np.flatnonzero(self.group >= 0)
        if rows.size == 0:
            return pd.DataFrame({"group": [], "size": [], "rows": []})
        df = pd.DataFrame({"group": self.group[rows], "row": rows})
        out = df.groupby("group")["row"].agg(list).reset_index(name="rows")
        out.insert(1, "size", out["rows"].map(len))
        return out

    def summary(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "pairs": len(self.pairs), "groups": int(self.group.max() + 1),
                "images_in_groups": int((self.group >= 0).sum()),
                "median_nearest_distance": float(np.median(self.nearest))}

    def rows_for(self, pair: int | None = None, group: int | None = None, lo: float | None = None,
                 hi: float | None = None) -> np.ndarray:
        """``pair=i``: the two images of the i-th pair; ``group=g``: a group's images;
        ``lo=, hi=``: the images whose nearest-neighbour distance is in ``[lo, hi)``."""
        if pair is not None:
            p = self.pairs.iloc[int(pair)]
            return np.asarray([p["row_a"], p["row_b"]], dtype=np.int64)
        if group is not None:
            return np.flatnonzero(self.group == int(group))
        if lo is not None and hi is not None:
            return rows_in_bin(self.nearest, lo, hi, float(self.edges[-1]))
        raise TypeError("Pass pair=i, group=g, or lo= and hi=")

    def figure(self) -> Any:
        """Left: every image's distance to its nearest neighbour; right: the closest pairs."""
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        fig = make_subplots(rows=1, cols=2, column_widths=[0.55, 0.45], horizontal_spacing=0.1,
                            subplot_titles=("Distance to the nearest other image",
                                            f"Closest pairs (≤ {_MAX_PLOTTED_PAIRS} shown)"))
        fig.add_trace(histogram_trace(self.nearest, self.edges, "images", "#4C78A8"), row=1, col=1)
        fig.add_vline(x=self.threshold, line_dash="dot", line_color="#E45756", row=1, col=1,
                      annotation_text=f"threshold {self.threshold:g}")
        shown = self.pairs.head(_MAX_PLOTTED_PAIRS)
        fig.add_trace(go.Bar(
            x=[plotly_text(f"{a} · {b}") for a, b in zip(shown["id_a"], shown["id_b"], strict=True)], y=shown["distance"],
            name="pairs", marker_color="#E45756", hovertemplate="%{x}<br>distance %{y:.4g}<extra></extra>",
            **clickable(["pair"], [[i] for i in range(len(shown))])), row=1, col=2)
        fig.update_xaxes(title_text="cosine distance", row=1, col=1)
        fig.update_xaxes(showticklabels=len(shown) <= 20, row=1, col=2)
        fig.update_yaxes(title_text="images", row=1, col=1)
        s = self.summary()
        return base_layout(fig, "Near-duplicates", f"below cosine distance {self.threshold:g}: {s['pairs']} pairs in "
                                                   f"{s['groups']} groups", height=460)


#: Default near-duplicate thresholds (cosine distance) of models whose scale differs from CLIP's.
#: The toy model puts images of one description within ~0.009 of each other and images one
#: attribute apart at 0.038 or more (measured on the shapes world), so 0.02 separates them.
MODEL_DUPLICATE_THRESHOLDS: dict[str, float] = {"cirscope-toy": 0.02}
#: The default for CLIP-scale models (0.1-0.25 cosine distance is the common range).
DEFAULT_DUPLICATE_THRESHOLD = 0.2


def default_duplicate_threshold(space: Space) -> float:
    """The near-duplicate threshold for ``space``'s model: 0.2, or a model's own measured scale.

    Examples
    --------
    >>> default_duplicate_threshold(space)  # doctest: +SKIP
    0.02
    """
    name = str(getattr(space, "model", {}).get("model"))
    return MODEL_DUPLICATE_THRESHOLDS.get(name, DEFAULT_DUPLICATE_THRESHOLD)


def duplicates(space: Space, threshold: float | None = None) -> DuplicatesResult:
    """Pairs of images closer than ``threshold`` in cosine distance, grouped greedily.

    A common near-duplicate rule on CLIP embeddings: cosine distance ``1 - cos(x, y)``
    below a threshold (0.2 by default; 0.1-0.25 works for CLIP-scale models). Models that
    map every image with the same description to nearly one point need a far smaller one:
    the toy model shipped with cirscope defaults to 0.02 (see
    :data:`MODEL_DUPLICATE_THRESHOLDS`); for other models read it off the histogram of
    nearest-neighbour distances in :meth:`DuplicatesResult.figure`. Groups: see
    :func:`group_pairs`. Neighbours by :class:`sklearn.neighbors.NearestNeighbors`.

    Parameters
    ----------
    space
        The :class:`~cirscope.Space`.
    threshold
        Cosine distance below which two images are near-duplicates (default:
        :func:`default_duplicate_threshold`, 0.2 for CLIP-scale models).

    Returns
    -------
    DuplicatesResult
        ``.to_frame()`` (pairs), ``.groups()``, ``.figure()``, ``.rows_for(pair=i)``.

    Examples
    --------
    >>> res = cs.diagnostics.duplicates(space)                  # doctest: +SKIP
    >>> res.to_frame().head()                                   # doctest: +SKIP
    """
    from sklearn.neighbors import NearestNeighbors

    space = check_space(space)
    threshold = default_duplicate_threshold(space) if threshold is None else float(threshold)
    if not 0 < threshold <= 2:
        raise ValueError(f"threshold is a cosine distance in (0, 2], got {threshold}")
    emb = np.asarray(space.image_embeddings, dtype=np.float64)  # float32 distances are off by ~1e-7
    if len(emb) < 2:
        raise ValueError("duplicates needs at least two images")
    nn = NearestNeighbors(radius=threshold, metric="cosine", algorithm="brute").fit(emb)
    dist, ind = nn.radius_neighbors(return_distance=True, sort_results=True)
    keep = [(d < threshold) for d in dist]
    neighbors = [i[m] for i, m in zip(ind, keep, strict=True)]
    distances = [np.clip(d[m], 0.0, 2.0) for d, m in zip(dist, keep, strict=True)]
    group = group_pairs(len(emb), neighbors)
    a = np.concatenate([np.full(len(nb), i) for i, nb in enumerate(neighbors)]) if len(emb) else np.empty(0)
    b = np.concatenate(neighbors) if neighbors else np.empty(0)
    d = np.concatenate(distances) if distances else np.empty(0)
    once = a < b
    a, b, d = a[once].astype(np.int64), b[once].astype(np.int64), d[once]
    order = np.lexsort((b, a, d))
    a, b, d = a[order], b[order], d[order]
    ids = space.gallery.ids
    same = group[a] == group[b]
    pairs = pd.DataFrame({"row_a": a, "row_b": b, "id_a": ids[a], "id_b": ids[b], "distance": d,
                          "group": np.where(same, group[a], -1)})
    nearest, _ = _knn_distances(emb, 1)
    return DuplicatesResult(threshold, pairs, group, nearest[:, 0])


@dataclass(frozen=True, repr=False, eq=False)
class OutliersResult(DiagnosticResult):
    """The result of :func:`outliers`."""

    name = "outliers"
    title = "Outliers"

    k: int
    factor: float
    scores: np.ndarray
    cutoff: float
    _ids: np.ndarray

    @cached_property
    def flags(self) -> np.ndarray:
        """Whether each image is an outlier (its score above the cutoff)."""
        return self.scores > self.cutoff

    @cached_property
    def edges(self) -> np.ndarray:
        """Bin edges of the score histogram (the cutoff inside them)."""
        return histogram_bins(np.concatenate([self.scores, [self.cutoff]]), 40)

    def to_frame(self) -> pd.DataFrame:
        """One row per image: ``row``, ``id``, ``score``, ``outlier``; highest score first."""
        df = pd.DataFrame({"row": np.arange(self.scores.size), "id": self._ids, "score": self.scores,
                           "outlier": self.flags})
        return df.sort_values(["score", "row"], ascending=[False, True], kind="stable").reset_index(drop=True)

    def summary(self) -> dict[str, Any]:
        return {"k": self.k, "cutoff": self.cutoff, "outliers": int(self.flags.sum()),
                "outlier_share": float(self.flags.mean()), "max_score": float(self.scores.max())}

    def rows_for(self, outlier: bool | None = None, lo: float | None = None, hi: float | None = None) -> np.ndarray:
        """``outlier=True``: flagged rows, most isolated first; ``lo=, hi=``: rows with a score in ``[lo, hi)``."""
        if lo is not None and hi is not None:
            return rows_in_bin(self.scores, lo, hi, float(self.edges[-1]))
        if outlier is None:
            raise TypeError("Pass outlier=True/False, or lo= and hi=")
        rows = np.flatnonzero(self.flags == bool(outlier))
        return rows[np.argsort(-self.scores[rows], kind="stable")]

    def figure(self) -> Any:
        """The distribution of outlier scores with the Q3 + 1.7 IQR cut-off."""
        import plotly.graph_objects as go

        fig = go.Figure(histogram_trace(self.scores, self.edges, "images", "#4C78A8"))
        fig.add_vline(x=self.cutoff, line_dash="dot", line_color="#E45756",
                      annotation_text=f"Q3 + {self.factor:g} IQR")
        fig.update_xaxes(title_text=f"mean cosine distance to the {self.k} nearest")
        fig.update_yaxes(title_text="images")
        return base_layout(fig, "Outliers", f"{int(self.flags.sum())} images above {self.cutoff:.4g}")


def outliers(space: Space, k: int = 10, factor: float = 1.7) -> OutliersResult:
    """Images far from their neighbours.

    Score = mean cosine distance to the ``k`` nearest other images (default 10); an image
    is an outlier when its score is above ``Q3 + factor * IQR`` of all scores (Tukey's
    fences with the factor 1.7 used by embedding-audit tools).

    Parameters
    ----------
    space
        The :class:`~cirscope.Space`.
    k
        Neighbours averaged (default 10).
    factor
        IQR multiple of the cut-off (default 1.7).

    Returns
    -------
    OutliersResult
        ``.to_frame()`` (row, id, score, outlier), ``.figure()``, ``.rows_for(outlier=True)``.

    Examples
    --------
    >>> res = cs.diagnostics.outliers(space)  # doctest: +SKIP
    >>> res.rows_for(outlier=True)[:5]        # doctest: +SKIP
    """
    space = check_space(space)
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    dist, _ = _knn_distances(np.asarray(space.image_embeddings), int(k))
    scores = dist.mean(axis=1)
    q1, q3 = np.percentile(scores, [25, 75])
    cutoff = float(q3 + float(factor) * (q3 - q1))
    return OutliersResult(int(k), float(factor), scores, cutoff, space.gallery.ids)


def uniqueness_scores(d: np.ndarray) -> np.ndarray:
    """``u = 0.6 d1 + 0.3 d2 + 0.1 d3`` from each row's three nearest distances, divided by its maximum.

    Examples
    --------
    >>> uniqueness_scores(np.array([[0.1, 0.2, 0.3], [0.2, 0.4, 0.6]])).round(4).tolist()
    [0.5, 1.0]
    """
    d = np.sort(np.asarray(d, dtype=np.float64), axis=1)[:, :3]
    raw = d @ np.array([0.6, 0.3, 0.1])
    top = raw.max()
    return raw / top if top > 0 else np.zeros_like(raw)


@dataclass(frozen=True, repr=False, eq=False)
class UniquenessResult(DiagnosticResult):
    """The result of :func:`uniqueness`."""

    name = "uniqueness"
    title = "Uniqueness"

    scores: np.ndarray
    distances: np.ndarray
    _ids: np.ndarray

    @cached_property
    def edges(self) -> np.ndarray:
        """Bin edges of the uniqueness histogram."""
        return histogram_bins(self.scores, 40)

    def to_frame(self) -> pd.DataFrame:
        """One row per image: ``row``, ``id``, ``uniqueness``, ``d1``, ``d2``, ``d3``; least unique first."""
        df = pd.DataFrame({"row": np.arange(self.scores.size), "id": self._ids, "uniqueness": self.scores,
                           "d1": self.distances[:, 0], "d2": self.distances[:, 1], "d3": self.distances[:, 2]})
        return df.sort_values(["uniqueness", "row"], kind="stable").reset_index(drop=True)

    def summary(self) -> dict[str, Any]:
        return {"median": float(np.median(self.scores)), "least": float(self.scores.min()),
                "below_0.1": int((self.scores < 0.1).sum())}

    def rows_for(self, least: int | None = None, most: int | None = None, lo: float | None = None,
                 hi: float | None = None) -> np.ndarray:
        """``least=n`` / ``most=n``: the n least / most unique images; ``lo=, hi=``: a score range."""
        order = np.argsort(self.scores, kind="stable")
        if least is not None:
            return order[: int(least)]
        if most is not None:
            return order[::-1][: int(most)]
        if lo is not None and hi is not None:
            return rows_in_bin(self.scores, lo, hi, float(self.edges[-1]))
        raise TypeError("Pass least=n, most=n, or lo= and hi=")

    def figure(self) -> Any:
        """The distribution of uniqueness."""
        import plotly.graph_objects as go

        fig = go.Figure(histogram_trace(self.scores, self.edges, "images", "#54A24B"))
        fig.update_xaxes(title_text="uniqueness (1 = the most isolated image)")
        fig.update_yaxes(title_text="images")
        return base_layout(fig, "Uniqueness", f"median {np.median(self.scores):.3f}")


def uniqueness(space: Space) -> UniquenessResult:
    """How unique every image is among the gallery.

    A common definition (as in embedding-audit tools such as FiftyOne's
    ``compute_uniqueness``): with ``d1 <= d2 <= d3`` the cosine distances to the three
    nearest other images, ``u = 0.6 d1 + 0.3 d2 + 0.1 d3``, divided by the gallery's
    maximum so the most isolated image has 1.

    Parameters
    ----------
    space
        The :class:`~cirscope.Space` (at least four images).

    Returns
    -------
    UniquenessResult
        ``.to_frame()`` (least unique first), ``.figure()``, ``.rows_for(least=n)``.

    Examples
    --------
    >>> res = cs.diagnostics.uniqueness(space)  # doctest: +SKIP
    >>> res.rows_for(least=10)                  # doctest: +SKIP
    """
    space = check_space(space)
    dist, _ = _knn_distances(np.asarray(space.image_embeddings), 3)
    return UniquenessResult(uniqueness_scores(dist), dist, space.gallery.ids)

"""Near-duplicate images: pairs closer than a cosine distance, grouped greedily."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cirscope._core.text import plotly_text
from cirscope.diagnostics._common import check_space, knn_distances
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
    "DEFAULT_DUPLICATE_THRESHOLD",
    "MODEL_DUPLICATE_THRESHOLDS",
    "DuplicatesResult",
    "default_duplicate_threshold",
    "duplicates",
    "group_pairs",
]

_MAX_PLOTTED_PAIRS = 100


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
    >>> default_duplicate_threshold(space)  # the toy model's own scale
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
    >>> res = cs.diagnostics.duplicates(space)
    >>> res.to_frame().columns.tolist()
    ['row_a', 'row_b', 'id_a', 'id_b', 'distance', 'group']
    >>> bool((res.to_frame()["distance"] < res.threshold).all())
    True
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
    nearest, _ = knn_distances(emb, 1)
    return DuplicatesResult(threshold, pairs, group, nearest[:, 0])

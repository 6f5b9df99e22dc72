"""Near-duplicate images: pairs closer than a cosine distance, grouped greedily.

The default threshold is relative: a pair is a near-duplicate when it is far closer than
images of this space usually are to their nearest neighbour (a quarter of the median
nearest-neighbour distance), and never farther than the model's absolute ceiling (0.2 for
CLIP-scale models). A fixed cosine means nothing for a model whose scale differs: the toy
model puts every image of one description within ~0.005 of each other, and a fixed 0.02
flagged 90% of a 1,000-image shapes world.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

import cirscope.diagnostics._guides as _guides
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
    "HIGH_SHARE",
    "MODEL_DUPLICATE_THRESHOLDS",
    "RELATIVE_THRESHOLD",
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
    GUIDE = _guides.DUPLICATES

    def sentence(self) -> str:
        """The result in one plain sentence."""
        return _guides.duplicates_sentence(self.summary())

    threshold: float
    pairs: pd.DataFrame
    group: np.ndarray
    nearest: np.ndarray
    #: How the threshold was chosen: ``"relative"`` (the default) or ``"given"``.
    threshold_source: str = "given"

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

    @property
    def share(self) -> float:
        """The share of images that have a near-duplicate."""
        return float(np.mean(self.group >= 0)) if self.group.size else 0.0

    def note(self) -> str:
        """A warning when an unusually large share of images is flagged (more than :data:`HIGH_SHARE`),
        with what to do; ``""`` otherwise.

        Examples
        --------
        >>> cs.diagnostics.duplicates(space).note()
        ''
        """
        if self.share <= HIGH_SHARE:
            return ""
        median = float(np.median(self.nearest))
        smaller = RELATIVE_THRESHOLD * median
        advice = (f"pass a smaller threshold (e.g. threshold={smaller:.2g}, {RELATIVE_THRESHOLD:g} x the median "
                  f"nearest-neighbour distance {median:.2g})" if 0 < smaller < self.threshold else
                  "read a smaller threshold off the histogram of nearest-neighbour distances")
        return (f"{self.share:.0%} of the images have a near-duplicate below cosine distance {self.threshold:.3g}: "
                "unusually many. Click a few pairs: if they are not copies, the model does not tell these images "
                f"apart at this threshold; {advice}. If they are copies, the gallery holds many of them.")

    def summary(self) -> dict[str, Any]:
        out = {"threshold": self.threshold, "threshold_source": self.threshold_source, "pairs": len(self.pairs),
               "groups": int(self.group.max() + 1), "images_in_groups": int((self.group >= 0).sum()),
               "share_in_groups": self.share, "median_nearest_distance": float(np.median(self.nearest))}
        note = self.note()
        if note:
            out["note"] = note
        return out

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


#: The largest default threshold (cosine distance) of models whose scale differs from CLIP's.
#: The toy model puts images one attribute apart at 0.038 or more (measured on the shapes
#: world), so no default may reach past 0.02.
MODEL_DUPLICATE_THRESHOLDS: dict[str, float] = {"cirscope-toy": 0.02}
#: The largest default threshold for CLIP-scale models (0.1-0.25 is the common range).
DEFAULT_DUPLICATE_THRESHOLD = 0.2
#: The default threshold is this share of the median nearest-neighbour distance (capped as above).
RELATIVE_THRESHOLD = 0.25
#: Below this the relative default is not lowered: distances of exact copies (float noise, ~1e-7)
#: stay far below it even when most of the gallery is copies and the median distance is 0.
_FLOOR = 1e-4
#: A share of flagged images above which the result warns (:meth:`DuplicatesResult.note`).
HIGH_SHARE = 0.2


def default_duplicate_threshold(space: Space, nearest: np.ndarray | None = None) -> float:
    """The default near-duplicate threshold for ``space``: relative to its own neighbour distances.

    ``min(ceiling, max(1e-4, 0.25 * median nearest-neighbour distance))``, where the ceiling
    is the model's (:data:`MODEL_DUPLICATE_THRESHOLDS`, else 0.2). ``nearest``: every image's
    cosine distance to its nearest other image, when already computed.

    Examples
    --------
    >>> t = default_duplicate_threshold(space)
    >>> 1e-4 <= t <= 0.02  # the toy model's ceiling
    True
    """
    name = str(getattr(space, "model", {}).get("model"))
    ceiling = MODEL_DUPLICATE_THRESHOLDS.get(name, DEFAULT_DUPLICATE_THRESHOLD)
    if nearest is None:
        nearest = knn_distances(np.asarray(space.image_embeddings, dtype=np.float64), 1)[0][:, 0]
    relative = RELATIVE_THRESHOLD * float(np.median(nearest)) if len(nearest) else ceiling
    return float(min(ceiling, max(_FLOOR, relative)))


def duplicates(space: Space, threshold: float | None = None) -> DuplicatesResult:
    """Pairs of images closer than ``threshold`` in cosine distance, grouped greedily.

    A near-duplicate is a pair at cosine distance ``1 - cos(x, y)`` below a threshold. The
    default is relative to the space (:func:`default_duplicate_threshold`): a quarter of the
    median distance of an image to its nearest neighbour, at most 0.2 (CLIP-scale models)
    or the model's own ceiling (0.02 for the toy model). So it flags pairs that are far
    closer than images of this space usually are, whatever the model's scale. When more
    than 20% of the images are flagged the summary says so, with what to do
    (:meth:`DuplicatesResult.note`). Read another threshold off the histogram of
    nearest-neighbour distances in :meth:`DuplicatesResult.figure`. Groups: see
    :func:`group_pairs`. Neighbours by :class:`sklearn.neighbors.NearestNeighbors`.

    Parameters
    ----------
    space
        The :class:`~cirscope.Space`.
    threshold
        Cosine distance below which two images are near-duplicates (default: relative,
        :func:`default_duplicate_threshold`).

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
    emb = np.asarray(space.image_embeddings, dtype=np.float64)  # float32 distances are off by ~1e-7
    if len(emb) < 2:
        raise ValueError("duplicates needs at least two images")
    nearest = knn_distances(emb, 1)[0][:, 0]
    source = "relative" if threshold is None else "given"
    threshold = default_duplicate_threshold(space, nearest) if threshold is None else float(threshold)
    if not 0 < threshold <= 2:
        raise ValueError(f"threshold is a cosine distance in (0, 2], got {threshold}")
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
    return DuplicatesResult(threshold, pairs, group, nearest, source)

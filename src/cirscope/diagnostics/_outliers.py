"""Outliers: images far from their nearest neighbours (Tukey's fences on the mean k-NN distance)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

import cirscope.diagnostics._guides as _guides
from cirscope.diagnostics._common import check_space, knn_distances
from cirscope.diagnostics._result import (
    DiagnosticResult,
    base_layout,
    histogram_bins,
    histogram_trace,
    rows_in_bin,
)

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.space._space import Space

__all__ = [
    "OutliersResult",
    "outliers",
]

@dataclass(frozen=True, repr=False, eq=False)
class OutliersResult(DiagnosticResult):
    """The result of :func:`outliers`."""

    name = "outliers"
    title = "Outliers"
    GUIDE = _guides.OUTLIERS

    def sentence(self) -> str:
        """The result in one plain sentence."""
        return _guides.outliers_sentence(self.summary())

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
    >>> res = cs.diagnostics.outliers(space)
    >>> rows = res.rows_for(outlier=True)  # most isolated first
    >>> len(rows) == res.summary()["outliers"], bool((res.scores[rows] > res.cutoff).all())
    (True, True)
    """
    space = check_space(space)
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    dist, _ = knn_distances(np.asarray(space.image_embeddings), int(k))
    scores = dist.mean(axis=1)
    q1, q3 = np.percentile(scores, [25, 75])
    cutoff = float(q3 + float(factor) * (q3 - q1))
    return OutliersResult(int(k), float(factor), scores, cutoff, space.gallery.ids)

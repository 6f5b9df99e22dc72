"""Uniqueness: how isolated every image is, from its three nearest other images."""

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
    "UniquenessResult",
    "uniqueness",
    "uniqueness_scores",
]

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
    GUIDE = _guides.UNIQUENESS

    def sentence(self) -> str:
        """The result in one plain sentence."""
        return _guides.uniqueness_sentence(self.summary())

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
    >>> res = cs.diagnostics.uniqueness(space)
    >>> least = res.rows_for(least=10)  # the ten least unique images, least first
    >>> len(least), bool(np.all(np.diff(res.scores[least]) >= 0)), float(res.scores.max())
    (10, True, 1.0)
    """
    space = check_space(space)
    dist, _ = knn_distances(np.asarray(space.image_embeddings), 3)
    return UniquenessResult(uniqueness_scores(dist), dist, space.gallery.ids)

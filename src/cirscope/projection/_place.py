"""Putting points on an existing map without refitting it: from known neighbours or by a search.

:func:`place` puts any query vector on a map: the softmax-weighted mean of its nearest gallery
neighbours' coordinates. :func:`place_rows` does the same from neighbours already found (a
search that just ranked the gallery, or the sample points nearest to a point left out of a
sampled UMAP fit, :func:`cirscope.projection._sample.place_rest`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from cirscope._core.arrays import top_k, unit_rows

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.neighbors._index import NeighborIndex

__all__ = ["place", "place_rows"]


def place_rows(rows: Any, scores: Any, coords: Any, k: int | None = None, *, temperature: float = 0.05) -> np.ndarray:
    """Place queries from their already-known neighbours: ``(m, 2)`` float32 (NaN where none).

    Each query lands at the softmax-weighted mean (``w_i = exp((s_i - s_max) / temperature)``)
    of the map coordinates of its first ``k`` neighbour ``rows`` (all when ``None``), ranked
    best first with cosine ``scores``; rows ``< 0`` (padding) are ignored. Vectorised over
    queries: this is also how the points left out of a sampled UMAP fit are placed.

    Examples
    --------
    >>> xy = np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]])
    >>> place_rows([[1, 2]], [[0.9, 0.0]], xy).round(3).tolist()
    [[1.0, 1.0]]
    >>> place_rows([0, 1], [0.5, 0.5], xy).tolist()
    [[0.5, 0.5]]
    """
    r = np.asarray(rows)
    sc = np.asarray(scores, dtype=np.float64)
    if r.ndim == 1:
        r, sc = r[None, :], sc[None, :]
    if r.ndim != 2 or sc.shape != r.shape:
        raise ValueError(f"rows and scores must have the same (k,) or (m, k) shape, got {r.shape} and {sc.shape}")
    if r.size and r.dtype.kind not in "iu":
        raise TypeError(f"rows must be integer gallery rows, got dtype {r.dtype}")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    xy = np.asarray(coords, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f"coords must be an (N, 2) array of map coordinates, got shape {xy.shape}")
    if k is not None:
        r, sc = r[:, : max(1, int(k))], sc[:, : max(1, int(k))]
    r = r.astype(np.int64)
    if r.size and int(r.max()) >= len(xy):
        raise IndexError(f"row {int(r.max())} is outside the map's {len(xy)} points")
    ok = (r >= 0) & np.isfinite(sc)
    top = np.where(ok, sc, -np.inf).max(axis=1, keepdims=True) if r.size else np.zeros((len(r), 1))
    w = np.where(ok, np.exp((np.where(ok, sc, 0.0) - np.where(np.isfinite(top), top, 0.0)) / temperature), 0.0)
    total = w.sum(axis=1)
    pts = xy[np.where(ok, r, 0)]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (pts * w[:, :, None]).sum(axis=1) / total[:, None]
    out[total == 0] = np.nan
    return out.astype(np.float32)


def place(
    vectors: Any = None,
    embeddings: Any = None,
    coords: Any = None,
    k: int = 10,
    *,
    index: NeighborIndex | None = None,
    temperature: float = 0.05,
    rows: Any = None,
    scores: Any = None,
) -> np.ndarray:
    """Put queries on an existing map without refitting it, ``(m, 2)`` float32.

    Each query lands at the weighted mean of the map coordinates of its ``k`` nearest
    gallery images (cosine), with softmax weights ``w_i = exp((s_i - s_max) / temperature)``:
    near-ties share the position and a clear winner dominates. This is the out-of-sample
    placement of a neighbour-graph embedding (as in McInnes et al. 2018, section 3.3, where
    new points are initialised at the weighted mean of their neighbours' positions), without
    the optimisation step.

    When the neighbours are already known (a search just ranked the gallery), pass them as
    ``rows=`` and ``scores=`` (``(k,)`` or ``(m, k)``, best first): no search is done
    (:func:`place_rows`). Otherwise pass ``vectors`` and ``embeddings``; with the space's
    :class:`~cirscope.NeighborIndex` as ``index`` the neighbours come from it
    (sub-millisecond on large galleries), else from an exact search.

    Parameters
    ----------
    vectors
        ``(D,)`` or ``(m, D)`` query vectors (not needed with ``rows``/``scores``).
    embeddings
        The ``(N, D)`` gallery embeddings the map was made from (not needed with ``index``
        or ``rows``).
    coords
        Their ``(N, 2)`` map coordinates.
    k
        How many neighbours to average.
    index
        A neighbour index over ``embeddings`` (optional, faster).
    temperature
        Softmax temperature of the weights (smaller: closer to the nearest neighbour).
    rows, scores
        The queries' known neighbours and their cosines, best first.

    Examples
    --------
    >>> emb = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    >>> xy = np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]])
    >>> place(np.array([1.0, 0.0]), emb, xy, k=1).tolist()
    [[0.0, 0.0]]
    >>> place(coords=xy, rows=[0, 1], scores=[0.9, 0.1], k=1).tolist()
    [[0.0, 0.0]]
    """
    if coords is None:
        raise TypeError("place() needs the map's coords")
    if rows is not None or scores is not None:
        if rows is None or scores is None:
            raise TypeError("pass both rows= and scores= (the known neighbours), or a query vector")
        return place_rows(rows, scores, coords, k, temperature=temperature)
    if vectors is None:
        raise TypeError("place() needs query vectors, or the known neighbours as rows= and scores=")
    q = np.asarray(vectors, dtype=np.float32)
    single = q.ndim == 1
    if single:
        q = q[None, :]
    if q.ndim != 2:
        raise ValueError(f"vectors must be a (D,) or (m, D) array, got shape {q.shape}")
    xy = np.asarray(coords, dtype=np.float64)
    n = xy.shape[0] if xy.ndim == 2 else -1
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f"coords must be an (N, 2) array of map coordinates, got shape {xy.shape}")
    if index is None:
        emb = np.asarray(embeddings)
        if emb.ndim != 2 or emb.shape[0] != n:
            raise ValueError(
                f"embeddings have shape {emb.shape} but coords have {n} rows: pass the embeddings "
                "the map was made from"
            )
        dim = emb.shape[1]
    else:
        if len(index) != n:
            raise ValueError(f"the index covers {len(index)} rows but coords have {n}: use the same gallery")
        dim = index.dim
    if q.shape[1] != dim:
        raise ValueError(f"query vectors have {q.shape[1]} dimensions but the embeddings have {dim}")
    if not np.isfinite(q).all():
        raise ValueError("query vectors contain NaN or infinite values")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    k = max(1, min(int(k), n))
    if index is not None:
        found, sims_k = index.query_batch(q, k)
    else:
        qn = unit_rows(q)
        sims = (
            qn
            @ np.asarray(emb, dtype=np.float32).T
            / np.maximum(np.linalg.norm(emb, axis=1), 1e-12).astype(np.float32)
        )
        found, sims_k = top_k(sims, k, with_scores=True)
    return place_rows(found, sims_k, xy, temperature=temperature)

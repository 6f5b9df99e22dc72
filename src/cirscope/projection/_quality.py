"""How well a 2-D map keeps each point's nearest neighbours (what the sampled fit is judged by)."""

from __future__ import annotations

from typing import Any

import numpy as np

from cirscope._core.arrays import top_k

__all__ = ["neighborhood_preservation", "sampled_fit_preservation"]


def neighborhood_preservation(
    embeddings: Any,
    coords: Any,
    k: int = 15,
    *,
    sample: int = 1000,
    seed: int = 0,
    points: Any = None,
    among: Any = None,
) -> float:
    """Mean kNN overlap@``k`` between the embedding space (cosine) and the map (Euclidean).

    For ``sample`` random points (drawn from ``points``, default all), the share of their ``k``
    nearest neighbours among the rows ``among`` (default all) in the embeddings that are also
    among their ``k`` nearest neighbours among the same rows on the map (each point itself left
    out), averaged: 1.0 keeps every neighbourhood, ``k / N`` is chance. Exact on both sides;
    costs ``sample x len(among)`` dot products.

    Examples
    --------
    >>> x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> neighborhood_preservation(x, x, k=1, sample=4)
    1.0
    >>> neighborhood_preservation(x, [[0.0, 0.0], [9.0, 9.0], [0.1, 0.0], [9.0, 9.1]], k=1, sample=4)
    0.0
    >>> neighborhood_preservation(x, [[0.0, 0.0], [9.0, 9.0], [0.1, 0.0], [9.0, 9.1]], k=1, among=[0, 2])
    1.0
    """
    x = np.asarray(embeddings, dtype=np.float32)
    xy = np.asarray(coords, dtype=np.float64)
    n = len(x)
    if xy.shape != (n, 2):
        raise ValueError(f"coords must be ({n}, 2) for {n} embeddings, got {xy.shape}")
    cand = np.arange(n) if among is None else np.asarray(among, dtype=np.int64)
    if not 1 <= k < len(cand):
        raise ValueError(f"k must be between 1 and {len(cand) - 1}, got {k}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = x / np.where(norms == 0, 1.0, norms)
    rng = np.random.default_rng(seed)
    if points is None and among is None:
        picked = rng.choice(n, size=min(int(sample), n), replace=False)
    else:
        pool = cand if points is None else np.asarray(points, dtype=np.int64)
        picked = rng.choice(pool, size=min(int(sample), len(pool)), replace=False)
    overlap = np.empty(len(picked))
    xc, xyc = x[cand], xy[cand]
    sq = (xy**2).sum(axis=1)
    sqc = sq[cand]
    chunk = max(1, 4_000_000 // len(cand))  # (chunk, len(among)) blocks of about 32 MB
    for s in range(0, len(picked), chunk):
        rows = picked[s : s + chunk]
        sims = x[rows] @ xc.T
        d2 = sq[rows, None] + sqc[None, :] - 2.0 * (xy[rows] @ xyc.T)
        itself = rows[:, None] == cand[None, :]
        sims[itself] = -np.inf
        d2[itself] = np.inf
        for j in range(len(rows)):  # per sampled point (at most `sample`), not per gallery row
            high = top_k(sims[j], k, finite_only=True)
            low = top_k(-d2[j], k, finite_only=True)
            overlap[s + j] = np.intersect1d(high, low).size / k
    return float(overlap.mean())


def sampled_fit_preservation(
    embeddings: Any, coords: Any, sample_rows: Any, k: int = 15, *, sample: int = 1000, seed: int = 0
) -> dict[str, float]:
    """kNN overlap@``k`` of a sampled fit, split so that placement cannot inflate it.

    Over all points, a placed point that lands on its nearest sample point shares that point's
    map neighbourhood, which rewards placement rather than the layout. So:

    ``layout``
        points of the sample, neighbours among the sample only (the UMAP layout itself);
    ``placement``
        placed points (outside the sample), neighbours among all points (where placement put them
        relative to their true high-dimensional neighbours);
    ``all``
        :func:`neighborhood_preservation` over all points, for comparison.

    Examples
    --------
    >>> x = np.random.default_rng(0).normal(size=(60, 5))
    >>> got = sampled_fit_preservation(x, x[:, :2], np.arange(0, 60, 2), k=3, sample=20)
    >>> sorted(got)
    ['all', 'layout', 'placement']
    """
    rows = np.asarray(sample_rows, dtype=np.int64)
    n = len(np.asarray(coords))
    rest = np.setdiff1d(np.arange(n), rows)
    out = {"layout": neighborhood_preservation(embeddings, coords, k, sample=sample, seed=seed, among=rows)}
    if rest.size:
        out["placement"] = neighborhood_preservation(embeddings, coords, k, sample=sample, seed=seed, points=rest)
    else:
        out["placement"] = float("nan")
    out["all"] = neighborhood_preservation(embeddings, coords, k, sample=sample, seed=seed)
    return out

"""How well a 2-D map keeps each point's nearest neighbours (what the sampled fit is judged by)."""

from __future__ import annotations

from typing import Any

import numpy as np

from cirscope._index import top_positions

__all__ = ["neighborhood_preservation"]


def neighborhood_preservation(
    embeddings: Any, coords: Any, k: int = 15, *, sample: int = 1000, seed: int = 0
) -> float:
    """Mean kNN overlap@``k`` between the embedding space (cosine) and the map (Euclidean).

    For ``sample`` random points, the share of their ``k`` nearest neighbours among all
    points in the embeddings that are also among their ``k`` nearest neighbours on the map
    (each point itself left out), averaged: 1.0 keeps every neighbourhood, ``k / N`` is
    chance. Exact on both sides; costs ``sample x N`` dot products.

    Examples
    --------
    >>> x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> neighborhood_preservation(x, x, k=1, sample=4)
    1.0
    >>> neighborhood_preservation(x, [[0.0, 0.0], [9.0, 9.0], [0.1, 0.0], [9.0, 9.1]], k=1, sample=4)
    0.0
    """
    x = np.asarray(embeddings, dtype=np.float32)
    xy = np.asarray(coords, dtype=np.float64)
    n = len(x)
    if xy.shape != (n, 2):
        raise ValueError(f"coords must be ({n}, 2) for {n} embeddings, got {xy.shape}")
    if not 1 <= k < n:
        raise ValueError(f"k must be between 1 and {n - 1}, got {k}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = x / np.where(norms == 0, 1.0, norms)
    picked = np.random.default_rng(seed).choice(n, size=min(int(sample), n), replace=False)
    overlap = np.empty(len(picked))
    sq = (xy**2).sum(axis=1)
    chunk = max(1, 4_000_000 // n)  # (chunk, N) blocks of about 32 MB
    for s in range(0, len(picked), chunk):
        rows = picked[s : s + chunk]
        sims = x[rows] @ x.T
        d2 = sq[rows, None] + sq[None, :] - 2.0 * (xy[rows] @ xy.T)
        sims[np.arange(len(rows)), rows] = -np.inf
        d2[np.arange(len(rows)), rows] = np.inf
        for j in range(len(rows)):  # per sampled point (at most `sample`), not per gallery row
            high = top_positions(sims[j], k)
            low = top_positions(-d2[j], k)
            overlap[s + j] = np.intersect1d(high, low).size / k
    return float(overlap.mean())

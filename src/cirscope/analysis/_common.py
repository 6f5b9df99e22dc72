"""What the analysis tools share: resolving a composed query, checking marked rows, exact ranks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from cirscope._core.arrays import top_k

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.query._composed import ResolvedQuery
    from cirscope.space._space import Space

__all__ = ["best_rows", "check_k", "exact_ranks", "marked_rows", "resolve_composed", "scored"]

_CHUNK = 65536  # gallery rows per block: bounded temporaries at any scale


def resolve_composed(space: Space, query: Any, what: str) -> ResolvedQuery:
    """``query`` (a ComposedQuery or a ResolvedQuery) resolved against ``space``."""
    from cirscope.query._composed import ComposedQuery, ResolvedQuery

    if isinstance(query, ComposedQuery):
        return query.resolve(space)
    if isinstance(query, ResolvedQuery):
        return query
    raise TypeError(
        f"{what} takes a composed query, e.g. cs.ComposedQuery(reference_row, 'make it blue'); "
        f"got {type(query).__name__}"
    )


def check_k(k: Any) -> int:
    """A positive integer cut-off."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return int(k)


def marked_rows(rows: Any, n: int, what: str) -> np.ndarray:
    """``rows`` as unique int64 gallery rows (order kept), with a clear error for bad ones.

    Examples
    --------
    >>> marked_rows([3, 1, 3], 5, "relevant").tolist()
    [3, 1]
    >>> marked_rows([7], 5, "relevant")
    Traceback (most recent call last):
    ...
    ValueError: relevant holds rows outside the gallery (0..4): [7]
    """
    if rows is None:
        return np.empty(0, np.int64)
    arr = np.asarray(list(rows) if not isinstance(rows, np.ndarray) else rows)
    if arr.size == 0:
        return np.empty(0, np.int64)
    if arr.dtype.kind not in "iu" and not (arr.dtype.kind == "f" and np.all(arr == np.round(arr))):
        raise TypeError(f"{what} must be gallery rows (integers), got {arr.dtype} values")
    arr = arr.astype(np.int64).ravel()
    bad = arr[(arr < 0) | (arr >= n)]
    if bad.size:
        raise ValueError(f"{what} holds rows outside the gallery (0..{n - 1}): {bad[:5].tolist()}")
    return arr[np.sort(np.unique(arr, return_index=True)[1])]


def scored(embeddings: np.ndarray, vectors: np.ndarray, exclude: Sequence[int] = (),
           mask: np.ndarray | None = None) -> np.ndarray:
    """Cosines ``(Q, N)`` of each query vector to every gallery row; excluded rows get ``-inf``.

    One product per block of gallery rows (a batched search: every query vector at once).
    """
    vecs = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
    n = embeddings.shape[0]
    out = np.empty((vecs.shape[0], n), dtype=np.float32)
    for start in range(0, n, _CHUNK):
        block = np.asarray(embeddings[start : start + _CHUNK], dtype=np.float32)
        out[:, start : start + block.shape[0]] = vecs @ block.T
    if mask is not None:
        out[:, ~mask] = -np.inf
    if len(exclude):
        out[:, np.asarray(exclude, dtype=np.int64)] = -np.inf
    return out


def exact_ranks(scores: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """1-based rank of each of ``rows`` in each ranking ``scores (Q, N)``, as float (NaN: excluded).

    Ties are broken by row, as :func:`~cirscope._core.arrays.top_k` orders them.

    Examples
    --------
    >>> exact_ranks(np.array([[0.1, 0.9, 0.5, -np.inf]]), np.array([1, 0, 3])).tolist()
    [[1.0, 3.0, nan]]
    """
    s = np.atleast_2d(scores)
    rows = np.asarray(rows, dtype=np.int64)
    out = np.empty((s.shape[0], rows.size), dtype=np.float64)
    index = np.arange(s.shape[1])
    for i in range(s.shape[0]):
        mine = s[i, rows]
        ahead = (s[i][:, None] > mine[None, :]) | ((s[i][:, None] == mine[None, :]) & (index[:, None] < rows[None, :]))
        out[i] = 1.0 + ahead.sum(axis=0)
        out[i, ~np.isfinite(mine)] = np.nan
    return out


def best_rows(scores: np.ndarray, k: int) -> np.ndarray:
    """The top ``k`` rows of each ranking ``(Q, N)`` (excluded rows never; ``-1`` pads)."""
    return np.asarray(top_k(scores, k, finite_only=True), dtype=np.int64)

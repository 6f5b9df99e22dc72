"""Validation of embedding matrices, shared by the space, the neighbour index and the map."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["check_matrix", "check_unit_rows", "normalize_rows", "top_k", "unit_rows"]

_CHUNK = 65536  # rows per block: bounded temporaries at any scale


def check_matrix(
    embeddings: Any,
    *,
    n: int | None = None,
    empty: str | None = None,
    zero_rows: bool = False,
    what: str = "embeddings",
) -> np.ndarray:
    """``embeddings`` as a 2-D float32 array, with a message naming the fix for each defect.

    Parameters
    ----------
    embeddings
        Anything numpy turns into an ``(N, D)`` array.
    n
        The number of rows required (one per gallery image), or ``None``.
    empty
        When given, zero rows are an error and this text ends its message.
    zero_rows
        Allow all-zero rows (else they are an error: they have no direction).
    what
        How the messages name the array.

    Returns
    -------
    numpy.ndarray
        float32; the input itself when it already is one (no copy).

    Examples
    --------
    >>> check_matrix([[1, 0], [0, 2]]).dtype
    dtype('float32')
    >>> check_matrix([[0.0, 0.0]])
    Traceback (most recent call last):
    ...
    ValueError: 1 rows of the embeddings are all zeros: they have no direction
    """
    arr = np.asarray(embeddings)
    if arr.ndim != 2:
        raise ValueError(f"{what} must be a 2-D (N, D) array, got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{what} have {arr.shape[0]} rows but the gallery has {n} images: one row per image")
    if empty is not None and arr.shape[0] == 0:
        raise ValueError(f"{what} are empty (0 rows): {empty}")
    if arr.shape[1] == 0:
        raise ValueError(f"{what} have zero dimensions")
    src = arr
    with np.errstate(over="ignore", invalid="ignore"):  # out-of-range values become inf: reported below
        arr = np.asarray(arr, dtype=np.float32)
    for start in range(0, arr.shape[0], _CHUNK):
        block = arr[start : start + _CHUNK]
        finite = np.isfinite(block).all(axis=1)
        if not finite.all():
            bad = start + np.flatnonzero(~finite)
            raw_finite = np.isfinite(np.asarray(src[start : start + _CHUNK], dtype=np.float64)).all(axis=1)
            hint = (
                "values beyond the float32 range (3.4e38): scale them down"
                if raw_finite[bad - start].all()
                else "NaN or infinite values"
            )
            raise ValueError(
                f"{bad.size} rows of the {what} contain {hint} (first rows: {bad[:5].tolist()}): "
                "recompute them or drop those images"
            )
        if not zero_rows:
            zero = ~block.any(axis=1)
            if zero.any():
                total = int(zero.sum()) + sum(
                    int((~arr[s : s + _CHUNK].any(axis=1)).sum()) for s in range(start + _CHUNK, arr.shape[0], _CHUNK)
                )
                raise ValueError(f"{total} rows of the {what} are all zeros: they have no direction")
    return arr


def normalize_rows(embeddings: Any, *, what: str = "embeddings") -> np.ndarray:
    """Rows scaled to unit L2 norm, computed in float64, returned as a new float32 array.

    Each row is divided by its largest absolute value before its norm is taken, so rows
    of tiny (1e-30) or huge (1e25) values normalise correctly instead of turning into
    infinities or zeros. The result is validated after normalising: every row finite and
    of unit norm.

    Examples
    --------
    >>> normalize_rows([[3e-30, 4e-30], [0.0, 1e25]])
    array([[0.6, 0.8],
           [0. , 1. ]], dtype=float32)
    >>> normalize_rows([[0.0, 0.0]])
    Traceback (most recent call last):
    ...
    ValueError: 1 rows of the embeddings are all zeros: they have no direction (first rows: [0])
    """
    arr = np.asarray(embeddings)
    if arr.ndim != 2:
        raise ValueError(f"{what} must be a 2-D (N, D) array, got shape {arr.shape}")
    out = np.empty(arr.shape, dtype=np.float32)
    for start in range(0, arr.shape[0], _CHUNK):
        x = np.array(arr[start : start + _CHUNK], dtype=np.float64)
        bad = ~np.isfinite(x).all(axis=1)
        if bad.any():
            rows = start + np.flatnonzero(bad)
            raise ValueError(
                f"{rows.size} rows of the {what} contain NaN or infinite values (first rows: {rows[:5].tolist()}): "
                "recompute them or drop those images"
            )
        scale = np.abs(x).max(axis=1) if x.shape[1] else np.zeros(x.shape[0])
        zero = scale == 0
        if zero.any():
            rows = start + np.flatnonzero(zero)
            raise ValueError(
                f"{rows.size} rows of the {what} are all zeros: they have no direction (first rows: {rows[:5].tolist()})"
            )
        x /= scale[:, None]
        x /= np.sqrt(np.einsum("ij,ij->i", x, x))[:, None]
        out[start : start + _CHUNK] = x
    check_unit_rows(out, what=what)
    return out


def check_unit_rows(embeddings: np.ndarray, *, rows: np.ndarray | None = None, tol: float = 1e-3,
                    what: str = "embeddings") -> None:
    """Raise ``ValueError`` unless the given rows (all by default) are finite with unit L2 norm (float64 check).

    Examples
    --------
    >>> check_unit_rows(np.eye(2, dtype=np.float32))
    >>> check_unit_rows(np.eye(2, dtype=np.float32) * 2)
    Traceback (most recent call last):
    ...
    ValueError: 2 rows of the embeddings are not unit vectors (norms e.g. [2.0, 2.0], first rows: [0, 1])
    """
    n = embeddings.shape[0]
    for start in range(0, n, _CHUNK) if rows is None else [0]:
        idx = np.arange(start, min(start + _CHUNK, n)) if rows is None else np.asarray(rows)
        x = np.asarray(embeddings[idx], dtype=np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            norms = np.sqrt(np.einsum("ij,ij->i", x, x))
        bad = ~(np.abs(norms - 1.0) <= tol)
        if bad.any():
            raise ValueError(
                f"{int(bad.sum())} rows of the {what} are not unit vectors (norms e.g. "
                f"{[float(f'{v:.3g}') for v in norms[bad][:3]]}, first rows: {idx[bad][:5].tolist()})"
            )


def unit_rows(arr: np.ndarray) -> np.ndarray:
    """Rows divided by their L2 norms; all-zero rows stay zero (no error, no NaN).

    Examples
    --------
    >>> unit_rows(np.array([[3.0, 4.0], [0.0, 0.0]])).tolist()
    [[0.6, 0.8], [0.0, 0.0]]
    """
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return arr / norms


def top_k(
    scores: np.ndarray, k: int, *, finite_only: bool = False, with_scores: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Positions of the ``k`` largest scores, best first, as ``int64``.

    ``scores`` is a vector ``(n,)`` (returns ``(k,)``) or a matrix ``(m, n)`` (one ranking per
    row, returns ``(m, k)``); ``k`` is clipped to ``n``. The ``k`` best are found with
    ``np.argpartition`` (no full sort), then ordered by score, equal scores by position.

    Parameters
    ----------
    scores
        Higher is better; ``-inf`` marks an excluded item.
    k
        How many positions to return.
    finite_only
        Never return a non-finite score: a vector's result is shorter, a matrix's rows are
        padded with ``-1`` (and NaN scores).
    with_scores
        Also return the scores at those positions (``float32`` when ``finite_only``, else the
        input's dtype).

    Examples
    --------
    >>> top_k(np.array([0.1, 0.9, -np.inf, 0.9]), 5, finite_only=True).tolist()
    [1, 3, 0]
    >>> top_k(np.array([[0.2, 0.5, 0.1], [0.3, 0.0, 0.7]]), 2).tolist()
    [[1, 0], [2, 0]]
    >>> rows, vals = top_k(np.array([[0.2, 0.5, 0.1], [0.3, -np.inf, -np.inf]]), 2, finite_only=True,
    ...                    with_scores=True)
    >>> rows.tolist(), vals[1].tolist()
    ([[1, 0], [0, -1]], [0.30000001192092896, nan])
    """
    if scores.ndim == 1:
        n = scores.size
        k = min(int(k), int(np.isfinite(scores).sum()) if finite_only else n)
        if k <= 0:
            top = np.empty(0, dtype=np.int64)
        else:
            top = np.argpartition(-scores, k - 1)[:k] if k < n else np.arange(n)
            top = top[np.lexsort((top, -scores[top]))].astype(np.int64)
        if not with_scores:
            return top
        vals = scores[top]
        return top, vals.astype(np.float32) if finite_only else vals
    m, n = scores.shape
    k = min(int(k), n)
    if k <= 0:
        top, vals = np.empty((m, 0), np.int64), np.empty((m, 0), np.float32 if finite_only else scores.dtype)
        return (top, vals) if with_scores else top
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < n else np.broadcast_to(np.arange(n), (m, n))
    vals = np.take_along_axis(scores, top, axis=1)
    order = np.lexsort((top, -vals), axis=1)
    top = np.take_along_axis(top, order, axis=1).astype(np.int64)
    vals = np.take_along_axis(vals, order, axis=1)
    if finite_only:
        vals = vals.astype(np.float32)
        bad = ~np.isfinite(vals)
        top[bad], vals[bad] = -1, np.nan
    return (top, vals) if with_scores else top

"""Validation of embedding matrices, shared by the space, the neighbour index and the map."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["check_matrix"]


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
    arr = np.asarray(arr, dtype=np.float32)
    finite = np.isfinite(arr).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise ValueError(
            f"{bad.size} rows of the {what} contain NaN or infinite values (first rows: {bad[:5].tolist()}): "
            "recompute them or drop those images"
        )
    if not zero_rows:
        zero = ~arr.any(axis=1)
        if zero.any():
            raise ValueError(f"{int(zero.sum())} rows of the {what} are all zeros: they have no direction")
    return arr

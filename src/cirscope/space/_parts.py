"""What a space is made of, as the loaders hand it over: :class:`SpaceParts` and the embedding check.

The loaders (:mod:`~cirscope.space._persist` for saved folders, :mod:`~cirscope.space._parquet`
for embedding shards) return parts; :class:`~cirscope.Space` assembles them, so no loader
needs the class.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cirscope._core.arrays import check_matrix, normalize_rows

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.embedding._embedder import Embedder
    from cirscope.gallery._table import Gallery

__all__ = ["SpaceParts", "check_embeddings"]


def check_embeddings(embeddings: Any, n: int | None = None) -> np.ndarray:
    """Validate an ``(N, D)`` embedding array and return it L2-normalised as float32 (a new array).

    Normalisation runs in float64 after scaling each row by its largest value, and is
    validated afterwards (finite, unit rows), so tiny or huge values cannot turn into
    infinite or all-zero rows.

    Examples
    --------
    >>> check_embeddings([[1e-30, 0.0], [0.0, 1e25]]).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    arr = np.asarray(embeddings)
    if arr.ndim == 2 and arr.dtype.kind in "fiu" and arr.shape[1] > 0 and (n is None or arr.shape[0] == n):
        return normalize_rows(arr)
    return normalize_rows(check_matrix(embeddings, n=n))


@dataclass(frozen=True, eq=False)
class SpaceParts:
    """A gallery, its embeddings and their model, read by a loader, ready for :class:`~cirscope.Space`.

    ``embeddings`` are unit float32 rows the loader verified (possibly a read-only memory
    map: the space uses them as they are). ``shards_missing`` is set by the shard loader only.
    """

    gallery: Gallery
    embeddings: np.ndarray
    embedder: Embedder | None
    model: dict[str, Any]
    folder: Path | None
    fingerprint: str | None
    problems: pd.DataFrame | None = None
    shards_missing: list[str] | None = field(default=None)

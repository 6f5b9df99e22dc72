"""The map cache: one ``.npy`` file per map, named by the embeddings' fingerprint and every parameter.

A cached file is only used when it holds ``(N, 2)`` finite float32 coordinates; anything else
(a truncated write, another gallery's map, garbage) reads as a miss and the map is recomputed.
Files are written atomically; a failed write only warns.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from cirscope._core.atomic import atomic_write

__all__ = ["map_cache_path", "read_cache", "write_cache"]


def map_cache_path(cache_dir: str | os.PathLike, fingerprint: str, params: dict[str, Any]) -> Path:
    """The cache file for a map: ``map-<method>-<hash of fingerprint and parameters>.npy``.

    Examples
    --------
    >>> map_cache_path("/tmp/x", "abc", {"method": "pca", "version": 1}).name.startswith("map-pca-")
    True
    """
    key = json.dumps({"fingerprint": fingerprint, **params}, sort_keys=True, default=repr)
    digest = hashlib.blake2b(key.encode(), digest_size=12).hexdigest()
    return Path(cache_dir) / f"map-{params['method']}-{digest}.npy"


def read_cache(path: Path, n: int) -> np.ndarray | None:
    """The cached coordinates, or ``None`` when the file is missing, unreadable or the wrong shape.

    Examples
    --------
    >>> import tempfile
    >>> path = map_cache_path(tempfile.mkdtemp(), "abc", {"method": "pca"})
    >>> read_cache(path, 3) is None
    True
    >>> write_cache(path, np.zeros((3, 2), np.float32))
    >>> read_cache(path, 3).shape, read_cache(path, 4) is None
    ((3, 2), True)
    """
    if not path.is_file():
        return None
    try:
        coords = np.load(path, allow_pickle=False)
    except Exception:
        return None
    if coords.shape != (n, 2) or coords.dtype != np.float32 or not np.isfinite(coords).all():
        return None
    return coords


def write_cache(path: Path, coords: np.ndarray) -> None:
    """Write atomically (temporary file, then ``os.replace``); a failure only warns."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as fh:
            np.save(fh, coords)
    except OSError as exc:
        warnings.warn(
            f"Could not cache the map in {path.parent} ({exc}); it will be recomputed next time.",
            stacklevel=3,
        )


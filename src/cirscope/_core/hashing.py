"""Hashes that key caches and verify saved files: matrix fingerprints, file digests, sampled rows.

Every hash is blake2b with a 16-byte digest, so a value written by one stage (a space's
``space.json``, an index's ``index.json``, a shard set's cached matrix) is checked by another
with the same function. The values are part of saved formats: changing how any of them is
computed makes old files look damaged.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

__all__ = ["SAMPLE_SIZE", "embeddings_fingerprint", "file_digest", "read_rows", "sample_hash", "sample_rows"]

#: Pseudo-random rows (besides the first and last) that :func:`sample_rows` picks.
SAMPLE_SIZE = 256
_HASH_BLOCK = 1 << 16  # rows per block when hashing every row


def embeddings_fingerprint(embeddings: np.ndarray) -> str:
    """blake2b of an ``(N, D)`` matrix's shape and float32 bytes, hashed block by block (no whole copy).

    Examples
    --------
    >>> a = np.eye(3, dtype=np.float32)
    >>> embeddings_fingerprint(a) == embeddings_fingerprint(a.copy()) != embeddings_fingerprint(a[::-1])
    True
    >>> embeddings_fingerprint(a) == embeddings_fingerprint(a.astype(np.float64))
    True
    """
    if not hasattr(embeddings, "shape"):
        embeddings = np.asarray(embeddings, dtype=np.float32)
    h = hashlib.blake2b(digest_size=16)
    h.update(str(tuple(embeddings.shape)).encode())
    for start in range(0, embeddings.shape[0], _HASH_BLOCK):
        h.update(np.ascontiguousarray(embeddings[start : start + _HASH_BLOCK], dtype=np.float32).data)
    return h.hexdigest()


def file_digest(path: str | os.PathLike) -> str:
    """blake2b of a file's bytes, read in blocks.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "x.bin"
    >>> _ = path.write_bytes(b"cirscope")
    >>> len(file_digest(path))
    32
    """
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 23), b""):
            h.update(block)
    return h.hexdigest()


def sample_rows(n: int, seed: int) -> np.ndarray:
    """Sorted rows to check of an ``n``-row matrix: first, last and ``SAMPLE_SIZE`` pseudo-random others.

    Examples
    --------
    >>> sample_rows(5, 0).tolist()
    [0, 1, 2, 3, 4]
    >>> rows = sample_rows(10**6, 7); (rows[0], rows[-1], rows.size <= SAMPLE_SIZE + 2)
    (np.int64(0), np.int64(999999), True)
    """
    if n <= SAMPLE_SIZE + 2:
        return np.arange(n, dtype=np.int64)
    picks = np.random.default_rng(seed).choice(np.arange(1, n - 1), size=SAMPLE_SIZE, replace=False)
    return np.unique(np.concatenate([[0, n - 1], picks])).astype(np.int64)


def sample_hash(rows: np.ndarray, values: np.ndarray) -> str:
    """blake2b of the row numbers (little-endian int64) and their values (little-endian float32).

    Examples
    --------
    >>> rows = sample_rows(4, 0)
    >>> sample_hash(rows, np.eye(4)[rows]) == sample_hash(rows, np.eye(4, dtype=np.float32)[rows])
    True
    """
    h = hashlib.blake2b(digest_size=16)
    h.update(np.asarray(rows).astype("<i8").tobytes())
    h.update(np.ascontiguousarray(values, dtype="<f4").tobytes())
    return h.hexdigest()


def read_rows(arr: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``arr[rows]``; from a memory-mapped float32 ``.npy`` the rows are read with ``pread`` instead.

    Faulting rows in through the map would make the kernel map its whole read-ahead window
    (megabytes per row on some systems) into the process; ``pread`` keeps the open free of
    resident memory. Raises ``OSError`` on a short read (a truncated file).

    Examples
    --------
    >>> read_rows(np.eye(3), np.array([2])).tolist()
    [[0.0, 0.0, 1.0]]
    """
    if not (isinstance(arr, np.memmap) and arr.filename):
        return np.asarray(arr[rows])
    row_bytes = arr.shape[1] * 4
    out = np.empty((rows.size, arr.shape[1]), dtype="<f4")
    fd = os.open(arr.filename, os.O_RDONLY)
    try:
        for i, r in enumerate(rows.tolist()):
            data = os.pread(fd, row_bytes, arr.offset + r * row_bytes)
            if len(data) != row_bytes:
                raise OSError(f"short read at row {r}")
            out[i] = np.frombuffer(data, dtype="<f4")
    finally:
        os.close(fd)
    return out

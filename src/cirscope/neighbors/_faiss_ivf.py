"""faiss's inverted-file index (IVF) as a :class:`~cirscope.NeighborIndex` backend, for millions of rows.

The rows are split into ``nlist`` cells by k-means on a sample (Jégou, Douze & Schmid, "Product
quantization for nearest neighbor search", TPAMI 2011, section IV.A; the coarse quantiser of
faiss's ``IndexIVF``). A query scans only the ``nprobe`` cells whose centroids are nearest to it
(the search breadth), comparing it to the rows' compressed codes; the index then re-scores the
candidates exactly against the shared embedding matrix, so scores are exact cosines and only the
choice of candidates is approximate.

Why it exists beside HNSW: on clustered 1,000,000 x 256 embeddings (``benchmarks/bench_index.py``'s
``synthetic_embeddings``), raw faiss HNSW reached only recall@10 0.986 / 0.973 (perturbed /
off-manifold queries) at efSearch 3,113 (10.5 ms a query), so an HNSW index fell back to exact search
(51 ms). This backend, with 4,096 cells over 8-bit codes re-ranking 4k candidates, calibrated
itself to nprobe 128 and reached 1.000 / 0.997 on held-out queries in 2.3 ms a query, built and
calibrated in 48 s, holding 256 MB of codes (a quarter of the float32 matrix) instead of a second
float32 copy. ``python benchmarks/bench_scale_index.py --n 1000000 --dim 256 --skip cirscope-annoy
hnswlib`` on 2 cores (load 1.5-2.9).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FaissIVFBackend", "default_nlist"]

# faiss scalar quantisers by storage name ("flat" stores float32 codes: IndexIVFFlat).
_CODES = {"sq8": "SQ8", "fp16": "SQfp16", "flat": "Flat"}
_BYTES = {"sq8": 1, "fp16": 2, "flat": 4}
# k-means trains on this many rows per cell (faiss warns below 39; more buys little on clustered data).
_TRAIN_PER_LIST = 40
# The coarse quantiser is exact (a flat index over the centroids). An HNSW graph over the centroids
# assigns rows faster but, at its default efSearch, misses near cells for off-manifold queries: at
# 200,000 x 256 with 2,048 cells recall@10 stalled at 0.944 even at nprobe 512, where the exact
# quantiser with 1,024 cells reached 0.993 at nprobe 96.


def default_nlist(n: int) -> int:
    """Cells for ``n`` rows: the power of two nearest ``4 * sqrt(n)``, between 16 and 65,536, and
    small enough for k-means to see 40 rows per cell (faiss warns below 39).

    Examples
    --------
    >>> default_nlist(10_000), default_nlist(100_000), default_nlist(1_000_000)
    (128, 1024, 4096)
    """
    target = 2 ** round(math.log2(4.0 * math.sqrt(max(1, n))))
    most = 2 ** int(math.log2(max(1, n // _TRAIN_PER_LIST)))
    return int(max(1, min(65536, most, max(16, target))))


class FaissIVFBackend:
    """faiss IVF over scalar-quantised codes; see the module docstring.

    Parameters
    ----------
    dim
        Vector dimension.
    nlist
        Number of cells (default :func:`default_nlist` of the row count, set on :meth:`build`).
    storage
        Codes scanned per cell: ``"sq8"`` (8-bit, a quarter of float32; default), ``"fp16"`` (half)
        or ``"flat"`` (float32).
    seed
        Seed of the training sample and of k-means.
    """

    name = "faiss-ivf"
    breadth_name = "nprobe"
    file_suffix = "faiss"
    native_filter = True

    def __init__(self, dim: int, *, nlist: int | None = None, storage: str = "sq8", seed: int = 0):
        if storage not in _CODES:
            raise ValueError(f"storage must be one of {sorted(_CODES)}, got {storage!r}")
        if nlist is not None and int(nlist) < 1:
            raise ValueError(f"nlist must be at least 1, got {nlist}")
        self.dim, self.storage, self.seed = int(dim), storage, int(seed)
        self.nlist = None if nlist is None else int(nlist)
        self._index: Any = None
        self._params: dict[int, Any] = {}
        # compressed codes misorder close rows: fetch 4k candidates and re-rank them exactly
        # (at 1M x 256, nprobe 32: recall@10 0.990 with k candidates, 0.997 with 4k, +0.14 ms)
        self.rerank_factor = 1 if storage == "flat" else 4

    def settings(self) -> dict[str, Any]:
        return {"nlist": self.nlist, "storage": self.storage}

    def _new(self, n: int) -> Any:
        import faiss

        nlist = self.nlist = min(self.nlist or default_nlist(n), n)
        return faiss.index_factory(self.dim, f"IVF{nlist},{_CODES[self.storage]}", faiss.METRIC_INNER_PRODUCT)

    def build(self, embeddings: np.ndarray, bar: Any = None) -> None:
        import faiss

        n = embeddings.shape[0]
        index = self._new(n)
        faiss.extract_index_ivf(index).cp.seed = self.seed
        rng = np.random.default_rng(self.seed)
        sample = np.sort(rng.choice(n, size=min(n, _TRAIN_PER_LIST * self.nlist), replace=False))
        if bar is not None:
            bar.set_description(f"Neighbour index (faiss-ivf): k-means, {self.nlist} cells on {len(sample)} rows")
        index.train(np.ascontiguousarray(embeddings[sample], dtype=np.float32))
        step = 1 << 16  # adding in blocks keeps the float32 copy of a memory-mapped matrix small
        for start in range(0, n, step):
            stop = min(n, start + step)
            index.add(np.ascontiguousarray(embeddings[start:stop], dtype=np.float32))
            if bar is not None:
                if start == 0:
                    bar.set_description(f"Neighbour index (faiss-ivf): assigning {n} vectors to cells")
                bar.update(stop - start)
        self._index = index

    def ladder(self, n: int) -> list[int]:
        """``nprobe`` values to try: 1, 2, 3, 4, 6, 8, 12, ... (steps of about 1.4x) up to a quarter of
        the cells (past that an exact search costs about the same)."""
        top = max(1, (self.nlist or default_nlist(n)) // 4)
        steps = sorted({2**e for e in range(17)} | {3 * 2**e for e in range(16)})
        out = [p for p in steps if p <= top]
        return out

    def scaled(self, breadth: int, k: int, fraction: float) -> int:
        """``nprobe`` for ``k`` results under a filter keeping ``fraction`` of the rows: ``sqrt(k / 10)``
        and ``1 / sqrt(fraction)`` wider (nearer cells hold fewer qualifying rows), at most every cell."""
        wide = breadth * math.sqrt(max(1.0, k / 10)) / math.sqrt(fraction)
        return int(min(self.nlist or wide, max(1, math.ceil(wide))))

    def _search_params(self, nprobe: int, selector: Any = None) -> Any:
        import faiss

        if selector is not None:
            return faiss.SearchParametersIVF(sel=selector, nprobe=nprobe)
        params = self._params.get(nprobe)
        if params is None:
            params = self._params[nprobe] = faiss.SearchParametersIVF(nprobe=nprobe)
        return params

    def search(self, queries: np.ndarray, fetch: int, breadth: int, allowed: Any = None) -> np.ndarray:
        """``(m, fetch)`` candidate rows for all queries in one faiss call, ``-1``-padded.

        ``allowed``: boolean per row; rejected rows are skipped while scanning the cells
        (``IDSelectorBitmap``).
        """
        import faiss

        q = np.ascontiguousarray(queries, dtype=np.float32)
        nprobe = int(min(self.nlist or breadth, max(1, breadth)))
        if allowed is None:
            _, rows = self._index.search(q, fetch, params=self._search_params(nprobe))
        else:
            bits = np.packbits(np.asarray(allowed, dtype=bool), bitorder="little")
            selector = faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bits))
            _, rows = self._index.search(q, fetch, params=self._search_params(nprobe, selector))
            del selector, bits  # kept alive until the search returned
        return rows.astype(np.int64, copy=False)

    def n_items(self) -> int:
        return int(self._index.ntotal)

    def memory_bytes(self) -> int:
        """Bytes held: the codes and row ids of every cell plus the centroids."""
        n = self.n_items()
        return int(n * (self.dim * _BYTES[self.storage] + 8) + (self.nlist or 0) * self.dim * 4)

    def save(self, path: Path) -> None:
        import faiss

        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path, dim: int, settings: dict[str, Any], seed: int) -> FaissIVFBackend:
        """Read a saved IVF index (``OSError`` when faiss cannot parse it or it does not match)."""
        import faiss

        backend = cls(dim, nlist=settings.get("nlist"), storage=settings.get("storage", "sq8"), seed=seed)
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as exc:  # faiss reports unreadable files as RuntimeError
            raise OSError(f"faiss cannot read {path.name}: {str(exc).splitlines()[0]}") from None
        try:
            ivf = faiss.extract_index_ivf(index)
        except RuntimeError:
            ivf = None
        if index.d != dim or ivf is None or (backend.nlist is not None and ivf.nlist != backend.nlist):
            raise OSError(f"{path.name} is not a {dim}-d faiss IVF index with the saved settings")
        backend.nlist = int(ivf.nlist)
        backend._index = index
        return backend

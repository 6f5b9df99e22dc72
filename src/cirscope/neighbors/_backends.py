"""Approximate-neighbour backends behind :class:`cirscope.neighbors._index.NeighborIndex`.

Every backend answers one question: for a matrix of unit query vectors, which ``fetch`` gallery
rows are (approximately) the most similar, at a given search breadth? The index then rescores
those candidates with exact dot products against the shared embedding matrix, so scores are always
exact cosines and only the choice of candidates is approximate.

``annoy``
    Annoy's random-projection forest with the angular metric (Bernhardsson, 2013-). One call per
    query (annoy has no batch search); breadth is ``search_k``. Keeps its own float32 copy of the
    vectors (memory-mapped when loaded from disk).
``faiss-hnsw``
    faiss's HNSW graph (Malkov & Yashunin, 2018) over float16 vectors (``IndexHNSWSQ`` with
    ``QT_fp16``, inner product), searched for all queries at once on faiss's threads; breadth is
    ``efSearch``. The half-precision copy costs half the float32 matrix, and the exact rerank of
    ``2k`` candidates against the shared matrix restores full precision. ``storage="sq8"`` (a
    quarter) loses near-duplicates: on 30 tight clusters of 100 rows (3,000 x 32) it stalled at
    recall@10 0.976 on perturbed queries whatever ``efSearch``, where fp16 and float32 reached 1.0.
    ``storage="flat"`` keeps float32 (``IndexHNSWFlat``, faiss's reference).
``faiss-ivf``
    faiss's inverted file over 8-bit codes, for millions of rows: see
    :mod:`cirscope.neighbors._faiss_ivf`. Breadth is ``nprobe``.

faiss is imported lazily (``import cirscope`` never imports it).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from cirscope.neighbors._faiss_ivf import FaissIVFBackend

__all__ = ["BACKENDS", "AnnoyBackend", "FaissHNSWBackend", "FaissIVFBackend", "faiss_available", "make_backend"]


# faiss scalar quantisers by storage name ("flat" is IndexHNSWFlat).
_SQ = {"sq8": "QT_8bit", "fp16": "QT_fp16", "flat": ""}


def faiss_available() -> bool:
    """True when ``import faiss`` works (faiss-cpu or faiss-gpu installed)."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def default_n_trees(n: int) -> int:
    """Annoy trees for a gallery of ``n`` rows: about one per 2,000 rows, between 10 and 100.

    More trees reach a given recall with a smaller ``search_k`` (faster queries) but cost build
    time and disk (each tree is about ``n`` nodes). 50 trees at 100,000 x 512 took 59 s to build
    and calibrate on 2 busy cores (``benchmarks/bench_scale_index.py``, see ``AUTO_BACKEND``).

    Examples
    --------
    >>> default_n_trees(1_000), default_n_trees(100_000), default_n_trees(10_000_000)
    (10, 50, 100)
    """
    return int(min(100, max(10, round(n / 2000))))


class AnnoyBackend:
    """Annoy forest over the rows (item ``i`` is row ``i``); see the module docstring."""

    name = "annoy"
    breadth_name = "search_k"
    file_suffix = "ann"
    native_filter = False
    rerank_factor = 1  # candidates come ranked by exact float32 angular distance

    def __init__(self, dim: int, *, n_trees: int = 10, seed: int = 0):
        self.dim, self.n_trees, self.seed = int(dim), int(n_trees), int(seed)
        if self.n_trees < 1:
            raise ValueError(f"n_trees must be at least 1, got {n_trees}")
        self._index: Any = None

    def settings(self) -> dict[str, Any]:
        return {"n_trees": self.n_trees}

    def build(self, embeddings: np.ndarray, bar: Any = None) -> None:
        from annoy import AnnoyIndex

        index = AnnoyIndex(self.dim, "angular")
        index.set_seed(self.seed)
        n, step = embeddings.shape[0], 4096
        for start in range(0, n, step):
            stop = min(n, start + step)
            block = np.asarray(embeddings[start:stop], dtype=np.float32)
            for i in range(stop - start):  # annoy adds one item per call
                index.add_item(start + i, block[i])
            if bar is not None:
                bar.update(stop - start)
        if bar is not None:
            bar.set_description(f"Neighbour index: building {self.n_trees} annoy trees")
        index.build(self.n_trees, n_jobs=-1)
        self._index = index

    def ladder(self, n: int) -> list[int]:
        """``search_k`` values to try: from ``n_trees * 10`` up by 1.5x, below half the gallery
        (past that an exact search is faster: one annoy candidate costs about two dot products)."""
        out, s = [], max(self.n_trees * 10, 100)
        while s <= n / 2:
            out.append(int(s))
            s *= 1.5
        return out

    def scaled(self, breadth: int, k: int, fraction: float) -> int:
        """Breadth for ``k`` results under a filter keeping ``fraction`` of rows: ``search_k`` scales
        with ``k / 10`` and ``1 / sqrt(fraction)`` (measured at 100,000 x 512: recall@10 >= 0.999 for
        filters keeping 5-50 % of the rows; ``1 / fraction`` costs 3-6x more for no gain)."""
        return int(breadth * max(1.0, k / 10) / math.sqrt(fraction))

    def search(self, queries: np.ndarray, fetch: int, breadth: int, allowed: Any = None) -> np.ndarray:
        """``(m, fetch)`` candidate rows, ``-1``-padded; one annoy call per query."""
        out = np.full((len(queries), fetch), -1, dtype=np.int64)
        get = self._index.get_nns_by_vector
        for i, q in enumerate(queries):
            got = get(q, fetch, search_k=int(breadth))
            out[i, : len(got)] = got
        return out

    def n_items(self) -> int:
        return int(self._index.get_n_items())

    def memory_bytes(self) -> int:
        """Approximate bytes held: annoy stores each vector as float32 plus tree nodes."""
        n = self.n_items()
        return int(n * (self.dim * 4 + 16) + self.n_trees * n * 16)

    def save(self, path: Path) -> None:
        self._index.save(str(path))  # annoy then memory-maps the saved file

    @classmethod
    def load(cls, path: Path, dim: int, settings: dict[str, Any], seed: int) -> AnnoyBackend:
        from annoy import AnnoyIndex

        backend = cls(dim, n_trees=settings.get("n_trees", 10), seed=seed)
        index = AnnoyIndex(dim, "angular")
        index.load(str(path))  # memory-mapped; OSError on a damaged file
        backend._index = index
        return backend


class FaissHNSWBackend:
    """faiss HNSW graph over scalar-quantised (or float32) vectors; see the module docstring.

    Parameters
    ----------
    dim
        Vector dimension.
    m
        Graph degree (``M``; layer 0 keeps ``2 * M`` links). 32 is faiss's default.
    ef_construction
        Candidate list while building. Must be at least ``2 * M`` for a good graph: measured at
        50,000 x 512 (2 cores), faiss's default 40 with ``M = 32`` gave recall@10 0.974 / 0.968
        (perturbed / off-manifold queries) at ``efSearch = 128``; 80 gave 1.000 / 1.000, building
        in 13 s instead of 4.5 s.
    storage
        ``"fp16"`` (half the float32 bytes, default), ``"sq8"`` (8-bit scalar quantiser, a quarter;
        loses near-duplicates) or ``"flat"`` (float32).
    """

    name = "faiss-hnsw"
    breadth_name = "efSearch"
    file_suffix = "faiss"
    native_filter = True

    def __init__(self, dim: int, *, m: int = 32, ef_construction: int = 80, storage: str = "fp16", seed: int = 0):
        if storage not in _SQ:
            raise ValueError(f"storage must be one of {sorted(_SQ)}, got {storage!r}")
        if m < 2 or ef_construction < 1:
            raise ValueError(f"need m >= 2 and ef_construction >= 1, got m={m}, ef_construction={ef_construction}")
        self.dim, self.m, self.ef_construction, self.storage = int(dim), int(m), int(ef_construction), storage
        self.seed = int(seed)
        self._index: Any = None
        self._params: dict[int, Any] = {}  # search parameters by efSearch, made once
        # quantised distances can misorder close candidates: fetch 2k and rerank them exactly
        self.rerank_factor = 1 if storage == "flat" else 2

    def settings(self) -> dict[str, Any]:
        return {"hnsw_m": self.m, "ef_construction": self.ef_construction, "storage": self.storage}

    def _new(self) -> Any:
        import faiss

        if self.storage == "flat":
            index = faiss.IndexHNSWFlat(self.dim, self.m, faiss.METRIC_INNER_PRODUCT)
        else:
            qtype = getattr(faiss.ScalarQuantizer, _SQ[self.storage])
            index = faiss.IndexHNSWSQ(self.dim, qtype, self.m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = self.ef_construction
        return index

    def build(self, embeddings: np.ndarray, bar: Any = None) -> None:
        index = self._new()
        n = embeddings.shape[0]
        if not index.is_trained:  # the quantiser's per-dimension ranges, from a sample of rows
            rng = np.random.default_rng(self.seed)
            sample = np.sort(rng.choice(n, size=min(n, 50_000), replace=False))
            index.train(np.ascontiguousarray(embeddings[sample], dtype=np.float32))
        # One add call, on all of faiss's threads: adding in blocks (for a finer progress bar) built a
        # slightly worse graph in our measurements (recall@10 0.9897 vs 0.991 at efSearch 128, 30,000 x 512)
        if bar is not None:
            bar.set_description(f"Neighbour index (faiss-hnsw): linking {n} vectors")
        index.add(np.ascontiguousarray(embeddings, dtype=np.float32))
        if bar is not None:
            bar.update(n)
        self._index = index

    def ladder(self, n: int) -> list[int]:
        """``efSearch`` values to try: 16 up by 1.25x to 4096 (or the gallery size). Finer than
        annoy's steps: at 100,000 x 512 the 1.5x step from 410 (recall 0.9915 on off-manifold
        queries) jumped to 615, 1.5x slower queries for 0.006 more recall."""
        out, ef = [], 16.0
        while ef <= min(4096, max(16, n)):
            out.append(int(ef))
            ef *= 1.25
        return out

    def scaled(self, breadth: int, k: int, fraction: float) -> int:
        """``efSearch`` for ``k`` results under a filter keeping ``fraction``: at least ``k``, and
        ``1 / sqrt(fraction)`` wider (the graph walks through rows the filter rejects)."""
        return int(max(breadth, k) * max(1.0, k / 10) / math.sqrt(fraction))

    def search(self, queries: np.ndarray, fetch: int, breadth: int, allowed: Any = None) -> np.ndarray:
        """``(m, fetch)`` candidate rows for all queries in one faiss call, ``-1``-padded.

        ``allowed``: boolean per row; rejected rows are skipped inside the graph walk
        (``IDSelectorBitmap``).
        """
        import faiss

        q = np.ascontiguousarray(queries, dtype=np.float32)
        ef = int(max(breadth, fetch))
        if allowed is None:
            params = self._params.get(ef)
            if params is None:
                params = self._params[ef] = faiss.SearchParametersHNSW(efSearch=ef)
            _, rows = self._index.search(q, fetch, params=params)
        else:
            bits = np.packbits(np.asarray(allowed, dtype=bool), bitorder="little")
            selector = faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bits))
            params = faiss.SearchParametersHNSW(sel=selector, efSearch=ef)
            _, rows = self._index.search(q, fetch, params=params)
            del selector, bits  # kept alive until the search returned
        return rows.astype(np.int64, copy=False)

    def n_items(self) -> int:
        return int(self._index.ntotal)

    def memory_bytes(self) -> int:
        """Bytes held: the stored codes plus the graph's links."""
        idx = self._index
        codes = idx.ntotal * self.dim * {"sq8": 1, "fp16": 2, "flat": 4}[self.storage]
        links = idx.hnsw.neighbors.size() * 4 + idx.hnsw.offsets.size() * 8 + idx.hnsw.levels.size() * 4
        return int(codes + links)

    def save(self, path: Path) -> None:
        import faiss

        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path, dim: int, settings: dict[str, Any], seed: int) -> FaissHNSWBackend:
        """Read a saved graph, its vectors memory-mapped (``OSError`` when faiss cannot parse the file)."""
        import faiss

        backend = cls(
            dim,
            m=settings.get("hnsw_m", 32),
            ef_construction=settings.get("ef_construction", 80),
            storage=settings.get("storage", "fp16"),
            seed=seed,
        )
        # IO_FLAG_MMAP_IFC memory-maps the stored vectors (measured at 200,000 x 256 fp16: load
        # 0.03 s and +12 MB RSS, the graph only, instead of 0.8 s and +107 MB)
        flag = getattr(faiss, "IO_FLAG_MMAP_IFC", 0)
        try:
            index = faiss.read_index(str(path), flag)
        except RuntimeError as exc:  # faiss reports unreadable files as RuntimeError
            raise OSError(f"faiss cannot read {path.name}: {str(exc).splitlines()[0]}") from None
        if index.d != dim or not hasattr(index, "hnsw"):
            raise OSError(f"{path.name} is not a {dim}-d faiss HNSW index")
        backend._index = index
        return backend


BACKENDS: dict[str, type] = {"annoy": AnnoyBackend, "faiss-hnsw": FaissHNSWBackend, "faiss-ivf": FaissIVFBackend}


def make_backend(name: str, dim: int, n: int, seed: int, options: dict[str, Any]) -> Any:
    """A fresh backend ``name`` with ``options`` (``n_trees``, ``search_k`` for annoy; ``hnsw_m``,
    ``ef_construction``, ``storage`` for faiss-hnsw; ``nlist``, ``storage`` for faiss-ivf); options set for another backend raise
    ``TypeError`` naming the ones this one takes."""
    if name == "annoy":
        allowed = {"n_trees", "search_k"}
        kwargs = {"n_trees": options.get("n_trees") or default_n_trees(n)}
    elif name == "faiss-hnsw":
        allowed = {"hnsw_m", "ef_construction", "storage"}
        kwargs = {
            "m": options.get("hnsw_m") or 32,
            "ef_construction": options.get("ef_construction") or 80,
            "storage": options.get("storage") or "fp16",
        }
    elif name == "faiss-ivf":
        allowed = {"nlist", "storage"}
        kwargs = {"nlist": options.get("nlist"), "storage": options.get("storage") or "sq8"}
    else:
        raise ValueError(f"unknown backend {name!r}: use one of 'auto', 'exact', {', '.join(map(repr, BACKENDS))}")
    extra = {key for key, value in options.items() if value is not None} - allowed
    if extra:
        raise TypeError(f"backend {name!r} does not take {sorted(extra)}; it takes {sorted(allowed)}")
    return BACKENDS[name](dim, seed=seed, **kwargs)

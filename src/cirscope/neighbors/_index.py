"""Nearest-neighbour search over image embeddings: exact numpy for small galleries, an ANN backend above.

:class:`NeighborIndex` answers "which gallery rows have the highest cosine to this vector?".
Below ``exact_below`` rows it multiplies the embedding matrix by the queries (exact and, at that
size, faster than any graph or tree). Above, an approximate backend
(:mod:`cirscope.neighbors._backends`) proposes candidates, which are rescored with the true dot product
against the shared matrix, so scores are always exact cosines; only the choice of candidates is
approximate. Backends: ``"faiss-hnsw"`` (the default where faiss is installed; batch search on
all cores) and ``"annoy"``; ``"exact"`` forces the matrix product.

The search breadth (annoy ``search_k``, HNSW ``efSearch``) is calibrated on build on queries
shaped like real ones, perturbed gallery rows and off-manifold "text-like" vectors
(:mod:`cirscope.neighbors._calibrate`), until recall@10 against exact search reaches
``target_recall`` (0.99) on both; :meth:`NeighborIndex.recall_report` returns what was measured.

Filtering (``mask``) runs inside the HNSW walk (faiss ``IDSelectorBitmap``) or over-fetches from
annoy; when the filter keeps few rows the qualifying rows are searched exactly instead.

Item ``i`` is gallery row ``i``; :attr:`NeighborIndex.ids` maps rows to your own ids.
:meth:`NeighborIndex.save` writes the backend's file, the ids and a JSON description with the
file's size and hash; :meth:`NeighborIndex.load` checks them and rebuilds (with an
:class:`IndexRebuilt` warning) when the embeddings' fingerprint changed or the file is damaged.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from cirscope._core.arrays import check_matrix
from cirscope._core.atomic import atomic_write, atomic_write_bytes
from cirscope.neighbors._backends import BACKENDS, default_n_trees, faiss_available, make_backend
from cirscope.neighbors._calibrate import RecallReport, calibrate, realistic_queries, recall_at_k

__all__ = [
    "AUTO_BACKEND",
    "EXACT_BELOW",
    "FILTER_EXACT_FRACTION",
    "IndexRebuilt",
    "NeighborIndex",
    "RecallReport",
    "default_n_trees",
    "embeddings_fingerprint",
    "top_positions",
]

#: Galleries with fewer rows than this are searched exactly. Measured against the default backend
#: (faiss HNSW, efSearch calibrated to recall@10 >= 0.99) at 512 dimensions on 2 shared cores (load
#: average ~4; ``benchmarks/bench_scale_index.py --crossover 2000,5000,10000,20000,50000``), single
#: query medians, exact on one BLAS thread: 2,000 rows exact 0.21 ms, HNSW 0.18 ms (build and
#: calibration 2.8 s); 5,000: 0.49 / 0.26 ms (3.5 s); 10,000: 1.33 / 0.34 ms (5.9 s); 20,000:
#: 6.0 / 0.32 ms; 50,000: 14.8 / 0.55 ms. HNSW answers faster from 2,000 rows, but below 5,000 both
#: stay under half a millisecond and exact search needs no build, no file and has recall 1.
EXACT_BELOW = 5_000

#: The backend ``backend="auto"`` uses at or above :data:`EXACT_BELOW` rows when faiss is
#: installed (annoy otherwise). Measured with ``benchmarks/bench_scale_index.py --n 100000 --dim 512``
#: on 2 shared cores (load average 4-6, so absolute times are pessimistic), each at its calibrated
#: breadth, recall@10 >= 0.99 on held-out perturbed and off-manifold queries: faiss HNSW (fp16)
#: single query 1.06 ms median, batch 832 queries/s, build 44 s, 124 MB beside the matrix; annoy
#: (50 trees, search_k 12,814) 9.8 ms, 121 queries/s (one call per query), 59 s, 273 MB; exact
#: numpy 24 ms. Raw faiss ``IndexHNSWFlat`` at matched recall: 1.08 ms, 419 queries/s, 44 s.
AUTO_BACKEND = "faiss-hnsw"

#: A filter that keeps less than this fraction of the rows (or fewer than ``exact_below``
#: rows) is answered by an exact search over the qualifying rows instead of the backend. Measured
#: with faiss HNSW at 50,000 x 512 on 2 shared cores (``bench_scale_index.py --crossover``), single
#: query medians, filtered HNSW walk vs exact over the kept rows: 20 %: 1.0 vs 22.6 ms (the whole
#: matrix multiplied); 10 %: 1.2 vs 2.0 ms; 5 %: 1.5 vs 0.7 ms; 2 %: 10.2 vs 0.5 ms (the walk
#: struggles through rejected rows). The crossover lies between 5 and 10 %.
FILTER_EXACT_FRACTION = 0.05

_FORMAT = "cirscope.neighbor-index"
_VERSION = 2
_CALIBRATION_K = 10
# Queries of each kind in the calibration sample. Off-manifold recall is heavy-tailed (a few
# queries between clusters have many near-ties): at 30,000 x 256 and a fixed efSearch, six samples
# of 200 gave recall@10 from 0.971 to 0.995; 500 narrow that by ~1.6x.
_CALIBRATION_QUERIES = 500
# Calibrate to a slightly higher recall than asked, for that sampling noise.
_CALIBRATION_MARGIN = 0.003
# Exact search with a filter keeping less than this fraction copies out the kept rows; above, it
# multiplies the whole matrix (copying scattered rows costs more than reading them all in order).
_GATHER_BELOW = 0.2
# A single query excluding at most this many rows (and no mask) searches unfiltered for
# k + len(exclude) and drops them, instead of a filtered search over an n-length mask.
_FAST_EXCLUDE_MAX = 64
# Exact batch search multiplies at most this many query x row scores at once (128 MB of float32).
_EXACT_BLOCK = 2**25
# The settings a saved index must share with a request for cached() to reuse it.
_OPTION_KEYS = ("backend", "exact_below", "n_trees", "search_k", "breadth", "hnsw_m", "ef_construction",
                "storage", "target_recall", "seed")


class IndexRebuilt(UserWarning):
    """A saved index did not match the embeddings (or was unreadable) and was rebuilt."""


def embeddings_fingerprint(embeddings: np.ndarray) -> str:
    """Hash of an embedding matrix (blake2b of its shape and float32 bytes), as ``Space.fingerprint``.

    Examples
    --------
    >>> a = np.eye(3, dtype=np.float32)
    >>> embeddings_fingerprint(a) == embeddings_fingerprint(a.copy())
    True
    >>> embeddings_fingerprint(a) == embeddings_fingerprint(a[::-1])
    False
    """
    arr = np.ascontiguousarray(embeddings, dtype=np.float32)
    h = hashlib.blake2b(digest_size=16)
    h.update(str(arr.shape).encode())
    h.update(arr.tobytes())
    return h.hexdigest()


def _file_digest(path: Path) -> str:
    """blake2b of the whole file."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 23):
            h.update(chunk)
    return h.hexdigest()


# Reopening a saved index checks its backend file by size and by a hash of sampled blocks (the
# first, the last, and others at positions drawn from a generator seeded by the size), not by
# hashing the whole file (0.8 GB at 1M x 256). Files up to _SAMPLE_BLOCKS blocks are hashed whole.
_SAMPLE_BLOCK = 1 << 16
_SAMPLE_BLOCKS = 64


def _sampled_digest(path: Path) -> str:
    """blake2b of the file's size and of sampled ``_SAMPLE_BLOCK``-byte blocks (whole when small).

    A truncated or extended file changes the size; damage inside a sampled block changes the hash.
    Damage elsewhere in a large file can pass (faiss still refuses graph links outside the rows
    when it reads the file): it then reaches faiss / annoy as a damaged graph, stored vector or
    tree, and since every candidate is re-scored exactly against the embeddings (whose fingerprint
    is checked), that can only lower recall, never return wrong scores. ``NeighborIndex.load(verify="full")`` hashes
    the whole file.
    """
    size = path.stat().st_size
    n_blocks = -(-size // _SAMPLE_BLOCK)
    h = hashlib.blake2b(digest_size=16)
    h.update(str(size).encode())
    with open(path, "rb") as fh:
        if n_blocks <= _SAMPLE_BLOCKS:
            while chunk := fh.read(1 << 23):
                h.update(chunk)
            return h.hexdigest()
        rng = np.random.default_rng(size)
        inner = rng.choice(np.arange(1, n_blocks - 1), size=_SAMPLE_BLOCKS - 2, replace=False)
        for block in [0, *np.sort(inner).tolist(), n_blocks - 1]:
            fh.seek(block * _SAMPLE_BLOCK)
            h.update(fh.read(_SAMPLE_BLOCK))
    return h.hexdigest()


def _check_embeddings(embeddings: Any) -> np.ndarray:
    """2-D, non-empty, finite float32 with unit rows (normalised copy only when needed)."""
    arr = check_matrix(embeddings, empty="an index needs at least one row")
    norms = np.linalg.norm(arr, axis=1)
    if np.abs(norms - 1).max() > 1e-3:
        arr = arr / norms[:, None]
    return arr


def _check_vectors(vectors: Any, dim: int) -> np.ndarray:
    q = np.asarray(vectors, dtype=np.float32)
    if q.ndim != 2 or q.shape[1] != dim:
        raise ValueError(f"query vectors must have {dim} dimensions, got shape {np.shape(vectors)}")
    norms = np.linalg.norm(q, axis=1, keepdims=True)
    if not np.isfinite(norms).all():
        raise ValueError("query vector contains NaN or infinite values")
    if (norms == 0).any():
        raise ValueError("query vector is all zeros: it has no direction")
    return q / norms


_BLAS: Any = None


#: Matrices of more values than this (rows x dims) get all BLAS threads for a single query: a
#: matrix-vector product over 1,000,000 x 256 took 79 ms on one thread and 42 ms with numpy's
#: default threads (2 cores), while small ones gain nothing from more threads (see below).
_ONE_THREAD_UP_TO = 1 << 23


def _one_blas_thread(size: int = 0):
    """A context that runs BLAS on one thread (a 10,000-row matrix-vector product gains nothing
    from more, and on a busy machine multi-threaded BLAS spikes from 0.5 ms to 10-20 ms); for a
    matrix of more than :data:`_ONE_THREAD_UP_TO` values, BLAS keeps its threads."""
    global _BLAS
    if size > _ONE_THREAD_UP_TO:
        return contextlib.nullcontext()
    if _BLAS is None:
        from threadpoolctl import ThreadpoolController

        _BLAS = ThreadpoolController()
    return _BLAS.limit(limits=1, user_api="blas")


def top_positions(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` largest finite scores, best first (ties by position).

    Examples
    --------
    >>> top_positions(np.array([0.1, 0.9, -np.inf, 0.9]), 5).tolist()
    [1, 3, 0]
    """
    k = min(k, int(np.isfinite(scores).sum()))
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    top = np.argpartition(-scores, k - 1)[:k] if k < scores.size else np.arange(scores.size)
    return top[np.lexsort((top, -scores[top]))].astype(np.int64)


def top_rows(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`top_positions` for each row of ``(m, n)`` scores: ``(m, k)`` positions and scores,
    best first, padded with ``-1`` / NaN where a row has fewer than ``k`` finite scores.

    Examples
    --------
    >>> rows, vals = top_rows(np.array([[0.2, 0.5, 0.1], [0.3, -np.inf, -np.inf]]), 2)
    >>> rows.tolist(), vals[1].tolist()
    ([[1, 0], [0, -1]], [0.30000001192092896, nan])
    """
    m, n = scores.shape
    k = min(int(k), n)
    if k <= 0:
        return np.empty((m, 0), np.int64), np.empty((m, 0), np.float32)
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < n else np.broadcast_to(np.arange(n), (m, n))
    vals = np.take_along_axis(scores, top, axis=1)
    order = np.lexsort((top, -vals), axis=1)
    top = np.take_along_axis(top, order, axis=1).astype(np.int64)
    vals = np.take_along_axis(vals, order, axis=1).astype(np.float32)
    bad = ~np.isfinite(vals)
    top[bad], vals[bad] = -1, np.nan
    return top, vals


def _atomic_save_npy(path: Path, arr: np.ndarray) -> None:
    with atomic_write(path) as fh:
        np.save(fh, arr)


class NeighborIndex:
    """Cosine nearest neighbours over ``(N, D)`` embeddings: exact below a size, an ANN backend above.

    Parameters
    ----------
    embeddings
        ``(N, D)`` vectors, one per gallery row (rows are L2-normalised if they are not). The
        index keeps a reference, not a copy, when they are float32 unit rows already.
    ids
        Your own id for each row (gallery ids, say); defaults to the row numbers.
    backend
        ``"auto"`` (default): exact below ``exact_below`` rows, else :data:`AUTO_BACKEND` when
        faiss is installed, else annoy (with a :attr:`note`). Passing ``n_trees`` or ``search_k``
        with ``"auto"`` means annoy. Or one of ``"exact"``, ``"faiss-hnsw"``, ``"annoy"``.
    exact_below
        Search exactly when ``N`` is below this (default :data:`EXACT_BELOW`).
    breadth
        The backend's search breadth for ``k = 10`` (``search_k`` / ``efSearch``; scaled up for
        larger ``k`` and for filters). Default: calibrated on build to reach ``target_recall``.
    n_trees, search_k
        Annoy's trees (default :func:`default_n_trees` of ``N``) and ``search_k`` (a synonym of
        ``breadth`` for annoy).
    hnsw_m, ef_construction, storage
        faiss HNSW graph degree (32), build breadth (80) and vector storage (``"fp16"``, ``"sq8"``,
        ``"flat"``; see :class:`cirscope.neighbors._backends.FaissHNSWBackend`).
    target_recall
        The recall@10 against exact search that the calibrated breadth must reach on both
        perturbed-row and off-manifold queries.
    seed
        Seed for the backend and the calibration sample.
    progress
        Show a progress bar while building.
    fingerprint
        The embeddings' fingerprint if already known (saves hashing them).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> emb = rng.normal(size=(500, 16)).astype(np.float32)
    >>> index = NeighborIndex(emb)
    >>> index.is_exact, index.backend
    (True, 'exact')
    >>> rows, scores = index.query(emb[3], k=3)
    >>> int(rows[0]), round(float(scores[0]), 4)
    (3, 1.0)
    >>> rows, _ = index.query(emb[3], k=3, exclude=[3], mask=np.arange(500) % 2 == 0)
    >>> bool((rows % 2 == 0).all() and 3 not in rows)
    True
    """

    def __init__(
        self,
        embeddings: Any,
        *,
        ids: Any = None,
        backend: str = "auto",
        exact_below: int = EXACT_BELOW,
        breadth: int | None = None,
        n_trees: int | None = None,
        search_k: int | None = None,
        hnsw_m: int | None = None,
        ef_construction: int | None = None,
        storage: str | None = None,
        target_recall: float = 0.99,
        seed: int = 0,
        progress: bool = True,
        fingerprint: str | None = None,
    ):
        self.embeddings = _check_embeddings(embeddings)
        n = self.embeddings.shape[0]
        self.ids = self._check_ids(ids, n)
        self.options: dict[str, Any] = {
            "backend": backend, "exact_below": int(exact_below), "breadth": breadth, "n_trees": n_trees,
            "search_k": search_k, "hnsw_m": hnsw_m, "ef_construction": ef_construction, "storage": storage,
            "target_recall": float(target_recall), "seed": int(seed),
        }  # fmt: skip
        self.exact_below = int(exact_below)
        self.target_recall = float(target_recall)
        self.seed = int(seed)
        self.progress = bool(progress)
        self._fingerprint = fingerprint
        self._backend: Any = None
        self._row_of: dict[Any, int] | None = None
        self._report: RecallReport | None = None
        self.breadth: int | None = None
        self.build_seconds = 0.0
        self.fast_queries = 0  # single queries answered without a filter (see _query_fast)
        self.loaded_from: Path | None = None
        self.note = ""
        self.exact_reason = ""
        if search_k is not None and breadth is not None and search_k != breadth:
            raise ValueError("pass search_k or breadth, not both")
        wanted = breadth if breadth is not None else search_k
        if wanted is not None and int(wanted) < 1:
            raise ValueError(f"search breadth must be positive, got {wanted}")
        if n_trees is not None and int(n_trees) < 1:
            raise ValueError(f"n_trees must be at least 1, got {n_trees}")
        if not 0 < self.target_recall <= 1:
            raise ValueError(f"target_recall must be in (0, 1], got {target_recall}")
        name = self._resolve_backend(backend, n)
        self.backend_name = name
        if name != "exact":
            self._build(name, None if wanted is None else int(wanted))

    def _resolve_backend(self, backend: str, n: int) -> str:
        if backend not in ("auto", "exact", *BACKENDS):
            raise ValueError(f"unknown backend {backend!r}: use one of 'auto', 'exact', {', '.join(map(repr, BACKENDS))}")
        if backend == "exact":
            self.exact_reason = "backend='exact'"
            return "exact"
        if backend == "auto":
            name, why = self._auto_choice(n, self.exact_below, self.options)
            if name == "exact":
                self.exact_reason = why
            else:
                self.note = why
            return name
        if backend == "faiss-hnsw" and not faiss_available():
            raise ImportError("backend='faiss-hnsw' needs faiss: pip install faiss-cpu")
        return backend

    @staticmethod
    def _auto_choice(n: int, exact_below: int, options: dict[str, Any]) -> tuple[str, str]:
        """The backend ``"auto"`` resolves to for ``n`` rows, and why (when not the usual)."""
        if n < exact_below:
            return "exact", f"{n} rows < exact_below={exact_below}"
        if options.get("n_trees") is not None or options.get("search_k") is not None:
            return "annoy", ""
        if AUTO_BACKEND == "faiss-hnsw" and not faiss_available():
            return "annoy", "faiss is not installed (pip install faiss-cpu): using annoy, slower per query"
        return AUTO_BACKEND, ""

    # ------------------------------------------------------------------ basics
    @staticmethod
    def _check_ids(ids: Any, n: int) -> np.ndarray:
        if ids is None:
            return np.arange(n, dtype=np.int64)
        arr = np.asarray(ids)
        if arr.shape != (n,):
            raise ValueError(f"ids must have one entry per embedding row ({n}), got shape {arr.shape}")
        if arr.dtype == object:
            arr = arr.astype(str)
        if len(np.unique(arr)) != n:
            raise ValueError("ids must be unique: two rows share an id")
        return arr

    def __len__(self) -> int:
        return int(self.embeddings.shape[0])

    def __repr__(self) -> str:
        if self.is_exact:
            return f"NeighborIndex({len(self)} x {self.dim}, exact)"
        return f"NeighborIndex({len(self)} x {self.dim}, {self.backend}, {self._backend.breadth_name}={self.breadth})"

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    @property
    def backend(self) -> str:
        """The backend answering queries: ``"exact"``, ``"faiss-hnsw"`` or ``"annoy"``."""
        return "exact" if self._backend is None else self._backend.name

    @property
    def is_exact(self) -> bool:
        """True when queries multiply the whole matrix (see :attr:`exact_reason`)."""
        return self._backend is None

    @property
    def n_trees(self) -> int | None:
        """Annoy's tree count (``None`` for other backends)."""
        return getattr(self._backend, "n_trees", None)

    @property
    def search_k(self) -> int | None:
        """Annoy's calibrated ``search_k`` (``None`` for other backends)."""
        return self.breadth if self.backend == "annoy" else None

    @property
    def measured_recall(self) -> float | None:
        """The lowest recall@10 over the calibration's query kinds (1.0 when exact)."""
        if self.is_exact:
            return 1.0
        return min(self._report.recall.values()) if self._report and self._report.recall else None

    @property
    def fingerprint(self) -> str:
        """The embeddings' hash (see :func:`embeddings_fingerprint`); a saved index is only reused when it matches."""
        if self._fingerprint is None:
            self._fingerprint = embeddings_fingerprint(self.embeddings)
        return self._fingerprint

    def memory_bytes(self) -> int:
        """Bytes the backend holds beside the shared embedding matrix (0 when exact)."""
        return 0 if self._backend is None else int(self._backend.memory_bytes())

    def row_of(self, id_: Any) -> int:
        """The row holding ``id_`` (KeyError naming the id when it is not indexed)."""
        if self._row_of is None:
            self._row_of = {v: i for i, v in enumerate(self.ids.tolist())}
        try:
            return self._row_of[id_.item() if isinstance(id_, np.generic) else id_]
        except KeyError:
            raise KeyError(f"id {id_!r} is not in this index ({len(self)} rows)") from None

    # ------------------------------------------------------------------ build
    def _build(self, name: str, breadth: int | None) -> None:
        from tqdm.auto import tqdm

        start = time.perf_counter()
        n, d = self.embeddings.shape
        o = self.options
        opts = {key: o[key] for key in ("n_trees", "search_k", "hnsw_m", "ef_construction", "storage")}
        backend = make_backend(name, d, n, self.seed, opts)
        with tqdm(total=n, desc=f"Neighbour index ({name}): adding {n} vectors", disable=not self.progress,
                  leave=False, unit="row", mininterval=0.5) as bar:  # fmt: skip
            backend.build(self.embeddings, bar)
            bar.set_description(f"Neighbour index ({name}): calibrating the search breadth")
            self._backend = backend
            self._calibrate(breadth)
        self.build_seconds = time.perf_counter() - start

    def _calibrate(self, breadth: int | None) -> None:
        """Pick (or, for a given ``breadth``, just measure) the breadth reaching ``target_recall``
        on perturbed and off-manifold queries; fall back to exact search when no breadth does."""
        n = len(self)
        k = min(_CALIBRATION_K, n)
        queries = realistic_queries(self.embeddings, _CALIBRATION_QUERIES, self.seed)
        truth = {kind: self._exact_rows(q, k, None)[0] for kind, q in queries.items()}
        backend = self._backend

        def search(q: np.ndarray, kk: int, b: int) -> np.ndarray:
            self.breadth = b
            return self._approximate(q, kk, None, None)[0]

        target = min(1.0, self.target_recall + _CALIBRATION_MARGIN)
        ladder = [breadth] if breadth is not None else backend.ladder(n)
        chosen, tried = calibrate(search, queries, truth, ladder, target if breadth is None else 0.0)
        if chosen is None:
            last = tried[-1][1] if tried else {}
            self.exact_reason = (
                f"{backend.name} needs {backend.breadth_name} > {ladder[-1] if ladder else 0} for recall@10 >= "
                f"{self.target_recall} on these embeddings (reached {last}); exact search is faster there"
            )
            self._backend, self.breadth = None, None
            return
        self.breadth = chosen
        self._report = RecallReport(
            backend=backend.name, breadth_name=backend.breadth_name, breadth=chosen, k=k,
            sample=_CALIBRATION_QUERIES, target=self.target_recall, recall=dict(tried[-1][1]), tried=tried,
            note=self.note,
        )  # fmt: skip

    def recall_report(self) -> RecallReport:
        """The recall@10 measured on build, per query kind (perturbed gallery rows, off-manifold
        "text-like" vectors), with the breadth chosen, ``k`` and the sample size.

        Examples
        --------
        >>> NeighborIndex(np.eye(4)).recall_report().to_frame()[["kind", "recall"]].to_dict("list")
        {'kind': ['perturbed', 'off-manifold'], 'recall': [1.0, 1.0]}
        """
        if self._report is not None:
            return self._report
        return RecallReport(
            backend="exact", breadth_name=None, breadth=None, k=_CALIBRATION_K, sample=0,
            target=self.target_recall, recall={"perturbed": 1.0, "off-manifold": 1.0},
            note=" ".join(x for x in (self.exact_reason, self.note) if x),
        )  # fmt: skip

    # ------------------------------------------------------------------ searching
    def _exact_rows(
        self, q: np.ndarray, k: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k of normalised ``(m, D)`` queries over the allowed rows (chunked matmul)."""
        emb = self.embeddings
        sub = None
        if allowed is not None and allowed.mean() < _GATHER_BELOW:
            sub = np.flatnonzero(allowed)
            emb = emb[sub]
        m, n = len(q), emb.shape[0]
        rows = np.full((m, k), -1, np.int64)
        scores = np.full((m, k), np.nan, np.float32)
        step = max(1, _EXACT_BLOCK // max(n, 1))
        for s in range(0, m, step):
            if m == 1:
                with _one_blas_thread(emb.size):
                    sims = q[s : s + step] @ emb.T
            else:
                sims = q[s : s + step] @ emb.T
            if allowed is not None and sub is None:
                sims[:, ~allowed] = -np.inf
            r, v = top_rows(sims, k)
            rows[s : s + step, : r.shape[1]], scores[s : s + step, : v.shape[1]] = r, v
        if sub is not None:
            rows = np.where(rows >= 0, sub[np.maximum(rows, 0)], -1)
        return rows, scores

    def _rescore(self, q: np.ndarray, cand: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact cosines of candidate rows (``-1`` ignored); the best ``k`` of each query."""
        rows = np.full((len(q), k), -1, np.int64)
        scores = np.full((len(q), k), np.nan, np.float32)
        step = max(1, 2**22 // max(1, cand.shape[1] * self.dim))
        for s in range(0, len(q), step):
            c = cand[s : s + step]
            vecs = np.asarray(self.embeddings[np.maximum(c, 0).ravel()]).reshape(*c.shape, self.dim)
            sims = np.einsum("md,mfd->mf", q[s : s + step], vecs)
            sims[c < 0] = -np.inf
            order = np.lexsort((c, -sims), axis=1)[:, :k]  # best first, ties by row (as exact search)
            got, val = np.take_along_axis(c, order, axis=1), np.take_along_axis(sims, order, axis=1)
            bad = ~np.isfinite(val)
            got[bad], val[bad] = -1, np.nan
            rows[s : s + step, : got.shape[1]], scores[s : s + step, : val.shape[1]] = got, val
        return rows, scores

    def _query_fast(
        self, q: np.ndarray, k: int, exclude: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """One query without a mask and without the batch machinery (same results as :meth:`_search`).

        A few ``exclude`` rows (the reference image of a composed query) do not need a filter: the
        backend is searched unfiltered for ``k + len(exclude)`` and the excluded rows dropped, which
        avoids building an ``n``-length mask and a filtered graph walk on every query. ``None`` when
        too few rows remain (the caller then takes the filtered path).
        """
        n = len(self)
        n_ex = 0 if exclude is None else int(exclude.size)
        k = min(k, n - n_ex)
        if k <= 0:
            return None
        self.fast_queries += 1
        if self._backend is None:
            with _one_blas_thread(self.embeddings.size):
                scores = self.embeddings @ q
            if n_ex:
                scores[exclude] = -np.inf
            top = top_positions(scores, k)
            return top, scores[top].astype(np.float32)
        backend = self._backend
        kk = k + n_ex
        rerank = backend.rerank_factor * kk
        cand = backend.search(q[None, :], min(n, rerank), backend.scaled(self.breadth, kk, 1.0))[0]
        cand = cand[cand >= 0]
        if n_ex:
            cand = cand[~np.isin(cand, exclude)]
        if cand.size < k:
            self.fast_queries -= 1
            return None
        sims = np.asarray(self.embeddings[cand]) @ q
        order = np.lexsort((cand, -sims))[:k]
        return cand[order], sims[order].astype(np.float32)

    def _approximate(
        self, q: np.ndarray, k: int, allowed: np.ndarray | None, n_ok: int | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The backend's candidates, rescored; queries left with fewer than ``k`` rows go exact."""
        backend, n = self._backend, len(self)
        fraction = 1.0 if allowed is None else (n_ok or n) / n
        breadth = backend.scaled(self.breadth, k, fraction)
        rerank = backend.rerank_factor * k
        if allowed is None or backend.native_filter:
            cand = backend.search(q, min(n, rerank), breadth, allowed)
        else:  # over-fetch so that about `rerank` candidates pass the filter, then drop the others
            fetch = min(n, int(np.ceil(rerank / fraction * 1.2)) + 10)
            cand = backend.search(q, fetch, breadth)
            cand = np.where((cand >= 0) & allowed[np.maximum(cand, 0)], cand, -1)
        rows, scores = self._rescore(q, cand, k)
        short = (rows < 0).any(axis=1)
        if short.any():  # the backend found too few qualifying rows: answer those queries exactly
            rows[short], scores[short] = self._exact_rows(q[short], k, allowed)
        return rows, scores

    def _search(
        self, q: np.ndarray, k: int, mask: np.ndarray | None, exclude: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        n = len(self)
        allowed = mask
        ex = self._check_exclude(exclude)
        if ex is not None:
            allowed = np.ones(n, bool) if mask is None else mask.copy()
            allowed[ex] = False
        n_ok = n if allowed is None else int(allowed.sum())
        kk = max(0, min(k, n_ok))
        rows = np.full((len(q), max(k, 0)), -1, np.int64)
        scores = np.full((len(q), max(k, 0)), np.nan, np.float32)
        if kk == 0:
            return rows, scores
        if self.is_exact or n_ok < self.exact_below or n_ok < FILTER_EXACT_FRACTION * n:
            r, s = self._exact_rows(q, kk, allowed)
        else:
            r, s = self._approximate(q, kk, allowed, n_ok)
        rows[:, :kk], scores[:, :kk] = r, s
        return rows, scores

    def _check_exclude(self, exclude: Any) -> np.ndarray | None:
        """Excluded rows as unique int64 (``None`` when there are none); IndexError outside the rows."""
        if exclude is None or not len(exclude):
            return None
        ex = np.unique(np.asarray(exclude).astype(np.int64, copy=False).ravel())
        n = len(self)
        if ((ex < 0) | (ex >= n)).any():
            raise IndexError(f"exclude lists rows outside 0..{n - 1}")
        return ex

    def _check_mask(self, mask: Any) -> np.ndarray | None:
        if mask is None:
            return None
        arr = np.asarray(mask)
        if arr.dtype != bool:
            raise TypeError(f"mask must be a boolean array with one value per row (got dtype {arr.dtype})")
        if arr.shape != (len(self),):
            raise ValueError(
                f"mask has shape {arr.shape} but the index has {len(self)} rows: one value per row"
            )
        return arr

    def query(
        self, vector: Any, k: int = 10, *, mask: Any = None, exclude: Any = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` rows with the highest cosine to ``vector``, best first.

        Parameters
        ----------
        vector
            A ``(D,)`` query vector (any norm).
        k
            How many rows to return; fewer when fewer rows qualify.
        mask
            Boolean, one per row: only rows where it is true are returned (e.g.
            ``metadata["source"] == "photo"``).
        exclude
            Rows never to return (e.g. the reference image).

        Returns
        -------
        rows, scores
            ``int64`` row numbers and their exact ``float32`` cosines.

        Examples
        --------
        >>> index = NeighborIndex(np.eye(4))
        >>> rows, scores = index.query([1.0, 0.2, 0.0, 0.0], k=2, exclude=[0])
        >>> rows.tolist(), [round(float(s), 3) for s in scores]
        ([1, 2], [0.196, 0.0])
        """
        q = np.asarray(vector)
        if q.ndim != 1:
            raise ValueError(f"query takes one (D,) vector, got shape {q.shape}; use query_batch for (m, D)")
        q = _check_vectors(q[None, :], self.dim)
        if mask is None and int(k) > 0:
            ex = self._check_exclude(exclude)
            if ex is None or ex.size <= _FAST_EXCLUDE_MAX:
                fast = self._query_fast(q[0], int(k), ex)
                if fast is not None:
                    return fast
        rows, scores = self._search(q, int(k), self._check_mask(mask), exclude)
        keep = rows[0] >= 0
        return rows[0][keep], scores[0][keep]

    def query_batch(
        self, vectors: Any, k: int = 10, *, mask: Any = None, exclude: Any = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`query` for ``(m, D)`` vectors: ``(m, k)`` rows and scores, in one backend call.

        Where fewer than ``k`` rows qualify, rows are padded with ``-1`` and scores with NaN.
        ``exclude`` applies to every query.

        Examples
        --------
        >>> rows, scores = NeighborIndex(np.eye(3)).query_batch(np.eye(3)[:2], k=2)
        >>> rows[:, 0].tolist()
        [0, 1]
        """
        q = _check_vectors(vectors, self.dim)
        return self._search(q, int(k), self._check_mask(mask), exclude)

    # ------------------------------------------------------------------ quality
    def recall(self, k: int = 10, sample: int = 200, seed: int = 0, kind: str = "gallery") -> float:
        """Mean recall@k of this index against exact search on ``sample`` queries.

        ``kind="gallery"``: sampled gallery rows as queries, each with itself excluded (as when
        searching by an image of the gallery); ``"perturbed"`` or ``"off-manifold"``: the
        calibration's realistic query kinds (:func:`cirscope.neighbors._calibrate.realistic_queries`).
        recall@k = |approximate top-k ∩ exact top-k| / k, averaged (Manning, Raghavan & Schütze
        2008, ch. 8). An exact index has recall 1.

        Examples
        --------
        >>> NeighborIndex(np.eye(5)).recall(k=2, sample=5)
        1.0
        """
        n = len(self)
        if kind == "gallery":
            k = min(int(k), n - 1)
            if k <= 0:
                return 1.0
            rows = np.sort(np.random.default_rng(seed).choice(n, size=min(sample, n), replace=False))
            q = np.asarray(self.embeddings[rows], dtype=np.float32)
            truth, _ = self._exact_rows(q, k + 1, None)
            got, _ = self.query_batch(q, k + 1)
            drop = lambda r: np.array([x[x != row][:k] for x, row in zip(r, rows, strict=True)])  # noqa: E731
            return recall_at_k(drop(truth), drop(got))
        queries = realistic_queries(self.embeddings, sample, seed)
        if kind not in queries:
            raise ValueError(f"kind must be 'gallery' or one of {sorted(queries)}, got {kind!r}")
        k = min(int(k), n)
        return recall_at_k(self._exact_rows(queries[kind], k, None)[0], self.query_batch(queries[kind], k)[0])

    # ------------------------------------------------------------------ persistence
    def _description(self, backend_file: str | None, size: int, digest: str, sampled: str) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "n": len(self),
            "dim": self.dim,
            "fingerprint": self.fingerprint,
            "options": self.options,
            "backend": self.backend,
            "resolved_backend": self.backend_name,
            "backend_settings": self._backend.settings() if self._backend is not None else {},
            "breadth": self.breadth,
            "backend_file": backend_file,
            "backend_file_bytes": size,
            "backend_file_blake2b": digest,
            "backend_file_sampled_blake2b": sampled,
            "recall_report": self._report.to_dict() if self._report is not None else None,
            "exact_reason": self.exact_reason,
            "note": self.note,
        }

    def save(self, folder: str | os.PathLike, *, embeddings: bool = True) -> Path:
        """Write ``index.json``, ``ids.npy``, the backend's file and (``embeddings=True``) ``embeddings.npy``.

        Every file is written under a temporary name and renamed; ``index.json`` comes last and
        records the backend file's size and hash, so a folder is either complete or still
        describes the previous index, and a damaged file is detected on load.

        Examples
        --------
        >>> import tempfile
        >>> folder = NeighborIndex(np.eye(3), ids=["a", "b", "c"]).save(tempfile.mkdtemp())
        >>> NeighborIndex.load(folder).ids.tolist()
        ['a', 'b', 'c']
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        backend_file, size, digest, sampled = None, 0, "", ""
        if self._backend is not None:
            b = self._backend
            tag = hashlib.blake2b(json.dumps(b.settings(), sort_keys=True).encode(), digest_size=4).hexdigest()
            backend_file = f"{b.name}-{self.fingerprint[:16]}-{tag}-{self.seed}.{b.file_suffix}"
            tmp = folder / f".{backend_file}.{uuid.uuid4().hex}.tmp"
            b.save(tmp)
            size, digest, sampled = tmp.stat().st_size, _file_digest(tmp), _sampled_digest(tmp)
            os.replace(tmp, folder / backend_file)
        _atomic_save_npy(folder / "ids.npy", self.ids)
        if embeddings:
            _atomic_save_npy(folder / "embeddings.npy", np.ascontiguousarray(self.embeddings))
        atomic_write_bytes(
            folder / "index.json", json.dumps(self._description(backend_file, size, digest, sampled), indent=2).encode()
        )
        for name in BACKENDS.values():
            for stale in folder.glob(f"{name.name}-*.{name.file_suffix}"):
                if stale.name != backend_file:
                    stale.unlink(missing_ok=True)
        return folder

    @staticmethod
    def _settings(info: dict[str, Any]) -> dict[str, Any]:
        return {key: info["options"][key] for key in _OPTION_KEYS if key in info.get("options", {})}

    @classmethod
    def load(
        cls,
        folder: str | os.PathLike,
        embeddings: Any = None,
        *,
        fingerprint: str | None = None,
        progress: bool = True,
        verify: str = "sampled",
    ) -> NeighborIndex:
        """Reopen a folder written by :meth:`save`; embeddings are memory-mapped, as is annoy's forest.

        Pass the current ``embeddings`` (and their ``fingerprint`` if known) to check that the
        saved index still matches them: when it does not, or when the backend's file fails its
        size / hash check, a new index is built with the saved settings and an
        :class:`IndexRebuilt` warning says so. Without ``embeddings`` the folder must hold
        ``embeddings.npy``.

        ``verify="sampled"`` (default) checks the backend file's size and a hash of sampled blocks
        (the whole file when it is small; a few MB read however large it is); ``"full"`` hashes
        the whole file. Damage the sample misses can only lower recall: every candidate is
        re-scored exactly against the embeddings.
        """
        if verify not in ("sampled", "full"):
            raise ValueError(f"verify must be 'sampled' or 'full', got {verify!r}")
        folder = Path(folder)
        info_path = folder / "index.json"
        if not info_path.is_file():
            raise FileNotFoundError(f"{info_path} not found: pass a folder written by NeighborIndex.save")
        info = json.loads(info_path.read_text())
        if info.get("format") != _FORMAT:
            raise ValueError(f"{info_path} does not describe a cirscope neighbour index")
        ids = np.load(folder / "ids.npy", allow_pickle=False)
        if embeddings is None:
            path = folder / "embeddings.npy"
            if not path.is_file():
                raise FileNotFoundError(
                    f"{path} not found: the index was saved without embeddings; pass them: "
                    "NeighborIndex.load(folder, embeddings)"
                )
            emb = np.load(path, mmap_mode="r", allow_pickle=False)
            fp = info["fingerprint"]
        else:
            emb = _check_embeddings(embeddings)
            fp = fingerprint or embeddings_fingerprint(emb)

        def rebuild(reason: str) -> NeighborIndex:
            warnings.warn(f"The saved neighbour index in {folder} {reason}; rebuilding it.", IndexRebuilt,
                          stacklevel=3)  # fmt: skip
            keep_ids = ids if len(ids) == emb.shape[0] else None
            settings = cls._settings(info) if info.get("version") == _VERSION else {}
            return cls(emb, ids=keep_ids, progress=progress, fingerprint=fp, **settings)

        reason = cls._mismatch(info, emb, fp, ids)
        if reason:
            return rebuild(reason)
        index = cls.__new__(cls)
        index.embeddings = emb
        index.ids = ids
        index.options = dict(info["options"])
        index.exact_below = int(index.options["exact_below"])
        index.target_recall = float(index.options["target_recall"])
        index.seed = int(index.options["seed"])
        index.progress = progress
        index._fingerprint = fp
        index._backend = None
        index._row_of = None
        index.breadth = info.get("breadth")
        index.build_seconds = 0.0
        index.fast_queries = 0
        index.loaded_from = folder
        index.exact_reason = info.get("exact_reason", "")
        index.note = info.get("note", "")
        index.backend_name = info.get("resolved_backend", info["backend"])
        report = info.get("recall_report")
        index._report = RecallReport.from_dict(report) if report else None
        if info.get("backend_file"):
            path = folder / info["backend_file"]
            try:
                if not path.is_file():
                    raise OSError(f"{path.name} is missing")
                sampled = info.get("backend_file_sampled_blake2b")
                if verify == "full" or not sampled:
                    digest, expected = _file_digest, info["backend_file_blake2b"]
                else:
                    digest, expected = _sampled_digest, sampled
                if path.stat().st_size != info["backend_file_bytes"] or digest(path) != expected:
                    raise OSError(f"{path.name} is damaged (its size or hash changed)")
                backend = BACKENDS[info["backend"]].load(path, int(info["dim"]), info["backend_settings"], index.seed)
                if backend.n_items() != len(emb):
                    raise OSError(f"{path.name} has {backend.n_items()} items, not {len(emb)}")
            except (OSError, ImportError) as exc:
                return rebuild(f"has an unusable {info['backend']} file ({exc})")
            index._backend = backend
        return index

    @staticmethod
    def _mismatch(info: dict[str, Any], emb: np.ndarray, fp: str, ids: np.ndarray) -> str:
        if info.get("version") != _VERSION:
            return f"has format version {info.get('version')}, not {_VERSION}"
        if tuple(emb.shape) != (info["n"], info["dim"]):
            return (
                f"covers {info['n']} x {info['dim']} embeddings but these are {emb.shape[0]} x {emb.shape[1]}"
            )
        if info["fingerprint"] != fp:
            return "was built from different embeddings (fingerprint changed)"
        if len(ids) != info["n"]:
            return "has an ids file of the wrong length"
        return ""

    @classmethod
    def cached(
        cls,
        embeddings: Any,
        folder: str | os.PathLike,
        fingerprint: str | None = None,
        **kwargs: Any,
    ) -> NeighborIndex:
        """Load the index saved in ``folder`` if it matches ``embeddings`` and the settings, else build and save one.

        The embeddings themselves are not written (the caller owns them). Keyword arguments go
        to the constructor; a saved index built with other settings (backend, breadth, trees,
        graph, seed, ``exact_below``, target recall) is rebuilt.

        Examples
        --------
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> emb = np.eye(4)
        >>> NeighborIndex.cached(emb, folder).loaded_from is None
        True
        >>> NeighborIndex.cached(emb, folder).loaded_from is not None
        True
        """
        folder = Path(folder)
        emb = _check_embeddings(embeddings)
        fp = fingerprint or embeddings_fingerprint(emb)
        info_path = folder / "index.json"
        rebuilt: NeighborIndex | None = None
        if info_path.is_file():
            try:
                info = json.loads(info_path.read_text())
                defaults = {"backend": "auto", "exact_below": EXACT_BELOW, "target_recall": 0.99, "seed": 0}
                wanted = {key: kwargs.get(key, defaults.get(key)) for key in _OPTION_KEYS}
                wanted["target_recall"] = float(wanted["target_recall"])
                ok = info.get("fingerprint") == fp and info.get("options") == wanted
                if ok and wanted["backend"] == "auto":
                    # built with annoy because faiss was missing, say: rebuild now that it is there
                    now = cls._auto_choice(emb.shape[0], int(wanted["exact_below"]), wanted)[0]
                    ok = info.get("resolved_backend") == now
                if ok and "ids" in kwargs and kwargs["ids"] is not None:
                    # the saved ids were checked unique when built: equal ids need no uniqueness sort
                    saved = np.load(folder / "ids.npy", allow_pickle=False)
                    given = np.asarray(kwargs["ids"])
                    ok = np.array_equal(saved, given.astype(str) if given.dtype == object else given)
                if ok:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", IndexRebuilt)  # a rebuild is what cached() is for
                        index = cls.load(folder, emb, fingerprint=fp, progress=kwargs.get("progress", True))
                    if index.loaded_from is not None:
                        return index
                    rebuilt = index  # the saved files were damaged: load() built a new index
            except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError):
                pass
        index = rebuilt if rebuilt is not None else cls(emb, fingerprint=fp, **kwargs)
        try:
            index.save(folder, embeddings=False)
            index.loaded_from = None
        except OSError as exc:
            warnings.warn(
                f"Could not save the neighbour index in {folder} ({exc}); it will be rebuilt next time.",
                stacklevel=2,
            )
        return index

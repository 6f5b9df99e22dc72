"""Nearest-neighbour search over image embeddings: exact numpy for small galleries, an ANN backend above.

:class:`NeighborIndex` answers "which gallery rows have the highest cosine to this vector?".
Below ``exact_below`` rows it multiplies the embedding matrix by the queries (exact and, at that
size, faster than any graph or tree). Above, an approximate backend
(:mod:`cirscope.neighbors._backends`) proposes candidates, which are rescored with the true dot product
against the shared matrix, so scores are always exact cosines; only the choice of candidates is
approximate (:mod:`cirscope.neighbors._search`). Backends: ``"faiss-ivf"`` (the default where faiss
is installed, from :data:`IVF_FROM` rows), ``"faiss-hnsw"`` (the default just above
:data:`EXACT_BELOW`; both search batches on all cores) and ``"annoy"``; ``"exact"`` forces the
matrix product.

The search breadth (annoy ``search_k``, HNSW ``efSearch``, IVF ``nprobe``) is calibrated on build on queries
shaped like real ones, perturbed gallery rows and off-manifold "text-like" vectors
(:mod:`cirscope.neighbors._calibrate`), until recall@10 against exact search reaches
``target_recall`` (0.99) on both; :meth:`NeighborIndex.recall_report` returns what was measured.

Filtering (``mask``) runs inside the HNSW walk or the IVF scan (faiss ``IDSelectorBitmap``) or over-fetches from
annoy; when the filter keeps few rows the qualifying rows are searched exactly instead.

Item ``i`` is gallery row ``i``; :attr:`NeighborIndex.ids` maps rows to your own ids.
:meth:`NeighborIndex.save` writes the backend's file, the ids and a JSON description with the
file's size and hash; :meth:`NeighborIndex.load` checks them and rebuilds (with an
:class:`~cirscope.neighbors._persist.IndexRebuilt` warning) when the embeddings' fingerprint
changed or the file is damaged (:mod:`cirscope.neighbors._persist`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from cirscope._core.arrays import check_matrix
from cirscope._core.hashing import embeddings_fingerprint
from cirscope.neighbors._backends import BACKENDS, faiss_available, make_backend
from cirscope.neighbors._calibrate import Calibrated, RecallReport
from cirscope.neighbors._persist import Persisted
from cirscope.neighbors._search import FAST_EXCLUDE_MAX, Searching, check_vectors

__all__ = ["AUTO_BACKEND", "EXACT_BELOW", "IVF_FROM", "NeighborIndex"]


#: Galleries with fewer rows than this are searched exactly. Measured against the default backend
#: (faiss HNSW, efSearch calibrated to recall@10 >= 0.99) at 512 dimensions on 2 shared cores (load
#: average ~4; ``benchmarks/bench_scale_index.py --crossover 2000,5000,10000,20000,50000``), single
#: query medians, exact on one BLAS thread: 2,000 rows exact 0.21 ms, HNSW 0.18 ms (build and
#: calibration 2.8 s); 5,000: 0.49 / 0.26 ms (3.5 s); 10,000: 1.33 / 0.34 ms (5.9 s); 20,000:
#: 6.0 / 0.32 ms; 50,000: 14.8 / 0.55 ms. HNSW answers faster from 2,000 rows, but below 5,000 both
#: stay under half a millisecond and exact search needs no build, no file and has recall 1.
EXACT_BELOW = 5_000

#: The backend ``backend="auto"`` uses from :data:`EXACT_BELOW` to :data:`IVF_FROM` rows when faiss
#: is installed (annoy otherwise), and wherever HNSW settings are asked for. Measured (against annoy) with ``benchmarks/bench_scale_index.py --n 100000 --dim 512``
#: on 2 shared cores (load average 4-6, so absolute times are pessimistic), each at its calibrated
#: breadth, recall@10 >= 0.99 on held-out perturbed and off-manifold queries: faiss HNSW (fp16)
#: single query 1.06 ms median, batch 832 queries/s, build 44 s, 124 MB beside the matrix; annoy
#: (50 trees, search_k 12,814) 9.8 ms, 121 queries/s (one call per query), 59 s, 273 MB; exact
#: numpy 24 ms. Raw faiss ``IndexHNSWFlat`` at matched recall: 1.08 ms, 419 queries/s, 44 s.
AUTO_BACKEND = "faiss-hnsw"

#: From this many rows ``backend="auto"`` uses faiss IVF (``"faiss-ivf"``) instead of HNSW: IVF was
#: faster at every size measured, each backend at the breadth it calibrated itself, on fresh
#: perturbed and off-manifold queries (``benchmarks/bench_scale_backends.py``, clustered vectors,
#: 2 cores, both indexes timed query by query in alternating order). IVF / HNSW median single-query
#: latency: 0.77 (10,000 x 512), 0.85 (30,000 x 512), 0.54 (100,000 x 512, where HNSW also missed
#: 0.99 off-manifold on the fresh queries), 0.75 (100,000 x 256), 0.26 (250,000 x 256); at
#: 500,000 x 256 no efSearch reached the target and HNSW fell back to exact search (IVF 1.6 ms,
#: 17x faster), at 1,000,000 x 256 likewise. IVF also built 1.7-5.6x faster in a third of the
#: memory. The smallest size measured is the switch; between :data:`EXACT_BELOW` and it HNSW stays.
IVF_FROM = 10_000


def _check_embeddings(embeddings: Any) -> np.ndarray:
    """2-D, non-empty, finite float32 with unit rows (normalised copy only when needed)."""
    arr = check_matrix(embeddings, empty="an index needs at least one row")
    norms = np.linalg.norm(arr, axis=1)
    if np.abs(norms - 1).max() > 1e-3:
        arr = arr / norms[:, None]
    return arr


class NeighborIndex(Searching, Calibrated, Persisted):
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
        with ``"auto"`` means annoy; from :data:`IVF_FROM` rows (or with ``nlist``) it means
        ``"faiss-ivf"``. Or one of ``"exact"``, ``"faiss-hnsw"``, ``"faiss-ivf"``, ``"annoy"``.
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
    nlist
        faiss IVF cells (default :func:`~cirscope.neighbors._faiss_ivf.default_nlist` of ``N``);
        ``storage`` then names its codes (``"sq8"`` default, ``"fp16"``, ``"flat"``).
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
        nlist: int | None = None,
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
            "nlist": nlist, "target_recall": float(target_recall), "seed": int(seed),
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
        if backend.startswith("faiss") and not faiss_available():
            raise ImportError(f"backend={backend!r} needs faiss: pip install faiss-cpu")
        return backend

    @staticmethod
    def _auto_choice(n: int, exact_below: int, options: dict[str, Any]) -> tuple[str, str]:
        """The backend ``"auto"`` resolves to for ``n`` rows, and why (when not the usual)."""
        if n < exact_below:
            return "exact", f"{n} rows < exact_below={exact_below}"
        if options.get("n_trees") is not None or options.get("search_k") is not None:
            return "annoy", ""
        if not faiss_available():
            return "annoy", "faiss is not installed (pip install faiss-cpu): using annoy, slower per query"
        if options.get("nlist") is not None or (n >= IVF_FROM and options.get("hnsw_m") is None
                                                 and options.get("ef_construction") is None):
            return "faiss-ivf", ""
        return AUTO_BACKEND, ""

    # ------------------------------------------------------------------ basics
    #: The defaults of the settings a saved index must share with a request to be reused.
    _DEFAULTS: ClassVar[dict[str, Any]] = {"backend": "auto", "exact_below": EXACT_BELOW, "target_recall": 0.99, "seed": 0}
    _check_embeddings = staticmethod(_check_embeddings)

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

    def __repr__(self) -> str:
        if self.is_exact:
            return f"NeighborIndex({len(self)} x {self.dim}, exact)"
        return f"NeighborIndex({len(self)} x {self.dim}, {self.backend}, {self._backend.breadth_name}={self.breadth})"

    @property
    def backend(self) -> str:
        """The backend answering queries: ``"exact"``, ``"faiss-hnsw"``, ``"faiss-ivf"`` or ``"annoy"``."""
        return "exact" if self._backend is None else self._backend.name

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
        opts = {key: o[key] for key in ("n_trees", "search_k", "hnsw_m", "ef_construction", "storage", "nlist")}
        backend = make_backend(name, d, n, self.seed, opts)
        with tqdm(total=n, desc=f"Neighbour index ({name}): adding {n} vectors", disable=not self.progress,
                  leave=False, unit="row", mininterval=0.5) as bar:  # fmt: skip
            backend.build(self.embeddings, bar)
            bar.set_description(f"Neighbour index ({name}): calibrating the search breadth")
            self._backend = backend
            self._calibrate(breadth)
        self.build_seconds = time.perf_counter() - start

    # ------------------------------------------------------------------ searching
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
        q = check_vectors(q[None, :], self.dim)
        if mask is None and int(k) > 0:
            ex = self._check_exclude(exclude)
            if ex is None or ex.size <= FAST_EXCLUDE_MAX:
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
        q = check_vectors(vectors, self.dim)
        return self._search(q, int(k), self._check_mask(mask), exclude)


"""How a :class:`~cirscope.NeighborIndex` answers queries: exact matrix products and the backend's candidates.

Below ``exact_below`` rows (or when a filter keeps few rows) the queries are multiplied by the
embedding matrix. Above, the approximate backend (:mod:`cirscope.neighbors._backends`) proposes
candidates, which are rescored with the true dot product against the shared matrix, so scores are
always exact cosines; only the choice of candidates is approximate. Filtering (``mask``) runs
inside the HNSW walk (faiss ``IDSelectorBitmap``) or over-fetches from annoy.

:class:`Searching` holds these mechanics as methods of the index; :mod:`cirscope.neighbors._index`
holds the public :meth:`~cirscope.NeighborIndex.query` and :meth:`~cirscope.NeighborIndex.query_batch`.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from cirscope._core.arrays import top_k

__all__ = ["FAST_EXCLUDE_MAX", "FILTER_EXACT_FRACTION", "Searching", "check_vectors"]

#: A filter that keeps less than this fraction of the rows (or fewer than ``exact_below``
#: rows) is answered by an exact search over the qualifying rows instead of the backend. Measured
#: with faiss HNSW at 50,000 x 512 on 2 shared cores (``bench_scale_index.py --crossover``), single
#: query medians, filtered HNSW walk vs exact over the kept rows: 20 %: 1.0 vs 22.6 ms (the whole
#: matrix multiplied); 10 %: 1.2 vs 2.0 ms; 5 %: 1.5 vs 0.7 ms; 2 %: 10.2 vs 0.5 ms (the walk
#: struggles through rejected rows). The crossover lies between 5 and 10 %.
FILTER_EXACT_FRACTION = 0.05

# Exact search with a filter keeping less than this fraction copies out the kept rows; above, it
# multiplies the whole matrix (copying scattered rows costs more than reading them all in order).
_GATHER_BELOW = 0.2
# A single query excluding at most this many rows (and no mask) searches unfiltered for
# k + len(exclude) and drops them, instead of a filtered search over an n-length mask.
FAST_EXCLUDE_MAX = 64
# Exact batch search multiplies at most this many query x row scores at once (128 MB of float32).
_EXACT_BLOCK = 2**25


def check_vectors(vectors: Any, dim: int) -> np.ndarray:
    """``(m, dim)`` query vectors as unit float32 rows; ``ValueError`` for NaN, infinite or zero vectors.

    Examples
    --------
    >>> check_vectors([[3.0, 4.0]], 2).tolist()
    [[0.6000000238418579, 0.800000011920929]]
    """
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



class Searching:
    """Search mechanics of :class:`~cirscope.NeighborIndex` (a mixin: it reads ``embeddings``,
    ``exact_below``, ``breadth``, ``fast_queries`` and the backend ``_backend`` of the index)."""

    embeddings: Any
    exact_below: int
    breadth: int | None
    fast_queries: int
    _backend: Any

    @property
    def dim(self) -> int:
        """The embeddings' dimensions."""
        return int(self.embeddings.shape[1])

    def __len__(self) -> int:
        return int(self.embeddings.shape[0])

    @property
    def is_exact(self) -> bool:
        """True when queries multiply the whole matrix (see :attr:`exact_reason`)."""
        return self._backend is None

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
            r, v = top_k(sims, k, finite_only=True, with_scores=True)
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
            return top_k(scores, k, finite_only=True, with_scores=True)
        backend = self._backend
        kk = k + n_ex
        rerank = backend.rerank_factor * kk
        cand = backend.search(q[None, :], min(n, rerank), backend.scaled(self.breadth, kk, 1.0))[0]
        cand = cand[cand >= 0]
        if n_ex:  # a few rows: compare directly (np.isin costs more than the comparison here)
            cand = cand[(cand[:, None] != exclude[None, :]).all(axis=1)]
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
        n = len(self)
        if isinstance(exclude, (list, tuple)) and all(type(e) is int for e in exclude):  # the usual [reference]
            if not all(0 <= e < n for e in exclude):
                raise IndexError(f"exclude lists rows outside 0..{n - 1}")
            return np.array(sorted(set(exclude)), dtype=np.int64)
        ex = np.unique(np.asarray(exclude).astype(np.int64, copy=False).ravel())
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


"""Nearest-neighbour search over image embeddings: exact numpy for small galleries, annoy for large ones.

:class:`NeighborIndex` answers "which gallery rows have the highest cosine to this vector?".
Below ``exact_below`` rows it multiplies the embedding matrix by the query (exact and, at that
size, faster than any tree). Above, it uses annoy's random-projection forest (Bernhardsson,
"Annoy: approximate nearest neighbors", 2013-) with the angular metric, then rescores the
candidates with the true dot product, so scores are always exact cosines; only the choice of
candidates is approximate. Recall@k against exact search is measured on build
(:meth:`NeighborIndex.recall`) and annoy's ``search_k`` is raised until it reaches
``target_recall`` (0.99 by default).

Filtering (``mask``) over-fetches from annoy and keeps the rows that pass; when the filter
keeps few rows the qualifying rows are searched exactly instead (that is faster there).

Annoy needs dense integer item ids: item ``i`` is gallery row ``i``, and :attr:`NeighborIndex.ids`
maps rows to your own ids (gallery ids, say). :meth:`NeighborIndex.save` writes the forest,
the ids and a JSON description; :meth:`NeighborIndex.load` memory-maps them back and
rebuilds (with a warning) when the embeddings' fingerprint has changed.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from cirscope._vectors import check_matrix

__all__ = ["EXACT_BELOW", "FILTER_EXACT_FRACTION", "IndexRebuilt", "NeighborIndex", "embeddings_fingerprint"]

#: Galleries with fewer rows than this are searched exactly. Measured on 2 shared cores at 512
#: dimensions (``benchmarks/bench_index.py --crossover``, annoy tuned to recall@10 >= 0.99, exact
#: search on one BLAS thread): 5,000 rows: exact 0.17 ms, and annoy cannot reach the recall with
#: fewer candidates than half the gallery; 10,000 rows: exact 0.88 ms, annoy 0.51 ms; 20,000 rows:
#: exact 2.5 ms, annoy 0.66 ms.
EXACT_BELOW = 10_000

#: A filter that keeps less than this fraction of the rows (or fewer than ``exact_below``
#: rows) is answered by an exact search over the qualifying rows instead of annoy over-fetching
#: (measured at 100,000 x 512 on 2 cores: over-fetching 1.3 ms at 20 %, 1.6 ms at 10 %, 2.1 ms
#: at 5 %; the exact search over the kept rows 9 ms, 3.6 ms, 2.0 ms).
FILTER_EXACT_FRACTION = 0.05

_FORMAT = "cirscope.neighbor-index"
_VERSION = 1
_CALIBRATION_K = 10
_CALIBRATION_QUERIES = 200
# Calibrate to a slightly higher recall than asked: held-out queries score ~0.005 below the
# gallery rows used for calibration.
_CALIBRATION_MARGIN = 0.005
# Exact search with a filter keeping less than this fraction copies out the kept rows; above, it
# multiplies the whole matrix (copying scattered rows costs more than reading them all in order).
_GATHER_BELOW = 0.2


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


def default_n_trees(n: int) -> int:
    """Annoy trees for a gallery of ``n`` rows: about one per 2,000 rows, between 10 and 100.

    More trees reach a given recall with a smaller ``search_k`` (faster queries) but cost build
    time and disk (each tree is about ``n`` nodes). 50 trees at 100,000 rows build in ~9 s on 2 cores.

    Examples
    --------
    >>> default_n_trees(1_000), default_n_trees(100_000), default_n_trees(10_000_000)
    (10, 50, 100)
    """
    return int(min(100, max(10, round(n / 2000))))


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


def _one_blas_thread():
    """A context that runs BLAS on one thread (a 10,000-row matrix-vector product gains nothing
    from more, and on a busy machine multi-threaded BLAS spikes from 0.5 ms to 10-20 ms)."""
    global _BLAS
    if _BLAS is None:
        from threadpoolctl import ThreadpoolController

        _BLAS = ThreadpoolController()
    return _BLAS.limit(limits=1, user_api="blas")


def top_positions(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` largest finite scores, best first (ties by position)."""
    k = min(k, int(np.isfinite(scores).sum()))
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    top = np.argpartition(-scores, k - 1)[:k] if k < scores.size else np.arange(scores.size)
    return top[np.lexsort((top, -scores[top]))].astype(np.int64)


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _atomic_save_npy(path: Path, arr: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, arr)
    os.replace(tmp, path)


class NeighborIndex:
    """Cosine nearest neighbours over ``(N, D)`` embeddings: exact below a size, annoy above.

    Parameters
    ----------
    embeddings
        ``(N, D)`` vectors, one per gallery row (rows are L2-normalised if they are not).
    ids
        Your own id for each row (gallery ids, say); defaults to the row numbers.
    exact_below
        Search exactly when ``N`` is below this (default :data:`EXACT_BELOW`, the measured
        crossover where annoy starts to be faster).
    n_trees
        Annoy trees (default :func:`default_n_trees` of ``N``).
    search_k
        Annoy nodes inspected per query for ``k = 10`` (scaled up for larger ``k``). Default:
        raised on build until the measured recall@10 reaches ``target_recall``.
    target_recall
        The recall@10 against exact search that the default ``search_k`` must reach.
    seed
        Seed for annoy's trees and the calibration sample.
    progress
        Show a progress bar while building an annoy forest.
    fingerprint
        The embeddings' fingerprint if already known (saves hashing them).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> emb = rng.normal(size=(500, 16)).astype(np.float32)
    >>> index = NeighborIndex(emb)
    >>> index.is_exact
    True
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
        exact_below: int = EXACT_BELOW,
        n_trees: int | None = None,
        search_k: int | None = None,
        target_recall: float = 0.99,
        seed: int = 0,
        progress: bool = True,
        fingerprint: str | None = None,
    ):
        self.embeddings = _check_embeddings(embeddings)
        n = self.embeddings.shape[0]
        self.ids = self._check_ids(ids, n)
        self.exact_below = int(exact_below)
        self.target_recall = float(target_recall)
        self.seed = int(seed)
        self.progress = bool(progress)
        self._fingerprint = fingerprint
        self._annoy: Any = None
        self._row_of: dict[Any, int] | None = None
        self.n_trees = int(n_trees) if n_trees is not None else default_n_trees(n)
        self.search_k = int(search_k) if search_k is not None else None
        self.measured_recall: float | None = None
        self.build_seconds = 0.0
        self.loaded_from: Path | None = None
        self.exact_reason = f"{n} rows < exact_below={self.exact_below}" if n < self.exact_below else ""
        if self.n_trees < 1:
            raise ValueError(f"n_trees must be at least 1, got {n_trees}")
        if self.search_k is not None and self.search_k < 1:
            raise ValueError(f"search_k must be positive, got {search_k}")
        if not 0 < self.target_recall <= 1:
            raise ValueError(f"target_recall must be in (0, 1], got {target_recall}")
        if n >= self.exact_below:
            self._build()

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
        kind = "exact" if self.is_exact else f"annoy, {self.n_trees} trees, search_k={self.search_k}"
        return f"NeighborIndex({len(self)} x {self.dim}, {kind})"

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    @property
    def is_exact(self) -> bool:
        """True when queries multiply the whole matrix; False when annoy is used (see :attr:`exact_reason`)."""
        return self._annoy is None

    @property
    def fingerprint(self) -> str:
        """The embeddings' hash (see :func:`embeddings_fingerprint`); a saved index is only reused when it matches."""
        if self._fingerprint is None:
            self._fingerprint = embeddings_fingerprint(self.embeddings)
        return self._fingerprint

    def row_of(self, id_: Any) -> int:
        """The row holding ``id_`` (KeyError naming the id when it is not indexed)."""
        if self._row_of is None:
            self._row_of = {v: i for i, v in enumerate(self.ids.tolist())}
        try:
            return self._row_of[id_.item() if isinstance(id_, np.generic) else id_]
        except KeyError:
            raise KeyError(f"id {id_!r} is not in this index ({len(self)} rows)") from None

    # ------------------------------------------------------------------ build
    def _build(self) -> None:
        from annoy import AnnoyIndex
        from tqdm.auto import tqdm

        start = time.perf_counter()
        n, d = self.embeddings.shape
        index = AnnoyIndex(d, "angular")
        index.set_seed(self.seed)
        emb = self.embeddings
        with tqdm(
            total=n + 1,
            desc=f"Neighbour index: adding {n} vectors",
            disable=not self.progress,
            leave=False,
            unit="row",
            mininterval=0.5,
        ) as bar:
            step = 4096
            for start_row in range(0, n, step):
                stop = min(n, start_row + step)
                for i in range(start_row, stop):
                    index.add_item(i, emb[i])
                bar.update(stop - start_row)
            bar.set_description(f"Neighbour index: building {self.n_trees} annoy trees")
            index.build(self.n_trees, n_jobs=-1)
            bar.update(1)
        self._annoy = index
        if self.search_k is None:
            self.search_k = self._calibrate()
            if self.search_k is None:
                self._annoy = None
        self.build_seconds = time.perf_counter() - start

    def _calibrate(self) -> int | None:
        """The smallest ``search_k`` (from ``n_trees * 10``, growing by 1.5x) whose recall@10 reaches ``target_recall``.

        Returns ``None`` when annoy would have to inspect more than half the gallery: an exact
        search is then faster (measured: one annoy candidate costs about two exact dot products).
        """
        n = len(self)
        k = min(_CALIBRATION_K, n - 1)
        search_k = max(self.n_trees * _CALIBRATION_K, 100)
        queries, rows = self._sample_queries(_CALIBRATION_QUERIES, self.seed)
        truth = self._exact_batch(queries, k, rows)
        recall = 0.0
        while search_k <= n / 2:
            got = [self._annoy_candidates(q, k, search_k, [r]) for q, r in zip(queries, rows, strict=True)]
            recall = float(np.mean([np.isin(t, g).mean() for t, g in zip(truth, got, strict=True)]))
            if recall >= min(1.0, self.target_recall + _CALIBRATION_MARGIN):
                self.measured_recall = recall
                return int(search_k)
            search_k = int(search_k * 1.5)
        self.measured_recall = 1.0
        self.exact_reason = (
            f"annoy ({self.n_trees} trees) needs search_k > {n // 2} for recall@10 >= {self.target_recall} "
            f"on these embeddings (reached {recall:.3f}); exact search is faster there"
        )
        return None

    def _exact_batch(self, queries: np.ndarray, k: int, exclude_rows: list[int]) -> list[np.ndarray]:
        """Exact top-k rows for normalised ``queries``, each excluding its own row (chunked matmul)."""
        out = []
        for start in range(0, len(queries), 64):
            sims = queries[start : start + 64] @ self.embeddings.T
            for i, sim in enumerate(sims):
                sim[exclude_rows[start + i]] = -np.inf
                out.append(top_positions(sim, k))
        return out

    # ------------------------------------------------------------------ queries
    def _exact(self, q: np.ndarray, k: int, mask: np.ndarray | None, exclude: list[int] | None):
        """Exact top-k of one normalised vector over the allowed rows."""
        if mask is not None and mask.mean() < _GATHER_BELOW:
            rows = np.flatnonzero(mask)
            if exclude:
                rows = rows[~np.isin(rows, exclude)]
            with _one_blas_thread():
                scores = self.embeddings[rows] @ q
            top = top_positions(scores, k)
            return rows[top], scores[top].astype(np.float32)
        with _one_blas_thread():
            scores = self.embeddings @ q
        if mask is not None or exclude:
            scores = scores.astype(np.float32, copy=True)
            if mask is not None:
                scores[~mask] = -np.inf
            if exclude:
                scores[np.asarray(exclude, dtype=np.int64)] = -np.inf
        top = top_positions(scores, k)
        return top, scores[top].astype(np.float32)

    def _annoy_candidates(
        self, q: np.ndarray, fetch: int, search_k: int, exclude: list[int] | None
    ) -> np.ndarray:
        want = fetch + (len(exclude) if exclude else 0)
        rows = np.asarray(self._annoy.get_nns_by_vector(q, want, search_k=int(search_k)), dtype=np.int64)
        if exclude:
            rows = rows[~np.isin(rows, exclude)]
        return rows[:fetch]

    def _query_one(self, q: np.ndarray, k: int, mask: np.ndarray | None, exclude: list[int] | None):
        n = len(self)
        exclude = [int(e) for e in exclude] if exclude is not None and len(exclude) else None
        if exclude is not None and any(not 0 <= e < n for e in exclude):
            raise IndexError(f"exclude lists rows outside 0..{n - 1}")
        if mask is not None:
            n_ok = int(mask.sum())
        else:
            n_ok = n
        if exclude is not None:
            ex = np.unique(exclude)
            n_ok -= int(mask[ex].sum()) if mask is not None else ex.size
        k = min(k, n_ok)
        if k <= 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        if self.is_exact or n_ok < self.exact_below or n_ok < FILTER_EXACT_FRACTION * n:
            return self._exact(q, k, mask, exclude)
        # Over-fetch: keep k / fraction candidates so that about k pass the filter, and inspect
        # search_k / sqrt(fraction) nodes. (Measured at 100,000 x 512: recall@10 >= 0.999 for filters
        # keeping 5-50 % of the rows; search_k / fraction costs 3-6x more for no gain.)
        fraction = n_ok / n
        search_k = (self.search_k or 1) * max(1.0, k / _CALIBRATION_K) / math.sqrt(fraction)
        fetch = min(n, math.ceil(k / fraction * 1.2) + 10) if mask is not None else k
        while True:
            rows = self._annoy_candidates(q, fetch, int(search_k), exclude)
            if mask is not None:
                rows = rows[mask[rows]]
            if rows.size >= k or fetch >= n:
                break
            fetch, search_k = min(n, fetch * 2), search_k * 2
        if rows.size < k:  # annoy could not find enough qualifying rows: answer exactly
            return self._exact(q, k, mask, exclude)
        scores = self.embeddings[rows] @ q
        top = top_positions(scores, k)
        return rows[top], scores[top].astype(np.float32)

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
        q = _check_vectors(q[None, :], self.dim)[0]
        return self._query_one(q, int(k), self._check_mask(mask), exclude)

    def query_batch(
        self, vectors: Any, k: int = 10, *, mask: Any = None, exclude: Any = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`query` for ``(m, D)`` vectors: ``(m, k)`` rows and scores.

        Where fewer than ``k`` rows qualify, rows are padded with ``-1`` and scores with NaN.
        ``exclude`` applies to every query.

        Examples
        --------
        >>> rows, scores = NeighborIndex(np.eye(3)).query_batch(np.eye(3)[:2], k=2)
        >>> rows[:, 0].tolist()
        [0, 1]
        """
        q = _check_vectors(vectors, self.dim)
        k = int(k)
        m = self._check_mask(mask)
        rows_out = np.full((len(q), max(k, 0)), -1, dtype=np.int64)
        scores_out = np.full((len(q), max(k, 0)), np.nan, dtype=np.float32)
        if self.is_exact and m is None and not (exclude is not None and len(exclude)) and k > 0:
            sims = q @ self.embeddings.T
            kk = min(k, len(self))
            for i in range(len(q)):
                top = top_positions(sims[i], kk)
                rows_out[i, :kk] = top
                scores_out[i, :kk] = sims[i, top]
            return rows_out, scores_out
        for i in range(len(q)):
            r, s = self._query_one(q[i], k, m, exclude)
            rows_out[i, : r.size] = r
            scores_out[i, : s.size] = s
        return rows_out, scores_out

    # ------------------------------------------------------------------ quality
    def _sample_queries(self, sample: int, seed: int) -> tuple[np.ndarray, list[int]]:
        rng = np.random.default_rng(seed)
        rows = rng.choice(len(self), size=min(sample, len(self)), replace=False)
        return np.asarray(self.embeddings[np.sort(rows)]), np.sort(rows).tolist()

    def recall(self, k: int = 10, sample: int = 200, seed: int = 0) -> float:
        """Mean recall@k of this index against exact search, on ``sample`` gallery rows as queries.

        Each sampled row is used as a query with itself excluded (as when searching by an
        image of the gallery); recall@k = |approximate top-k ∩ exact top-k| / k, averaged
        (Manning, Raghavan & Schütze 2008, ch. 8). An exact index has recall 1.

        Examples
        --------
        >>> NeighborIndex(np.eye(5)).recall(k=2, sample=5)
        1.0
        """
        queries, rows = self._sample_queries(sample, seed)
        k = min(int(k), len(self) - 1)
        if k <= 0:
            return 1.0
        truth = self._exact_batch(queries, k, rows)
        hits = [
            np.isin(t, self.query(q, k, exclude=[r])[0]).mean()
            for t, q, r in zip(truth, queries, rows, strict=True)
        ]
        return float(np.mean(hits))

    # ------------------------------------------------------------------ persistence
    def _description(self, annoy_file: str | None) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "n": len(self),
            "dim": self.dim,
            "fingerprint": self.fingerprint,
            "exact_below": self.exact_below,
            "is_exact": self.is_exact,
            "n_trees": self.n_trees,
            "search_k": self.search_k,
            "target_recall": self.target_recall,
            "measured_recall": self.measured_recall,
            "seed": self.seed,
            "annoy_file": annoy_file,
            "exact_reason": self.exact_reason,
        }

    def save(self, folder: str | os.PathLike, *, embeddings: bool = True) -> Path:
        """Write ``index.json``, ``ids.npy``, the annoy forest and (``embeddings=True``) ``embeddings.npy``.

        Every file is written under a temporary name and renamed; ``index.json`` comes last,
        so a folder is either complete or still describes the previous index.

        Examples
        --------
        >>> import tempfile
        >>> folder = NeighborIndex(np.eye(3), ids=["a", "b", "c"]).save(tempfile.mkdtemp())
        >>> NeighborIndex.load(folder).ids.tolist()
        ['a', 'b', 'c']
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        annoy_file = None
        if self._annoy is not None:
            annoy_file = f"annoy-{self.fingerprint[:16]}-{self.n_trees}-{self.seed}.ann"
            tmp = folder / f".{annoy_file}.{uuid.uuid4().hex}.tmp"
            self._annoy.save(str(tmp))  # annoy then memory-maps the saved file
            os.replace(tmp, folder / annoy_file)
        _atomic_save_npy(folder / "ids.npy", self.ids)
        if embeddings:
            _atomic_save_npy(folder / "embeddings.npy", np.ascontiguousarray(self.embeddings))
        _atomic_write_bytes(
            folder / "index.json", json.dumps(self._description(annoy_file), indent=2).encode()
        )
        for stale in folder.glob("annoy-*.ann"):
            if stale.name != annoy_file:
                stale.unlink(missing_ok=True)
        return folder

    @classmethod
    def load(
        cls,
        folder: str | os.PathLike,
        embeddings: Any = None,
        *,
        fingerprint: str | None = None,
        progress: bool = True,
    ) -> NeighborIndex:
        """Reopen a folder written by :meth:`save`; the annoy forest and embeddings are memory-mapped.

        Pass the current ``embeddings`` (and their ``fingerprint`` if known) to check that the
        saved index still matches them: when it does not, a new index is built with the saved
        settings and an :class:`IndexRebuilt` warning says so. Without ``embeddings`` the folder
        must hold ``embeddings.npy``.
        """
        folder = Path(folder)
        info_path = folder / "index.json"
        if not info_path.is_file():
            raise FileNotFoundError(f"{info_path} not found: pass a folder written by NeighborIndex.save")
        info = json.loads(info_path.read_text())
        if info.get("format") != _FORMAT:
            raise ValueError(f"{info_path} does not describe a cirscope neighbour index")
        ids = np.load(folder / "ids.npy", allow_pickle=False)
        settings = {
            "exact_below": info["exact_below"],
            "n_trees": info["n_trees"],
            "seed": info["seed"],
            "target_recall": info.get("target_recall", 0.99),
        }
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
        reason = cls._mismatch(info, emb, fp, ids)
        if reason:
            warnings.warn(
                f"The saved neighbour index in {folder} {reason}; rebuilding it.", IndexRebuilt, stacklevel=2
            )
            keep_ids = ids if len(ids) == emb.shape[0] else None
            return cls(emb, ids=keep_ids, progress=progress, fingerprint=fp, **settings)
        index = cls.__new__(cls)
        index.embeddings = emb
        index.ids = ids
        index.exact_below = int(info["exact_below"])
        index.target_recall = float(settings["target_recall"])
        index.seed = int(info["seed"])
        index.progress = progress
        index._fingerprint = fp
        index._annoy = None
        index._row_of = None
        index.n_trees = int(info["n_trees"])
        index.search_k = info["search_k"]
        index.measured_recall = info.get("measured_recall")
        index.build_seconds = 0.0
        index.loaded_from = folder
        index.exact_reason = info.get("exact_reason", "")
        if info.get("annoy_file"):
            from annoy import AnnoyIndex

            annoy = AnnoyIndex(int(info["dim"]), "angular")
            try:
                annoy.load(str(folder / info["annoy_file"]))
            except OSError as exc:
                warnings.warn(
                    f"The annoy forest in {folder} is unreadable ({exc}); rebuilding it.",
                    IndexRebuilt,
                    stacklevel=2,
                )
                return cls(emb, ids=ids, progress=progress, fingerprint=fp, **settings)
            if annoy.get_n_items() != len(emb):
                warnings.warn(
                    f"The annoy forest in {folder} has {annoy.get_n_items()} items, not {len(emb)}; "
                    "rebuilding it.",
                    IndexRebuilt,
                    stacklevel=2,
                )
                return cls(emb, ids=ids, progress=progress, fingerprint=fp, **settings)
            index._annoy = annoy
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
        """Load the index saved in ``folder`` if it matches ``embeddings``, else build and save one.

        The embeddings themselves are not written (the caller owns them). Keyword arguments go
        to the constructor; a saved index built with other explicit ``n_trees``, ``seed`` or
        ``exact_below`` is rebuilt.

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
                wanted = {
                    key: kwargs[key]
                    for key in ("n_trees", "seed", "exact_below", "search_k")
                    if key in kwargs
                }
                ok = info.get("fingerprint") == fp and all(info.get(k) == v for k, v in wanted.items())
                if ok and "ids" in kwargs and kwargs["ids"] is not None:
                    saved = np.load(folder / "ids.npy", allow_pickle=False)
                    ok = np.array_equal(saved, cls._check_ids(kwargs["ids"], emb.shape[0]))
                if ok:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", IndexRebuilt)  # a rebuild is what cached() is for
                        index = cls.load(folder, emb, fingerprint=fp, progress=kwargs.get("progress", True))
                    if index.loaded_from is not None:
                        return index
                    rebuilt = index  # the saved files were damaged: load() built a new index
            except (OSError, ValueError, KeyError, json.JSONDecodeError):
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

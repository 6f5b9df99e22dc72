"""2-D maps of an embedding space (UMAP or PCA), cached on disk, and placing new vectors on them.

:func:`compute_map` returns one ``(x, y)`` per image. UMAP (McInnes, Healy & Melville 2018,
"UMAP: Uniform Manifold Approximation and Projection", arXiv:1802.03426) runs through
umap-learn with the cosine metric; PCA (scikit-learn) is the instant alternative. Results
are written next to the space's other derived files under a name made from the embeddings'
fingerprint and every parameter, so reopening the same space does not recompute.

Coordinates are always returned centred on their mean and divided by their largest absolute
value: every point lies in ``[-1, 1]`` on both axes and the aspect ratio is kept.

:func:`place` puts any query vector on an existing map without refitting: the softmax-weighted
mean of its nearest gallery neighbours' coordinates.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cirscope._index import embeddings_fingerprint
from cirscope._vectors import check_matrix

if TYPE_CHECKING:  # pragma: no cover
    from cirscope._index import NeighborIndex

__all__ = ["PCA_ABOVE", "compute_map", "map_cache_path", "place"]

#: UMAP first reduces the embeddings to ``pca_dims`` dimensions with PCA when the gallery
#: has more than this many images (and more than ``pca_dims`` dimensions). Measured on 2 cores
#: (CPU seconds): the neighbour graph of 50,000 x 512 vectors costs 12.9 s on the raw vectors and
#: 6.2 s after PCA to 50 dims; at 10,000 points the whole fit costs the same either way (10.5 s,
#: the layout dominates), so small galleries keep their full vectors.
PCA_ABOVE = 5000

_CACHE_VERSION = 1
_METHODS = ("umap", "pca")
_MIN_UMAP = 5  # fewer points than this: UMAP is not meaningful, PCA is used
#: From this many points the neighbour graph is computed with annoy (see :func:`_knn`); below,
#: umap-learn computes it exactly itself (its brute-force path compiles quickly).
_OWN_KNN_FROM = 4096


def _normalise_rows(arr: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return arr / norms


def _scale(coords: np.ndarray) -> np.ndarray:
    """Centre on the mean and divide by the largest absolute value (all points in [-1, 1])."""
    c = np.asarray(coords, dtype=np.float64)
    c = c - c.mean(axis=0, keepdims=True)
    s = float(np.abs(c).max()) if c.size else 0.0
    if s > 0:
        c = c / s
    return c.astype(np.float32)


def _params(
    method: str,
    n: int,
    seed: int | None,
    n_neighbors: int,
    min_dist: float,
    pca_dims: int | None,
    pca_above: int,
    umap_kwargs: dict[str, Any],
) -> dict[str, Any]:
    if method == "pca":
        return {"method": "pca", "version": _CACHE_VERSION}
    use_pca = pca_dims is not None and n > pca_above
    return {
        "method": "umap",
        "version": _CACHE_VERSION,
        "seed": seed,
        "n_neighbors": int(n_neighbors),
        "min_dist": float(min_dist),
        "pca_dims": int(pca_dims) if use_pca and pca_dims is not None else None,
        "umap": {str(k): repr(v) for k, v in sorted(umap_kwargs.items())},
    }


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


def _read_cache(path: Path, n: int) -> np.ndarray | None:
    """The cached coordinates, or ``None`` when the file is missing, unreadable or the wrong shape."""
    if not path.is_file():
        return None
    try:
        coords = np.load(path, allow_pickle=False)
    except Exception:
        return None
    if coords.shape != (n, 2) or coords.dtype != np.float32 or not np.isfinite(coords).all():
        return None
    return coords


def _write_cache(path: Path, coords: np.ndarray) -> None:
    """Write atomically (temporary file, then ``os.replace``); a failure only warns."""
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            np.save(fh, coords)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        warnings.warn(
            f"Could not cache the map in {path.parent} ({exc}); it will be recomputed next time.",
            stacklevel=3,
        )


def _pca(x: np.ndarray, dims: int, seed: int | None) -> np.ndarray:
    """PCA to ``dims`` dimensions (padded with zeros when the data have fewer)."""
    from sklearn.decomposition import PCA

    n, d = x.shape
    k = min(dims, n, d)
    out = np.zeros((n, dims), dtype=np.float32)
    if k >= 1 and n > 1:
        out[:, :k] = PCA(n_components=k, random_state=seed).fit_transform(x).astype(np.float32)
    return out


def _knn(x: np.ndarray, k: int, seed: int | None, n_trees: int = 20, search_k: int = 1000):
    """Approximate ``k`` nearest neighbours of every row (itself first) with annoy, cosine distances.

    umap-learn would use NN-descent, whose numba code takes about a minute to compile in every
    new process; annoy needs no compilation and reaches recall@15 ~0.98 at these settings.
    Queries run on all cores (annoy releases the GIL); with a seed the forest is built on one
    thread so the graph, and the map, are reproducible.
    """
    from concurrent.futures import ThreadPoolExecutor

    from annoy import AnnoyIndex

    n, d = x.shape
    index = AnnoyIndex(d, "angular")
    index.set_seed(0 if seed is None else int(seed))
    for i in range(n):
        index.add_item(i, x[i])
    index.build(n_trees, n_jobs=-1 if seed is None else 1)  # threaded builds order trees by timing
    rows = np.empty((n, k), dtype=np.int64)

    def fill(start: int) -> None:
        for i in range(start, min(n, start + 2048)):
            found = index.get_nns_by_item(i, k, search_k=search_k)
            found = [i] + [j for j in found if j != i]
            found += [i] * (k - len(found))
            rows[i] = found[:k]

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(fill, range(0, n, 2048)))
    dists = np.concatenate(
        [1.0 - np.einsum("nd,nkd->nk", x[s : s + 8192], x[rows[s : s + 8192]]) for s in range(0, n, 8192)]
    )
    dists = np.maximum(dists, 0.0).astype(np.float32)
    dists[:, 0] = 0.0
    return rows, dists


def _umap(
    x: np.ndarray,
    *,
    seed: int | None,
    n_neighbors: int,
    min_dist: float,
    pca_dims: int | None,
    pca_above: int,
    progress: bool,
    umap_kwargs: dict[str, Any],
) -> np.ndarray:
    from tqdm.auto import tqdm

    n, d = x.shape
    use_pca = pca_dims is not None and n > pca_above and d > pca_dims
    own_knn = n >= _OWN_KNN_FROM and "precomputed_knn" not in umap_kwargs
    k = max(2, min(int(n_neighbors), n - 1))
    bar = tqdm(total=1 + use_pca + own_knn, desc="UMAP map", disable=not progress, leave=False)
    try:
        if use_pca:
            bar.set_description(f"UMAP map: PCA {d} -> {pca_dims} dims")
            x = _normalise_rows(_pca(x, int(pca_dims), seed))
            bar.update(1)
        kwargs = {
            "n_components": 2,
            "metric": "cosine",
            "n_neighbors": k,
            "min_dist": float(min_dist),
            "random_state": seed,
            **umap_kwargs,
        }
        if own_knn:
            bar.set_description(f"UMAP map: {k} nearest neighbours of {n} points (annoy)")
            kwargs["precomputed_knn"] = _knn(x, k, seed)
            bar.update(1)
        bar.set_description(
            f"UMAP map: layout of {n} points (the first UMAP call in a session also compiles numba code, ~20 s)"
        )
        import umap  # lazy: heavy import (numba)

        if seed is not None:
            kwargs.setdefault("n_jobs", 1)  # umap-learn runs single-threaded when seeded anyway
        kwargs.setdefault(
            "tqdm_kwds", {"disable": not progress, "desc": "UMAP layout epochs", "leave": False}
        )
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*n_jobs value.*overridden.*")
            warnings.filterwarnings("ignore", message=".*knn_search_index.*")
            warnings.filterwarnings("ignore", message=".*gradient function is not yet implemented.*")
            coords = umap.UMAP(**kwargs).fit_transform(x)
        bar.update(1)
    finally:
        bar.close()
    return np.asarray(coords, dtype=np.float64)


def compute_map(
    embeddings: Any,
    method: str = "umap",
    cache_dir: str | os.PathLike | None = None,
    fingerprint: str | None = None,
    *,
    seed: int | None = 0,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    pca_dims: int | None = 50,
    pca_above: int = PCA_ABOVE,
    progress: bool = True,
    **umap_kwargs: Any,
) -> np.ndarray:
    """2-D coordinates of every embedding, ``(N, 2)`` float32 in ``[-1, 1]``.

    ``method="umap"``: UMAP (McInnes, Healy & Melville 2018, arXiv:1802.03426) through
    umap-learn with ``metric="cosine"``. Above ``pca_above`` points the embeddings are first
    reduced to ``pca_dims`` dimensions with PCA (then re-normalised). From 4,096 points the
    15-nearest-neighbour graph is computed with annoy and handed to umap-learn
    (``precomputed_knn``): umap-learn's own NN-descent spends about a minute compiling numba
    code in every new process. The layout itself runs on one core when ``seed`` is set
    (umap-learn's rule for reproducibility); 100,000 points cost about 60 CPU seconds. ``method="pca"``: the
    first two principal components (Pearson 1901), instant, for a first picture while UMAP
    computes.

    The result is centred on its mean and divided by its largest absolute coordinate. With
    ``cache_dir`` it is stored as ``map-<method>-<hash>.npy``, the hash covering the embeddings'
    ``fingerprint`` (computed when not given) and every parameter; a later call with the same
    inputs reads the file (milliseconds). A damaged or mismatched file is recomputed.

    Parameters
    ----------
    embeddings
        ``(N, D)`` image embeddings (rows are L2-normalised here).
    method
        ``"umap"`` or ``"pca"``.
    cache_dir, fingerprint
        Where to cache the coordinates and the hash of the embeddings that keys them.
    seed
        Random seed; the same seed gives the same map. ``None`` lets umap-learn use all cores
        (not reproducible).
    n_neighbors, min_dist
        UMAP's neighbourhood size and minimum spacing in the layout.
    pca_dims, pca_above
        PCA pre-reduction for UMAP: to ``pca_dims`` dimensions when N > ``pca_above``
        (``pca_dims=None`` turns it off).
    progress
        Show a progress bar (UMAP only; PCA is quick).
    **umap_kwargs
        Passed on to ``umap.UMAP`` (e.g. ``n_epochs``, ``spread``).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> xy = compute_map(rng.normal(size=(100, 16)), method="pca")
    >>> xy.shape, xy.dtype, float(np.abs(xy).max())
    ((100, 2), dtype('float32'), 1.0)
    """
    if method not in _METHODS:
        raise ValueError(f"Unknown map method {method!r}; use one of {list(_METHODS)}")
    if pca_dims is not None and int(pca_dims) < 2:
        raise ValueError(f"pca_dims must be at least 2 (or None to skip PCA), got {pca_dims}")
    if int(n_neighbors) < 2:
        raise ValueError(f"n_neighbors must be at least 2, got {n_neighbors}")
    x = check_matrix(embeddings, empty="a map needs at least one image", zero_rows=True)
    n = x.shape[0]
    if method == "umap" and n < _MIN_UMAP:
        method = "pca"
    params = _params(method, n, seed, n_neighbors, min_dist, pca_dims, pca_above, umap_kwargs)
    path = None
    if cache_dir is not None:
        path = map_cache_path(
            cache_dir, fingerprint or embeddings_fingerprint(x), {**params, "n": n, "dim": x.shape[1]}
        )
        cached = _read_cache(path, n)
        if cached is not None:
            return cached
    x = _normalise_rows(x)
    if method == "pca":
        coords = _pca(x, 2, seed)
    else:
        coords = _umap(
            x,
            seed=seed,
            n_neighbors=n_neighbors,
            min_dist=min_dist,
            pca_dims=pca_dims,
            pca_above=pca_above,
            progress=progress,
            umap_kwargs=umap_kwargs,
        )
    coords = _scale(coords)
    if path is not None:
        _write_cache(path, coords)
    return coords


def place(
    vectors: Any,
    embeddings: Any,
    coords: Any,
    k: int = 10,
    *,
    index: NeighborIndex | None = None,
    temperature: float = 0.05,
) -> np.ndarray:
    """Put query vectors on an existing map without refitting it, ``(m, 2)`` float32.

    Each vector lands at the weighted mean of the map coordinates of its ``k`` nearest
    gallery images (cosine), with softmax weights ``w_i = exp((s_i - s_max) / temperature)``:
    near-ties share the position and a clear winner dominates. This is the out-of-sample
    placement of a neighbour-graph embedding (as in McInnes et al. 2018, section 3.3, where
    new points are initialised at the weighted mean of their neighbours' positions), without
    the optimisation step. Pass the space's :class:`~cirscope.NeighborIndex` as ``index`` for
    sub-millisecond neighbour lookups on large galleries; otherwise an exact search is done.

    Parameters
    ----------
    vectors
        ``(D,)`` or ``(m, D)`` query vectors.
    embeddings
        The ``(N, D)`` gallery embeddings the map was made from.
    coords
        Their ``(N, 2)`` map coordinates.
    k
        How many neighbours to average.
    index
        A neighbour index over ``embeddings`` (optional, faster).
    temperature
        Softmax temperature of the weights (smaller: closer to the nearest neighbour).

    Examples
    --------
    >>> emb = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    >>> xy = np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]])
    >>> place(np.array([1.0, 0.0]), emb, xy, k=1).tolist()
    [[0.0, 0.0]]
    """
    q = np.asarray(vectors, dtype=np.float32)
    single = q.ndim == 1
    if single:
        q = q[None, :]
    if q.ndim != 2:
        raise ValueError(f"vectors must be a (D,) or (m, D) array, got shape {q.shape}")
    xy = np.asarray(coords, dtype=np.float64)
    n = xy.shape[0] if xy.ndim == 2 else -1
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f"coords must be an (N, 2) array of map coordinates, got shape {xy.shape}")
    if index is None:
        emb = np.asarray(embeddings)
        if emb.ndim != 2 or emb.shape[0] != n:
            raise ValueError(
                f"embeddings have shape {emb.shape} but coords have {n} rows: pass the embeddings "
                "the map was made from"
            )
        dim = emb.shape[1]
    else:
        if len(index) != n:
            raise ValueError(f"the index covers {len(index)} rows but coords have {n}: use the same gallery")
        dim = index.dim
    if q.shape[1] != dim:
        raise ValueError(f"query vectors have {q.shape[1]} dimensions but the embeddings have {dim}")
    if not np.isfinite(q).all():
        raise ValueError("query vectors contain NaN or infinite values")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    k = max(1, min(int(k), n))
    if index is not None:
        rows, scores = index.query_batch(q, k)
    else:
        qn = _normalise_rows(q)
        sims = (
            qn
            @ np.asarray(emb, dtype=np.float32).T
            / np.maximum(np.linalg.norm(emb, axis=1), 1e-12).astype(np.float32)
        )
        rows = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k < n else np.tile(np.arange(n), (len(q), 1))
        scores = np.take_along_axis(sims, rows, axis=1)
    out = np.empty((len(q), 2), dtype=np.float64)
    for i in range(len(q)):
        r = np.asarray(rows[i], dtype=np.int64)
        s = np.asarray(scores[i], dtype=np.float64)
        ok = r >= 0
        r, s = r[ok], s[ok]
        if r.size == 0:
            out[i] = np.nan
            continue
        w = np.exp((s - s.max()) / temperature)
        out[i] = (xy[r] * w[:, None]).sum(axis=0) / w.sum()
    return out.astype(np.float32)

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
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cirscope._core.arrays import check_matrix
from cirscope.neighbors._index import embeddings_fingerprint
from cirscope.projection._sample import (
    PLACE_K,
    PLACE_SEARCH_K,
    PLACE_TEMPERATURE,
    REFINE_ALPHA,
    REFINE_EPOCHS,
    REFINE_SEARCH_K,
    REFINE_TREES,
    sample_size,
)

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.neighbors._index import NeighborIndex

__all__ = ["PCA_ABOVE", "compute_map", "map_cache_path", "place", "place_rows"]

#: UMAP first reduces the embeddings to ``pca_dims`` dimensions with PCA when the gallery
#: has more than this many images (and more than ``pca_dims`` dimensions). Measured on 2 cores
#: (CPU seconds): the neighbour graph of 50,000 x 512 vectors costs 12.9 s on the raw vectors and
#: 6.2 s after PCA to 50 dims; at 10,000 points the whole fit costs the same either way (10.5 s,
#: the layout dominates), so small galleries keep their full vectors.
PCA_ABOVE = 5000

_CACHE_VERSION = 2
_METHODS = ("umap", "pca")
#: PCA for the UMAP pre-reduction is fitted on at most this many random rows, then applied to all.
_PCA_FIT_ROWS = 50_000
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
    sample: int | str | None,
    n_neighbors: int,
    min_dist: float,
    pca_dims: int | None,
    pca_above: int,
    umap_kwargs: dict[str, Any],
    refine_epochs: int = 0,
) -> dict[str, Any]:
    if method == "pca":
        return {"method": "pca", "version": _CACHE_VERSION}
    use_pca = pca_dims is not None and n > pca_above
    gpu, size = _fit_plan(n, sample, umap_kwargs)
    return {
        "method": "umap",
        "version": _CACHE_VERSION,
        "engine": "cuml" if gpu is not None else "umap-learn",
        "seed": seed,
        "sample": None if size >= n else {"size": size, "k": PLACE_K, "temperature": PLACE_TEMPERATURE,
                                          "search_k": PLACE_SEARCH_K,
                                          "refine": {"epochs": int(refine_epochs), "alpha": REFINE_ALPHA,
                                                     "anchor": False, "trees": REFINE_TREES,
                                                     "search_k": REFINE_SEARCH_K} if refine_epochs else None},
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
    from cirscope._core.atomic import atomic_write

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as fh:
            np.save(fh, coords)
    except OSError as exc:
        warnings.warn(
            f"Could not cache the map in {path.parent} ({exc}); it will be recomputed next time.",
            stacklevel=3,
        )


def _pca(x: np.ndarray, dims: int, seed: int | None, fit_rows: int | None = None) -> np.ndarray:
    """PCA to ``dims`` dimensions (padded with zeros when the data have fewer).

    With ``fit_rows`` the components are fitted on that many random rows and every row is
    then projected, in chunks (the fit's cost stops growing with the gallery).
    """
    from sklearn.decomposition import PCA

    n, d = x.shape
    k = min(dims, n, d)
    out = np.zeros((n, dims), dtype=np.float32)
    if k < 1 or n <= 1:
        return out
    pca = PCA(n_components=k, random_state=seed)
    if fit_rows is None or n <= fit_rows:
        out[:, :k] = pca.fit_transform(x).astype(np.float32)
        return out
    rng = np.random.default_rng(0 if seed is None else seed)
    pca.fit(x[np.sort(rng.choice(n, size=fit_rows, replace=False))])
    for s in range(0, n, 65536):
        out[s : s + 65536, :k] = pca.transform(x[s : s + 65536]).astype(np.float32)
    return out


def _knn(x: np.ndarray, k: int, seed: int | None, n_trees: int = 20, search_k: int = 1000):
    """Approximate ``k`` nearest neighbours of every row (itself first), cosine distances, and the forest.

    annoy reaches recall@15 ~0.98 at these settings (see :mod:`cirscope.projection._knn`).
    """
    from cirscope.projection._knn import annoy_forest, query_forest

    forest = annoy_forest(x, seed, n_trees)
    rows, sims = query_forest(forest, x, x, k, search_k=search_k, self_rows=True)
    rows = np.where(rows < 0, np.arange(len(x))[:, None], rows)  # a short list repeats the point itself
    dists = np.maximum(1.0 - np.nan_to_num(sims, nan=1.0), 0.0).astype(np.float32)
    dists[:, 0] = 0.0
    return (rows, dists), forest


def _cuml_umap() -> Any:
    """cuML's GPU UMAP class when cuML is installed and a GPU is visible, else ``None`` (never required)."""
    try:
        import cupy
        from cuml.manifold import UMAP
    except Exception:  # not installed, or installed without a working CUDA runtime
        return None
    try:
        return UMAP if cupy.cuda.runtime.getDeviceCount() > 0 else None
    except Exception:
        return None


def _fit_plan(n: int, sample: int | str | None, umap_kwargs: dict[str, Any]) -> tuple[Any, int]:
    """``(cuML UMAP class or None, points fitted)``: cuML fits all points; a user's own
    ``precomputed_knn`` covers all points, so it is fitted on all too."""
    if "precomputed_knn" in umap_kwargs:
        return None, n
    gpu = _cuml_umap()
    return gpu, n if gpu is not None else sample_size(n, sample)


#: Relative cost per point of each stage of a UMAP map, for the progress bar's ETA. Measured by
#: ``benchmarks/bench_scale_projection.py`` at 100,000 x 128 (sample 20,000) on 2 busy cores:
#: PCA 0.24 s for 100,000 points, neighbour graph 4.4 s and layout 114 s for the 20,000 fitted,
#: placement 53 s for the other 80,000 at search_k 1000 (now 400, ~1.8x faster): per point
#: 0.0004 : 0.04 : 1 : 0.12. After placement (100,000 x 50, load ~3): neighbour graph of all points
#: 7.7 s (per point 0.013) and refinement 7.5 s for 30 epochs (per point and epoch 0.0004).
_STAGE_COST = {"pca": 0.001, "knn": 0.04, "layout": 1.0, "place": 0.07, "knn_all": 0.013, "refine": 0.0004}


class _Stages:
    """One progress bar over a map's stages, in units of estimated work, so tqdm shows an ETA."""

    def __init__(self, plan: dict[str, int], progress: bool):
        from tqdm.auto import tqdm

        self.units = {name: max(1, round(_STAGE_COST[name] * count)) for name, count in plan.items() if count}
        self.bar = tqdm(total=sum(self.units.values()), desc="UMAP map", unit="", disable=not progress,
                        leave=False, bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]")  # fmt: skip
        self.stage, self.shown, self.done_in_stage = "", 0, 0

    def start(self, name: str, description: str) -> None:
        self.stage, self.shown = name, 0
        self.bar.set_description(f"UMAP map: {description}")

    def advance(self, items: int, of: int) -> None:
        """``items`` more of this stage's ``of`` done."""
        self.done_in_stage = min(of, self.done_in_stage + items)
        target = round(self.units.get(self.stage, 0) * self.done_in_stage / max(of, 1))
        self.bar.update(target - self.shown)
        self.shown = target

    def finish(self) -> None:
        self.bar.update(self.units.get(self.stage, 0) - self.shown)
        self.stage, self.shown, self.done_in_stage = "", 0, 0

    def close(self) -> None:
        self.bar.close()


class _Counter:
    """Adapts :meth:`_Stages.advance` to the ``update(count)`` of a tqdm bar (for threaded queries)."""

    def __init__(self, stages: _Stages, of: int):
        import threading

        self.stages, self.of, self.lock = stages, of, threading.Lock()

    def update(self, count: int) -> None:
        with self.lock:
            self.stages.advance(count, self.of)


def _umap(
    x: np.ndarray,
    *,
    seed: int | None,
    n_neighbors: int,
    min_dist: float,
    pca_dims: int | None,
    pca_above: int,
    sample: int | str | None,
    progress: bool,
    umap_kwargs: dict[str, Any],
    timings: dict[str, float] | None = None,
    refine_epochs: int = 0,
) -> np.ndarray:
    from cirscope.projection._sample import choose_sample, place_rest, refine_layout

    n, d = x.shape
    use_pca = pca_dims is not None and n > pca_above and d > pca_dims
    gpu, s = _fit_plan(n, sample, umap_kwargs)
    own_knn = gpu is None and s >= _OWN_KNN_FROM and "precomputed_knn" not in umap_kwargs
    k = max(2, min(int(n_neighbors), s - 1))
    refine = refine_epochs if s < n and gpu is None else 0
    stages = _Stages(
        {"pca": n if use_pca else 0, "knn": s if own_knn else 0, "layout": s, "place": n - s,
         "knn_all": n if refine else 0, "refine": refine * n},
        progress,
    )
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        if timings is not None:
            timings[name] = timings.get(name, 0.0) + now - clock
        clock = now
        stages.finish()

    try:
        if use_pca:
            stages.start("pca", f"PCA {d} -> {pca_dims} dims")
            x = _normalise_rows(_pca(x, int(pca_dims), seed, fit_rows=_PCA_FIT_ROWS))
            lap("pca")
        rows = choose_sample(n, s, seed) if s < n else None
        xs = x if rows is None else x[rows]
        kwargs = {
            "n_components": 2,
            "metric": "cosine",
            "n_neighbors": k,
            "min_dist": float(min_dist),
            "random_state": seed,
            **umap_kwargs,
        }
        forest = None
        if own_knn:
            stages.start("knn", f"{k} nearest neighbours of {s:,} points (annoy)")
            kwargs["precomputed_knn"], forest = _knn(xs, k, seed)
            lap("knn")
        if gpu is not None:
            stages.start("layout", f"layout of {s:,} points on the GPU (cuML)")
            if seed is None:
                kwargs.pop("random_state")
            coords = np.asarray(gpu(**kwargs).fit_transform(xs), dtype=np.float64)
            lap("layout")
            return coords
        stages.start(
            "layout",
            f"layout of {s:,} points" + (f" (a sample of {n:,})" if rows is not None else "")
            + " (the first UMAP call in a session also compiles numba code, ~20 s)",
        )
        import umap  # lazy: heavy import (numba)

        if seed is not None:
            kwargs.setdefault("n_jobs", 1)  # umap-learn runs single-threaded when seeded anyway
        kwargs.setdefault("tqdm_kwds", {"disable": not progress, "desc": "UMAP layout epochs", "leave": False})
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*n_jobs value.*overridden.*")
            warnings.filterwarnings("ignore", message=".*knn_search_index.*")
            warnings.filterwarnings("ignore", message=".*gradient function is not yet implemented.*")
            coords = np.asarray(umap.UMAP(**kwargs).fit_transform(xs), dtype=np.float64)
        lap("layout")
        if rows is not None:
            from cirscope.projection._knn import annoy_forest

            stages.start("place", f"placing the other {n - s:,} points by their nearest sample points")
            if forest is None:
                forest = annoy_forest(xs, seed)
            coords = place_rest(x, rows, coords, forest, progress=_Counter(stages, n - s))
            lap("place")
            if refine:
                stages.start("knn_all", f"{k} nearest neighbours of all {n:,} points (annoy)")
                knn_all, _ = _knn(x, k, seed, n_trees=REFINE_TREES, search_k=REFINE_SEARCH_K)
                lap("knn_all")
                stages.start("refine", f"{refine} layout epochs over all {n:,} points, from the placed map")
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message=".*gradient function is not yet implemented.*")
                    coords = refine_layout(x, coords, rows, n_neighbors=k, min_dist=float(min_dist), n_epochs=refine,
                                           seed=seed, spread=float(umap_kwargs.get("spread", 1.0)), knn=knn_all,
                                           progress=progress)
                lap("refine")
    finally:
        stages.close()
    return coords


def compute_map(
    embeddings: Any,
    method: str = "umap",
    cache_dir: str | os.PathLike | None = None,
    fingerprint: str | None = None,
    *,
    seed: int | None = None,
    sample: int | str | None = "auto",
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    pca_dims: int | None = 50,
    pca_above: int = PCA_ABOVE,
    progress: bool = True,
    timings: dict[str, float] | None = None,
    refine_epochs: int = REFINE_EPOCHS,
    **umap_kwargs: Any,
) -> np.ndarray:
    """2-D coordinates of every embedding, ``(N, 2)`` float32 in ``[-1, 1]``.

    ``method="umap"``: UMAP (McInnes, Healy & Melville 2018, arXiv:1802.03426) through
    umap-learn with ``metric="cosine"``. Above ``pca_above`` points the embeddings are first
    reduced to ``pca_dims`` dimensions with PCA (then re-normalised). From 4,096 points the
    15-nearest-neighbour graph is computed with annoy and handed to umap-learn
    (``precomputed_knn``): umap-learn's own NN-descent spends about a minute compiling numba
    code in every new process. Above :data:`~cirscope.projection._sample.SAMPLE_ABOVE` points UMAP
    is fitted on a random sample (``sample``) and every other point is placed at the
    weighted mean of its nearest sample points (:mod:`cirscope.projection._sample`); then
    ``refine_epochs`` UMAP layout epochs run over the neighbour graph of all points, starting
    from that map, so placed points move towards their true neighbours (measured at 20,000 and
    50,000 points with 5-40 % samples: placed points then keep 0.92-1.05x the neighbours a full
    fit keeps, against 0.67-0.86x at 5-20 % without it; see :data:`~cirscope.projection._sample.REFINE_EPOCHS`).
    When cuML is installed and a GPU is visible, cuML's UMAP fits all points on the GPU
    instead (never required). ``method="pca"``: the first two principal components
    (Pearson 1901), instant, for a first picture while UMAP computes.

    By default (``seed=None``) the layout runs on all cores and two runs give slightly
    different maps. ``seed=`` makes the map reproducible, at a price: umap-learn then runs
    its layout on one core, and the neighbour forest is built on one thread, so at best the
    unseeded map is as many times faster as there are free cores in the layout stage
    (``benchmarks/bench_scale_projection.py`` reports it as ``seed_cost``; on a shared 2-core
    machine it measured 2.5x at 2,000 points, and no gain at 10,000-20,000 points where the
    unseeded run found no free second core).

    A progress bar with an ETA follows the stages (PCA, neighbour graph, layout, placement,
    neighbour graph of all points, refinement).
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
        ``None`` (default): fast, all cores, not reproducible. An int: the same seed gives the
        same map, with umap-learn's layout on one core.
    sample
        UMAP on a sample of large galleries: ``"auto"`` (see
        :func:`~cirscope.projection._sample.sample_size`), ``None`` (always fit every point) or the
        sample size.
    n_neighbors, min_dist
        UMAP's neighbourhood size and minimum spacing in the layout.
    pca_dims, pca_above
        PCA pre-reduction for UMAP: to ``pca_dims`` dimensions when N > ``pca_above``
        (``pca_dims=None`` turns it off).
    progress
        Show a progress bar (UMAP only; PCA is quick).
    timings
        A dict that receives the seconds spent in each stage (``pca``, ``knn``, ``layout``,
        ``place``, ``knn_all``, ``refine``) when the map is computed (not when it comes from the
        cache).
    refine_epochs
        Layout epochs over all points after a sampled fit's placement (0: placement only).
        Unused when every point is fitted.
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
    raw = np.asarray(embeddings)  # no copy: a known fingerprint reopens the cache without reading every value
    if cache_dir is None or fingerprint is None or raw.ndim != 2 or raw.shape[0] == 0:
        raw = check_matrix(embeddings, empty="a map needs at least one image", zero_rows=True)
    n, dim = raw.shape
    if method == "umap" and n < _MIN_UMAP:
        method = "pca"
    if isinstance(refine_epochs, bool) or not isinstance(refine_epochs, (int, np.integer)) or refine_epochs < 0:
        raise ValueError(f"refine_epochs must be a non-negative integer, got {refine_epochs!r}")
    params = _params(method, n, seed, sample, n_neighbors, min_dist, pca_dims, pca_above, umap_kwargs,
                     int(refine_epochs))
    path = None
    if cache_dir is not None:
        path = map_cache_path(cache_dir, fingerprint or embeddings_fingerprint(raw), {**params, "n": n, "dim": dim})
        cached = _read_cache(path, n)
        if cached is not None:
            return cached
    x = check_matrix(raw, empty="a map needs at least one image", zero_rows=True)  # validated before computing
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
            sample=sample,
            progress=progress,
            umap_kwargs=umap_kwargs,
            timings=timings,
            refine_epochs=int(refine_epochs),
        )
    coords = _scale(coords)
    if path is not None:
        _write_cache(path, coords)
    return coords


def place_rows(rows: Any, scores: Any, coords: Any, k: int | None = None, *, temperature: float = 0.05) -> np.ndarray:
    """Place queries from their already-known neighbours: ``(m, 2)`` float32 (NaN where none).

    Each query lands at the softmax-weighted mean (``w_i = exp((s_i - s_max) / temperature)``)
    of the map coordinates of its first ``k`` neighbour ``rows`` (all when ``None``), ranked
    best first with cosine ``scores``; rows ``< 0`` (padding) are ignored. Vectorised over
    queries: this is also how the points left out of a sampled UMAP fit are placed.

    Examples
    --------
    >>> xy = np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]])
    >>> place_rows([[1, 2]], [[0.9, 0.0]], xy).round(3).tolist()
    [[1.0, 1.0]]
    >>> place_rows([0, 1], [0.5, 0.5], xy).tolist()
    [[0.5, 0.5]]
    """
    r = np.asarray(rows)
    sc = np.asarray(scores, dtype=np.float64)
    if r.ndim == 1:
        r, sc = r[None, :], sc[None, :]
    if r.ndim != 2 or sc.shape != r.shape:
        raise ValueError(f"rows and scores must have the same (k,) or (m, k) shape, got {r.shape} and {sc.shape}")
    if r.size and r.dtype.kind not in "iu":
        raise TypeError(f"rows must be integer gallery rows, got dtype {r.dtype}")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    xy = np.asarray(coords, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f"coords must be an (N, 2) array of map coordinates, got shape {xy.shape}")
    if k is not None:
        r, sc = r[:, : max(1, int(k))], sc[:, : max(1, int(k))]
    r = r.astype(np.int64)
    if r.size and int(r.max()) >= len(xy):
        raise IndexError(f"row {int(r.max())} is outside the map's {len(xy)} points")
    ok = (r >= 0) & np.isfinite(sc)
    top = np.where(ok, sc, -np.inf).max(axis=1, keepdims=True) if r.size else np.zeros((len(r), 1))
    w = np.where(ok, np.exp((np.where(ok, sc, 0.0) - np.where(np.isfinite(top), top, 0.0)) / temperature), 0.0)
    total = w.sum(axis=1)
    pts = xy[np.where(ok, r, 0)]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (pts * w[:, :, None]).sum(axis=1) / total[:, None]
    out[total == 0] = np.nan
    return out.astype(np.float32)


def place(
    vectors: Any = None,
    embeddings: Any = None,
    coords: Any = None,
    k: int = 10,
    *,
    index: NeighborIndex | None = None,
    temperature: float = 0.05,
    rows: Any = None,
    scores: Any = None,
) -> np.ndarray:
    """Put queries on an existing map without refitting it, ``(m, 2)`` float32.

    Each query lands at the weighted mean of the map coordinates of its ``k`` nearest
    gallery images (cosine), with softmax weights ``w_i = exp((s_i - s_max) / temperature)``:
    near-ties share the position and a clear winner dominates. This is the out-of-sample
    placement of a neighbour-graph embedding (as in McInnes et al. 2018, section 3.3, where
    new points are initialised at the weighted mean of their neighbours' positions), without
    the optimisation step.

    When the neighbours are already known (a search just ranked the gallery), pass them as
    ``rows=`` and ``scores=`` (``(k,)`` or ``(m, k)``, best first): no search is done
    (:func:`place_rows`). Otherwise pass ``vectors`` and ``embeddings``; with the space's
    :class:`~cirscope.NeighborIndex` as ``index`` the neighbours come from it
    (sub-millisecond on large galleries), else from an exact search.

    Parameters
    ----------
    vectors
        ``(D,)`` or ``(m, D)`` query vectors (not needed with ``rows``/``scores``).
    embeddings
        The ``(N, D)`` gallery embeddings the map was made from (not needed with ``index``
        or ``rows``).
    coords
        Their ``(N, 2)`` map coordinates.
    k
        How many neighbours to average.
    index
        A neighbour index over ``embeddings`` (optional, faster).
    temperature
        Softmax temperature of the weights (smaller: closer to the nearest neighbour).
    rows, scores
        The queries' known neighbours and their cosines, best first.

    Examples
    --------
    >>> emb = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    >>> xy = np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]])
    >>> place(np.array([1.0, 0.0]), emb, xy, k=1).tolist()
    [[0.0, 0.0]]
    >>> place(coords=xy, rows=[0, 1], scores=[0.9, 0.1], k=1).tolist()
    [[0.0, 0.0]]
    """
    if coords is None:
        raise TypeError("place() needs the map's coords")
    if rows is not None or scores is not None:
        if rows is None or scores is None:
            raise TypeError("pass both rows= and scores= (the known neighbours), or a query vector")
        return place_rows(rows, scores, coords, k, temperature=temperature)
    if vectors is None:
        raise TypeError("place() needs query vectors, or the known neighbours as rows= and scores=")
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
        found, sims_k = index.query_batch(q, k)
    else:
        qn = _normalise_rows(q)
        sims = (
            qn
            @ np.asarray(emb, dtype=np.float32).T
            / np.maximum(np.linalg.norm(emb, axis=1), 1e-12).astype(np.float32)
        )
        found = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k < n else np.tile(np.arange(n), (len(q), 1))
        sims_k = np.take_along_axis(sims, found, axis=1)
    return place_rows(found, sims_k, xy, temperature=temperature)

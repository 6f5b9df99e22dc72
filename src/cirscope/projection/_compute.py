"""2-D maps of an embedding space (UMAP or PCA), cached on disk.

:func:`compute_map` returns one ``(x, y)`` per image. UMAP (McInnes, Healy & Melville 2018,
"UMAP: Uniform Manifold Approximation and Projection", arXiv:1802.03426) runs through
umap-learn with the cosine metric (:mod:`cirscope.projection._fit`); PCA (scikit-learn) is the
instant alternative. Results are written next to the space's other derived files under a name
made from the embeddings' fingerprint and every parameter (:mod:`cirscope.projection._cache`),
so reopening the same space does not recompute.

Coordinates are always returned centred on their mean and divided by their largest absolute
value: every point lies in ``[-1, 1]`` on both axes and the aspect ratio is kept.

Placing new vectors on a map without refitting it is :mod:`cirscope.projection._place`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from cirscope._core.arrays import check_matrix, unit_rows
from cirscope._core.hashing import embeddings_fingerprint
from cirscope.projection._cache import map_cache_path, read_cache, write_cache
from cirscope.projection._fit import fit_plan, fit_umap, pca
from cirscope.projection._progress import MapTracker
from cirscope.projection._sample import (
    PLACE_K,
    PLACE_SEARCH_K,
    PLACE_TEMPERATURE,
    REFINE_ALPHA,
    REFINE_EPOCHS,
    REFINE_SEARCH_K,
    REFINE_TREES,
)

__all__ = ["PCA_ABOVE", "cached_map", "compute_map"]

#: UMAP first reduces the embeddings to ``pca_dims`` dimensions with PCA when the gallery
#: has more than this many images (and more than ``pca_dims`` dimensions). Measured on 2 cores
#: (CPU seconds): the neighbour graph of 50,000 x 512 vectors costs 12.9 s on the raw vectors and
#: 6.2 s after PCA to 50 dims; at 10,000 points the whole fit costs the same either way (10.5 s,
#: the layout dominates), so small galleries keep their full vectors.
PCA_ABOVE = 5000

_CACHE_VERSION = 2
_METHODS = ("umap", "pca")
_MIN_UMAP = 5  # fewer points than this: UMAP is not meaningful, PCA is used


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
    gpu, size = fit_plan(n, sample, umap_kwargs)
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
    tracker: MapTracker | None = None,
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
    tracker
        A :class:`~cirscope.projection._progress.MapTracker` that another thread reads to show
        progress, and that can cancel the fit between stages (:mod:`cirscope.projection._background`).
    **umap_kwargs
        Passed on to ``umap.UMAP`` (e.g. ``n_epochs``, ``spread``).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> xy = compute_map(rng.normal(size=(100, 16)), method="pca")
    >>> xy.shape, xy.dtype, float(np.abs(xy).max())
    ((100, 2), dtype('float32'), 1.0)
    """
    raw, method, path = _plan(embeddings, method, cache_dir, fingerprint, seed=seed, sample=sample,
                              n_neighbors=n_neighbors, min_dist=min_dist, pca_dims=pca_dims, pca_above=pca_above,
                              refine_epochs=refine_epochs, umap_kwargs=umap_kwargs)
    if path is not None:
        cached = read_cache(path, raw.shape[0])
        if cached is not None:
            return cached
    x = check_matrix(raw, empty="a map needs at least one image", zero_rows=True)  # validated before computing
    x = unit_rows(x)
    if method == "pca":
        coords = pca(x, 2, seed)
    else:
        coords = fit_umap(
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
            tracker=tracker,
        )
    coords = _scale(coords)
    if path is not None:
        write_cache(path, coords)
    return coords


def _plan(
    embeddings: Any,
    method: str,
    cache_dir: str | os.PathLike | None,
    fingerprint: str | None,
    *,
    seed: int | None,
    sample: int | str | None,
    n_neighbors: int,
    min_dist: float,
    pca_dims: int | None,
    pca_above: int,
    refine_epochs: Any,
    umap_kwargs: dict[str, Any],
) -> tuple[np.ndarray, str, Path | None]:
    """Check the arguments; ``(embeddings, method used, cache file or None)``."""
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
    return raw, method, path


def cached_map(
    embeddings: Any,
    method: str = "umap",
    cache_dir: str | os.PathLike | None = None,
    fingerprint: str | None = None,
    **params: Any,
) -> np.ndarray | None:
    """The map :func:`compute_map` would return from its cache, or ``None`` (nothing is computed).

    Takes :func:`compute_map`'s arguments (``progress`` and ``timings`` are ignored).

    Examples
    --------
    >>> import tempfile
    >>> x, folder = np.random.default_rng(0).normal(size=(50, 8)), tempfile.mkdtemp()
    >>> cached_map(x, "pca", folder, "fp") is None
    True
    >>> xy = compute_map(x, "pca", folder, "fp")
    >>> np.array_equal(cached_map(x, "pca", folder, "fp"), xy)
    True
    """
    if cache_dir is None:
        return None
    defaults = {"seed": None, "sample": "auto", "n_neighbors": 15, "min_dist": 0.1, "pca_dims": 50,
                "pca_above": PCA_ABOVE, "refine_epochs": REFINE_EPOCHS}
    params.pop("progress", None)
    params.pop("timings", None)
    params.pop("tracker", None)
    named = {key: params.pop(key, value) for key, value in defaults.items()}
    raw, _, path = _plan(embeddings, method, cache_dir, fingerprint, umap_kwargs=params, **named)
    return None if path is None else read_cache(path, raw.shape[0])

"""Fitting a UMAP layout: PCA pre-reduction, the neighbour graph, the layout, and for large maps a
sampled fit with the other points placed and refined; one progress bar with an ETA over all stages.

UMAP (McInnes, Healy & Melville 2018, arXiv:1802.03426) runs through umap-learn with the cosine
metric, or through cuML's GPU UMAP when it is installed and a GPU is visible (never required).
:func:`cirscope.projection._compute.compute_map` decides what to fit and caches the result.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np

from cirscope._core.arrays import unit_rows
from cirscope.projection._knn import annoy_forest, knn_graph
from cirscope.projection._progress import MapTracker, layout_seconds, note_fitted
from cirscope.projection._sample import (
    REFINE_SEARCH_K,
    REFINE_TREES,
    choose_sample,
    place_rest,
    refine_layout,
    sample_size,
)

__all__ = ["cuml_umap", "fit_plan", "fit_umap", "pca"]

#: PCA for the UMAP pre-reduction is fitted on at most this many random rows, then applied to all.
_PCA_FIT_ROWS = 50_000
#: From this many points the neighbour graph is computed with annoy (:func:`.knn_graph`); below,
#: umap-learn computes it exactly itself (its brute-force path compiles quickly).
_OWN_KNN_FROM = 4096


def pca(x: np.ndarray, dims: int, seed: int | None, fit_rows: int | None = None) -> np.ndarray:
    """PCA to ``dims`` dimensions (padded with zeros when the data have fewer).

    With ``fit_rows`` the components are fitted on that many random rows and every row is
    then projected, in chunks (the fit's cost stops growing with the gallery).

    Examples
    --------
    >>> pca(np.eye(3, 4), 2, seed=0).shape, pca(np.eye(3, 4), 5, seed=0)[:, 3:].any()
    ((3, 2), np.False_)
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


def cuml_umap() -> Any:
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


def fit_plan(n: int, sample: int | str | None, umap_kwargs: dict[str, Any]) -> tuple[Any, int]:
    """``(cuML UMAP class or None, points fitted)``: cuML fits all points; a user's own
    ``precomputed_knn`` covers all points, so it is fitted on all too.

    Examples
    --------
    >>> fit_plan(1_000, "auto", {})[1], fit_plan(1_000_000, 5_000, {"precomputed_knn": None})[1]
    (1000, 1000000)
    """
    if "precomputed_knn" in umap_kwargs:
        return None, n
    gpu = cuml_umap()
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

    def __init__(self, plan: dict[str, int], progress: bool, tracker: MapTracker | None = None,
                 layout_s: float = 0.0):
        from tqdm.auto import tqdm

        self.units = {name: max(1, round(_STAGE_COST[name] * count)) for name, count in plan.items() if count}
        self.tracker = tracker
        if tracker is not None:
            tracker.plan(self.units, layout_s)
        self.bar = tqdm(total=sum(self.units.values()), desc="UMAP map", unit="", disable=not progress,
                        leave=False, bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]")  # fmt: skip
        self.stage, self.shown, self.done_in_stage = "", 0, 0

    def start(self, name: str, description: str) -> None:
        if self.tracker is not None:
            self.tracker.start(name, description)  # raises MapCancelled when the fit was cancelled
        self.stage, self.shown = name, 0
        self.bar.set_description(f"UMAP map: {description}")

    def advance(self, items: int, of: int) -> None:
        """``items`` more of this stage's ``of`` done."""
        self.done_in_stage = min(of, self.done_in_stage + items)
        target = round(self.units.get(self.stage, 0) * self.done_in_stage / max(of, 1))
        self.bar.update(target - self.shown)
        self.shown = target
        if self.tracker is not None:
            self.tracker.advance(self.done_in_stage / max(of, 1))

    def finish(self) -> None:
        self.bar.update(self.units.get(self.stage, 0) - self.shown)
        self.stage, self.shown, self.done_in_stage = "", 0, 0
        if self.tracker is not None:
            self.tracker.finish()

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


def fit_umap(
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
    tracker: MapTracker | None = None,
) -> np.ndarray:
    n, d = x.shape
    use_pca = pca_dims is not None and n > pca_above and d > pca_dims
    gpu, s = fit_plan(n, sample, umap_kwargs)
    own_knn = gpu is None and s >= _OWN_KNN_FROM and "precomputed_knn" not in umap_kwargs
    k = max(2, min(int(n_neighbors), s - 1))
    refine = refine_epochs if s < n and gpu is None else 0
    stages = _Stages(
        {"pca": n if use_pca else 0, "knn": s if own_knn else 0, "layout": s, "place": n - s,
         "knn_all": n if refine else 0, "refine": refine * n},
        progress,
        tracker,
        layout_seconds(s, umap_kwargs.get("n_epochs") if isinstance(umap_kwargs.get("n_epochs"), int) else None,
                       first=None if gpu is None else False),
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
            x = unit_rows(pca(x, int(pca_dims), seed, fit_rows=_PCA_FIT_ROWS))
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
            kwargs["precomputed_knn"], forest = knn_graph(xs, k, seed)
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
        note_fitted()
        lap("layout")
        if rows is not None:
            stages.start("place", f"placing the other {n - s:,} points by their nearest sample points")
            if forest is None:
                forest = annoy_forest(xs, seed)
            coords = place_rest(x, rows, coords, forest, progress=_Counter(stages, n - s))
            lap("place")
            if refine:
                stages.start("knn_all", f"{k} nearest neighbours of all {n:,} points (annoy)")
                knn_all, _ = knn_graph(x, k, seed, n_trees=REFINE_TREES, search_k=REFINE_SEARCH_K)
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


"""Large maps: fit UMAP on a random sample, place every other point by its nearest sample points, refine.

A full UMAP fit grows faster than linearly with the number of points (neighbour graph and
layout epochs); fitting a sample and placing the rest costs one approximate neighbour query
per remaining point. Each remaining point lands at the softmax-weighted mean of the map
positions of its ``k`` nearest sample points (:func:`cirscope.projection._place.place_rows`), the
out-of-sample initialisation of McInnes et al. 2018 (section 3.3), found through an annoy
forest over the sample. The optimisation step follows (:func:`refine_layout`): a few UMAP
layout epochs over the neighbour graph of all points, starting from that map.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cirscope.projection._knn import knn_graph, query_forest
from cirscope.projection._place import place_rows

__all__ = [
    "PLACE_K",
    "PLACE_TEMPERATURE",
    "REFINE_EPOCHS",
    "REFINE_SEARCH_K",
    "REFINE_TREES",
    "SAMPLE_ABOVE",
    "SAMPLE_FRACTION",
    "choose_sample",
    "place_rest",
    "refine_layout",
    "sample_size",
]  # fmt: skip

#: Galleries up to this many points get a full UMAP fit; larger ones are fitted on a sample of
#: ``max(SAMPLE_ABOVE, SAMPLE_FRACTION * N)`` points (capped at :data:`SAMPLE_MAX`).
#: What this rule rests on: time. A full fit of 100,000 x 128 points took 510 s (plain
#: ``umap.UMAP()`` 706 s) on 2 busy cores; a 5 % sample 76 s. It is NOT chosen by a quality
#: measurement. The earlier claim that it was relied on kNN-overlap@15 over all points, which
#: rewards placed points sitting on their nearest sample point (every sampled fit "beat" the full
#: fit). ``benchmarks/bench_scale_projection.py`` now measures the layout (sample points among the
#: sample) and the placement (placed points among all points) separately
#: (:func:`cirscope.projection._quality.sampled_fit_preservation`) against a full fit on the same rows;
#: on a small run (8,000 x 32, samples of 20 % and 40 %) the layout kept 1.18x and 1.02x the full
#: fit's overlap but placement only 0.42x and 0.43x: placed points keep fewer of their true
#: neighbours than a full fit gives them. Those figures are for placement alone; the layout epochs
#: over all points that now follow it (:data:`REFINE_EPOCHS`) bring placement to 0.92-1.05x of a
#: full fit at 20,000 and 50,000 points with 5-40 % samples. The 100,000-point rerun decides
#: whether the fraction or the floor should change; the floor of 20,000 keeps the layout from
#: resting on few points.
SAMPLE_ABOVE = 20_000
SAMPLE_FRACTION = 0.05
SAMPLE_MAX = 250_000
#: Neighbours and softmax temperature (on cosines) used to place the points outside the sample.
PLACE_K = 10
PLACE_TEMPERATURE = 0.02
#: annoy's ``search_k`` for placing (nodes inspected per query). Measured at 100,000 x 128 with a
#: 5,000-point sample (95,000 placed, 2 busy cores): search_k 1000: 5.9 s, kNN-overlap@15 0.1159;
#: 400: 3.3 s, 0.1159; 200: 3.0 s, 0.1145.
PLACE_SEARCH_K = 400
#: Layout epochs over the neighbour graph of all points after placement (0: none) and their
#: starting learning rate (umap-learn's default is 1.0). Measured on synthetic CLIP-like vectors
#: (``bench_index.synthetic_embeddings``, 128 dims, PCA to 50 as :func:`cirscope.projection._compute.compute_map`
#: does), kNN-overlap@15 of 1,000 random points (:func:`cirscope.projection._quality.sampled_fit_preservation`)
#: as a ratio to a full fit on the same rows, layout / placement, 2 busy cores (load 1.7-3.6):
#:
#: * 20,000 points, 10 % sample: placement alone 1.00 / 0.71; refined 30 epochs at rate 0.1:
#:   1.00 / 1.04 (0.6 s); 60 epochs 1.01 / 1.09. Rate 1.0 tears the placed map apart
#:   (10 epochs: 0.85 / 0.47) and a higher rate than 0.1 gains nothing (rate 0.3, 30 epochs:
#:   0.99 / 0.97). Rerun with the lighter graph below: 0.99 / 0.67 alone, 0.99 / 0.98 refined.
#:   20 % sample: 0.85 / 0.76 alone, 0.99 / 1.00 refined.
#: * 50,000 points, 10 % sample: placement alone 0.86 / 0.95; 20 epochs 0.97 / 0.93; 30 epochs
#:   1.00 / 0.92 (4.4 s); 60 epochs 1.01 / 1.00 (11.6 s). 40 % sample (the default size at 50,000):
#:   1.03 / 1.07 alone, 1.00 / 1.05 with 30 epochs. 5 % sample (the fraction used at
#:   1,000,000): 0.89 / 0.86 alone, 1.01 / 0.94 refined (30 epochs, lighter graph).
#: * Moving only the placed points (sample fixed) is worse: at 50,000 / 40 % its placement fell to
#:   0.78 and at 20,000 / 10 % the overlap over all points to 0.36x: the sample and the placed
#:   points drift apart. So every point moves.
#:
#: The ratios carry about +-3 % of sampling noise (1,000 points), and the unseeded full fit
#: itself varies between runs (its placement overlap at 50,000: 0.139 and 0.148).
#:
#: Cost, synthetic 128-dim vectors after PCA to 50, 2 busy cores (load 2.9-3.7), 30 epochs:
#: neighbour graph of all points (:data:`REFINE_TREES`, :data:`REFINE_SEARCH_K`) 1.6 / 3.9 / 7.7 s
#: and refinement 1.6 / 3.8 / 7.5 s at 25,000 / 50,000 / 100,000 points. Extrapolated to
#: 1,000,000 points (power law fitted over 25,000-100,000, exponents 1.14 and 1.10; linear would
#: give 77 s and 75 s): about 106 s + 94 s = 200 s on top of the 243 s measured for the rest of a
#: 1,000,000 x 256 first map, about 445 s in all, inside a 10-minute budget on 2 cores.
REFINE_EPOCHS = 30
REFINE_ALPHA = 0.1
#: annoy settings for the neighbour graph of all points that the refinement runs on: a lighter
#: forest than the sample's (20 trees, search_k 1000). At 50,000 x 50 (10 % sample, 30 epochs) it
#: cost 4.3 s against 11.5 s (different load) with the same outcome (layout / placement 1.00 /
#: 1.00 of a full fit, against 1.00 / 0.92): SGD over the graph tolerates a few missed neighbours.
REFINE_TREES = 10
REFINE_SEARCH_K = 300


def sample_size(n: int, sample: int | str | None = "auto") -> int:
    """How many points the UMAP fit uses for a gallery of ``n``.

    ``"auto"``: all up to :data:`SAMPLE_ABOVE`, then ``max(SAMPLE_ABOVE, SAMPLE_FRACTION * n)``
    up to :data:`SAMPLE_MAX`; ``None``: all; an int: that many (at most ``n``).

    Examples
    --------
    >>> sample_size(10_000), sample_size(1_000_000), sample_size(1_000_000, None), sample_size(50, 80)
    (10000, 50000, 1000000, 50)
    """
    if sample is None:
        return n
    if sample == "auto":
        if n <= SAMPLE_ABOVE:
            return n
        return int(min(n, SAMPLE_MAX, max(SAMPLE_ABOVE, round(SAMPLE_FRACTION * n))))
    if isinstance(sample, bool) or not isinstance(sample, (int, np.integer)) or sample < 2:
        raise ValueError(f"sample must be 'auto', None or an integer of at least 2, got {sample!r}")
    return min(n, int(sample))


def choose_sample(n: int, size: int, seed: int | None) -> np.ndarray:
    """``size`` distinct rows of ``n``, sorted (the same rows for the same seed; seed 0 when ``None``).

    Examples
    --------
    >>> choose_sample(10, 3, seed=1).tolist() == choose_sample(10, 3, seed=1).tolist()
    True
    """
    rng = np.random.default_rng(0 if seed is None else seed)
    return np.sort(rng.choice(n, size=size, replace=False)).astype(np.int64)


def place_rest(
    x: np.ndarray,
    sample_rows: np.ndarray,
    sample_coords: np.ndarray,
    forest: Any,
    *,
    k: int = PLACE_K,
    temperature: float = PLACE_TEMPERATURE,
    progress: Any = None,
) -> np.ndarray:
    """Map coordinates for every row of ``x``: the sample's own, the rest placed by neighbours.

    ``x`` is L2-normalised; ``forest`` is an annoy forest over ``x[sample_rows]`` (its item
    ``i`` is sample row ``i``); ``sample_coords`` are the sample's map positions.
    """
    n = len(x)
    out = np.empty((n, 2), dtype=np.float64)
    out[sample_rows] = sample_coords
    rest = np.ones(n, dtype=bool)
    rest[sample_rows] = False
    rest_rows = np.flatnonzero(rest)
    items = x[sample_rows]
    for s in range(0, len(rest_rows), 65536):  # bounded memory at any gallery size
        chunk = rest_rows[s : s + 65536]
        rows, sims = query_forest(forest, items, x[chunk], min(k, len(sample_rows)), search_k=PLACE_SEARCH_K,
                                  progress=progress)
        out[chunk] = place_rows(rows, sims, sample_coords, temperature=temperature)
    return out


def refine_layout(
    x: np.ndarray,
    coords: np.ndarray,
    sample_rows: np.ndarray,
    *,
    n_neighbors: int,
    min_dist: float,
    n_epochs: int = REFINE_EPOCHS,
    anchor: bool = False,
    seed: int | None = None,
    spread: float = 1.0,
    alpha: float = REFINE_ALPHA,
    knn: tuple[np.ndarray, np.ndarray] | None = None,
    progress: bool = False,
) -> np.ndarray:
    """A few UMAP layout epochs over the neighbour graph of ALL points, starting from ``coords``.

    The refinement step of McInnes et al. 2018 (section 3.3) for points placed outside a
    sampled fit: the fuzzy simplicial set of every point's ``n_neighbors`` nearest neighbours
    (annoy, :func:`cirscope.projection._knn.knn_graph`, unless ``knn`` = ``(rows, cosine distances)`` is given)
    is optimised for ``n_epochs`` epochs with umap-learn's own SGD
    (``optimize_layout_euclidean``). With ``anchor`` only placed points move (edges are kept
    only where the moving end is a placed point; the sample's layout stays as fitted); without,
    every point moves. ``x`` is L2-normalised; returns new ``(N, 2)`` float64 coordinates.
    """
    from umap.umap_ import (
        find_ab_params,
        fuzzy_simplicial_set,
        make_epochs_per_sample,
        optimize_layout_euclidean,
    )

    n = len(x)
    if n_epochs < 1:
        return np.asarray(coords, dtype=np.float64).copy()
    if knn is None:
        knn, _ = knn_graph(x, n_neighbors, seed, n_trees=REFINE_TREES, search_k=REFINE_SEARCH_K)
    idx, dists = knn
    rs = np.random.RandomState(seed)
    graph, _, _ = fuzzy_simplicial_set(x, n_neighbors, rs, "cosine", knn_indices=idx, knn_dists=dists)
    graph = graph.tocoo()
    graph.sum_duplicates()
    graph.data[graph.data < graph.data.max() / float(max(n_epochs, 1))] = 0.0
    graph.eliminate_zeros()
    head, tail, weights = graph.row, graph.col, graph.data
    if anchor:
        moving = np.ones(n, dtype=bool)
        moving[sample_rows] = False
        keep = moving[head]
        head, tail, weights = head[keep], tail[keep], weights[keep]
    emb = np.ascontiguousarray(coords, dtype=np.float32)
    if head.size == 0:
        return emb.astype(np.float64)
    a, b = find_ab_params(spread, min_dist)
    epochs_per_sample = make_epochs_per_sample(weights, n_epochs)
    rng_state = rs.randint(np.iinfo(np.int32).min + 1, np.iinfo(np.int32).max - 1, 3).astype(np.int64)
    emb = optimize_layout_euclidean(
        emb, emb, head.astype(np.int32), tail.astype(np.int32), n_epochs, n, epochs_per_sample, a, b,
        rng_state, 1.0, float(alpha), 5.0, parallel=seed is None,
        tqdm_kwds={"disable": not progress, "desc": "UMAP refinement epochs", "leave": False},
        move_other=not anchor,
    )
    return np.asarray(emb, dtype=np.float64)

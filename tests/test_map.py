"""Maps: PCA and UMAP coordinates, the on-disk cache, and placing new vectors on a map."""

from __future__ import annotations

import numpy as np
import pytest

import cirscope.projection._compute as map_module
from cirscope.neighbors._index import NeighborIndex
from cirscope.projection._cache import map_cache_path
from cirscope.projection._compute import compute_map
from cirscope.projection._fit import cuml_umap
from cirscope.projection._place import place, place_rows
from cirscope.projection._quality import neighborhood_preservation
from cirscope.projection._sample import REFINE_EPOCHS, SAMPLE_ABOVE, choose_sample, sample_size


def blobs(n_per: int = 100, dim: int = 32, centres: int = 3, seed: int = 0, spread: float = 0.05):
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centres, dim))
    labels = np.repeat(np.arange(centres), n_per)
    x = c[labels] + spread * rng.normal(size=(len(labels), dim)) * np.linalg.norm(c, axis=1).mean()
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), labels


def separated(coords: np.ndarray, labels: np.ndarray) -> float:
    """Share of points whose nearest class centroid on the map is their own class."""
    cents = np.stack([coords[labels == c].mean(axis=0) for c in np.unique(labels)])
    nearest = np.argmin(((coords[:, None, :] - cents[None]) ** 2).sum(-1), axis=1)
    return float((nearest == labels).mean())


# ---------------------------------------------------------------------- PCA
def test_pca_map_is_centred_scaled_and_separates_clusters():
    x, labels = blobs()
    xy = compute_map(x, method="pca")
    assert xy.shape == (300, 2) and xy.dtype == np.float32
    np.testing.assert_allclose(xy.mean(axis=0), 0, atol=1e-5)
    assert float(np.abs(xy).max()) == pytest.approx(1.0)
    assert separated(xy, labels) == 1.0
    np.testing.assert_array_equal(xy, compute_map(x, method="pca"))  # deterministic


def test_pca_hand_computed():
    # mean (0.6, 0.6); centred rows (0.4,-0.6) (0.2,0) (0,0.2) (-0.6,0.4). By symmetry the components
    # are (1,-1)/√2 (projections ±0.707, ±0.141) and (1,1)/√2 (±0.141); divided by 0.707 that gives
    # x = ±(1, 0.2, -0.2, -1) and y = ±(-0.2, 0.2, 0.2, -0.2).
    x = np.array([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8], [0.0, 1.0]])
    xy = compute_map(x, method="pca")
    sx, sy = np.sign(xy[0, 0]), np.sign(xy[1, 1])
    np.testing.assert_allclose(xy[:, 0] * sx, [1.0, 0.2, -0.2, -1.0], atol=1e-5)
    np.testing.assert_allclose(xy[:, 1] * sy, [-0.2, 0.2, 0.2, -0.2], atol=1e-5)


def test_tiny_and_bad_inputs():
    assert compute_map(np.ones((1, 4)), method="umap").tolist() == [[0.0, 0.0]]
    assert compute_map(np.eye(3), method="umap").shape == (3, 2)  # too few points for UMAP: PCA
    with pytest.raises(ValueError, match="Unknown map method"):
        compute_map(np.eye(3), method="tsne")
    with pytest.raises(ValueError, match="2-D"):
        compute_map(np.ones(4))
    with pytest.raises(ValueError, match="empty"):
        compute_map(np.ones((0, 4)))
    with pytest.raises(ValueError, match="NaN"):
        compute_map(np.array([[1.0, np.nan], [0.0, 1.0]]))


# ---------------------------------------------------------------------- cache
def test_cache_is_reused_and_keyed_by_fingerprint_and_parameters(tmp_path, monkeypatch):
    x, _ = blobs()
    calls = []
    real = map_module.pca
    monkeypatch.setattr(map_module, "pca", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = compute_map(x, method="pca", cache_dir=tmp_path, fingerprint="abc")
    second = compute_map(x, method="pca", cache_dir=tmp_path, fingerprint="abc")
    assert len(calls) == 1
    np.testing.assert_array_equal(first, second)
    assert len(list(tmp_path.glob("map-pca-*.npy"))) == 1 and not list(tmp_path.glob("*.tmp"))
    compute_map(x, method="pca", cache_dir=tmp_path, fingerprint="other")  # other embeddings: other file
    assert len(calls) == 2 and len(list(tmp_path.glob("map-pca-*.npy"))) == 2
    compute_map(x, method="pca", cache_dir=tmp_path)  # fingerprint computed from the embeddings
    compute_map(x, method="pca", cache_dir=tmp_path)
    assert len(calls) == 3
    a = map_cache_path(tmp_path, "abc", {"method": "umap", "seed": 0})
    assert a != map_cache_path(tmp_path, "abc", {"method": "umap", "seed": 1})


@pytest.mark.parametrize("damage", ["garbage", "wrong_shape", "nan"])
def test_damaged_cache_file_is_recomputed(tmp_path, damage):
    x, _ = blobs()
    good = compute_map(x, method="pca", cache_dir=tmp_path, fingerprint="fp")
    (path,) = tmp_path.glob("map-pca-*.npy")
    if damage == "garbage":
        path.write_bytes(b"\x93NUMPY broken")
    elif damage == "wrong_shape":
        np.save(path, np.zeros((5, 2), np.float32))
    else:
        np.save(path, np.full((300, 2), np.nan, np.float32))
    again = compute_map(x, method="pca", cache_dir=tmp_path, fingerprint="fp")
    np.testing.assert_array_equal(again, good)
    np.testing.assert_array_equal(np.load(path), good)  # rewritten


def test_space_map_is_cached_next_to_the_space(toy_space):
    xy = toy_space.map("pca")
    assert xy.shape == (len(toy_space), 2)
    files = list(toy_space.cache_dir.glob("map-pca-*.npy"))
    assert len(files) == 1
    np.testing.assert_array_equal(np.load(files[0]), xy)


# ---------------------------------------------------------------------- place
def test_place_hand_computed():
    emb = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    xy = np.array([[0.0, 0.0], [2.0, 0.0], [9.0, 9.0]])
    assert place(np.array([1.0, 0.0]), emb, xy, k=1).tolist() == [[0.0, 0.0]]
    # equidistant from rows 0 and 1 (cosine 0.707 each): the midpoint of their coordinates
    out = place(np.array([[1.0, 1.0]]), emb, xy, k=2)
    np.testing.assert_allclose(out, [[1.0, 0.0]], atol=1e-6)
    # a softer temperature pulls towards the average of more neighbours
    near = place(np.array([1.0, 0.1]), emb, xy, k=3, temperature=0.01)[0]
    soft = place(np.array([1.0, 0.1]), emb, xy, k=3, temperature=10.0)[0]
    assert np.linalg.norm(near - xy[0]) < 0.01 < np.linalg.norm(soft - xy[0])


def test_place_with_an_index_matches_exact_and_lands_in_the_right_cluster():
    x, labels = blobs(n_per=1000, dim=32, centres=4, seed=2)
    xy = compute_map(x, method="pca")
    index = NeighborIndex(x, exact_below=0, progress=False)
    assert not index.is_exact
    queries = x[[5, 1500, 2500, 3999]] + 0.01
    fast = place(queries, x, xy, k=10, index=index)
    slow = place(queries, x, xy, k=10)
    np.testing.assert_allclose(fast, slow, atol=1e-5)
    cents = np.stack([xy[labels == c].mean(axis=0) for c in range(4)])
    assert np.argmin(((fast[:, None] - cents[None]) ** 2).sum(-1), axis=1).tolist() == [0, 1, 2, 3]


def test_place_from_known_rows_and_scores_needs_no_search_and_matches_the_vector_path():
    x, _ = blobs(n_per=200, dim=16, centres=3, seed=5)
    xy = compute_map(x, method="pca")
    queries = x[[3, 250, 599]] + 0.02
    sims = queries @ x.T / np.linalg.norm(queries, axis=1, keepdims=True)
    rows = np.argsort(-sims, axis=1)[:, :10]
    scores = np.take_along_axis(sims, rows, axis=1)
    np.testing.assert_allclose(place(coords=xy, rows=rows, scores=scores), place(queries, x, xy, k=10), atol=1e-5)
    # one query's (k,) rows; k= keeps the first k of them
    one = place(coords=xy, rows=rows[0], scores=scores[0], k=1)
    np.testing.assert_allclose(one, xy[rows[0, :1]], atol=1e-6)


def test_place_rows_hand_computed_padding_and_errors():
    xy = np.array([[0.0, 0.0], [2.0, 0.0], [9.0, 9.0]])
    # equal scores: the midpoint; padding (-1 / NaN) is ignored; a query with no rows is NaN
    out = place_rows([[0, 1, -1], [-1, -1, -1]], [[0.5, 0.5, np.nan], [np.nan] * 3], xy)
    np.testing.assert_allclose(out[0], [1.0, 0.0], atol=1e-6)
    assert np.isnan(out[1]).all()
    # w = exp((s - s_max) / T): scores 0.5 and 0.5 - T ln 3 weigh 3 : 1
    out = place_rows([0, 1], [0.5, 0.5 - 0.05 * np.log(3)], xy, temperature=0.05)
    np.testing.assert_allclose(out, [[0.5, 0.0]], atol=1e-6)
    with pytest.raises(ValueError, match="same"):
        place_rows([0, 1], [0.5], xy)
    with pytest.raises(IndexError, match="outside"):
        place_rows([5], [0.5], xy)
    with pytest.raises(TypeError, match="integer"):
        place_rows([0.5], [0.5], xy)
    with pytest.raises(TypeError, match="both"):
        place(coords=xy, rows=[0])
    with pytest.raises(TypeError, match="query vectors"):
        place(coords=xy)


def test_place_errors():
    emb, xy = np.eye(3), np.zeros((3, 2))
    with pytest.raises(ValueError, match="dimensions"):
        place(np.ones(4), emb, xy)
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        place(np.ones(3), emb, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="rows"):
        place(np.ones(3), emb, np.zeros((4, 2)))


# ---------------------------------------------------------------------- UMAP (one small fit)
@pytest.mark.slow
def test_umap_map_separates_clusters_is_seeded_cached_and_says_it_compiles(tmp_path, capsys):
    x, labels = blobs(n_per=100, dim=32, centres=3, seed=4, spread=0.1)
    xy = compute_map(x, method="umap", cache_dir=tmp_path, fingerprint="fp", seed=0, progress=True)
    err = capsys.readouterr().err
    assert "numba" in err  # the progress text explains the first-call pause
    assert xy.shape == (300, 2) and xy.dtype == np.float32
    assert float(np.abs(xy).max()) == pytest.approx(1.0)
    assert separated(xy, labels) == 1.0
    assert len(list(tmp_path.glob("map-umap-*.npy"))) == 1
    # same seed, fresh fit: the same map
    np.testing.assert_allclose(compute_map(x, method="umap", seed=0, progress=False), xy, atol=1e-5)
    # the cached result comes back without fitting again
    np.testing.assert_array_equal(compute_map(x, method="umap", cache_dir=tmp_path, fingerprint="fp", seed=0), xy)
    # PCA pre-reduction kicks in above pca_above points (here forced) and still separates
    reduced = compute_map(x, method="umap", pca_dims=8, pca_above=100, progress=False, n_epochs=100)
    assert separated(reduced, labels) == 1.0


# ---------------------------------------------------------------------- large maps: sample, place, quality
def test_sample_size_rule_and_errors():
    assert sample_size(SAMPLE_ABOVE) == SAMPLE_ABOVE  # a full fit up to the threshold
    assert SAMPLE_ABOVE <= sample_size(SAMPLE_ABOVE + 1) <= SAMPLE_ABOVE + 1
    assert sample_size(1_000_000) < 1_000_000 and sample_size(1_000_000, None) == 1_000_000
    assert sample_size(1000, 300) == 300 and sample_size(100, 300) == 100
    for bad in (1, "half", 2.5, True):
        with pytest.raises(ValueError, match="sample"):
            sample_size(1000, bad)


def test_neighborhood_preservation_bounds():
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(400, 2))
    x = np.concatenate([pts, np.full((400, 1), 20.0)], axis=1)  # cosine neighbours ~ Euclidean neighbours of pts
    assert neighborhood_preservation(x, pts, k=10, sample=200) > 0.8
    shuffled = pts[rng.permutation(400)]
    assert neighborhood_preservation(x, shuffled, k=10, sample=200) < 0.1  # chance is 10/399
    with pytest.raises(ValueError, match="coords"):
        neighborhood_preservation(x, pts[:10])
    with pytest.raises(ValueError, match="k must"):
        neighborhood_preservation(x, pts, k=400)


def test_cuml_is_optional():
    """cuML is used only when importable with a GPU; here (no cuML) the CPU path is chosen."""
    try:
        import cuml  # noqa: F401
    except Exception:
        assert cuml_umap() is None
    else:  # pragma: no cover - machines with cuML: only the guard is tested here
        pytest.skip("cuML is installed: the GPU path is not tested on CPU machines")


@pytest.mark.slow
def test_sampled_umap_map_places_the_rest_keeps_clusters_and_is_cached_per_sample(tmp_path, capsys, monkeypatch):
    import umap

    seen = []
    real = umap.UMAP

    class Recording(real):  # the real class; records how it was configured
        def __init__(self, **kwargs):
            seen.append(kwargs)
            super().__init__(**kwargs)

    monkeypatch.setattr(umap, "UMAP", Recording)
    x, labels = blobs(n_per=400, dim=32, centres=3, seed=6, spread=0.1)
    timings: dict[str, float] = {}
    xy = compute_map(x, cache_dir=tmp_path, fingerprint="fp", sample=300, progress=True, timings=timings,
                     n_epochs=100)
    err = capsys.readouterr().err
    assert "300 points (a sample of 1,200)" in err and "placing the other 900 points" in err
    assert f"{REFINE_EPOCHS} layout epochs over all 1,200 points" in err
    assert set(timings) == {"layout", "place", "knn_all", "refine"} and all(v > 0 for v in timings.values())
    assert xy.shape == (1200, 2) and np.isfinite(xy).all() and float(np.abs(xy).max()) == pytest.approx(1.0)
    assert separated(xy, labels) == 1.0
    # the default is unseeded and multi-threaded: no random_state, n_jobs left to umap-learn
    assert seen[-1]["random_state"] is None and "n_jobs" not in seen[-1]
    # a full fit (and any other sample size) is another cache file; the same call reads its file
    assert len(list(tmp_path.glob("map-umap-*.npy"))) == 1
    np.testing.assert_array_equal(compute_map(x, cache_dir=tmp_path, fingerprint="fp", sample=300,
                                              n_epochs=100), xy)
    assert len(seen) == 1
    full = compute_map(x, cache_dir=tmp_path, fingerprint="fp", sample=None, progress=False, n_epochs=100)
    assert len(list(tmp_path.glob("map-umap-*.npy"))) == 2 and separated(full, labels) == 1.0
    # seeded: reproducible, and umap-learn told to use one core
    a = compute_map(x, sample=300, seed=3, progress=False, n_epochs=100)
    assert seen[-1]["random_state"] == 3 and seen[-1]["n_jobs"] == 1
    np.testing.assert_allclose(compute_map(x, sample=300, seed=3, progress=False, n_epochs=100), a, atol=1e-5)


def test_cached_reopen_with_a_known_fingerprint_reads_no_values_but_computing_validates(tmp_path, monkeypatch):
    x, _ = blobs()
    good = compute_map(x, method="pca", cache_dir=tmp_path, fingerprint="fp")
    calls = []
    real = map_module.check_matrix
    monkeypatch.setattr(map_module, "check_matrix", lambda *a, **k: calls.append(1) or real(*a, **k))
    np.testing.assert_array_equal(compute_map(x, method="pca", cache_dir=tmp_path, fingerprint="fp"), good)
    assert calls == []  # the cache answered: the embeddings were not scanned
    bad = x.copy()
    bad[3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):  # a miss computes, and validates first
        compute_map(bad, method="pca", cache_dir=tmp_path, fingerprint="other")
    with pytest.raises(ValueError, match="2-D"):
        compute_map(x[0], method="pca", cache_dir=tmp_path, fingerprint="fp")


def test_sampled_fit_preservation_does_not_reward_stacking_placed_points():
    """A garbage layout of the sample, every other point stacked on its nearest sample point: the
    all-points overlap rises well above chance (placement games it), the layout's stays at chance."""
    from cirscope.projection._quality import sampled_fit_preservation

    rng = np.random.default_rng(0)
    x = rng.normal(size=(800, 16))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    rows = np.sort(rng.choice(800, 100, replace=False))
    xy = np.empty((800, 2))
    xy[rows] = rng.normal(size=(100, 2))  # a layout that keeps nothing
    nearest = rows[np.argmax(x @ x[rows].T, axis=1)]
    rest = np.setdiff1d(np.arange(800), rows)
    xy[rest] = xy[nearest[rest]] + 1e-6 * rng.normal(size=(len(rest), 2))
    got = sampled_fit_preservation(x, xy, rows, k=10, sample=300)
    chance = 10 / 99
    assert got["layout"] < 1.6 * chance
    assert got["all"] > 1.8 * got["layout"]
    # a faithful layout of the sample scores high on the layout measure
    circle = x[:, :2] / np.linalg.norm(x[:, :2], axis=1, keepdims=True)  # cosine = Euclidean order
    assert sampled_fit_preservation(circle, 10 * circle, rows, k=10, sample=100)["layout"] > 0.9


@pytest.mark.slow
def test_refinement_over_all_points_raises_placement_preservation_and_is_its_own_cache_file(tmp_path):
    """Placed points sit at the weighted mean of a few sample points; the layout epochs over the
    neighbour graph of all points move them towards their true neighbours (here 3,000 points in
    40 clusters with inner structure, a 10 % sample)."""
    from cirscope.projection._quality import sampled_fit_preservation

    x, _ = blobs(n_per=75, dim=32, centres=40, seed=2, spread=0.25)
    rows = choose_sample(len(x), 300, 0)
    common = {"sample": 300, "seed": 0, "progress": False, "n_epochs": 100}
    placed = compute_map(x, cache_dir=tmp_path, fingerprint="fp", refine_epochs=0, **common)
    refined = compute_map(x, cache_dir=tmp_path, fingerprint="fp", **common)
    assert refined.shape == (3000, 2) and refined.dtype == np.float32 and np.isfinite(refined).all()
    assert float(np.abs(refined).max()) == pytest.approx(1.0)
    before = sampled_fit_preservation(x, placed, rows, k=10, sample=500)
    after = sampled_fit_preservation(x, refined, rows, k=10, sample=500)
    assert after["placement"] > before["placement"] + 0.05, (before, after)
    assert after["layout"] > 0.8 * before["layout"], (before, after)  # the sample's layout is not torn up
    # refined and unrefined maps are different cache files; each call reads back its own
    assert len(list(tmp_path.glob("map-umap-*.npy"))) == 2
    np.testing.assert_array_equal(compute_map(x, cache_dir=tmp_path, fingerprint="fp", **common), refined)
    np.testing.assert_allclose(compute_map(x, **common), refined, atol=1e-5)  # seeded: reproducible
    with pytest.raises(ValueError, match="refine_epochs"):
        compute_map(x, refine_epochs=-1)


@pytest.mark.slow  # numba compiles umap-learn's layout code in a new process
def test_refine_layout_anchored_moves_only_placed_points_and_zero_epochs_moves_nothing():
    from cirscope.projection._sample import refine_layout

    x, _ = blobs(n_per=200, dim=16, centres=5, seed=4, spread=0.2)
    start = np.random.default_rng(0).normal(size=(len(x), 2)) * 5
    rows = choose_sample(len(x), 200, 0)
    got = refine_layout(x, start, rows, n_neighbors=10, min_dist=0.1, n_epochs=5, anchor=True, seed=0)
    assert got.shape == start.shape and np.isfinite(got).all()
    np.testing.assert_allclose(got[rows], start[rows], atol=1e-5)  # the sample's layout stays as fitted
    rest = np.setdiff1d(np.arange(len(x)), rows)
    assert np.abs(got[rest] - start[rest]).max(axis=1).mean() > 1e-3
    free = refine_layout(x, start, rows, n_neighbors=10, min_dist=0.1, n_epochs=5, seed=0)
    assert np.abs(free[rows] - start[rows]).max() > 1e-3  # by default every point moves
    np.testing.assert_allclose(refine_layout(x, start, rows, n_neighbors=10, min_dist=0.1, n_epochs=0), start,
                               atol=1e-5)  # fmt: skip

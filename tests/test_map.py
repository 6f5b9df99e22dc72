"""Maps: PCA and UMAP coordinates, the on-disk cache, and placing new vectors on a map."""

from __future__ import annotations

import numpy as np
import pytest

import cirscope._map as map_module
from cirscope._index import NeighborIndex
from cirscope._map import compute_map, map_cache_path, place


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
    real = map_module._pca
    monkeypatch.setattr(map_module, "_pca", lambda *a, **k: calls.append(1) or real(*a, **k))
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
    np.testing.assert_array_equal(compute_map(x, method="umap", cache_dir=tmp_path, fingerprint="fp"), xy)
    # PCA pre-reduction kicks in above pca_above points (here forced) and still separates
    reduced = compute_map(x, method="umap", pca_dims=8, pca_above=100, progress=False, n_epochs=100)
    assert separated(reduced, labels) == 1.0

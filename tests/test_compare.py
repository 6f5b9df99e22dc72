"""Two spaces of one gallery compared: known overlaps, the rows flagged, the diagnostics side by side."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

import cirscope as cs
from cirscope.analysis._compare import compare, exact_knn, neighbor_overlap

K = 5
CLUSTERS = 8


def clustered(seed: int = 0) -> np.ndarray:
    """CLUSTERS tight clusters of K + 1 points each, far apart: every point's K neighbours are its cluster mates."""
    rng = np.random.default_rng(seed)
    centres = np.linalg.qr(rng.normal(size=(32, CLUSTERS)))[0].T  # orthonormal directions
    emb = np.repeat(centres, K + 1, axis=0) + 0.02 * rng.normal(size=(CLUSTERS * (K + 1), 32))
    return emb / np.linalg.norm(emb, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def gallery():
    return cs.datasets.shapes(CLUSTERS * (K + 1), seed=0)


def test_a_space_compared_with_itself_keeps_every_neighbour(gallery):
    space = cs.Space.from_embeddings(gallery, clustered())
    res = compare(space, space, k=K, diagnostics=False)
    assert res.overlap.tolist() == [1.0] * len(gallery)
    assert res.jaccard.tolist() == [1.0] * len(gallery)
    assert res.summary()["unchanged_share"] == 1.0
    # a second space with the same embeddings (another object) too
    twin = cs.Space.from_embeddings(gallery, clustered().copy())
    assert compare(space, twin, k=K, diagnostics=False).shared.tolist() == [K] * len(gallery)


def test_swapped_rows_are_exactly_the_ones_flagged(gallery):
    emb = clustered()
    moved = clustered()
    # swap the first point of cluster 0 with that of cluster 3, and of cluster 5 with cluster 6
    swaps = [(0, 3 * (K + 1)), (5 * (K + 1), 6 * (K + 1))]
    for a, b in swaps:
        moved[[a, b]] = moved[[b, a]]
    res = compare(cs.Space.from_embeddings(gallery, emb), cs.Space.from_embeddings(gallery, moved), k=K,
                  names=("before", "after"), diagnostics=False)  # fmt: skip
    swapped = sorted(r for pair in swaps for r in pair)
    # a swapped point now sits in the other cluster: none of its neighbours kept
    assert res.overlap[swapped].tolist() == [0.0] * 4
    assert res.changed(0.5).tolist() == swapped
    assert sorted(res.most_changed(4)["row"].tolist()) == swapped
    # its old cluster mates lost one neighbour (it) and gained the newcomer; other clusters are untouched
    touched = {c for pair in swaps for c in (pair[0] // (K + 1), pair[1] // (K + 1))}
    for row in range(len(gallery)):
        if row in swapped:
            continue
        expected = (K - 1) / K if row // (K + 1) in touched else 1.0
        assert res.overlap[row] == pytest.approx(expected), row
    frame = res.most_changed(4)
    assert frame.columns.tolist() == ["row", "id", "shared", "overlap", "jaccard", "neighbors_before",
                                      "neighbors_after"]  # fmt: skip
    row = frame["row"][0]
    assert frame["neighbors_before"][0] == res.neighbors_a[row].tolist()


def test_mismatched_galleries_are_rejected(gallery):
    space = cs.Space.from_embeddings(gallery, clustered())
    smaller = cs.Space.from_embeddings(gallery.subset(np.arange(10)), clustered()[:10])
    with pytest.raises(ValueError, match="the first has 48 images, the second 10"):
        compare(space, smaller)
    order = np.r_[1, 0, np.arange(2, len(gallery))]
    reordered = cs.Space.from_embeddings(gallery.subset(order), clustered()[order])
    with pytest.raises(ValueError, match=r"2 ids differ.*row 0"):
        compare(space, reordered)
    with pytest.raises(TypeError, match="take a cirscope Space"):
        compare(space, clustered())
    with pytest.raises(ValueError, match="k must be between 1 and 47"):
        compare(space, space, k=48)


@pytest.mark.parametrize("backend", ["numpy", "faiss"])
def test_exact_knn_matches_brute_force_and_overlap_matches_sets(backend):
    rng = np.random.default_rng(1)
    emb = rng.normal(size=(700, 24))
    rows, scores = exact_knn(emb, 7, backend=backend)
    ref = NearestNeighbors(n_neighbors=7, metric="cosine", algorithm="brute").fit(emb)
    dist, ind = ref.kneighbors()
    assert np.array_equal(rows, ind)
    np.testing.assert_allclose(scores, 1 - dist, atol=1e-5)
    other = rng.permutation(700)[rows]  # another neighbour list with the same shape
    expected = [len(set(a) & set(b)) for a, b in zip(rows.tolist(), other.tolist(), strict=True)]
    assert neighbor_overlap(rows, other).tolist() == expected


def test_exact_knn_in_blocks_equals_one_block(monkeypatch):
    from cirscope.analysis import _compare

    emb = np.random.default_rng(2).normal(size=(300, 16))
    whole = exact_knn(emb, 4, backend="numpy")[0]
    monkeypatch.setattr(_compare, "_CELLS", 300 * 7)  # blocks of 7 rows
    assert np.array_equal(exact_knn(emb, 4, backend="numpy")[0], whole)


def test_exact_copies_are_each_others_neighbours_not_their_own():
    emb = np.repeat(np.eye(4), 3, axis=0)  # four directions, three exact copies each: ties everywhere
    for backend in ("numpy", "faiss"):
        rows, scores = exact_knn(emb, 2, backend=backend)
        assert not np.any(rows == np.arange(12)[:, None]), backend
        assert np.array_equal(np.sort(rows, axis=1) // 3, np.repeat(np.arange(4), 3)[:, None].repeat(2, 1))
        assert np.allclose(scores, 1.0)
    with pytest.raises(ValueError, match="backend must be"):
        exact_knn(emb, 2, backend="annoy")


def test_diagnostics_side_by_side_agree_with_the_diagnostics(gallery):
    rng = np.random.default_rng(3)
    emb_a = rng.normal(size=(len(gallery), 16))
    emb_b = emb_a.copy()
    emb_b[1] = emb_b[0] + 1e-6  # a planted near-duplicate pair in B
    a, b = cs.Space.from_embeddings(gallery, emb_a), cs.Space.from_embeddings(gallery, emb_b)
    res = compare(a, b, k=4, names=("a", "b"))
    table = res.diagnostics_frame().set_index("quantity")
    for name, space in (("a", a), ("b", b)):
        hub = cs.diagnostics.hubness(space, k=4, progress=False).to_frame().iloc[0]
        assert table.loc["k_skewness@4", name] == pytest.approx(hub["k_skewness"])
        assert table.loc["hubs@4", name] == hub["hubs"]
        pairs = cs.diagnostics.duplicates(space).to_frame()
        assert table.loc["near_duplicate_images", name] == len(set(pairs["row_a"]) | set(pairs["row_b"]))
    assert table.loc["near_duplicate_images", "b"] == 2
    assert np.isnan(table.loc["modality_gap", "a"])  # no model: no texts to measure a gap with
    assert table.loc["near_duplicate_images", "difference"] == 2 - table.loc["near_duplicate_images", "a"]


def test_two_models_on_the_toy_world(toy_space):
    """The toy model against a random projection of its own embeddings (a different model of one gallery)."""
    rng = np.random.default_rng(0)
    proj = toy_space.image_embeddings @ rng.normal(size=(toy_space.dim, 16))
    other = cs.Space.from_embeddings(toy_space.gallery, proj, model_name="projected")
    res = compare(toy_space, other, k=10, query="a red star", attribute="color", skew_k=20)
    assert res.names == ("cirscope-toy", "projected")
    assert 0.0 < res.summary()["mean_overlap"] < 1.0
    table = res.diagnostics_frame().set_index("quantity")
    gap = cs.diagnostics.modality_gap(toy_space).gap
    assert table.loc["modality_gap", "cirscope-toy"] == pytest.approx(gap)
    skew = cs.diagnostics.skew(toy_space, "a red star", "color", k=20).summary()["MaxSkew@20"]
    assert table.loc["max_skew@20", "cirscope-toy"] == pytest.approx(skew)
    assert np.isnan(table.loc["max_skew@20", "projected"])  # no model to encode the query with
    fig = res.figure()
    assert sum(fig.data[0].y) == len(toy_space)
    # a click on a bar gives the images in it
    bar = int(np.argmax(fig.data[0].y))
    rows = res.rows_at(fig, curve=0, point=bar)
    assert len(rows) == fig.data[0].y[bar]
    assert np.all(np.abs(res.overlap[rows] - fig.data[0].x[bar]) < 0.5 / res.k)


def test_compare_view_links_the_two_maps(toy_space):
    rng = np.random.default_rng(0)
    other = cs.Space.from_embeddings(toy_space.gallery, toy_space.image_embeddings @ rng.normal(size=(toy_space.dim, 16)),
                                     model_name="projected")  # fmt: skip
    view = cs.CompareView(toy_space, other, k=6, map_a="pca", map_b="pca", n_changed=12)
    try:
        res = view.result
        assert view.names == ["cirscope-toy", "projected"]
        assert [c["row"] for c in view.changed] == res.most_changed(12)["row"].tolist()
        assert {d["quantity"] for d in view.diagnostics} >= {"k_skewness@6", "near_duplicate_images"}
        view.map_a.selected = [5, 9, 40]  # a drag on the first map selects the same images on the second
        assert view.map_b.selected == [5, 9, 40]
        view.map_b.selected = [1, 2]  # and back
        assert view.map_a.selected == [1, 2]
        row = view.changed[0]["row"]
        view.map_b._handle_click_msg(view.map_b, {"event": "click", "row": row}, [])  # a click on a point picks it
        assert view.focus == row
        assert view.map_a.reference == view.map_b.reference == row
        assert view.map_a.highlighted.tolist() == res.neighbors_a[row].tolist()
        assert view.map_b.highlighted.tolist() == res.neighbors_b[row].tolist()
    finally:
        view.close()
    with pytest.raises(ValueError, match="same gallery"):
        cs.CompareView(toy_space, cs.Space.from_embeddings(toy_space.gallery.subset(np.arange(9)), np.eye(9)))


def test_explorer_has_a_compare_tab(toy_space):
    ex = cs.Explorer(toy_space, map="pca", compare=toy_space)
    try:
        assert isinstance(ex.compare, cs.CompareView)
        assert np.array_equal(ex.compare.map_a.coords, ex.map.coords)  # the Explorer's own map
        ex.tab = "compare"
        assert ex.compare.summary["mean overlap"] == "1"
    finally:
        ex.close()
    plain = cs.Explorer(toy_space, map="pca")
    assert plain.compare is None
    plain.close()

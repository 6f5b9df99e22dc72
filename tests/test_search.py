"""search(): every query kind, reference exclusion, masks, attrs and no re-encoding on slider moves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import cirscope as cs
from cirscope.eval import make_shapes_benchmark
from cirscope.query._composed import ComposedQuery
from cirscope.query._search import exact_neighbors, search


class Encoder:
    name = "enc"
    pretrained = None

    def __init__(self, dim):
        self.dim, self.calls = dim, 0

    def encode_text(self, texts):
        self.calls += len(texts)
        out = []
        for t in texts:
            v = np.random.default_rng(sum(map(ord, t))).normal(size=self.dim)
            out.append(v / np.linalg.norm(v))
        return np.asarray(out, dtype=np.float32)

    def encode_images(self, images):
        return np.asarray([np.eye(self.dim)[0]] * len(images), dtype=np.float32)


@pytest.fixture
def space():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(40, 6))
    meta = pd.DataFrame({"color": (["red", "blue"] * 20), "n": np.arange(40)})
    g = cs.Gallery.from_images([Image.new("RGB", (4, 4))] * 40, metadata=meta, ids=[f"i{k}" for k in range(40)])
    return cs.Space.from_embeddings(g, emb, embedder=Encoder(6))


def test_exact_neighbors_hand_case():
    emb = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [-1.0, 0.0]], dtype=np.float32)
    rows, scores = exact_neighbors(emb, np.array([1.0, 0.0]), 3)
    assert rows.tolist() == [0, 2, 1] and np.allclose(scores, [1.0, 0.6, 0.0])
    rows, _ = exact_neighbors(emb, np.array([1.0, 0.0]), 10, exclude=[0])
    assert rows.tolist() == [2, 1, 3]
    rows, _ = exact_neighbors(emb, np.array([1.0, 0.0]), 10, mask=np.array([False, True, False, True]))
    assert rows.tolist() == [1, 3]


def test_text_query_frame(space):
    df = search(space, "a red thing", k=5)
    assert list(df.columns) == ["rank", "row", "id", "score", "color", "n"]
    assert df["rank"].tolist() == [1, 2, 3, 4, 5]
    assert (np.diff(df["score"]) <= 0).all()
    expected = space.image_embeddings @ space.encode_text(["a red thing"])[0]
    assert df["row"].tolist() == np.argsort(-expected)[:5].tolist()
    assert (df["id"] == [f"i{r}" for r in df["row"]]).all()
    assert (df["n"] == df["row"]).all()  # metadata aligned with rows
    assert df.attrs["query"]["method"] == "text"


def test_gallery_row_excludes_itself_by_default(space):
    assert 3 not in search(space, 3, k=5)["row"].tolist()
    kept = search(space, 3, k=5, exclude_reference=False)
    assert kept["row"].iloc[0] == 3 and kept["score"].iloc[0] == pytest.approx(1.0)


def test_mask(space):
    mask = space.gallery.metadata["color"] == "blue"
    df = search(space, "anything", k=50, mask=mask)
    assert len(df) == 20 and set(df["color"]) == {"blue"}
    with pytest.raises(TypeError, match="boolean"):
        search(space, "x", mask=np.arange(40))
    with pytest.raises(ValueError, match="one value per row"):
        search(space, "x", mask=np.ones(3, dtype=bool))


def test_composed_query_default_pdv_and_no_reencoding(space):
    q = ComposedQuery(0, "make it blue", reference_text="a red thing")
    df = space.search(q, k=5)
    info = df.attrs["query"]
    assert info["method"] == "pdv" and info["params"] == {"alpha_t": 1.0, "alpha_i": 1.0, "beta": 0.75}
    assert info["reference_text_source"] == "explicit" and info["excluded"] == [0]
    calls = space.embedder.calls
    for a, b in [(0.5, 0.2), (1.4, 0.9), (-0.5, 0.5)]:
        out = space.search(q, method="pdv", k=5, alpha_t=a, alpha_i=a, beta=b)
        assert out.attrs["query"]["params"]["beta"] == b
    for method in ("image", "text", "sum", "weimocir", "slerp"):
        space.search(q, method=method, k=3)
    assert space.embedder.calls == calls


def test_pdv_at_ones_ranks_like_the_composed_text(space):
    q = ComposedQuery(5, "make it blue", reference_text="a red thing")
    pdv = space.search(q, k=10, alpha_t=1, alpha_i=1, beta=1)
    text = space.search(q.resolve(space).composed_text, k=11)
    assert pdv["row"].tolist() == [r for r in text["row"] if r != 5][:10]
    np.testing.assert_allclose(pdv["score"], text[text["row"] != 5]["score"].iloc[:10], atol=1e-6)


def test_image_and_vector_queries(space, tmp_path):
    img = search(space, Image.new("RGB", (4, 4)), k=3)
    vec = search(space, np.eye(6)[0], k=3)
    assert img["row"].tolist() == vec["row"].tolist()
    path = tmp_path / "q.png"
    Image.new("RGB", (4, 4)).save(path)
    assert search(space, str(path), k=3)["row"].tolist() == img["row"].tolist()
    assert img.attrs["query"]["method"] == "image"


def test_errors(space):
    with pytest.raises(ValueError, match="ComposedQuery"):
        search(space, "a red thing", method="pdv")
    with pytest.raises(TypeError, match="no method parameters"):
        search(space, "a red thing", beta=0.5)
    with pytest.raises(ValueError, match="positive integer"):
        search(space, "x", k=0)
    with pytest.raises(ValueError, match="empty"):
        search(space, "  ")
    with pytest.raises(IndexError, match="outside"):
        search(space, 99)
    with pytest.raises(ValueError, match="Unknown composing method"):
        search(space, ComposedQuery(0, "x", reference_text="y"), method="magic")
    with pytest.raises(ValueError, match="6 dimensions"):
        search(space, np.ones(3))


@pytest.mark.slow
def test_toy_composed_search_finds_the_edit(toy_space):
    bench = make_shapes_benchmark(toy_space.gallery.metadata, n_queries=30, seed=2)
    hits = 0
    for bq in bench.queries:
        df = toy_space.search(ComposedQuery(bq.reference, bq.text), k=10)
        hits += bool(set(df["id"]) & set(bq.targets))
        assert bq.reference not in set(df["id"])
    assert hits / len(bench) >= 0.8


# ---------------------------------------------------------------------- hits: the array path
def test_search_hits_are_the_frame_as_arrays_with_the_query_vector(space):
    from cirscope.query._search import Hits, search_hits

    q = ComposedQuery(3, "make it blue")
    hits = search_hits(space, q, method="pdv", k=7, alpha_t=1.3)
    assert isinstance(hits, Hits) and len(hits) == 7 and hits.method == "pdv"
    assert hits.rows.dtype == np.int64 and hits.scores.dtype == np.float32
    df = search(space, q, method="pdv", k=7, alpha_t=1.3)
    pd.testing.assert_frame_equal(hits.to_frame(), df)
    assert hits.to_frame().attrs == df.attrs
    expected = q.resolve(space).vector("pdv", alpha_t=1.3)
    np.testing.assert_allclose(hits.vector, expected, atol=1e-6)
    # the scores are the cosines to that vector, and the reference row is left out
    np.testing.assert_allclose(hits.scores, space.image_embeddings[hits.rows] @ expected, atol=1e-5)
    assert 3 not in hits.rows.tolist()


def test_search_returns_its_query_vector_with_the_results(space):
    """The frame carries the vector it was ranked by (one search made both), for every query kind."""
    q = ComposedQuery(3, "make it blue")
    df = search(space, q, method="slerp", k=5, a=0.3)
    vector = np.asarray(df.attrs["vector"], np.float32)
    np.testing.assert_array_equal(vector, q.resolve(space).vector("slerp", a=0.3))  # exact: float32 round trip
    np.testing.assert_allclose(df["score"].to_numpy(), space.image_embeddings[df["row"].to_numpy()] @ vector,
                               atol=1e-5)
    text = search(space, "a red thing", k=3)
    np.testing.assert_array_equal(np.asarray(text.attrs["vector"], np.float32), space.encode_text("a red thing")[0])
    row = search(space, 5, k=3)
    np.testing.assert_array_equal(np.asarray(row.attrs["vector"], np.float32), space.image_embeddings[5])
    # frames with the vector in their attrs still concatenate (an array there would make pandas fail)
    both = pd.concat([df, search(space, q, method="slerp", k=5, a=0.3)])
    assert len(both) == 10 and both.attrs["vector"] == df.attrs["vector"]


def test_one_row_float_array_is_a_vector_and_an_image_array_is_an_image(space):
    """(1, D) float is a query vector (not an image); (H, W, 3) is an image; (m, D) floats are refused."""
    calls = []
    real = space.embedder.encode_images
    space.embedder.encode_images = lambda images: calls.append(len(images)) or real(images)
    v = np.random.default_rng(1).normal(size=6)
    as_row = search(space, v[None, :], k=4)
    as_flat = search(space, v, k=4)
    assert as_row["row"].tolist() == as_flat["row"].tolist() and as_row.attrs["query"]["method"] == "vector"
    assert search(space, np.ones((1, 6)), k=3).attrs["query"]["method"] == "vector"
    assert calls == []  # never embedded as an image
    img = search(space, np.zeros((4, 4, 3), np.uint8), k=3)
    assert calls == [1] and img.attrs["query"]["method"] == "image"
    with pytest.raises(ValueError, match="one query vector"):
        search(space, np.ones((2, 6)), k=3)
    with pytest.raises(ValueError, match="6 dimensions"):
        search(space, np.ones((1, 5)), k=3)
    with pytest.raises(ValueError, match="all zeros"):
        search(space, np.zeros((1, 6)), k=3)


# ---------------------------------------------------------------------- the slider path: nothing redone per move
def test_resolved_query_prepares_each_method_once_and_keeps_read_only_copies(space, monkeypatch):
    from cirscope.query import _composed
    from cirscope.query._methods import METHODS, compose

    resolved = ComposedQuery(3, "make it blue").resolve(space)
    for name in ("v_ref", "t_mod", "t_ref", "t_comp"):
        arr = getattr(resolved, name)
        assert not arr.flags.writeable and not np.shares_memory(arr, space.image_embeddings)
        with pytest.raises(ValueError, match="read-only"):
            arr[0] = 0.0
    prepared = []
    real = _composed.prepare
    monkeypatch.setattr(_composed, "prepare", lambda *a, **k: prepared.append(a[0]) or real(*a, **k))
    rng = np.random.default_rng(4)
    for _ in range(3):
        for method, spec in METHODS.items():
            params = {p.name: float(rng.uniform(p.min, p.max)) for p in spec.params}
            np.testing.assert_array_equal(resolved.vector(method, **params),
                                          compose(method, **resolved.embeddings(), **params))
    assert sorted(prepared) == sorted(METHODS)  # once per method, not once per move


def test_search_hits_equal_the_one_step_path_on_random_settings(space):
    """search_hits (prepared inputs, the index's fast exclusion) returns exactly what composing from
    the raw embeddings and querying the index with the reference excluded returns."""
    from cirscope.query._methods import METHODS, compose
    from cirscope.query._search import search_hits

    rng = np.random.default_rng(7)
    for ref in (0, 17, 39):
        q = ComposedQuery(ref, "make it blue")
        resolved = q.resolve(space)
        for method, spec in METHODS.items():
            params = {p.name: float(rng.uniform(p.min, p.max)) for p in spec.params}
            hits = search_hits(space, q, method, 9, **params)
            vector = compose(method, **resolved.embeddings(), **params)
            rows, scores = space.index.query(vector, 9, exclude=[ref])
            np.testing.assert_array_equal(hits.vector, vector)
            np.testing.assert_array_equal(hits.rows, rows)
            np.testing.assert_array_equal(hits.scores, scores)
            exact_rows, exact_scores = exact_neighbors(space.image_embeddings, vector, 9, exclude=[ref])
            assert hits.rows.tolist() == exact_rows.tolist()
            np.testing.assert_allclose(hits.scores, exact_scores, atol=1e-6)


@pytest.mark.parametrize("backend", ["exact", "faiss-hnsw", "annoy"])
def test_excluding_rows_drops_them_from_the_wider_answer(backend):
    """A query excluding ``m`` rows answers like the same query for ``k + m`` rows with those dropped
    (same breadth, same candidates), whatever form the rows come in; rows outside the index are refused."""
    from cirscope.neighbors._index import NeighborIndex

    rng = np.random.default_rng(11)
    emb = rng.normal(size=(2000, 24)).astype(np.float32)
    index = NeighborIndex(emb, backend=backend, exact_below=0, breadth=64, progress=False)
    for row in (5, 1234):
        q = emb[row] + 0.3 * rng.normal(size=24).astype(np.float32)
        near = index.query(q, 3)[0].tolist()
        for exclude in ([row], [row, near[1], row], np.array([near[0], row]), (np.int64(row),)):
            drop = set(np.asarray(exclude).tolist())
            wide_rows, wide_scores = index.query(q, 10 + len(drop))
            keep = ~np.isin(wide_rows, list(drop))
            rows, scores = index.query(q, 10, exclude=exclude)
            assert rows.tolist() == wide_rows[keep][:10].tolist() and not drop & set(rows.tolist())
            np.testing.assert_allclose(scores, wide_scores[keep][:10], atol=1e-6)  # BLAS may round a row differently
    for bad in ([2000], [-1], [3, 2000]):
        with pytest.raises(IndexError, match="outside"):
            index.query(emb[0], 5, exclude=bad)

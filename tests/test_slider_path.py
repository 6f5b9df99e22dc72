"""One pass per slider move: one composition, one neighbour search, the marker placed from its rows,
no text encoded, no other ranking of the gallery, no DataFrame built."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cirscope as cs
from cirscope.projection._place import place
from cirscope.query import _composed as composed
from cirscope.query._search import Hits, exact_neighbors
from cirscope.widgets import Explorer


class GalleryMatrix(np.ndarray):
    """The space's embeddings, logging every computation over the whole gallery done with them.

    A ranking done beside the index (``embeddings @ vector``, an exact search for the map
    marker) is such a computation; row lookups (the reference's embedding) are not.
    """

    log: list[str]
    muted: list[bool]
    rows: int

    def _note(self, name: str, args) -> None:
        if not self.muted[0] and any(isinstance(x, GalleryMatrix) and x.ndim == 2 and len(x) == self.rows
                                     for x in args):
            self.log.append(name)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        self._note(ufunc.__name__, inputs)
        plain = [x.view(np.ndarray) if isinstance(x, GalleryMatrix) else x for x in inputs]
        if "out" in kwargs:
            kwargs["out"] = tuple(o.view(np.ndarray) if isinstance(o, GalleryMatrix) else o for o in kwargs["out"])
        return getattr(ufunc, method)(*plain, **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        self._note(func.__name__, args)
        plain = [x.view(np.ndarray) if isinstance(x, GalleryMatrix) else x for x in args]
        return func(*plain, **kwargs)


@pytest.fixture
def counted(toy_space, monkeypatch):
    """Log every call of the space's index (``query`` and ``query_batch``, the real methods run), every
    whole-gallery computation or top-k selection over all rows outside it, every composition and every
    text encoding."""
    calls: list[str] = []
    muted = [False]
    matrix = toy_space.image_embeddings.view(GalleryMatrix)
    for attr, value in (("log", calls), ("muted", muted), ("rows", len(matrix))):  # views share them
        monkeypatch.setattr(GalleryMatrix, attr, value, raising=False)
    monkeypatch.setattr(toy_space, "image_embeddings", matrix)
    index = toy_space.index
    for name in ("query", "query_batch"):
        real = getattr(index, name)

        def counting(*args, _real=real, _name=name, **kwargs):
            calls.append(_name)
            muted[0] = True  # the index's own work is the one pass
            try:
                return _real(*args, **kwargs)
            finally:
                muted[0] = False

        monkeypatch.setattr(index, name, counting)
    for name in ("argpartition", "argsort", "partition", "sort"):  # a top-k over every row, however reached
        real_np = getattr(np, name)

        def selecting(a, *args, _real=real_np, _name=name, **kwargs):
            if not muted[0] and np.shape(a) and np.shape(a)[-1] == len(matrix):
                calls.append(_name)
            return _real(a, *args, **kwargs)

        monkeypatch.setattr(np, name, selecting)
    real_compose, real_encode = composed.compose, toy_space.encode_text
    monkeypatch.setattr(composed, "compose", lambda *a, **k: calls.append("compose") or real_compose(*a, **k))
    monkeypatch.setattr(toy_space, "encode_text", lambda texts: calls.append("encode_text") or real_encode(texts))
    return calls


def test_the_counter_sees_a_ranking_beside_the_index(toy_space, counted):
    """The fixture is not fooled: an exact search over the gallery, or a second composition, shows up."""
    vector = cs.ComposedQuery(7, "make it blue").vector(toy_space, "pdv")
    assert counted == ["encode_text", "compose"]
    counted.clear()
    exact_neighbors(toy_space.image_embeddings, vector, 5)
    assert counted == ["matmul", "argpartition"]
    counted.clear()
    place(vector, toy_space.image_embeddings, np.zeros((len(toy_space), 2)), k=5)
    assert counted == ["argpartition"]  # it ranks a plain copy (np.asarray): the top-k selection shows
    counted.clear()
    toy_space.search(7, k=5)
    toy_space.image_embeddings[7] @ vector  # one row: not a ranking
    assert counted == ["query"]


def test_a_slider_move_searches_the_index_exactly_once(toy_space, counted):
    ex = Explorer(toy_space, map="pca", reference=7, text="make it blue", k=10)
    for alpha in (1.1, 1.3, 1.7):
        counted.clear()
        ex.query.alpha_t = alpha  # what a slider move sends
        assert counted == ["compose", "query"], f"a slider move did {counted}"
    counted.clear()
    ex.query.beta = 0.5
    assert counted == ["compose", "query"]
    ex.close()


def test_the_move_keeps_arrays_and_builds_the_frame_only_when_asked(toy_space, counted):
    ex = Explorer(toy_space, map="pca", reference=7, text="make it blue", k=10)
    ex.query.alpha_t = 1.6
    binding = ex.query.binding
    hits = binding.hits
    assert isinstance(hits, Hits)
    # nothing built a DataFrame yet: the panel and the grid hold the arrays / a builder
    assert not isinstance(ex.query._result, pd.DataFrame) and callable(ex.grid.frame)
    query = cs.ComposedQuery(7, "make it blue")
    expected = toy_space.search(query, method="pdv", k=10, alpha_t=1.6, alpha_i=1.0, beta=0.75)
    pd.testing.assert_frame_equal(ex.query.result, expected)
    pd.testing.assert_frame_equal(ex.grid.to_dataframe(), expected)
    assert ex.query.results == expected["row"].tolist()
    np.testing.assert_allclose(binding.vector, query.resolve(toy_space).vector("pdv", alpha_t=1.6), atol=1e-6)
    # the marker: placed from the search's own rows and scores
    coords = ex.map.binding.coords
    placed = place(coords=coords, rows=hits.rows, scores=hits.scores, k=10)[0]
    assert ex.map.query_point == pytest.approx(placed.tolist(), abs=1e-6)
    ex.close()


def test_a_failed_search_clears_the_hits(toy_space):
    ex = Explorer(toy_space, map="pca", reference=7, text="make it blue", k=10)
    assert ex.query.binding.hits is not None
    ex.query.method = "slerp"
    ex.query.a = 0.5
    ex.query.reference = -1
    ex.query.text = ""
    assert ex.query.binding.hits is None and ex.query.result is None and ex.map.query_point == []
    ex.close()

"""One pass per slider move: one neighbour search, the marker placed from its rows, no DataFrame built."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cirscope as cs
from cirscope.projection._place import place
from cirscope.query._search import Hits
from cirscope.widgets import Explorer


@pytest.fixture
def counted(toy_space, monkeypatch):
    """Count every call of the space's index (``query`` and ``query_batch``), calling the real methods."""
    index = toy_space.index
    calls: list[str] = []
    for name in ("query", "query_batch"):
        real = getattr(index, name)

        def counting(*args, _real=real, _name=name, **kwargs):
            calls.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(index, name, counting)
    return calls


def test_a_slider_move_searches_the_index_exactly_once(toy_space, counted):
    ex = Explorer(toy_space, map="pca", reference=7, text="make it blue", k=10)
    for alpha in (1.1, 1.3, 1.7):
        counted.clear()
        ex.query.alpha_t = alpha  # what a slider move sends
        assert counted == ["query"], f"a slider move made {len(counted)} index calls: {counted}"
    counted.clear()
    ex.query.beta = 0.5
    assert counted == ["query"]
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

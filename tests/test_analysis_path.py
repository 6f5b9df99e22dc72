"""The query's path across the map: hand-built cases with known answers, and the toy world."""

from __future__ import annotations

import asyncio
import concurrent.futures

import numpy as np
import pytest

import cirscope as cs
from cirscope.analysis._path import default_values, path_params, query_path
from cirscope.projection._place import place
from cirscope.query._composed import ResolvedQuery
from cirscope.query._search import search_hits

ANGLES = np.arange(0, 91, 10)  # ten gallery images at 0, 10, ..., 90 degrees


@pytest.fixture(scope="module")
def arc_space():
    """Unit vectors on a quarter circle; each one's map position is (its index, its index squared)."""
    rad = np.deg2rad(ANGLES)
    emb = np.stack([np.cos(rad), np.sin(rad)], axis=1)
    return cs.Space.from_embeddings(cs.datasets.shapes(len(ANGLES), seed=0), emb)


def _arc_query() -> ResolvedQuery:
    e0, e1 = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    return ResolvedQuery(text="turn", reference="hand-made", reference_row=None, reference_text="east",
                         reference_text_source="explicit", composed_text="north", composed_text_source="explicit",
                         v_ref=e0, t_mod=e1, t_ref=e0, t_comp=e1)  # fmt: skip


def test_path_on_a_quarter_circle_lands_on_the_known_images(arc_space):
    coords = np.stack([np.arange(10.0), np.arange(10.0) ** 2], axis=1)
    values = np.array([0.0, 0.1, 0.3, 0.6, 0.8, 0.97, 1.0])
    path = query_path(arc_space, _arc_query(), "a", values, method="weimocir", k=1, map=coords)
    # WeiMoCIR: q = norm((1 - a) e0 + a e1) points at atan2(a, 1 - a); the nearest image is the closest 10 degrees
    expected = np.rint(np.degrees(np.arctan2(values, 1 - values)) / 10).astype(int)
    assert path.rows[:, 0].tolist() == expected.tolist()
    # one neighbour: the query sits exactly on that image's map position
    np.testing.assert_allclose(path.positions, coords[expected], atol=1e-6)
    frame = path.to_frame()
    assert frame["a"].tolist() == values.tolist()
    assert frame["rows"].tolist() == [[int(r)] for r in expected]
    assert frame["x"].tolist() == coords[expected, 0].tolist()
    assert path.summary()["steps"] == len(values)


def test_path_between_two_images_is_the_softmax_mean(arc_space):
    coords = np.stack([np.arange(10.0), np.zeros(10)], axis=1)
    # a = 0.5: the query points at 45 degrees, equally near 40 and 50: placed half way between them
    path = query_path(arc_space, _arc_query(), "alpha", [0.5], method="slerp", k=2, map=coords)
    assert sorted(path.rows[0].tolist()) == [4, 5]
    np.testing.assert_allclose(path.positions[0], [4.5, 0.0], atol=1e-3)


def test_pdv_path_matches_search_at_every_step(toy_space):
    query = cs.ComposedQuery(0, "make it blue")
    values = np.linspace(0, 2, 9)
    path = query_path(toy_space, query, "alpha", values, k=12, beta=0.6)
    coords = toy_space.map("pca")
    for step, value in enumerate(values):
        hits = search_hits(toy_space, query, "pdv", 12, alpha_t=value, alpha_i=value, beta=0.6)
        assert path.rows_for(step).tolist() == hits.rows.tolist()
        np.testing.assert_allclose(path.vectors[step], hits.vector, atol=1e-6)
        # the same place as the Explorer's query marker (from the search's own rows and scores)
        marker = place(coords=coords, rows=hits.rows, scores=hits.scores, k=10)[0]
        np.testing.assert_allclose(path.positions[step], marker, atol=1e-4)
    assert 0 not in path.rows  # the reference is left out, as in search
    assert path.params == {"beta": 0.6}


def test_path_is_one_batched_search(toy_space, monkeypatch):
    index = toy_space.index
    calls = []
    real = index.query_batch
    monkeypatch.setattr(index, "query_batch", lambda v, k, **kw: calls.append(len(v)) or real(v, k, **kw))
    monkeypatch.setattr(index, "query", lambda *a, **kw: pytest.fail("a per-step search"))
    path = query_path(toy_space, cs.ComposedQuery(3, "make it red"), "beta", k=5)
    assert calls == [len(path)] == [21]
    assert path.values[0] == 0.0 and path.values[-1] == 1.0


def test_default_values_and_parameter_names():
    assert default_values("pdv", "alpha").tolist() == np.linspace(0, 2, 21).tolist()
    assert default_values("weimocir", "alpha", 3).tolist() == [0.0, 0.5, 1.0]
    assert path_params("pdv", "alpha_i") == ("alpha_i",)
    with pytest.raises(ValueError, match=r"no parameter 'gamma'.*move one of"):
        path_params("pdv", "gamma")
    with pytest.raises(ValueError, match="has no parameter to move"):
        path_params("sum", "alpha")


def test_bad_input_gets_clear_errors(toy_space):
    q = cs.ComposedQuery(0, "make it blue")
    with pytest.raises(TypeError, match="takes a composed query"):
        query_path(toy_space, "a red star")
    with pytest.raises(ValueError, match="values is empty"):
        query_path(toy_space, q, values=[])
    with pytest.raises(ValueError, match="NaN"):
        query_path(toy_space, q, values=[0.0, np.nan])
    with pytest.raises(TypeError, match="moved by param='alpha'"):
        query_path(toy_space, q, alpha_t=1.0)
    with pytest.raises(ValueError, match=r"shape \(300, 2\)"):
        query_path(toy_space, q, map=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="positive integer"):
        query_path(toy_space, q, k=0)


def test_figure_draws_the_path_and_keeps_user_text_literal(toy_space):
    path = query_path(toy_space, cs.ComposedQuery(0, "<b>make</b> it blue"), values=[0, 1, 2], k=4)
    fig = path.figure()
    names = [t.name for t in fig.data]
    assert names == ["gallery", "top result", "query", "reference"]
    query_trace = fig.data[2]
    assert list(query_trace.x) == path.positions[:, 0].tolist()
    assert "<b>" not in fig.layout.title.text and "&lt;b&gt;" in fig.layout.title.text
    assert path.rows_at(fig, curve=2, point=1).tolist() == path.rows_for(1).tolist()


def test_explorer_sends_the_path_once_per_query_and_play_sets_alpha(toy_space):
    ex = cs.Explorer(toy_space, map="pca", k=8)
    try:
        assert ex.map.path is None  # no composed query yet
        ex.query.reference = 0
        assert ex.map.path is None  # an image query has no parameter to sweep
        ex.query.text = "make it blue"
        path = ex.controller.path
        assert ex.map.path.shape == (21, 2) and ex.map.path_rows.shape == (21, 8)
        assert ex.map.path_values.tolist() == pytest.approx(np.linspace(0, 2, 21).tolist())
        expected = query_path(toy_space, cs.ComposedQuery(0, "make it blue"), k=8, map=ex.controller.coords,
                              beta=0.75)  # fmt: skip
        assert np.array_equal(path.rows, expected.rows)
        ex.query.alpha_t = 1.3  # an alpha move keeps the path: not computed again
        assert ex.controller.path is path
        ex.query.beta = 0.5  # a fixed parameter's slider: the move stays one search, the old path goes
        assert ex.controller.path is None and ex.map.path is None
        ex.controller.refresh_path()  # what the event loop runs once the slider rests
        assert ex.controller.path.params == {"beta": 0.5} and ex.map.path.shape == (21, 2)
        # what the browser sends when Play reaches the end
        ex.map._handle_path_msg(ex.map, {"event": "path_end", "step": 20, "value": 2.0}, [])
        assert (ex.query.alpha_t, ex.query.alpha_i) == (2.0, 2.0)
        hits = toy_space.search(cs.ComposedQuery(0, "make it blue"), k=8, alpha_t=2.0, alpha_i=2.0, beta=0.5)
        assert ex.grid.rows == hits["row"].tolist() == ex.controller.path.rows_for(20).tolist()
        assert ex.map.highlighted.tolist() == hits["row"].tolist()
        ex.map._handle_path_msg(ex.map, {"event": "path_end", "step": 99}, [])  # out of range: ignored
        ex.query.method = "sum"
        assert ex.map.path is None and ex.controller.path is None
    finally:
        ex.close()


def test_after_a_beta_move_the_path_follows_once_the_slider_rests(toy_space):
    from cirscope.widgets import _controller

    async def moves() -> tuple:
        ex = cs.Explorer(toy_space, map="pca", reference=5, text="make it red", k=6)
        first = ex.controller.path
        for beta in (0.6, 0.55, 0.5):  # quick moves: the path waits
            ex.query.beta = beta
            await asyncio.sleep(_controller.PATH_DELAY_S / 5)
        waiting = ex.controller.path
        await asyncio.sleep(2 * _controller.PATH_DELAY_S)
        after = ex.controller.path
        ex.close()
        return first, waiting, after

    # a loop of its own, in a thread of its own: an earlier test may leave this thread's loop running
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        first, waiting, after = pool.submit(asyncio.run, moves()).result(timeout=60)
    assert first.params == {"beta": 0.75} and waiting is None and after.params == {"beta": 0.5}


@pytest.mark.skipif(__import__("shutil").which("node") is None, reason="node is not installed")
def test_play_helpers_in_node(tmp_path):
    """Which step Play shows when, and each step's rows without padding (js/_shared/path.js, in map_view.js)."""
    from tests.test_map_view_js import run_node

    out = run_node(tmp_path, """
out.steps = [0, 99, 100, 250, 1999, 2000, 5000].map((t) => m.playStepAt(t, 21, 100));
out.empty = m.playStepAt(10, 0, 100);
const rows = { data: Int32Array.from([4, 7, -1, 9, 2, 3]), shape: [2, 3] };
out.rows = [0, 1, 2, -1].map((s) => Array.from(m.pathRowsAt(rows, s)));
out.none = Array.from(m.pathRowsAt(null, 0));
""")
    assert [s["step"] for s in out["steps"]] == [0, 0, 1, 2, 19, 20, 20]
    assert [s["done"] for s in out["steps"]] == [False, False, False, False, False, True, True]
    assert out["empty"] == {"step": -1, "done": True}
    assert out["rows"] == [[4, 7], [9, 2, 3], [], []] and out["none"] == []

"""Relevance feedback: hand-built geometry where the answer is known, and the simulation checked against the API."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import cirscope as cs
from cirscope.analysis._feedback import refine_direction, rocchio
from cirscope.query._composed import ComposedQuery, ResolvedQuery


def unit(*x: float) -> np.ndarray:
    v = np.asarray(x, dtype=np.float64)
    return v / np.linalg.norm(v)


def synthetic_space(vectors: np.ndarray) -> cs.Space:
    n = len(vectors)
    meta = pd.DataFrame({"id": [f"item-{i}" for i in range(n)], "kind": ["x"] * n})
    gallery = cs.Gallery.from_images([Image.new("RGB", (4, 4), (i, 0, 0)) for i in range(n)], metadata=meta)
    return cs.Space.from_embeddings(gallery, np.asarray(vectors, np.float32), model_name="synthetic")


def resolved(v_ref, t_ref, t_comp, row=0) -> ResolvedQuery:
    return ResolvedQuery(text="edit", reference="ref", reference_row=row, reference_text="r", reference_text_source="explicit",
                         composed_text="c", composed_text_source="explicit", v_ref=np.asarray(v_ref, np.float32),
                         t_mod=np.asarray(t_comp, np.float32), t_ref=np.asarray(t_ref, np.float32),
                         t_comp=np.asarray(t_comp, np.float32))


# rows: 0 reference e0; 1 and 2 close to it; 3 the wanted one (e2 side), 4 far
GALLERY = np.stack([unit(1, 0, 0), unit(0.9, 0.43, 0), unit(0.85, 0, -0.52), unit(0.75, 0, 0.66), unit(0, 1, 0)])


def test_one_rocchio_step_moves_the_marked_row_from_rank_3_to_rank_1():
    space = synthetic_space(GALLERY)
    q = resolved(GALLERY[0], GALLERY[0], GALLERY[0])  # image only: q = e0
    res = cs.analysis.feedback(space, q, relevant=[3], irrelevant=[1], base="image", k=4)
    assert res.rows_before.tolist() == [1, 2, 3, 4]
    expected = unit(*(GALLERY[0] + 0.75 * GALLERY[3] - 0.15 * GALLERY[1]))  # Rocchio by hand
    np.testing.assert_allclose(res.vector, expected, atol=1e-6)
    assert res.rows[0] == 3
    marks = res.to_frame().set_index("row")
    assert marks.loc[3, "rank_before"] == 3 and marks.loc[3, "rank_after"] == 1 and marks.loc[3, "change"] == 2
    assert marks.loc[1, "mark"] == "not relevant"
    assert res.rank_changes()[3] == "3 -> 1"
    assert res.summary()["top1_marked_relevant"] is True
    fig = res.figure()
    assert res.rows_at(fig, curve=0, point=0).size == 1


def test_pdv_feedback_refines_the_direction_towards_the_relevant_image():
    space = synthetic_space(GALLERY)
    t_ref, t_comp = unit(0, 0, 0.2), unit(0, 1, 0.2)  # the words ask to move along e1
    q = resolved(GALLERY[0], t_ref, t_comp)
    res = cs.analysis.feedback(space, q, relevant=[3], method="pdv", a=1, b=1, c=0, k=4)
    d = t_comp - t_ref
    d_new = (d + (GALLERY[3] - GALLERY[0])) / 2  # mean of the asked and the observed offset
    np.testing.assert_allclose(res.direction_before, d, atol=1e-6)
    np.testing.assert_allclose(res.direction, d_new, atol=1e-6)
    by_hand = unit(*(0.25 * (GALLERY[0] + d_new) + 0.75 * (t_ref + d_new)))
    np.testing.assert_allclose(res.vector, by_hand, atol=1e-6)
    assert res.rows_before[0] == 4 and res.rows[0] == 3


def test_a_wrong_result_along_the_asked_edit_does_not_change_the_direction():
    """The negative term is orthogonal to d: an image that only made the asked-for edit cannot cancel it."""
    e0, e1 = unit(1, 0, 0), unit(0, 1, 0)
    d = e1 - e0
    out = refine_direction(e0, d, np.zeros(3), 0, e1, 1, a=1, b=0.75, c=0.5)  # not relevant: e1 = e0 + d
    np.testing.assert_allclose(out, d)
    # and the Rocchio formula itself, with only a negative mark
    np.testing.assert_allclose(rocchio(e0, np.zeros(3), 0, e1, 1, a=1, b=0, c=0.5), unit(1, -0.5, 0))


def test_a_second_round_continues_from_the_first():
    space = synthetic_space(GALLERY)
    q = resolved(GALLERY[0], GALLERY[0], GALLERY[0])
    one = cs.analysis.feedback(space, q, irrelevant=[1], base="image", k=3)
    two = cs.analysis.feedback(space, one, irrelevant=[1, 2], k=3)
    assert two.round == 2
    np.testing.assert_allclose(two.vector_before, one.vector)
    mean_non = (GALLERY[1] + GALLERY[2]) / 2
    np.testing.assert_allclose(two.vector, unit(*(one.vector + -0.15 * mean_non)), atol=1e-6)
    with pytest.raises(ValueError, match="same method"):
        cs.analysis.feedback(space, one, relevant=[3], method="pdv")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({}, ValueError, "at least one"),
        ({"relevant": [3], "irrelevant": [3]}, ValueError, "both relevant"),
        ({"relevant": [9]}, ValueError, "outside the gallery"),
        ({"relevant": ["x"]}, TypeError, "integers"),
        ({"relevant": [3], "method": "magic"}, ValueError, "rocchio"),
        ({"relevant": [3], "b": -1}, ValueError, "b must be"),
        ({"relevant": [3], "alpha": 2}, TypeError, "Unknown parameters"),
        ({"relevant": [3], "k": 0}, ValueError, "k must"),
    ],
)
def test_bad_input_gets_a_clear_error(kwargs, error, match):
    space = synthetic_space(GALLERY)
    with pytest.raises(error, match=match):
        cs.analysis.feedback(space, resolved(GALLERY[0], GALLERY[0], GALLERY[0]), **kwargs)
    with pytest.raises(TypeError, match="composed query"):
        cs.analysis.feedback(space, "a text", relevant=[1])


def test_the_simulation_matches_the_api_and_its_own_tables(toy_space):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = cs.analysis.feedback_rounds(toy_space, n_queries=200, rounds=3, seed=1)
    curve = res.to_frame()
    assert set(curve["variant"]) == {"rocchio", "pdv"} and curve.groupby("variant")["round"].max().eq(3).all()
    assert (curve[curve["round"] == 0]["R@1"] == 0).all()
    assert res.wrong.size > 0 and res.start_r1 < 1
    for variant, hist in res._top1.items():
        assert np.allclose(curve[curve["variant"] == variant]["R@1"].to_numpy()[1:], hist[:, 1:].mean(axis=0))
        assert res.distribution()[variant].sum() == res.wrong.size
    # round 1 of the batched simulation == one call of the API with the same marks
    bench = cs.eval.make_shapes_benchmark(toy_space.gallery.metadata, 200, seed=1, phrasings="held-out")
    prepared = cs.eval.prepare(toy_space, bench, reference_text="zero-shot", progress=False)
    i = int(res.wrong_queries[0])
    query = ComposedQuery(int(prepared.reference_rows[i]), prepared.benchmark.queries[i].text,
                          reference_text=prepared.reference_texts[i])
    start = cs.analysis.feedback(toy_space, query, irrelevant=[0], k=10).rows_before
    assert start[0] == res.first["rocchio"][0, 0]
    good = np.isin(start, prepared.targets[i])
    for variant in ("rocchio", "pdv"):
        one = cs.analysis.feedback(toy_space, query, relevant=start[good], irrelevant=start[~good], method=variant, k=10)
        assert one.rows[0] == res.first[variant][0, 1]
    assert res.rows_for(variant="rocchio", round=0).size == res.wrong.size
    fig = res.figure()
    assert len(fig.data) == 2


def test_the_explorer_grid_refines_round_after_round_and_a_new_query_clears_the_marks(toy_space):
    ex = cs.Explorer(toy_space, map="pca", reference=3, text="make it blue")
    grid, link = ex.grid, ex.controller.feedback
    try:
        assert grid.feedback is True
        grid._handle_refine_msg(grid, {"event": "refine"}, [])  # Refine without marks: a hint, nothing searched
        assert "Mark results first" in grid.feedback_status and link.last is None
        shown = list(grid.rows)
        grid.marks = {str(shown[4]): "relevant", str(shown[0]): "not relevant"}
        grid._handle_refine_msg(grid, {"event": "refine"}, [])  # what the browser's button sends
        first = link.last
        assert first.round == 1 and grid.rows == first.rows.tolist()
        assert grid.title.startswith("Refined · Rocchio · round 1")
        assert grid.notes[grid.rows.index(shown[4])] == f"5 -> {grid.rows.index(shown[4]) + 1}"
        assert ex.map.highlighted.tolist() == first.rows.tolist()
        link.refine()
        assert link.last.round == 2
        np.testing.assert_allclose(link.last.vector_before, first.vector)
        grid.feedback_method = "pdv"  # another variant starts again from the query
        assert link.refine().round == 1 and link.last.direction is not None
        ex.query.text = "make it red"
        assert grid.marks == {} and link.last is None and grid.notes == []
        ex.query.text = ""  # an image query: nothing to refine
        grid.marks = {str(grid.rows[0]): "relevant"}
        assert link.refine() is None and "composed query" in grid.feedback_status
    finally:
        ex.close()

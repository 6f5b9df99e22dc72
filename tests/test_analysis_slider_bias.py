"""Bias along the slider: a hand-built gallery whose top K flips label at a known alpha."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import cirscope as cs
from cirscope.diagnostics._skew import desired_shares, label_skew
from cirscope.diagnostics._sweep import DEFAULT_ALPHAS, direction_sweep
from cirscope.query._composed import ResolvedQuery


def angle(deg: float) -> np.ndarray:
    r = np.deg2rad(deg)
    return np.array([np.cos(r), np.sin(r), 0.0])


def flip_space() -> tuple[cs.Space, ResolvedQuery]:
    # five "A" items near e0 (5-15 degrees), five "B" items near e1 (75-85), the reference at -60
    vecs = [angle(-60)] + [angle(a) for a in (5, 7, 10, 12, 15)] + [angle(a) for a in (75, 78, 80, 83, 85)]
    labels = ["A"] + ["A"] * 5 + ["B"] * 5
    meta = pd.DataFrame({"id": [f"i{i}" for i in range(11)], "group": labels})
    gallery = cs.Gallery.from_images([Image.new("RGB", (4, 4)) for _ in range(11)], metadata=meta)
    space = cs.Space.from_embeddings(gallery, np.stack(vecs).astype(np.float32), model_name="synthetic")
    e0, e1 = angle(0), angle(90)
    # beta = 1 (text side): q(alpha) = norm(e0 + alpha (e1 - e0)), at 45 degrees when alpha = 0.5
    q = ResolvedQuery(text="edit", reference="ref", reference_row=0, reference_text="a", reference_text_source="explicit",
                      composed_text="b", composed_text_source="explicit", v_ref=angle(-60), t_mod=e1, t_ref=e0, t_comp=e1)
    return space, q


def test_the_skewed_label_flips_where_the_query_crosses_45_degrees():
    space, q = flip_space()
    alphas = [0.0, 0.25, 0.45, 0.55, 0.75, 1.0]
    res = cs.analysis.slider_bias(space, q, "group", alphas, k=5, beta=1.0)
    f = res.to_frame()
    assert f["max_label"].tolist() == ["A", "A", "A", "B", "B", "B"]
    # every top 5 is one label against the uniform 1/2: MaxSkew = ln(1 / 0.5), every prefix KL = ln 2
    np.testing.assert_allclose(f["max_skew"], np.log(2))
    np.testing.assert_allclose(f["ndkl"], np.log(2))
    np.testing.assert_allclose(f["min_skew"], np.log(0.2 / 0.5))  # the absent label: p = 1/K
    assert res.rows_for(0.52).tolist() == [6, 7, 8, 9, 10]  # nearest visited alpha: 0.55, 75 degrees first
    assert res.at(0.3)["alpha"] == 0.25 and res.at(0.3)["max_label"] == "A"
    fig = res.figure(current_alpha=0.45)
    assert fig.layout.shapes[0].x0 == 0.45
    assert set(res.rows_at(fig, curve=0, point=5).tolist()) == {6, 7, 8, 9, 10}


def test_the_curve_agrees_with_the_direction_sweep(toy_space):
    q = cs.ComposedQuery(3, "make it blue")
    res = cs.analysis.slider_bias(toy_space, q, "color", DEFAULT_ALPHAS, k=30)
    sweep = direction_sweep(toy_space, q, "color", DEFAULT_ALPHAS, k=30)
    np.testing.assert_allclose(res.to_frame()["ndkl"].to_numpy(), sweep.ndkl.to_numpy())
    labels = toy_space.gallery.metadata["color"].astype(str).to_numpy()
    target = desired_shares(labels, "uniform")
    frame = res.to_frame()
    for i, alpha in enumerate(res.alphas):
        assert res.rankings[i].tolist() == sweep.rankings[float(alpha)].tolist()
        table = label_skew(labels[res.rankings[i]].tolist(), target, 30)  # the diagnostics' own formula
        assert frame["max_skew"][i] == pytest.approx(table["skew"].max())
        assert frame["min_skew"][i] == pytest.approx(table["skew"].min())
        assert frame["max_label"][i] == table.loc[table["skew"].idxmax(), "label"]
    gallery_mix = cs.analysis.slider_bias(toy_space, q, "color", DEFAULT_ALPHAS, k=30, desired="gallery").to_frame()
    table = label_skew(labels[res.rankings[0]].tolist(), desired_shares(labels, "gallery"), 30)
    assert gallery_mix["max_skew"][0] == pytest.approx(table["skew"].max())


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"alphas": [1.0]}, ValueError, "two finite"),
        ({"k": 11}, ValueError, "rankable"),
        ({"scale": "gamma"}, ValueError, "scale"),
        ({"alpha_t": 1.0}, TypeError, "swept"),
        ({"gamma": 1.0}, TypeError, "Unknown PDV"),
        ({"attribute": "nope"}, (KeyError, ValueError), "nope"),
    ],
)
def test_bad_input_gets_a_clear_error(kwargs, error, match):
    space, q = flip_space()
    args = {"attribute": "group", **kwargs}
    with pytest.raises(error, match=match):
        cs.analysis.slider_bias(space, q, **args)


def test_the_view_computes_the_curve_once_per_query_and_moves_the_marker_on_slider_moves(toy_space):
    from cirscope.widgets import QueryPanel
    from cirscope.widgets._slider_bias import AnalysisView

    panel = QueryPanel(toy_space, reference=3, text="make it blue")
    view = AnalysisView(toy_space, panel, attribute="color", k=30)
    binding = view.binding
    assert view.curve_version == 1 and view.attribute == "color" and "color" in view.attributes
    expected = cs.analysis.slider_bias(toy_space, cs.ComposedQuery(3, "make it blue"), "color", k=30)
    np.testing.assert_allclose(view.max_skew, expected.to_frame()["max_skew"].to_numpy(np.float32))
    for alpha in (1.5, 0.25, -0.5):
        panel.alpha_t = alpha
        assert view.current_alpha == alpha and view.curve_version == 1
    assert "ties alpha_i to alpha_t" in view.status
    panel.beta = 0.5  # the curve depends on beta: computed again
    assert view.curve_version == 2 and binding.curve.params["beta"] == 0.5
    view.attribute = "shape"
    assert view.curve_version == 3 and "shape" == binding.curve.attribute
    view.paraphrase_input = "paint it blue\n\nrecolor it blue"
    view.paraphrase_request += 1  # the Compute button
    assert [r["method"] for r in view.paraphrase_rows] == ["image", "text", "sum", "weimocir", "slerp", "pdv"]
    assert view.paraphrase_texts == ["make it blue", "paint it blue", "recolor it blue"]
    assert view.paraphrase_done == view.paraphrase_total == 3
    panel.text = ""  # no composed query: no curve, and a sentence saying why
    assert len(view.alphas) == 0 and "modification" in view.status
    view.paraphrase_request += 1
    assert "need" in view.paraphrase_status
    binding.close()

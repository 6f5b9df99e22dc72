"""The shapes world: determinism, attributes, and bias knobs that really skew it."""

from __future__ import annotations

import numpy as np
import pytest

import cirscope as cs
from cirscope.datasets import ATTRIBUTES, Bias


def _pixels(g):
    return np.stack([np.asarray(g.load_image(i)) for i in range(len(g))])


def test_deterministic_given_seed():
    a, b, c = cs.datasets.shapes(30, seed=7), cs.datasets.shapes(30, seed=7), cs.datasets.shapes(30, seed=8)
    assert a.metadata.equals(b.metadata)
    np.testing.assert_array_equal(_pixels(a), _pixels(b))
    assert not np.array_equal(_pixels(a), _pixels(c))


def test_columns_values_and_captions():
    g = cs.datasets.shapes(400, seed=0)
    meta = g.metadata
    for attr, values in ATTRIBUTES.items():
        assert set(meta[attr]) == set(values), attr
    assert len(ATTRIBUTES["shape"]) >= 6 and len(ATTRIBUTES["color"]) >= 8 and len(ATTRIBUTES["background"]) >= 4
    assert set(meta["source"]) == {"render"}
    row = meta.iloc[0]
    assert row["caption"] == f"a {row['size']} {row['color']} {row['shape']} on a {row['background']} background"
    assert g.load_image(0).size == (64, 64)


def test_pixels_show_the_declared_colour_and_background():
    g = cs.datasets.shapes(60, seed=1)
    meta = g.metadata
    for i in range(60):
        px = np.asarray(g.load_image(i)).reshape(-1, 3).astype(int)
        bg = np.array(cs.datasets.BACKGROUNDS[meta["background"][i]])
        fg = np.array(cs.datasets.COLORS[meta["color"][i]])
        assert (np.abs(px - bg).sum(1) < 10).mean() > 0.4  # most pixels are background
        assert (np.abs(px - fg).sum(1) < 10).sum() > 20  # the shape is there in its colour


def test_balanced_by_default_and_bias_knob_skews_joint_distribution():
    n = 4000
    balanced = cs.datasets.shapes(n, seed=0).metadata
    stars = balanced[balanced["shape"] == "star"]
    assert abs((stars["color"] == "yellow").mean() - 1 / 8) < 0.06
    biased = cs.datasets.shapes(n, seed=0, biases=[Bias({"shape": "star"}, {"color": "yellow"}, 0.8)]).metadata
    bstars = biased[biased["shape"] == "star"]
    assert abs((bstars["color"] == "yellow").mean() - 0.8) < 0.05
    others = biased[biased["shape"] != "star"]
    assert abs((others["color"] == "yellow").mean() - 1 / 8) < 0.03  # other shapes untouched


def test_weights_and_sources_knobs():
    meta = cs.datasets.shapes(3000, seed=0, weights={"color": {"purple": 0.2}}).metadata
    assert (meta["color"] == "purple").mean() < 0.05  # 0.2 / 7.2 expected
    mixed = cs.datasets.shapes(2000, seed=0, sources={"render": 1, "photo": 1}).metadata
    assert abs((mixed["source"] == "photo").mean() - 0.5) < 0.05
    tied = cs.datasets.shapes(
        2000, seed=0, sources={"render": 1, "photo": 1}, biases=[Bias({"source": "photo"}, {"background": "white"}, 0.9)]
    ).metadata
    photo = tied[tied["source"] == "photo"]
    assert (photo["background"] == "white").mean() > 0.85


def test_photo_renderer_differs_from_render():
    r = cs.datasets.shapes(20, seed=0, sources={"render": 1}).load_image(0)
    p = cs.datasets.shapes(20, seed=0, sources={"photo": 1}).load_image(0)
    assert np.asarray(p).std() != np.asarray(r).std()


def test_bad_knobs_are_clear_errors():
    with pytest.raises(ValueError, match="Unknown color 'teal'"):
        Bias({"shape": "star"}, {"color": "teal"})
    with pytest.raises(ValueError, match="Unknown attribute 'mood'"):
        Bias({"mood": "happy"}, {"color": "red"})
    with pytest.raises(ValueError, match=r"within \[0, 1\]"):
        Bias({"shape": "star"}, {"color": "red"}, p=1.5)
    with pytest.raises(ValueError, match="n >= 1"):
        cs.datasets.shapes(0)

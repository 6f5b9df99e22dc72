"""Paraphrase robustness: identical wordings are perfectly stable; Jaccard and rewrites by hand."""

from __future__ import annotations

import numpy as np
import pytest

import cirscope as cs
from cirscope.analysis._paraphrase import _jaccard, guess_edit


def test_jaccard_by_hand():
    top = np.array([[1, 2, 3], [1, 2, 4], [5, 6, -1]])
    j = _jaccard(top)
    assert j[0, 1] == pytest.approx(2 / 4) and j[0, 2] == 0 and j[1, 1] == 1
    assert j[2, 2] == 1  # the pad is not a row


def test_identical_wordings_give_jaccard_1_and_no_spread(toy_space):
    res = cs.analysis.paraphrases(toy_space, 5, ["make it blue"] * 3, k=10, targets=[0])
    f = res.to_frame()
    assert (f["jaccard"] == 1).all() and (f["rank_std"] == 0).all() and (f["rank_iqr"] == 0).all()
    assert (f["target_rank_iqr"] == 0).all()
    assert res.rows_for("pdv").size == 10


def test_rewordings_separate_a_text_blind_method_from_the_others(toy_space):
    meta = toy_space.gallery.metadata
    blue = meta["color"] == "blue"
    for ref in np.flatnonzero(~blue):  # a reference with a blue twin (same shape and background)
        targets = np.flatnonzero(blue & (meta["shape"] == meta["shape"].iloc[ref])
                                 & (meta["background"] == meta["background"].iloc[ref]))
        if targets.size:
            break
    ref = int(ref)
    seen = []
    res = cs.analysis.paraphrases(toy_space, ref, "make it blue", n=6, targets=targets, k=10,
                                  callback=lambda done, total: seen.append((done, total)))
    assert res.texts[0] == "make it blue" and len(res.texts) == 6 and len(set(res.texts)) == 6
    assert seen[-1] == (6, 6)
    f = res.to_frame().set_index("method")
    assert f.loc["image", "jaccard"] == 1.0  # the image ignores the words ...
    assert f.loc["image", "recall@10"] <= f.loc["pdv", "recall@10"]  # ... and finds no blue one
    assert f.loc["text", "jaccard"] < 1.0  # the words matter to the text-only query
    fig = res.figure()
    assert res.rows_at(fig, curve=0, point=0).size >= 10


def test_rewrites_and_the_guessed_edit(toy_space):
    a = cs.analysis.rewrites(toy_space, 0, "turn it into a star", n=5, seed=3)
    assert a == cs.analysis.rewrites(toy_space, 0, "turn it into a star", n=5, seed=3)
    assert a[0] == "turn it into a star" and all("star" in t for t in a)
    assert cs.analysis.rewrites(toy_space, 0, edit=("size", "large"), n=3)[0] != ""
    assert guess_edit("i want a red one", {"color": "blue"}) == ("color", "red")
    assert guess_edit("put it on white", {"background": "black", "color": "red"}) == ("background", "white")
    with pytest.raises(ValueError, match="Cannot tell"):
        guess_edit("do something", {})
    with pytest.raises(ValueError, match="two wordings"):
        cs.analysis.paraphrases(toy_space, 0, ["only one"])
    with pytest.raises(ValueError, match="Unknown composing"):
        cs.analysis.paraphrases(toy_space, 0, ["a", "b"], methods=["magic"])
    with pytest.raises(ValueError, match="outside"):
        cs.analysis.paraphrases(toy_space, 10_000, ["a", "b"])

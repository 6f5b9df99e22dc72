"""Templates filled in correct English: "a"/"an" before a filled-in word, nothing else changed."""

from __future__ import annotations

import pytest

import cirscope as cs
from cirscope._core.wording import article, fill
from cirscope.query._composed import fill_template


@pytest.mark.parametrize(
    ("word", "expected"),
    [("orange", "an"), ("ochre", "an"), ("apple", "an"), ("umbrella", "an"), ("red", "a"), ("star", "a"),
     ("unicorn", "a"), ("user", "a"), ("European", "a"), ("one-off", "a"), ("hour", "an"), ("honest", "an"),
     ("house", "a"), ("'orange'", "an"), ("", "a")],
)
def test_article(word, expected):
    assert article(word) == expected


def test_fill_fixes_only_articles_written_before_a_field():
    assert fill("a {} shape", "orange") == "an orange shape"
    assert fill("an {} shape", "red") == "a red shape"  # a template written for one word, used with another
    assert fill("A {x} on a {y} background", x="orange", y="ochre") == "An orange on an ochre background"
    assert fill("{caption}, a apple", caption="a orange") == "a orange, a apple"  # user text stays as written
    assert fill("banana {}", "orange") == "banana orange"  # "a" inside a word is no article
    assert fill("a {0} and a {0}", "egg") == "an egg and an egg"
    assert fill("a {:>3}", 8) == "a   8"
    assert fill("{{a}} {}", "x") == "{a} x"
    with pytest.raises(KeyError):
        fill("a {color}", shape="star")
    with pytest.raises(IndexError):
        fill("a {} {}", "one")


def test_prompts_captions_and_composed_texts_use_the_right_article():
    shapes = cs.Vocabulary.shapes()
    assert shapes.prompt("color", "orange") == "an orange shape"
    assert shapes.prompt("color", "red") == "a red shape"
    mine = cs.Vocabulary({"fruit": ["apple", "pear"]}, prompts={"fruit": "a photo of a {}"}, description="a {fruit}")
    assert mine.prompt("fruit", "apple") == "a photo of an apple"
    assert mine.describe({"fruit": "apple"}) == "an apple" and mine.describe({"fruit": "pear"}) == "a pear"
    assert fill_template("a {caption}, {text}", "orange star", "make it blue") == "an orange star, make it blue"
    assert fill_template("{caption}, {text}", "a orange star", "x") == "a orange star, x"  # the caption as given


def test_long_tail_prompts_read_as_english(toy_space):
    res = cs.diagnostics.long_tail(toy_space, "color")
    prompts = dict(zip(res.to_frame()["label"], res.to_frame()["prompt"], strict=True))
    assert prompts["orange"] == "an orange shape" and prompts["red"] == "a red shape"
    assert not any(p.startswith("a orange") for p in prompts.values())

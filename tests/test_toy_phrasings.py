"""How people phrase edits: the strict training / held-out split, the held-out evaluation,
and the notice naming the words the toy model does not know."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import cirscope as cs
from cirscope.cli._main import main
from cirscope.datasets._shapes import ATTRIBUTES, sample_world
from cirscope.embedding._unknown_words import UnknownWordsWarning, unknown_words_notice
from cirscope.eval import make_shapes_benchmark
from cirscope.eval._phrasings import format_comparison, phrasing_comparison
from cirscope.eval._shapes import PHRASINGS, SIZE_PHRASINGS
from cirscope.toy import load_toy
from cirscope.toy._phrasings import (
    HELD_OUT_EDITS,
    HELD_OUT_SIZE_EDITS,
    HELD_OUT_WORDS,
    TRAIN_EDITS,
    TRAIN_SIZE_EDITS,
    all_edits,
    words_of,
)
from cirscope.toy._texts import Typical, every_text_word, sample_text
from cirscope.widgets import QueryPanel

VALUES = dict(ATTRIBUTES)


def test_held_out_phrasings_never_occur_in_training():
    train_words = words_of(every_text_word())
    held_out_words = words_of(all_edits("held-out", VALUES))
    assert not set(HELD_OUT_WORDS) & train_words
    # Every held-out word is either a training word or one of the declared held-out synonyms.
    assert held_out_words <= train_words | set(HELD_OUT_WORDS)
    assert set(HELD_OUT_WORDS) <= held_out_words
    for attr, templates in HELD_OUT_EDITS.items():
        assert not set(templates) & set(TRAIN_EDITS[attr]), attr
    for value, templates in HELD_OUT_SIZE_EDITS.items():
        assert not set(templates) & set(TRAIN_SIZE_EDITS[value]), value
    # The benchmark's in-template phrasings are training phrasings.
    for attr, templates in PHRASINGS.items():
        assert set(templates) <= set(TRAIN_EDITS[attr])
    for value, templates in SIZE_PHRASINGS.items():
        assert set(templates) <= set(TRAIN_SIZE_EDITS[value])


def test_training_texts_are_true_of_their_item_and_use_no_held_out_word():
    rng = np.random.default_rng(0)
    world = sample_world(200, seed=3)
    held_out = set(HELD_OUT_WORDS)
    for attrs in world[list(ATTRIBUTES)].to_dict("records"):
        for _ in range(5):
            text, asserted, excluded = sample_text(attrs, rng)
            assert all(attrs[a] == v for a, v in asserted.items()), (text, attrs)
            assert all(attrs[a] != v for a, v in excluded.items()), (text, attrs)
            assert not words_of([text]) & held_out, text


def _says_color(text_asserted_excluded: tuple[str, dict, dict]) -> bool:
    _, asserted, excluded = text_asserted_excluded
    return "color" in asserted or "color" in excluded


def test_reporting_bias_leaves_a_typical_colour_unsaid_and_names_an_unusual_one():
    star = Typical(when={"shape": "star"}, then={"color": "yellow"})
    yellow_star = {"shape": "star", "color": "yellow", "background": "white", "size": "small"}
    red_star = {**yellow_star, "color": "red"}
    yellow_heart = {**yellow_star, "shape": "heart"}

    def color_share(attrs: dict, unsaid: float, n: int = 3000) -> float:
        rng = np.random.default_rng(5)
        texts = [sample_text(attrs, rng, edit_share=0.0, prefix_share=0.0, typical=[star], reporting=unsaid)
                 for _ in range(n)]
        return float(np.mean([_says_color(t) for t in texts]))

    base = color_share(yellow_star, 0.0)
    assert 0.5 < base < 0.8  # most templates name the colour
    # With reporting bias r a typical item names its colour (1 - r) times as often ...
    assert color_share(yellow_star, 0.6) == pytest.approx(0.4 * base, abs=0.03)
    assert color_share(yellow_star, 1.0) == 0.0
    # ... an unusual one (a red star) names it more often ...
    assert color_share(red_star, 0.0) == pytest.approx(base, abs=0.03)
    assert color_share(red_star, 0.6) == pytest.approx(base + 0.6 * (1 - base), abs=0.03)
    assert color_share(red_star, 1.0) == 1.0
    # ... and items no rule is about are described as before.
    assert color_share(yellow_heart, 1.0) == pytest.approx(base, abs=0.03)


def test_reporting_bias_applies_to_the_described_reference_of_an_edit():
    star = Typical(when={"shape": "star"}, then={"color": "yellow"})
    yellow_star = {"shape": "star", "color": "yellow", "background": "white", "size": "small"}

    def yellow_in_description(unsaid: float) -> float:
        rng = np.random.default_rng(2)
        hits = []
        for _ in range(2000):
            text, asserted, excluded = sample_text(yellow_star, rng, edit_share=1.0, typical=[star],
                                                   reporting=unsaid)
            assert all(yellow_star[a] == v for a, v in asserted.items()), text
            assert all(yellow_star[a] != v for a, v in excluded.items()), text
            hits.append("yellow" in text.split(",")[0])
        return float(np.mean(hits))

    # Background and size edits (half of them) describe a yellow star as the reference: with
    # the colour unsaid, "yellow" leaves most descriptions (a colour or shape edit's
    # reference is not a typical item and keeps its colour words).
    assert yellow_in_description(1.0) < yellow_in_description(0.0) - 0.2


def test_held_out_benchmark_draws_the_same_queries():
    meta = sample_world(400, seed=1)
    a = make_shapes_benchmark(meta, n_queries=60, seed=5)
    b = make_shapes_benchmark(meta, n_queries=60, seed=5, phrasings="held-out")
    assert [(q.reference, q.targets, q.meta) for q in a.queries] == [(q.reference, q.targets, q.meta) for q in b.queries]
    held_out_texts = set(all_edits("held-out", VALUES))
    assert sum(q.text in held_out_texts for q in b.queries) >= 40  # "{old}" phrasings name the query's own value
    assert not {q.text for q in b.queries} & set(all_edits("train", VALUES))
    assert b.gallery["phrasings"] == "held-out" and a.gallery["phrasings"] == "in-template"
    with pytest.raises(ValueError, match="phrasings"):
        make_shapes_benchmark(meta, n_queries=5, phrasings="slang")


def test_toy_tokenizer_ignores_and_names_unknown_words():
    _, _, tok = load_toy()
    assert tok.unknown_words("Dye it RED, dye?") == ["dye"]  # once each, punctuation left out
    assert tok.unknown_words("a red star on a black background") == []
    assert tok.known_words("dye it red") == ["it", "red"]
    # Known texts tokenize exactly as open_clip does; unknown words vanish.
    known = ["a red star on a black background, make it blue", "bigger"]
    assert np.array_equal(tok(known).numpy(), tok.tokenizer(known).numpy())
    assert np.array_equal(tok(["dye it red"]).numpy(), tok.tokenizer(["it red"]).numpy())
    emb = cs.Embedder.toy()
    np.testing.assert_allclose(emb.encode_text("a star, dye it red"), emb.encode_text("a star, it red"), atol=1e-6)


def test_search_warns_about_unknown_words(toy_space):
    with pytest.warns(UnknownWordsWarning, match="'dye' is unknown to cirscope-toy and was ignored") as caught:
        df = toy_space.search(cs.ComposedQuery(3, "dye it red"), k=5)
    assert "the words used:" in str(caught[0].message) and "it red" in str(caught[0].message)
    assert df.attrs["notice"] == str(caught[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plain = toy_space.search("a red star", k=5)
    assert "notice" not in plain.attrs


def test_open_clip_models_report_nothing(tiny_model_name, tiny_checkpoint):
    emb = cs.Embedder(tiny_model_name, str(tiny_checkpoint))
    assert emb.unknown_words("dye it zorblax") == []
    assert unknown_words_notice(emb, ["dye it zorblax"]) is None
    assert emb._model is None  # nothing was loaded to find out


def test_query_panel_shows_the_notice_as_text(toy_space):
    panel = QueryPanel(toy_space, text="<b>dye</b> it red", k=5)
    assert len(panel.results) == 5
    # The status is plain text (the front end sets textContent): the words as the tokenizer split them.
    assert "'b', 'dye' are unknown to cirscope-toy and were ignored; the words used: 'it red'" in panel.status
    panel.text = "a red star"
    assert "unknown" not in panel.status


def test_held_out_evaluation_on_the_shipped_model(toy_space):
    report = phrasing_comparison(toy_space, n_queries=200, seed=0)
    assert set(report["phrasings"]) == {"in-template", "held-out"}
    for table in report["phrasings"].values():
        assert set(table) == {"image", "text", "sum", "weimocir", "slerp", "pdv"}
        assert all(set(row) == {"R@1", "mAP@10"} for row in table.values())
    assert {"dye", "canvas"} <= set(report["unknown_words"])
    held, fit = report["phrasings"]["held-out"], report["phrasings"]["in-template"]
    assert held["pdv"]["R@1"] >= 0.85 and held["pdv"]["R@1"] >= held["sum"]["R@1"], report
    assert fit["pdv"]["R@1"] >= 0.95, report


def test_toy_eval_reports_both_phrasing_sets(capsys):
    assert main(["toy-eval", "--n", "300", "--queries", "60", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["composed"]["phrasings"]) == {"in-template", "held-out"}
    lines = format_comparison(report["composed"])
    assert "held-out R@1" in lines[0] and any(line.split()[0] == "pdv" for line in lines[1:])

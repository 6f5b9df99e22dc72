"""The query panel's words and drawn formulas: what it shows is what the library computes.

The formula each method's panel draws (:mod:`cirscope.widgets._query_formula`) is computed
with numpy and compared with :func:`cirscope.query.compose` for every method; the note under
the composed text (:mod:`cirscope.widgets._query_notes`) follows the texts' sources and the
method. The browser side is in ``tests/ui/test_query_panel_browser.py``.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from cirscope.query._methods import INPUTS, METHODS, compose
from cirscope.widgets import QueryPanel
from cirscope.widgets._query_formula import FORMULAS, evaluate, method_specs
from cirscope.widgets._query_notes import composed_note


def _unit(rng: np.random.Generator, *shape: int) -> np.ndarray:
    x = rng.normal(size=shape)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _settings(method: str) -> list[dict[str, float]]:
    """Every corner of the sliders' ranges, the defaults and one value inside each range."""
    params = METHODS[method].params
    choices = [(p.min, p.max, p.default, p.min + 0.37 * (p.max - p.min)) for p in params]
    return [dict(zip([p.name for p in params], combo, strict=True)) for combo in itertools.product(*choices)]


def _nodes(node: list):
    yield node
    for child in node[1:]:
        if isinstance(child, list):
            yield from _nodes(child)


@pytest.mark.parametrize("method", list(METHODS))
def test_the_drawn_formula_computes_what_compose_computes(method):
    rng = np.random.default_rng(7)
    inputs = {name: _unit(rng, 5, 24) for name in INPUTS}  # five queries at once
    spec = METHODS[method]
    used = {name: inputs[name] for name in spec.inputs}
    for params in _settings(method):
        drawn = evaluate(method, used, params)
        assert drawn.shape == (5, 24)
        np.testing.assert_allclose(drawn, compose(method, **used, **params), atol=2e-6, err_msg=str(params))
    # the formula is not a constant: a different image or text gives a different query
    moved = {**used, spec.inputs[0]: _unit(rng, 5, 24)}
    assert not np.allclose(evaluate(method, moved, spec.defaults()), evaluate(method, used, spec.defaults()))


@pytest.mark.parametrize("method", list(METHODS))
def test_every_slider_and_input_of_a_method_appears_in_its_drawn_formula(method):
    spec, lines = METHODS[method], FORMULAS[method]["lines"]
    assert lines[-1]["name"] == "q"
    defined: set[str] = set()
    params: set[str] = set()
    inputs: set[str] = set()
    for line in lines:
        for node in _nodes(line["expr"]):
            if node[0] == "var":
                assert node[1] in defined or node[1] in spec.inputs, f"{node[1]} used before it is defined"
                inputs |= {node[1]} & set(spec.inputs)
            elif node[0] == "param":
                params.add(node[1])
        defined.add(line["name"])
    assert params == {p.name for p in spec.params}
    assert inputs == set(spec.inputs)


def test_method_specs_carry_the_drawn_lines_symbols_and_slider_words():
    specs = {m["name"]: m for m in method_specs()}
    assert list(specs) == list(METHODS)
    pdv = specs["pdv"]
    assert (pdv["title"], pdv["full_name"]) == ("PDV", "Prompt Directional Vector")
    assert [line["name"] for line in pdv["lines"]] == ["d", "q_text", "q_img", "q"]
    assert [s[0] for s in pdv["symbols"]] == ["v_ref", "t_ref", "t_comp"]
    assert {p["name"]: p["word"] for p in pdv["params"]} == {"alpha_t": "text", "alpha_i": "image", "beta": "fusion"}
    assert specs["slerp"]["note"] and specs["image"]["params"] == []
    # the words a newcomer reads never name the paper's variants
    assert "PDV-" not in repr(specs)


def test_a_replaced_method_is_shown_with_its_own_plain_formula(monkeypatch):
    """The drawn lines describe the built-in functions only; a method swapped for another
    function keeps its registered text instead of a formula it does not compute."""
    swapped = dataclasses.replace(METHODS["sum"], func=lambda v_ref, t_mod: v_ref, formula="q = v_ref (custom)")
    monkeypatch.setitem(METHODS, "sum", swapped)
    spec = {m["name"]: m for m in method_specs()}["sum"]
    assert spec["lines"] == [] and spec["formula"] == "q = v_ref (custom)"


def test_composed_note_says_how_the_text_was_formed_and_what_editing_changes():
    note = composed_note("pdv", "template", "caption")
    assert note.startswith("The reference's caption + your modification.")
    assert "Edit it and press Enter" in note and "this changes only the text side of the query" in note
    assert composed_note("pdv", "template", "zero-shot").startswith("A description guessed from the image +")
    edited = composed_note("pdv", "explicit", "caption")
    assert edited.startswith("Your own text") and "“auto”" in edited and "only the text side" in edited
    assert composed_note("pdv", "rewriter", "neutral").startswith("Rewritten from a neutral prompt")
    for method in ("slerp", "weimocir", "sum", "text"):
        note = composed_note(method, "template", "caption")
        assert f"{METHODS[method].title} does not use it (only the modification): PDV does." in note
    assert "(only the image)" in composed_note("image", "template", "caption")
    assert composed_note("pdv", composed=False).startswith("Pick a reference image and type a modification")
    # one or two lines at a glance
    assert max(len(composed_note(m, s, r)) for m in METHODS for s in ("template", "explicit", "rewriter")
               for r in ("caption", "zero-shot", "neutral", "explicit")) <= 160  # fmt: skip


def test_the_panel_sets_the_note_after_each_search(toy_space):
    panel = QueryPanel(toy_space)
    assert panel.composed_text_note.startswith("Pick a reference image")
    panel.reference, panel.text = 2, "make it red"
    assert panel.composed_text_source == "template" and panel.reference_text_source == "caption"
    assert panel.composed_text_note == composed_note("pdv", "template", "caption")
    panel.composed_text_override = "a red square on a grey background"
    assert panel.composed_text_note.startswith("Your own text")
    panel.method = "slerp"
    assert "Slerp does not use it" in panel.composed_text_note
    panel.reference = -1
    assert panel.composed_text_note.startswith("Pick a reference image")

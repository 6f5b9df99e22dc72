"""The composing formulas as the query panel draws them: small expression trees, checkable in Python.

Each built-in method's formula (:mod:`cirscope.query._formulas`) is written once more here as
lines ``name = expression`` whose expressions are JSON trees; the front end
(``js/query_panel.js``) turns them into DOM elements (subscripts, Greek letters, ``·``,
``−``, fraction bars) and substitutes the sliders' current values. :func:`evaluate` computes a
tree with numpy, so a test checks that what the panel shows is what
:func:`cirscope.query.compose` computes, for every method.

A node is a list whose first item names it:

``["var", name]``
    an embedding (``v_ref``, ``t_mod``, ``t_ref``, ``t_comp``) or an earlier line's name;
``["param", name]``
    a slider (``alpha_t``, ``alpha_i``, ``beta``, ``a``);
``["num", x]``
    a number;
``["add", a, b]``, ``["sub", a, b]``, ``["mul", a, b]``, ``["frac", a, b]``
    ``a + b``, ``a − b``, ``a · b``, a fraction bar;
``["norm", x]``, ``["sin", x]``, ``["arccos", x]``, ``["dot", a, b]``
    ``x / ‖x‖``, the sine, the arc cosine, the dot product of two vectors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from cirscope.query import _formulas
from cirscope.query._methods import METHODS

__all__ = ["FORMULAS", "PARAM_WORDS", "SYMBOLS", "evaluate", "method_specs"]

Node = list


def _v(name: str) -> Node:
    return ["var", name]


def _p(name: str) -> Node:
    return ["param", name]


def _one_minus(name: str) -> Node:
    return ["sub", ["num", 1], _p(name)]


def _mix(w_v: Node, v: Node, w_t: Node, t: Node) -> Node:
    return ["add", ["mul", w_v, v], ["mul", w_t, t]]


#: What each embedding symbol stands for (the panel's legend under the formula).
SYMBOLS: dict[str, str] = {
    "v_ref": "the reference image",
    "t_mod": "the modification text alone",
    "t_ref": "the reference text",
    "t_comp": "the composed text",
}

#: The word beside each slider's symbol.
PARAM_WORDS: dict[str, str] = {"alpha_t": "text", "alpha_i": "image", "beta": "fusion", "a": "text weight"}

_THETA = _v("theta")
_SLERP_WEIGHT = ["frac", ["sin", ["mul", _one_minus("a"), _THETA]], ["sin", _THETA]]
_SLERP_TEXT = ["frac", ["sin", ["mul", _p("a"), _THETA]], ["sin", _THETA]]

#: ``{method: {"lines": [{"name", "expr", "note"}], "note": str}}``; the last line defines ``q``.
FORMULAS: dict[str, dict[str, Any]] = {
    "image": {"lines": [{"name": "q", "expr": _v("v_ref"), "note": ""}], "note": ""},
    "text": {"lines": [{"name": "q", "expr": _v("t_mod"), "note": ""}], "note": ""},
    "sum": {"lines": [{"name": "q", "expr": ["norm", ["add", _v("v_ref"), _v("t_mod")]], "note": ""}], "note": ""},
    "weimocir": {
        "lines": [{"name": "q", "expr": ["norm", _mix(_one_minus("a"), _v("v_ref"), _p("a"), _v("t_mod"))],
                   "note": ""}],
        "note": "",
    },
    "slerp": {
        "lines": [
            {"name": "theta", "expr": ["arccos", ["dot", _v("v_ref"), _v("t_mod")]],
             "note": "the angle between image and text"},
            {"name": "q", "expr": ["norm", _mix(_SLERP_WEIGHT, _v("v_ref"), _SLERP_TEXT, _v("t_mod"))], "note": ""},
        ],
        "note": "When image and text point (almost) the same or opposite way, a straight-line mix is used instead.",
    },
    "pdv": {
        "lines": [
            {"name": "d", "expr": ["sub", ["norm", _v("t_comp")], ["norm", _v("t_ref")]],
             "note": "the prompt direction"},
            {"name": "q_text", "expr": ["add", ["norm", _v("t_ref")], ["mul", _p("alpha_t"), _v("d")]],
             "note": "the text moved along d"},
            {"name": "q_img", "expr": ["add", ["norm", _v("v_ref")], ["mul", _p("alpha_i"), _v("d")]],
             "note": "the image moved along d"},
            {"name": "q", "expr": ["norm", _mix(_one_minus("beta"), _v("q_img"), _p("beta"), _v("q_text"))],
             "note": ""},
        ],
        "note": "",
    },
}


def _norm(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _eval(node: Node, env: Mapping[str, Any], params: Mapping[str, float]) -> Any:
    op, *args = node
    if op == "var":
        return env[args[0]]
    if op == "param":
        return float(params[args[0]])
    if op == "num":
        return float(args[0])
    vals = [_eval(a, env, params) for a in args]
    if op == "add":
        return vals[0] + vals[1]
    if op == "sub":
        return vals[0] - vals[1]
    if op in ("mul", "frac"):
        return vals[0] * vals[1] if op == "mul" else vals[0] / vals[1]
    if op == "dot":
        return np.sum(vals[0] * vals[1], axis=-1, keepdims=True)
    functions = {"norm": _norm, "sin": np.sin, "arccos": lambda x: np.arccos(np.clip(x, -1.0, 1.0))}
    if op in functions:
        return functions[op](vals[0])
    raise ValueError(f"Unknown formula node {op!r}")


def evaluate(method: str, inputs: Mapping[str, np.ndarray], params: Mapping[str, float]) -> np.ndarray:
    """Compute the query vector from the formula the panel shows for ``method``.

    The lines are computed in order, each one's name usable by the next; the result is ``q``.

    Examples
    --------
    >>> v, t = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    >>> evaluate("weimocir", {"v_ref": v, "t_mod": t}, {"a": 0.75}).round(4)
    array([0.3162, 0.9487])
    """
    env: dict[str, Any] = {k: np.asarray(x, dtype=np.float64) for k, x in inputs.items()}
    for line in FORMULAS[method]["lines"]:
        env[line["name"]] = _eval(line["expr"], env, params)
    return env["q"]


def _param(p: Any) -> dict:
    return {"name": p.name, "min": p.min, "max": p.max, "step": p.step, "doc": p.doc, "default": p.default,
            "word": PARAM_WORDS.get(p.name, "")}  # fmt: skip


def method_specs() -> list[dict]:
    """The composing methods as the panel shows them: name, title, full name, formula, paper, sliders.

    ``formula`` is the registry's plain-text formula; ``lines`` and ``note`` (from
    :data:`FORMULAS`) are what the panel draws, and ``symbols`` explains the embeddings the
    method uses. A method registered without lines is shown with its plain-text formula.

    Examples
    --------
    >>> [m["name"] for m in method_specs()]
    ['image', 'text', 'sum', 'weimocir', 'slerp', 'pdv']
    >>> [s[0] for s in method_specs()[-1]["symbols"]]
    ['v_ref', 't_ref', 't_comp']
    """
    specs = []
    for m in METHODS.values():
        builtin = getattr(_formulas, f"compose_{m.name}", None) is m.func  # a replaced method: its own text
        drawn = FORMULAS.get(m.name) if builtin else None
        specs.append({
            "name": m.name,
            "title": m.title,
            "full_name": m.full_name,
            "formula": m.formula,
            "paper": m.paper,
            "lines": drawn["lines"] if drawn else [],
            "note": drawn["note"] if drawn else "",
            "symbols": [[name, SYMBOLS[name]] for name in m.inputs if name in SYMBOLS],
            "params": [_param(p) for p in m.params],
        })  # fmt: skip
    return specs

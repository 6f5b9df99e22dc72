"""The query panel: reference image, modification text, composing method and its sliders."""

from __future__ import annotations

import anywidget
import traitlets as t

from cirscope._compose import METHODS
from cirscope.widgets._static import static_file

__all__ = ["QueryPanel", "method_specs"]


def method_specs() -> list[dict]:
    """The composing methods as the panel shows them: name, title, formula, paper, sliders.

    Examples
    --------
    >>> [m["name"] for m in method_specs()]
    ['image', 'text', 'sum', 'weimocir', 'slerp', 'pdv']
    """
    return [
        {
            "name": m.name,
            "title": m.title,
            "formula": m.formula,
            "paper": m.paper,
            "params": [
                {"name": p.name, "min": p.min, "max": p.max, "step": p.step, "doc": p.doc, "default": p.default}
                for p in m.params
            ],
        }
        for m in METHODS.values()
    ]


_PDV = METHODS["pdv"].defaults()
_WEIGHT = METHODS["weimocir"].defaults()


class QueryPanel(anywidget.AnyWidget):
    """The query controls of the explorer.

    ``text`` changes when Enter is pressed (or Run clicked) in the browser; the sliders
    (``alpha_t``, ``alpha_i``, ``beta`` for PDV; ``a`` for WeiMoCIR and Slerp) change live.
    ``reference_text`` / ``composed_text`` show the texts the last query used;
    typing in them sets ``reference_text_override`` / ``composed_text_override`` (``""``:
    automatic). ``run_count`` counts explicit runs.

    Examples
    --------
    >>> panel = QueryPanel(reference=3, text="make it blue", method="slerp", a=0.5)
    >>> panel.method, panel.a
    ('slerp', 0.5)
    """

    _esm = static_file("query_panel.js")
    _css = static_file("cirscope.css")

    reference = t.Int(-1, min=-1).tag(sync=True)
    reference_id = t.Unicode("").tag(sync=True)
    reference_caption = t.Unicode("").tag(sync=True)
    reference_thumbnail = t.Bytes(b"").tag(sync=True)
    text = t.Unicode("").tag(sync=True)
    method = t.Enum(list(METHODS), default_value="pdv").tag(sync=True)
    methods = t.List(t.Dict(), default_value=method_specs()).tag(sync=True)
    alpha_t = t.Float(_PDV["alpha_t"]).tag(sync=True)
    alpha_i = t.Float(_PDV["alpha_i"]).tag(sync=True)
    beta = t.Float(_PDV["beta"]).tag(sync=True)
    a = t.Float(_WEIGHT["a"]).tag(sync=True)
    k = t.Int(20, min=1, max=500).tag(sync=True)
    reference_text = t.Unicode("").tag(sync=True)
    reference_text_source = t.Unicode("").tag(sync=True)
    composed_text = t.Unicode("").tag(sync=True)
    composed_text_source = t.Unicode("").tag(sync=True)
    reference_text_override = t.Unicode("").tag(sync=True)
    composed_text_override = t.Unicode("").tag(sync=True)
    run_count = t.Int(0).tag(sync=True)
    status = t.Unicode("").tag(sync=True)
    error = t.Unicode("").tag(sync=True)

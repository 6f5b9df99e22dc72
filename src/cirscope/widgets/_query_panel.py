"""The query panel: reference image, modification text, composing method and its sliders."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import traitlets as t

from cirscope.query._methods import METHODS
from cirscope.widgets._base import WidgetBase
from cirscope.widgets._codec import Array, RowList
from cirscope.widgets._static import static_file

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.space._space import Space

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


class QueryPanel(WidgetBase):
    """The query controls: reference image, modification text, method and its sliders.

    With a space, every change (reference, Enter in the text box, method, a slider, ``k``,
    an edited reference or composed text) runs ``space.search`` with the panel's settings;
    the results land in :attr:`results`, :attr:`scores` and :attr:`result` and
    :attr:`result_version` counts them, so a :class:`NeighborGrid` can follow with
    ``traitlets.dlink((panel, "results"), (grid, "rows"))``.

    No reference: a text query. No text: an image query on the reference. Both: a
    :class:`~cirscope.ComposedQuery` searched with :attr:`method` and its parameters
    (PDV: ``alpha_t``, ``alpha_i``, ``beta``; WeiMoCIR and Slerp: ``a``).

    Parameters
    ----------
    space
        The :class:`~cirscope.Space` to search (leave out for a panel without searches).
    **traits
        Initial values, e.g. ``reference=0, text="make it blue", method="slerp", a=0.6``.

    Attributes
    ----------
    reference : int
        The reference row (-1: none); set it from Python or click a thumbnail in the Explorer.
    reference_text, composed_text : str
        The texts the last composed query used; ``*_source`` says where they came from.
        Typing in them (Enter) sets ``reference_text_override`` / ``composed_text_override``
        (``""``: automatic again).
    result : pandas.DataFrame or None
        The last ``space.search`` output.

    Examples
    --------
    >>> panel = QueryPanel(reference=3, text="make it blue", method="slerp", a=0.5)
    >>> panel.method, panel.a
    ('slerp', 0.5)
    """

    _esm = static_file("query_panel.js")

    reference = t.Int(-1, min=-1).tag(sync=True)
    reference_id = t.Unicode("").tag(sync=True)
    reference_caption = t.Unicode("").tag(sync=True)
    reference_thumbnail = t.Bytes(b"").tag(sync=True)
    text = t.Unicode("", help="The modification text (sent on Enter)").tag(sync=True)
    method = t.Enum(list(METHODS), default_value="pdv").tag(sync=True)
    methods = t.List(t.Dict(), default_value=method_specs()).tag(sync=True)
    alpha_t = t.Float(_PDV["alpha_t"], help="PDV: how far the text moves along the prompt direction").tag(sync=True)
    alpha_i = t.Float(_PDV["alpha_i"], help="PDV: how far the image moves along the prompt direction").tag(sync=True)
    beta = t.Float(_PDV["beta"], help="PDV: fusion weight (0: image side, 1: text side)").tag(sync=True)
    a = t.Float(_WEIGHT["a"], help="WeiMoCIR / Slerp: weight of the text (0: image, 1: text)").tag(sync=True)
    k = t.Int(20, min=1, max=500).tag(sync=True)
    reference_text = t.Unicode("").tag(sync=True)
    reference_text_source = t.Unicode("").tag(sync=True)
    composed_text = t.Unicode("").tag(sync=True)
    composed_text_source = t.Unicode("").tag(sync=True)
    reference_text_override = t.Unicode("").tag(sync=True)
    composed_text_override = t.Unicode("").tag(sync=True)
    request = t.Int(0, help="Counts the browser's requests (Run, Enter, slider moves)").tag(sync=True)
    served = t.Int(0, help="The last request answered (the browser sends the next one then)").tag(sync=True)
    results = RowList().tag(sync=True)
    scores = Array(np.float32, ndim=1).tag(sync=True)
    result_version = t.Int(0, help="Counts finished searches").tag(sync=True)
    status = t.Unicode("").tag(sync=True)
    error = t.Unicode("").tag(sync=True)

    def __init__(self, space: Space | None = None, **traits: Any):
        super().__init__(**traits)
        self._result: Any = None
        self.binding = None
        if space is not None:
            from cirscope.widgets._bindings import QueryBinding

            self.binding = QueryBinding(self, space)

    @property
    def result(self) -> pd.DataFrame | None:
        """The last search as a DataFrame (not synced; ``result_version`` counts updates).

        A slider move stores the search's arrays (:class:`cirscope.query._search.Hits`); the
        DataFrame is built the first time Python code reads this.
        """
        if self._result is not None and not isinstance(self._result, pd.DataFrame):
            self._result = self._result.to_frame()
        return self._result

    @result.setter
    def result(self, value: Any) -> None:
        self._result = value

    def params(self) -> dict[str, float]:
        """The current values of the selected method's parameters.

        Examples
        --------
        >>> QueryPanel(method="slerp", a=0.3).params()
        {'a': 0.3}
        """
        return {p.name: float(getattr(self, p.name)) for p in METHODS[self.method].params}

"""The analysis view beside the query panel: bias along the slider, and paraphrase robustness.

:class:`AnalysisView` holds the traits the browser shows (two tabs); :class:`AnalysisBinding`
follows a :class:`~cirscope.widgets.QueryPanel`: the skew curve of the chosen attribute is
computed once per query (:func:`cirscope.analysis.slider_bias`), and a move of the alpha slider
only moves the chart's marker. The paraphrase table (:func:`cirscope.analysis.paraphrases`) is
computed when asked for (its button), with progress over the wordings.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
import traitlets as t

from cirscope.query._composed import ComposedQuery
from cirscope.widgets._base import WidgetBase
from cirscope.widgets._binding import Binding
from cirscope.widgets._codec import Array
from cirscope.widgets._query_state import QUERY_ERRORS
from cirscope.widgets._static import static_file

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.space._space import Space
    from cirscope.widgets._query_panel import QueryPanel

__all__ = ["AnalysisBinding", "AnalysisView", "attribute_choices"]

MAX_LABELS = 30  # a column with more distinct values is no attribute to audit skew over


def attribute_choices(space: Space) -> list[str]:
    """Metadata columns with 2 to 30 distinct values (what the attribute menu offers).

    Examples
    --------
    >>> attribute_choices(space)[:4]
    ['shape', 'color', 'background', 'size']
    """
    meta = space.gallery.metadata
    out = []
    for name in meta.columns:
        if name == "id":
            continue
        n = meta[name].nunique(dropna=True)
        if 2 <= n <= MAX_LABELS:
            out.append(str(name))
    return out


class AnalysisView(WidgetBase):
    """Bias along the slider and paraphrase robustness for the query panel's composed query.

    Tab "Bias along the slider": MaxSkew@K and NDKL of :attr:`attribute` in the top K as
    PDV's alpha moves (``alpha_t = alpha_i``), the current alpha marked. Tab "Paraphrases":
    per composing method, the Jaccard of the top K and the rank spread over rewordings of
    the modification (typed, one per line, or drawn from the phrasing templates).

    Examples
    --------
    >>> from cirscope.widgets import QueryPanel
    >>> panel = QueryPanel(space, reference=0, text="make it blue")
    >>> view = AnalysisView(space, panel)
    >>> view.attribute, len(view.alphas) == len(view.max_skew) == 26
    ('shape', True)
    >>> panel.alpha_t = 1.5  # the marker moves; the curve is not computed again
    >>> view.current_alpha, view.curve_version
    (1.5, 1)
    """

    _esm = static_file("slider_bias.js")

    tab = t.Enum(["bias", "paraphrase"], default_value="bias").tag(sync=True)
    attributes = t.List(t.Unicode()).tag(sync=True)
    attribute = t.Unicode("").tag(sync=True)
    k = t.Int(50, min=1, max=1000, help="The cut-off of the skew").tag(sync=True)
    alphas = Array(np.float32, ndim=1).tag(sync=True)
    max_skew = Array(np.float32, ndim=1).tag(sync=True)
    ndkl = Array(np.float32, ndim=1).tag(sync=True)
    max_labels = t.List(t.Unicode(), help="The over-represented label at each alpha").tag(sync=True)
    current_alpha = t.Float(1.0).tag(sync=True)
    curve_version = t.Int(0, help="Counts computed curves").tag(sync=True)
    status = t.Unicode("").tag(sync=True)
    paraphrase_input = t.Unicode("", help="Rewordings typed by the user, one per line").tag(sync=True)
    paraphrase_n = t.Int(8, min=2, max=40).tag(sync=True)
    paraphrase_request = t.Int(0, help="Counts the browser's Compute presses").tag(sync=True)
    paraphrase_rows = t.List(t.Dict(), help="One dict per method (text and numbers)").tag(sync=True)
    paraphrase_texts = t.List(t.Unicode()).tag(sync=True)
    paraphrase_done = t.Int(0).tag(sync=True)
    paraphrase_total = t.Int(0).tag(sync=True)
    paraphrase_status = t.Unicode("").tag(sync=True)

    def __init__(self, space: Space | None = None, panel: QueryPanel | None = None, **traits: Any):
        super().__init__(**traits)
        self.binding: AnalysisBinding | None = None
        if space is not None and panel is not None:
            self.binding = AnalysisBinding(self, space, panel)


class AnalysisBinding(Binding):
    """Keeps an :class:`AnalysisView` in step with a query panel (see the module docstring).

    Attributes
    ----------
    curve : cirscope.analysis.SliderBiasResult or None
        The last computed curve.
    elapsed_ms : float
        How long it took.
    paraphrases : cirscope.analysis.ParaphraseResult or None
        The last paraphrase table.
    """

    CURVE = ("reference", "text", "beta", "reference_text_override", "composed_text_override")

    def __init__(self, view: AnalysisView, space: Space, panel: QueryPanel):
        self.view = view
        self.space = space
        self.panel = panel
        self.curve: Any = None
        self.paraphrases: Any = None
        self.elapsed_ms = 0.0
        self._key: tuple | None = None
        choices = attribute_choices(space)
        with view.hold_sync():
            view.attributes = choices
            if view.attribute not in choices:
                view.attribute = choices[0] if choices else ""
        self.follow(panel, self._on_query, list(self.CURVE))
        self.follow(panel, self._on_alpha, ["alpha_t", "alpha_i", "method"])
        self.follow(view, self._on_query, ["attribute", "k"])
        self.follow(view, self._on_paraphrase_request, "paraphrase_request")
        self.update()

    def _on_query(self, change: dict) -> None:
        self.update()

    def _on_alpha(self, change: dict) -> None:
        self.view.current_alpha = float(self.panel.alpha_t)  # the marker only: no new curve
        self._describe()

    def _query(self) -> ComposedQuery | None:
        binding = self.panel.binding
        current = binding.current_query() if binding is not None else None
        return current[0] if current is not None and isinstance(current[0], ComposedQuery) else None

    def _describe(self) -> None:
        if self.curve is None:
            return
        at = self.curve.at(self.panel.alpha_t)
        notes = []
        if self.panel.method != "pdv":
            notes.append("the curve follows PDV's alpha; the panel uses another method")
        if self.panel.alpha_i != self.panel.alpha_t:
            notes.append("the curve ties alpha_i to alpha_t")
        self.view.status = (f"alpha {at['alpha']:.2f}: MaxSkew@{self.curve.k} {at['max_skew']:.3f} "
                            f"({at['max_label']} over-represented), NDKL {at['ndkl']:.3f}; curve computed in "
                            f"{self.elapsed_ms:.0f} ms" + (f" ({'; '.join(notes)})" if notes else ""))

    def update(self) -> None:
        """Compute the curve again if the query, beta, attribute or k changed."""
        view, panel = self.view, self.panel
        query = self._query()
        key = (query, panel.beta, view.attribute, view.k)
        if key == self._key:
            return
        self._key = key
        empty = np.empty(0, np.float32)
        if query is None or not view.attribute:
            self.curve = None
            with view.hold_sync():
                view.alphas = view.max_skew = view.ndkl = empty
                view.max_labels = []
                view.status = ("Pick a reference image and type a modification: the chart shows the skew of an "
                               "attribute in the top K as alpha moves." if view.attribute else
                               "No metadata column with 2 to 30 values to measure skew over.")
            return
        from cirscope.analysis._slider_bias import slider_bias

        start = time.perf_counter()
        try:
            k = min(int(view.k), len(self.space) - 1)
            curve = slider_bias(self.space, query, view.attribute, k=k, beta=float(panel.beta))
        except QUERY_ERRORS as exc:
            self.curve = None
            with view.hold_sync():
                view.alphas = view.max_skew = view.ndkl = empty
                view.max_labels = []
                view.status = f"The curve failed: {type(exc).__name__}: {exc}"
            return
        self.elapsed_ms = (time.perf_counter() - start) * 1000
        self.curve = curve
        f = curve.to_frame()
        with view.hold_sync():
            view.alphas = f["alpha"].to_numpy(np.float32)
            view.max_skew = f["max_skew"].to_numpy(np.float32)
            view.ndkl = f["ndkl"].to_numpy(np.float32)
            view.max_labels = [str(x) for x in f["max_label"]]
            view.current_alpha = float(panel.alpha_t)
            view.curve_version += 1
            self._describe()

    def _on_paraphrase_request(self, change: dict) -> None:
        self.compute_paraphrases()

    def compute_paraphrases(self) -> Any:
        """The paraphrase table for the panel's query (typed rewordings, else template rewrites)."""
        from cirscope.analysis._paraphrase import paraphrases

        view = self.view
        query = self._query()
        if query is None or not isinstance(query.reference, (int, np.integer)):
            view.paraphrase_status = "Paraphrases need a gallery image as reference and a modification text."
            return None
        typed = [line.strip() for line in view.paraphrase_input.splitlines() if line.strip()]
        texts: Any = [query.text, *typed] if typed else query.text

        def progress(done: int, total: int) -> None:
            with view.hold_sync():
                view.paraphrase_done, view.paraphrase_total = done, total
                view.paraphrase_status = f"Encoding wording {done} of {total}..."

        view.paraphrase_status = "Computing..."
        try:
            res = paraphrases(self.space, int(query.reference), texts, n=int(view.paraphrase_n), k=10,
                              callback=progress)
        except QUERY_ERRORS as exc:
            view.paraphrase_status = f"Paraphrases failed: {exc}"
            return None
        self.paraphrases = res
        f = res.to_frame()
        with view.hold_sync():
            view.paraphrase_texts = list(res.texts)
            view.paraphrase_rows = [{"method": str(r.method), "jaccard": f"{r.jaccard:.3f}",
                                     "rank_std": f"{r.rank_std:.2f}", "rank_iqr": f"{r.rank_iqr:.1f}"}
                                    for r in f.itertuples()]
            view.paraphrase_status = (f"{len(res.texts)} wordings, top {res.k}: the most stable method is "
                                      f"{res.summary()['most_stable']} (image only ignores the words).")
        return res

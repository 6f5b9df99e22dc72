"""The query panel and its binding: reference image, modification text, composing method and its sliders.

:class:`QueryPanel` holds the traits the browser shows; :class:`QueryBinding` searches the
space (one neighbour search per change) and writes the results back.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import traitlets as t

from cirscope.embedding._unknown_words import query_notice
from cirscope.query._composed import ComposedQuery
from cirscope.query._methods import METHODS, method_label
from cirscope.query._search import Hits, search_hits
from cirscope.widgets._base import WidgetBase
from cirscope.widgets._binding import Binding
from cirscope.widgets._codec import Array, RowList
from cirscope.widgets._history import FIELDS, QueryHistory
from cirscope.widgets._query_formula import method_specs
from cirscope.widgets._query_notes import composed_note
from cirscope.widgets._query_state import QUERY_ERRORS, query_for
from cirscope.widgets._static import static_file

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.space._space import Space

__all__ = ["REFERENCE_THUMB", "QueryBinding", "QueryPanel", "method_specs"]

#: Size in px of the reference thumbnail.
REFERENCE_THUMB = 128


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
        The texts the last composed query used; ``*_source`` says where they came from and
        ``composed_text_note`` explains it in words. Typing in them (Enter) sets
        ``reference_text_override`` / ``composed_text_override`` (``""``: automatic again).
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
    composed_text_note = t.Unicode(composed_note("pdv", composed=False),
                                   help="How the composed text was formed and what editing it changes").tag(sync=True)
    reference_text_override = t.Unicode("").tag(sync=True)
    composed_text_override = t.Unicode("").tag(sync=True)
    request = t.Int(0, help="Counts the browser's requests (Run, Enter, slider moves)").tag(sync=True)
    served = t.Int(0, help="The last request answered (the browser sends the next one then)").tag(sync=True)
    results = RowList().tag(sync=True)
    scores = Array(np.float32, ndim=1).tag(sync=True)
    result_version = t.Int(0, help="Counts finished searches").tag(sync=True)
    status = t.Unicode("").tag(sync=True)
    error = t.Unicode("").tag(sync=True)
    can_undo = t.Bool(False, help="An earlier query state is in the history (Undo, Ctrl+Z)").tag(sync=True)
    can_redo = t.Bool(False, help="A later query state is in the history (Redo, Ctrl+Shift+Z)").tag(sync=True)
    history_position = t.Unicode("", help='Where the shown query is in the history, e.g. "3 / 5"').tag(sync=True)

    def __init__(self, space: Space | None = None, **traits: Any):
        super().__init__(**traits)
        self._result: Any = None
        self.binding: QueryBinding | None = None
        if space is not None:
            self.binding = QueryBinding(self, space)
        self.on_msg(self._history_msg)

    def _history_msg(self, widget: Any, content: Any, buffers: list) -> None:
        if isinstance(content, dict) and content.get("event") in ("undo", "redo"):
            getattr(self, content["event"])()

    def undo(self) -> bool:
        """Go back to the previous searched state (reference, text, method, sliders, k) and search it.

        Returns ``False`` when there is none. Also the panel's Undo button and Ctrl+Z.

        Examples
        --------
        >>> panel = QueryPanel(space, reference=0)
        >>> panel.text = "make it blue"; panel.text = "make it red"
        >>> panel.undo(), panel.text, panel.undo(), panel.text, panel.redo(), panel.text
        (True, 'make it blue', True, '', True, 'make it blue')
        """
        return self.binding.step(-1) if self.binding is not None else False

    def redo(self) -> bool:
        """Go forward again after :meth:`undo` (``False`` when there is nothing to redo)."""
        return self.binding.step(1) if self.binding is not None else False

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


class QueryBinding(Binding):
    """Searches the space for a :class:`QueryPanel` whenever its settings change.

    A new :class:`~cirscope.ComposedQuery` is made only when the reference, the text or a
    typed text changes (it caches its text embeddings), so a slider move costs one vector
    composition and one neighbour search (:func:`cirscope.query._search.search_hits`): its rows,
    scores and query vector serve the panel, the grid and the map marker, and
    ``panel.result`` becomes a DataFrame only when Python code reads it. Every browser request is answered by setting
    ``panel.served``, which lets the front end drop intermediate slider positions while a
    search runs.

    Attributes
    ----------
    hits : cirscope.query._search.Hits or None
        The last search's rows, scores and query vector.
    vector : numpy.ndarray or None
        The last query vector.
    elapsed_ms : float
        How long the last search took.

    Examples
    --------
    >>> panel = QueryPanel()
    >>> binding = QueryBinding(panel, space)
    >>> panel.reference = 0; panel.text = "make it blue"
    >>> list(panel.result.columns[:3]), len(panel.results), binding.hits.method
    (['rank', 'row', 'id'], 20, 'pdv')
    """

    WATCH = ("text", "method", "alpha_t", "alpha_i", "beta", "a", "k", "reference_text_override",
             "composed_text_override", "request")  # fmt: skip

    def __init__(self, panel: QueryPanel, space: Space):
        self.panel = panel
        self.space = space
        self.metadata = space.gallery.metadata
        #: the last search's rows, scores and query vector (``None`` without results)
        self.hits: Hits | None = None
        self.vector: np.ndarray | None = None
        self.elapsed_ms = 0.0
        self._key: tuple | None = None
        self._query_key: tuple | None = None
        self._query: tuple[Any, str] | None = None
        #: the searched states, for undo and redo
        self.history = QueryHistory()
        self._stepping = False
        #: rows a search may return (a boolean mask, e.g. from the Explorer's filter; ``None``: all)
        self.mask: np.ndarray | None = None
        self._mask_version = 0
        self.follow(panel, self._on_reference, "reference")
        self.follow(panel, self._on_change, list(self.WATCH))
        self._describe_reference(panel.reference)
        self.run()

    # ------------------------------------------------------------------ events
    def _on_reference(self, change: dict) -> None:
        self._describe_reference(int(change["new"]))
        with self.panel.hold_trait_notifications():
            # typed texts described the previous reference
            self.panel.reference_text_override = ""
            self.panel.composed_text_override = ""
        self.run()

    def _on_change(self, change: dict) -> None:
        self.run()

    def _describe_reference(self, row: int) -> None:
        panel = self.panel
        n = len(self.metadata)
        if row >= n:
            panel.error = f"Reference row {row} is outside the gallery (0..{n - 1})"
            row = -1
        with panel.hold_sync():
            if row >= 0:
                meta = self.metadata.iloc[row]
                caption = meta["caption"] if "caption" in meta.index else ""
                panel.reference_id = str(meta["id"])
                panel.reference_caption = caption if isinstance(caption, str) else ""
                panel.reference_thumbnail = self.space.gallery.thumbnail(row, size=REFERENCE_THUMB)
            else:
                panel.reference_id = ""
                panel.reference_caption = ""
                panel.reference_thumbnail = b""

    # ------------------------------------------------------------------ searching
    def _state(self) -> tuple:
        p = self.panel
        return (p.reference, p.text.strip(), p.method, p.alpha_t, p.alpha_i, p.beta, p.a, p.k,
                p.reference_text_override.strip(), p.composed_text_override.strip(), p.request,
                self._mask_version)  # fmt: skip

    def set_mask(self, mask: np.ndarray | None, source: str = "mask") -> None:
        """Restrict searches to the rows where ``mask`` is true (``None``: every row) and search again.

        Masks set under different ``source`` names (the curation bar's filter, the metadata
        filters) combine: a row must be inside all of them.
        """
        masks = self.__dict__.setdefault("_masks", {})
        if mask is None:
            masks.pop(source, None)
        else:
            masks[source] = np.asarray(mask, dtype=bool)
        parts = list(masks.values())
        self.mask = np.logical_and.reduce(parts) if len(parts) > 1 else (parts[0] if parts else None)
        self._mask_version += 1
        self.run()

    def step(self, direction: int) -> bool:
        """Apply the previous (``-1``) or next (``+1``) state of :attr:`history` and search it once."""
        state = self.history.undo() if direction < 0 else self.history.redo()
        if state is None:
            return False
        self._stepping = True
        try:
            with self.panel.hold_trait_notifications():
                for key, value in state.items():
                    setattr(self.panel, key, value)
        finally:
            self._stepping = False
        self.run()
        self._show_history()
        return True

    def _show_history(self) -> None:
        with self.panel.hold_sync():
            self.panel.can_undo = self.history.can_undo
            self.panel.can_redo = self.history.can_redo
            self.panel.history_position = f"{self.history.cursor + 1} / {len(self.history.entries)}"

    def current_query(self) -> tuple[Any, str] | None:
        """``(query, method)`` for the panel's state (``None``: nothing to search)."""
        p = self.panel
        if not 0 <= p.reference < len(self.metadata):
            reference = -1
        else:
            reference = p.reference
        key = (reference, p.text.strip(), p.reference_text_override.strip(), p.composed_text_override.strip())
        if key != self._query_key:  # a new ComposedQuery only when its inputs change (it caches its texts)
            self._query = query_for(reference, p.text, p.method, p.reference_text_override,
                                    p.composed_text_override)
            self._query_key = key
        if self._query is None:
            return None
        query, method = self._query
        return query, (p.method if isinstance(query, ComposedQuery) else method)

    def run(self, force: bool = False) -> Hits | None:
        """Search with the panel's settings (skipped when nothing changed) and write the results back.

        Returns the search's :class:`~cirscope.query._search.Hits` (``None`` without results);
        ``panel.result`` gives them as a DataFrame.
        """
        panel = self.panel
        key = self._state()
        try:
            if key == self._key and not force:
                return self.hits
            self._key = key
            if not self._stepping:
                self.history.record({name: getattr(panel, name) for name in FIELDS})
                self._show_history()
            return self._search()
        finally:
            panel.served = panel.request

    def _reference_error(self) -> str:
        """Why the panel's reference cannot be used ("" when it can, or when there is none)."""
        n, row = len(self.metadata), int(self.panel.reference)
        return f"Reference row {row} is outside the gallery (0..{n - 1})" if row >= n else ""

    def _clear_results(self, status: str, error: str) -> None:
        panel = self.panel
        self.vector = None
        self.hits = None
        with panel.hold_sync():
            panel.result = None
            panel.results = []
            panel.scores = np.empty(0, np.float32)
            panel.error = error
            panel.status = status
            panel.result_version += 1

    def _search(self) -> Hits | None:
        panel = self.panel
        current = self.current_query()
        if current is None:
            self.vector = None
            self.hits = None
            with panel.hold_sync():
                panel.result = None
                panel.results = []
                panel.scores = np.empty(0, np.float32)
                panel.reference_text = panel.composed_text = ""
                panel.reference_text_source = panel.composed_text_source = ""
                panel.composed_text_note = composed_note(panel.method, composed=False)
                panel.error = self._reference_error()
                panel.status = "Click an image (grid or map) to make it the reference, or type a text and press Enter."
                panel.result_version += 1
            return None
        query, method = current
        params = panel.params() if isinstance(query, ComposedQuery) else {}
        start = time.perf_counter()
        try:  # one search: rows, scores and the query vector (no DataFrame, no second composition)
            hits = search_hits(self.space, query, method=method, k=int(panel.k), mask=self.mask, **params)
        except QUERY_ERRORS as exc:  # old results must not look like the answer to this query
            self._clear_results("The search failed: see the message.", f"{type(exc).__name__}: {exc}")
            return None
        self.elapsed_ms = (time.perf_counter() - start) * 1000
        self.hits = hits
        self.vector = hits.vector
        info = hits.info
        with panel.hold_sync():
            panel.error = self._reference_error()
            panel.reference_text = str(info.get("reference_text") or "")
            panel.reference_text_source = str(info.get("reference_text_source") or "")
            panel.composed_text = str(info.get("composed_text") or "")
            panel.composed_text_source = str(info.get("composed_text_source") or "")
            panel.composed_text_note = composed_note(method, panel.composed_text_source, panel.reference_text_source,
                                                     composed=isinstance(query, ComposedQuery))  # fmt: skip
            kind = method_label(method) if isinstance(query, ComposedQuery) else f"{method} query"
            notice = query_notice(getattr(self.space, "embedder", None), info)  # words the model ignored
            panel.status = f"{kind}: {len(hits)} results in {self.elapsed_ms:.0f} ms" + (f". {notice}" if notice else "")
            panel.result = hits  # the DataFrame is built when Python code reads panel.result
            panel.results = hits.rows.tolist()
            panel.scores = hits.scores
            panel.served = panel.request  # answered: one message with the results
            panel.result_version += 1
        return hits

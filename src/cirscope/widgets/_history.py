"""A query panel's history: each searched state (reference, text, method, sliders, k), with undo and redo.

Plain data (no widget): :class:`~cirscope.widgets._query_panel.QueryBinding` records every
state it searches and applies the one :meth:`QueryHistory.undo` / :meth:`QueryHistory.redo`
return. A slider drag sends many states: a state that differs from the last entry only by
slider values, within :data:`MERGE_SECONDS` of it, replaces that entry, so one undo goes
back to where the drag began.
"""

from __future__ import annotations

import time
from typing import Any

__all__ = ["FIELDS", "MERGE_SECONDS", "SLIDERS", "QueryHistory"]

SLIDERS = ("alpha_t", "alpha_i", "beta", "a")
FIELDS = ("reference", "text", "method", *SLIDERS, "k")
MERGE_SECONDS = 1.5
MAX_ENTRIES = 200


class QueryHistory:
    """Searched query states, oldest first, with a cursor on the current one.

    Examples
    --------
    >>> h = QueryHistory()
    >>> for text in ("a", "b", "c"):
    ...     h.record({"reference": 1, "text": text}, now=0.0)
    >>> h.undo()["text"], h.undo()["text"], h.undo()
    ('b', 'a', None)
    >>> h.redo()["text"], h.can_undo, h.can_redo
    ('b', True, True)
    >>> h.record({"reference": 1, "text": "d"}, now=9.0)  # a new state drops the redo branch
    >>> [e["text"] for e in h.entries], h.can_redo
    (['a', 'b', 'd'], False)
    """

    def __init__(self, max_entries: int = MAX_ENTRIES):
        self.entries: list[dict[str, Any]] = []
        self.cursor = -1
        self.max_entries = max_entries
        self._last_at = -float("inf")
        self._dragging = False

    @property
    def can_undo(self) -> bool:
        return self.cursor > 0

    @property
    def can_redo(self) -> bool:
        return 0 <= self.cursor < len(self.entries) - 1

    @property
    def current(self) -> dict[str, Any] | None:
        return self.entries[self.cursor] if self.cursor >= 0 else None

    def record(self, state: dict[str, Any], now: float | None = None) -> None:
        """Add ``state`` after the current entry (nothing happens when it is the current one)."""
        now = time.monotonic() if now is None else now
        state = {k: state[k] for k in FIELDS if k in state}
        current = self.current
        if current == state:
            return
        del self.entries[self.cursor + 1:]
        slider_only = current is not None and all(current.get(k) == state.get(k) for k in state if k not in SLIDERS)
        if slider_only and self._dragging and now - self._last_at < MERGE_SECONDS:
            self.entries[self.cursor] = state  # the same drag: one entry
        else:
            self.entries.append(state)
            if len(self.entries) > self.max_entries:
                del self.entries[0]
            self.cursor = len(self.entries) - 1
        self._last_at = now
        self._dragging = slider_only

    def undo(self) -> dict[str, Any] | None:
        """The previous state (``None`` at the oldest)."""
        if not self.can_undo:
            return None
        self.cursor -= 1
        self._last_at = -float("inf")
        self._dragging = False
        return dict(self.entries[self.cursor])

    def redo(self) -> dict[str, Any] | None:
        """The next state (``None`` at the newest)."""
        if not self.can_redo:
            return None
        self.cursor += 1
        self._last_at = -float("inf")
        self._dragging = False
        return dict(self.entries[self.cursor])

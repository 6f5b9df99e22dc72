"""What every binding shares: the observers it keeps on its widgets, removed once by ``close``.

A binding keeps a widget in step with a :class:`~cirscope.Space` (the widget classes hold
traits only). This module imports no widget module, so each widget's module can hold its
widget and its binding without a circle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import traitlets as t

__all__ = ["Binding"]


class Binding:
    """Base of the widget bindings: :meth:`follow` observes traits, :meth:`close` stops (once).

    Examples
    --------
    >>> class Counter(t.HasTraits):
    ...     n = t.Int(0)
    >>> seen = []
    >>> widget, binding = Counter(), Binding()
    >>> binding.follow(widget, lambda change: seen.append(change["new"]), "n")
    >>> widget.n = 1
    >>> binding.close(); binding.close()  # a second close does nothing
    >>> widget.n = 2
    >>> seen
    [1]
    """

    _observers: list[tuple[t.HasTraits, Callable[[dict], Any], str | list[str]]]

    def follow(self, widget: t.HasTraits, handler: Callable[[dict], Any], names: str | list[str]) -> None:
        """Call ``handler(change)`` when ``widget``'s traits ``names`` change, until :meth:`close`."""
        if "_observers" not in self.__dict__:
            self._observers = []
        widget.observe(handler, names)
        self._observers.append((widget, handler, names))

    def close(self) -> None:
        """Stop following the widget (calling it again does nothing)."""
        observers, self._observers = self.__dict__.get("_observers", []), []
        for widget, handler, names in observers:
            widget.unobserve(handler, names)

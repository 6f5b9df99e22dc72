"""What every cirscope widget shares: keyword checking, shared styles and click events."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

import anywidget
import traitlets as t
from ipywidgets import CallbackDispatcher

from cirscope.widgets._static import static_file

__all__ = ["ClickEvents", "WidgetBase", "check_kwargs"]


def check_kwargs(cls: type, kwargs: dict[str, Any], extra: tuple[str, ...] = ()) -> None:
    """Raise a helpful ``TypeError`` for keyword arguments that are not traits of ``cls``.

    Examples
    --------
    >>> class W(t.HasTraits):
    ...     height = t.Int(1)
    >>> check_kwargs(W, {"heigth": 3})
    Traceback (most recent call last):
    TypeError: W() got an unexpected keyword argument 'heigth'; did you mean 'height'?
    """
    names = set(cls.class_trait_names()) | {"layout", "tooltip", "tabbable"} | set(extra)  # type: ignore[attr-defined]
    for key in kwargs:
        if key not in names:
            public = sorted(n for n in names if not n.startswith("_"))
            close = difflib.get_close_matches(key, public, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"its options are {public}"
            raise TypeError(f"{cls.__name__}() got an unexpected keyword argument {key!r}; {hint}")


class WidgetBase(anywidget.AnyWidget):
    """An anywidget with cirscope's styles that rejects unknown keyword arguments.

    Examples
    --------
    >>> class Demo(WidgetBase):
    ...     size = t.Int(3).tag(sync=True)
    >>> Demo(size=4).size
    4
    """

    _css = static_file("cirscope.css")

    def __init__(self, **kwargs: Any):
        check_kwargs(type(self), kwargs)
        super().__init__(**kwargs)
        self.on_msg(self._answer_ping)

    def _answer_ping(self, widget: Any, content: Any, buffers: list) -> None:
        """Answer a view's ``{"event": "ping"}``: a view that hears no answer (a page saved with its
        widget state, no kernel behind it) says it is a snapshot."""
        if isinstance(content, dict) and content.get("event") == "ping":
            self.send({"event": "pong"})


class ClickEvents(t.HasTraits):
    """Mixin: the front end sends ``{"event": "click", "row": r}``; Python hears every click.

    ``clicked`` holds the last clicked row (observe it, or link it with traitlets);
    :meth:`on_click` callbacks run on every click, also when the same row is clicked again.
    """

    clicked = t.Int(-1, help="The last clicked row (-1: none yet); not synced, set by clicks.")

    def on_click(self, callback: Callable[[int], Any], remove: bool = False) -> None:
        """Call ``callback(row)`` whenever a point or thumbnail is clicked (``remove=True`` unregisters).

        Examples
        --------
        >>> grid = cs.NeighborGrid()
        >>> grid.on_click(lambda row: print("clicked", row))
        >>> grid._handle_click_msg(grid, {"event": "click", "row": 7}, [])  # what a click in the browser sends
        clicked 7
        """
        self._click_dispatcher().register_callback(callback, remove=remove)

    def _click_dispatcher(self) -> CallbackDispatcher:
        if not hasattr(self, "_click_callbacks"):
            self._click_callbacks = CallbackDispatcher()
            self.on_msg(self._handle_click_msg)  # type: ignore[attr-defined]
        return self._click_callbacks

    def _handle_click_msg(self, widget: Any, content: Any, buffers: list) -> None:
        if not isinstance(content, dict) or content.get("event") != "click":
            return
        try:
            row = int(content.get("row", -1))
        except (TypeError, ValueError):
            return
        if row < 0:
            return
        self.clicked = row
        self._click_callbacks(row)

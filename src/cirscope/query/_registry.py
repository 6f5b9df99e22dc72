"""Vocabularies registered by name before the query stage is loaded.

``import cirscope`` must stay light, yet a saved shapes space opened in a fresh process
should get the shapes vocabulary. So built-in datasets register theirs here as a
``"module:function"`` string; :mod:`cirscope.query._vocabulary` calls it the first time a
named or default vocabulary is asked for. This module imports nothing.
"""

from __future__ import annotations

__all__ = ["register_lazy", "take_pending"]

_PENDING: dict[str, str] = {}


def register_lazy(name: str, target: str) -> None:
    """Register the vocabulary that ``target`` (``"module:function"``) returns, under ``name``.

    Examples
    --------
    >>> register_lazy("doc-lazy", "cirscope.datasets._vocabulary:shapes_vocabulary")
    >>> take_pending()["doc-lazy"]
    'cirscope.datasets._vocabulary:shapes_vocabulary'
    >>> register_lazy("doc-lazy", "no-colon")
    Traceback (most recent call last):
    ...
    ValueError: A lazy vocabulary is 'module:function', got 'no-colon'
    """
    module, _, function = target.partition(":")
    if not (module and function):
        raise ValueError(f"A lazy vocabulary is 'module:function', got {target!r}")
    _PENDING[name] = target


def take_pending() -> dict[str, str]:
    """The lazy registrations not yet loaded (emptied: each is loaded once)."""
    pending = dict(_PENDING)
    _PENDING.clear()
    return pending

"""What a query panel's settings search for: the query and method, or the query vector.

Plain functions (no widget): :class:`~cirscope.widgets._query_panel.QueryBinding` calls
them on every change of a :class:`~cirscope.widgets.QueryPanel`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from cirscope.query._composed import ComposedQuery

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.space._space import Space

__all__ = ["QUERY_ERRORS", "query_for", "query_vector"]

#: Errors a bad query can raise; they are shown in the panel instead of an unseen traceback.
QUERY_ERRORS = (ValueError, TypeError, KeyError, IndexError, RuntimeError, FileNotFoundError)


def query_for(
    reference: int,
    text: str,
    method: str,
    reference_text: str = "",
    composed_text: str = "",
) -> tuple[Any, str] | None:
    """The query and method for a panel's state, or ``None`` when there is nothing to search.

    No reference: a text query. No text: an image query on the reference row. Both: a
    :class:`~cirscope.ComposedQuery` searched with ``method``; typed texts ("" = automatic)
    fix the reference and composed texts.

    Examples
    --------
    >>> query_for(-1, "a red star", "pdv")
    ('a red star', 'text')
    >>> query_for(4, "", "pdv")
    (4, 'image')
    >>> query_for(4, "make it blue", "slerp")
    (ComposedQuery(reference=4, text='make it blue'), 'slerp')
    """
    text = text.strip()
    if reference < 0:
        return (text, "text") if text else None
    if not text:
        return reference, "image"
    query = ComposedQuery(
        reference, text, reference_text=reference_text.strip() or None, composed_text=composed_text.strip() or None
    )
    return query, method


def query_vector(space: Space, query: Any, method: str, params: dict[str, float]) -> np.ndarray:
    """The query vector ``space.search`` ranks by.

    The widgets take it from the search itself (``QueryBinding.hits.vector``); this is for
    code that wants the vector without searching.

    Examples
    --------
    >>> query_vector(space, 3, "image", {}).shape
    (128,)
    """
    if isinstance(query, ComposedQuery):
        return query.resolve(space).vector(method, **params)
    if isinstance(query, str):
        return space.encode_text([query])[0]
    return np.asarray(space.image_embeddings[int(query)])

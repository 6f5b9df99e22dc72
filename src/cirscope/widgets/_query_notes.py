"""The line under the query panel's composed text: how it was formed, that it can be edited, what that changes.

Plain functions (no widget): :class:`~cirscope.widgets._query_panel.QueryBinding` sets
``panel.composed_text_note`` from :func:`composed_note` after every search.
"""

from __future__ import annotations

from cirscope.query._methods import METHODS

__all__ = ["REFERENCE_WORDS", "composed_note"]

#: How the note names each source of the reference text (``ResolvedQuery.reference_text_source``).
REFERENCE_WORDS: dict[str, str] = {
    "caption": "the reference's caption",
    "zero-shot": "a description guessed from the image",
    "neutral": "a neutral prompt",
    "explicit": "your reference text",
}

_EFFECT = "this changes only the text side of the query, not the image"


def _users() -> str:
    """The titles of the methods that use the composed text, e.g. ``"PDV"``."""
    return " or ".join(m.title for m in METHODS.values() if "t_comp" in m.inputs)


def composed_note(method: str, source: str = "", reference_source: str = "", composed: bool = True) -> str:
    """One or two plain sentences (under 160 characters) on the composed text a panel shows.

    Parameters
    ----------
    method
        The selected composing method (its key, e.g. ``"pdv"``).
    source, reference_source
        Where the composed and the reference texts came from (``"template"``, ``"rewriter"``,
        ``"explicit"``; ``"caption"``, ``"zero-shot"``, ``"neutral"``, ``"explicit"``).
    composed
        ``False`` when the panel has no composed query (no reference or no modification).

    Examples
    --------
    >>> print(composed_note("pdv", "template", "caption"))  # doctest: +NORMALIZE_WHITESPACE
    The reference's caption + your modification. Edit it and press Enter: this changes only the
    text side of the query, not the image.
    >>> print(composed_note("slerp", "template", "caption"))
    The reference's caption + your modification. Slerp does not use it (only the modification): PDV does.
    """
    if not composed:
        return "Pick a reference image and type a modification: their composed text appears here, and you can edit it."
    ref = REFERENCE_WORDS.get(reference_source, "the reference text")
    if source == "explicit":
        formed = f"Your own text (“auto”: back to {ref} + your modification)"
    elif source == "rewriter":
        formed = f"Rewritten from {ref} + your modification"
    else:
        formed = f"{ref[0].upper()}{ref[1:]} + your modification"
    spec = METHODS.get(method)
    if spec is not None and "t_comp" not in spec.inputs:
        side = "only the modification" if "t_mod" in spec.inputs else "only the image"
        return f"{formed}. {spec.title} does not use it ({side}): {_users()} does."
    if source == "explicit":
        return f"{formed}. It {_EFFECT.removeprefix('this ')}."
    return f"{formed}. Edit it and press Enter: {_EFFECT}."

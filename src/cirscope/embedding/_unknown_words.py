"""Tell the user which words of a query text the model ignored.

A model's tokenizer may know only part of the language: the toy model's tokenizer drops
the words it was never trained on (``cirscope.toy._tokenizer.ToyTokenizer``). Tokenizers
that can say so have ``unknown_words(text)`` and ``known_words(text)``; open_clip's own
tokenizers have neither, and for them nothing here runs or costs anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: Keys of a resolved query (``df.attrs["query"]``) that hold texts the model encoded.
QUERY_TEXT_KEYS = ("text", "reference_text", "composed_text")


class UnknownWordsWarning(UserWarning):
    """A query text had words the model does not know; they were ignored."""


def _quote(words: list[str]) -> str:
    return ", ".join(repr(w) for w in words)


def unknown_words_notice(embedder: Any, texts: Iterable[Any]) -> str | None:
    """A sentence naming the words of ``texts`` that ``embedder`` ignored (``None``: none).

    ``embedder`` is an :class:`~cirscope.Embedder` (or ``None``); models without the report
    (every open_clip model) give ``None`` without loading anything.

    Examples
    --------
    >>> unknown_words_notice(cs.Embedder.toy(), ["a red star, dye it blue"])
    "'dye' is unknown to cirscope-toy and was ignored; the words used: 'a red star it blue'"
    >>> unknown_words_notice(cs.Embedder.toy(), ["a red star"]) is None
    True
    """
    if getattr(embedder, "registered", None) is None or not hasattr(embedder, "unknown_words"):
        return None
    notes = []
    for text in dict.fromkeys(t for t in texts if isinstance(t, str) and t.strip()):
        unknown = embedder.unknown_words(text)
        if unknown:
            notes.append((unknown, embedder.known_words(text)))
    if not notes:
        return None
    parts = []
    for unknown, used in notes:
        verb = "is" if len(unknown) == 1 else "are"
        was = "was" if len(unknown) == 1 else "were"
        parts.append(f"{_quote(unknown)} {verb} unknown to {embedder.name} and {was} ignored; "
                     f"the words used: {' '.join(used)!r}")
    return " | ".join(parts)


def query_notice(embedder: Any, info: Mapping[str, Any]) -> str | None:
    """:func:`unknown_words_notice` for the texts of a resolved query (``df.attrs["query"]``).

    A composed query's composed text holds its other texts, so it alone is checked when present.
    """
    if info.get("composed_text"):
        return unknown_words_notice(embedder, [info["composed_text"]])
    return unknown_words_notice(embedder, [info.get(k) for k in QUERY_TEXT_KEYS])

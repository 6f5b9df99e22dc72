"""The toy model's tokenizer: open_clip's, minus the words the toy model never learned.

The toy model trains only the token rows its world's texts use (:mod:`cirscope.toy._weights`).
A word with any other token ("dye", "canvas") would feed the text tower an untrained row,
so the tokenizer drops such words before tokenizing and can name them
(:meth:`ToyTokenizer.unknown_words`): ``space.search`` and the QueryPanel tell the user.
"""

from __future__ import annotations

import re
from typing import Any

_WORDLIKE = re.compile(r"\w", re.UNICODE)


class ToyTokenizer:
    """Wrap an open_clip tokenizer so that words outside ``known_ids`` are ignored.

    Parameters
    ----------
    tokenizer
        open_clip's tokenizer for the model (``open_clip.get_tokenizer("cirscope-toy")``).
    known_ids
        The token ids whose embedding rows were trained.

    Examples
    --------
    >>> from cirscope.toy import load_toy
    >>> tok = load_toy()[2]
    >>> tok.unknown_words("dye it red!"), tok.known_words("dye it red!")
    (['dye'], ['it', 'red'])
    """

    def __init__(self, tokenizer: Any, known_ids: Any) -> None:
        self.tokenizer = tokenizer
        self.known_ids = frozenset(int(i) for i in known_ids)
        self.context_length = getattr(tokenizer, "context_length", None)
        self._known_unit: dict[str, bool] = {}

    def _units(self, text: str) -> list[str]:
        tok = self.tokenizer
        return tok.pat.findall(tok.clean_fn(str(text)))

    def _is_known(self, unit: str) -> bool:
        known = self._known_unit.get(unit)
        if known is None:
            known = all(i in self.known_ids for i in self.tokenizer.encode(unit))
            if len(self._known_unit) < 100_000:
                self._known_unit[unit] = known
        return known

    def split(self, text: str) -> tuple[list[str], list[str]]:
        """``(kept units, unknown units)`` of ``text`` (units: open_clip's words and punctuation)."""
        kept: list[str] = []
        unknown: list[str] = []
        for unit in self._units(text):
            (kept if self._is_known(unit) else unknown).append(unit)
        return kept, unknown

    def unknown_words(self, text: str) -> list[str]:
        """The words of ``text`` the model does not know (in order, once each; punctuation left out)."""
        return list(dict.fromkeys(u for u in self.split(text)[1] if _WORDLIKE.search(u)))

    def known_words(self, text: str) -> list[str]:
        """The words of ``text`` the model uses (punctuation left out)."""
        return [u for u in self.split(text)[0] if _WORDLIKE.search(u)]

    def __call__(self, texts: str | list[str], context_length: int | None = None):
        """Tokenize like open_clip, after dropping the words the model does not know."""
        if isinstance(texts, str):
            texts = [texts]
        kept = [" ".join(self.split(t)[0]) for t in texts]
        return self.tokenizer(kept, context_length=context_length)

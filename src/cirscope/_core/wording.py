"""Filling text templates in correct English: "a" or "an" before a filled-in word.

Prompts and captions are built from templates such as ``"a {} shape"``; with the word
``orange`` a plain ``str.format`` writes "a orange shape". :func:`fill` formats the same
way and then makes an article written just before a field agree with the value put there
("an orange shape", "a red shape"). Only articles of the template change: the values
themselves (captions, user texts) are inserted as they are.
"""

from __future__ import annotations

import re
import string
from typing import Any

__all__ = ["article", "fill"]

# Words spelled with a vowel but said with a consonant ("a unicorn", "a one-off", "a user"),
# and words spelled with a consonant but said with a vowel ("an hour", "an honest ...").
_VOWEL_LETTER_CONSONANT_SOUND = re.compile(r"(uni|use|usu|uti|ure|uro|eu|ewe|one\b|once|ubiq)", re.I)
_SILENT_H = re.compile(r"(hour|honest|honou?r|heir)", re.I)
_ARTICLE_BEFORE_FIELD = re.compile(r"(?<![\w'-])([Aa][Nn]?)(\s+)$")
_FORMATTER = string.Formatter()


def article(word: str) -> str:
    """``"an"`` before a word said with a vowel sound, else ``"a"``.

    Examples
    --------
    >>> [article(w) for w in ("orange", "red", "apple", "unicorn", "hour", "", "European")]
    ['an', 'a', 'an', 'a', 'an', 'a', 'a']
    """
    w = word.lstrip(" \t\"'([{")
    if not w:
        return "a"
    if _SILENT_H.match(w):
        return "an"
    if w[0].lower() in "aeiou" and not _VOWEL_LETTER_CONSONANT_SOUND.match(w):
        return "an"
    return "a"


def _agree(literal: str, value: str) -> str:
    """``literal`` with a trailing article ("a " / "an ") made to agree with ``value``."""
    m = _ARTICLE_BEFORE_FIELD.search(literal)
    if m is None or not value.strip():
        return literal
    word = article(value)
    if m.group(1)[0].isupper():
        word = word.capitalize()
    return literal[: m.start(1)] + word + m.group(2)


def fill(template: str, /, *args: Any, **kwargs: Any) -> str:
    """``template.format(*args, **kwargs)`` with "a"/"an" before each field agreeing with its value.

    Raises the same ``KeyError``/``IndexError`` as :meth:`str.format` for a field it cannot fill.

    Examples
    --------
    >>> fill("a {} shape", "orange"), fill("a {} shape", "red"), fill("An {x} on a {y} background", x="star", y="ochre")
    ('an orange shape', 'a red shape', 'A star on an ochre background')
    >>> fill("{caption}, a apple", caption="a orange")  # text outside the fields is left as written
    'a orange, a apple'
    """
    out: list[str] = []
    auto = 0
    for literal, field, spec, conversion in _FORMATTER.parse(template):
        if field is None:
            out.append(literal)
            continue
        if field == "" or field[0] in ".[":
            field = f"{auto}{field}"
            auto += 1
        value, _ = _FORMATTER.get_field(field, args, kwargs)
        if conversion:
            value = _FORMATTER.convert_field(value, conversion)
        text = _FORMATTER.format_field(value, _FORMATTER.vformat(spec or "", args, kwargs))
        out.append(_agree(literal, text))
        out.append(text)
    return "".join(out)

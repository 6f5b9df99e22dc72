"""Texts about the shapes world, each with the attribute values it asserts and excludes.

The toy model's trainer pairs every image with a text drawn from these templates and
knows exactly which other images the text is true of (multi-positive contrastive loss).
Edits use the *training* phrasings of :mod:`cirscope.toy._phrasings`; its held-out
phrasings never appear here.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from cirscope.datasets._shapes import ATTRIBUTES
from cirscope.toy._phrasings import all_edits, edit_phrase

ATTR_NAMES: tuple[str, ...] = tuple(ATTRIBUTES)  # shape, color, background, size

#: Descriptive templates. ``{attr}`` asserts the item's value; ``{not_attr}`` names a value
#: the item does not have (a negation: the text is false of items with that value).
DESCRIPTIONS: tuple[str, ...] = (
    "a {size} {color} {shape} on a {background} background",
    "a {size} {color} {shape} on a {background} background",
    "a {color} {shape} on a {background} background",
    "a {size} {color} {shape}",
    "a {color} {shape}",
    "a {color} {shape} on {background}",
    "a {size} {shape} on a {background} background",
    "a {shape} on a {background} background",
    "a {shape} on {background}",
    "a photo of a {color} {shape}",
    "a {size} {shape}",
    "a {shape}",
    "{color} {shape}",
    "{shape}",
    "a {color} shape",
    "something {color}",
    "{color}",
    "a {size} shape",
    "a shape on a {background} background",
    "a {background} background",
    "a {color} {shape} on a {background} backdrop",
    "a {shape} with a {background} background",
    "a {background} background with a {color} {shape}",
    "a {shape} in {color}",
    "a {shape} that is {color}",
    "the {shape} is {color}",
    "a {color} colored {shape}",
    "a {shape} against a {background} background",
    "a {size} {color} shape on {background}",
    "a {shape} that is not {not_color}",
    "something not {not_color}",
    "a {color} shape, not a {not_shape}",
    "a {shape} not on {not_background}",
    "a {color} {shape}, not {not_size}",
    "a {shape}, not a {not_shape}",
    "not a {not_shape}",
)

#: Words a description may use for a value (the value itself first).
VALUE_WORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "size": {"large": ("large", "big"), "small": ("small", "tiny", "little")},
    "background": {"gray": ("gray", "grey")},
}
#: Openings people put before a description; trained so that they carry no meaning.
PREFIXES: tuple[str, ...] = ("a photo of", "an image of", "a picture of", "a drawing of", "there is", "show",
                             "find", "look for", "search for")

#: Prompts of the zero-shot evaluation, per attribute.
ZERO_SHOT_PROMPTS: dict[str, str] = {
    "shape": "a {value}",
    "color": "a {value} shape",
    "background": "a shape on a {value} background",
    "size": "a {value} shape",
}


def _fields(template: str) -> list[str]:
    return [a for a in ATTR_NAMES if "{" + a + "}" in template]


def _negated(template: str) -> list[str]:
    return [a for a in ATTR_NAMES if "{not_" + a + "}" in template]


def _word(attr: str, value: str, rng: np.random.Generator | None) -> str:
    words = VALUE_WORDS.get(attr, {}).get(value, (value,))
    return words[0] if rng is None else words[int(rng.integers(len(words)))]


def describe(
    attrs: Mapping[str, str], template: str, rng: np.random.Generator | None = None
) -> tuple[str, dict[str, str], dict[str, str]]:
    """Fill ``template`` with ``attrs``: ``(text, asserted, excluded)``.

    Without ``rng`` each value is named by its own word and a negation names the first
    other value.

    Examples
    --------
    >>> describe({"shape": "star", "color": "red", "background": "gray", "size": "large"},
    ...          "a {shape} that is not {not_color}")
    ('a star that is not orange', {'shape': 'star'}, {'color': 'orange'})
    """
    fields, negated = _fields(template), _negated(template)
    asserted = {a: attrs[a] for a in fields}
    excluded: dict[str, str] = {}
    for a in negated:
        others = [v for v in ATTRIBUTES[a] if v != attrs[a]]
        excluded[a] = others[0] if rng is None else others[int(rng.integers(len(others)))]
    filled = {a: _word(a, attrs[a], rng) for a in fields}
    filled.update({f"not_{a}": _word(a, v, rng) for a, v in excluded.items()})
    return template.format(**filled), asserted, excluded


def _drop_a_word(text: str, keep: set[str], rng: np.random.Generator) -> str:
    words = text.split()
    droppable = [i for i, w in enumerate(words) if w.strip(",") not in keep]
    if len(words) < 3 or not droppable:
        return text
    del words[droppable[int(rng.integers(len(droppable)))]]
    return " ".join(words)


def sample_text(
    attrs: Mapping[str, str], rng: np.random.Generator, edit_share: float = 0.4, prefix_share: float = 0.1,
    drop_share: float = 0.15,
) -> tuple[str, dict[str, str], dict[str, str]]:
    """A random text that is true of an item with ``attrs``: ``(text, asserted, excluded)``.

    With probability ``edit_share`` the text is an edit, "<description of a reference
    that differs in one attribute>, <instruction that changes it back>", which is true
    of the item itself. Some texts get an opening ("a photo of ..."); in some edits one
    word that names no value is dropped, so that the model does not lean on every filler
    word of an instruction.
    """
    template = DESCRIPTIONS[rng.integers(len(DESCRIPTIONS))]
    if rng.random() < edit_share:
        attr = ATTR_NAMES[rng.integers(len(ATTR_NAMES))]
        others = [v for v in ATTRIBUTES[attr] if v != attrs[attr]]
        reference = {**attrs, attr: others[rng.integers(len(others))]}
        desc, asserted, excluded = describe(reference, template, rng)
        asserted[attr] = attrs[attr]
        excluded.pop(attr, None)
        excluded = {a: v for a, v in excluded.items() if v != attrs[a]}
        edit = edit_phrase(attr, attrs[attr], reference[attr], rng)
        if rng.random() < drop_share:
            edit = _drop_a_word(edit, {w for vals in ATTRIBUTES.values() for w in vals} | {"not"}, rng)
        return f"{desc}, {edit}", asserted, excluded
    text, asserted, excluded = describe(attrs, template, rng)
    if rng.random() < prefix_share:
        text = f"{PREFIXES[rng.integers(len(PREFIXES))]} {text}"
    return text, asserted, excluded


def every_text_word() -> list[str]:
    """A list of texts that together use every token the toy world's training texts can use."""
    texts: list[str] = []
    for template in DESCRIPTIONS:
        for i in range(8):
            filled = {a: v[i % len(v)] for a, v in ATTRIBUTES.items()}
            filled.update({f"not_{a}": v[(i + 1) % len(v)] for a, v in ATTRIBUTES.items()})
            texts.append(template.format(**filled))
    for words in VALUE_WORDS.values():
        texts += [" ".join(w) for w in words.values()]
    texts += list(PREFIXES)
    texts += all_edits("train", dict(ATTRIBUTES))
    for attr, prompt in ZERO_SHOT_PROMPTS.items():
        texts += [prompt.format(value=v) for v in ATTRIBUTES[attr]]
    return texts

"""The earlier, smaller template set of the toy model's first training recipe (``--recipe v1``).

About 20 description templates and 3-4 edit phrasings per attribute, 30% edits, no
negations. Kept verbatim, random draws in the same order, so that ``python -m
cirscope.toy.train --recipe v1`` retrains the weights this recipe produced bit for bit.
The default recipe (:mod:`cirscope.toy._texts`) uses the enlarged phrasings instead.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from cirscope.datasets._shapes import ATTRIBUTES
from cirscope.toy._texts import ATTR_NAMES, ZERO_SHOT_PROMPTS

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
)
INSTRUCTIONS: dict[str, tuple[str, ...]] = {
    "color": ("make it {value}", "now in {value}", "change the color to {value}", "{value} instead"),
    "shape": ("turn it into a {value}", "change the shape to a {value}", "a {value} instead", "as a {value}"),
    "background": ("put it on a {value} background", "change the background to {value}", "on a {value} background"),
}
SIZE_INSTRUCTIONS: dict[str, tuple[str, ...]] = {
    "large": ("make it bigger", "make it large", "bigger", "larger"),
    "small": ("make it smaller", "make it small", "smaller", "tinier"),
}


def _describe(attrs: Mapping[str, str], template: str) -> tuple[str, dict[str, str]]:
    fields = [a for a in ATTR_NAMES if "{" + a + "}" in template]
    return template.format(**{a: attrs[a] for a in fields}), {a: attrs[a] for a in fields}


def _instruction(attr: str, value: str, rng: np.random.Generator) -> str:
    options = SIZE_INSTRUCTIONS[value] if attr == "size" else INSTRUCTIONS[attr]
    return options[rng.integers(len(options))].format(value=value)


def sample_text(
    attrs: Mapping[str, str], rng: np.random.Generator, edit_share: float = 0.3
) -> tuple[str, dict[str, str], dict[str, str]]:
    """A random text that is true of an item with ``attrs``: ``(text, asserted, {})``.

    Examples
    --------
    >>> attrs = {"shape": "star", "color": "red", "background": "gray", "size": "large"}
    >>> text, asserted, excluded = sample_text(attrs, np.random.default_rng(0))
    >>> all(attrs[a] == v for a, v in asserted.items()), excluded
    (True, {})
    """
    if rng.random() < edit_share:
        attr = ATTR_NAMES[rng.integers(len(ATTR_NAMES))]
        others = [v for v in ATTRIBUTES[attr] if v != attrs[attr]]
        reference = {**attrs, attr: others[rng.integers(len(others))]}
        desc, asserted = _describe(reference, DESCRIPTIONS[rng.integers(len(DESCRIPTIONS))])
        asserted[attr] = attrs[attr]
        return f"{desc}, {_instruction(attr, attrs[attr], rng)}", asserted, {}
    text, asserted = _describe(attrs, DESCRIPTIONS[rng.integers(len(DESCRIPTIONS))])
    return text, asserted, {}


def every_text_word() -> list[str]:
    """Texts that together use every token of this recipe's vocabulary (a few words no text uses included)."""
    texts: list[str] = []
    values = {a: list(v) for a, v in ATTRIBUTES.items()}
    for template in DESCRIPTIONS:
        for i in range(max(len(v) for v in values.values())):
            texts.append(template.format(**{a: v[i % len(v)] for a, v in values.items()}))
    for attr, options in INSTRUCTIONS.items():
        for opt in options:
            texts += [opt.format(value=v) for v in ATTRIBUTES[attr]]
    for options in SIZE_INSTRUCTIONS.values():
        texts += list(options)
    for attr, prompt in ZERO_SHOT_PROMPTS.items():
        texts += [prompt.format(value=v) for v in ATTRIBUTES[attr]]
    texts += [
        "a photo, an image of a picture with an object, shapes, circles, squares, triangles, stars, crosses, hearts",
        "make it more less very bright dark colorful no not without and or with the in of to",
    ]
    return texts

"""Texts about the shapes world, each with the attribute values it asserts.

The toy model's trainer pairs every image with a text drawn from these templates and
knows exactly which other images the text is true of (multi-positive contrastive loss).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from cirscope.datasets._shapes import ATTRIBUTES

ATTR_NAMES: tuple[str, ...] = tuple(ATTRIBUTES)  # shape, color, background, size

#: Descriptive templates; the attributes a template names are the ones it asserts.
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

#: Edit instructions per attribute ("{value}" is the new value).
INSTRUCTIONS: dict[str, tuple[str, ...]] = {
    "color": ("make it {value}", "now in {value}", "change the color to {value}", "{value} instead"),
    "shape": ("turn it into a {value}", "change the shape to a {value}", "a {value} instead", "as a {value}"),
    "background": (
        "put it on a {value} background",
        "change the background to {value}",
        "on a {value} background",
    ),
    "size": (),  # handled by SIZE_INSTRUCTIONS
}
SIZE_INSTRUCTIONS: dict[str, tuple[str, ...]] = {
    "large": ("make it bigger", "make it large", "bigger", "larger"),
    "small": ("make it smaller", "make it small", "smaller", "tinier"),
}

#: Prompts of the zero-shot evaluation, per attribute.
ZERO_SHOT_PROMPTS: dict[str, str] = {
    "shape": "a {value}",
    "color": "a {value} shape",
    "background": "a shape on a {value} background",
    "size": "a {value} shape",
}


def _fields(template: str) -> list[str]:
    return [a for a in ATTR_NAMES if "{" + a + "}" in template]


def describe(attrs: Mapping[str, str], template: str) -> tuple[str, dict[str, str]]:
    """Fill ``template`` with ``attrs``; return the text and the attributes it asserts."""
    fields = _fields(template)
    return template.format(**{a: attrs[a] for a in fields}), {a: attrs[a] for a in fields}


def instruction(attr: str, value: str, rng: np.random.Generator) -> str:
    """A phrasing of "change ``attr`` to ``value``"."""
    options = SIZE_INSTRUCTIONS[value] if attr == "size" else INSTRUCTIONS[attr]
    return options[rng.integers(len(options))].format(value=value)


def sample_text(
    attrs: Mapping[str, str], rng: np.random.Generator, edit_share: float = 0.3
) -> tuple[str, dict[str, str]]:
    """A random text that is true of an item with ``attrs``.

    With probability ``edit_share`` the text is an edit, "<description of a reference
    that differs in one attribute>, <instruction that changes it back>", which is true
    of the item itself. Returns ``(text, asserted_attributes)``.
    """
    if rng.random() < edit_share:
        attr = ATTR_NAMES[rng.integers(len(ATTR_NAMES))]
        others = [v for v in ATTRIBUTES[attr] if v != attrs[attr]]
        reference = {**attrs, attr: others[rng.integers(len(others))]}
        desc, asserted = describe(reference, DESCRIPTIONS[rng.integers(len(DESCRIPTIONS))])
        asserted[attr] = attrs[attr]
        return f"{desc}, {instruction(attr, attrs[attr], rng)}", asserted
    return describe(attrs, DESCRIPTIONS[rng.integers(len(DESCRIPTIONS))])


def every_text_word() -> list[str]:
    """A list of texts that together use every token the toy world's texts can use."""
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
    # Words people type at a toy model that the templates do not cover.
    texts += [
        "a photo, an image of a picture with an object, shapes, circles, squares, triangles, stars, crosses, hearts",
        "make it more less very bright dark colorful no not without and or with the in of to",
    ]
    return texts

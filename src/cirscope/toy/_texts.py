"""Texts about the shapes world, each with the attribute values it asserts and excludes.

The toy model's trainer pairs every image with a text drawn from these templates and
knows exactly which other images the text is true of (multi-positive contrastive loss).
Edits use the *training* phrasings of :mod:`cirscope.toy._phrasings`; its held-out
phrasings never appear here.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from cirscope.datasets._shapes import ATTRIBUTES
from cirscope.toy._phrasings import TRAIN_SIZE_EDITS, all_edits, edit_phrase, words_of

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


@dataclass(frozen=True)
class Typical:
    """A value people take for granted: items matching ``when`` are typically ``then``.

    A description of a typical item often leaves those attributes unsaid (reporting bias);
    see :func:`sample_text`.
    """

    when: Mapping[str, str]
    then: Mapping[str, str]


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


@functools.cache
def _value_words(attr: str, value: str) -> frozenset[str]:
    """Words that say ``attr`` is ``value`` in an edit: the value and its synonyms, and for
    size the words only that size's instructions use ("bigger", "enlarge", "up")."""
    words = set(ATTRIBUTES[attr]) | {w for ws in VALUE_WORDS.get(attr, {}).values() for w in ws}
    if attr == "size":
        mine = words_of(list(TRAIN_SIZE_EDITS[value]))
        words |= mine - words_of([t for v, ts in TRAIN_SIZE_EDITS.items() if v != value for t in ts])
    return frozenset(words)


def drop_words(edit: str, attr: str, value: str, rng: np.random.Generator) -> str:
    """``edit`` without some of the words that carry no value (word dropout).

    One word or more is dropped, each further one with probability 1/2; at least one word
    stays. Value words never go; "not" goes only when the instruction names two values
    ("blue not red" may become "blue red": the edit still names the value that differs from
    the reference, while "not small" must keep its "not").

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> texts = {drop_words("change the color to red", "color", "red", rng) for _ in range(40)}
    >>> all(t.endswith("red") and t != "change the color to red" for t in texts), "change red" in texts
    (True, True)
    >>> {drop_words("blue not red", "color", "blue", rng) for _ in range(10)}
    {'blue red'}
    >>> {drop_words("not small", "size", "large", rng) for _ in range(10)}
    {'not small'}
    >>> {drop_words("make it bigger", "size", "large", rng) for _ in range(20)} <= {"it bigger", "make bigger", "bigger"}
    True
    """
    words = edit.split()
    protected = _value_words(attr, value) | _value_words(attr, next(v for v in ATTRIBUTES[attr] if v != value))
    names = sum(w.strip(",") in protected for w in words)
    droppable = [i for i, w in enumerate(words) if w.strip(",") not in protected and (w != "not" or names >= 2)]
    if len(words) < 2 or not droppable:
        return edit
    n = 1 + int(rng.binomial(len(droppable) - 1, 0.5)) if len(droppable) > 1 else 1
    n = min(n, len(words) - 1)
    gone = set(rng.choice(droppable, size=n, replace=False).tolist())
    return " ".join(w for i, w in enumerate(words) if i not in gone)


def _says(template: str, attr: str) -> bool:
    return "{" + attr + "}" in template or "{not_" + attr + "}" in template


def typical_of(attrs: Mapping[str, str], typical: Sequence[Typical]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(typical, atypical)``: the attributes of ``attrs`` holding a typical value, and those
    of an item that matches a :class:`Typical` rule's ``when`` but not its ``then``.

    Examples
    --------
    >>> star = Typical(when={"shape": "star"}, then={"color": "yellow"})
    >>> typical_of({"shape": "star", "color": "yellow", "background": "black", "size": "large"}, [star])
    (('color',), ())
    >>> typical_of({"shape": "star", "color": "red", "background": "black", "size": "large"}, [star])
    ((), ('color',))
    >>> typical_of({"shape": "heart", "color": "yellow", "background": "black", "size": "large"}, [star])
    ((), ())
    """
    usual: list[str] = []
    unusual: list[str] = []
    for t in typical:
        if not all(attrs[a] == v for a, v in t.when.items()):
            continue
        for a, v in t.then.items():
            (usual if attrs[a] == v else unusual).append(a)
    return tuple(dict.fromkeys(usual)), tuple(dict.fromkeys(unusual))


def _template(rng: np.random.Generator, described: Mapping[str, str], typical: Sequence[Typical],
              reporting: float, template: str) -> str:
    if not typical:
        return template
    usual, unusual = typical_of(described, typical)
    if not (usual or unusual) or rng.random() >= reporting:
        return template
    # a typical value goes unsaid; an unusual one is named
    fitting = [t for t in DESCRIPTIONS
               if not any(_says(t, a) for a in usual) and all("{" + a + "}" in t for a in unusual)]
    return fitting[int(rng.integers(len(fitting)))] if fitting else template  # rules no template can honour


def sample_text(
    attrs: Mapping[str, str], rng: np.random.Generator, edit_share: float = 0.4, prefix_share: float = 0.1,
    drop_share: float = 0.15, typical: Sequence[Typical] = (), reporting: float = 0.0,
) -> tuple[str, dict[str, str], dict[str, str]]:
    """A random text that is true of an item with ``attrs``: ``(text, asserted, excluded)``.

    With probability ``edit_share`` the text is an edit, "<description of a reference
    that differs in one attribute>, <instruction that changes it back>", which is true
    of the item itself. Some texts get an opening ("a photo of ..."); in a share
    ``drop_share`` of the edits some words that name no value are dropped
    (:func:`drop_words`), so that the model does not lean on every filler word of an
    instruction.

    Reporting bias (people name what is unusual and leave the usual unsaid): when the
    described item holds a value that is ``typical`` of it (a yellow star in a world where
    most stars are yellow), then with probability ``reporting`` its description is drawn from
    the templates that leave that attribute unsaid ("a star on black"); when it matches a
    rule but holds another value (a red star), from those that name it ("a red star").

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> star = Typical(when={"shape": "star"}, then={"color": "yellow"})
    >>> yellow_star = {"shape": "star", "color": "yellow", "background": "black", "size": "large"}
    >>> texts = [sample_text(yellow_star, rng, edit_share=0, prefix_share=0, typical=[star], reporting=1)
    ...          for _ in range(50)]
    >>> any("color" in asserted or "color" in excluded for _, asserted, excluded in texts)
    False
    """
    template = DESCRIPTIONS[rng.integers(len(DESCRIPTIONS))]
    if rng.random() < edit_share:
        attr = ATTR_NAMES[rng.integers(len(ATTR_NAMES))]
        others = [v for v in ATTRIBUTES[attr] if v != attrs[attr]]
        reference = {**attrs, attr: others[rng.integers(len(others))]}
        template = _template(rng, reference, typical, reporting, template)
        desc, asserted, excluded = describe(reference, template, rng)
        asserted[attr] = attrs[attr]
        excluded.pop(attr, None)
        excluded = {a: v for a, v in excluded.items() if v != attrs[a]}
        edit = edit_phrase(attr, attrs[attr], reference[attr], rng)
        if rng.random() < drop_share:
            edit = drop_words(edit, attr, attrs[attr], rng)
        return f"{desc}, {edit}", asserted, excluded
    template = _template(rng, attrs, typical, reporting, template)
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

"""How people phrase edits of the shapes world: training phrasings and held-out ones.

Two strictly separate lists of instructions ("change <attribute> to <value>"):

* :data:`TRAIN_EDITS` / :data:`TRAIN_SIZE_EDITS`: what the toy model is trained on: verb
  and noun synonyms ("paint it red", "recolor it red", "on a white backdrop", "morph it
  into a circle"), word orders, negations ("red, not blue") and comparatives ("bigger").
* :data:`HELD_OUT_EDITS` / :data:`HELD_OUT_SIZE_EDITS`: templates the training never uses,
  some with synonyms (:data:`HELD_OUT_WORDS`) that never occur in any training text. They
  measure how the model copes with words people type but nobody taught it: its tokenizer
  reports those words as unknown and ignores them, and the rest of the sentence must carry
  the meaning.

``{value}`` is the new value and ``{old}`` the reference's value of that attribute.
"""

from __future__ import annotations

import re

import numpy as np

#: Training instructions per attribute.
TRAIN_EDITS: dict[str, tuple[str, ...]] = {
    "color": (
        "make it {value}", "now in {value}", "change the color to {value}", "{value} instead",
        "paint it {value}", "recolor it {value}", "recolor it to {value}", "color it {value}",
        "colour it {value}", "turn it {value}", "change the colour to {value}", "change its color to {value}",
        "make the color {value}", "in {value}", "in {value} please", "the same but {value}",
        "same shape but {value}", "{value} not {old}", "not {old} but {value}", "make it {value} instead of {old}",
        "from {old} to {value}", "a {value} one", "it should be {value}", "paint the shape {value}",
        "{value} color", "with a {value} color", "{value} please", "change {old} to {value}",
    ),
    "shape": (
        "turn it into a {value}", "change the shape to a {value}", "a {value} instead", "as a {value}",
        "make it a {value}", "morph it into a {value}", "transform it into a {value}", "replace it with a {value}",
        "change it to a {value}", "the same but a {value}", "same color but a {value}", "a {value} not a {old}",
        "not a {old} but a {value}", "from a {old} to a {value}", "{value} instead", "a {value} shape",
        "make the shape a {value}", "turn the {old} into a {value}", "replace the {old} with a {value}",
        "it should be a {value}", "a {value} please", "shaped like a {value}", "in the shape of a {value}",
    ),
    "background": (
        "put it on a {value} background", "change the background to {value}", "on a {value} background",
        "on a {value} backdrop", "on {value}", "with a {value} background", "{value} background",
        "make the background {value}", "change the backdrop to {value}", "against a {value} background",
        "put it on {value}", "the same but on {value}", "on a {value} background instead", "move it to a {value} background",
        "a {value} background not {old}", "not on {old} but on {value}", "paint the background {value}",
        "the background should be {value}", "with a {value} backdrop", "background {value}",
    ),
}
#: Training instructions for size, which most phrasings say without the value word.
TRAIN_SIZE_EDITS: dict[str, tuple[str, ...]] = {
    "large": (
        "make it bigger", "make it large", "bigger", "larger", "make it big", "enlarge it", "scale it up",
        "a bigger one", "a larger one", "bigger please", "make it larger", "grow it", "big", "large",
        "not small", "make it big not small", "increase the size", "the same but bigger", "a large one",
    ),
    "small": (
        "make it smaller", "make it small", "smaller", "tinier", "make it tiny", "shrink it", "scale it down",
        "a smaller one", "a tinier one", "smaller please", "make it little", "reduce the size", "small", "tiny",
        "not large", "make it small not big", "decrease the size", "the same but smaller", "a small one",
    ),
}

#: Words of the held-out phrasings that no training text uses.
HELD_OUT_WORDS: tuple[str, ...] = (
    "dye", "tint", "repaint", "swap", "switch", "reshape", "convert", "backing", "setting", "canvas",
    "upscale", "magnify", "downscale", "miniature", "i", "want", "would", "prefer", "rather", "give",
    "could", "you", "me", "better", "than", "set",
)
#: Held-out instructions: templates (and words) never used in training.
HELD_OUT_EDITS: dict[str, tuple[str, ...]] = {
    "color": (
        "dye it {value}", "tint it {value}", "repaint it {value}", "i want it {value}", "could you make it {value}",
        "swap the color for {value}", "switch to {value}", "i would prefer {value}", "{value} would be better",
        "give it a {value} color", "rather {value} than {old}", "it in {value}",
    ),
    "shape": (
        "reshape it into a {value}", "convert it to a {value}", "i want a {value}", "swap it for a {value}",
        "could you make a {value}", "i would prefer a {value}", "a {value} would be better", "switch to a {value}",
        "rather a {value} than a {old}", "something shaped as a {value}",
    ),
    "background": (
        "on a {value} backing", "on a {value} canvas", "switch the background to {value}", "swap the backdrop for {value}",
        "i want a {value} background", "a {value} setting", "could you put it on {value}", "set it on {value}",
        "rather on {value} than on {old}", "give it a {value} backdrop",
    ),
}
HELD_OUT_SIZE_EDITS: dict[str, tuple[str, ...]] = {
    "large": ("upscale it, bigger", "magnify it, larger", "i want it bigger", "could you make it larger",
              "i would prefer a bigger one", "rather large than small", "give me a larger one"),
    "small": ("downscale it, smaller", "a miniature, smaller", "i want it smaller", "could you make it smaller",
              "i would prefer a smaller one", "rather small than large", "give me a smaller one"),
}

SPLITS = ("train", "held-out")
_WORD = re.compile(r"[a-z]+")


def _options(attribute: str, value: str, split: str) -> tuple[str, ...]:
    if split not in SPLITS:
        raise ValueError(f"Unknown phrasing split {split!r}; choose one of {list(SPLITS)}")
    train = split == "train"
    if attribute == "size":
        return (TRAIN_SIZE_EDITS if train else HELD_OUT_SIZE_EDITS)[value]
    return (TRAIN_EDITS if train else HELD_OUT_EDITS)[attribute]


def edit_phrase(attribute: str, value: str, old: str, rng: np.random.Generator | None = None,
                split: str = "train") -> str:
    """An instruction changing ``attribute`` from ``old`` to ``value`` (first option unless ``rng``).

    Examples
    --------
    >>> edit_phrase("color", "red", "blue"), edit_phrase("color", "red", "blue", split="held-out")
    ('make it red', 'dye it red')
    """
    options = _options(attribute, value, split)
    pick = 0 if rng is None else int(rng.integers(len(options)))
    return options[pick].format(value=value, old=old)


def words_of(texts: list[str]) -> set[str]:
    """The lower-case words of ``texts``.

    Examples
    --------
    >>> sorted(words_of(["Paint it RED, please"]))
    ['it', 'paint', 'please', 'red']
    """
    return {w for t in texts for w in _WORD.findall(t.lower())}


def all_edits(split: str, values: dict[str, tuple[str, ...]]) -> list[str]:
    """Every instruction of ``split`` filled with every value (``values``: attribute -> values)."""
    out: list[str] = []
    for attr, vals in values.items():
        for value in vals:
            old = next(v for v in vals if v != value)
            out += [t.format(value=value, old=old) for t in _options(attr, value, split)]
    return out

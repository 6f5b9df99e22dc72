"""The shapes world's vocabulary: its four attributes, worded like its captions.

Importing :mod:`cirscope.datasets` registers it as ``"shapes"``, so
``cs.Vocabulary.shapes()`` (``cs.Vocabulary.named("shapes")``) finds it and the default
vocabulary of a shapes gallery (:meth:`~cirscope.Vocabulary.from_metadata`) is this one.
"""

from __future__ import annotations

from cirscope.datasets._shapes import ATTRIBUTES
from cirscope.query._vocabulary import Vocabulary, register_vocabulary

__all__ = ["shapes_short_vocabulary", "shapes_vocabulary"]

_PROMPTS = {
    "shape": "a {}",
    "color": "a {} shape",
    "background": "a shape on a {} background",
    "size": "a {} shape",
}


def shapes_vocabulary() -> Vocabulary:
    """The shapes world's vocabulary (shape, color, background, size), worded like its captions.

    Examples
    --------
    >>> v = shapes_vocabulary()
    >>> list(v.families), v.prompt("background", "white")
    (['shape', 'color', 'background', 'size'], 'a shape on a white background')
    >>> v.describe({"shape": "star", "color": "red", "background": "black", "size": "large"})
    'a large red star on a black background'
    """
    return Vocabulary(
        {a: list(v) for a, v in ATTRIBUTES.items()},
        prompts=_PROMPTS,
        description="a {size} {color} {shape} on a {background} background",
    )


def shapes_short_vocabulary() -> Vocabulary:
    """A short description of a shapes-world item: its colour and shape only ("a red star").

    What a person typically types as a caption names the object and leaves out the
    background and the size; the harder shapes benchmark uses it for the reference text, so
    that the image carries what the text does not say.

    Examples
    --------
    >>> v = shapes_short_vocabulary()
    >>> list(v.families), v.describe({"shape": "star", "color": "orange"})
    (['color', 'shape'], 'an orange star')
    """
    return Vocabulary(
        {"color": list(ATTRIBUTES["color"]), "shape": list(ATTRIBUTES["shape"])},
        prompts={k: _PROMPTS[k] for k in ("color", "shape")},
        description="a {color} {shape}",
    )


register_vocabulary("shapes", shapes_vocabulary())

"""Vocabularies of concepts for zero-shot "captions", and a registry of named ones.

A :class:`Vocabulary` lists attribute families (``{"color": ["red", "blue"], ...}``), how
each word is prompted and how the chosen words make a description. A gallery gets one of
two defaults (:meth:`Vocabulary.from_metadata`): a *registered* vocabulary whose families
and words fit its metadata (a dataset registers the vocabulary its captions are worded in,
see :func:`register_vocabulary`, public as ``cs.Vocabulary.register``), else one family per
categorical metadata column. Nothing here knows any particular dataset.
"""

from __future__ import annotations

import importlib
import os
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cirscope._core.wording import fill
from cirscope.query._registry import take_pending

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.space._space import Space

__all__ = ["Vocabulary", "register_vocabulary", "registered_vocabularies", "vocabulary_for", "zero_shot_captions"]

_EXCLUDED_FAMILIES = frozenset({"id", "path", "file", "filename", "file_name", "url"})
#: name -> vocabulary, in registration order (see :func:`register_vocabulary`)
_REGISTRY: dict[str, Vocabulary] = {}
_GENERATION = [0]  # bumped by every registration: per-space defaults made before it are stale


@dataclass(frozen=True)
class Vocabulary:
    """Concepts for zero-shot "captions": attribute families, their words and prompts.

    For each family the word whose prompt embedding is closest (cosine) to the image wins;
    the winners fill ``description`` (a template with one ``{family}`` field per family),
    or, without one, make ``"a photo of <word>, <word>, ..."``.

    Parameters
    ----------
    families
        ``{family: [words]}``, e.g. ``{"color": ["red", "blue"], "shape": ["star", "circle"]}``.
    prompts
        ``{family: "a {} background"}``: how a word is put into words for the text encoder
        (default ``"a photo of {}"``).
    description
        How the chosen words are composed, e.g. ``"a {color} {shape}"``.

    Examples
    --------
    >>> v = Vocabulary({"color": ["red", "blue"], "shape": ["star"]}, description="a {color} {shape}")
    >>> v.describe({"color": "red", "shape": "star"})
    'a red star'
    >>> Vocabulary({"color": ["red"]}).describe({"color": "red"})
    'a photo of red'
    """

    families: Mapping[str, Sequence[str]]
    prompts: Mapping[str, str] = field(default_factory=dict)
    description: str | None = None

    def __post_init__(self) -> None:
        fams = {str(k): tuple(str(w) for w in v) for k, v in dict(self.families).items()}
        for fam, words in fams.items():
            if not words:
                raise ValueError(f"Vocabulary family {fam!r} has no words")
        for fam, prompt in dict(self.prompts).items():
            if "{}" not in prompt:
                raise ValueError(f"The prompt of family {fam!r} needs a '{{}}' where the word goes, got {prompt!r}")
        object.__setattr__(self, "families", fams)
        object.__setattr__(self, "prompts", dict(self.prompts))

    def __bool__(self) -> bool:
        return bool(self.families)

    def prompt(self, family: str, word: str) -> str:
        """The text encoded for ``word`` of ``family``."""
        return fill(self.prompts.get(family, "a photo of {}"), word)

    def describe(self, chosen: Mapping[str, str]) -> str:
        """Compose the chosen word of each family into a short description."""
        if self.description is not None:
            try:
                return fill(self.description, **chosen)
            except KeyError as exc:
                raise ValueError(
                    f"The description template {self.description!r} names the family {exc.args[0]!r}, "
                    f"which the vocabulary lacks; families: {list(self.families)}"
                ) from None
        return "a photo of " + ", ".join(chosen[f] for f in self.families)

    def fits(self, metadata: pd.DataFrame) -> bool:
        """Whether ``metadata`` has a column for every family, holding only that family's words.

        Examples
        --------
        >>> v = Vocabulary({"color": ["red", "blue"]})
        >>> v.fits(pd.DataFrame({"color": ["red", "red"], "n": [1, 2]})), v.fits(pd.DataFrame({"color": ["green"]}))
        (True, False)
        """
        if not self.families:
            return False
        for family, words in self.families.items():
            if family not in metadata.columns:
                return False
            if not set(metadata[family].dropna().astype(str)) <= set(words):
                return False
        return True

    @classmethod
    def named(cls, name: str) -> Vocabulary:
        """The vocabulary registered under ``name`` (see :func:`register_vocabulary`).

        Examples
        --------
        >>> "shapes" in registered_vocabularies()  # the built-in datasets register theirs
        True
        >>> Vocabulary.named("shapes") == cs.datasets.shapes_vocabulary()
        True
        """
        try:
            return _registry()[name]
        except KeyError:
            raise KeyError(
                f"No vocabulary is registered as {name!r}; registered: {sorted(_REGISTRY)}. Register one with "
                "cs.Vocabulary.register(name, cs.Vocabulary(...)) (the built-in datasets register theirs "
                "when cirscope.datasets is imported)"
            ) from None

    @classmethod
    def register(cls, name: str, vocabulary: Vocabulary | Mapping[str, Sequence[str]]) -> Vocabulary:
        """Register ``vocabulary`` under ``name`` (see :func:`register_vocabulary`)."""
        return register_vocabulary(name, vocabulary)

    @classmethod
    def registered(cls) -> dict[str, Vocabulary]:
        """The registered vocabularies, ``{name: Vocabulary}`` (see :func:`registered_vocabularies`)."""
        return registered_vocabularies()

    @classmethod
    def shapes(cls) -> Vocabulary:
        """The shapes world's four attributes, worded like its captions.

        An alias of ``Vocabulary.named("shapes")``: the vocabulary is defined and registered
        by :mod:`cirscope.datasets` (:func:`cirscope.datasets.shapes_vocabulary`).

        Examples
        --------
        >>> Vocabulary.shapes().describe({"shape": "star", "color": "red", "background": "black", "size": "large"})
        'a large red star on a black background'
        """
        return cls.named("shapes")

    @classmethod
    def from_metadata(
        cls, metadata: pd.DataFrame, *, max_values: int = 16, exclude: Sequence[str] = ("caption",)
    ) -> Vocabulary:
        """The default vocabulary of a gallery's metadata.

        A registered vocabulary that :meth:`fits` the metadata wins (the one with the most
        families; the first registered among equals): a gallery of the shapes world gets
        :meth:`shapes`. Otherwise every text/categorical column with 2 to ``max_values``
        distinct values (except ids, paths and ``exclude``) becomes a family whose words are
        its values.

        Examples
        --------
        >>> df = pd.DataFrame({"id": ["a", "b", "c"], "color": ["red", "blue", "red"], "n": [1, 2, 3]})
        >>> Vocabulary.from_metadata(df).families
        {'color': ('blue', 'red')}
        >>> Vocabulary.from_metadata(gallery.metadata) == Vocabulary.shapes()
        True
        """
        fitting = [v for v in _registry().values() if v.fits(metadata)]
        if fitting:
            return max(fitting, key=lambda v: len(v.families))  # max keeps the first among equals
        families: dict[str, list[str]] = {}
        skip = _EXCLUDED_FAMILIES | set(exclude)
        for col in metadata.columns:
            if col in skip:
                continue
            series = metadata[col]
            if not (
                pd.api.types.is_object_dtype(series)
                or pd.api.types.is_string_dtype(series)
                or isinstance(series.dtype, pd.CategoricalDtype)
            ):
                continue
            values = sorted({str(v) for v in series.dropna()} - {""})
            if 2 <= len(values) <= max_values and not any(os.sep in v or "/" in v for v in values):
                families[str(col)] = values
        return cls(families)


def register_vocabulary(name: str, vocabulary: Vocabulary | Mapping[str, Sequence[str]]) -> Vocabulary:
    """Register a vocabulary under ``name``: :meth:`Vocabulary.named` finds it, and
    :meth:`Vocabulary.from_metadata` picks it for galleries it :meth:`~Vocabulary.fits`.

    A dataset registers the vocabulary its captions are worded in, so zero-shot captions of
    its galleries read like its captions. Registering a name again replaces the entry.

    Examples
    --------
    >>> v = register_vocabulary("doc-fruit", {"fruit": ["apple", "pear"]})
    >>> Vocabulary.named("doc-fruit") is v, Vocabulary.from_metadata(pd.DataFrame({"fruit": ["pear"]})) is v
    (True, True)
    >>> _ = _REGISTRY.pop("doc-fruit")
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"A vocabulary's name must be a non-empty string, got {name!r}")
    if not isinstance(vocabulary, Vocabulary):
        vocabulary = Vocabulary(dict(vocabulary))
    if not vocabulary:
        raise ValueError(f"The vocabulary registered as {name!r} is empty: give at least one family of words")
    _REGISTRY[name] = vocabulary
    _GENERATION[0] += 1
    return vocabulary


def registered_vocabularies() -> dict[str, Vocabulary]:
    """The registered vocabularies, ``{name: Vocabulary}`` (a copy), in registration order."""
    return dict(_registry())


def _registry() -> dict[str, Vocabulary]:
    """The registry, with any lazy registrations (:mod:`cirscope.query._registry`) loaded first."""
    for name, target in take_pending().items():
        module, _, function = target.partition(":")
        vocabulary = getattr(importlib.import_module(module), function)()
        if not isinstance(vocabulary, Vocabulary):
            raise TypeError(f"The vocabulary registered as {name!r} ({target}) returned "
                            f"{type(vocabulary).__name__}, not a Vocabulary")
        if _REGISTRY.get(name) != vocabulary:  # importing the module may have registered it already
            register_vocabulary(name, vocabulary)
    return _REGISTRY


def zero_shot_captions(
    image_embeddings: np.ndarray, vocabulary: Vocabulary, encode_text: Callable[[list[str]], np.ndarray]
) -> list[tuple[str, dict[str, str]]]:
    """Zero-shot descriptions of images: per family, the word whose prompt is closest.

    For each image and family ``f``: ``word_f = argmax_w cos(v, encode(prompt_f(w)))``; the
    words are composed by :meth:`Vocabulary.describe`. Returns ``(description, {family:
    word})`` per image.

    Examples
    --------
    >>> vocab = Vocabulary({"color": ["red", "blue"]}, description="a {color} thing")
    >>> table = {"a photo of red": [1.0, 0.0], "a photo of blue": [0.0, 1.0]}
    >>> enc = lambda texts: np.array([table[t] for t in texts])
    >>> zero_shot_captions(np.array([[0.2, 0.9]]), vocab, enc)
    [('a blue thing', {'color': 'blue'})]
    """
    if not vocabulary:
        raise ValueError("The vocabulary is empty: give at least one family of words")
    emb = np.atleast_2d(np.asarray(image_embeddings, dtype=np.float32))
    chosen: list[dict[str, str]] = [{} for _ in range(len(emb))]
    for family, words in vocabulary.families.items():
        vecs = np.asarray(encode_text([vocabulary.prompt(family, w) for w in words]), dtype=np.float32)
        best = np.argmax(emb @ vecs.T, axis=1)
        for i, b in enumerate(best):
            chosen[i][family] = words[int(b)]
    return [(vocabulary.describe(c), c) for c in chosen]


_VOCABULARIES: weakref.WeakKeyDictionary[Any, dict[tuple, Vocabulary]] = weakref.WeakKeyDictionary()


def vocabulary_for(space: Space, exclude: Sequence[str] = ("caption",)) -> Vocabulary:
    """The default zero-shot vocabulary of a space's gallery (cached per space)."""
    per_space = _VOCABULARIES.setdefault(space, {})
    key = (_GENERATION[0], *exclude)
    if key not in per_space:
        per_space[key] = Vocabulary.from_metadata(space.gallery.metadata, exclude=exclude)
    return per_space[key]

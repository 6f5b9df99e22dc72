"""Composed queries: a reference image plus a modification text, resolved against a space.

Resolving a :class:`ComposedQuery` finds the reference image's embedding and the two texts
the Prompt Directional Vector needs, and records where each text came from:

* the **reference text** (the reference *without* the modification): an explicit
  ``reference_text=``, else the gallery's caption column, else a zero-shot "caption" built
  from a vocabulary of concepts (:mod:`cirscope.query._vocabulary`: the best-matching word of
  each attribute family), else a neutral prompt ("a photo");
* the **composed text** (the reference *with* the modification): an explicit
  ``composed_text=``, else ``rewriter(reference_text, text)`` (the caption-then-rewrite idea
  of CIReVL, Karthik et al., ICLR 2024), else a template ("{reference_text}, {text}").

All texts are encoded through ``space.encode_text`` (an LRU cache), and the resolution is
kept per space, so moving a method's sliders afterwards costs only vector arithmetic.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cirscope._core.wording import fill
from cirscope.query._methods import METHODS, Prepared, compose, prepare
from cirscope.query._vocabulary import Vocabulary, vocabulary_for, zero_shot_captions

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.space._space import Space

__all__ = ["DEFAULT_TEMPLATE", "NEUTRAL_PROMPT", "ComposedQuery", "ResolvedQuery", "fill_template"]

DEFAULT_TEMPLATE = "{reference_text}, {text}"
NEUTRAL_PROMPT = "a photo"


def fill_template(template: str, reference_text: str, text: str) -> str:
    """Fill a composed-text template (fields: reference_text/caption, text/modification).

    Examples
    --------
    >>> fill_template("{caption}, {modification}", "a red star", "make it blue")
    'a red star, make it blue'
    """
    try:
        return fill(template, reference_text=reference_text, caption=reference_text, text=text, modification=text)
    except (KeyError, IndexError) as exc:
        raise ValueError(
            f"Template {template!r} has an unknown field ({exc}); use {{reference_text}} (or {{caption}}) and "
            "{text} (or {modification})"
        ) from None


@dataclass(frozen=True, repr=False)
class ResolvedQuery:
    """A composed query resolved against a space: the embeddings, the texts and their sources.

    ``reference_text_source`` is ``"explicit"``, ``"caption"``, ``"zero-shot"`` or
    ``"neutral"``; ``composed_text_source`` is ``"explicit"``, ``"rewriter"`` or ``"template"``.

    The four embeddings are kept as read-only copies, so the inputs each method derives from them
    (validated, normalised; :func:`~cirscope.query._methods.prepare`) are computed once and every
    :meth:`vector` call after the first runs only the method's parameter-dependent arithmetic.
    """

    text: str
    reference: str
    reference_row: int | None
    reference_text: str
    reference_text_source: str
    composed_text: str
    composed_text_source: str
    v_ref: np.ndarray
    t_mod: np.ndarray
    t_ref: np.ndarray
    t_comp: np.ndarray
    zero_shot: Mapping[str, str] | None = None
    _prepared: dict[str, Prepared] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("v_ref", "t_mod", "t_ref", "t_comp"):
            arr = np.array(getattr(self, name))  # a copy: the caller's array stays writable, this one cannot change
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    def embeddings(self) -> dict[str, np.ndarray]:
        """``{"v_ref", "t_mod", "t_ref", "t_comp"}``, the inputs of :func:`~cirscope.query._methods.compose`."""
        return {"v_ref": self.v_ref, "t_mod": self.t_mod, "t_ref": self.t_ref, "t_comp": self.t_comp}

    def vector(self, method: str = "pdv", **params: float) -> np.ndarray:
        """The query vector of ``method`` with ``params`` (pure vector arithmetic).

        Equal to ``compose(method, **self.embeddings(), **params)``; the inputs are validated
        and normalised on the first call for each method only.
        """
        prepared = self._prepared.get(method)
        if prepared is None:
            prepared = prepare(method, **self.embeddings())
            self._prepared[method] = prepared
        return compose(method, prepared=prepared, **params)

    def info(self) -> dict[str, Any]:
        """The resolved texts and sources (JSON-ready)."""
        return {
            "reference": self.reference,
            "reference_row": self.reference_row,
            "text": self.text,
            "reference_text": self.reference_text,
            "reference_text_source": self.reference_text_source,
            "composed_text": self.composed_text,
            "composed_text_source": self.composed_text_source,
            "zero_shot": dict(self.zero_shot) if self.zero_shot else None,
        }

    def __repr__(self) -> str:
        return (
            "ResolvedQuery(\n"
            f"  reference      = {self.reference}\n"
            f"  text           = {self.text!r}\n"
            f"  reference text = {self.reference_text!r}  [{self.reference_text_source}]\n"
            f"  composed text  = {self.composed_text!r}  [{self.composed_text_source}]\n)"
        )


class ComposedQuery:
    """A reference image plus a modification text ("make it blue").

    Parameters
    ----------
    reference
        A gallery row (int), a gallery id (str), an image file path (str or Path), a PIL
        image or an ``(H, W, 3)`` array.
    text
        The modification instruction.
    reference_text
        What the reference shows, typed by the user (else caption column, zero-shot, neutral).
    composed_text
        The target description, typed by the user (else rewriter, else template).
    template
        Builds the composed text from ``{reference_text}`` and ``{text}``.
    rewriter
        ``rewriter(reference_text, text) -> str``, e.g. a language model rewriting the
        caption by the instruction.
    vocabulary
        For zero-shot captions: a :class:`Vocabulary` or ``{family: [words]}``; by default
        the categorical metadata columns of the gallery. ``{}`` turns zero-shot off.
    caption_column
        The gallery column holding captions (``None``: do not use captions).
    neutral
        The neutral prompt used when nothing else describes the reference.

    Examples
    --------
    >>> q = ComposedQuery(0, "make it blue", reference_text="a red star")
    >>> q
    ComposedQuery(reference=0, text='make it blue', reference_text='a red star')
    >>> r = q.resolve(space)
    >>> r.reference_text_source, r.composed_text
    ('explicit', 'a red star, make it blue')
    """

    def __init__(
        self,
        reference: Any,
        text: str,
        *,
        reference_text: str | None = None,
        composed_text: str | None = None,
        template: str = DEFAULT_TEMPLATE,
        rewriter: Callable[[str, str], str] | None = None,
        vocabulary: Vocabulary | Mapping[str, Sequence[str]] | None = None,
        caption_column: str | None = "caption",
        neutral: str = NEUTRAL_PROMPT,
    ):
        if not isinstance(text, str):
            raise TypeError(f"The modification text must be a string, got {type(text).__name__}")
        if rewriter is not None and not callable(rewriter):
            raise TypeError("rewriter must be a callable rewriter(reference_text, text) -> str")
        if reference is None:
            raise ValueError("A composed query needs a reference: a gallery row or id, an image or an image path")
        fill_template(template, "", "")  # validate early
        self.reference = reference
        self.text = text
        self.reference_text = reference_text
        self.composed_text = composed_text
        self.template = template
        self.rewriter = rewriter
        if vocabulary is not None and not isinstance(vocabulary, Vocabulary):
            vocabulary = Vocabulary(dict(vocabulary))
        self.vocabulary = vocabulary
        self.caption_column = caption_column
        self.neutral = neutral
        self._resolved: weakref.WeakKeyDictionary[Any, tuple[tuple, ResolvedQuery]] = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:
        ref = self.reference
        ref_s = repr(ref) if isinstance(ref, (int, np.integer, str, Path)) else f"<{type(ref).__name__}>"
        extra = "".join(
            f", {name}={value!r}"
            for name, value in (("reference_text", self.reference_text), ("composed_text", self.composed_text))
            if value is not None
        )
        return f"ComposedQuery(reference={ref_s}, text={self.text!r}{extra})"

    # ------------------------------------------------------------------ resolution
    def _reference(self, space: Space) -> tuple[str, int | None, np.ndarray]:
        ref = self.reference
        n = len(space.gallery)
        if isinstance(ref, (bool, np.bool_)):
            raise TypeError("reference must be a gallery row, an id, an image or a path, not a bool")
        if isinstance(ref, (int, np.integer)):
            row = int(ref)
            if not 0 <= row < n:
                raise IndexError(f"Reference row {row} is outside the gallery (0..{n - 1})")
            return f"row {row} (id {space.gallery.ids[row]})", row, space.image_embeddings[row]
        if isinstance(ref, str):
            ids = space.gallery.ids
            hit = np.flatnonzero(ids == ref)
            if hit.size:
                row = int(hit[0])
                return f"row {row} (id {ref})", row, space.image_embeddings[row]
            if not Path(ref).is_file():
                raise KeyError(
                    f"Reference {ref!r} is neither an id in the gallery nor an image file; pass a gallery row "
                    "(int), an id, an existing image path or a PIL image"
                )
            return ref, None, np.asarray(space.encode_image(Path(ref)), dtype=np.float32)
        if isinstance(ref, Path):
            if not ref.is_file():
                raise FileNotFoundError(f"Reference image not found: {ref}")
            return str(ref), None, np.asarray(space.encode_image(ref), dtype=np.float32)
        return f"<{type(ref).__name__}>", None, np.asarray(space.encode_image(ref), dtype=np.float32)

    def _vocabulary(self, space: Space) -> Vocabulary:
        if self.vocabulary is not None:
            return self.vocabulary
        return vocabulary_for(space, exclude=[c for c in (self.caption_column,) if c])

    def _reference_text(self, space: Space, row: int | None, v_ref: np.ndarray) -> tuple[str, str, dict | None]:
        if self.reference_text is not None:
            return self.reference_text, "explicit", None
        if row is not None and self.caption_column is not None:
            try:
                value = space.gallery.column(self.caption_column).iloc[row]
            except KeyError:
                value = None
            if isinstance(value, str) and value.strip():
                return value, "caption", None
        vocab = self._vocabulary(space)
        if vocab and space.embedder is not None:
            (desc, chosen), = zero_shot_captions(v_ref[None, :], vocab, space.encode_text)
            return desc, "zero-shot", chosen
        return self.neutral, "neutral", None

    def _composed_text(self, reference_text: str) -> tuple[str, str]:
        if self.composed_text is not None:
            return self.composed_text, "explicit"
        if self.rewriter is not None:
            out = self.rewriter(reference_text, self.text)
            if not isinstance(out, str) or not out.strip():
                raise TypeError(f"The rewriter must return a non-empty string, got {out!r}")
            return out, "rewriter"
        return fill_template(self.template, reference_text, self.text), "template"

    def resolve(self, space: Space) -> ResolvedQuery:
        """Resolve against ``space`` (cached per space): embeddings, texts and their sources."""
        state = self._state()
        cached = self._resolved.get(space)
        if cached is not None and cached[0] == state:
            return cached[1]
        label, row, v_ref = self._reference(space)
        ref_text, ref_source, chosen = self._reference_text(space, row, v_ref)
        comp_text, comp_source = self._composed_text(ref_text)
        t_mod, t_ref, t_comp = space.encode_text([self.text, ref_text, comp_text])
        resolved = ResolvedQuery(
            text=self.text,
            reference=label,
            reference_row=row,
            reference_text=ref_text,
            reference_text_source=ref_source,
            composed_text=comp_text,
            composed_text_source=comp_source,
            v_ref=np.asarray(v_ref, dtype=np.float32),
            t_mod=t_mod,
            t_ref=t_ref,
            t_comp=t_comp,
            zero_shot=chosen,
        )
        self._resolved[space] = (state, resolved)
        return resolved

    def _state(self) -> tuple:
        """What the resolution depends on (a changed attribute resolves again)."""
        ref = self.reference
        ref_key = ref if isinstance(ref, (int, np.integer, str, Path)) else id(ref)
        return (ref_key, self.text, self.reference_text, self.composed_text, self.template,
                id(self.rewriter), id(self.vocabulary), self.caption_column, self.neutral)

    def vector(self, space: Space, method: str = "pdv", **params: float) -> np.ndarray:
        """The query vector of ``method`` (one of :data:`~cirscope.query._methods.METHODS`) in ``space``."""
        if method not in METHODS:
            raise ValueError(f"Unknown composing method {method!r}; choose one of {list(METHODS)}")
        return self.resolve(space).vector(method, **params)

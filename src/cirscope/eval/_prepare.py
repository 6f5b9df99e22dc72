"""A benchmark resolved against a space: gallery rows, targets and every query's embeddings, computed once.

Each composing method then needs only these arrays (:func:`cirscope.eval.score`), so a run over
many methods or a sweep over many settings encodes no text twice.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from cirscope.eval._benchmark import CIRBenchmark
from cirscope.query._composed import DEFAULT_TEMPLATE, NEUTRAL_PROMPT, fill_template
from cirscope.query._vocabulary import Vocabulary, zero_shot_captions

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.gallery._table import Gallery
    from cirscope.space._space import Space

__all__ = ["REFERENCE_TEXT_POLICIES", "Prepared", "benchmark_gallery", "prepare"]

REFERENCE_TEXT_POLICIES = ("auto", "caption", "zero-shot", "neutral")


@dataclass(frozen=True, eq=False)
class Prepared:
    """A benchmark resolved against a space: rows, targets and the four embeddings per query.

    Frozen; equality is identity (it holds arrays).
    """

    benchmark: CIRBenchmark
    embeddings: np.ndarray
    reference_rows: np.ndarray
    targets: list[np.ndarray]
    subsets: list[np.ndarray] | None
    inputs: dict[str, np.ndarray]
    reference_texts: list[str]
    composed_texts: list[str]
    reference_text_sources: list[str]
    skipped: int = 0
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.reference_rows)


def _encode(space: Space, texts: list[str], progress: bool) -> np.ndarray:
    from tqdm.auto import tqdm

    unique = list(dict.fromkeys(texts))
    chunks = [unique[i : i + 256] for i in range(0, len(unique), 256)]
    vecs: dict[str, np.ndarray] = {}
    for chunk in tqdm(chunks, desc="encoding texts", disable=not progress or len(chunks) < 4, leave=False):
        for t, v in zip(chunk, space.encode_text(chunk), strict=False):
            vecs[t] = v
    return np.stack([vecs[t] for t in texts]).astype(np.float32)


def prepare(
    space: Space,
    benchmark: CIRBenchmark,
    *,
    reference_text: str = "auto",
    template: str = DEFAULT_TEMPLATE,
    vocabulary: Vocabulary | Mapping[str, Sequence[str]] | None = None,
    rewriter: Callable[[str, str], str] | None = None,
    caption_column: str = "caption",
    neutral: str = NEUTRAL_PROMPT,
    progress: bool = True,
) -> Prepared:
    """Resolve every query of ``benchmark`` against ``space`` (texts encoded once).

    Parameters
    ----------
    reference_text
        Where the reference text comes from: ``"auto"`` (the order a
        :class:`~cirscope.ComposedQuery` uses: caption column, else zero-shot, else
        neutral), ``"caption"``, ``"zero-shot"`` or ``"neutral"``.
    template, vocabulary, rewriter, caption_column, neutral
        As for :class:`~cirscope.ComposedQuery`.

    Queries whose reference or targets are not in the gallery are skipped (counted in
    ``Prepared.skipped``).
    """
    if reference_text not in REFERENCE_TEXT_POLICIES:
        raise ValueError(f"reference_text must be one of {REFERENCE_TEXT_POLICIES}, got {reference_text!r}")
    if len(benchmark) == 0:
        raise ValueError("The benchmark has no queries")
    meta = space.gallery.metadata
    row_of = {str(i): r for r, i in enumerate(meta["id"].to_numpy())}
    keep, refs, targets, subsets = [], [], [], []
    has_subsets = bool(benchmark.protocol.subset_ks)
    skipped = 0
    no_targets = 0
    for qi, q in enumerate(benchmark.queries):
        t_rows = np.array(sorted({row_of[t] for t in q.targets if t in row_of}), dtype=np.int64)
        if q.reference not in row_of or t_rows.size == 0:
            skipped += 1
            no_targets += int(len(q.targets) == 0)
            continue
        if has_subsets:
            if q.subset is None:
                raise ValueError(f"Query {q.id} has no candidate subset but the protocol reports Recall_subset")
            members = [row_of[m] for m in q.subset if m in row_of]
            subsets.append(np.array(sorted(set(members)), dtype=np.int64))
        keep.append(qi)
        refs.append(row_of[q.reference])
        targets.append(t_rows)
    if not keep:
        hint = " (the split has no public targets: use the validation split)" if no_targets == skipped else ""
        raise ValueError(f"None of the {len(benchmark)} queries has its reference and a target in the gallery{hint}")
    notes = []
    if skipped:
        notes.append(f"{skipped} of {len(benchmark)} queries skipped (reference or every target missing from the gallery)")
        warnings.warn(notes[-1], stacklevel=2)
    queries = [benchmark.queries[i] for i in keep]
    ref_rows = np.asarray(refs, dtype=np.int64)
    emb = space.image_embeddings
    v_ref = emb[ref_rows]

    ref_texts: list[str | None] = [None] * len(queries)
    sources: list[str] = [""] * len(queries)
    if reference_text in ("auto", "caption"):
        try:
            captions = space.gallery.column(caption_column)
        except KeyError:
            if reference_text == "caption":
                raise
            captions = None
        if captions is not None:
            for i, r in enumerate(ref_rows):
                c = captions.iloc[int(r)]
                if isinstance(c, str) and c.strip():
                    ref_texts[i], sources[i] = c, "caption"
    if reference_text in ("auto", "zero-shot"):
        vocab = vocabulary if vocabulary is not None else Vocabulary.from_metadata(meta, exclude=[caption_column])
        if not isinstance(vocab, Vocabulary):
            vocab = Vocabulary(dict(vocab))
        todo = [i for i, t in enumerate(ref_texts) if t is None]
        if vocab and todo:
            described = zero_shot_captions(v_ref[todo], vocab, space.encode_text)
            for i, (desc, _) in zip(todo, described, strict=False):
                ref_texts[i], sources[i] = desc, "zero-shot"
        elif reference_text == "zero-shot":
            raise ValueError("No vocabulary for zero-shot captions: pass vocabulary={family: [words]}")
    for i, t in enumerate(ref_texts):
        if t is None:
            if reference_text == "caption":
                raise ValueError(f"Reference {queries[i].reference} has no caption in column {caption_column!r}")
            ref_texts[i], sources[i] = neutral, "neutral"
    final_refs = [str(t) for t in ref_texts]
    if rewriter is not None:
        composed = [str(rewriter(r, q.text)) for r, q in zip(final_refs, queries, strict=False)]
    else:
        composed = [fill_template(template, r, q.text) for r, q in zip(final_refs, queries, strict=False)]
    inputs = {
        "v_ref": v_ref.astype(np.float32),
        "t_mod": _encode(space, [q.text for q in queries], progress),
        "t_ref": _encode(space, final_refs, progress),
        "t_comp": _encode(space, composed, progress),
    }
    return Prepared(
        benchmark=benchmark.take(keep),
        embeddings=emb,
        reference_rows=ref_rows,
        targets=targets,
        subsets=subsets if has_subsets else None,
        inputs=inputs,
        reference_texts=final_refs,
        composed_texts=composed,
        reference_text_sources=sources,
        skipped=skipped,
        notes=notes,
    )


def benchmark_gallery(benchmark: CIRBenchmark) -> Gallery:
    """The :class:`~cirscope.Gallery` of a file-based benchmark (ids = the benchmark's image ids).

    Examples
    --------
    >>> g = benchmark_gallery(cs.eval.read_cirr("data/cirr"))  # needs CIRR on disk  # doctest: +SKIP
    """
    from cirscope.gallery._table import Gallery

    paths = benchmark.image_paths()
    df = pd.DataFrame({"id": list(paths), "path": list(paths.values())})
    return Gallery.from_dataframe(df, image="path", id="id")

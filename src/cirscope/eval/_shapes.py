"""A composed-retrieval benchmark generated from the shapes world, with exact ground truth.

Each query is a reference item and an instruction that changes one attribute (colour,
shape, background or size); its targets are *all* gallery items that equal the reference on
the three other attributes and have the new value.

Instructions come in two sets: ``"in-template"`` (:data:`PHRASINGS`, phrasings the toy
model was trained on) and ``"held-out"`` (:data:`cirscope.toy._phrasings.HELD_OUT_EDITS`:
templates and synonyms no training text uses). With one seed both sets draw the same
queries, so their scores compare query for query.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from cirscope._core.wording import fill
from cirscope.datasets._shapes import ATTRIBUTES
from cirscope.eval._benchmark import CIRBenchmark, CIRQuery, Protocol
from cirscope.toy._phrasings import edit_phrase

__all__ = ["PHRASINGS", "PHRASING_SETS", "make_shapes_benchmark", "phrase"]

#: The instruction sets of the benchmark.
PHRASING_SETS = ("in-template", "held-out")

#: Natural phrasings of "change <attribute> to <value>" ("{value}" is the new value).
PHRASINGS: dict[str, tuple[str, ...]] = {
    "color": ("make it {value}", "change the color to {value}", "now in {value}", "{value} instead"),
    "shape": ("as a {value}", "turn it into a {value}", "change the shape to a {value}", "a {value} instead"),
    "background": ("on a {value} background", "put it on a {value} background", "change the background to {value}"),
}
#: Size has no value word in most phrasings: "bigger" means "large".
SIZE_PHRASINGS: dict[str, tuple[str, ...]] = {
    "large": ("bigger", "make it bigger", "larger", "make it large"),
    "small": ("smaller", "make it smaller", "tinier", "make it small"),
}


def phrase(
    attribute: str, value: str, rng: np.random.Generator | None = None, *, phrasings: str = "in-template",
    old: str | None = None,
) -> str:
    """A natural instruction changing ``attribute`` to ``value`` (random phrasing if ``rng``).

    ``phrasings="held-out"`` draws from the phrasings the toy model never saw in training;
    ``old`` (the reference's value) fills those that name it ("rather blue than red").

    Examples
    --------
    >>> phrase("color", "blue"), phrase("size", "large"), phrase("shape", "triangle")
    ('make it blue', 'bigger', 'as a triangle')
    >>> phrase("color", "blue", phrasings="held-out")
    'dye it blue'
    """
    if phrasings not in PHRASING_SETS:
        raise ValueError(f"Unknown phrasings {phrasings!r}; choose one of {list(PHRASING_SETS)}")
    if attribute not in ATTRIBUTES:
        raise ValueError(f"Unknown attribute {attribute!r}; choose one of {list(ATTRIBUTES)}")
    if value not in ATTRIBUTES[attribute]:
        raise ValueError(f"Unknown {attribute} {value!r}; choose one of {list(ATTRIBUTES[attribute])}")
    if phrasings == "held-out":
        other = old if old is not None else next(v for v in ATTRIBUTES[attribute] if v != value)
        return edit_phrase(attribute, value, other, rng, split="held-out")
    options = SIZE_PHRASINGS[value] if attribute == "size" else PHRASINGS[attribute]
    pick = 0 if rng is None else int(rng.integers(len(options)))
    return fill(options[pick], value=value)


def make_shapes_benchmark(
    metadata: pd.DataFrame,
    n_queries: int = 1000,
    seed: int = 0,
    *,
    attributes: Sequence[str] = tuple(ATTRIBUTES),
    gallery: dict | None = None,
    name: str = "shapes",
    phrasings: str = "in-template",
) -> CIRBenchmark:
    """Generate composed queries with exact targets over a shapes-world gallery.

    Parameters
    ----------
    metadata
        The gallery's metadata (``Gallery.metadata`` or ``sample_world(n, seed)``), with the
        columns shape, color, background, size and, optionally, ``id`` (else row numbers,
        as strings, are the ids).
    n_queries
        How many queries to draw (fewer when the gallery cannot supply that many distinct
        ones). Queries whose change has no target in the gallery are skipped.
    seed
        Seeds the choice of references, attributes, new values and phrasings.
    attributes
        The attributes an instruction may change.
    gallery
        Stored as the benchmark's gallery description (default ``{"kind": "shapes",
        "n": len(metadata)}``).
    phrasings
        ``"in-template"`` (default) or ``"held-out"`` (see :func:`phrase`); the same seed
        draws the same references, changes and targets for both.

    Returns
    -------
    CIRBenchmark
        Protocol: reference removed, R@1/5/10/50 and mAP@5/10/25/50. Each query's ``meta``
        holds ``attribute``, ``from`` and ``to``.

    Examples
    --------
    >>> from cirscope.datasets._shapes import sample_world
    >>> b = make_shapes_benchmark(sample_world(500, seed=0), n_queries=20, seed=0)
    >>> len(b), all(len(q.targets) > 0 for q in b.queries)
    (20, True)
    """
    missing = [a for a in attributes if a not in metadata.columns]
    if missing:
        raise ValueError(f"metadata lacks the shapes-world columns {missing}; its columns are {list(metadata.columns)}")
    unknown = [a for a in attributes if a not in ATTRIBUTES]
    if unknown:
        raise ValueError(f"Unknown attributes {unknown}; choose from {list(ATTRIBUTES)}")
    if phrasings not in PHRASING_SETS:
        raise ValueError(f"Unknown phrasings {phrasings!r}; choose one of {list(PHRASING_SETS)}")
    if n_queries < 1:
        raise ValueError(f"n_queries must be >= 1, got {n_queries}")
    if len(metadata) == 0:
        raise ValueError("The gallery is empty")
    ids = metadata["id"].astype(str).to_numpy() if "id" in metadata.columns else np.arange(len(metadata)).astype(str)
    all_attrs = tuple(ATTRIBUTES)
    codes = np.stack(
        [metadata[a].map({v: i for i, v in enumerate(ATTRIBUTES[a])}).to_numpy() for a in all_attrs], axis=1
    )
    if np.isnan(codes.astype(float)).any():
        raise ValueError("metadata holds values outside the shapes world's attributes")
    codes = codes.astype(np.int64)
    # Every item's full combination as one integer; items sharing it are interchangeable.
    radix = np.array([len(ATTRIBUTES[a]) for a in all_attrs])
    place = np.concatenate([np.cumprod(radix[::-1])[::-1][1:], [1]])
    combo = codes @ place
    members: dict[int, np.ndarray] = {
        int(c): np.flatnonzero(combo == c) for c in np.unique(combo)
    }
    rng = np.random.default_rng(seed)
    seen: set[tuple[int, str, str]] = set()
    queries: list[CIRQuery] = []
    max_tries = 50 * n_queries
    tries = 0
    while len(queries) < n_queries and tries < max_tries:
        tries += 1
        row = int(rng.integers(len(metadata)))
        attr = attributes[int(rng.integers(len(attributes)))]
        j = all_attrs.index(attr)
        old = int(codes[row, j])
        choices = [v for v in range(len(ATTRIBUTES[attr])) if v != old]
        new = choices[int(rng.integers(len(choices)))]
        key = (row, attr, ATTRIBUTES[attr][new])
        if key in seen:
            continue
        seen.add(key)
        target_combo = int(combo[row] + (new - old) * place[j])
        targets = members.get(target_combo)
        if targets is None or targets.size == 0:
            continue
        value = ATTRIBUTES[attr][new]
        queries.append(
            CIRQuery(
                id=str(len(queries)),
                reference=str(ids[row]),
                text=phrase(attr, value, rng, phrasings=phrasings, old=ATTRIBUTES[attr][old]),
                targets=tuple(str(t) for t in ids[targets]),
                meta={"attribute": attr, "from": ATTRIBUTES[attr][old], "to": value},
            )
        )
    if not queries:
        raise ValueError("No query has a target in this gallery; use a larger gallery")
    protocol = Protocol(exclude_reference=True, recall_ks=(1, 5, 10, 50), subset_ks=(), map_ks=(5, 10, 25, 50))
    desc = dict(gallery) if gallery is not None else {"kind": "shapes", "n": len(metadata)}
    desc.setdefault("query_seed", seed)
    desc.setdefault("phrasings", phrasings)
    return CIRBenchmark(name, queries, protocol, desc)

"""The harder shapes benchmark: two-attribute edits, unseen phrasings, rare targets, close distractors.

The one-attribute shapes benchmark (:func:`~cirscope.eval.make_shapes_benchmark`) asks the toy
model the very kind of text it was trained on ("a red star on black, make it blue"), so its
text side alone finds almost every target and a sweep of PDV's parameters is flat. This one
removes each of those crutches:

* **two-attribute edits**: every instruction changes two attributes at once ("dye it blue and
  reshape it into a circle"); the toy model only ever saw one edit per training text;
* **unseen phrasings** (default): each half is drawn from the toy model's held-out phrasings
  (:data:`cirscope.toy._phrasings.HELD_OUT_EDITS`), templates and words no training text uses;
* **rare targets**: only queries whose target (the reference with both changes) has at most
  ``max_targets`` copies in the gallery are kept;
* **close distractors**: every kept query has at least ``min_half_edits`` *half-edits* in the
  gallery: items that equal the reference with only one of the two changes made, which share
  three of the four attributes with the target. Each query's ``meta`` counts them and all the
  items that differ from the target in a single attribute.

Ground truth stays exact: a query's targets are all items equal to the reference on the two
untouched attributes and carrying both new values.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cirscope.datasets._shapes import ATTRIBUTES
from cirscope.eval._benchmark import CIRBenchmark, CIRQuery, Protocol
from cirscope.eval._shapes import PHRASING_SETS, phrase

__all__ = ["HARD_DEFAULTS", "make_hard_shapes_benchmark"]

#: The settings ``cirscope eval cir --dataset shapes`` (level hard) uses.
HARD_DEFAULTS = {"n_gallery": 2000, "n_queries": 1000, "max_targets": 2, "min_half_edits": 1}
_ATTRS = tuple(ATTRIBUTES)
_JOIN = " and "


def _codes(metadata: pd.DataFrame) -> np.ndarray:
    codes = np.stack(
        [metadata[a].map({v: i for i, v in enumerate(ATTRIBUTES[a])}).to_numpy() for a in _ATTRS], axis=1
    )
    if np.isnan(codes.astype(float)).any():
        raise ValueError("metadata holds values outside the shapes world's attributes")
    return codes.astype(np.int64)


def make_hard_shapes_benchmark(
    metadata: pd.DataFrame,
    n_queries: int = 1000,
    seed: int = 0,
    *,
    max_targets: int = HARD_DEFAULTS["max_targets"],
    min_half_edits: int = HARD_DEFAULTS["min_half_edits"],
    phrasings: str = "held-out",
    gallery: dict | None = None,
    name: str = "shapes-hard",
) -> CIRBenchmark:
    """Generate two-attribute composed queries with rare targets and close distractors.

    Parameters
    ----------
    metadata
        The gallery's metadata (columns shape, color, background, size and, optionally, ``id``).
    n_queries
        How many queries to draw (fewer when the gallery cannot supply that many).
    seed
        Seeds the references, the attribute pairs, the new values and the phrasings.
    max_targets
        Keep only queries with at most this many targets in the gallery (rare targets).
    min_half_edits
        Keep only queries with at least this many half-edited items in the gallery (the
        reference with one of the two changes made).
    phrasings
        ``"held-out"`` (default: phrasings the toy model never saw) or ``"in-template"``; one
        seed draws the same references, changes and targets for both.
    gallery, name
        The benchmark's gallery description and name.

    Returns
    -------
    CIRBenchmark
        Protocol: reference removed, R@1/5/10/50 and mAP@5/10/25/50. Each query's ``meta``
        holds ``attributes`` (the two changed, in world order), ``from`` and ``to`` (their old
        and new values), ``half_edits`` and ``near_misses`` (items differing from the target
        in exactly one attribute).

    Examples
    --------
    >>> from cirscope.datasets._shapes import sample_world
    >>> b = make_hard_shapes_benchmark(sample_world(2000, seed=0), n_queries=30, seed=0)
    >>> q = b.queries[0]
    >>> len(q.meta["attributes"]), 1 <= len(q.targets) <= 2, q.meta["half_edits"] >= 1
    (2, True, True)
    >>> " and " in q.text
    True
    """
    missing = [a for a in _ATTRS if a not in metadata.columns]
    if missing:
        raise ValueError(f"metadata lacks the shapes-world columns {missing}; its columns are {list(metadata.columns)}")
    if phrasings not in PHRASING_SETS:
        raise ValueError(f"Unknown phrasings {phrasings!r}; choose one of {list(PHRASING_SETS)}")
    if n_queries < 1:
        raise ValueError(f"n_queries must be >= 1, got {n_queries}")
    if max_targets < 1 or min_half_edits < 0:
        raise ValueError(f"max_targets must be >= 1 and min_half_edits >= 0, got {max_targets} and {min_half_edits}")
    if len(metadata) == 0:
        raise ValueError("The gallery is empty")
    ids = metadata["id"].astype(str).to_numpy() if "id" in metadata.columns else np.arange(len(metadata)).astype(str)
    codes = _codes(metadata)
    radix = np.array([len(ATTRIBUTES[a]) for a in _ATTRS])
    place = np.concatenate([np.cumprod(radix[::-1])[::-1][1:], [1]])
    combo = codes @ place
    # how many items carry each full combination, and which rows (sorted by combination)
    counts = np.bincount(combo, minlength=int(np.prod(radix)))
    order = np.argsort(combo, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)])
    # items differing from a combination in exactly one attribute: sum over attributes of
    # (items with the other three equal) minus the combination's own count, once per attribute
    full = counts.reshape(tuple(radix))
    near = sum(np.broadcast_to(full.sum(axis=j, keepdims=True), full.shape) - full for j in range(len(_ATTRS)))
    near = near.reshape(-1)

    rng = np.random.default_rng(seed)
    seen: set[tuple[int, int]] = set()
    queries: list[CIRQuery] = []
    max_tries = 200 * n_queries
    for _ in range(max_tries):
        if len(queries) >= n_queries:
            break
        row = int(rng.integers(len(metadata)))
        pair = np.sort(rng.choice(len(_ATTRS), size=2, replace=False))
        new = codes[row].copy()
        for j in pair:
            choices = [v for v in range(radix[j]) if v != codes[row, j]]
            new[j] = choices[int(rng.integers(len(choices)))]
        target = int(new @ place)
        key = (row, target)
        if key in seen:
            continue
        seen.add(key)
        n_targets = int(counts[target])
        halves = [int(combo[row] + (new[j] - codes[row, j]) * place[j]) for j in pair]
        n_half = int(sum(counts[h] for h in halves))
        if not 1 <= n_targets <= max_targets or n_half < min_half_edits:
            continue
        names = [_ATTRS[j] for j in pair]
        old_values = [ATTRIBUTES[a][codes[row, j]] for a, j in zip(names, pair, strict=True)]
        new_values = [ATTRIBUTES[a][new[j]] for a, j in zip(names, pair, strict=True)]
        parts = [phrase(a, v, rng, phrasings=phrasings, old=o) for a, v, o in zip(names, new_values, old_values,
                                                                                  strict=True)]
        if rng.random() < 0.5:  # either edit may come first
            parts = parts[::-1]
        targets = order[starts[target] : starts[target + 1]]
        queries.append(
            CIRQuery(
                id=str(len(queries)),
                reference=str(ids[row]),
                text=_JOIN.join(parts),
                targets=tuple(str(t) for t in ids[np.sort(targets)]),
                meta={"attributes": names, "from": old_values, "to": new_values,
                      "half_edits": n_half, "near_misses": int(near[target])},
            )
        )
    if not queries:
        raise ValueError(
            f"No two-attribute query with at most {max_targets} targets and {min_half_edits} half-edits fits this "
            "gallery; use a larger gallery or relax max_targets / min_half_edits"
        )
    protocol = Protocol(exclude_reference=True, recall_ks=(1, 5, 10, 50), subset_ks=(), map_ks=(5, 10, 25, 50))
    desc = dict(gallery) if gallery is not None else {"kind": "shapes", "n": len(metadata)}
    desc.setdefault("query_seed", seed)
    desc.setdefault("phrasings", phrasings)
    desc.setdefault("level", "hard")
    return CIRBenchmark(name, queries, protocol, desc)

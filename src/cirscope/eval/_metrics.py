"""Retrieval metrics of the public composed-retrieval protocols (CIRR, CIRCO, FashionIQ).

Every function takes, per query, a *ranking* (the retrieved ids, best first, after any
removal the protocol asks for) and the set of correct targets. Ids may be any hashable
(gallery row numbers or id strings).
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Sequence

import numpy as np

__all__ = [
    "average_precision_at_k",
    "map_at_k",
    "recall_at_k",
    "recall_subset_at_k",
    "relevance",
]


def _check_k(k: int) -> int:
    if int(k) != k or k < 1:
        raise ValueError(f"K must be a positive integer, got {k!r}")
    return int(k)


def _check_lengths(rankings: Sequence, targets: Sequence) -> None:
    if len(rankings) != len(targets):
        raise ValueError(f"{len(rankings)} rankings but {len(targets)} target sets: pass one per query")
    if len(rankings) == 0:
        raise ValueError("No queries: the benchmark is empty")


def relevance(ranking: Sequence[Hashable], targets: Collection[Hashable], k: int) -> np.ndarray:
    """``rel_k`` for ``k = 1..K``: whether the k-th retrieved item is a target (bool array).

    Examples
    --------
    >>> relevance(["a", "b", "c"], {"b"}, 2).tolist()
    [False, True]
    """
    k = _check_k(k)
    target_set = set(targets)
    return np.fromiter((item in target_set for item in list(ranking)[:k]), dtype=bool, count=min(k, len(ranking)))


def recall_at_k(rankings: Sequence[Sequence[Hashable]], targets: Sequence[Collection[Hashable]], k: int) -> float:
    """Recall@K: the share of queries with a target among the top ``K``.

    CIRR protocol (Liu et al., "Image Retrieval on Real-life Images with Pre-trained
    Vision-and-Language Models", ICCV 2021): rank the whole gallery, **remove the reference
    image from the ranking** (the caller does so), then ``R@K = mean_q [target_q in top K]``.
    With several targets a query counts as a hit when any target is in the top ``K``.
    FashionIQ (Wu et al., CVPR 2021) reports R@10 and R@50 the same way but without
    removing the reference.

    Examples
    --------
    >>> recall_at_k([["a", "b"], ["c", "d"]], [{"b"}, {"x"}], k=2)
    0.5
    >>> recall_at_k([["a", "b"], ["c", "d"]], [{"b"}, {"x"}], k=1)
    0.0
    """
    _check_lengths(rankings, targets)
    k = _check_k(k)
    hits = [bool(relevance(r, t, k).any()) for r, t in zip(rankings, targets, strict=False)]
    return float(np.mean(hits))


def recall_subset_at_k(
    rankings: Sequence[Sequence[Hashable]],
    targets: Sequence[Collection[Hashable]],
    subsets: Sequence[Collection[Hashable]],
    k: int,
    references: Sequence[Hashable] | None = None,
) -> float:
    """Recall_subset@K (CIRR): Recall@K within each query's small candidate set.

    Liu et al., ICCV 2021: each CIRR query comes with a set of six visually similar images
    (``img_set.members``, which include the reference and the target). The full ranking is
    restricted to those members, the reference is removed, and
    ``R_subset@K = mean_q [target_q in the top K of the restricted ranking]``, K in 1, 2, 3.

    Parameters
    ----------
    rankings
        Full rankings (every subset member must appear in its ranking).
    targets, subsets
        Per query: the targets and the candidate set.
    references
        Per query: the reference id, removed from the subset.

    Examples
    --------
    >>> recall_subset_at_k([["r", "x", "a", "t", "b"]], [{"t"}], [{"r", "a", "t", "b"}], k=2, references=["r"])
    1.0
    >>> recall_subset_at_k([["r", "x", "a", "t", "b"]], [{"t"}], [{"r", "a", "t", "b"}], k=1, references=["r"])
    0.0
    """
    _check_lengths(rankings, targets)
    if len(subsets) != len(rankings):
        raise ValueError(f"{len(rankings)} rankings but {len(subsets)} candidate subsets")
    refs = list(references) if references is not None else [None] * len(rankings)
    restricted = []
    for i, (ranking, subset, ref) in enumerate(zip(rankings, subsets, refs, strict=False)):
        members = set(subset) - {ref}
        kept = [item for item in ranking if item in members]
        if len(kept) != len(members):
            missing = sorted(map(str, members - set(kept)))[:3]
            raise ValueError(
                f"Query {i}: the ranking lacks candidate-set members {missing}; rank the whole gallery "
                "(or at least every member) before restricting to the subset"
            )
        restricted.append(kept)
    return recall_at_k(restricted, targets, k)


def average_precision_at_k(ranking: Sequence[Hashable], targets: Collection[Hashable], k: int) -> float:
    """AP@K with CIRCO's normalisation.

    Baldrati et al., "Zero-Shot Composed Image Retrieval with Textual Inversion" (ICCV 2023)::

        AP@K = sum_{k <= K} P@k * rel_k / min(#targets, K)

    where ``P@k`` is the precision of the top ``k`` and ``rel_k`` is 1 when the k-th item is a
    target. Duplicate targets count once; a query without targets raises.

    Examples
    --------
    >>> average_precision_at_k(["t1", "x", "t2"], {"t1", "t2"}, k=3)  # (1/1 + 2/3) / 2
    0.8333333333333333
    >>> average_precision_at_k(["x", "t1"], {"t1", "t2", "t3"}, k=2)  # (1/2) / min(3, 2)
    0.25
    """
    k = _check_k(k)
    target_set = set(targets)
    if not target_set:
        raise ValueError("AP@K needs at least one target")
    rel = relevance(ranking, target_set, k).astype(np.float64)
    if rel.size == 0:
        return 0.0
    precision = np.cumsum(rel) / np.arange(1, rel.size + 1)
    return float(np.sum(precision * rel) / min(len(target_set), k))


def map_at_k(rankings: Sequence[Sequence[Hashable]], targets: Sequence[Collection[Hashable]], k: int) -> float:
    """mAP@K (CIRCO): the mean of :func:`average_precision_at_k` over queries.

    Examples
    --------
    >>> map_at_k([["t1", "x"], ["x", "y"]], [{"t1"}, {"t2"}], k=2)
    0.5
    """
    _check_lengths(rankings, targets)
    return float(np.mean([average_precision_at_k(r, t, k) for r, t in zip(rankings, targets, strict=False)]))

"""Acting on a finding, then measuring again: fair re-ranking, direction debiasing, a duplicate drop list.

* :func:`fair_rerank` -- Geyik et al.'s DetGreedy re-ranker (KDD 2019, Algorithm 1) on one ranking.
* :func:`rerank` -- a query's top K re-ranked to target shares, skew before and after.
* :func:`debias` -- a query with a bias direction projected out, skew before and after.
* :func:`drop_list` -- the near-duplicates to drop (all but one per group), ready to export.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cirscope._core.wording import fill
from cirscope.diagnostics._common import (
    Query,
    check_mask,
    check_space,
    labels_of,
    prompt_template,
    ranking,
    resolve_queries,
)
from cirscope.diagnostics._reading import DRAWS, label_index, random_topk, skew_stats
from cirscope.diagnostics._skew_math import desired_shares

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.diagnostics._duplicates import DuplicatesResult
    from cirscope.space._space import Space

__all__ = ["FixResult", "debias", "drop_list", "fair_rerank", "rerank"]


def fair_rerank(ranked_labels: Sequence[str], desired: Mapping[str, float], k: int) -> np.ndarray:
    """Positions (into ``ranked_labels``, best first) of a top ``k`` whose label shares follow ``desired``.

    DetGreedy of Geyik, Ambler & Kenthapadi (KDD 2019, Algorithm 1). At each position ``i``
    every label ``a`` should hold at least ``floor(i p_a)`` and at most ``ceil(i p_a)`` of the
    top ``i``: if some labels are below their minimum, take the best-ranked remaining item
    among them; else the best-ranked one among labels below their maximum; a label that runs
    out of items drops out. Within a label the original order is kept.

    Examples
    --------
    >>> fair_rerank(list("aaaabb"), {"a": 0.5, "b": 0.5}, 4).tolist()
    [0, 4, 1, 5]
    """
    labels = np.asarray([str(v) for v in ranked_labels], dtype=object)
    target = {str(a): float(p) for a, p in desired.items()}
    k = int(k)
    if k < 1 or k > labels.size:
        raise ValueError(f"k must be between 1 and the {labels.size} ranked items, got {k}")
    queues = {a: list(np.flatnonzero(labels == a)) for a in target}
    counts = dict.fromkeys(target, 0)
    out: list[int] = []
    for i in range(1, k + 1):  # K positions, each a choice among |labels| queue heads
        live = [a for a in target if queues[a]]
        if not live:
            break
        below_min = [a for a in live if counts[a] < np.floor(round(i * target[a], 9))]  # 10 * 0.3 is 3.0000000000000004
        below_max = [a for a in live if counts[a] < np.ceil(round(i * target[a], 9))]
        pool = below_min or below_max or live
        best = min(pool, key=lambda a: queues[a][0])
        out.append(int(queues[best].pop(0)))
        counts[best] += 1
    return np.asarray(out, dtype=np.int64)


@dataclass(frozen=True, repr=False, eq=False)
class FixResult:
    """A fix and its re-measurement: the top K before and after, and MaxSkew@K, MinSkew@K and NDKL@K
    of both beside what random rows of the same pool give (95th percentile)."""

    fix: str
    query: str
    attribute: str
    k: int
    rows_before: np.ndarray
    rows_after: np.ndarray
    table: pd.DataFrame

    def to_frame(self) -> pd.DataFrame:
        """One row per number: ``quantity``, ``before``, ``after``, ``random_p95``."""
        return self.table.copy()

    def summary(self) -> dict[str, Any]:
        t = self.table.set_index("quantity")
        return {"fix": self.fix, "query": self.query, **{f"{q} before": float(t.loc[q, "before"]) for q in t.index},
                **{f"{q} after": float(t.loc[q, "after"]) for q in t.index}}

    def sentence(self) -> str:
        t = self.table.set_index("quantity")
        q = f"MaxSkew@{self.k}"
        return (f"{self.fix}: {q} {t.loc[q, 'before']:.2f} -> {t.loc[q, 'after']:.2f} (random rows reach "
                f"{t.loc[q, 'random_p95']:.2f} 95% of the time); {int(np.isin(self.rows_after, self.rows_before).sum())}"
                f" of the {self.k} results stay.")

    def __repr__(self) -> str:
        return f"FixResult({self.sentence()})"


def _measure(fix: str, query: str, attribute: str, k: int, before: np.ndarray, after: np.ndarray,
             labels: np.ndarray, q: pd.Series, pool: np.ndarray, seed: int) -> FixResult:
    codes = label_index(labels, q.index)
    qv = q.to_numpy()
    b = skew_stats(codes[before[:k]][None, :], qv)
    a = skew_stats(codes[after[:k]][None, :], qv)
    null = skew_stats(random_topk(np.bincount(codes[pool], minlength=len(q)), k, DRAWS,
                                  np.random.default_rng(seed)), qv)
    rows = [{"quantity": f"{name}@{k}", "before": float(b[key][0]), "after": float(a[key][0]),
             "random_p95": float(np.percentile(null[key], 95))}
            for key, name in (("max_skew", "MaxSkew"), ("min_skew", "MinSkew"), ("ndkl", "NDKL"))]
    return FixResult(fix, query, attribute, k, before[:k], after[:k], pd.DataFrame(rows))


def _setup(space: Space, query: Any, attribute: str, mask: Any, desired: Any, k: int):
    space = check_space(space)
    labels, name = labels_of(space, attribute)
    mask_arr = check_mask(space, mask)
    found = resolve_queries(space, query)
    if len(found) != 1:
        raise ValueError(f"A fix works on one query at a time; got {len(found)}")
    resolved = found[0]
    allowed = np.ones(len(labels), dtype=bool) if mask_arr is None else mask_arr.copy()
    allowed[resolved.exclude] = False
    pool = np.flatnonzero(allowed)
    if int(k) >= pool.size:
        raise ValueError(f"k={k} must be below the {pool.size} rows the query can rank")
    return space, labels, name, mask_arr, resolved, pool, desired_shares(labels[pool], desired)


def rerank(space: Space, query: Any, attribute: str, k: int = 10, desired: str | Mapping[str, float] = "gallery",
           *, mask: Any = None, candidates: int | None = None, seed: int = 0) -> FixResult:
    """Re-rank a query's results so the top ``k`` follows target shares (:func:`fair_rerank`), and measure again.

    Parameters
    ----------
    space, query, attribute
        The :class:`~cirscope.Space`, a text or composed query, and the attribute column.
    k
        The cut-off (default 10).
    desired
        Target shares: ``"gallery"`` (default: the shares of the rows that can be ranked, e.g.
        the stars' colours with ``mask={"shape": "star"}``), ``"uniform"`` or ``{label: share}``.
    mask
        Rank only these rows.
    candidates
        How many of the original ranking the re-ranker may draw from (default ``20 * k``).

    Examples
    --------
    >>> fix = cs.diagnostics.rerank(space, "a star", "color", k=10, mask={"shape": "star"})
    >>> fix.to_frame().columns.tolist()
    ['quantity', 'before', 'after', 'random_p95']
    >>> t = fix.to_frame().set_index("quantity")
    >>> bool(t.loc["MaxSkew@10", "after"] <= t.loc["MaxSkew@10", "before"])
    True
    """
    space, labels, name, mask_arr, resolved, pool, q = _setup(space, query, attribute, mask, desired, k)
    n_cand = min(pool.size, int(candidates) if candidates else 20 * int(k))
    ranked = ranking(space, resolved, n_cand, mask_arr)
    after = ranked[fair_rerank(labels[ranked], q.to_dict(), int(k))]
    return _measure("fair re-ranking (DetGreedy, Geyik et al. 2019)", resolved.name, name, int(k), ranked, after,
                    labels, q, pool, seed)


def debias(space: Space, query: Any, attribute: str, k: int = 10, desired: str | Mapping[str, float] = "gallery",
           *, prompts: Sequence[str] | None = None, mask: Any = None, seed: int = 0) -> FixResult:
    """Project the attribute's text directions out of the query vector, rank again and measure again.

    The bias subspace is spanned by the centred text embeddings of one prompt per label
    (``prompts``, default the vocabulary's template, e.g. "a yellow shape"):
    ``q' = norm(q - U U^T q)`` with ``U`` an orthonormal basis of that span. This is the
    simple projection of Chuang et al., "Debiasing Vision-Language Models via Biased Prompts"
    (2023), without their calibration. Caveat: it removes the attribute from *every* query,
    so a query that asks for a colour loses it too, and a projection can leave (or create)
    a skew that rides on other directions: measure again, as this function does.

    Examples
    --------
    >>> fix = cs.diagnostics.debias(space, "a star", "color", k=10)
    >>> fix.fix.startswith("direction debiasing")
    True
    """
    space, labels, name, mask_arr, resolved, pool, q = _setup(space, query, attribute, mask, desired, k)
    if prompts is None:
        template = prompt_template(space, name) if isinstance(attribute, str) else "a photo of {}"
        prompts = [fill(template, label) for label in q.index]
    texts = np.asarray(space.encode_text(list(prompts)), dtype=np.float64)
    if len(texts) < 2:
        raise ValueError("Direction debiasing needs at least two prompts (one per label)")
    centred = texts - texts.mean(axis=0)
    u, sv, _ = np.linalg.svd(centred.T, full_matrices=False)
    basis = u[:, sv > 1e-8 * sv.max()]
    vec = np.asarray(resolved.vector, dtype=np.float64)
    vec = vec - basis @ (basis.T @ vec)
    vec /= np.linalg.norm(vec)
    before = ranking(space, resolved, int(k), mask_arr)
    after = ranking(space, Query(resolved.name, vec.astype(np.float32), "vector", resolved.exclude), int(k), mask_arr)
    return _measure("direction debiasing (projection, Chuang et al. 2023)", resolved.name, name, int(k), before,
                    after, labels, q, pool, seed)


def drop_list(result: DuplicatesResult) -> pd.DataFrame:
    """The near-duplicates to drop: every member of a group but its first row (``row``, ``id``,
    ``group``, ``keep_row``); write it with ``.to_csv(path, index=False)``.

    Examples
    --------
    >>> drop_list(cs.diagnostics.duplicates(space)).columns.tolist()
    ['row', 'id', 'group', 'keep_row']
    """
    group = np.asarray(result.group)
    rows = np.flatnonzero(group >= 0)
    order = rows[np.lexsort((rows, group[rows]))]
    first = pd.Series(order).groupby(group[order]).transform("first").to_numpy()
    drop, keep = order[order != first], first[order != first]
    drop, keep = drop[np.argsort(drop, kind="stable")], keep[np.argsort(drop, kind="stable")]
    pairs = result.pairs
    ids = dict(zip(pairs["row_a"], pairs["id_a"], strict=True)) | dict(zip(pairs["row_b"], pairs["id_b"], strict=True))
    return pd.DataFrame({"row": drop.astype(np.int64), "id": [str(ids.get(int(r), r)) for r in drop],
                         "group": group[drop].astype(np.int64), "keep_row": keep.astype(np.int64)},
                        columns=["row", "id", "group", "keep_row"])

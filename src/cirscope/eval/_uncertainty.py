"""How sure a benchmark figure is: bootstrap intervals, paired tests and the set of settings tied with the best.

Every function takes *per-query* values (a hit 0/1 for Recall@K, an AP for mAP@K) and
resamples queries, never settings: two methods scored on the same queries are compared
query for query (a paired comparison), which is far sharper than comparing two intervals.
One seed gives the same resamples for every row, so intervals and ties are reproducible.
"""

from __future__ import annotations

import numpy as np

__all__ = ["bootstrap_means", "interval", "mcnemar_p", "tied_with_best"]


def bootstrap_means(per_query: np.ndarray, n_boot: int = 2000, seed: int = 0) -> np.ndarray:
    """Means of ``per_query`` over ``n_boot`` resamples of the queries (the same resamples for every row).

    ``per_query`` is ``(Q,)`` or ``(R, Q)`` (one row per method or setting); returns
    ``(n_boot,)`` or ``(n_boot, R)``.

    Examples
    --------
    >>> m = bootstrap_means(np.array([[1, 1, 0, 0], [1, 1, 1, 1]]), n_boot=500)
    >>> m.shape, bool((m[:, 1] == 1).all())
    ((500, 2), True)
    """
    x = np.asarray(per_query, dtype=np.float64)
    one = x.ndim == 1
    x = np.atleast_2d(x)
    q = x.shape[1]
    if q == 0:
        raise ValueError("No queries to resample")
    rng = np.random.default_rng(seed)
    # resample counts: how often each query is drawn in each resample (rows sum to Q)
    weights = rng.multinomial(q, np.full(q, 1.0 / q), size=n_boot).astype(np.float64)
    means = weights @ x.T / q
    return means[:, 0] if one else means


def interval(per_query: np.ndarray, level: float = 0.95, n_boot: int = 2000, seed: int = 0) -> np.ndarray:
    """Percentile bootstrap interval of the mean: ``(2,)`` for ``(Q,)``, ``(R, 2)`` for ``(R, Q)``.

    Examples
    --------
    >>> lo, hi = interval(np.r_[np.ones(80), np.zeros(20)])
    >>> bool(0.7 < lo < 0.8 < hi < 0.9)
    True
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be within (0, 1), got {level}")
    means = bootstrap_means(per_query, n_boot, seed)
    tail = (1 - level) / 2
    return np.quantile(means, [tail, 1 - tail], axis=0).T


def mcnemar_p(hits_a: np.ndarray, hits_b: np.ndarray) -> float:
    """Exact two-sided McNemar test of two methods' hits (0/1) on the same queries.

    Only the queries where exactly one of them hits count; under "equally good" each such
    query is a fair coin. Returns the p-value (1.0 when they never disagree).

    Examples
    --------
    >>> a = np.r_[np.ones(30), np.zeros(70)]
    >>> round(mcnemar_p(a, np.zeros(100)), 6), mcnemar_p(a, a)
    (0.0, 1.0)
    """
    from scipy.stats import binomtest

    a = np.asarray(hits_a).astype(bool)
    b = np.asarray(hits_b).astype(bool)
    if a.shape != b.shape:
        raise ValueError(f"Both methods need the same queries, got {a.shape} and {b.shape}")
    only_a, only_b = int((a & ~b).sum()), int((b & ~a).sum())
    if only_a + only_b == 0:
        return 1.0
    return float(binomtest(only_a, only_a + only_b, 0.5).pvalue)


def tied_with_best(per_query: np.ndarray, level: float = 0.95, n_boot: int = 2000, seed: int = 0) -> np.ndarray:
    """Which rows (settings) are within noise of the best one: a boolean ``(R,)``.

    The best row is the one with the highest mean. A row is tied with it when the paired
    bootstrap interval (``level``) of ``best - row``, over the same resampled queries,
    reaches down to zero or below. The best row is always tied with itself. The result is a
    set of settings (a plateau), not one argmax cell.

    Examples
    --------
    >>> hits = np.array([[1] * 50 + [0] * 50, [1] * 51 + [0] * 49, [1] * 10 + [0] * 90])
    >>> tied_with_best(hits).tolist()
    [True, True, False]
    """
    x = np.atleast_2d(np.asarray(per_query, dtype=np.float64))
    best = int(np.argmax(x.mean(axis=1)))
    diff = x[best][None, :] - x
    lower = np.quantile(bootstrap_means(diff, n_boot, seed), (1 - level) / 2, axis=0)
    tied = lower <= 0
    tied[best] = True
    return tied

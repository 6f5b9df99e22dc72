"""Reading the numbers: noise floors from random rankings, bootstrap intervals, bounds and effect-size bands.

Every function here is vectorised over draws and seeded, so a result's ``baseline`` and
``interval`` are the same in every run.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "BASELINE_COLUMNS",
    "DRAWS",
    "INTERVAL_COLUMNS",
    "LEVEL",
    "cohen_band",
    "floor_row",
    "interval_row",
    "label_index",
    "max_skew_bound",
    "min_skew_floor",
    "ndkl_max",
    "random_graph_hubness",
    "random_topk",
    "resample_ranking",
    "skew_stats",
]

#: Random draws of a noise floor and bootstrap resamples (seeded).
DRAWS = 1000
#: The confidence level of the bootstrap intervals.
LEVEL = 0.95
BASELINE_COLUMNS = ["quantity", "value", "random_median", "random_p5", "random_p95", "beyond_random", "draws", "null"]
INTERVAL_COLUMNS = ["quantity", "value", "low", "high", "level", "method"]
_CELLS = 4_000_000  # the most (draw, position, label) cells held at once


def min_skew_floor(desired: np.ndarray, k: int) -> float:
    """The lowest MinSkew@K can go: a label absent from the top K counts as ``1/K`` (Geyik et al. 2019).

    ``Skew_a@K = ln(1/K) - ln(q_a)`` for an absent label, so the floor is
    ``-ln(K * max_a q_a)``; with 8 equally desired labels and K = 10 it is ``-ln(10/8) = -0.223``,
    which is what MinSkew@10 reads whenever one colour is missing from the top 10.

    Examples
    --------
    >>> round(min_skew_floor(np.full(8, 1 / 8), 10), 4)
    -0.2231
    """
    return float(-np.log(int(k) * float(np.max(desired))))


def max_skew_bound(desired: np.ndarray) -> float:
    """The highest MaxSkew@K can go: the whole top K one label, the least desired one: ``-ln(min_a q_a)``.

    Examples
    --------
    >>> round(max_skew_bound(np.full(8, 1 / 8)), 4)  # ln 8
    2.0794
    """
    return float(-np.log(float(np.min(desired))))


def ndkl_max(desired: np.ndarray) -> float:
    """The maximum of NDKL: every prefix holds only the least desired label, ``KL = -ln(min_a q_a)``.

    KL(P || Q) is convex in P, so over label shares it peaks at a single label; that label
    can fill every prefix at once, and the discounted average of equal terms is that term.

    Examples
    --------
    >>> round(ndkl_max(np.array([0.5, 0.25, 0.25])), 4)  # ln 4
    1.3863
    """
    return float(-np.log(float(np.min(desired))))


def label_index(labels: np.ndarray, names: pd.Index) -> np.ndarray:
    """Integer codes of ``labels`` in the order of ``names`` (``-1`` for a label not among them)."""
    return pd.Index(names).get_indexer(pd.Index(np.asarray(labels, dtype=object)))


def random_topk(counts: np.ndarray, k: int, draws: int, rng: np.random.Generator) -> np.ndarray:
    """``(draws, k)`` label codes of ``k`` rows drawn at random, without replacement, from a pool
    holding ``counts[a]`` rows of label ``a``, in random order: a random ranking's top ``k``.

    The label counts of a random ``k``-subset follow the multivariate hypergeometric law and,
    given the counts, every order is equally likely: both are drawn exactly.

    Examples
    --------
    >>> codes = random_topk(np.array([3, 1]), 4, draws=5, rng=np.random.default_rng(0))
    >>> codes.shape, np.sort(codes, axis=1)[0].tolist()  # the whole pool: always 3 x label 0, 1 x label 1
    ((5, 4), [0, 0, 0, 1])
    """
    counts = np.asarray(counts, dtype=np.int64)
    k = int(k)
    if k > counts.sum():
        raise ValueError(f"Cannot draw {k} rows from a pool of {int(counts.sum())}")
    picked = rng.multivariate_hypergeometric(counts, k, size=int(draws))  # (draws, L)
    codes = np.repeat(np.tile(np.arange(counts.size), int(draws)), picked.ravel()).reshape(int(draws), k)
    order = np.argsort(rng.random((int(draws), k)), axis=1)
    return np.take_along_axis(codes, order, axis=1)


def resample_ranking(codes: np.ndarray, draws: int, rng: np.random.Generator) -> np.ndarray:
    """``(draws, K)`` bootstrap resamples of a ranked top K (label codes): K positions drawn with
    replacement and kept in rank order, so NDKL's discounts still apply.

    Examples
    --------
    >>> resample_ranking(np.array([0, 0, 1]), 4, np.random.default_rng(0)).shape
    (4, 3)
    """
    codes = np.asarray(codes, dtype=np.int64)
    pos = np.sort(rng.integers(0, codes.size, size=(int(draws), codes.size)), axis=1)
    return codes[pos]


def skew_stats(codes: np.ndarray, desired: np.ndarray) -> dict[str, np.ndarray]:
    """MaxSkew@K, MinSkew@K and NDKL@K of every row of ``codes`` (``(draws, K)`` label codes).

    The same formulas as :func:`cirscope.diagnostics.label_skew` and
    :func:`cirscope.diagnostics.ndkl`, over many rankings at once.

    Examples
    --------
    >>> s = skew_stats(np.array([[0, 1], [0, 0]]), np.array([0.5, 0.5]))
    >>> s["max_skew"].round(4).tolist(), s["ndkl"].round(4).tolist()  # the second: ln 2 everywhere
    ([0.0, 0.6931], [0.425, 0.6931])
    """
    codes = np.atleast_2d(np.asarray(codes, dtype=np.int64))
    q = np.asarray(desired, dtype=np.float64)
    n, k = codes.shape
    n_labels = q.size
    counts = np.bincount((codes + n_labels * np.arange(n)[:, None]).ravel(), minlength=n * n_labels)
    counts = counts.reshape(n, n_labels)
    p = np.where(counts == 0, 1.0 / k, counts / k)
    skews = np.log(p) - np.log(q)[None, :]
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    ndkl = np.empty(n)
    step = max(1, _CELLS // max(1, k * n_labels))
    logq = np.log(q)
    for start in range(0, n, step):  # bounded (draws, K, labels) blocks
        block = codes[start:start + step]
        onehot = np.zeros((len(block), k, n_labels))
        np.put_along_axis(onehot, block[:, :, None], 1.0, axis=2)
        shares = np.cumsum(onehot, axis=1) / np.arange(1, k + 1)[None, :, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(shares > 0, shares * (np.log(shares) - logq[None, None, :]), 0.0)
        ndkl[start:start + step] = (terms.sum(axis=2) * discount[None, :]).sum(axis=1) / discount.sum()
    return {"max_skew": skews.max(axis=1), "min_skew": skews.min(axis=1), "ndkl": ndkl}


def random_graph_hubness(n_items: int, n_queries: int, k: int, draws: int, stats: Any,
                         seed: int = 0) -> dict[str, np.ndarray]:
    """Hubness measures (``stats(n_k, k, n_queries)``, a dict of numbers) of random k-NN graphs of the
    same size: each query picks ``k`` items uniformly.

    The picks are drawn with replacement (a repeat has probability about ``k / n_items`` per
    pick, negligible for ``k`` much smaller than the gallery), so every ``N_k`` is close to
    ``Binomial(n_queries, k / n_items)``: the noise floor of k-skewness, hubs and Robin Hood.

    Examples
    --------
    >>> from cirscope.diagnostics import hubness_stats
    >>> s = random_graph_hubness(1000, 1000, 10, draws=20, stats=hubness_stats)
    >>> bool(abs(np.median(s["k_skewness"]) - 0.32) < 0.15)  # about Poisson(10): skewness 1/sqrt(10)
    True
    >>> bool(1 <= np.median(s["hubs"]) <= 8)  # P(Poisson(10) >= 20) = 0.0035: a few "hubs" by chance alone
    True
    """
    rng = np.random.default_rng(seed)
    out: dict[str, list[float]] = {}
    for _ in range(int(draws)):  # one bincount per draw: memory n_queries * k, whatever the draws
        n_k = np.bincount(rng.integers(0, n_items, size=int(n_queries) * int(k)), minlength=n_items)
        for key, value in stats(n_k, k, n_queries).items():
            out.setdefault(key, []).append(float(value))
    return {key: np.asarray(v) for key, v in out.items()}


def floor_row(quantity: str, value: float, draws: np.ndarray, null: str, *, low_is_extreme: bool = False) -> dict:
    """One row of a ``baseline`` table: the value against the median and 5th/95th percentiles of ``draws``.

    ``beyond_random`` is True when the value lies past the 95th percentile (past the 5th for a
    quantity whose extreme is low, such as MinSkew).
    """
    draws = np.asarray(draws, dtype=np.float64)
    draws = draws[np.isfinite(draws)]
    if draws.size == 0:
        med = p5 = p95 = float("nan")
    else:
        med, p5, p95 = (float(v) for v in np.percentile(draws, [50, 5, 95]))
    value = float(value)
    beyond = bool(value < p5) if low_is_extreme else bool(value > p95)
    return {"quantity": quantity, "value": value, "random_median": med, "random_p5": p5, "random_p95": p95,
            "beyond_random": beyond if np.isfinite(value) and draws.size else False, "draws": int(draws.size),
            "null": null}


def interval_row(quantity: str, value: float, draws: np.ndarray, method: str, level: float = LEVEL) -> dict:
    """One row of an ``interval`` table: the bias-corrected percentile bootstrap interval (Efron 1987).

    Statistics such as MaxSkew (a maximum of noisy shares) are biased upwards under
    resampling, so plain percentiles can miss the estimate; the bias correction shifts the
    percentiles by ``z0 = Phi^-1(share of draws below the value, ties half)``. The interval
    is widened to include the value when the draws lie almost all on one side of it.

    Examples
    --------
    >>> r = interval_row("x", 0.0, np.random.default_rng(0).normal(size=4000), "test")
    >>> bool(-2.1 < r["low"] < -1.8 and 1.8 < r["high"] < 2.1)
    True
    """
    from scipy.stats import norm

    draws = np.asarray(draws, dtype=np.float64)
    draws = draws[np.isfinite(draws)]
    value = float(value)
    if draws.size == 0 or not np.isfinite(value):
        return {"quantity": quantity, "value": value, "low": np.nan, "high": np.nan, "level": level, "method": method}
    below = (np.sum(draws < value) + 0.5 * np.sum(draws == value)) / draws.size
    below = float(np.clip(below, 0.5 / draws.size, 1.0 - 0.5 / draws.size))
    z0, z = float(norm.ppf(below)), float(norm.ppf(0.5 + level / 2.0))
    lo_q, hi_q = norm.cdf(2.0 * z0 - z), norm.cdf(2.0 * z0 + z)
    low, high = (float(v) for v in np.percentile(draws, [100.0 * lo_q, 100.0 * hi_q]))
    return {"quantity": quantity, "value": value, "low": min(low, value), "high": max(high, value),
            "level": level, "method": method}


def cohen_band(d: float) -> str:
    """Cohen's (1988) conventional label of an effect size ``|d|``: negligible (< 0.2), small (< 0.5),
    medium (< 0.8) or large.

    Cohen, *Statistical Power Analysis for the Behavioral Sciences* (2nd ed., 1988), sec. 2.2.3.
    WEAT effect sizes run from -2 to 2 (Caliskan et al. 2017).

    Examples
    --------
    >>> [cohen_band(v) for v in (0.1, -0.3, 0.6, 1.84)]
    ['negligible', 'small', 'medium', 'large']
    """
    a = abs(float(d))
    if not np.isfinite(a):
        return "undefined"
    return "negligible" if a < 0.2 else "small" if a < 0.5 else "medium" if a < 0.8 else "large"

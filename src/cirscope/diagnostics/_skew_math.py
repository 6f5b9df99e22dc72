"""The formulas of retrieval skew on one ranking: desired shares, Skew@K per label, NDKL.

Geyik, Ambler & Kenthapadi, "Fairness-Aware Ranking in Search & Recommendation Systems with
Application to LinkedIn Talent Search" (KDD 2019).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["desired_shares", "label_skew", "mentions", "ndkl"]


def desired_shares(pool_labels: Sequence[str], desired: str | Mapping[str, float] = "uniform") -> pd.Series:
    """The desired share ``q_a`` of every label.

    ``"uniform"``: ``1 / |labels|`` (equal opportunity); ``"gallery"``: ``n_a / N``, the
    label's share of ``pool_labels`` (demographic parity); or ``{label: weight}``
    (normalised to sum to 1).

    Examples
    --------
    >>> desired_shares(["a", "a", "a", "b"], "uniform").to_dict()
    {'a': 0.5, 'b': 0.5}
    >>> desired_shares(["a", "a", "a", "b"], "gallery").to_dict()
    {'a': 0.75, 'b': 0.25}
    """
    pool = pd.Series(np.asarray(pool_labels, dtype=object), dtype=object).map(str)
    if pool.empty:
        raise ValueError("No gallery rows to take label shares from")
    present = sorted(pool.unique().tolist())
    if isinstance(desired, Mapping):
        q = pd.Series({str(k): float(v) for k, v in desired.items()}, dtype=np.float64)
        missing = sorted(set(present) - set(q.index))
        if missing:
            raise ValueError(f"The desired shares lack labels present in the gallery: {missing[:10]}")
        if (q < 0).any() or q.sum() <= 0 or not np.isfinite(q).all():
            raise ValueError("Desired shares must be finite, non-negative and not all zero")
        zero = sorted(label for label in present if q[label] == 0)
        if zero:
            raise ValueError(f"The desired share of {zero[:10]} is 0 but the gallery holds them: Skew = ln(p/q) "
                             "would be infinite. Give every present label a positive share.")
        return (q / q.sum()).sort_index()
    if desired == "uniform":
        return pd.Series(1.0 / len(present), index=present, dtype=np.float64)
    if desired == "gallery":
        counts = pool.value_counts()
        return (counts / counts.sum()).reindex(present).astype(np.float64)
    raise ValueError(f"desired must be 'uniform', 'gallery' or {{label: share}}, got {desired!r}")


def label_skew(ranked_labels: Sequence[str], desired: pd.Series | Mapping[str, float], k: int) -> pd.DataFrame:
    """Skew of every label in the top ``k`` of a ranking.

    Geyik et al. (KDD 2019)::

        p_a      = count of label a among the top K / K     (1 / K when the count is 0)
        Skew_a@K = ln(p_a) - ln(q_a)
        MaxSkew@K = max_a Skew_a@K,   MinSkew@K = min_a Skew_a@K

    Parameters
    ----------
    ranked_labels
        The label of each ranked item, best first (at least ``k`` of them).
    desired
        ``q_a`` per label (see :func:`desired_shares`); it defines the label set.
    k
        The cut-off.

    Returns
    -------
    pandas.DataFrame
        Columns ``label``, ``count``, ``share`` (``p_a``), ``desired`` (``q_a``), ``skew``.

    Examples
    --------
    A 10-item ranking with 6 "x", 3 "y", 1 "z" against the uniform target 1/3:

    >>> ranked = list("xxyxxyxzxy")
    >>> t = label_skew(ranked, {"x": 1 / 3, "y": 1 / 3, "z": 1 / 3}, k=10)
    >>> t.set_index("label")["skew"].round(4).to_dict()  # ln(.6*3), ln(.3*3), ln(.1*3)
    {'x': 0.5878, 'y': -0.1054, 'z': -1.204}
    """
    q = pd.Series(desired, dtype=np.float64)
    k = int(k)
    if len(ranked_labels) < k:
        raise ValueError(f"The ranking has {len(ranked_labels)} items, fewer than k={k}")
    top = pd.Series(np.asarray(ranked_labels[:k], dtype=object))
    unknown = sorted(set(top) - set(q.index))
    if unknown:
        raise ValueError(f"Labels {unknown[:5]} in the ranking have no desired share")
    counts = top.value_counts().reindex(q.index, fill_value=0).astype(np.int64)
    share = counts / k
    p = np.where(counts.to_numpy() == 0, 1.0 / k, share.to_numpy())
    with np.errstate(divide="ignore"):
        skew_values = np.log(p) - np.log(q.to_numpy())
    return pd.DataFrame(
        {"label": q.index.to_numpy(), "count": counts.to_numpy(), "share": share.to_numpy(),
         "desired": q.to_numpy(), "skew": skew_values}
    )


def ndkl(ranked_labels: Sequence[str], desired: pd.Series | Mapping[str, float], k: int) -> float:
    """Normalised discounted cumulative KL-divergence of the top ``k`` from the desired shares.

    Geyik et al. (KDD 2019)::

        NDKL = (1 / Z) sum_{i=1..K} KL(P_i || Q) / log2(i + 1),   Z = sum_{i=1..K} 1 / log2(i + 1)

    where ``P_i`` holds the label shares among the top ``i`` and ``Q`` the desired shares;
    natural log, ``0 log 0 = 0``. 0 means every prefix matches ``Q``.

    Examples
    --------
    >>> round(ndkl(["a", "b"], {"a": 0.5, "b": 0.5}, k=2), 4)  # KL(P_1) = ln 2, KL(P_2) = 0
    0.425
    """
    q = pd.Series(desired, dtype=np.float64)
    k = int(k)
    if len(ranked_labels) < k:
        raise ValueError(f"The ranking has {len(ranked_labels)} items, fewer than k={k}")
    index = {label: j for j, label in enumerate(q.index)}
    try:
        cols = np.array([index[label] for label in ranked_labels[:k]], dtype=np.int64)
    except KeyError as exc:
        raise ValueError(f"Label {exc.args[0]!r} in the ranking has no desired share") from None
    onehot = np.zeros((k, len(q)))
    onehot[np.arange(k), cols] = 1.0
    p = np.cumsum(onehot, axis=0) / np.arange(1, k + 1)[:, None]
    qv = q.to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(p) - np.log(qv)[None, :]), 0.0)
    kl = terms.sum(axis=1)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    return float(np.sum(kl * discount) / np.sum(discount))


def mentions(text: str | None, labels: Sequence[str]) -> list[str]:
    """The labels that ``text`` names as whole words (case-insensitive).

    A query that asks for a label ("make it red") moves that label's share on purpose: its
    skew over that attribute measures the requested effect, not a bias.

    Examples
    --------
    >>> mentions("make it red", ["red", "blue", "green"])
    ['red']
    >>> mentions("a reddish star", ["red"])
    []
    """
    if not text:
        return []
    low = str(text).lower()
    return [str(label) for label in labels
            if str(label).strip() and re.search(r"(?<![\w-])" + re.escape(str(label).lower()) + r"(?![\w-])", low)]

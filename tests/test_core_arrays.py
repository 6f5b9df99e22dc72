"""The shared top-k helper against the rankings it replaced: same positions, order and dtypes."""

from __future__ import annotations

import numpy as np
import pytest

from cirscope._core.arrays import top_k, unit_rows


def _old_top_positions(scores, k):
    """``neighbors._index.top_positions`` as it was."""
    k = min(k, int(np.isfinite(scores).sum()))
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    top = np.argpartition(-scores, k - 1)[:k] if k < scores.size else np.arange(scores.size)
    return top[np.lexsort((top, -scores[top]))].astype(np.int64)


def _old_stable_ranking(s, k):
    """The argpartition + stable argsort of ``eval._runner`` and ``diagnostics._hubness``."""
    n = s.shape[1]
    top = np.argpartition(-s, k - 1, axis=1)[:, :k] if k < n else np.tile(np.arange(n), (len(s), 1))
    order = np.argsort(-np.take_along_axis(s, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


@pytest.mark.parametrize("k", [1, 5, 49, 50, 80])
def test_vectors_rank_as_before_with_excluded_items_left_out(k):
    rng = np.random.default_rng(k)
    scores = rng.normal(size=50).astype(np.float32)
    scores[rng.choice(50, 6, replace=False)] = -np.inf
    scores[:4] = scores[10]  # ties: broken by position
    got, vals = top_k(scores, k, finite_only=True, with_scores=True)
    assert np.array_equal(got, _old_top_positions(scores, k)) and got.dtype == np.int64
    assert vals.dtype == np.float32 and np.array_equal(vals, scores[got]) and np.isfinite(vals).all()
    assert len(got) == min(k, 44)
    assert np.array_equal(top_k(scores, k), np.lexsort((np.arange(50), -scores))[: min(k, 50)])


@pytest.mark.parametrize("k", [1, 7, 30, 31])
def test_matrices_rank_as_the_stable_sorts_they_replaced(k):
    s = np.random.default_rng(0).normal(size=(40, 31))
    got = top_k(s, k)
    assert got.dtype == np.int64 and got.shape == (40, min(k, 31))
    assert np.array_equal(got, _old_stable_ranking(s, min(k, 31)))  # no ties: identical
    assert np.array_equal(got, np.argsort(-s, axis=1, kind="stable")[:, :k])


def test_matrix_rows_with_few_finite_scores_are_padded():
    s = np.array([[0.2, 0.5, 0.1], [0.3, -np.inf, -np.inf], [-np.inf, -np.inf, -np.inf]])
    rows, vals = top_k(s, 2, finite_only=True, with_scores=True)
    assert rows.tolist() == [[1, 0], [0, -1], [-1, -1]] and vals.dtype == np.float32
    assert np.isnan(vals[1, 1]) and np.isnan(vals[2]).all()
    rows, vals = top_k(s, 0, finite_only=True, with_scores=True)
    assert rows.shape == (3, 0) and rows.dtype == np.int64
    assert top_k(s, 3).tolist()[1] == [0, 1, 2]  # without finite_only, excluded items rank last


def test_unit_rows_keeps_zero_rows():
    out = unit_rows(np.array([[0.0, 2.0], [0.0, 0.0]]))
    assert out.tolist() == [[0.0, 1.0], [0.0, 0.0]]

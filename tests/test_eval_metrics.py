"""Protocol metrics on hand-computed cases."""

from __future__ import annotations

import pytest

from cirscope.eval import average_precision_at_k, map_at_k, recall_at_k, recall_subset_at_k, relevance


def test_recall_at_k_single_target():
    rankings = [[3, 1, 4, 1], [5, 9, 2, 6], [7, 8, 9, 0]]
    targets = [{1}, {6}, {42}]
    assert recall_at_k(rankings, targets, 1) == 0.0
    assert recall_at_k(rankings, targets, 2) == pytest.approx(1 / 3)
    assert recall_at_k(rankings, targets, 4) == pytest.approx(2 / 3)
    assert recall_at_k(rankings, targets, 50) == pytest.approx(2 / 3)  # K beyond the list


def test_recall_at_k_counts_any_of_several_targets_once():
    assert recall_at_k([["a", "b", "c"]], [{"b", "c"}], 3) == 1.0


def test_recall_subset_restricts_to_candidates_and_drops_reference():
    # full ranking: r x a t b ; subset {r, a, t, b}; minus reference -> a t b
    ranking = ["r", "x", "a", "t", "b"]
    args = ([ranking], [{"t"}], [{"r", "a", "t", "b"}])
    assert recall_subset_at_k(*args, k=1, references=["r"]) == 0.0
    assert recall_subset_at_k(*args, k=2, references=["r"]) == 1.0
    # without removing the reference, r takes the first place: t is third
    assert recall_subset_at_k(*args, k=2) == 0.0
    assert recall_subset_at_k(*args, k=3) == 1.0


def test_recall_subset_needs_full_rankings():
    with pytest.raises(ValueError, match="lacks candidate-set members"):
        recall_subset_at_k([["a"]], [{"a"}], [{"a", "z"}], k=1)


def test_average_precision_hand_computed():
    # ranking: t1 x t2 y t3 ; targets {t1, t2, t3, t4}
    ranking = ["t1", "x", "t2", "y", "t3"]
    targets = {"t1", "t2", "t3", "t4"}
    # P@1 = 1, P@3 = 2/3, P@5 = 3/5
    assert average_precision_at_k(ranking, targets, 5) == pytest.approx((1 + 2 / 3 + 3 / 5) / 4)
    assert average_precision_at_k(ranking, targets, 3) == pytest.approx((1 + 2 / 3) / 3)  # min(4, 3)
    assert average_precision_at_k(ranking, targets, 1) == pytest.approx(1.0)
    assert average_precision_at_k(["x", "y"], targets, 2) == 0.0


def test_average_precision_perfect_ranking_is_one():
    assert average_precision_at_k(["a", "b", "c"], {"a", "b"}, 10) == pytest.approx(1.0)
    assert average_precision_at_k(["a", "b", "c"], {"a", "b", "c", "d", "e"}, 3) == pytest.approx(1.0)


def test_map_at_k_is_the_mean():
    rankings = [["t", "x"], ["x", "t"], ["x", "y"]]
    targets = [{"t"}, {"t"}, {"t"}]
    assert map_at_k(rankings, targets, 2) == pytest.approx((1 + 0.5 + 0) / 3)


def test_relevance_vector():
    assert relevance([1, 2, 3, 4], {2, 4}, 3).tolist() == [False, True, False]


@pytest.mark.parametrize("k", [0, -1, 2.5])
def test_bad_k(k):
    with pytest.raises(ValueError, match="positive integer"):
        recall_at_k([[1]], [{1}], k)


def test_length_mismatch_and_empty():
    with pytest.raises(ValueError, match="one per query"):
        recall_at_k([[1], [2]], [{1}], 1)
    with pytest.raises(ValueError, match="empty"):
        map_at_k([], [], 5)
    with pytest.raises(ValueError, match="at least one target"):
        average_precision_at_k([1], set(), 5)

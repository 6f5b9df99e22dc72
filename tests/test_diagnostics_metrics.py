"""The diagnostics' formulas on small cases worked out by hand (no model needed)."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from PIL import Image

import cirscope as cs
from cirscope.diagnostics import (
    _association,
    _duplicates,
    _gap,
    _hubness,
    _long_tail,
    _outliers,
    _skew,
    _source_bias,
    _sweep,
    _uniqueness,
)
from cirscope.diagnostics._result import rows_in_bin


def synthetic_space(vectors: np.ndarray, **columns) -> cs.Space:
    """A space over given vectors (blank 4x4 images; no model)."""
    n = len(vectors)
    meta = pd.DataFrame({"id": [f"item-{i:04d}" for i in range(n)], **columns})
    gallery = cs.Gallery.from_images([Image.new("RGB", (4, 4), (i % 255, 0, 0)) for i in range(n)], metadata=meta)
    return cs.Space.from_embeddings(gallery, vectors, model_name="synthetic")


def unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.normal(size=(n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("module", [_skew, _sweep, _association, _hubness, _gap, _duplicates, _outliers, _uniqueness,
                                    _long_tail, _source_bias])
def test_docstring_examples(module, _doctest_space):
    """The examples run with the names the suite's doctests get (``cs``, ``np``, a toy-model ``space``)."""
    names = {"cs": cs, "np": np, "space": _doctest_space, "gallery": _doctest_space.gallery}
    result = doctest.testmod(module, extraglobs=names, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


# ---------------------------------------------------------------------------------------------- skew
RANKING = list("aabacabaab")  # K = 10: a x6, b x3, c x1, d x0


def test_max_skew_of_a_ten_item_ranking_by_hand():
    """Labels a, b, c, d; uniform target q = 1/4.

    p_a = 6/10, p_b = 3/10, p_c = 1/10, p_d = 0 -> 1/K = 1/10 (the smoothing of the definition).
    Skew_a = ln(.6/.25) = ln 2.4 = 0.875469, Skew_b = ln 1.2 = 0.182322,
    Skew_c = Skew_d = ln .4 = -0.916291. MaxSkew@10 = 0.875469 (a), MinSkew@10 = -0.916291.
    At K = 5 (a a b a c): p = .6, .2, .2, 0 -> .2: Skew = ln 2.4, ln .8, ln .8, ln .8.
    """
    q = _skew.desired_shares(list("abcd"), "uniform")
    t = _skew.label_skew(RANKING, q, 10).set_index("label")
    assert t["count"].tolist() == [6, 3, 1, 0]
    np.testing.assert_allclose(t["skew"].to_numpy(), [0.875469, 0.182322, -0.916291, -0.916291], atol=1e-6)
    assert t["share"]["d"] == 0.0  # the reported share is the true one; only the log uses 1/K
    t5 = _skew.label_skew(RANKING, q, 5).set_index("label")
    np.testing.assert_allclose(t5["skew"].to_numpy(), [math.log(2.4)] + [math.log(0.8)] * 3, atol=1e-12)


def test_skew_against_gallery_shares_by_hand():
    """Gallery a x10, b x20, c x30, d x40 (q = .1, .2, .3, .4); same top 10:
    Skew_a = ln 6 = 1.791759, Skew_b = ln 1.5 = 0.405465, Skew_c = ln(1/3) = -1.098612, Skew_d = ln(1/4)."""
    pool = ["a"] * 10 + ["b"] * 20 + ["c"] * 30 + ["d"] * 40
    q = _skew.desired_shares(pool, "gallery")
    assert q.to_dict() == pytest.approx({"a": 0.1, "b": 0.2, "c": 0.3, "d": 0.4})
    t = _skew.label_skew(RANKING, q, 10).set_index("label")
    np.testing.assert_allclose(t["skew"].to_numpy(), [1.791759, 0.405465, -1.098612, -1.386294], atol=1e-6)


def test_ndkl_by_hand():
    """Ranking a, b, a against Q = (.5, .5):
    KL(P_1) = ln 2 = 0.693147; KL(P_2) = 0; KL(P_3) = 2/3 ln(4/3) + 1/3 ln(2/3) = 0.056633.
    NDKL = (0.693147 / log2 2 + 0 / log2 3 + 0.056633 / log2 4) / (1 + 1/log2 3 + 1/2) = 0.338567."""
    kl3 = 2 / 3 * math.log(4 / 3) + 1 / 3 * math.log(2 / 3)
    z = 1 + 1 / math.log2(3) + 1 / 2
    expected = (math.log(2) + kl3 / 2) / z
    assert expected == pytest.approx(0.338567, abs=1e-6)
    assert _skew.ndkl(list("aba"), {"a": 0.5, "b": 0.5}, 3) == pytest.approx(expected, abs=1e-12)
    # a ranking whose every prefix matches Q cannot exist at K=1, but a perfectly balanced pair of prefixes gives 0
    assert _skew.ndkl(list("aaaa"), {"a": 1.0}, 4) == 0.0


def test_skew_on_a_space_with_a_query_vector():
    """Rows ranked by a known direction: labels come out in a known order."""
    angles = np.linspace(0, np.pi / 2, 20)
    vecs = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    labels = ["a"] * 5 + ["b"] * 15
    space = synthetic_space(vecs, group=labels)
    res = cs.diagnostics.skew(space, {"east": np.array([1.0, 0.0])}, "group", k=(5, 10), desired="gallery")
    per = res.to_frame().set_index("k")
    # top 5 are the five "a" rows: p_a = 1, q_a = .25 -> ln 4; b has count 0 -> p = 1/5, q = .75
    assert per.loc[5, "max_skew"] == pytest.approx(math.log(4)) and per.loc[5, "max_label"] == "a"
    assert per.loc[5, "min_skew"] == pytest.approx(math.log(0.2 / 0.75))
    assert per.loc[10, "max_skew"] == pytest.approx(math.log(0.5 / 0.25))
    assert res.rows_for(query="east", label="a", k=10).tolist() == [0, 1, 2, 3, 4]
    assert res.rows_for(query=0, label="b", k=10).tolist() == [5, 6, 7, 8, 9]
    mean = res.to_frame("mean")
    assert mean["queries"].tolist() == [1, 1]
    fig = res.figure()
    # every clickable trace maps its points to rows
    first_bar = fig.data[0]
    label, k = first_bar.customdata[0]
    assert res.rows_at(fig, 0, 0).tolist() == res.rows_for(label=label, k=k).tolist()


def test_skew_errors_and_the_k_equals_n_pitfall():
    vecs = np.eye(4)[[0, 1, 2, 3, 0, 1]] + 0.01
    space = synthetic_space(vecs, group=list("aabbab"))
    with pytest.raises(ValueError, match="larger than the 6 rows"):
        cs.diagnostics.skew(space, np.ones(4), "group", k=7)
    with pytest.warns(UserWarning, match="0 by construction"):
        res = cs.diagnostics.skew(space, np.ones(4), "group", k=6, desired="gallery")
    assert res.to_frame()["max_skew"].iloc[0] == pytest.approx(0.0)
    with pytest.raises(KeyError, match="nope"):
        cs.diagnostics.skew(space, np.ones(4), "nope", k=3)
    with pytest.raises(ValueError, match="desired"):
        cs.diagnostics.skew(space, np.ones(4), "group", k=3, desired="equal")
    with pytest.raises(ValueError, match="lack labels"):
        cs.diagnostics.skew(space, np.ones(4), "group", k=3, desired={"a": 1.0})
    with pytest.raises(ValueError, match="positive integer"):
        cs.diagnostics.skew(space, np.ones(4), "group", k=0)


# ---------------------------------------------------------------------------------------------- WEAT
def _angles(*degrees: float) -> np.ndarray:
    r = np.deg2rad(degrees)
    return np.stack([np.cos(r), np.sin(r)], axis=1)


def test_weat_on_2d_vectors_by_hand():
    """A = {0°}, B = {90°}: s(w) = cos θ - sin θ. X = {0°, 30°}: s = 1, 0.366025; Y = {60°, 90°}: -0.366025, -1.
    d = (0.683013 + 0.683013) / std(1, .366, -.366, -1; ddof=1) = 1.366025 / 0.869473 = 1.571096.
    Of the C(4, 2) = 6 partitions only the observed one reaches S = 2.732051: p = 1/6."""
    r = _association.weat(_angles(0, 30), _angles(60, 90), _angles(0), _angles(90))
    np.testing.assert_allclose(r["s_x"], [1.0, 0.366025], atol=1e-6)
    assert r["effect_size"] == pytest.approx(1.571096, abs=1e-6)
    assert r["statistic"] == pytest.approx(2.732051, abs=1e-6)
    assert r["p_value"] == pytest.approx(1 / 6) and r["exact"] and r["n_partitions"] == 6


def test_weat_counts_ties_as_successes():
    """X = {0°, 90°}, Y = {30°, 60°}: S = 0; partitions {0,30}, {0,60} exceed it and {0,90}, {30,60} tie: p = 4/6."""
    r = _association.weat(_angles(0, 90), _angles(30, 60), _angles(0), _angles(90))
    assert r["statistic"] == pytest.approx(0.0, abs=1e-12)
    assert r["effect_size"] == pytest.approx(0.0, abs=1e-12)
    assert r["p_value"] == pytest.approx(4 / 6)


def test_weat_exact_p_value_matches_scipy_permutation_test():
    rng = np.random.default_rng(3)
    x, y, a, b = (unit(rng, n, 5) for n in (5, 5, 3, 4))
    r = _association.weat(x, y, a, b)
    assert r["exact"] and r["n_partitions"] == math.comb(10, 5)
    s = np.concatenate([r["s_x"], r["s_y"]])

    def stat(u, v, axis):
        return np.sum(u, axis=axis) - np.sum(v, axis=axis)

    ref = scipy.stats.permutation_test((s[:5], s[5:]), stat, permutation_type="independent",
                                       alternative="greater", n_resamples=np.inf, vectorized=True)
    assert r["p_value"] == pytest.approx(ref.pvalue, abs=1e-12)
    assert r["statistic"] == pytest.approx(ref.statistic)


def test_weat_sampled_p_value_is_close_to_the_exact_one():
    rng = np.random.default_rng(5)
    x, y = unit(rng, 10, 6) + 0.3 * np.eye(6)[0], unit(rng, 10, 6)
    a, b = unit(rng, 3, 6), unit(rng, 3, 6)
    sampled = _association.weat(x, y, a, b, n_permutations=10_000, seed=1)
    exact = _association.weat(x, y, a, b, n_permutations=math.comb(20, 10))
    assert not sampled["exact"] and sampled["n_partitions"] == 10_000 and exact["exact"]
    assert sampled["p_value"] == pytest.approx(exact["p_value"], abs=0.015)  # 3 sigma of 10,000 draws
    assert sampled["effect_size"] == exact["effect_size"]


def test_association_result_on_a_space():
    vecs = np.concatenate([_angles(0, 10, 20), _angles(70, 80, 90)])
    space = synthetic_space(vecs, side=["x"] * 3 + ["y"] * 3)
    res = cs.diagnostics.association(space, {"side": "x"}, {"side": "y"}, _angles(0), _angles(90))
    assert res.effect_size > 1.5 and res.p_value == pytest.approx(1 / 20)
    frame = res.to_frame()
    assert frame["kind"].unique().tolist() == ["image"] and frame["row"].tolist() == [0, 1, 2, 3, 4, 5]
    assert res.rows_for("X").tolist() == [0, 1, 2]  # highest s first
    fig = res.figure()
    assert res.rows_at(fig, 0, 1).tolist() == [1]
    with pytest.raises(ValueError, match="disjoint"):
        cs.diagnostics.association(space, [0, 1], [1, 2], _angles(0), _angles(90))
    with pytest.raises(ValueError, match="selects no gallery images"):
        cs.diagnostics.association(space, {"side": "z"}, {"side": "y"}, _angles(0), _angles(90))


# ---------------------------------------------------------------------------------------------- hubness
def test_k_skewness_matches_scipy_and_the_hand_formula():
    """N_k = [3, 2, 3, 0]: mean 2, m2 = 6/4 = 1.5, m3 = (1 + 0 + 1 - 8)/4 = -1.5, skew = -1.5 / 1.5^1.5 = -0.816497."""
    neighbors = np.array([[1, 2], [0, 2], [0, 1], [0, 2]])
    n_k = _hubness.k_occurrence(neighbors, 4)
    assert n_k.tolist() == [3, 2, 3, 0]
    s = _hubness.hubness_stats(n_k, k=2, n_queries=4)
    assert s["k_skewness"] == pytest.approx(-1.5 / 1.5**1.5) == pytest.approx(scipy.stats.skew(n_k))
    assert s["k_skewness"] == pytest.approx(-0.816497, abs=1e-6)
    assert s["hubs"] == 0 and s["antihub_share"] == 0.25
    assert s["robin_hood"] == pytest.approx(0.5 * (1 + 0 + 1 + 2) / 8)


def test_hubness_on_a_planted_hub_and_its_mitigations(monkeypatch):
    """Random unit vectors plus one vector at their mean direction: the planted item is everyone's neighbour.
    Both mitigations bring its N_k down; the N_k vector is checked against a dense brute force."""
    monkeypatch.setattr(_hubness, "_CHUNK", 37)  # exercise the chunked code paths
    rng = np.random.default_rng(0)
    base = unit(rng, 200, 64) + 0.8 * np.eye(64)[0]
    hub = base.mean(axis=0, keepdims=True)
    vecs = np.vstack([base, hub])
    vecs = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    space = synthetic_space(vecs)
    res = cs.diagnostics.hubness(space, k=5, mitigation="all", progress=False)

    sims = vecs @ vecs.T
    np.fill_diagonal(sims, -np.inf)
    dense = np.argsort(-sims, axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(res.n_k["none"], np.bincount(dense.ravel(), minlength=len(vecs)))
    assert res.n_k["none"].sum() == 5 * len(vecs)

    frame = res.to_frame().set_index("method")
    assert frame.loc["none", "k_skewness"] == pytest.approx(scipy.stats.skew(res.n_k["none"]))
    assert res.n_k["none"][200] >= 2 * 5 and 200 in res.hubs()["row"].tolist()
    assert res.n_k["inverted_softmax"][200] < res.n_k["none"][200]
    assert res.n_k["csls"][200] < res.n_k["none"][200]
    assert frame.loc["csls", "k_skewness"] < frame.loc["none", "k_skewness"]
    assert frame.loc["inverted_softmax", "robin_hood"] < frame.loc["none", "robin_hood"]
    # the rows behind the hub: the hub, then the queries that list it
    behind = res.rows_for(hub=200)
    assert behind[0] == 200 and len(behind) == 1 + res.n_k["none"][200]
    assert set(behind[1:]) == set(np.flatnonzero((dense == 200).any(axis=1)))
    fig = res.figure()
    hub_trace = next(i for i, t in enumerate(fig.data) if t.meta["keys"] == ["method", "hub"])
    assert res.rows_at(fig, hub_trace, 0).tolist() == behind.tolist()


def test_hubness_mitigations_match_their_dense_formulas():
    """Text-like queries (no self pairs): inverted softmax and CSLS neighbours equal a dense computation."""
    rng = np.random.default_rng(1)
    gallery = unit(rng, 60, 6)
    queries = unit(rng, 25, 6)
    space = synthetic_space(gallery)
    res = cs.diagnostics.hubness(space, k=3, queries=queries.astype(np.float32), mitigation="all", beta=10.0,
                                 csls_k=4, progress=False)
    s = queries @ gallery.T
    inv = np.exp(10 * s) / np.exp(10 * s).sum(axis=0, keepdims=True)
    r_q = np.sort(s, axis=1)[:, -4:].mean(axis=1)
    r_g = np.sort(s.T, axis=1)[:, -4:].mean(axis=1)
    csls = 2 * s - r_q[:, None] - r_g[None, :]
    for name, scores in (("none", s), ("inverted_softmax", inv), ("csls", csls)):
        top = np.argsort(-scores, axis=1)[:, :3]
        np.testing.assert_array_equal(np.sort(res.neighbors[name], axis=1), np.sort(top, axis=1), err_msg=name)


def test_hubness_rejects_bad_input():
    space = synthetic_space(unit(np.random.default_rng(2), 10, 4))
    with pytest.raises(ValueError, match="larger than the 9"):
        cs.diagnostics.hubness(space, k=10)
    with pytest.raises(ValueError, match="Unknown mitigation"):
        cs.diagnostics.hubness(space, k=2, mitigation="magic")
    with pytest.raises(ValueError, match="queries must be"):
        cs.diagnostics.hubness(space, k=2, queries="audio")


# ---------------------------------------------------------------------------------------------- modality gap
def test_modality_gap_and_cone_by_hand():
    """Images at 0° and 90° in the (e1, e2) plane, texts at e3: mean(img) = (.5, .5, 0), mean(txt) = (0, 0, 1),
    gap = ||(.5, .5, -1)|| = sqrt(1.5); image cone = cos 90° = 0, text cone = 1."""
    images = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    space = synthetic_space(images)
    texts = np.array([[0, 0, 1.0], [0, 0, 1.0], [0, 0, 1.0]])
    res = cs.diagnostics.modality_gap(space, texts)
    assert res.gap == pytest.approx(math.sqrt(1.5))
    assert res.cone_images == pytest.approx(0.0) and res.cone_texts == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    x = unit(rng, 30, 5)
    pairwise = x @ x.T
    assert _gap.cone(x) == pytest.approx((pairwise.sum() - 30) / (30 * 29))
    assert res.rows_at(res.figure(), 0, 1).tolist() == [1]


# ---------------------------------------------------------------------------------------------- health
def _clustered_space(seed: int = 0):
    rng = np.random.default_rng(seed)
    base = unit(rng, 40, 16)
    copies = base[[3, 7, 11]] + rng.normal(scale=1e-3, size=(3, 16))  # near-copies of rows 3, 7, 11
    exact = base[[20]]
    vecs = np.vstack([base, copies, exact])
    return synthetic_space(vecs), [(3, 40), (7, 41), (11, 42), (20, 43)]


def test_duplicates_finds_planted_pairs_only():
    space, planted = _clustered_space()
    res = cs.diagnostics.duplicates(space, threshold=0.05)
    pairs = sorted(zip(res.pairs["row_a"], res.pairs["row_b"], strict=True))
    assert pairs == sorted(planted)
    assert res.pairs["distance"].iloc[0] == pytest.approx(0.0, abs=1e-6)  # the exact copy is first
    groups = res.groups()
    assert sorted(map(sorted, groups["rows"])) == sorted(map(list, planted))
    assert res.rows_for(pair=0).tolist() == [20, 43]
    assert res.summary()["pairs"] == 4
    fig = res.figure()
    pair_trace = next(i for i, t in enumerate(fig.data) if t.meta and t.meta["keys"] == ["pair"])
    assert res.rows_at(fig, pair_trace, 0).tolist() == [20, 43]
    # the histogram's bins partition the images
    hist = fig.data[0]
    total = sum(len(res.rows_at(fig, 0, i)) for i in range(len(hist.customdata)))
    assert total == len(space)
    with pytest.raises(ValueError, match="cosine distance"):
        cs.diagnostics.duplicates(space, threshold=0)


def test_group_pairs_is_greedy():
    """0-1, 1-2 close but 0-2 not: 1 has most duplicates and leads {0, 1, 2}; 3-4 form a second group."""
    nb = [np.array([1]), np.array([0, 2]), np.array([1]), np.array([4]), np.array([3])]
    assert _duplicates.group_pairs(5, nb).tolist() == [0, 0, 0, 1, 1]


def test_outliers_flags_the_isolated_point():
    rng = np.random.default_rng(4)
    cluster = unit(rng, 80, 8) * 0.2 + np.array([1.0, 0, 0, 0, 0, 0, 0, 0])
    far = np.array([[-1.0, 0, 0, 0, 0, 0, 0, 0]])
    vecs = np.vstack([cluster, far])
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    space = synthetic_space(vecs)
    res = cs.diagnostics.outliers(space, k=5)
    d = 1 - vecs @ vecs.T
    np.fill_diagonal(d, np.inf)
    score = np.sort(d, axis=1)[:, :5].mean(axis=1)
    np.testing.assert_allclose(res.scores, score, atol=1e-5)
    q1, q3 = np.percentile(score, [25, 75])
    assert res.cutoff == pytest.approx(q3 + 1.7 * (q3 - q1), abs=1e-5)
    assert res.rows_for(outlier=True)[0] == 80
    assert res.to_frame()["row"].iloc[0] == 80


def test_uniqueness_by_hand():
    """Points on a line of angles 0°, 10°, 30°, 60°: distances 1 - cos(Δ).
    Each u = .6 d1 + .3 d2 + .1 d3 over the maximum."""
    deg = np.array([0.0, 10.0, 30.0, 60.0])
    space = synthetic_space(_angles(*deg))
    res = cs.diagnostics.uniqueness(space)
    diff = np.abs(deg[:, None] - deg[None, :])
    d = 1 - np.cos(np.deg2rad(diff))
    np.fill_diagonal(d, np.inf)
    raw = np.sort(d, axis=1)[:, :3] @ np.array([0.6, 0.3, 0.1])
    np.testing.assert_allclose(res.scores, raw / raw.max(), atol=1e-5)
    assert res.rows_for(most=1).tolist() == [3] and res.scores.max() == pytest.approx(1.0)
    assert rows_in_bin(np.array([0.1, 0.5, 1.0]), 0.5, 1.0, last_edge=1.0).tolist() == [1, 2]
    assert rows_in_bin(np.array([0.1, 0.5, 1.0]), 0.5, 1.0).tolist() == [1]


# ---------------------------------------------------------------------------------------------- tail, source
def test_head_tail_gap_and_retrieval_metrics_by_hand():
    gap, tail = _long_tail.head_tail_gap(np.array([5, 50, 10, 100, 40]), np.array([0.4, 0.9, 0.6, 0.9, 0.8]))
    assert tail.tolist() == [True, False, False, False, False] and gap == pytest.approx(0.8 - 0.4)
    # NDCG@3 with relevant {1, 7} in ranking [5, 1, 7]: (1/log2 3 + 1/log2 4) / (1 + 1/log2 3)
    expected = (1 / math.log2(3) + 0.5) / (1 + 1 / math.log2(3))
    assert _source_bias.ndcg_at_k(np.array([5, 1, 7]), np.array([1, 7]), 3) == pytest.approx(expected)
    assert _source_bias.recall_share_at_k(np.array([5, 1, 7]), np.array([1, 9]), 2) == 0.5
    assert _source_bias.relative_delta(0.5, 0.5) == 0.0
    assert math.isnan(_source_bias.ndcg_at_k(np.array([1]), np.array([], dtype=int), 1))


def test_source_bias_on_synthetic_twins():
    """Query along e1; every 'gen' twin sits closer to e1 than its 'real' twin: gen is favoured."""
    rng = np.random.default_rng(6)
    n = 10
    real = np.column_stack([np.linspace(0.5, 0.9, n), rng.uniform(0.3, 0.5, n)])
    gen = real + np.array([0.05, -0.1])
    other = np.column_stack([np.full(20, 0.4), np.full(20, 0.95)])
    vecs = np.vstack([real, gen, other])
    space = synthetic_space(vecs, source=["real"] * n + ["generated"] * n + ["real"] * 20,
                            pair=[str(i) for i in range(n)] * 2 + [f"o{i}" for i in range(20)],
                            topic=["t"] * (2 * n) + ["u"] * 20)
    res = cs.diagnostics.source_bias(space, "source", [(np.array([1.0, 0.0]), {"topic": "t"})], k=10,
                                     pair_column="pair")
    assert res.compare == ("real", "generated")
    means = res.means()
    assert means.loc["R@10", "generated"] > means.loc["R@10", "real"]
    assert res.deltas()["R@10"] < 0 and res.twin_share == 1.0
    assert set(res.rows_for(source="generated")) <= set(range(n, 2 * n))


def test_source_bias_rejects_bad_input():
    space = synthetic_space(np.eye(3), source=["a", "b", "a"])
    with pytest.raises(ValueError, match="no relevant images"):
        cs.diagnostics.source_bias(space, "source", [(np.array([1.0, 0, 0]), [])])
    with pytest.raises(ValueError, match="one source only"):
        cs.diagnostics.source_bias(synthetic_space(np.eye(3), source=["a"] * 3), "source", {})


def test_desired_shares_reject_a_zero_share_for_a_present_label_and_mixed_labels_sort():
    with pytest.raises(ValueError, match="would be infinite"):
        _skew.desired_shares(["a", "b", "b"], {"a": 0.0, "b": 1.0})
    q = _skew.desired_shares(["a", None, 1.5, "a"], "gallery")
    assert q.to_dict() == {"1.5": 0.25, "None": 0.25, "a": 0.5}

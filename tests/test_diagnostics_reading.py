"""Reading the numbers: noise floors, bootstrap intervals, bounds, and the demographic-parity skew with a mask."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pandas as pd
import pytest

import cirscope as cs
from cirscope.diagnostics import _association, _reading, _skew
from tests.test_diagnostics_metrics import synthetic_space


def test_reading_docstring_examples():
    result = doctest.testmod(_reading, extraglobs={"np": np})
    assert result.failed == 0 and result.attempted > 0


def test_vectorised_skew_stats_equal_the_reference_functions():
    """skew_stats (many rankings at once) matches label_skew and ndkl on each ranking to 1e-12."""
    rng = np.random.default_rng(3)
    names = pd.Index(list("abcde"))
    q = np.array([0.1, 0.2, 0.3, 0.25, 0.15])
    codes = rng.integers(0, 5, size=(40, 17))
    stats = _reading.skew_stats(codes, q)
    desired = pd.Series(q, index=names)
    for i, row in enumerate(codes):
        ranked = names[row].tolist()
        t = _skew.label_skew(ranked, desired, 17)
        assert stats["max_skew"][i] == pytest.approx(t["skew"].max(), abs=1e-12)
        assert stats["min_skew"][i] == pytest.approx(t["skew"].min(), abs=1e-12)
        assert stats["ndkl"][i] == pytest.approx(_skew.ndkl(ranked, desired, 17), abs=1e-12)


def test_random_topk_follows_the_hypergeometric_law():
    """Counts never exceed the pool; their mean is k n_a / N; order is random (each position has the pool's mix)."""
    counts = np.array([50, 30, 15, 5])
    codes = _reading.random_topk(counts, 20, 4000, np.random.default_rng(1))
    per = np.stack([(codes == a).sum(axis=1) for a in range(4)], axis=1)
    assert (per <= counts).all() and (per.sum(axis=1) == 20).all()
    np.testing.assert_allclose(per.mean(axis=0), 20 * counts / counts.sum(), atol=0.1)
    np.testing.assert_allclose((codes[:, 0] == 0).mean(), 0.5, atol=0.03)  # first position: P(label 0) = 50/100
    with pytest.raises(ValueError, match="pool of 100"):
        _reading.random_topk(counts, 101, 1, np.random.default_rng(0))


def test_bounds_by_hand():
    """8 equal colours, K = 10: a missing colour reads ln(1/10) - ln(1/8) = -0.2231; MaxSkew and NDKL top at ln 8.
    Gallery shares (.1, .2, .3, .4), K = 5: floor ln(1/5) - ln(.4) = -ln 2; maxima -ln(.1)."""
    eight = np.full(8, 1 / 8)
    assert _reading.min_skew_floor(eight, 10) == pytest.approx(math.log(0.1) - math.log(1 / 8), abs=1e-15)
    assert _reading.max_skew_bound(eight) == pytest.approx(math.log(8), abs=1e-15)
    q = np.array([0.1, 0.2, 0.3, 0.4])
    assert _reading.min_skew_floor(q, 5) == pytest.approx(-math.log(2), abs=1e-15)
    assert _reading.ndkl_max(q) == pytest.approx(-math.log(0.1), abs=1e-15)
    desired = pd.Series(q, index=list("abcd"))
    # the maximum is reached: every prefix only the least desired label
    assert _skew.ndkl(["a"] * 7, desired, 7) == pytest.approx(_reading.ndkl_max(q), abs=1e-12)
    t = _skew.label_skew(["a"] * 5, desired, 5)
    assert t["skew"].max() == pytest.approx(_reading.max_skew_bound(q), abs=1e-12)
    assert t["skew"].min() == pytest.approx(_reading.min_skew_floor(q, 5), abs=1e-12)


def test_interval_row_contains_the_value_and_covers_a_normal():
    draws = np.random.default_rng(0).normal(1.0, 0.5, 20_000)
    r = _reading.interval_row("x", 1.0, draws, "test")
    assert r["low"] == pytest.approx(1.0 - 1.96 * 0.5, abs=0.03) and r["high"] == pytest.approx(1.0 + 1.96 * 0.5, abs=0.03)
    shifted = _reading.interval_row("x", -2.0, draws, "test")  # every draw above the value: widened to include it
    assert shifted["low"] == -2.0 and shifted["high"] > -2.0
    assert math.isnan(_reading.interval_row("x", 1.0, np.array([np.nan]), "t")["low"])


def test_cohen_bands():
    assert [_reading.cohen_band(v) for v in (0.0, 0.19, 0.2, 0.49, 0.5, 0.79, 0.8, -1.84)] == [
        "negligible", "negligible", "small", "small", "medium", "medium", "large", "large"]
    assert _reading.cohen_band(float("nan")) == "undefined"


@pytest.fixture(scope="module")
def biased():
    star_yellow = cs.datasets.Bias(when={"shape": "star"}, then={"color": "yellow"}, p=0.8)
    return cs.Space(cs.datasets.shapes(400, seed=7, biases=[star_yellow]), cs.Embedder.toy(), cache=False,
                    progress=False)


def test_skew_baseline_interval_and_floors_on_the_shapes_world(biased):
    res = cs.diagnostics.skew(biased, ["a star", "a circle"], "color", k=(10, 50))
    frame = res.to_frame().set_index(["query", "k"])
    for col in ("max_skew_low", "max_skew_high", "max_skew_random_median", "max_skew_random_p95", "beyond_random",
                "min_skew_floor", "max_skew_bound", "ndkl_max", "ndkl_random_p95"):
        assert col in frame.columns
    # "a star" on a gallery whose stars are 80% yellow: far beyond random 10 rows of the gallery
    assert frame.loc[("a star", 10), "beyond_random"]
    assert frame.loc[("a star", 10), "max_skew"] > frame.loc[("a star", 10), "max_skew_random_p95"]
    # 8 colours, K = 10: a random 10 rows always miss a colour, so MinSkew's random median is the floor
    b = res.baseline.set_index(["query", "quantity"])
    assert b.loc[("a star", "MinSkew@10"), "random_median"] == pytest.approx(-math.log(10 / 8), abs=1e-12)
    assert frame.loc[("a star", 10), "min_skew_floor"] == pytest.approx(-math.log(10 / 8), abs=1e-12)
    assert frame.loc[("a star", 10), "ndkl_max"] == pytest.approx(math.log(8), abs=1e-12)
    # intervals hold their value; the mean rows hold the summary's numbers
    ci = res.interval
    assert ((ci["low"] <= ci["value"] + 1e-12) & (ci["value"] <= ci["high"] + 1e-12)).all()
    mean = ci[ci["query"] == "(mean over queries)"].set_index("quantity")["value"]
    assert mean["MaxSkew@50"] == pytest.approx(res.summary()["MaxSkew@50"], abs=1e-12)
    # seeded: the same numbers again; another seed, other draws
    again = cs.diagnostics.skew(biased, ["a star", "a circle"], "color", k=(10, 50))
    pd.testing.assert_frame_equal(again.baseline, res.baseline)
    other = cs.diagnostics.skew(biased, ["a star", "a circle"], "color", k=(10, 50), seed=5)
    assert not other.interval["low"].equals(res.interval["low"]) or not other.baseline.equals(res.baseline)
    # readings and explain speak of every headline number
    readings = res.readings().set_index("quantity")
    assert "random" in readings.loc["MaxSkew@10", "random"] and "interval" in readings.loc["MaxSkew@10", "interval"]
    assert "floor" in readings.loc["MinSkew@10", "range"]
    text = res.explain()
    assert "MinSkew@10" in text and "missing" in text


def test_demographic_parity_skew_with_a_mask_by_hand_on_float32():
    """12 rows on the unit circle (float32); a mask picks 8 of them (a x2, b x6): q = (.25, .75).
    The query ranks the masked rows by angle: a, b, a, b, b, ... so the top 4 is a, b, a, b:
    p = (.5, .5): Skew_a = ln(.5/.25) = ln 2, Skew_b = ln(.5/.75) = ln(2/3).
    NDKL@4: P_1 = (1, 0) KL = ln 4; P_2 = (.5, .5) KL = .5 ln 2 + .5 ln(2/3); P_3 = (2/3, 1/3);
    P_4 = (.5, .5)."""
    angles = np.deg2rad(np.arange(12) * 7.0)
    vecs = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    group = ["a", "b", "a", "b", "b", "b", "b", "b", "a", "a", "a", "a"]
    masked = np.array([1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0], dtype=bool)
    space = synthetic_space(vecs, group=group)
    res = cs.diagnostics.skew(space, {"east": np.array([1.0, 0.0])}, "group", k=4, desired="gallery", mask=masked)
    assert res.desired.to_dict() == pytest.approx({"a": 0.25, "b": 0.75}, abs=1e-15)
    row = res.to_frame().iloc[0]
    assert row["max_skew"] == pytest.approx(math.log(2), abs=1e-9) and row["max_label"] == "a"
    assert row["min_skew"] == pytest.approx(math.log(2 / 3), abs=1e-9)

    def kl(p):
        return sum(pi * math.log(pi / qi) for pi, qi in zip(p, (0.25, 0.75), strict=True) if pi > 0)

    prefixes = [(1, 0), (0.5, 0.5), (2 / 3, 1 / 3), (0.5, 0.5)]
    disc = [1 / math.log2(i + 2) for i in range(4)]
    expected = sum(kl(p) * d for p, d in zip(prefixes, disc, strict=True)) / sum(disc)
    assert row["ndkl"] == pytest.approx(expected, abs=1e-9)
    # the noise floor draws from the 8 masked rows only: 4 random of (a x2, b x6)
    assert res.baseline.query("quantity == 'MaxSkew@4'")["null"].iloc[0] == "4 random rows"
    assert res.to_frame()["min_skew_floor"].iloc[0] == pytest.approx(math.log(0.25) - math.log(0.75), abs=1e-12)


def test_a_query_that_names_a_label_is_flagged(biased):
    meta = biased.metadata
    ref = int(meta.index[meta["shape"] == "circle"][0])
    res = cs.diagnostics.skew(biased, {"edit": cs.ComposedQuery(ref, "make it red")}, "color", k=10)
    assert res.mentioned == {"edit": ["red"]}
    assert "requested effect" in res.sentence()
    assert cs.diagnostics.skew(biased, "a star", "color", k=10).mentioned == {}
    assert _skew.mentions("make it light blue", ["light blue", "blue", "red"]) == ["light blue", "blue"]


def test_weat_reports_p_below_one_over_n_never_zero():
    """Two well-separated clouds, 200 + 200 targets, 500 sampled partitions: none reaches the statistic."""
    rng = np.random.default_rng(0)
    x = np.array([1.0, 0.0, 0.0]) + 0.05 * rng.normal(size=(200, 3))
    y = np.array([0.0, 1.0, 0.0]) + 0.05 * rng.normal(size=(200, 3))
    r = _association.weat(x, y, np.array([[1.0, 0, 0]]), np.array([[0, 1.0, 0]]), n_permutations=500)
    assert not r["exact"] and r["p_below"] and r["p_value"] == pytest.approx(1 / 500)
    assert r["null_effect"].shape == (500,) and np.all(np.abs(r["null_effect"]) < r["effect_size"])
    # exact enumeration: the observed partition is one of them, its d the largest
    small = _association.weat(x[:4], y[:4], np.array([[1.0, 0, 0]]), np.array([[0, 1.0, 0]]))
    assert small["exact"] and not small["p_below"] and small["p_value"] == pytest.approx(1 / 70)
    assert small["null_effect"].max() == pytest.approx(small["effect_size"], abs=1e-12)


def test_weat_text_targets_measure_the_model_image_targets_the_gallery(biased):
    """The toy model was trained where stars were mostly yellow: text targets show it (d about 1.2);
    image targets describe the gallery's images instead."""
    templates = ["a {}", "a {} shape", "a photo of a {}", "a drawing of a {}", "a picture of a {}"]
    a, b = ["a yellow shape", "something yellow", "yellow"], ["a blue shape", "something blue", "blue"]
    text = cs.diagnostics.association(biased, [t.format("star") for t in templates],
                                      [t.format("circle") for t in templates], a, b)
    image = cs.diagnostics.association(biased, {"shape": "star"}, {"shape": "circle"}, a, b)
    assert text.measures == "the model (text targets)" and image.measures == "the gallery (image targets)"
    assert text.effect_size > 1.0 and text.band == "large" and text.n_partitions == 252
    assert text.p_value == pytest.approx(1 / 252) and text.p_text == "p = 0.00397"
    assert text.baseline["beyond_random"].iloc[0]
    ci = text.interval.iloc[0]
    assert ci["low"] <= text.effect_size <= ci["high"]
    summary = image.summary()
    assert summary["measures"] == "the gallery (image targets)" and summary["band"] in ("medium", "large")
    assert "measures the gallery" in image.sentence() and "the model" in text.sentence()
    assert "measures the model" in text.figure().layout.title.text


def test_sweep_tells_a_coverage_gap_from_a_bias_and_flags_a_named_label(biased):
    """Blue circle + "turn it into a star" on a gallery whose stars are 80% yellow: the yellow share of the
    top 30 rises, but no further than 30 random stars of this gallery reach: a coverage gap."""
    meta = biased.metadata
    ref = int(meta.index[(meta["shape"] == "circle") & (meta["color"] == "blue")][0])
    sweep = cs.diagnostics.direction_sweep(biased, cs.ComposedQuery(ref, "turn it into a star"), "color", k=30)
    assert sweep.target == {"shape": "star"}
    cov = sweep.coverage().set_index("label")
    stars = meta[meta["shape"] == "star"]["color"].value_counts()
    assert cov["count"].to_dict() == stars.reindex(cov.index, fill_value=0).to_dict()  # the counts shown are the gallery's
    s = sweep.summary()
    assert s["most_gained"] == "yellow" and s["coverage_share"] == pytest.approx(stars["yellow"] / stars.sum())
    assert sweep.shares()["yellow"].iloc[-1] <= s["coverage_p95"] and "coverage gap" in s["note"]
    red = cs.diagnostics.direction_sweep(biased, cs.ComposedQuery(ref, "make it red"), "color", k=30)
    assert red.mentioned == ["red"] and "requested effect" in red.summary()["note"]


def test_source_bias_states_its_sign_and_has_query_bootstrap_intervals(biased):
    source = np.where(np.arange(len(biased)) % 2 == 0, "real", "generated")
    queries = {f"a {c} {s}": {"color": c, "shape": s} for s in ("star", "circle") for c in ("red", "blue", "yellow")}
    res = cs.diagnostics.source_bias(biased, source, queries, k=10)
    ci = res.interval.set_index("quantity")
    for metric, value in res.deltas().items():
        row = ci.loc[f"Delta {metric} (%)"]
        assert row["value"] == pytest.approx(value) and row["low"] <= value <= row["high"]
    assert "positive favours real, negative favours generated" in res.sentence()
    assert res.readings().set_index("quantity").loc["Delta R@10 (%)", "range"] == "-200% to 200%"


def test_hubness_reads_its_hub_count_against_a_random_graph(toy_space):
    res = cs.diagnostics.hubness(toy_space, k=10, progress=False)
    b = res.baseline.set_index("quantity")
    assert set(b.index) == {"k_skewness", "hubs", "hub_occurrence", "antihub_share", "robin_hood"}
    assert b.loc["hubs", "draws"] == 200 and b.loc["hubs", "value"] == res.summary()["hubs"]
    frame = res.to_frame()
    assert frame["hubs_random_p95"].iloc[0] == b.loc["hubs", "random_p95"]
    sentence = res.sentence()
    assert f"{res.summary()['hubs']} hubs" in sentence and "random 10-NN graph" in sentence
    # the random graph: N_k about Binomial(n * k, 1 / n), skewness about 1 / sqrt(k)
    assert abs(b.loc["k_skewness", "random_median"] - 1 / np.sqrt(10)) < 0.15

"""Proof on the shapes world with the shipped toy model: injected and trained-in biases, planted duplicates.

The toy model was trained with 75% of stars yellow, so "a star" ranks yellow stars first on any
gallery. To measure a bias injected in the *gallery* rather than the model's, the skew test uses
K = the number of stars: the top K for "a star" is then exactly the gallery's stars (precision 1.0
is checked), whose colour mix no ranking order can change.
"""

from __future__ import annotations

import io
import math
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from PIL import Image, ImageEnhance

import cirscope as cs
from cirscope.datasets import Bias

pytestmark = pytest.mark.slow

SEED = 7  # 600 items, 110 stars; the biased world has 80% of its stars yellow
STAR_YELLOW = Bias({"shape": "star"}, {"color": "yellow"}, p=0.8)


@pytest.fixture(scope="module")
def toy():
    return cs.Embedder.toy()


@pytest.fixture(scope="module")
def balanced(toy):
    return cs.Space(cs.datasets.shapes(600, seed=SEED), toy, cache=False, progress=False)


@pytest.fixture(scope="module")
def biased(toy):
    return cs.Space(cs.datasets.shapes(600, seed=SEED, biases=[STAR_YELLOW]), toy, cache=False, progress=False)


def _stars(space):
    return (space.metadata["shape"] == "star").to_numpy()


def _yellow_skew(res, k):
    lab = res.to_frame("label")
    return float(lab[(lab["label"] == "yellow") & (lab["k"] == k)]["skew"].iloc[0])


def test_skew_measures_a_bias_injected_in_the_gallery(balanced, biased):
    """Colour skew of "a star" against the uniform target (q = 1/8), K = number of stars.

    Biased gallery (80% of stars yellow): Skew_yellow = ln(0.8 * 8) = 1.86 expected; we require
    MaxSkew@K >= 1.2 (a yellow share >= 0.42) with yellow the most over-represented colour.
    Balanced gallery: colour counts among ~110 stars are Binomial(110, 1/8) (mean 13.8, sd 3.5); the
    largest of eight is about 19 (MaxSkew ~0.3). We require MaxSkew@K <= 0.6 (no colour at 25 or more,
    3.3 sd above the mean) and |Skew_yellow| <= 0.4.
    Measured (seed 7): biased 1.856 (yellow); balanced 0.323 (purple), Skew_yellow 0.212.
    """
    n_stars = int(_stars(balanced).sum())
    assert n_stars == int(_stars(biased).sum())  # the bias changes colours only
    results = {}
    for name, space in (("balanced", balanced), ("biased", biased)):
        res = cs.diagnostics.skew(space, "a star", "color", k=(10, n_stars), desired="uniform")
        top = res.rows_for(query="a star", k=n_stars)
        assert _stars(space)[top].mean() == 1.0, "the top K must be the stars for this test to measure the gallery"
        results[name] = res.to_frame().set_index("k").loc[n_stars]
        results[name + "_yellow"] = _yellow_skew(res, n_stars)
    assert results["biased"]["max_skew"] >= 1.2 and results["biased"]["max_label"] == "yellow"
    assert results["biased_yellow"] == pytest.approx(math.log(8 * 0.8), abs=0.3)
    assert results["balanced"]["max_skew"] <= 0.6
    assert abs(results["balanced_yellow"]) <= 0.4


def test_the_toy_models_trained_in_bias_shows_on_a_balanced_gallery(balanced):
    """"a star" ranks yellow stars first although the gallery's stars are balanced (`cirscope toy-eval`
    reports 0.32 vs 0.10 in the top 50 of 2,000). Here (600 items, 110 stars, 15.5% of them yellow) we require
    the yellow share of the top 10 >= 0.4 and of the top 50 >= 1.5x the gallery's yellow share among stars,
    i.e. Skew_yellow (demographic-parity target) clearly positive. Measured: 0.80 and 0.34 (vs 0.155)."""
    stars = _stars(balanced)
    yellow = (balanced.metadata["color"] == "yellow").to_numpy()
    share_among_stars = yellow[stars].mean()
    res = cs.diagnostics.skew(balanced, "a star", "color", k=(10, 50), desired="gallery")
    lab = res.to_frame("label").set_index(["k", "label"])
    assert lab.loc[(10, "yellow"), "share"] >= 0.4
    assert lab.loc[(50, "yellow"), "share"] >= 1.5 * share_among_stars
    assert lab.loc[(10, "yellow"), "skew"] >= math.log(2.5)
    assert res.to_frame().set_index("k").loc[10, "max_label"] == "yellow"
    rows = res.rows_for(query="a star", label="yellow", k=10)
    assert len(rows) == lab.loc[(10, "yellow"), "count"] and yellow[rows].all()
    # the same ranking, searched by cs.Space.search, agrees
    top = balanced.search("a star", k=10)["row"].to_numpy()
    np.testing.assert_array_equal(np.sort(top), np.sort(res.rows_for(query="a star", k=10)))


def test_skew_of_composed_queries_leaves_the_reference_out(balanced):
    meta = balanced.metadata
    refs = [int(r) for r in np.flatnonzero((meta["shape"] == "circle").to_numpy())[:3]]
    queries = {f"circle {r} -> yellow": cs.ComposedQuery(r, "make it yellow") for r in refs}
    res = cs.diagnostics.skew(balanced, queries, "color", k=(10, 20))
    assert len(res.to_frame()) == 6
    for name, r in zip(queries, refs, strict=True):
        assert r not in res.rows_for(query=name, k=20)
    # "make it yellow" moves the colour mix to yellow
    per = res.to_frame().set_index(["query", "k"])
    assert (per.xs(10, level="k")["max_label"] == "yellow").all()


def test_direction_sweep_moves_the_shape_mix(balanced):
    """A red circle + "turn it into a star": at alpha = -0.5 the top 20 are circles, from 1.5 on stars.
    Measured: circle 0.90 at -0.5, star 1.00 at 1.5-2."""
    meta = balanced.metadata
    ref = int(np.flatnonzero(((meta["shape"] == "circle") & (meta["color"] == "red")).to_numpy())[0])
    q = cs.ComposedQuery(ref, "turn it into a star")
    res = cs.diagnostics.direction_sweep(balanced, q, "shape", k=20)
    shares = res.shares()
    assert shares.loc[-0.5, "circle"] >= 0.6 and shares.loc[-0.5, "star"] <= 0.1
    assert shares.loc[2.0, "star"] >= 0.8
    assert np.allclose(shares.sum(axis=1), 1.0)
    assert all(ref not in rows for rows in res.rankings.values())
    stars_at_2 = res.rows_for(alpha=2.0, label="star")
    assert (meta["shape"].to_numpy()[stars_at_2] == "star").all()
    fig = res.figure()
    star_trace = next(i for i, t in enumerate(fig.data) if t.name == "star")
    assert res.rows_at(fig, star_trace, len(res.alphas) - 1).tolist() == stars_at_2.tolist()
    # the same vector as the slider: PDV with alpha_t = alpha_i = 2
    top = balanced.search(q, method="pdv", k=20, alpha_t=2.0, alpha_i=2.0)["row"].to_numpy()
    assert set(top) == set(res.rows_for(alpha=2.0))


def test_direction_sweep_as_a_bias_probe(balanced, biased):
    """A blue circle + "turn it into a star" asks for no colour change. On the biased gallery the colour mix
    drifts to yellow as the scale grows (the direction lands among the gallery's yellow stars); on the balanced
    one it does not. Thresholds: yellow share of the top 30 at alpha = 2 >= 0.4 (biased) and <= 0.2 (balanced),
    and below 0.1 at alpha = 0 in both. Measured: 0.70 vs 0.07; 0.03 at alpha = 0."""
    shares = {}
    for name, space in (("balanced", balanced), ("biased", biased)):
        meta = space.metadata
        ref = int(np.flatnonzero(((meta["shape"] == "circle") & (meta["color"] == "blue")).to_numpy())[0])
        res = cs.diagnostics.direction_sweep(space, cs.ComposedQuery(ref, "turn it into a star"), "color", k=30)
        shares[name] = res.shares()["yellow"]
    assert shares["biased"].loc[2.0] >= 0.4 and shares["balanced"].loc[2.0] <= 0.2
    assert shares["biased"].loc[0.0] <= 0.1 and shares["balanced"].loc[0.0] <= 0.1


def test_association_detects_the_gallery_bias_with_image_targets(balanced, biased):
    """Image targets (star vs circle images) with text attributes (yellow vs blue words): on the biased gallery
    star images are mostly yellow, d large and p small; on the balanced one d is near 0.
    Thresholds: biased d >= 0.5, p <= 0.01; balanced |d| <= 0.4, p >= 0.05. Measured: 0.88 / 0.0, -0.14 / 0.83."""
    words_a = ["a yellow shape", "something yellow", "yellow"]
    words_b = ["a blue shape", "something blue", "blue"]
    got = {name: cs.diagnostics.association(space, {"shape": "star"}, {"shape": "circle"}, words_a, words_b)
           for name, space in (("balanced", balanced), ("biased", biased))}
    assert got["biased"].effect_size >= 0.5 and got["biased"].p_value <= 0.01
    assert abs(got["balanced"].effect_size) <= 0.4 and got["balanced"].p_value >= 0.05
    assert not got["biased"].exact and got["biased"].n_partitions == 10_000
    frame = got["biased"].to_frame()
    assert (frame["kind"] == "image").all() and frame["row"].ge(0).all()
    # text targets with image attributes run the exact test: C(8, 4) = 70 partitions
    res = cs.diagnostics.association(biased, ["a star", "star", "a photo of a star", "a large star"],
                                     ["a circle", "circle", "a photo of a circle", "a large circle"],
                                     {"color": "yellow"}, {"color": "blue"})
    assert res.exact and res.n_partitions == 70 and res.p_value >= 1 / 70
    assert res.rows_for("X").size == 0  # text targets have no gallery rows
    # the other two combinations: texts with texts, images with images
    tt = cs.diagnostics.association(biased, ["a star", "star", "a large star"], ["a circle", "circle", "a large circle"],
                                    words_a, words_b)
    assert {c.kind for c in (*tt.targets, *tt.attributes)} == {"text"} and tt.exact and tt.n_partitions == 20
    ii = cs.diagnostics.association(biased, {"shape": "star"}, {"shape": "circle"},
                                    {"shape": "square", "color": "yellow"}, {"shape": "square", "color": "blue"})
    assert {c.kind for c in (*ii.targets, *ii.attributes)} == {"image"}
    # the biased gallery's stars sit nearer yellow squares than its circles do (measured d 0.47, p 0.0003)
    assert ii.effect_size >= 0.25 and ii.p_value <= 0.01


def test_long_tail_matches_a_manual_zero_shot(balanced):
    res = cs.diagnostics.long_tail(balanced, "shape")
    frame = res.to_frame().set_index("label")
    assert frame["count"].sum() == len(balanced) and res.template == "a {}"
    prompts = [f"a {s}" for s in frame.index]
    pred = np.asarray(frame.index)[np.argmax(balanced.image_embeddings @ balanced.encode_text(prompts).T, axis=1)]
    truth = balanced.metadata["shape"].to_numpy()
    for label, row in frame.iterrows():
        assert row["accuracy"] == pytest.approx(np.mean(pred[truth == label] == label))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # every accuracy may be 1: the correlation is then undefined
        rho = scipy.stats.spearmanr(frame["log_count"], frame["accuracy"]).statistic
    assert (math.isnan(rho) and math.isnan(res.spearman)) or res.spearman == pytest.approx(rho)
    star_rows = res.rows_for(label="star")
    assert sorted(star_rows) == sorted(np.flatnonzero(truth == "star"))


def _plant(img: Image.Image, how: str) -> Image.Image:
    if how == "exact":
        return img.copy()
    if how == "jpeg":
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=90)
        return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return ImageEnhance.Brightness(img).enhance(1.05)


def test_default_threshold_flags_a_realistic_share_and_still_finds_copies(balanced, toy):
    """The shapes world (600 images, 384 possible descriptions) plus 12 planted copies (6 exact, 6 brightened by 5%).

    The toy model places distinct renders of one description ~0.005 apart (median nearest-neighbour distance
    0.007 here), so a fixed cosine of 0.02 flags most of the gallery (measured 74%; 90% of a 1,000-image world).
    The relative default (a quarter of the median nearest-neighbour distance, 0.0017) flags 7% and still finds
    every planted copy (measured distance <= 0.0003); a threshold that flags over 20% makes the summary say so.
    """
    n = len(balanced)
    rng = np.random.default_rng(1)
    originals = rng.choice(n, 12, replace=False)
    hows = ["exact"] * 6 + ["bright"] * 6
    images = [balanced.gallery.load_image(int(r)) for r in range(n)]
    planted = [_plant(images[int(o)], how) for o, how in zip(originals, hows, strict=True)]
    meta = balanced.metadata
    copies = meta.iloc[originals].copy()
    copies["id"] = [f"copy-{i}" for i in range(12)]
    gallery = cs.Gallery.from_images(images + planted, metadata=pd.concat([meta, copies], ignore_index=True))
    space = cs.Space.from_embeddings(gallery, np.vstack([balanced.image_embeddings, toy.encode_images(planted)]),
                                     embedder=toy)

    res = cs.diagnostics.duplicates(space)
    median = float(np.median(res.nearest))
    assert res.threshold_source == "relative" and res.threshold == pytest.approx(0.25 * median)
    found = set(zip(res.pairs["row_a"].tolist(), res.pairs["row_b"].tolist(), strict=True))
    assert {(int(o), n + i) for i, o in enumerate(originals)} <= found
    assert 12 / len(space) < res.share <= 0.15, res.summary()  # the copies and a few look-alikes, not the gallery
    assert res.note() == "" and "note" not in res.summary()

    fixed = cs.diagnostics.duplicates(space, threshold=0.02)
    assert fixed.share > 0.5 and fixed.threshold_source == "given"
    note = fixed.summary()["note"]
    assert note.startswith(f"{fixed.share:.0%} of the images have a near-duplicate below cosine distance 0.02")
    assert f"threshold={0.25 * median:.2g}" in note and "unusually many" in note


def test_planted_duplicates_are_all_found(balanced, toy):
    """A balanced world with one image per description (no two share shape, colour, background and size: 309
    images) plus 12 planted copies of 12 of them (4 exact, 4 re-saved as JPEG q90, 4 brightened by 5%).

    The toy model places every image of one description within ~0.006 of each other and images one attribute
    apart at 0.04-0.2 (1,026 pairs below 0.2 among these 309 images), so the default 0.2 -- meant for CLIP-scale
    models -- finds every planted pair but also many look-alikes. At a threshold on the toy model's own scale,
    0.02, the toy model's default (2.3x the largest planted distance, measured 0.0087 for a JPEG copy; 1.9x below the closest two
    distinct descriptions, 0.038), it finds exactly the planted pairs and nothing else.
    """
    meta = balanced.metadata
    keep = meta.groupby(["shape", "color", "background", "size"], sort=False).head(1).index.to_numpy()
    keep = np.sort(keep)
    rng = np.random.default_rng(0)
    originals = rng.choice(len(keep), 12, replace=False)
    hows = ["exact"] * 4 + ["jpeg"] * 4 + ["bright"] * 4
    images = [balanced.gallery.load_image(int(r)) for r in keep]
    planted = [_plant(images[i], how) for i, how in zip(originals, hows, strict=True)]
    table = meta.iloc[keep].reset_index(drop=True)
    copies = table.iloc[originals].copy()
    copies["id"] = [f"copy-{i}" for i in range(12)]
    gallery = cs.Gallery.from_images(images + planted, metadata=pd.concat([table, copies], ignore_index=True))
    # the originals keep their embeddings; the copies are embedded by the same model
    embeddings = np.vstack([balanced.image_embeddings[keep], toy.encode_images(planted)])
    space = cs.Space.from_embeddings(gallery, embeddings, embedder=toy)
    n = len(keep)
    expected = {(int(o), n + i) for i, o in enumerate(originals)}

    strict = cs.diagnostics.duplicates(space)  # the relative default, here at the toy model's ceiling
    assert strict.threshold == 0.02 and strict.threshold_source == "relative"
    found = set(zip(strict.pairs["row_a"].tolist(), strict.pairs["row_b"].tolist(), strict=True))
    assert found == expected
    assert all(strict.group[a] == strict.group[b] >= 0 for a, b in expected)
    assert strict.summary()["groups"] == 12

    default = cs.diagnostics.duplicates(space, threshold=0.2)  # the CLIP-scale default
    found = set(zip(default.pairs["row_a"].tolist(), default.pairs["row_b"].tolist(), strict=True))
    assert expected <= found
    assert all(default.group[b] >= 0 for _, b in expected)
    # a click on the closest pair shows an original and its copy
    fig = strict.figure()
    pair_trace = next(i for i, t in enumerate(fig.data) if t.meta and t.meta["keys"] == ["pair"])
    a, b = strict.rows_at(fig, pair_trace, 0)
    assert (int(a), int(b)) in expected


def test_source_bias_on_twins(toy):
    """60 descriptions drawn by both renderers ("render" and "photo" twins); each query is an item's caption and
    its relevant images are the two twins. Checked against a manual computation from cs.Space.search."""
    from cirscope.datasets._shapes import WorldSpec, render_array, sample_world

    df = sample_world(60, seed=3, spec=WorldSpec())
    df["pair"] = [f"p{i}" for i in range(60)]
    both = pd.concat([df.assign(source="render"), df.assign(source="photo")], ignore_index=True)
    pixels = render_array(both, size=64)
    meta = both.drop(columns=["render_seed"]).assign(id=[f"t{i}" for i in range(120)])
    space = cs.Space(cs.Gallery.from_images([Image.fromarray(p) for p in pixels], metadata=meta), toy,
                     cache=False, progress=False)
    queries = [(cap, {"pair": pid}) for cap, pid in zip(df["caption"][:20], df["pair"][:20], strict=True)]
    res = cs.diagnostics.source_bias(space, "source", queries, k=5, compare=("photo", "render"), pair_column="pair")
    means = res.means()
    assert set(means.columns) == {"photo", "render"} and set(means.index) == {"R@5", "NDCG@5"}
    wins, hits = [], {"photo": [], "render": []}
    for cap, sel in queries:
        ranked = space.search(cap, k=len(space))["row"].to_numpy()
        twins = {s: int(np.flatnonzero((meta["pair"] == sel["pair"]) & (meta["source"] == s))[0])
                 for s in ("photo", "render")}
        pos = {s: int(np.flatnonzero(ranked == r)[0]) for s, r in twins.items()}
        wins.append(pos["render"] < pos["photo"])
        for s in hits:
            hits[s].append(pos[s] < 5)
    assert res.twin_share == pytest.approx(np.mean(wins))
    assert means.loc["R@5", "photo"] == pytest.approx(np.mean(hits["photo"]))
    assert means.loc["R@5", "render"] == pytest.approx(np.mean(hits["render"]))
    d = res.deltas()["R@5"]
    m_p, m_r = np.mean(hits["photo"]), np.mean(hits["render"])
    assert d == pytest.approx(2 * (m_p - m_r) / (m_p + m_r) * 100)

"""Every diagnostic equals its definition, computed brute force in float64 on unit rows, to 1e-9 on float32 input.

Stored embeddings are float32 rows that are unit only to about 1e-7; the definitions are over
unit vectors (see the docstrings' formulas). The brute-force references
below re-normalise every row in float64 and follow the formulas literally.
"""

from __future__ import annotations

import numpy as np
import pytest

import cirscope as cs
from cirscope.diagnostics import duplicates, hubness, long_tail, modality_gap, outliers, uniqueness
from cirscope.diagnostics._common import default_texts
from cirscope.diagnostics._gap import cone, gap

TOL = 1e-9


def unit64(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def images(toy_space) -> np.ndarray:
    emb = np.asarray(toy_space.image_embeddings)
    assert emb.dtype == np.float32
    assert np.abs(np.linalg.norm(emb.astype(np.float64), axis=1) - 1).max() > 1e-9  # not exactly unit
    return unit64(emb)


@pytest.fixture(scope="module")
def cosine_distances(images) -> np.ndarray:
    d = 1.0 - images @ images.T
    np.fill_diagonal(d, np.inf)
    return d


def test_modality_gap_equals_its_definition(toy_space, images):
    texts = default_texts(toy_space)
    t = unit64(toy_space.encode_text(texts))
    res = modality_gap(toy_space)
    delta = images.mean(axis=0) - t.mean(axis=0)
    assert abs(res.gap - np.linalg.norm(delta)) < TOL
    np.testing.assert_allclose(res.delta, delta, rtol=0, atol=TOL)
    n, m = len(images), len(t)
    gram, tgram = images @ images.T, t @ t.T
    assert abs(res.cone_images - (gram.sum() - np.trace(gram)) / (n * (n - 1))) < TOL
    assert abs(res.cone_texts - (tgram.sum() - np.trace(tgram)) / (m * (m - 1))) < TOL
    assert abs(res.image_text_cosine - (images @ t.T).mean()) < TOL


def test_gap_and_cone_normalise_rows_that_are_far_from_unit():
    rng = np.random.default_rng(3)
    x = (rng.normal(size=(500, 32)) * rng.uniform(0.5, 2.0, size=(500, 1))).astype(np.float32)
    y = (rng.normal(size=(70, 32)) + 0.3).astype(np.float32)
    ux, uy = unit64(x), unit64(y)
    g, _ = gap(x, y)
    assert abs(g - np.linalg.norm(ux.mean(0) - uy.mean(0))) < TOL
    gram = ux @ ux.T
    assert abs(cone(x) - (gram.sum() - 500) / (500 * 499)) < TOL
    from cirscope.diagnostics._gap import unit_sum

    total, n = unit_sum(x)
    np.testing.assert_allclose(total / n, ux.mean(0), rtol=0, atol=TOL)
    with pytest.raises(ValueError, match="non-zero"):
        cone(np.vstack([x, np.zeros((1, 32), np.float32)]))


def test_outliers_and_uniqueness_equal_their_definitions(toy_space, cosine_distances):
    d = np.sort(cosine_distances, axis=1)
    res = outliers(toy_space, k=10)
    np.testing.assert_allclose(res.scores, d[:, :10].mean(axis=1), rtol=0, atol=TOL)
    q1, q3 = np.percentile(d[:, :10].mean(axis=1), [25, 75])
    assert abs(res.cutoff - (q3 + 1.7 * (q3 - q1))) < TOL
    u = uniqueness(toy_space)
    raw = 0.6 * d[:, 0] + 0.3 * d[:, 1] + 0.1 * d[:, 2]
    np.testing.assert_allclose(u.scores, raw / raw.max(), rtol=0, atol=TOL)


def test_duplicates_equal_their_definition(toy_space, cosine_distances):
    res = duplicates(toy_space, threshold=0.02)
    np.testing.assert_allclose(res.nearest, cosine_distances.min(axis=1), rtol=0, atol=TOL)
    a, b = np.nonzero(np.triu(cosine_distances < 0.02, k=1))
    assert sorted(zip(res.pairs["row_a"], res.pairs["row_b"], strict=True)) == sorted(zip(a, b, strict=True))
    exact = cosine_distances[res.pairs["row_a"], res.pairs["row_b"]]
    np.testing.assert_allclose(res.pairs["distance"], exact, rtol=0, atol=TOL)


def test_hubness_and_long_tail_follow_exact_cosine(toy_space, images):
    k = 10
    sims = images @ images.T
    np.fill_diagonal(sims, -np.inf)
    nearest = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    res = hubness(toy_space, k, "images", progress=False)
    np.testing.assert_array_equal(res.n_k["none"], np.bincount(nearest.ravel(), minlength=len(images)))
    lt = long_tail(toy_space, "color")
    values = sorted(set(toy_space.metadata["color"]))
    text = unit64(toy_space.encode_text([lt.template.format(v) for v in values]))
    predicted = np.asarray(values, dtype=object)[np.argmax(images @ text.T, axis=1)]
    labels = toy_space.metadata["color"].to_numpy()
    expect = {v: float(np.mean(predicted[labels == v] == v)) for v in values}
    assert lt.to_frame().set_index("label")["accuracy"].to_dict() == pytest.approx(expect, abs=TOL)


def test_a_space_of_rows_far_from_unit_gives_the_same_gap(toy_space):
    """``from_embeddings`` with rows of any length: the gap is that of the unit rows."""
    rng = np.random.default_rng(0)
    scaled = np.asarray(toy_space.image_embeddings) * rng.uniform(0.5, 3.0, size=(len(toy_space), 1))
    other = cs.Space.from_embeddings(toy_space.gallery, scaled.astype(np.float32), embedder=toy_space.embedder)
    assert abs(modality_gap(other).gap - modality_gap(toy_space).gap) < 1e-6  # float32 storage of the scaled rows

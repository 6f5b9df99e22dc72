"""The generated shapes benchmark, and the ordering of methods with the toy model."""

from __future__ import annotations

import numpy as np
import pytest

from cirscope.datasets._shapes import ATTRIBUTES, sample_world
from cirscope.eval import CIRBenchmark, evaluate, make_shapes_benchmark, phrase, prepare, sweep_pdv

ATTRS = tuple(ATTRIBUTES)


@pytest.fixture(scope="module")
def world():
    return sample_world(800, seed=3)


def test_targets_are_exactly_the_matching_items(world):
    b = make_shapes_benchmark(world, n_queries=200, seed=1)
    assert len(b) == 200
    for q in b.queries:
        ref = world.iloc[int(q.reference)]
        attr, new = q.meta["attribute"], q.meta["to"]
        assert q.meta["from"] == ref[attr] != new
        want = np.ones(len(world), dtype=bool)
        for a in ATTRS:
            want &= world[a].to_numpy() == (new if a == attr else ref[a])
        assert sorted(q.targets, key=int) == [str(i) for i in np.flatnonzero(want)]
        assert q.reference not in q.targets


def test_every_attribute_and_phrasing_appears(world):
    b = make_shapes_benchmark(world, n_queries=300, seed=0)
    assert {q.meta["attribute"] for q in b.queries} == set(ATTRS)
    sizes = {q.text for q in b.queries if q.meta["attribute"] == "size"}
    assert sizes & {"bigger", "smaller", "make it bigger", "make it smaller", "larger", "tinier"}
    for q in b.queries:
        if q.meta["attribute"] != "size":
            assert q.meta["to"] in q.text


def test_seeded_and_distinct(world):
    a = make_shapes_benchmark(world, n_queries=100, seed=5)
    b = make_shapes_benchmark(world, n_queries=100, seed=5)
    c = make_shapes_benchmark(world, n_queries=100, seed=6)
    assert a.queries == b.queries and a.queries != c.queries
    keys = {(q.reference, q.meta["attribute"], q.meta["to"]) for q in a.queries}
    assert len(keys) == len(a.queries)


def test_uses_the_id_column_and_round_trips(tmp_path, world):
    df = world.assign(id=[f"item-{i}" for i in range(len(world))])
    b = make_shapes_benchmark(df, n_queries=20, seed=0)
    assert all(q.reference.startswith("item-") and q.targets[0].startswith("item-") for q in b.queries)
    again = CIRBenchmark.load(b.save(tmp_path / "shapes.json"))
    assert again.queries == b.queries and again.protocol == b.protocol


def test_tiny_gallery_without_targets_is_an_error():
    with pytest.raises(ValueError, match="No query has a target"):
        make_shapes_benchmark(sample_world(3, seed=0), n_queries=5)


def test_bad_input():
    with pytest.raises(ValueError, match="lacks the shapes-world columns"):
        make_shapes_benchmark(sample_world(10).drop(columns=["size"]))
    with pytest.raises(ValueError, match="Unknown color"):
        phrase("color", "plaid")


def test_phrases():
    assert phrase("color", "blue") == "make it blue"
    assert phrase("shape", "triangle") == "as a triangle"
    assert phrase("background", "black") == "on a black background"
    assert phrase("size", "small") == "smaller"


@pytest.mark.slow
def test_toy_model_ordering(toy_space):
    """PDV-F (swept on other queries) beats sum, text-only and image-only on the toy model."""
    meta = toy_space.gallery.metadata
    bench = make_shapes_benchmark(meta, n_queries=400, seed=0)
    tune = make_shapes_benchmark(meta, n_queries=400, seed=1000)
    prep = prepare(toy_space, bench, reference_text="zero-shot", progress=False)
    assert set(prep.reference_text_sources) == {"zero-shot"}
    sweep = sweep_pdv(prepared=prepare(toy_space, tune, reference_text="zero-shot", progress=False), progress=False)
    table = evaluate(None, prepared=prep, extra={"pdv (swept)": ("pdv", sweep.best)})
    pdv = table.loc["pdv (swept)"]
    assert pdv["R@10"] >= 0.90
    assert pdv["R@10"] >= table.loc["sum", "R@10"]
    assert pdv["mAP@10"] > table.loc["sum", "mAP@10"]
    assert pdv["R@10"] > table.loc["text", "R@10"] and pdv["R@10"] > table.loc["image", "R@10"]
    assert table.loc["sum", "R@10"] > table.loc["image", "R@10"]

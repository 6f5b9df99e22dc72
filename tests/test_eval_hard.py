"""The harder shapes benchmark, the uncertainty of benchmark figures and the sweep's plateau."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

from cirscope.cli import main
from cirscope.datasets._shapes import ATTRIBUTES, sample_world
from cirscope.eval import (
    PDVSweep,
    evaluate,
    interval,
    make_hard_shapes_benchmark,
    make_shapes_benchmark,
    mcnemar_p,
    prepare,
    sweep_pdv,
    tied_with_best,
)
from cirscope.eval._uncertainty import bootstrap_means
from cirscope.toy._phrasings import all_edits

ATTRS = tuple(ATTRIBUTES)


@pytest.fixture(scope="module")
def world():
    return sample_world(2000, seed=3)


def test_targets_half_edits_and_near_misses_are_exact(world):
    b = make_hard_shapes_benchmark(world, n_queries=150, seed=1)
    assert len(b) == 150 and b.name == "shapes-hard" and b.gallery["level"] == "hard"
    values = {a: world[a].to_numpy() for a in ATTRS}
    for q in b.queries:
        ref = world.iloc[int(q.reference)]
        changed = q.meta["attributes"]
        assert len(changed) == 2 and list(changed) == [a for a in ATTRS if a in changed]
        goal = {a: ref[a] for a in ATTRS}
        for a, old, new in zip(changed, q.meta["from"], q.meta["to"], strict=True):
            assert ref[a] == old != new
            goal[a] = new
        same = np.stack([values[a] == goal[a] for a in ATTRS])
        assert sorted(q.targets, key=int) == [str(i) for i in np.flatnonzero(same.all(axis=0))]
        assert 1 <= len(q.targets) <= 2 and q.reference not in q.targets
        assert q.meta["near_misses"] == int((same.sum(axis=0) == 3).sum())
        half = 0
        for a, new in zip(changed, q.meta["to"], strict=True):
            one = {**{x: ref[x] for x in ATTRS}, a: new}
            half += int(np.all([values[x] == one[x] for x in ATTRS], axis=0).sum())
        assert q.meta["half_edits"] == half >= 1


def test_instructions_are_two_unseen_edits(world):
    b = make_hard_shapes_benchmark(world, n_queries=300, seed=0)
    train = set(all_edits("train", dict(ATTRIBUTES)))
    pairs = set()
    for q in b.queries:
        parts = q.text.split(" and ")
        assert len(parts) == 2, q.text
        assert not set(parts) & train, q.text
        for a, new in zip(q.meta["attributes"], q.meta["to"], strict=True):
            if a != "size":
                assert new in q.text
        pairs.add(tuple(q.meta["attributes"]))
    assert len(pairs) == 6  # every pair of the four attributes occurs
    # either edit may come first
    named = [q for q in b.queries if "size" not in q.meta["attributes"]]
    assert any(q.text.split(" and ")[0].count(q.meta["to"][1]) for q in named)
    assert any(q.text.split(" and ")[0].count(q.meta["to"][0]) for q in named)


def test_seeded_and_the_same_queries_in_both_phrasings(world):
    a = make_hard_shapes_benchmark(world, n_queries=80, seed=5)
    again = make_hard_shapes_benchmark(world, n_queries=80, seed=5)
    other = make_hard_shapes_benchmark(world, n_queries=80, seed=6)
    trained = make_hard_shapes_benchmark(world, n_queries=80, seed=5, phrasings="in-template")
    assert a.queries == again.queries and a.queries != other.queries
    assert [(q.reference, q.targets) for q in a.queries] == [(q.reference, q.targets) for q in trained.queries]
    assert [q.text for q in a.queries] != [q.text for q in trained.queries]


def test_targets_rarer_than_on_the_easy_benchmark(world):
    hard = make_hard_shapes_benchmark(world, n_queries=200, seed=0)
    easy = make_shapes_benchmark(world, n_queries=200, seed=0)
    assert np.mean([len(q.targets) for q in hard.queries]) < 0.5 * np.mean([len(q.targets) for q in easy.queries])


def test_bad_input():
    with pytest.raises(ValueError, match="lacks the shapes-world columns"):
        make_hard_shapes_benchmark(sample_world(10).drop(columns=["color"]))
    with pytest.raises(ValueError, match="Unknown phrasings"):
        make_hard_shapes_benchmark(sample_world(10), phrasings="slang")
    with pytest.raises(ValueError, match="max_targets"):
        make_hard_shapes_benchmark(sample_world(10), max_targets=0)
    with pytest.raises(ValueError, match="larger gallery"):
        make_hard_shapes_benchmark(sample_world(5, seed=0), n_queries=3)
    bad = sample_world(20).assign(color="plaid")
    with pytest.raises(ValueError, match="outside the shapes world"):
        make_hard_shapes_benchmark(bad)


def test_interval_and_bootstrap():
    hits = np.r_[np.ones(300), np.zeros(700)]
    lo, hi = interval(hits)
    se = np.sqrt(0.3 * 0.7 / 1000)
    assert lo == pytest.approx(0.3 - 1.96 * se, abs=0.01) and hi == pytest.approx(0.3 + 1.96 * se, abs=0.01)
    both = interval(np.stack([hits, np.ones(1000)]))
    assert both.shape == (2, 2) and both[1].tolist() == [1.0, 1.0]
    assert np.array_equal(bootstrap_means(hits, 100, seed=3), bootstrap_means(hits, 100, seed=3))
    with pytest.raises(ValueError, match="level"):
        interval(hits, level=1.5)
    with pytest.raises(ValueError, match="No queries"):
        bootstrap_means(np.zeros(0))


def test_mcnemar_is_the_exact_binomial_test_of_the_disagreements():
    rng = np.random.default_rng(0)
    a = rng.random(200) < 0.6
    b = rng.random(200) < 0.5
    only_a, only_b = int((a & ~b).sum()), int((b & ~a).sum())
    assert mcnemar_p(a, b) == pytest.approx(binomtest(only_a, only_a + only_b).pvalue)
    assert mcnemar_p(a, a) == 1.0
    with pytest.raises(ValueError, match="same queries"):
        mcnemar_p(a, b[:10])


def test_tied_with_best_is_a_set():
    rng = np.random.default_rng(1)
    # exactly 320, 316, 220 and 324 hits of 400, each on its own random queries
    rows = np.stack([rng.permutation(np.r_[np.ones(k), np.zeros(400 - k)]) for k in (320, 316, 220, 324)])
    assert tied_with_best(rows).tolist() == [True, True, False, True]
    # a setting that wins on the same few queries every time is better, however small the gap
    base = rng.random(400)
    nested = np.stack([base < 0.80, base < 0.78]).astype(float)
    assert tied_with_best(nested).tolist() == [True, False]


def _sweep(surface: np.ndarray, alphas, betas, n=300, seed=0) -> PDVSweep:
    """A tied-mode sweep whose per-query hits have the given mean per (beta, alpha) cell."""
    rng = np.random.default_rng(seed)
    u = rng.random(n)
    records, cells = [], []
    for i, b in enumerate(betas):
        for j, a in enumerate(alphas):
            hits = (u < surface[i, j]).astype(np.float32)
            cells.append(hits)
            records.append({"alpha_t": a, "alpha_i": a, "beta": b, "R@1": float(hits.mean())})
    return PDVSweep(pd.DataFrame.from_records(records), "R@1", "tied", np.stack(cells))


def test_plateau_summary_and_the_figure_show_the_same_cells():
    alphas, betas = [0.0, 0.5, 1.0, 1.5, 2.0], [0.0, 0.25, 0.5, 0.75, 1.0]
    peak = np.full((5, 5), 0.3)
    peak[2, 2] = 0.9
    s = _sweep(peak, alphas, betas)
    flat = s.plateau()
    assert len(flat) == 1 and s.summary()["interior"] and s.best == {"alpha_t": 1.0, "alpha_i": 1.0, "beta": 0.5}
    ridge = np.full((5, 5), 0.3)
    ridge[1:3, 0:3] = 0.8  # a plateau touching alpha = 0, the grid's edge
    s = _sweep(ridge, alphas, betas)
    summary = s.summary()
    assert summary["cells"] == 6 and not summary["interior"] and summary["beta"] == [0.25, 0.5]
    fig = s.figure()
    marks = next(t for t in fig.data if t.name and t.name.startswith("within noise"))
    got = sorted(zip(marks.x, marks.y, strict=True))
    assert got == sorted(zip(s.plateau()["alpha_t"], s.plateau()["beta"], strict=True))
    assert "6 of 25" in marks.name
    with pytest.raises(ValueError, match="per-query"):
        PDVSweep(s.table, "R@1", "tied").plateau()


# ---- with the toy model ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def hard_space():
    import cirscope as cs

    return cs.Space(cs.datasets.shapes(2000, seed=0), cs.Embedder.toy(), cache=False, progress=False)


@pytest.mark.slow
def test_methods_separate_and_the_sweep_has_an_interior_optimum(hard_space):
    import cirscope as cs

    meta = hard_space.gallery.metadata
    short = cs.datasets.shapes_short_vocabulary()
    prep = prepare(hard_space, make_hard_shapes_benchmark(meta, 600, seed=0), reference_text="zero-shot",
                   vocabulary=short, progress=False)
    tune = prepare(hard_space, make_hard_shapes_benchmark(meta, 600, seed=1000), reference_text="zero-shot",
                   vocabulary=short, progress=False)
    assert all(len(t.split()) == 3 for t in prep.reference_texts)  # "a red star": no background, no size
    sweep = sweep_pdv(prepared=tune, alphas=[0, 0.5, 0.75, 1, 1.25, 1.5, 2], betas=[0, 0.25, 0.5, 0.75, 1],
                      metric="R@1", progress=False)
    summary = sweep.summary()
    assert summary["interior"] and 0 < summary["beta"][0] and summary["beta"][1] < 1
    assert summary["cells"] < 0.25 * summary["of"]
    table = evaluate(None, prepared=prep, extra={"pdv (swept)": ("pdv", sweep.best)}, intervals=("R@1",))
    r1 = table["R@1"]
    assert r1.idxmax() == "pdv (swept)"
    assert table.loc["slerp", "R@1 p vs best"] < 0.05 and table.loc["sum", "R@1 p vs best"] < 0.001
    assert r1["sum"] > r1["text"] > r1["image"]
    assert r1["pdv (swept)"] < 0.95  # not saturated
    assert (table["R@1 lo"] <= r1).all() and (r1 <= table["R@1 hi"]).all()


@pytest.mark.slow
def test_cli_runs_the_hard_benchmark_by_default(capsys, tmp_path):
    rc = main(["eval", "cir", "--dataset", "shapes", "--n-gallery", "1000", "--n-queries", "120", "--quiet", "--json",
               "--save-benchmark", str(tmp_path / "b.json")])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report["benchmark"] == "shapes-hard" and report["level"] == "hard"
    assert report["reference_vocabulary"] == "short: colour and shape"
    sweep = report["pdv_sweep"]
    assert sweep["metric"] == "R@1" and sweep["tuned_on"] == "shapes-hard-tune" and 1 <= sweep["cells"] <= sweep["of"]
    pdv = report["table"]["pdv (swept)"]
    assert pdv["R@1 lo"] <= pdv["R@1"] <= pdv["R@1 hi"] and "R@10 p vs best" in pdv
    # p-values keep their significant digits in the report (never rounded to 0)
    assert all(0 < row["R@1 p vs best"] <= 1 for row in report["table"].values())
    saved = json.loads((tmp_path / "b.json").read_text())
    assert saved["gallery"]["level"] == "hard" and saved["gallery"]["phrasings"] == "held-out"
    rc = main(["eval", "cir", "--benchmark", str(tmp_path / "b.json"), "--quiet"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "shapes-hard: 120 queries" in out and "95% bootstrap intervals" in out and "within noise of it" in out

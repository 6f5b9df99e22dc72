"""From findings to decisions: the findings table, the fixes (fair re-ranking, debiasing, a drop list), re-measured."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pandas as pd
import pytest

import cirscope as cs
from cirscope.diagnostics import _findings, _fixes, _skew_math
from tests.hostile_strings import HOSTILE
from tests.test_diagnostics_metrics import synthetic_space


@pytest.fixture(scope="module")
def biased_small():
    star_yellow = cs.datasets.Bias(when={"shape": "star"}, then={"color": "yellow"}, p=0.8)
    return cs.Space(cs.datasets.shapes(300, seed=7, biases=[star_yellow]), cs.Embedder.toy(), cache=False,
                    progress=False)


def test_docstring_examples(toy_space):
    names = {"cs": cs, "np": np, "space": toy_space}
    for module in (_fixes, _findings):
        result = doctest.testmod(module, extraglobs=names, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0 and result.attempted > 0


def test_detgreedy_by_hand():
    """Ranking a a a a b b c, target a .5, b .25, c .25, K = 4.
    i=1: mins floor(.5)=floor(.25)=0, none below; maxes ceil(.5)=1 etc.: all below -> best-ranked: a (pos 0).
    i=2: mins floor(1)=1 for a (has 1), b, c 0: none below; maxes a ceil(1)=1 (full), b, c ceil(.5)=1 -> b (pos 4).
    i=3: mins a floor(1.5)=1 ok, b floor(.75)=0, c 0; maxes a 2, b 1 (full), c 1 -> a (pos 1) ranks above c (pos 6).
    i=4: mins a 2 ok, b 1 ok, c floor(1)=1 > 0 -> c (pos 6)."""
    assert _fixes.fair_rerank(list("aaaabbc"), {"a": 0.5, "b": 0.25, "c": 0.25}, 4).tolist() == [0, 4, 1, 6]
    # a label that runs out drops out; the rest keeps its order
    assert _fixes.fair_rerank(list("aaab"), {"a": 0.5, "b": 0.5}, 4).tolist() == [0, 3, 1, 2]
    with pytest.raises(ValueError, match="between 1 and the 4"):
        _fixes.fair_rerank(list("aaab"), {"a": 0.5, "b": 0.5}, 5)


def test_detgreedy_meets_the_prefix_bounds_on_random_rankings():
    """The top 20 holds each label within one item of its target count (DetGreedy is greedy: Geyik et al.
    note it can miss a prefix bound), and every label keeps its original order."""
    rng = np.random.default_rng(0)
    for target, p in (({"a": 0.3, "b": 0.7}, [0.9, 0.1]), ({"a": 0.5, "b": 0.3, "c": 0.2}, [0.8, 0.15, 0.05])):
        for _ in range(30):
            ranked = rng.choice(list(target), size=600, p=p).tolist()  # enough of every label
            pos = _fixes.fair_rerank(ranked, target, 20)
            assert len(set(pos.tolist())) == 20
            chosen = np.asarray(ranked, dtype=object)[pos]
            for label, share in target.items():
                assert abs(int((chosen == label).sum()) - 20 * share) <= 1
                mine = pos[chosen == label]
                assert (np.diff(mine) > 0).all()  # within a label the original order is kept


def test_rerank_measures_again_on_the_same_formulas():
    """A synthetic space ranked by angle: the top 10 are all "a"; re-ranked to the gallery's 50/50, MaxSkew falls
    to 0 and the table's numbers are label_skew's on the rows returned."""
    angles = np.linspace(0, np.pi / 2, 60)
    vecs = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    group = ["a"] * 30 + ["b"] * 30
    space = synthetic_space(vecs, group=group)
    fix = cs.diagnostics.rerank(space, {"east": np.array([1.0, 0.0])}, "group", k=10)
    t = fix.to_frame().set_index("quantity")
    assert t.loc["MaxSkew@10", "before"] == pytest.approx(math.log(2), abs=1e-12)
    assert t.loc["MaxSkew@10", "after"] == pytest.approx(0.0, abs=1e-12)
    labels = np.asarray(group, dtype=object)
    assert fix.rows_before.tolist() == list(range(10))
    assert sorted(fix.rows_after.tolist()) == [0, 1, 2, 3, 4, 30, 31, 32, 33, 34]
    q = pd.Series({"a": 0.5, "b": 0.5})
    ref = _skew_math.label_skew(labels[fix.rows_after].tolist(), q, 10)
    assert t.loc["MaxSkew@10", "after"] == pytest.approx(ref["skew"].max(), abs=1e-12)
    assert t.loc["NDKL@10", "after"] == pytest.approx(_skew_math.ndkl(labels[fix.rows_after].tolist(), q, 10),
                                                      abs=1e-12)
    assert "MaxSkew@10 0.69 -> 0.00" in fix.sentence()


def test_debias_projects_the_attribute_directions_out(toy_space):
    """After the projection the query has no component along the centred colour prompts; the fix reports
    before/after on the same pool."""
    fix = cs.diagnostics.debias(toy_space, "a star", "color", k=10)
    assert len(fix.rows_after) == 10 and set(fix.to_frame()["quantity"]) == {"MaxSkew@10", "MinSkew@10", "NDKL@10"}
    assert fix.fix.startswith("direction debiasing")
    with pytest.raises(ValueError, match="at least two prompts"):
        cs.diagnostics.debias(toy_space, "a star", "color", k=10, prompts=["a red shape"])


def test_drop_list_keeps_one_per_group():
    vecs = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 1, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32)
    space = synthetic_space(vecs + 1e-4 * np.arange(18).reshape(6, 3), group=list("aabbbc"))
    dups = cs.diagnostics.duplicates(space, threshold=0.01)
    drops = cs.diagnostics.drop_list(dups)
    assert drops["row"].tolist() == [1, 3, 4] and drops["keep_row"].tolist() == [0, 2, 2]
    assert drops["id"].tolist() == ["item-0001", "item-0003", "item-0004"]


def test_findings_separate_gallery_from_model(biased_small):
    f = cs.diagnostics.findings(biased_small, "color")
    table = f.to_frame()
    assert set(table["source"]) <= {"gallery", "model"}
    gallery = table[table["finding"] == "shape=star images are mostly yellow"].iloc[0]
    stars = biased_small.metadata.query("shape == 'star'")["color"]
    assert gallery["source"] == "gallery" and "rebalance or collect" in gallery["action"]
    assert gallery["evidence"].startswith(f"{int((stars == 'yellow').sum())} of {len(stars)}")
    # with the stars' own colour shares as target, yellow stars first is what the gallery explains, not the model
    assert not table["finding"].str.contains("for 'a star'").any()
    for row in table[table["source"] == "model"].itertuples():
        assert "MaxSkew@10" in row.evidence and "rerank" in row.how


def test_findings_from_an_audit_report_include_the_sweep(biased_small):
    meta = biased_small.metadata
    ref = int(meta.index[(meta["shape"] == "circle") & (meta["color"] == "blue")][0])
    report = cs.audit(biased_small, "color", k=(10,), composed=cs.ComposedQuery(ref, "turn it into a star"),
                      progress=False)
    table = cs.diagnostics.findings(report).to_frame()
    sweep = table[table["finding"].str.contains("along the slider")].iloc[0]
    assert sweep["source"] == "gallery" and "coverage gap" in sweep["evidence"]


def test_findings_html_is_text():
    table = pd.DataFrame([{c: HOSTILE[0] for c in _findings.FINDING_COLUMNS}])
    html = _findings.Findings(table, HOSTILE[0])._repr_html_()
    assert HOSTILE[0] not in html


def test_audit_sweeps_an_attribute_the_text_does_not_name_and_the_report_reads_its_numbers(biased_small, tmp_path):
    meta = biased_small.metadata
    ref = int(meta.index[(meta["shape"] == "circle") & (meta["color"] == "blue")][0])
    report = cs.audit(biased_small, "color", k=(10,), composed=cs.ComposedQuery(ref, "make it red"), progress=False)
    assert report.info["sweep_attribute"] != "color"  # colour for "make it red" is the requested effect
    assert report["direction_sweep"].attribute == report.info["sweep_attribute"]
    path = report.to_html(tmp_path / "audit.html", thumbnails=False, findings=True)
    html = path.read_text()
    assert "Findings: what to do" in html and "Reading the numbers" in html
    assert "0 hubs" in html or "hubs:" in html  # hubness says what its hub count means
    for name in report.results:
        sentence = report[name].sentence()
        assert sentence, f"{name} has no sentence"


def test_panel_status_carries_the_readings_as_text(biased_small):
    panel = cs.DiagnosticsPanel(biased_small, diagnostic="skew", attribute="color", queries=["a star"])
    status = panel.status
    assert "random" in status["sentence"] and any(line.startswith("MaxSkew@10 = ") for line in status["readings"])
    assert all(isinstance(line, str) for line in status["readings"])

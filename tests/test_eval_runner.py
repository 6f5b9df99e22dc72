"""The runner: vectorised scoring agrees with the metric definitions; sweeps, heatmaps and the CLI."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from PIL import Image

import cirscope as cs
from cirscope.cli import main
from cirscope.eval import (
    CIRBenchmark,
    CIRQuery,
    Protocol,
    evaluate,
    map_at_k,
    prepare,
    recall_at_k,
    recall_subset_at_k,
    score,
    sweep_pdv,
)

CIR = Path(__file__).parent / "fixtures" / "cir"


class StubEmbedder:
    """A deterministic text encoder: each text maps to a fixed pseudo-random unit vector."""

    name = "stub"
    pretrained = None

    def __init__(self, dim: int, table: dict[str, np.ndarray] | None = None):
        self.dim = dim
        self.table = table or {}

    def encode_text(self, texts):
        out = []
        for t in texts:
            if t in self.table:
                v = np.asarray(self.table[t], dtype=np.float64)
            else:
                seed = int(hashlib.sha1(t.encode()).hexdigest()[:8], 16)
                v = np.random.default_rng(seed).normal(size=self.dim)
            out.append(v / np.linalg.norm(v))
        return np.asarray(out, dtype=np.float32)


def make_space(emb: np.ndarray, meta: pd.DataFrame | None = None, table=None) -> cs.Space:
    n = len(emb)
    images = [Image.new("RGB", (4, 4), (i * 10 % 255, 0, 0)) for i in range(n)]
    g = cs.Gallery.from_images(images, metadata=meta, ids=[f"g{i}" for i in range(n)])
    return cs.Space.from_embeddings(g, emb, embedder=StubEmbedder(emb.shape[1], table))


def unit(*xs):
    v = np.array(xs, dtype=np.float64)
    return v / np.linalg.norm(v)


@pytest.fixture
def five():
    emb = np.stack([unit(1, 0, 0), unit(0.9, 0.1, 0), unit(0.5, 0.5, 0), unit(0, 1, 0), unit(-0.1, 0, 1)])
    return make_space(emb)


def test_hand_computed_image_baseline(five):
    # query = g0 itself; ranking without g0: g1, g2, g3, g4 -> the target g3 is third
    bench = CIRBenchmark("t", [CIRQuery("0", "g0", "whatever", ("g3",))], Protocol(True, (1, 2, 3, 5), (), (5,)))
    table = evaluate(five, bench, ["image"], progress=False)
    row = table.loc["image"]
    assert (row["R@1"], row["R@2"], row["R@3"], row["R@5"]) == (0.0, 0.0, 1.0, 1.0)
    assert row["mAP@5"] == pytest.approx(1 / 3)
    # without removing the reference, g0 takes the first place: the target is fourth
    keep = CIRBenchmark("t", bench.queries, Protocol(False, (3, 4), (), ()))
    row = evaluate(five, keep, ["image"], progress=False).loc["image"]
    assert (row["R@3"], row["R@4"]) == (0.0, 1.0)


def test_hand_computed_subset(five):
    # subset {g0 (reference), g2, g3, g4}: ranking within it, reference removed: g2, g3, g4
    q = CIRQuery("0", "g0", "x", ("g3",), subset=("g0", "g2", "g3", "g4"))
    bench = CIRBenchmark("t", [q], Protocol(True, (1,), (1, 2, 3), ()))
    row = evaluate(five, bench, ["image"], progress=False).loc["image"]
    assert (row["Rs@1"], row["Rs@2"], row["Rs@3"]) == (0.0, 1.0, 1.0)


def test_score_agrees_with_the_metric_functions():
    rng = np.random.default_rng(0)
    n, d, nq = 60, 8, 25
    emb = rng.normal(size=(n, d))
    space = make_space(emb)
    queries = []
    for i in range(nq):
        ref = int(rng.integers(n))
        others = [j for j in range(n) if j != ref]
        targets = rng.choice(others, size=int(rng.integers(1, 6)), replace=False)
        subset = set(rng.choice(others, size=5, replace=False)) | {ref, int(targets[0])}
        queries.append(CIRQuery(str(i), f"g{ref}", f"text {i}", tuple(f"g{t}" for t in targets),
                                subset=tuple(f"g{s}" for s in sorted(subset))))
    for exclude in (True, False):
        bench = CIRBenchmark("r", queries, Protocol(exclude, (1, 5, 10), (1, 2, 3), (5, 10)))
        prep = prepare(space, bench, reference_text="neutral", progress=False)
        qv = rng.normal(size=(nq, d)).astype(np.float32)
        got = score(prep, qv)
        e = space.image_embeddings
        rankings, targets, subsets, refs = [], [], [], []
        for i, q in enumerate(queries):
            s = e @ qv[i]
            order = [int(r) for r in np.argsort(-s, kind="stable")]
            ref = int(q.reference[1:])
            if exclude:
                order.remove(ref)
            rankings.append(order)
            targets.append({int(t[1:]) for t in q.targets})
            subsets.append({int(m[1:]) for m in q.subset})
            refs.append(ref)
        for k in (1, 5, 10):
            assert got[f"R@{k}"] == pytest.approx(recall_at_k(rankings, targets, k))
        for k in (5, 10):
            assert got[f"mAP@{k}"] == pytest.approx(map_at_k(rankings, targets, k))
        full = [list(np.argsort(-(e @ qv[i]), kind="stable")) for i in range(nq)]
        for k in (1, 2, 3):
            assert got[f"Rs@{k}"] == pytest.approx(recall_subset_at_k(full, targets, subsets, k, references=refs))


def test_prepare_texts_and_sources(five):
    meta_space = make_space(
        five.image_embeddings, meta=pd.DataFrame({"caption": ["a red thing", "", "c", "d", "e"]})
    )
    bench = CIRBenchmark("t", [CIRQuery("0", "g0", "make it blue", ("g3",)), CIRQuery("1", "g1", "bigger", ("g2",))])
    prep = prepare(meta_space, bench, reference_text="auto", progress=False)
    assert prep.reference_texts == ["a red thing", "a photo"]
    assert prep.reference_text_sources == ["caption", "neutral"]
    assert prep.composed_texts == ["a red thing, make it blue", "a photo, bigger"]
    rewritten = prepare(meta_space, bench, reference_text="neutral", progress=False,
                        rewriter=lambda ref, text: f"{ref} edited by {text}")
    assert rewritten.composed_texts == ["a photo edited by make it blue", "a photo edited by bigger"]


def test_queries_outside_the_gallery_are_skipped(five):
    bench = CIRBenchmark("t", [CIRQuery("0", "g0", "x", ("g3",)), CIRQuery("1", "nope", "x", ("g3",)),
                               CIRQuery("2", "g1", "x", ("missing",))])
    with pytest.warns(UserWarning, match="2 of 3 queries skipped"):
        prep = prepare(five, bench, reference_text="neutral", progress=False)
    assert len(prep) == 1 and prep.skipped == 2
    unlabeled = CIRBenchmark("t", [CIRQuery("0", "g0", "x", ())])
    with pytest.raises(ValueError, match="validation split"):
        prepare(five, unlabeled, progress=False)


def test_sweep_identities_and_heatmap(tmp_path, five):
    bench = CIRBenchmark("t", [CIRQuery("0", "g0", "x", ("g3",)), CIRQuery("1", "g3", "y", ("g4",))],
                         Protocol(True, (1, 2), (), ()))
    prep = prepare(five, bench, reference_text="neutral", progress=False)
    sweep = sweep_pdv(prepared=prep, alphas=[0.0, 1.0], betas=[0.0, 1.0], progress=False, metric="R@1")
    assert len(sweep.table) == 4
    # alpha_i = 0, beta = 0 is the image-only baseline; alpha = beta = 1 is text(t_comp) only
    image = score(prep, prep.inputs["v_ref"])
    at00 = sweep.table.query("alpha_t == 0 and beta == 0").iloc[0]
    assert at00["R@1"] == image["R@1"]
    assert set(sweep.best) == {"alpha_t", "alpha_i", "beta"}
    fig = sweep.figure()
    assert isinstance(fig, go.Figure) and fig.data[0].type == "heatmap"
    assert np.asarray(fig.data[0].z).shape == (2, 2)
    html = sweep.write_html(tmp_path / "h.html").read_text()
    assert len(html) > 1_000_000 and '<script src="https://cdn.plot.ly' not in html  # offline: plotly.js inlined
    both = sweep_pdv(prepared=prep, alphas=[0.0, 1.0], betas=[0.0, 0.5, 1.0], mode="both", progress=False, metric="R@2")
    assert len(both.table) == 12
    fig = both.figure()
    heatmaps = [t for t in fig.data if t.type == "heatmap"]
    assert len(heatmaps) == 3 and len(fig.layout.sliders[0].steps) == 3
    assert sum(bool(t.visible) for t in heatmaps) == 1


def test_prepared_and_sweep_are_frozen_and_compare_by_identity(five):
    import dataclasses

    bench = CIRBenchmark("t", [CIRQuery("0", "g0", "x", ("g3",))], Protocol(True, (1,), (), ()))
    prep = prepare(five, bench, reference_text="neutral", progress=False)
    sweep = sweep_pdv(prepared=prep, alphas=[0.0], betas=[0.0], progress=False, metric="R@1")
    for obj in (prep, sweep):
        with pytest.raises(dataclasses.FrozenInstanceError):
            obj.notes = []
        assert obj == obj and obj != dataclasses.replace(obj)  # arrays inside: no element-wise comparison


def test_sweep_rejects_bad_arguments(five):
    bench = CIRBenchmark("t", [CIRQuery("0", "g0", "x", ("g3",))], Protocol(True, (1,), (), ()))
    prep = prepare(five, bench, reference_text="neutral", progress=False)
    with pytest.raises(ValueError, match="mode"):
        sweep_pdv(prepared=prep, mode="diagonal")
    with pytest.raises(ValueError, match="not reported"):
        sweep_pdv(prepared=prep, metric="mAP@10", alphas=[1.0], betas=[1.0], progress=False)
    with pytest.raises(ValueError, match="reference_text"):
        prepare(five, bench, reference_text="llm")


def test_cli_on_the_cirr_fixture(capsys, tmp_path):
    rc = main(["eval", "cir", "--dataset", "cirr", "--root", str(CIR / "cirr"), "--json", "--quiet",
               "--heatmap", str(tmp_path / "h.html")])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report["benchmark"] == "cirr-val" and report["queries"] == 2
    assert set(report["table"]) == {"image", "text", "sum", "weimocir", "slerp", "pdv", "pdv (swept)"}
    assert {"R@1", "R@50", "Rs@1", "Rs@3"} <= set(report["table"]["pdv"])
    assert (tmp_path / "h.html").is_file()


def test_cli_needs_root(capsys):
    assert main(["eval", "cir", "--dataset", "circo"]) == 2
    assert "--root is required" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_shapes_prints_every_method(capsys, tmp_path):
    rc = main(["eval", "cir", "--dataset", "shapes", "--level", "easy", "--n-gallery", "300", "--n-queries", "100",
               "--quiet", "--save-benchmark", str(tmp_path / "b.json")])
    assert rc == 0
    out = capsys.readouterr().out
    # rows are labelled as the widgets label the methods (the JSON keeps the API keys)
    for name in ("Image only", "Text only", "Sum", "WeiMoCIR", "Slerp", "PDV", "PDV (swept)", "mAP@10", "R@50"):
        assert name in out
    assert "  pdv " not in out and "PDV-F" not in out
    assert "shapes-held-out:" in out  # held-out phrasings beside the in-template ones, by default
    assert CIRBenchmark.load(tmp_path / "b.json").gallery == {"kind": "shapes", "n": 300, "seed": 0, "query_seed": 0,
                                                              "phrasings": "in-template"}
    held_out = CIRBenchmark.load(tmp_path / "b-held-out.json")
    assert held_out.gallery["phrasings"] == "held-out" and held_out.name == "shapes-held-out"

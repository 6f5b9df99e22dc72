"""Cost of the analysis views at scale: the slider-bias curve and one feedback round at 100k x 512.

A synthetic gallery (``--n`` clustered unit vectors, 8 labels) and a composed query with
random PDV inputs. Measured in the same run:

* the slider-bias curve (:func:`cirscope.analysis.slider_bias`, 26 alphas composed at once,
  one batched search) against its peer, the diagnostics' :func:`direction_sweep` at the same
  alphas (one search per alpha), and against one slider-move search (exact top 20, what the
  panel runs on every move): the curve is computed once per query, a slider move then only
  moves the chart's marker;
* one relevance-feedback round (:func:`cirscope.analysis.feedback`, Rocchio and PDV-aware).

Prints JSON (``--out`` also writes it). Run ``python benchmarks/bench_analysis_scale.py [--n 100000] [--dim 512]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path


def timed(fn, repeat: int) -> float:
    """Median wall time of ``fn()`` in ms over ``repeat`` runs (after one warm-up)."""
    fn()
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return statistics.median(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()

    import numpy as np
    import pandas as pd

    import cirscope as cs
    from cirscope.diagnostics._sweep import direction_sweep
    from cirscope.query._composed import ResolvedQuery
    from cirscope.query._search import exact_neighbors

    rng = np.random.default_rng(0)
    centers = rng.normal(size=(8, args.dim))
    labels = rng.integers(0, 8, size=args.n)
    emb = centers[labels] + 2.0 * rng.normal(size=(args.n, args.dim))
    emb = (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(np.float32)
    table = pd.DataFrame({"path": [f"r{i}.png" for i in range(args.n)], "group": [f"g{x}" for x in labels]})
    gallery = cs.Gallery.from_dataframe(table, image="path")  # no image is read: the embeddings are given
    space = cs.Space.from_embeddings(gallery, emb, model_name="synthetic")

    def unit(x):
        return (x / np.linalg.norm(x)).astype(np.float32)

    q = ResolvedQuery(text="edit", reference="r0", reference_row=0, reference_text="a", reference_text_source="explicit",
                      composed_text="b", composed_text_source="explicit", v_ref=emb[0],
                      t_mod=unit(rng.normal(size=args.dim)), t_ref=unit(centers[1] + rng.normal(size=args.dim)),
                      t_comp=unit(centers[2] + rng.normal(size=args.dim)))
    alphas = tuple(float(a) for a in np.round(np.arange(-0.5, 2.0001, 0.1), 4))
    vec = q.vector("pdv")
    marks = exact_neighbors(emb, vec, 20, exclude=[0])[0]
    report = {
        "n": args.n, "dim": args.dim, "alphas": len(alphas), "k": 50, "cpus": os.cpu_count(),
        "load_before": os.getloadavg(),
        "slider_bias_curve_ms": timed(lambda: cs.analysis.slider_bias(space, q, "group", alphas, k=50), args.repeat),
        "direction_sweep_same_alphas_ms": timed(lambda: direction_sweep(space, q, "group", alphas, k=50), args.repeat),
        "one_slider_move_search_ms": timed(lambda: exact_neighbors(emb, vec, 20, exclude=[0]), args.repeat),
        "feedback_rocchio_ms": timed(lambda: cs.analysis.feedback(space, q, relevant=marks[:3], irrelevant=marks[3:10]),
                                     args.repeat),
        "feedback_pdv_ms": timed(lambda: cs.analysis.feedback(space, q, relevant=marks[:3], irrelevant=marks[3:10],
                                                              method="pdv"), args.repeat),
        "load_after": os.getloadavg(),
    }
    report["curve_vs_sweep"] = round(report["slider_bias_curve_ms"] / report["direction_sweep_same_alphas_ms"], 3)
    report["curve_vs_one_search"] = round(report["slider_bias_curve_ms"] / report["one_slider_move_search_ms"], 2)
    text = json.dumps({k: (round(v, 2) if isinstance(v, float) else v) for k, v in report.items()}, indent=2)
    if args.out is not None:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()

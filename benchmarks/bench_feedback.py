"""How many rounds of relevance feedback fix the composed queries that start wrong (shapes world).

On fresh shapes worlds embedded with the toy model, the shapes benchmark is drawn with
held-out phrasings (so that some queries start wrong: top 1 not a target). Each round the
top K of every wrong query is marked by ground truth and the query refined
(:func:`cirscope.analysis.feedback_rounds`), for Rocchio and for the PDV-aware variant.
Reports, per variant, R@1 over the wrong queries after each round, the first round reaching
0.99, the distribution of the round that first fixes each query and what stays unfixed (by
edited attribute). Prints JSON (``--out`` also writes it).

Run ``python benchmarks/bench_feedback.py [--n 2000] [--queries 1000] [--seeds 0 7 12345] [--rounds 10]``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=2000, help="gallery size per world")
    p.add_argument("--queries", type=int, default=1000, help="composed queries per world")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 7, 12345])
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--k", type=int, default=10, help="results shown (and marked) per round")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()

    import numpy as np
    import pandas as pd

    import cirscope as cs

    embedder = cs.Embedder.toy()
    t0 = time.perf_counter()
    curves, fixed, unfixed, worlds = [], {}, {}, []
    for seed in args.seeds:
        space = cs.Space(cs.datasets.shapes(args.n, seed=seed), embedder, cache=False, progress=False)
        bench = cs.eval.make_shapes_benchmark(space.gallery.metadata, args.queries, seed=seed, phrasings="held-out")
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # unknown held-out words: the point of the exercise
            res = cs.analysis.feedback_rounds(space, bench, rounds=args.rounds, k=args.k)
        worlds.append({"seed": seed, "queries": res.queries, "start_R@1": round(res.start_r1, 4),
                       "start_wrong": int(res.wrong.size), "rounds_to_0.99": res.rounds_to(0.99),
                       "seconds": round(time.perf_counter() - start, 2)})
        curves.append(res.to_frame().assign(weight=res.wrong.size))
        attrs = np.array([q.meta["attribute"] for q in bench.queries])[res.wrong_queries]
        for variant, first in res.fixed_at.items():
            fixed.setdefault(variant, []).append(first)
            for a in attrs[np.isnan(first)]:
                unfixed.setdefault(variant, {}).setdefault(str(a), 0)
                unfixed[variant][str(a)] += 1
    curve = pd.concat(curves)
    pooled = (curve.assign(hits=curve["R@1"] * curve["weight"]).groupby(["variant", "round"], sort=False)[["hits", "weight"]]
              .sum())
    pooled = (pooled["hits"] / pooled["weight"]).round(4)
    report = {
        "model": "cirscope-toy",
        "gallery": {"n": args.n, "seeds": args.seeds},
        "phrasings": "held-out",
        "k": args.k,
        "weights": {"a": 1.0, "b": 0.75, "c": 0.15},
        "worlds": worlds,
        "start_wrong_total": int(sum(w["start_wrong"] for w in worlds)),
        "R@1_after_round": {v: pooled[v].tolist() for v in fixed},
        "rounds_to_0.99": {v: next((r for r, x in enumerate(pooled[v].tolist()) if x >= 0.99), None) for v in fixed},
        "first_fixed_round": {
            v: {("never" if np.isnan(r) else str(int(r))): int(c)
                for r, c in zip(*np.unique(np.concatenate(f), return_counts=True), strict=True)}
            for v, f in fixed.items()
        },
        "never_fixed_by_attribute": unfixed,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    text = json.dumps(report, indent=2)
    if args.out is not None:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()

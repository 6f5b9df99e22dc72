"""Is the harder shapes benchmark hard on every world? The hard and the easy benchmark side by side.

On several shapes worlds, the same toy model is scored on the one-attribute benchmark of
earlier releases (in-template phrasings, the full zero-shot caption) and on the harder one
(:func:`cirscope.eval.make_hard_shapes_benchmark`: two-attribute edits in held-out phrasings,
rare targets, half-edit distractors, a short reference caption), as ``cirscope eval cir``
runs them: PDV swept on a tuning set (seed + 1000), every method scored on the test set
(R@1 with a 95% bootstrap interval, McNemar p against the best row). Per world it reports
the sweep's plateau (settings within noise of the best) and whether it is interior, the
text side alone (PDV-T), and the seconds taken to generate each benchmark and to sweep.
Prints JSON (``--out`` also writes it).

Run ``python benchmarks/bench_shapes_hard.py [--n 2000] [--queries 1000] [--seeds 0 7 12345]``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ALPHAS = (-0.5, 0.0, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
BETAS = (0.0, 0.25, 0.5, 0.6, 0.75, 0.9, 1.0)


def _level(space, level: str, n_queries: int, seed: int) -> dict:
    import cirscope as cs
    from cirscope import eval as ev

    meta = space.gallery.metadata
    make = ev.make_hard_shapes_benchmark if level == "hard" else ev.make_shapes_benchmark
    kwargs = {"vocabulary": cs.datasets.shapes_short_vocabulary()} if level == "hard" else {}
    metric = "R@1" if level == "hard" else "R@10"
    t0 = time.perf_counter()
    bench = make(meta, n_queries, seed=seed)
    tune = make(meta, n_queries, seed=seed + 1000)
    generate = time.perf_counter() - t0
    prepared = ev.prepare(space, bench, reference_text="zero-shot", progress=False, **kwargs)
    tuning = ev.prepare(space, tune, reference_text="zero-shot", progress=False, **kwargs)
    t0 = time.perf_counter()
    sweep = ev.sweep_pdv(prepared=tuning, alphas=ALPHAS, betas=BETAS, metric=metric, progress=False)
    summary = sweep.summary()
    sweep_s = time.perf_counter() - t0
    table = ev.evaluate(None, prepared=prepared, extra={"pdv (swept)": ("pdv", sweep.best)}, intervals=("R@1",))
    text_side = ev.score(prepared, ev.query_vectors(prepared, "pdv", alpha_t=1, alpha_i=1, beta=1))
    return {
        "queries": len(prepared),
        "targets_per_query": round(sum(len(q.targets) for q in bench.queries) / len(bench), 3),
        "sweep": {**summary, "metric": metric},
        "pdv_text_side_R@1": round(text_side["R@1"], 4),
        "R@1": {m: [*(round(float(row[k]), 4) for k in ("R@1", "R@1 lo", "R@1 hi")), float(f"{row['R@1 p vs best']:.3g}")]
                for m, row in table.iterrows()},
        "seconds": {"generate_benchmark_and_tuning_set": round(generate, 3), "sweep_56_settings": round(sweep_s, 2)},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=2000, help="gallery size per world")
    p.add_argument("--queries", type=int, default=1000, help="composed queries per benchmark (and per tuning set)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 7, 12345])
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()

    import cirscope as cs

    embedder = cs.Embedder.toy()
    t0 = time.perf_counter()
    worlds = []
    for seed in args.seeds:
        space = cs.Space(cs.datasets.shapes(args.n, seed=seed), embedder, cache=False, progress=False)
        worlds.append({"seed": seed, **{level: _level(space, level, args.queries, seed) for level in ("easy", "hard")}})
    report = {
        "model": "cirscope-toy",
        "gallery": {"n": args.n, "seeds": args.seeds},
        "row": "R@1: [mean, 95% bootstrap low, high, McNemar p vs best row]",
        "worlds": worlds,
        "hard_plateau_interior_on_every_world": all(w["hard"]["sweep"]["interior"] for w in worlds),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    text = json.dumps(report, indent=2)
    if args.out is not None:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()

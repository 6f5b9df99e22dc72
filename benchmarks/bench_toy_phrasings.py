"""Does the toy model understand how people phrase edits? In-template vs held-out phrasings.

On fresh shapes worlds (seeds never used in training), the same composed queries are
phrased twice: with instructions the toy model was trained on and with held-out ones
(templates and synonyms no training text uses; :mod:`cirscope.toy._phrasings`). Every
method (default settings) is scored, R@1 and mAP@10, per world and averaged; zero-shot
accuracy per attribute is measured on the first world. Prints JSON (``--out`` also writes it).

Run ``python benchmarks/bench_toy_phrasings.py [--n 2000] [--queries 1000] [--seeds 0 7 12345]``;
``--weights FILE`` measures a retrained weights file (``python -m cirscope.toy.train --out FILE``)
instead of the shipped one.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=2000, help="gallery size per world")
    p.add_argument("--queries", type=int, default=1000, help="composed queries per world and phrasing set")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 7, 12345])
    p.add_argument("--weights", type=Path, default=None, help="a cirscope-toy weights file (default: the shipped one)")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()

    import cirscope as cs
    from cirscope.eval._phrasings import PHRASING_METRICS, phrasing_comparison
    from cirscope.toy import read_meta
    from cirscope.toy._evaluate import zero_shot_accuracy

    if args.weights is None:
        embedder = cs.Embedder.toy()
    else:
        import functools

        from cirscope.toy import load_toy

        weights = args.weights.resolve()
        cs.register_model(f"cirscope-toy@{weights.name}", functools.partial(load_toy, weights), weights_file=weights)
        embedder = cs.Embedder(f"cirscope-toy@{weights.name}")
    t0 = time.perf_counter()
    embedder.load()
    worlds = []
    zero_shot = None
    for seed in args.seeds:
        space = cs.Space(cs.datasets.shapes(args.n, seed=seed, sources={"render": 1.0, "photo": 1.0}), embedder,
                         cache=False, progress=False)
        if zero_shot is None:
            zero_shot = zero_shot_accuracy(space.image_embeddings, space.gallery.metadata, space.encode_text)
        worlds.append(phrasing_comparison(space, args.queries, seed=seed))
    sets = list(worlds[0]["phrasings"])
    methods = list(worlds[0]["phrasings"][sets[0]])
    mean = {s: {m: {k: round(sum(w["phrasings"][s][m][k] for w in worlds) / len(worlds), 4) for k in PHRASING_METRICS}
                for m in methods} for s in sets}
    report = {
        "model": "cirscope-toy",
        "weights": "shipped" if args.weights is None else str(args.weights),
        "training": {k: read_meta(*([] if args.weights is None else [args.weights])).get(k)
                     for k in ("recipe", "step", "seed", "init", "threads", "minutes")},
        "gallery": {"n": args.n, "sources": {"render": 0.5, "photo": 0.5}, "seeds": args.seeds},
        "queries_per_world": [w["queries"] for w in worlds],
        "zero_shot": zero_shot,
        "mean": mean,
        "worlds": worlds,
        "unknown_words": sorted({u for w in worlds for u in w["unknown_words"]}),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    text = json.dumps(report, indent=2)
    if args.out is not None:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()

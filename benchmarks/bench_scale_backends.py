"""Where ``backend="auto"`` should switch from faiss HNSW to faiss IVF: both measured at several sizes.

At each ``--sizes`` value, ``--dim``-dimensional clustered CLIP-like unit vectors
(``bench_index.synthetic_embeddings``) are indexed twice by cirscope, forcing the backend:
``NeighborIndex(emb, backend="faiss-hnsw")`` and ``NeighborIndex(emb, backend="faiss-ivf")``,
each calibrating its own search breadth on build to reach recall@10 0.99 on its own sample of
perturbed-row and off-manifold queries (what a user gets). Then, on fresh queries of both kinds
that neither calibration saw (``realistic_queries`` with another seed), it measures:

- build seconds (including calibration) and the index's memory;
- recall@10 of each kind against exact search (faiss's exact ``knn``);
- single-query median and p95 ms, the two indexes interleaved query by query in alternating
  order so that machine noise hits both alike.

An index *meets the target* at a size when both recalls are >= ``--target``. The recommended
switch (``IVF_FROM`` in :mod:`cirscope.neighbors._index`) is the smallest measured size from
which IVF meets the target and is at least as fast as HNSW, or HNSW no longer meets the target.

Run ``python benchmarks/bench_scale_backends.py --sizes 100000,250000,500000 --dim 256 --out x.json``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_index import synthetic_embeddings

K = 10
BACKENDS = ("faiss-hnsw", "faiss-ivf")


def _recall(truth: np.ndarray, got: np.ndarray) -> float:
    from cirscope.neighbors._calibrate import recall_at_k

    return round(recall_at_k(truth, got), 4)


def measure(n: int, dim: int, queries: int, seed: int, target: float) -> dict:
    """Both backends at one size: build, memory, recall per kind and interleaved single-query times."""
    import faiss

    from cirscope.neighbors._calibrate import realistic_queries
    from cirscope.neighbors._index import NeighborIndex

    emb = synthetic_embeddings(n, dim, seed)
    qs = realistic_queries(emb, queries, seed + 101)
    truth = {kind: faiss.knn(np.ascontiguousarray(q, dtype=np.float32), emb, K, metric=faiss.METRIC_INNER_PRODUCT)[1]
             for kind, q in qs.items()}  # fmt: skip
    row: dict = {"n": n}
    built = {}
    for backend in BACKENDS:
        t0 = time.perf_counter()
        index = NeighborIndex(emb, backend=backend, exact_below=0, progress=False, seed=seed)
        build = time.perf_counter() - t0
        built[backend] = index
        recall = {kind: _recall(truth[kind], index.query_batch(q, K)[0]) for kind, q in qs.items()}
        row[backend] = {"build_s": round(build, 1), "memory_mb": round(index.memory_bytes() / 2**20, 1),
                        "breadth": index.breadth, "recall_at_10": recall,
                        "meets_target": all(r >= target for r in recall.values())}  # fmt: skip
        print(f"[backends] n={n} {backend} {row[backend]}", file=sys.stderr, flush=True)
    times: dict[str, list[float]] = {b: [] for b in BACKENDS}
    q_all = np.concatenate(list(qs.values()))
    for i, v in enumerate(q_all):
        for backend in BACKENDS[:: 1 if i % 2 else -1]:
            t0 = time.perf_counter()
            built[backend].query(v, K)
            times[backend].append(1000 * (time.perf_counter() - t0))
    for backend in BACKENDS:
        row[backend]["single_median_ms"] = round(float(np.median(times[backend])), 3)
        row[backend]["single_p95_ms"] = round(float(np.percentile(times[backend], 95)), 3)
    row["ivf_vs_hnsw_median"] = round(row["faiss-ivf"]["single_median_ms"] / row["faiss-hnsw"]["single_median_ms"], 2)
    row["load_average"] = [round(x, 2) for x in os.getloadavg()]
    print(f"[backends] n={n} ivf/hnsw median {row['ivf_vs_hnsw_median']}", file=sys.stderr, flush=True)
    del built, emb
    gc.collect()
    return row


def switch_size(rows: list[dict]) -> int | None:
    """The smallest size from which IVF meets the target and is no slower, or HNSW misses the target.

    Examples
    --------
    >>> ok = {"meets_target": True}
    >>> rows = [{"n": 1, "faiss-hnsw": {**ok, "single_median_ms": 1}, "faiss-ivf": {**ok, "single_median_ms": 2}},
    ...         {"n": 2, "faiss-hnsw": {**ok, "single_median_ms": 2}, "faiss-ivf": {**ok, "single_median_ms": 1}}]
    >>> switch_size(rows)
    2
    """
    for r in sorted(rows, key=lambda r: r["n"]):
        hnsw, ivf = r["faiss-hnsw"], r["faiss-ivf"]
        if ivf["meets_target"] and (not hnsw["meets_target"] or ivf["single_median_ms"] <= hnsw["single_median_ms"]):
            return r["n"]
    return None


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="100000,250000,500000")
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--queries", type=int, default=300, help="fresh queries of each kind")
    p.add_argument("--target", type=float, default=0.99)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    rows = [measure(int(n), args.dim, args.queries, args.seed, args.target) for n in args.sizes.split(",")]
    from cirscope.neighbors._index import IVF_FROM

    result = {"benchmark": "scale_backends", "dim": args.dim, "k": K, "target_recall": args.target,
              "queries_per_kind": args.queries, "sizes": rows, "ivf_from_measured": switch_size(rows),
              "ivf_from_current": IVF_FROM, "total_seconds": round(time.perf_counter() - t0, 1),
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "load_average": [round(x, 2) for x in os.getloadavg()]}}  # fmt: skip
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return result


if __name__ == "__main__":
    main()

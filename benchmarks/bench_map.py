"""Map timings: UMAP and PCA maps of 10k / 50k / 100k points, first computation and cached reopen.

Data: the synthetic CLIP-like 512-d vectors of ``bench_index.py``. In one process:

1. a 300-point UMAP fit, which pays umap-learn's numba compilation (every new process does);
2. for each size: PCA map (first, cached), UMAP map (wall and CPU seconds) with cirscope's defaults (PCA to 50 dims,
   annoy neighbour graph, unseeded on all cores, a sample fit above ``SAMPLE_ABOVE`` points; first, cached). "Cached" is a fresh ``compute_map`` call on the
   same cache folder, with the embeddings' fingerprint computed again, as when a saved space is
   reopened in a new session;
3. placing query vectors on the 100k map with ``place(..., index=NeighborIndex)`` (ms per query);
4. the baseline: umap-learn's own defaults (``umap.UMAP(metric="cosine", random_state=0)`` on the
   raw 512-d vectors, NN-descent neighbours) at ``--baseline-n`` points, for the ratio.

Every finished stage is printed to stderr and the JSON so far is written to ``--out``, so a run
cut short keeps what it measured. Prints the final JSON on stdout.

Run ``python benchmarks/bench_map.py [--sizes 10000,50000,100000] [--baseline-n 10000] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_index import synthetic_embeddings


def _timed(fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, round(time.perf_counter() - t, 3)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=str, default="10000,50000,100000")
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--baseline-n", type=int, default=10000, help="0 skips the umap-learn default baseline")
    p.add_argument("--place-queries", type=int, default=200)
    p.add_argument("--out", type=str, default=None)
    args = p.parse_args(argv)

    from cirscope.neighbors._index import NeighborIndex
    from cirscope.projection._compute import PCA_ABOVE, compute_map
    from cirscope.projection._place import place

    sizes = [int(s) for s in args.sizes.split(",") if s]
    result: dict = {
        "benchmark": "map",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
        },
        "settings": {
            "dim": args.dim,
            "seed": None,
            "n_neighbors": 15,
            "min_dist": 0.1,
            "pca_dims": 50,
            "pca_above": PCA_ABOVE,
        },
        "sizes": [],
    }

    def report(stage: str) -> None:
        print(f"[bench_map] {stage}", file=sys.stderr, flush=True)
        if args.out:
            Path(args.out).write_text(json.dumps(result, indent=2) + "\n")

    warm = synthetic_embeddings(300, args.dim, seed=9)
    cpu = time.process_time()
    _, result["umap_first_call_300_points_s"] = _timed(compute_map, warm, method="umap", progress=False)
    result["umap_first_call_300_points_cpu_s"] = round(time.process_time() - cpu, 1)
    _, result["umap_second_call_300_points_s"] = _timed(compute_map, warm, method="umap", progress=False)
    report(f"numba warm-up: {result['umap_first_call_300_points_s']} s")

    root = Path(tempfile.mkdtemp(prefix="cirscope-bench-map-"))
    last = None
    try:
        for n in sizes:
            emb = synthetic_embeddings(n, args.dim)
            folder = root / str(n)
            row: dict = {"n": n}
            _, row["pca_first_s"] = _timed(compute_map, emb, method="pca", cache_dir=folder)
            _, row["pca_cached_s"] = _timed(compute_map, emb, method="pca", cache_dir=folder)
            cpu = time.process_time()
            coords, row["umap_first_s"] = _timed(
                compute_map, emb, method="umap", cache_dir=folder, progress=False
            )
            # CPU seconds of all threads: below the wall time when other work shares the cores
            row["umap_first_cpu_s"] = round(time.process_time() - cpu, 1)
            again, row["umap_cached_s"] = _timed(compute_map, emb, method="umap", cache_dir=folder)
            assert np.array_equal(coords, again)
            row["umap_cached_over_first"] = round(row["umap_cached_s"] / row["umap_first_s"], 5)
            result["sizes"].append(row)
            report(json.dumps(row))
            last = (emb, coords)

        if last is not None and args.place_queries:
            emb, coords = last
            index, build_s = _timed(NeighborIndex, emb, progress=False)
            rng = np.random.default_rng(1)
            queries = emb[rng.choice(len(emb), args.place_queries, replace=False)]
            queries = queries + 0.05 * rng.normal(size=queries.shape).astype(np.float32) / np.sqrt(args.dim)
            place(queries[:5], emb, coords, index=index)  # warm up
            times = []
            for q in queries:
                t = time.perf_counter()
                place(q, emb, coords, k=10, index=index)
                times.append(time.perf_counter() - t)
            t = time.perf_counter()
            place(queries[:20], emb, coords, k=10)
            exact_ms = (time.perf_counter() - t) / 20 * 1e3
            result["place"] = {
                "n": len(emb),
                "index_build_s": build_s,
                "index": repr(index),
                "median_ms_per_query": round(1e3 * float(np.median(times)), 3),
                "exact_neighbours_ms_per_query": round(exact_ms, 3),
            }
            report(json.dumps(result["place"]))

        if args.baseline_n:
            import umap

            emb = synthetic_embeddings(args.baseline_n, args.dim)
            _, base_s = _timed(umap.UMAP(metric="cosine", random_state=0).fit_transform, emb)
            ours = next((r["umap_first_s"] for r in result["sizes"] if r["n"] == args.baseline_n), None)
            result["baseline_umap_learn_default"] = {
                "n": args.baseline_n,
                "seconds": round(base_s, 2),
                "note": "includes compiling NN-descent, which cirscope's path does not need",
                "ratio_default_over_cirscope": round(base_s / ours, 2) if ours else None,
            }
            report(json.dumps(result["baseline_umap_learn_default"]))
    finally:
        shutil.rmtree(root, ignore_errors=True)

    big = next((r for r in result["sizes"] if r["n"] == 100_000), None)
    result["targets"] = {
        "umap_100k_first_under_90s_incl_compile": (
            big["umap_first_s"] + result["umap_first_call_300_points_s"] < 90 if big else None
        ),
        "umap_100k_first_under_90s_after_compile": big["umap_first_s"] < 90 if big else None,
        "cached_reopen_under_1s": all(r["umap_cached_s"] < 1 for r in result["sizes"]),
        "place_under_5ms": result["place"]["median_ms_per_query"] < 5 if "place" in result else None,
    }
    result["machine"]["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    report("done")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()

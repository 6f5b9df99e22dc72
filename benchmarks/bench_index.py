"""Neighbour-index latency and recall: the annoy backend (cs.NeighborIndex) against exact numpy search.

For every backend at scale (faiss HNSW, annoy, peers) see ``bench_scale_index.py``.

Data: ``--n`` synthetic L2-normalised vectors of ``--dim`` dimensions with a CLIP-like
structure (a shared direction, 50 topics x 4 sub-topics, 16-dimensional variation inside each
sub-topic, isotropic noise; nearest-neighbour cosine ~0.72, random pairs ~0.16). With annoy's
own default ``search_k`` (n_trees * k) this data gives recall@10 ~0.86, a realistic difficulty.

Queries are ``--queries`` held-out vectors from the same distribution (not in the index). Each
query is timed with both methods back to back (interleaved), so the ratio is fair on a busy
machine. The baseline is plain numpy (``embeddings @ q`` with numpy's default BLAS threads, then
``argpartition``); the crossover compares with the index's own exact mode. Reported: build time, latency (median and mean ms per query), recall@10 against exact
search, a ``search_k`` sweep, filtered queries (random masks keeping 50 %, 20 %, 5 % of rows)
and the ratio exact / annoy. ``--crossover`` also times both methods at several gallery sizes
to find where annoy starts to beat exact search (this sets ``EXACT_BELOW``).

Run ``python benchmarks/bench_index.py [--n 100000] [--dim 512] [--queries 500] [--crossover]``.
Prints JSON (and writes it to ``--out`` when given).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import numpy as np


def synthetic_embeddings(
    n: int,
    dim: int = 512,
    seed: int = 0,
    topics: int = 50,
    sub: int = 4,
    intrinsic: int = 16,
    within: float = 0.5,
    noise: float = 0.5,
) -> np.ndarray:
    """``(n, dim)`` unit vectors: shared direction + topic + sub-topic + low-dim variation + noise."""
    rng = np.random.default_rng(seed)
    shared = rng.normal(size=dim)
    shared /= np.linalg.norm(shared)
    centres = rng.normal(size=(topics, dim)) / np.sqrt(dim)
    subs = (centres[:, None, :] + 0.6 * rng.normal(size=(topics, sub, dim)) / np.sqrt(dim)).reshape(-1, dim)
    basis = rng.normal(size=(topics * sub, intrinsic, dim)).astype(np.float32) / np.sqrt(dim)
    label = rng.integers(0, topics * sub, n)
    z = rng.normal(size=(n, intrinsic)).astype(np.float32)
    x = (shared + subs[label]).astype(np.float32)
    x += noise * rng.normal(size=(n, dim)).astype(np.float32) / np.sqrt(dim)
    for c in range(topics * sub):
        rows = label == c
        x[rows] += within * z[rows] @ basis[c]
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


def _recall(truth: list[np.ndarray], got: list[np.ndarray]) -> float:
    return float(np.mean([np.isin(t, g).mean() for t, g in zip(truth, got, strict=True)]))


def _ms(times: list[float]) -> dict[str, float]:
    return {
        "median_ms": round(1e3 * statistics.median(times), 4),
        "mean_ms": round(1e3 * statistics.fmean(times), 4),
    }


def numpy_exact(embeddings: np.ndarray):
    """The baseline: plain numpy (``embeddings @ q``, default BLAS threads) + argpartition top-k."""

    def query(q: np.ndarray, k: int, mask=None):
        scores = embeddings @ q
        if mask is not None:
            scores = np.where(mask, scores, -np.inf)
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        return top, scores[top]

    return query


def _interleaved(queries: np.ndarray, methods: dict, k: int, mask=None) -> tuple[dict, dict]:
    """Time every method on every query, back to back; returns (times, results) per method."""
    for fn in methods.values():  # warm up
        for q in queries[:5]:
            fn(q, k, mask=mask)
    times: dict[str, list[float]] = {name: [] for name in methods}
    results: dict[str, list[np.ndarray]] = {name: [] for name in methods}
    for q in queries:
        for name, fn in methods.items():
            t = time.perf_counter()
            rows, _ = fn(q, k, mask=mask)
            times[name].append(time.perf_counter() - t)
            results[name].append(rows)
    return times, results


def bench(
    n: int,
    dim: int,
    n_queries: int,
    k: int = 10,
    seed: int = 0,
    sweep: bool = True,
    filters: bool = True,
    main_baseline: bool = True,
) -> dict:
    """Latency and recall at one size. ``main_baseline``: compare with plain numpy (default BLAS
    threads); otherwise with the index's own exact mode (one BLAS thread), as the crossover does."""
    from cirscope.neighbors._index import NeighborIndex
    from cirscope.neighbors._search import FILTER_EXACT_FRACTION

    data = synthetic_embeddings(n + n_queries, dim, seed)
    emb, queries = data[:n], data[n:]
    exact = NeighborIndex(emb, exact_below=n + 1)
    t = time.perf_counter()
    # the default exact_below (it also routes selective filters); the crossover forces annoy at every size
    index = NeighborIndex(
        emb, backend="annoy", seed=seed, progress=False, **({} if main_baseline else {"exact_below": 0})
    )
    build_s = time.perf_counter() - t
    out: dict = {
        "n": n,
        "dim": dim,
        "queries": n_queries,
        "k": k,
        "annoy": {
            "n_trees": index.n_trees,
            "search_k": index.search_k,
            "build_s": round(build_s, 2),
            "calibration_recall": index.measured_recall,
            "fell_back_to_exact": index.is_exact,
        },
    }
    methods = {"exact": exact.query, "annoy": index.query}
    if main_baseline:
        methods = {"exact": numpy_exact(emb), "annoy": index.query}
    times, results = _interleaved(queries, methods, k)
    truth = results["exact"]
    out["exact"] = _ms(times["exact"])
    out["annoy"].update(_ms(times["annoy"]))
    out["annoy"]["recall_at_10_heldout"] = round(_recall(truth, results["annoy"]), 4)
    out["annoy"]["recall_at_10_gallery_rows"] = round(index.recall(k=k, sample=200, seed=seed + 1), 4)
    out["ratio_exact_over_annoy"] = round(
        statistics.median(times["exact"]) / statistics.median(times["annoy"]), 2
    )
    if sweep and not index.is_exact:
        rows = []
        default = index.search_k
        for search_k in (index.n_trees * k, default // 2, default, default * 2):
            index.breadth = int(search_k)
            tt, rr = _interleaved(queries[:200], {"annoy": index.query}, k)
            rows.append(
                {
                    "search_k": int(search_k),
                    **_ms(tt["annoy"]),
                    "recall_at_10": round(_recall(truth[:200], rr["annoy"]), 4),
                }
            )
        index.breadth = default
        out["search_k_sweep"] = rows
    if filters:
        rng = np.random.default_rng(seed + 2)
        rows = []
        for fraction in (0.5, 0.2, 0.05):
            mask = rng.random(n) < fraction
            tt, rr = _interleaved(
                queries[:200], {"exact": numpy_exact(emb), "annoy": index.query}, k, mask=mask
            )
            only = all(mask[r].all() for r in rr["annoy"])
            kept = int(mask.sum())
            path = "exact" if kept < max(index.exact_below, FILTER_EXACT_FRACTION * n) else "annoy over-fetch"
            rows.append(
                {
                    "kept_fraction": fraction,
                    "index_path": path,
                    "exact": _ms(tt["exact"]),
                    "index": _ms(tt["annoy"]),
                    "recall_at_10": round(_recall(rr["exact"], rr["annoy"]), 4),
                    "only_matching_rows": only,
                }
            )
        out["filtered"] = rows
    return out


def crossover(sizes: list[int], dim: int, n_queries: int, k: int = 10, seed: int = 0) -> dict:
    """Exact vs calibrated annoy latency at several gallery sizes; the smallest size where annoy wins."""
    rows = []
    for n in sizes:
        r = bench(n, dim, n_queries, k, seed, sweep=False, filters=False, main_baseline=False)
        rows.append(
            {
                "n": n,
                "exact_median_ms": r["exact"]["median_ms"],
                "annoy_median_ms": r["annoy"]["median_ms"],
                "annoy_search_k": r["annoy"]["search_k"],
                "annoy_recall": r["annoy"]["recall_at_10_heldout"],
                "annoy_build_s": r["annoy"]["build_s"],
            }
        )
    # where calibration found no search_k under n / 2 the index answers exactly: no annoy to compare
    wins = [
        r["n"]
        for r in rows
        if r["annoy_search_k"] is not None and r["annoy_median_ms"] < r["exact_median_ms"]
    ]
    return {"sizes": rows, "annoy_faster_from_n": min(wins) if wins else None}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--queries", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--crossover", action="store_true", help="also time exact vs annoy at 2k..50k rows")
    p.add_argument("--sizes", type=str, default="2000,5000,10000,20000,50000")
    p.add_argument("--out", type=str, default=None, help="also write the JSON here")
    args = p.parse_args(argv)

    from cirscope.neighbors._index import EXACT_BELOW

    result = {
        "benchmark": "neighbor_index",
        "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
        "default_exact_below": EXACT_BELOW,
        "main": bench(args.n, args.dim, args.queries, seed=args.seed),
    }
    m = result["main"]
    result["targets"] = {
        "annoy_ms_per_query_le_2": m["annoy"]["median_ms"] <= 2.0,
        "recall_at_10_ge_0.99": m["annoy"]["recall_at_10_heldout"] >= 0.99,
    }
    if args.crossover:
        sizes = [int(s) for s in args.sizes.split(",") if s]
        result["crossover"] = crossover(sizes, args.dim, min(args.queries, 300), seed=args.seed)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")
    return result


if __name__ == "__main__":
    main()

"""Two models compared, and the query's path, at scale (default 100,000 items).

Part 1, ``cs.compare``: every image's exact k nearest neighbours in two spaces of one
gallery (two synthetic "models": clustered embeddings and a noisy random rotation of them)
and the per-image overlap, at ``n``. Peers measured in the same run on the same embeddings
(the first ``peer_n`` rows, default 20,000: the numpy peer costs minutes at 100,000 here):

* ``numpy_blocks``: what :func:`cirscope.analysis._compare.exact_knn` does (one matrix product
  per block of rows, :func:`cirscope._core.arrays.top_k`);
* ``faiss_flat``: ``faiss.IndexFlatIP`` search of every row (exact; BLAS plus heaps);
* ``overlap``: the vectorised ``|N_a ∩ N_b|`` of the two lists, against a Python-set loop
  over 2,000 rows scaled up (what a per-row loop would cost).

Part 2, the path: :func:`cirscope.analysis.query_path` (21 values of alpha, one batched
search) against one slider move's search (:func:`cirscope.query._search.search_hits`), and
the Explorer's path step (:meth:`ExplorerController.refresh_path`), on the space's own index.

Run ``python benchmarks/bench_compare.py --n 100000 --dim 128 --out FILE``. Writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_search import build_space


def _timed(fn: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def faiss_knn(emb: np.ndarray, k: int) -> np.ndarray:
    """Every row's k nearest other rows with faiss's exact inner-product index."""
    import faiss

    x = np.ascontiguousarray(emb, dtype=np.float32)
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    _, ind = index.search(x, k + 1)
    keep = ind != np.arange(len(x))[:, None]  # drop each row itself (wherever ties put it)
    return np.stack([r[m][:k] for r, m in zip(ind, keep, strict=True)])


def run(n: int = 100_000, dim: int = 128, *, k: int = 10, repeats: int = 20, seed: int = 0, peer_n: int = 20_000,
        out: str | None = None) -> dict[str, Any]:  # fmt: skip
    import cirscope as cs
    from cirscope.analysis._compare import exact_knn, neighbor_overlap
    from cirscope.query._search import search_hits
    from cirscope.widgets import Explorer

    load_start = [round(v, 2) for v in os.getloadavg()]
    space_a = build_space(n, dim, seed)
    rng = np.random.default_rng(seed + 1)
    rotation = np.linalg.qr(rng.normal(size=(dim, dim)))[0]
    emb_b = space_a.image_embeddings @ rotation + 0.05 * rng.normal(size=(n, dim))
    space_b = cs.Space.from_embeddings(space_a.gallery, emb_b.astype(np.float32), model_name="rotated")

    sub = space_a.image_embeddings[: min(n, peer_n)]
    (rows_a, _), numpy_a_s = _timed(lambda: exact_knn(sub, k, backend="numpy"))
    faiss_rows, faiss_a_s = _timed(lambda: faiss_knn(sub, k))
    agree = float(np.mean(neighbor_overlap(rows_a, faiss_rows)) / k)
    res, compare_s = _timed(lambda: cs.compare(space_a, space_b, k=k, diagnostics=False, progress=False))
    _, overlap_s = _timed(lambda: neighbor_overlap(res.neighbors_a, res.neighbors_b))
    sample = 2000
    t0 = time.perf_counter()
    [len(set(a) & set(b)) for a, b in zip(res.neighbors_a[:sample].tolist(), res.neighbors_b[:sample].tolist(),
                                           strict=True)]  # fmt: skip
    loop_s = (time.perf_counter() - t0) * n / sample

    query = cs.ComposedQuery(0, "make it blue")
    search_hits(space_a, query, "pdv", 20)  # resolve, encode, build the index
    path_ms, move_ms = [], []
    for _ in range(repeats):
        beta = float(rng.uniform(0, 1))
        a = float(rng.uniform(-0.5, 2))
        _, s = _timed(lambda beta=beta: cs.analysis.query_path(space_a, query, k=20, map=np.zeros((n, 2)), beta=beta))
        path_ms.append(1000 * s)
        _, s = _timed(lambda a=a, beta=beta: search_hits(space_a, query, "pdv", 20, alpha_t=a, alpha_i=a, beta=beta))
        move_ms.append(1000 * s)
    ex = Explorer(space_a, map=np.zeros((n, 2), np.float32), reference=0, text="make it blue", k=20)
    explorer_path_ms = []
    for _ in range(max(3, repeats // 4)):
        ex.controller.refresh_path()
        explorer_path_ms.append(ex.controller.path_ms)
    ex.close()
    med_path, med_move = statistics.median(path_ms), statistics.median(move_ms)
    result = {
        "benchmark": "compare",
        "n": n,
        "dim": dim,
        "k": k,
        "index": repr(space_a.index),
        "peer_n": len(sub),
        "knn_one_space_s_at_peer_n": {"numpy_blocks": round(numpy_a_s, 2), "faiss_flat": round(faiss_a_s, 2)},
        "ratio_numpy_over_faiss": round(numpy_a_s / faiss_a_s, 3),
        "numpy_faiss_neighbour_agreement": round(agree, 5),
        "compare_two_spaces_s": round(compare_s, 2),
        "compare_backend": "faiss (auto)",
        "overlap_s": {"vectorised": round(overlap_s, 4), "python_sets_estimated": round(loop_s, 3)},
        "mean_overlap": round(float(res.summary()["mean_overlap"]), 4),
        "path": {
            "steps": 21,
            "median_ms_query_path": round(med_path, 3),
            "median_ms_one_slider_search": round(med_move, 3),
            "ratio_path_over_one_search": round(med_path / med_move, 2),
            "median_ms_explorer_path_step": round(statistics.median(explorer_path_ms), 3),
            "note": ("the path is computed when the query changes, and after a fixed parameter's slider "
                     "rests; an alpha move never computes it"),
        },
        "load_average": {"start": load_start, "end": [round(v, 2) for v in os.getloadavg()]},
    }
    if out:
        Path(out).write_text(json.dumps(result, indent=2) + "\n")
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--peer-n", type=int, default=20_000, help="rows the numpy and faiss kNN peers are timed on")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    result = run(args.n, args.dim, k=args.k, repeats=args.repeats, seed=args.seed, peer_n=args.peer_n,
                 out=args.out)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()

"""Slider-move search overhead at 100,000 items: the array path against a bare index query.

After a warm-up (query resolved, texts encoded, index built), each repeat times five methods,
each on its own freshly drawn PDV parameters (so no method runs on a vector another has just
searched, warm in the caches), in an order rotated every repeat (so none always runs first):

* ``bare_index``: ``space.index.query(vector, k)`` for an already composed vector, no exclude
  (the floor: what any search must pay);
* ``bare_index_exclude``: the same query leaving out the reference row, as a composed search
  does (the index searches for ``k + 1`` and drops it): what excluding the reference costs;
* ``search_hits``: :func:`cirscope.query._search.search_hits` (compose + one index query excluding the
  reference + arrays), the search path of a slider move;
* ``search_frame``: :func:`cirscope.query._search.search` (the same plus the DataFrame), for reference;
* ``slider_move``: setting ``alpha_t`` on a :class:`~cirscope.widgets.QueryPanel` bound to the
  space (search, traits written back; no DataFrame), the full Python side of a move.

Reports medians, p90, ``ratio_hits_over_bare`` with a verdict against the 1.2x target (the
search path; ``ratio_hits_over_bare_paired_median`` is the median of the per-repeat ratios),
``ratio_hits_over_bare_exclude`` (what composing and assembling cost beyond the
index's own work for the same request), and separately what the widget path (``slider_move``)
costs over the bare query.
Writes JSON to ``--out``.

Run ``python benchmarks/bench_scale_search.py --n 100000 --dim 512 --out FILE``.
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


def run(n: int = 100_000, dim: int = 512, *, k: int = 20, repeats: int = 200, seed: int = 0,
        out: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Run the benchmark; the result as a dict."""
    from cirscope.query._composed import ComposedQuery
    from cirscope.query._search import search, search_hits
    from cirscope.widgets import QueryPanel

    load_start = [round(v, 2) for v in os.getloadavg()]
    space = build_space(n, dim, seed)
    query = ComposedQuery(0, "make it blue")
    t0 = time.perf_counter()
    search_hits(space, query, "pdv", k)  # resolve, encode, build the index
    warmup_s = time.perf_counter() - t0
    panel = QueryPanel(space, reference=0, text="make it blue", k=k)
    resolved = query.resolve(space)
    rng = np.random.default_rng(seed + 1)
    ref = resolved.reference_row

    def params() -> tuple[float, float]:
        return float(rng.uniform(-0.5, 2.0)), float(rng.uniform(0, 1))

    def bare() -> float:
        a, b = params()
        vec = resolved.vector("pdv", alpha_t=a, alpha_i=a, beta=b)  # composed outside the timing
        t0 = time.perf_counter()
        space.index.query(vec, k)
        return time.perf_counter() - t0

    def bare_exclude() -> float:
        a, b = params()
        vec = resolved.vector("pdv", alpha_t=a, alpha_i=a, beta=b)
        t0 = time.perf_counter()
        space.index.query(vec, k, exclude=[ref])
        return time.perf_counter() - t0

    def hits() -> float:
        a, b = params()
        t0 = time.perf_counter()
        search_hits(space, query, "pdv", k, alpha_t=a, alpha_i=a, beta=b)
        return time.perf_counter() - t0

    def frame() -> float:
        a, b = params()
        t0 = time.perf_counter()
        search(space, query, "pdv", k, alpha_t=a, alpha_i=a, beta=b)
        return time.perf_counter() - t0

    def move() -> float:
        a, _ = params()
        t0 = time.perf_counter()
        panel.alpha_t = a + 1e-6 * rng.random()  # a new value: one search
        return time.perf_counter() - t0

    methods = {"bare_index": bare, "bare_index_exclude": bare_exclude, "search_hits": hits, "search_frame": frame,
               "slider_move": move}  # fmt: skip
    names = list(methods)
    times: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(repeats):
        r = rep % len(names)
        for name in names[r:] + names[:r]:
            times[name].append(1000 * methods[name]())
    med = {name: round(statistics.median(v), 4) for name, v in times.items()}
    result = {
        "benchmark": "scale_search",
        "n": n,
        "dim": dim,
        "k": k,
        "repeats": repeats,
        "index": repr(space.index),
        "warmup_s": round(warmup_s, 3),
        "median_ms": med,
        "p90_ms": {name: round(float(np.percentile(v, 90)), 4) for name, v in times.items()},
        "ratio_hits_over_bare": round(med["search_hits"] / med["bare_index"], 3),
        "ratio_hits_over_bare_paired_median": round(
            statistics.median(h / b for h, b in zip(times["search_hits"], times["bare_index"], strict=True)), 3
        ),  # per repeat (the two ran back to back), then the median: steadier under a changing load
        "ratio_hits_over_bare_exclude": round(med["search_hits"] / med["bare_index_exclude"], 3),
        "ratio_bare_exclude_over_bare": round(med["bare_index_exclude"] / med["bare_index"], 3),
        "ratio_frame_over_bare": round(med["search_frame"] / med["bare_index"], 3),
        "ratio_slider_move_over_bare": round(med["slider_move"] / med["bare_index"], 3),
        "target_ratio_hits_over_bare": 1.2,
        "verdict_search_path": (
            f"search_hits {med['search_hits']:.3f} ms = {med['search_hits'] / med['bare_index']:.2f}x the bare "
            f"query ({med['bare_index']:.3f} ms): "
            + ("meets" if med["search_hits"] <= 1.2 * med["bare_index"] else "misses") + " the 1.2x target"
        ),
        "widget_path": (
            f"a slider move (QueryPanel, traits written back) costs {med['slider_move']:.3f} ms, "
            f"{med['slider_move'] / med['bare_index']:.2f}x the bare query, "
            f"{med['slider_move'] - med['search_hits']:+.3f} ms beyond search_hits; no target is set for it"
        ),
        "load_average": {"start": load_start, "end": [round(v, 2) for v in os.getloadavg()]},
    }
    if out:
        Path(out).write_text(json.dumps(result, indent=2) + "\n")
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--repeats", type=int, default=200)
    p.add_argument("--out", type=str, default=None)
    args = p.parse_args(argv)
    result = run(args.n, args.dim, k=args.k, repeats=args.repeats, out=args.out)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()

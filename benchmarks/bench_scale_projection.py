"""Projection at scale: first map, cached reopen, neighbourhood preservation and the sample size.

Data: the synthetic CLIP-like vectors of ``bench_index.py``. In one process:

1. a 300-point UMAP fit that pays umap-learn's numba compilation (reported apart); before the
   peer, a plain ``umap.UMAP()`` fit on 6,000 points compiles NN-descent (``peer_numba_warmup_s``);
2. the first map with cirscope's defaults (unseeded, all cores; PCA to 50 dims; a sample fit
   plus placement above ``SAMPLE_ABOVE``), with its stage breakdown, and the cached reopen (a
   fresh ``compute_map`` on the same cache folder with the space's saved fingerprint; the cost
   of computing the fingerprint again is reported beside it);
3. at ``n <= 100,000`` the peer: plain ``umap.UMAP()`` (umap-learn's defaults) fitted on all
   points, wall and CPU seconds, and cirscope's own full fit (``sample=None``);
4. the sample-size sweep: ``compute_map(sample=f * n)`` for each fraction, time and kNN-overlap@15
   (:func:`cirscope.projection._quality.neighborhood_preservation`, 1,000 random points, exact) over all
   points (for reference: placement inflates it) and split
   (:func:`cirscope.projection._quality.sampled_fit_preservation`): the layout (sample points among the
   sample) and the placement (placed points among all points), the peer measured on the same
   rows; ``sample_choice`` is the smallest fraction where both are at least 95% of the peer's;
5. the other placement: umap-learn's ``transform`` of the points outside a sample (fitted by
   umap-learn itself, as ``transform`` needs its own search index), time and overlap;
6. the price of ``seed=``: the same map seeded (one core) and unseeded, at ``--seed-n`` points.

Every stage is printed to stderr and the JSON so far written to ``--out``. ``estimate_1m``
extrapolates the first-map time to 1,000,000 points from the measured stage times (PCA and
placement linear in the points they handle, neighbour graph and layout linear in the sample,
the neighbour graph of all points and the refinement epochs linear in all points).

Run ``python benchmarks/bench_scale_projection.py --n 100000 --dim 512 --out FILE``.
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
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_index import synthetic_embeddings


def _timed(fn, *args, **kwargs) -> tuple[Any, float, float]:
    """``(result, wall seconds, CPU seconds of this process)``."""
    t, c = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, round(time.perf_counter() - t, 3), round(time.process_time() - c, 3)


def _estimate(stages: dict[str, float], n: int, s: int, n_target: int, s_target: int) -> dict[str, float]:
    """Stage times scaled linearly to ``n_target`` points with a sample of ``s_target``."""
    scale = {"pca": n_target / n, "knn": s_target / s, "layout": s_target / s,
             "place": (n_target - s_target) / max(n - s, 1), "knn_all": n_target / n,
             "refine": n_target / n}  # fmt: skip
    est = {k: round(v * scale.get(k, 1.0), 1) for k, v in stages.items()}
    est["total"] = round(sum(est.values()), 1)
    return est


def run(
    n: int,
    dim: int = 512,
    *,
    fractions: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4),
    peer: bool | None = None,
    transform_fraction: float = 0.2,
    seed_n: int = 20_000,
    out: str | None = None,
) -> dict[str, Any]:
    """Run the benchmark at ``n`` points of ``dim`` dimensions; the result as a dict.

    ``peer`` (default: ``n <= 100,000``) runs the full-fit peers and the sample-size sweep.
    """
    from cirscope._core.arrays import unit_rows
    from cirscope._core.hashing import embeddings_fingerprint
    from cirscope.projection._compute import compute_map
    from cirscope.projection._fit import pca
    from cirscope.projection._quality import neighborhood_preservation, sampled_fit_preservation
    from cirscope.projection._sample import SAMPLE_ABOVE, SAMPLE_FRACTION, choose_sample, sample_size

    peer = n <= 100_000 if peer is None else peer
    result: dict[str, Any] = {
        "benchmark": "scale_projection",
        "n": n,
        "dim": dim,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_at_start": [round(v, 2) for v in os.getloadavg()]},
        "settings": {"sample_above": SAMPLE_ABOVE, "sample_fraction": SAMPLE_FRACTION, "sample_size": sample_size(n),
                     "metric": "kNN overlap@15 on 1,000 random points (exact, cosine vs 2-D Euclidean)"},
    }

    def report(stage: str) -> None:
        print(f"[bench_scale_projection] {stage}: {json.dumps(result.get(stage), default=str)}", file=sys.stderr,
              flush=True)  # fmt: skip
        if out:
            Path(out).write_text(json.dumps(result, indent=2, default=str) + "\n")

    import umap

    warm = synthetic_embeddings(300, dim, seed=9)
    _, wall, _ = _timed(compute_map, warm, progress=False)
    result["numba_warmup_s"] = wall
    report("numba_warmup_s")

    x = synthetic_embeddings(n, dim)
    quality = lambda xy: round(neighborhood_preservation(x, xy, 15, sample=1000), 4)  # noqa: E731

    def split_quality(xy: np.ndarray, rows: np.ndarray) -> dict[str, float]:
        got = sampled_fit_preservation(x, xy, rows, 15, sample=1000)
        return {"layout": round(got["layout"], 4), "placement": round(got["placement"], 4)}

    folder = Path(tempfile.mkdtemp(prefix="cirscope-bench-proj-"))
    try:
        timings: dict[str, float] = {}
        xy, wall, cpu = _timed(compute_map, x, cache_dir=folder, progress=False, timings=timings)
        fp, fp_s, _ = _timed(embeddings_fingerprint, x)  # what a space computes once and saves
        _, reopen, _ = _timed(compute_map, x, cache_dir=folder, fingerprint=fp, progress=False)
        result["first_map"] = {"wall_s": wall, "cpu_s": cpu, "stages_s": {k: round(v, 3) for k, v in timings.items()},
                               "cached_reopen_s": reopen, "fingerprint_s": fp_s,
                               "cached_reopen_with_fingerprint_s": round(reopen + fp_s, 3),
                               "sample_size": sample_size(n)}  # fmt: skip
        report("first_map")
        s = sample_size(n)
        result["estimate_1m"] = {
            "method": "stage times of this run scaled linearly: PCA and placement by the points they handle, "
            "neighbour graph and layout by the sample size, neighbour graph of all points and refinement by "
            "all points",
            "sample_size": sample_size(1_000_000),
            "stages_s": _estimate(timings, n, s, 1_000_000, sample_size(1_000_000)),
        }
        report("estimate_1m")
        if not peer:
            return result
        result["first_map"]["neighborhood_preservation"] = quality(xy)
        report("first_map")

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # the peer's own warm-up: >= 5,000 points so umap-learn takes its NN-descent path and
            # numba compiles it here, not inside the timed fit (300 points go the exact path)
            warm_peer = synthetic_embeddings(6000, dim, seed=8)
            _, result["peer_numba_warmup_s"], _ = _timed(lambda: umap.UMAP().fit(warm_peer))
            report("peer_numba_warmup_s")
            peer_xy, pwall, pcpu = _timed(lambda: umap.UMAP().fit_transform(x))
        result["peer_umap_default"] = {"wall_s": pwall, "cpu_s": pcpu, "neighborhood_preservation": quality(peer_xy),
                                       "first_map_wall_ratio": round(wall / pwall, 3)}  # fmt: skip
        report("peer_umap_default")
        ref = result["peer_umap_default"]["neighborhood_preservation"]
        # The all-points overlap rewards placed points sitting on their nearest sample point, so
        # every sampled fit beats a full fit on it. The split measure cannot be gamed that way:
        # layout (sample points among the sample) and placement (placed points among all points),
        # the peer's full fit measured on the same row sets.
        peer_split = {f: split_quality(peer_xy, choose_sample(n, int(f * n), None)) for f in fractions}
        result["peer_umap_default"]["split_preservation"] = {str(f): v for f, v in peer_split.items()}
        report("peer_umap_default")

        full_t: dict[str, float] = {}
        full_xy, fwall, fcpu = _timed(compute_map, x, sample=None, progress=False, timings=full_t)
        result["full_fit"] = {"wall_s": fwall, "cpu_s": fcpu, "stages_s": {k: round(v, 3) for k, v in full_t.items()},
                              "neighborhood_preservation": quality(full_xy)}  # fmt: skip
        report("full_fit")

        sweep = []
        for f in fractions:
            t: dict[str, float] = {}
            sxy, swall, _ = _timed(compute_map, x, sample=int(f * n), progress=False, timings=t)
            split = split_quality(sxy, choose_sample(n, int(f * n), None))
            sweep.append({"fraction": f, "sample": int(f * n), "wall_s": swall,
                          "stages_s": {k: round(v, 3) for k, v in t.items()}, "neighborhood_preservation": quality(sxy),
                          "vs_peer": round(quality(sxy) / ref, 3),
                          "layout_preservation": split["layout"], "placement_preservation": split["placement"],
                          "layout_vs_peer": round(split["layout"] / peer_split[f]["layout"], 3),
                          "placement_vs_peer": round(split["placement"] / peer_split[f]["placement"], 3)})  # fmt: skip
            result["sample_sweep"] = sweep
            report("sample_sweep")
        last = sweep[-1]  # a fit after the first: no numba compilation in its layout time
        result["estimate_1m_from_sweep"] = {
            "method": f"the {last['sample']:,}-point sample run's stage times scaled as in estimate_1m",
            "sample_size": sample_size(1_000_000),
            "stages_s": _estimate(last["stages_s"], n, last["sample"], 1_000_000, sample_size(1_000_000)),
        }
        ok = [r for r in sweep if r["layout_vs_peer"] >= 0.95 and r["placement_vs_peer"] >= 0.95]
        result["sample_choice"] = {"rule": "smallest fraction whose layout and placement overlaps are both >= 0.95 x "
                                           "those of plain umap.UMAP() on all points (same row sets)",
                                   "fraction": ok[0]["fraction"] if ok else None,
                                   "all_points_overlap_note": "neighborhood_preservation over all points rewards "
                                   "placement and is reported for reference only"}  # fmt: skip
        report("sample_choice")

        # the other placement: umap-learn's own transform of the points outside a sample
        m = int(transform_fraction * n)
        xp = unit_rows(pca(unit_rows(x), 50, None, fit_rows=50_000))
        rows = choose_sample(n, m, None)
        rest = np.setdiff1d(np.arange(n), rows)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model, twall_fit, _ = _timed(lambda: umap.UMAP(metric="cosine").fit(xp[rows]))
            placed, twall, _ = _timed(model.transform, xp[rest])
        txy = np.empty((n, 2))
        txy[rows], txy[rest] = model.embedding_, placed
        ours = next((r for r in sweep if r["fraction"] == transform_fraction), None)
        result["placement_transform"] = {"sample": m, "fit_s": twall_fit, "transform_s": twall,
                                         "neighborhood_preservation": quality(txy),
                                         "ours_place_s": ours["stages_s"].get("place") if ours else None,
                                         "ours_neighborhood_preservation": ours["neighborhood_preservation"] if ours
                                         else None}  # fmt: skip
        report("placement_transform")

        xs = x[: min(seed_n, n)]
        _, unseeded, _ = _timed(compute_map, xs, progress=False)
        _, seeded, _ = _timed(compute_map, xs, seed=0, progress=False)
        result["seed_cost"] = {"n": len(xs), "unseeded_wall_s": unseeded, "seeded_wall_s": seeded,
                               "seeded_over_unseeded": round(seeded / unseeded, 3)}  # fmt: skip
        report("seed_cost")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    result["machine"]["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    if out:
        Path(out).write_text(json.dumps(result, indent=2, default=str) + "\n")
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--fractions", type=str, default="0.05,0.1,0.2,0.4")
    p.add_argument("--seed-n", type=int, default=20_000)
    p.add_argument("--no-peer", action="store_true", help="skip the full-fit peers and sweeps (e.g. at 1M)")
    p.add_argument("--out", type=str, default=None)
    args = p.parse_args(argv)
    result = run(args.n, args.dim, fractions=tuple(float(f) for f in args.fractions.split(",")),
                 peer=False if args.no_peer else None, seed_n=args.seed_n, out=args.out)  # fmt: skip
    print(json.dumps(result, indent=2, default=str))
    return result


if __name__ == "__main__":
    main()

"""Images/s of ``cs.embed(engine="ray")`` vs the in-process pipeline, and Ray's scaling curve.

Measured in the same run, on the same synthetic photos (JPEG, 320x240, a folder):

* ``in_process``: ``cs.embed(engine="local")`` (the in-process pipeline writing shards);
* ``space_pipeline``: ``Embedder.embed_gallery`` (what ``cs.Space`` runs; no shards written);
* ``ray``: ``cs.embed(engine="ray")`` on a local Ray runtime, one actor per CPU; start-up
  (starting the runtime) is reported apart from the job;
* ``scaling``: 1, 2 and 4 Ray actors over a model whose cost is simulated (each actor
  sleeps ``--sim-ms`` per image and writes zero vectors), so the curve shows what the
  engine gives when the model, not this machine's cores, is the bottleneck, as on a
  cluster of GPUs;
* ``gpu`` (when CUDA is available): throughput with 1, 2 and 4 actors per GPU.

Ratios (``ray_overhead``: Ray's job seconds / in-process seconds; target at most 1.3 on 2
cores) are per repeat, and medians are reported.

Run ``python benchmarks/bench_ray.py [--n 6000] [--repeats 1] [--model cirscope-toy] --out ray.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def make_photos(folder: Path, n: int, seed: int = 0) -> None:
    """``n`` distinct 320x240 JPEG photos (smooth colour fields with noise)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:240, 0:320].astype(np.float32)
    for i in range(n):
        a, b, c = rng.uniform(0, 2 * np.pi, 3)
        base = np.stack([np.sin(xx / 40 + a), np.cos(yy / 30 + b), np.sin((xx + yy) / 50 + c)], axis=-1)
        arr = ((base * 0.5 + 0.5) * 200 + rng.normal(0, 12, base.shape)).clip(0, 255).astype(np.uint8)
        Image.fromarray(arr).save(folder / f"img_{i:06d}.jpg", quality=88)


class SimulatedActor:
    """A Ray Data actor whose model costs ``ms`` milliseconds per image (a sleep) and writes zero vectors."""

    def __init__(self, spec: dict[str, Any], out: str, chaos: Any = None):
        self.spec, self.out = spec, out
        self.ms = float(spec["simulated_ms"])

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from cirscope.embedding._shard_read import read_task
        from cirscope.embedding._shard_write import write_shard

        results = []
        for text in batch["task"]:
            task = json.loads(str(text))
            items, _ = read_task(task)
            time.sleep(len(items) * self.ms / 1000)
            entry = write_shard(self.out, task["name"], [i[0] for i in items], [i[2] for i in items],
                                np.zeros((len(items), 8), np.float32), "simulated")
            entry.update(key=task["key"], dim=8)
            results.append(json.dumps({"ok": True, "entry": entry}))
        return {"result": np.array(results, dtype=object)}


def scaling_run(ray_actors: int, tasks: list[dict[str, Any]], ms: float, out: Path,
                gpus_per_actor: float = 0.0) -> dict[str, float]:
    from cirscope.embedding._ray_engine import run_ray

    out.mkdir(parents=True, exist_ok=True)
    done: list[tuple[float, int]] = []
    timings = run_ray(
        tasks, {"simulated_ms": ms, "key": "simulated"}, out, lambda e: done.append((time.perf_counter(), e["rows"])),
        lambda name, why: print(f"shard {name} failed: {why}", file=sys.stderr),
        actors=ray_actors, cpus_per_actor=0.25, gpus_per_actor=gpus_per_actor, progress=False,
        actor_class=SimulatedActor,
    )
    rows = sum(r for _, r in done)
    # steady rate: after each actor has finished its first shard (leaves out the actors' start-up)
    k = min(ray_actors, len(done) - 1)
    steady = sum(r for _, r in done[k:]) / (done[-1][0] - done[k - 1][0]) if k >= 1 else float("nan")
    return {"images_per_s": round(rows / timings["job"], 1), "steady_images_per_s": round(steady, 1),
            "job_seconds": round(timings["job"], 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=6000, help="photos embedded by each engine")
    parser.add_argument("--shard-size", type=int, default=500)
    parser.add_argument("--model", default="cirscope-toy", help="cirscope-toy, or an open_clip architecture "
                        "(random weights saved to a checkpoint file so that every worker loads the same ones)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--num-cpus", type=int, default=os.cpu_count(), help="CPUs of the local Ray runtime")
    parser.add_argument("--sim-n", type=int, default=800, help="images of the simulated-model scaling runs")
    parser.add_argument("--sim-ms", type=float, default=20.0, help="simulated model cost per image (ms)")
    parser.add_argument("--workdir", default=None, help="where the photos and shards go (default: a temp dir)")
    parser.add_argument("--out", default=None, help="write the JSON report here (also printed)")
    args = parser.parse_args(argv)

    import cirscope as cs
    from cirscope.embedding._ray_engine import connect
    from cirscope.embedding._shard_sources import plan_shards
    from cirscope.space._embed import embed

    work = Path(args.workdir or tempfile.mkdtemp(prefix="cirscope-bench-ray-"))
    photos = work / "photos"
    make_photos(photos, args.n)
    os.environ.setdefault("CIRSCOPE_CACHE_DIR", str(work / "cache"))
    if args.model in ("cirscope-toy", "toy"):
        embedder_args: tuple[Any, ...] = ("cirscope-toy", None)
    else:  # random weights, saved once, so that all workers load identical ones
        import open_clip
        import torch

        torch.manual_seed(0)
        ckpt = work / "weights.pt"
        torch.save({"state_dict": open_clip.create_model(args.model).state_dict()}, ckpt)
        embedder_args = (args.model, str(ckpt))

    def embedder() -> cs.Embedder:
        return cs.Embedder(*embedder_args, device="cpu")

    report: dict[str, Any] = {
        "benchmark": "ray",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_before": [round(x, 2) for x in os.getloadavg()]},
        "n": args.n, "model": args.model, "shard_size": args.shard_size, "repeats": args.repeats,
        "in_process": [], "space_pipeline": [], "ray": [], "ray_overhead": [], "ray_overhead_vs_space_pipeline": [],
    }
    t = time.perf_counter()
    ray, startup = connect(None, args.num_cpus)
    report["ray_startup_s"] = round(startup, 2)
    print(f"Ray runtime started in {startup:.1f} s", file=sys.stderr)
    warm = embedder().load()  # torch imported, weights hashed and loaded before any timing
    for rep in range(args.repeats):
        out_local, out_ray = work / f"local-{rep}", work / f"ray-{rep}"
        t = time.perf_counter()
        local = embed(photos, warm, out=out_local, shard_size=args.shard_size, progress=False)
        local_s = time.perf_counter() - t
        t = time.perf_counter()
        res = warm.embed_gallery(cs.Gallery.from_folder(photos), cache=False, progress=False)
        space_s = time.perf_counter() - t
        t = time.perf_counter()
        remote = embed(photos, embedder(), out=out_ray, engine="ray", shard_size=args.shard_size, progress=False)
        ray_total = time.perf_counter() - t
        assert local.rows == remote.rows == len(res.rows) == args.n, (local.rows, remote.rows, len(res.rows))
        report["in_process"].append({"seconds": round(local_s, 2), "images_per_s": round(args.n / local_s, 1)})
        report["space_pipeline"].append({"seconds": round(space_s, 2), "images_per_s": round(args.n / space_s, 1)})
        report["ray"].append({"job_seconds": round(remote.timings["job"], 2), "total_seconds": round(ray_total, 2),
                              "images_per_s": round(args.n / remote.timings["job"], 1)})
        report["ray_overhead"].append(round(remote.timings["job"] / local_s, 3))
        report["ray_overhead_vs_space_pipeline"].append(round(remote.timings["job"] / space_s, 3))
        print(f"repeat {rep}: in-process {args.n / local_s:.0f} img/s, Space pipeline {args.n / space_s:.0f} img/s, "
              f"Ray {args.n / remote.timings['job']:.0f} img/s (job only)", file=sys.stderr)
        shutil.rmtree(out_local)
        shutil.rmtree(out_ray)
    report["median"] = {
        "in_process_images_per_s": statistics.median(r["images_per_s"] for r in report["in_process"]),
        "space_pipeline_images_per_s": statistics.median(r["images_per_s"] for r in report["space_pipeline"]),
        "ray_images_per_s": statistics.median(r["images_per_s"] for r in report["ray"]),
        "ray_overhead": statistics.median(report["ray_overhead"]),
        "ray_overhead_vs_space_pipeline": statistics.median(report["ray_overhead_vs_space_pipeline"]),
        "ray_overhead_target": 1.3,
    }

    sim_tasks = plan_shards(photos, shard_size=max(1, args.sim_n // 16))[: 16]
    scaling = []
    for actors in (1, 2, 4):
        rate = scaling_run(actors, sim_tasks, args.sim_ms, work / f"sim-{actors}")
        scaling.append({"actors": actors, **rate, "ideal_images_per_s": round(actors * 1000 / args.sim_ms, 1)})
        print(f"simulated model, {actors} actor(s): {rate}", file=sys.stderr)
    report["scaling"] = {"simulated_ms_per_image": args.sim_ms, "images": sum(len(t.get("paths", [])) for t in sim_tasks),
                         "runs": scaling}

    gpus = ray.cluster_resources().get("GPU", 0)
    if gpus >= 1:
        gpu_runs = []
        for per_gpu in (1, 2, 4):
            t = time.perf_counter()
            run = embed(photos, cs.Embedder(*embedder_args), out=work / f"gpu-{per_gpu}", engine="ray",
                        shard_size=args.shard_size, gpus_per_actor=1 / per_gpu, actors=int(gpus * per_gpu),
                        progress=False)
            gpu_runs.append({"actors_per_gpu": per_gpu, "gpus": gpus,
                             "images_per_s": round(run.rows / run.timings["job"], 1),
                             "total_seconds": round(time.perf_counter() - t, 2)})
            print(f"GPU: {per_gpu} actor(s) per GPU: {gpu_runs[-1]['images_per_s']} img/s", file=sys.stderr)
        report["gpu"] = gpu_runs
    report["machine"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
    text = json.dumps(report, indent=2)
    if args.out:
        Path(args.out).write_text(text)
    print(text)
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

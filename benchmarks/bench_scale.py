"""The scale benchmark: index, projection, loading, map widget and slider search at one size.

Each part is its own script (``bench_scale_<part>.py``) with a ``--n --dim --out`` command line;
this driver runs them one after another, each in a fresh process (so one part's memory does not
inflate the next one's RSS figures), and gathers their JSON into one file together with the
machine, its load before and after every part, and the wall time of each part.

Run ``python benchmarks/bench_scale.py --n 1000000 --dim 256 --out scale-1m.json`` (and
``--n 100000 --dim 512``); add ``--map-peer-path DIR`` after ``pip install --target DIR
jupyter-scatter`` to measure the map's peer in the same browser. ``--parts index,load`` runs a subset. A part that fails is recorded
with its exit code and the tail of its output; the others still run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent

# part -> (script, extra arguments given the requested n and dim)
PARTS: dict[str, tuple[str, Callable[[int, int], list[str]]]] = {
    "index": ("bench_scale_index.py", lambda n, dim: ["--n", str(n), "--dim", str(dim)]),
    # the projection part measures the first map at n and neighbourhood preservation at <= 100k
    "projection": ("bench_scale_projection.py", lambda n, dim: ["--n", str(n), "--dim", str(dim)]),
    # the loading target is stated for 512 dimensions
    "load": ("bench_scale_load.py", lambda n, dim: ["--n", str(n), "--dim", "512"]),
    "map": ("bench_scale_map.py", lambda n, dim: ["--n", str(n), *_map_peer()]),
    # the slider-move target is stated at 100k
    "search": ("bench_scale_search.py", lambda n, dim: ["--n", str(min(n, 100_000)), "--dim", str(dim)]),
}


#: where jupyter-scatter, the map's peer, is installed (``--map-peer-path``); it is not a dependency
MAP_PEER_PATH: list[str] = []


def _map_peer() -> list[str]:
    return ["--peer-path", MAP_PEER_PATH[0]] if MAP_PEER_PATH else []


def _machine() -> dict:
    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    try:
        with open("/proc/meminfo") as fh:
            total_kb = int(fh.readline().split()[1])
        info["memory_gb"] = round(total_kb / 2**20, 1)
    except OSError:
        pass
    return info


def run_part(name: str, n: int, dim: int, timeout: float) -> dict:
    script, args = PARTS[name]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{name}.json"
        cmd = [sys.executable, str(HERE / script), *args(n, dim), "--out", str(out)]
        load_before = os.getloadavg()
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
            code, tail = proc.returncode, (proc.stdout + proc.stderr)[-3000:]
        except subprocess.TimeoutExpired as exc:
            code, tail = "timeout", str(exc)[-3000:]
        wall = time.perf_counter() - t0
        record: dict = {
            "command": " ".join(["python", f"benchmarks/{script}", *args(n, dim)]),
            "wall_s": round(wall, 1),
            "load_before": [round(x, 2) for x in load_before],
            "load_after": [round(x, 2) for x in os.getloadavg()],
        }
        if code == 0 and out.exists():
            record["result"] = json.loads(out.read_text())
        else:
            record["error"] = {"exit": code, "output_tail": tail}
        return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds allowed for each part")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--map-peer-path", default=None,
                        help="a folder with jupyter-scatter installed (pip install --target DIR jupyter-scatter), "
                             "measured beside the map in the same browser; without it the peer is skipped")  # fmt: skip
    args = parser.parse_args(argv)
    if args.map_peer_path:
        MAP_PEER_PATH[:] = [args.map_peer_path]
    names = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(names) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {unknown}; choose from {sorted(PARTS)}")
    report = {"n": args.n, "dim": args.dim, "machine": _machine(), "parts": {}}
    t0 = time.perf_counter()
    for name in names:
        print(f"[bench_scale] {name} at n={args.n} ...", file=sys.stderr, flush=True)
        report["parts"][name] = run_part(name, args.n, args.dim, args.timeout)
        print(f"[bench_scale] {name}: {report['parts'][name]['wall_s']} s", file=sys.stderr, flush=True)
    report["total_wall_s"] = round(time.perf_counter() - t0, 1)
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    return 0 if all("result" in p for p in report["parts"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())

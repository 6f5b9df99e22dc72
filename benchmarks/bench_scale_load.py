"""How fast does ``Space.load`` open a large space, and how much memory does opening cost?

Saves an ``--n`` x ``--dim`` space (random unit vectors; a gallery of ids and file paths that
are never read), then opens it with ``Space.load`` in fresh subprocesses and measures:

- ``load_s``: wall time of ``Space.load`` (sampled verification, the default);
- ``rss_load_mb``: resident-memory growth from just before the call to just after it
  (modules are imported before the baseline, so this is data, not code);
- ``rss_touch_mb``: growth after an exact top-10 search that reads every row;
- ``gallery_load_alone``: ``Gallery.load`` by itself (ids and paths become Python and pandas
  objects: O(n) memory that the embeddings do not share).

The same data is also opened as a format-1 folder (what cirscope wrote before: no
verification record, so the loader reads every row into memory, re-hashes and normalises
them) in the same run, as the peer. Files are freshly written, so both loads run from a
warm page cache. ``verify="full"`` is timed too.

Target (issue 14): ``Space.load`` of 1M x 512 in <= 1 s with < 100 MB RSS growth.

Run ``python benchmarks/bench_scale_load.py --n 200000 --dim 512 --out load.json``
(1M x 512 needs ~4 GB of free disk: the new and old folders share their files by hard links).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

_CHILD = r"""
import json, sys, time, warnings
import numpy as np
import pyarrow.parquet  # noqa: F401  imported before the baseline: measure data, not code
import cirscope.space._space as sp

def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

folder, verify = sys.argv[1], sys.argv[2]
base = rss_mb()
t = time.perf_counter()
if verify == "gallery":  # the gallery table alone: ids, paths, metadata as Python/pandas objects
    gallery = sp.Gallery.load(folder)
    print(json.dumps({"load_s": time.perf_counter() - t, "rss_load_mb": rss_mb() - base}))
    sys.exit(0)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # the format-1 note
    space = sp.Space.load(folder, verify=verify)
load_s = time.perf_counter() - t
loaded = rss_mb()
q = np.asarray(space.image_embeddings[0], dtype=np.float32)
t = time.perf_counter()
scores = np.empty(len(space), dtype=np.float32)
for s in range(0, len(space), 65536):
    scores[s:s + 65536] = space.image_embeddings[s:s + 65536] @ q
top = np.argpartition(-scores, 10)[:10]
touch_s = time.perf_counter() - t
assert 0 in top.tolist()
print(json.dumps({"load_s": load_s, "rss_load_mb": loaded - base, "touch_s": touch_s,
                  "rss_touch_mb": rss_mb() - base}))
"""


def _write_space(folder: Path, n: int, dim: int, seed: int) -> dict:
    """A format-2 space of random unit rows, built in blocks (the vectors are normalised here once)."""
    import pandas as pd

    import cirscope as cs
    from cirscope.space._space import Space

    rng = np.random.default_rng(seed)
    emb = np.empty((n, dim), dtype=np.float32)
    for s in range(0, n, 65536):
        block = rng.standard_normal((min(65536, n - s), dim), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        emb[s : s + len(block)] = block
    ids = [f"img{i:08d}.jpg" for i in range(n)]
    gallery = cs.Gallery(pd.DataFrame({"id": ids}), [f"/data/photos/{i}" for i in ids])
    space = Space.__new__(Space)
    space._init(gallery, emb, None, {"model": "unknown", "pretrained": None, "fingerprint": None}, checked=True)
    t = time.perf_counter()
    space.save(folder)
    return {"save_s": round(time.perf_counter() - t, 2), "fingerprint": space.fingerprint}


def _write_format1(new: Path, old: Path, fingerprint: str) -> None:
    """The same files as a format-1 folder (hard links; a space.json without a verification record)."""
    old.mkdir()
    for name in ("embeddings.npy", "gallery.parquet"):
        os.link(new / name, old / name)
    info = json.loads((new / "space.json").read_text())
    (old / "space.json").write_text(json.dumps({
        "format": "cirscope.space", "version": 1, "n": info["n"], "dim": info["dim"], "model": info["model"],
        "embeddings_fingerprint": fingerprint, "problems": 0,
    }))


def _measure(folder: Path, verify: str, repeats: int) -> dict:
    runs = []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", _CHILD, str(folder), verify], capture_output=True, text=True,
                             env=env, check=False)
        if out.returncode != 0:
            raise SystemExit(f"loading {folder} failed:\n{out.stderr[-2000:]}")
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {k: round(statistics.median(r[k] for r in runs), 3) for k in runs[0]}


def run(n: int, dim: int, repeats: int = 3, seed: int = 0, workdir: str | None = None) -> dict:
    """Save an ``n`` x ``dim`` space, open it (new and format-1 layouts) and return the measurements."""
    with tempfile.TemporaryDirectory(prefix="cirscope-bench-load-", dir=workdir) as tmp:
        root = Path(tmp)
        saved = _write_space(root / "space", n, dim, seed)
        _write_format1(root / "space", root / "old", saved["fingerprint"])
        new = _measure(root / "space", "sample", repeats)
        full = _measure(root / "space", "full", repeats)
        gallery = _measure(root / "space", "gallery", repeats)
        old = _measure(root / "old", "sample", repeats)
        disk = sum(p.stat().st_size for p in (root / "space").iterdir() if p.is_file())
        shutil.rmtree(root / "old")
    return {
        "benchmark": "Space.load of a saved space: memory-mapped + sampled verification vs format 1",
        "n": n,
        "dim": dim,
        "repeats": repeats,
        "disk_mb": round(disk / 2**20, 1),
        "save_s": saved["save_s"],
        "load": new,
        "load_verify_full": full,
        "gallery_load_alone": gallery,
        "load_format1": old,
        "load_speedup_vs_format1": round(old["load_s"] / max(new["load_s"], 1e-9), 1),
        "target": {"load_s_max": 1.0, "rss_load_mb_max": 100},
        "meets_target": new["load_s"] <= 1.0 and new["rss_load_mb"] < 100,
        "loadavg": os.getloadavg(),
    }


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=200_000)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--workdir", default=None, help="where the temporary folders go (default: the system's)")
    p.add_argument("--out", type=Path, default=None, help="write the JSON report here too")
    args = p.parse_args(argv)
    report = run(args.n, args.dim, args.repeats, workdir=args.workdir)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")
    return report


if __name__ == "__main__":
    main()

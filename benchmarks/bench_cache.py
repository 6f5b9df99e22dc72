"""How much faster is a second ``cirscope embed`` of the same folder, thanks to the embedding cache?

Writes ``--n`` synthetic JPEG photos, then runs ``cirscope embed FOLDER --json`` (in this
process, through the CLI's ``main``) twice against an empty cache folder: the first run
embeds every image, the second finds them all in the cache and only hashes the files,
loads the model and writes the result. Repeated ``--repeats`` times with a fresh cache;
prints JSON with the medians and the per-run ratios.

Run ``python benchmarks/bench_cache.py [--n 200] [--model cirscope-toy] [--repeats 3]``
(``--model tests/fixtures/cirscope-test-tiny.json`` or ``--model ViT-B-32`` for random weights,
saved once to a checkpoint so that both runs share them).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import tempfile
import time
from pathlib import Path


def embed_once(folder: Path, out: Path, cache: Path, model: list[str]) -> tuple[float, dict]:
    from cirscope.cli._main import main

    buf = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(buf):
        code = main(["embed", str(folder), *model, "--out", str(out), "--cache-dir", str(cache), "--quiet", "--json"])
    seconds = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"cirscope embed failed with exit code {code}")
    return seconds, json.loads(buf.getvalue())


def model_args(name: str, folder: Path) -> list[str]:
    """``--model``/``--pretrained`` for ``cirscope embed``: random weights go to a checkpoint file,
    so that both runs use the same weights (and the same cache)."""
    if name in ("cirscope-toy", "toy"):
        return ["--model", name]
    import logging

    import open_clip
    import torch

    if name.endswith(".json"):  # an open_clip model config, e.g. the tests' tiny architecture
        open_clip.add_model_config(name)
        name = Path(name).stem
    logging.getLogger().setLevel(logging.ERROR)  # "no pretrained weights loaded": on purpose
    torch.manual_seed(0)
    path = folder / f"{name}-random.pt"
    torch.save({"state_dict": open_clip.create_model(name).state_dict()}, path)
    return ["--model", name, "--pretrained", str(path)]


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--model", default="cirscope-toy",
                   help="cirscope-toy, an open_clip name or an open_clip config JSON (seeded random weights)")
    p.add_argument("--size", default="500x375")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    from cirscope.cli._bench import _parse_size, write_photos

    runs = []
    with tempfile.TemporaryDirectory(prefix="cirscope-bench-cache-") as tmp:
        root = Path(tmp)
        write_photos(root / "photos", args.n, _parse_size(args.size), seed=args.seed)
        model = model_args(args.model, root)
        embed_once(root / "photos", root / "warm-out", root / "warm-cache", model)  # imports, model files
        for i in range(args.repeats):
            cache = root / f"cache-{i}"
            first_s, first = embed_once(root / "photos", root / f"out-{i}a", cache, model)
            cached_s, second = embed_once(root / "photos", root / f"out-{i}b", cache, model)
            if first["computed"] != args.n or second["from_cache"] != args.n:
                raise SystemExit(f"unexpected cache behaviour: first {first}, second {second}")
            runs.append({"first_s": round(first_s, 3), "cached_s": round(cached_s, 3),
                         "speedup": round(first_s / cached_s, 2)})
    report = {
        "benchmark": "cirscope embed: first run vs cached run of the same folder",
        "model": args.model,
        "n": args.n,
        "photo_size": args.size,
        "repeats": args.repeats,
        "runs": runs,
        "first_s_median": statistics.median(r["first_s"] for r in runs),
        "cached_s_median": statistics.median(r["cached_s"] for r in runs),
        "speedup_median": round(statistics.median(r["speedup"] for r in runs), 2),
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()

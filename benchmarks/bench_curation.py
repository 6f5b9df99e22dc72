"""How fast are tags and exports at scale, next to plain pandas / pyarrow doing the bare write?

Builds a space of ``--n`` random unit embeddings (a table gallery, no images), then times:

* ``space.tag(rows, name)`` of half the rows, in memory and on a saved space (which
  rewrites ``tags.arrow`` atomically on every change), and ``Space.load`` reading the tags;
* ``cs.export`` of every row to CSV and Parquet, beside the peers measured in the same
  run: ``DataFrame.to_csv`` / ``to_parquet`` of the same table, bare and followed by an
  fsync (what the export adds is assembling that table — metadata, paths, tag columns —
  and the atomic, flushed write).

Prints JSON (medians of ``--repeats`` runs) and writes it to ``--out`` when given.
Run ``python benchmarks/bench_curation.py [--n 100000] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def _time(fn, repeats: int) -> float:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return statistics.median(out)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)

    import cirscope as cs
    from cirscope.curation._export import export_frame

    rng = np.random.default_rng(0)
    n = args.n
    meta = pd.DataFrame({"id": [f"img-{i:07d}" for i in range(n)],
                         "label": rng.choice(["cat", "dog", "bird"], n), "size": rng.random(n)})
    gallery = cs.Gallery(meta, [f"/data/images/img-{i:07d}.jpg" for i in range(n)])
    emb = rng.normal(size=(n, 32)).astype(np.float32)
    half = np.arange(0, n, 2)
    result: dict = {"n": n, "repeats": args.repeats}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)

        def tag_memory():
            space = cs.Space.from_embeddings(gallery, emb, model_name="none")
            space.tag(half, "half")

        result["tag_half_in_memory_s"] = _time(tag_memory, args.repeats)
        saved = cs.Space.from_embeddings(gallery, emb, model_name="none")
        folder = saved.save(tmp / "space")
        state = {"i": 0}

        def tag_saved():  # each call tags a new name: one atomic rewrite of tags.arrow
            state["i"] += 1
            saved.tag(half, f"half-{state['i']}")

        result["tag_half_saved_s"] = _time(tag_saved, args.repeats)
        result["tag_file_bytes"] = (folder / "tags.arrow").stat().st_size
        result["tagged_rows_in_file"] = int(len(half) * state["i"])
        result["load_with_tags_s"] = _time(lambda: cs.Space.load(folder).tags, args.repeats)
        rows = np.arange(n)
        frame = export_frame(saved, rows)
        result["export_frame_s"] = _time(lambda: export_frame(saved, rows), args.repeats)
        for fmt in ("csv", "parquet"):
            k = {"i": 0}

            def run(fmt=fmt, k=k):
                k["i"] += 1
                cs.export(saved, rows, tmp / f"all-{k['i']}.{fmt}")

            def peer(fmt=fmt, durable=False):
                path = tmp / f"peer.{fmt}"
                frame.to_csv(path, index=False) if fmt == "csv" else frame.to_parquet(path, index=False)
                if durable:  # what the export's atomic write also pays: the file flushed to disk
                    fd = os.open(path, os.O_RDONLY)
                    os.fsync(fd)
                    os.close(fd)

            result[f"export_{fmt}_s"] = _time(run, args.repeats)
            result[f"peer_pandas_{fmt}_s"] = _time(peer, args.repeats)
            result[f"peer_pandas_{fmt}_fsync_s"] = _time(lambda fmt=fmt: peer(fmt, durable=True), args.repeats)
            result[f"export_{fmt}_over_peer"] = result[f"export_{fmt}_s"] / result[f"peer_pandas_{fmt}_s"]
            result[f"export_{fmt}_over_fsync_peer"] = result[f"export_{fmt}_s"] / result[f"peer_pandas_{fmt}_fsync_s"]
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text)
    return result


if __name__ == "__main__":
    main()

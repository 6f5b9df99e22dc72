"""``cirscope embed``: embed a folder of images into a result folder (or Parquet shards, see ``_embed_shards``)."""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

from cirscope._core.text import terminal_text
from cirscope.cli._embed_shards import add_arguments as add_shard_arguments
from cirscope.cli._embed_shards import cmd_embed_shards
from cirscope.cli._errors import CliError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``embed`` to the ``cirscope`` command line."""
    p = subparsers.add_parser(
        "embed",
        help="embed a folder of images and write a reusable result folder",
        description=(
            "Embed every image file under FOLDER with an image model and write a result folder that "
            "cs.Space.load reopens. There is no default model: pass --model with its weights "
            "(--model ViT-B-32 --pretrained laion2b_s34b_b79k, or --pretrained /path/to/checkpoint), or "
            "--model cirscope-toy for the shapes world. Hidden files and folders are skipped; files that "
            "cannot be used (not images, corrupt, too large, pipes or devices) are reported and skipped."
        ),
    )
    p.add_argument("folder", type=Path, help="folder of images (scanned recursively)")
    p.add_argument("--model", default=None,
                   help="required: an open_clip architecture (with --pretrained), hf-hub:org/repo, or cirscope-toy")
    p.add_argument("--pretrained", default=None,
                   help="weights for an open_clip architecture: a pretrained tag (e.g. laion2b_s34b_b79k), a local "
                        "checkpoint file, or 'random' for random weights (meaningless; tests and timings only)")
    p.add_argument("--metadata", default=None, help="CSV/Parquet joined on file name")
    p.add_argument("--key", default=None, help="metadata column holding file names")
    p.add_argument("--out", type=Path, required=True, help="output folder (reopen with cs.Space.load)")
    p.add_argument("--cache-dir", default=None, help="embedding cache folder (default: $CIRSCOPE_CACHE_DIR or the user cache)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the embedding cache")
    p.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best available)")
    p.add_argument("--batch-size", type=int, default=None, help="images per forward pass (default: 256 on CUDA, else 64)")
    p.add_argument("--workers", type=int, default=None, help="decoding worker processes")
    p.add_argument("--max-file-mb", type=float, default=None,
                   help="largest image file read, in MiB (default 256); larger files are reported and skipped")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print a JSON report")
    add_shard_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``cirscope embed``."""
    if getattr(args, "engine", None) or getattr(args, "address", None):  # Parquet shards, in process or on Ray
        return cmd_embed_shards(args)
    import cirscope as cs

    if args.max_file_mb is not None and args.max_file_mb <= 0:
        raise CliError(f"--max-file-mb must be positive, got {args.max_file_mb}")
    try:  # before scanning the folder: a missing model is the first thing to say
        embedder = cs.Embedder(
            args.model, args.pretrained, device=args.device, batch_size=args.batch_size, num_workers=args.workers
        )
    except cs.ModelLoadError as exc:
        raise CliError(str(exc)) from None
    if embedder.random_weights:
        print("cirscope embed: warning: random weights (--pretrained random): the embeddings mean nothing",
              file=sys.stderr)
    max_bytes = None if args.max_file_mb is None else int(args.max_file_mb * 2**20)
    with warnings.catch_warnings(record=True) as caught:  # shown as plain lines, not Python warnings
        warnings.simplefilter("always")
        gallery = cs.Gallery.from_folder(args.folder, metadata=args.metadata, key=args.key,
                                         max_file_bytes=max_bytes)
    notes = [str(w.message) for w in caught]
    for note in notes:
        print(f"cirscope embed: warning: {terminal_text(note)}", file=sys.stderr)
    start = time.perf_counter()
    try:
        space = cs.Space(gallery, embedder, cache=not args.no_cache, cache_dir=args.cache_dir,
                         progress=not args.quiet)
    except cs.ModelLoadError as exc:
        raise CliError(str(exc)) from None
    out = space.save(args.out)
    seconds = time.perf_counter() - start
    res = space.embed_result
    report = {
        "out": str(out),
        "model": space.model,
        "images": len(gallery),
        "embedded": len(space),
        "from_cache": res.n_cached if res else 0,
        "computed": res.n_embedded if res else len(space),
        "skipped": len(space.problems),
        "rebuilt_cache_files": res.damaged_cache_files if res else [],
        "warnings": notes,
        "seconds": round(seconds, 3),
        "images_per_second": round(len(space) / seconds, 1) if seconds > 0 else None,
    }
    if args.json:
        report["problems"] = space.problems.to_dict("records")
        print(json.dumps(report, indent=2))
        return 0
    print(f"Embedded {report['embedded']} of {report['images']} images with {terminal_text(args.model)} "
          f"({report['from_cache']} from the cache, {report['computed']} computed) in {seconds:.1f} s "
          f"-> {terminal_text(out)}")
    if report["rebuilt_cache_files"]:
        print(f"The embedding cache was damaged ({', '.join(report['rebuilt_cache_files'])}): rebuilt.")
    if len(space.problems):
        print(f"Skipped {len(space.problems)} file(s):")
        for row in space.problems.itertuples():
            print(f"  {terminal_text(row.id)}: {terminal_text(row.reason)}")
    return 0

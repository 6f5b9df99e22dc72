"""``cirscope embed --engine local|ray``: embed into Parquet shards (in process or on Ray Data)."""

from __future__ import annotations

import argparse
import json

from cirscope._core.errors import ModelLoadError
from cirscope.cli._errors import CliError


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of the sharded embedding run, added to the ``embed`` parser."""
    p.add_argument("--engine", choices=("local", "ray"), default=None,
                   help="write Parquet shards + manifest.json, in this process (local) or on Ray Data (ray); "
                        "SOURCE may then also be a glob, a Parquet/CSV table or WebDataset .tar shards")
    p.add_argument("--address", default=None, help="Ray cluster address, e.g. auto or ray://HEAD:10001 (implies --engine ray; default: a local runtime)")
    p.add_argument("--shard-size", type=int, default=None, help="images per shard (default 10000)")
    p.add_argument("--actors", type=int, default=None, help="Ray actors (default: as the resources allow)")
    p.add_argument("--gpus-per-actor", type=float, default=None, help="GPUs each Ray actor reserves")
    p.add_argument("--image-column", default=None, help="table column with image bytes, paths or URLs")
    p.add_argument("--id-column", default=None, help="table column with ids")
    p.add_argument("--overwrite", action="store_true", help="replace the shards of an earlier run in --out")


#: Options of the in-process ``embed`` that a sharded run does not take, and what to do instead.
UNSUPPORTED = {
    "metadata": "--metadata is not joined into shards: join it later with pandas on the 'id' column "
                "(cs.Space.from_parquet(OUT).gallery.metadata.merge(meta, on='id')), or embed without --engine",
    "key": "--key (a --metadata option) is not used with --engine: join metadata later with pandas on 'id'",
    "no_cache": "--no-cache does not apply with --engine: shards are the cache (pass --overwrite to recompute)",
    "cache_dir": "--cache-dir does not apply with --engine: the shards and their cache live in --out",
}


def unsupported_options(args: argparse.Namespace) -> list[str]:
    """What to do instead of each in-process option given together with ``--engine``."""
    return [why for name, why in UNSUPPORTED.items() if getattr(args, name, None) not in (None, False)]


def cmd_embed_shards(args: argparse.Namespace) -> int:
    """Run ``cs.embed`` for the ``embed`` command and print what it did."""

    refused = unsupported_options(args)
    if refused:
        raise CliError(refused[0])
    if getattr(args, "max_file_mb", None) is not None and args.max_file_mb <= 0:
        raise CliError(f"--max-file-mb must be positive, got {args.max_file_mb}")
    try:
        return _run(args)
    except (ImportError, ModelLoadError) as exc:  # no Ray installed; weights that cannot load
        raise CliError(str(exc)) from None


def _run(args: argparse.Namespace) -> int:
    import cirscope as cs
    from cirscope.embedding._shard_sources import DEFAULT_SHARD_SIZE
    from cirscope.space._embed import embed

    embedder = cs.Embedder(args.model, args.pretrained, device=args.device, batch_size=args.batch_size,
                           num_workers=args.workers)
    run = embed(
        str(args.folder), embedder, out=args.out, engine=args.engine or "ray", address=args.address,
        shard_size=args.shard_size or DEFAULT_SHARD_SIZE, actors=args.actors, gpus_per_actor=args.gpus_per_actor,
        image_column=args.image_column, id_column=args.id_column, overwrite=args.overwrite,
        max_file_bytes=None if args.max_file_mb is None else int(args.max_file_mb * 2**20),
        progress=not args.quiet,
    )
    report = {
        "out": str(run.out), "engine": run.engine, "model": args.model, "shards": run.shards,
        "computed_shards": len(run.computed), "reused_shards": len(run.reused), "failed_shards": run.failed,
        "embedded": run.rows, "skipped": len(run.problems), "seconds": round(run.seconds, 3),
        "startup_seconds": round(run.timings.get("startup", 0.0), 3),
    }
    if args.json:
        report["problems"] = run.problems.to_dict("records")
        print(json.dumps(report, indent=2))
    else:
        print(run.summary())
        for row in run.problems.head(50).itertuples():
            print(f"  {row.id}: {row.reason}")
        if len(run.problems) > 50:
            print(f"  ... and {len(run.problems) - 50} more in {run.out / 'problems.parquet'}")
    return 0 if run.complete else 1

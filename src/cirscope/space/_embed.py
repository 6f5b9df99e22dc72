"""``cs.embed``: embed a source into a folder of Parquet shards, in process or on Ray Data.

It runs the embedding stage's shard workers (:mod:`cirscope.embedding`) and hands back an
:class:`EmbedRun` whose :meth:`EmbedRun.space` opens the shards as a :class:`~cirscope.Space`;
living beside the space, it may use both stages without an import circle.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from cirscope.embedding._embedder import Embedder
from cirscope.embedding._shard_sources import DEFAULT_SHARD_SIZE, plan_shards
from cirscope.embedding._shards import (
    CACHE_DIR,
    MANIFEST,
    PROBLEM_COLUMNS,
    PROBLEMS,
    STAGING_DIR,
    ShardError,
    check_same_model,
    load_manifest,
    new_manifest,
    read_problems,
    save_manifest,
    write_problems,
)
from cirscope.space._space import Space

ENGINES = ("local", "ray")


@dataclass
class EmbedRun:
    """What :func:`embed` did."""

    out: Path
    engine: str
    shards: int  # planned
    computed: list[str]  # shards embedded by this run
    reused: list[str]  # finished shards kept from an earlier run
    failed: dict[str, str]  # shard -> reason (a rerun retries them)
    rows: int  # embedded items in the folder
    problems: pd.DataFrame  # id, source, reason of skipped items (and failed shards)
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        text = (f"{self.rows} images in {self.shards} shards -> {self.out} ({len(self.computed)} shards computed, "
                f"{len(self.reused)} reused) in {self.seconds:.1f} s with engine={self.engine}")
        if len(self.problems):
            text += f"; {len(self.problems)} skipped (see problems.parquet)"
        if self.failed:
            text += f"; {len(self.failed)} shard(s) failed: run again to retry them"
        return text

    def space(self, embedder: Embedder | None = None) -> Space:
        """Open the result as a :class:`~cirscope.Space` (see :meth:`cirscope.Space.from_parquet`)."""
        return Space.from_parquet(self.out, embedder=embedder)


def _clear(out: Path, manifest: dict[str, Any] | None) -> None:
    """Delete an earlier run: the files its manifest lists (shards, their problems), the manifest and the cache.

    Nothing else in ``out`` is touched, even when it is named like a shard. Without a
    readable manifest only the manifest, ``problems.parquet`` and the cache go (the
    shards of this run are written over the old ones).
    """
    names: set[str] = set()
    if manifest is not None:
        for name, entry in manifest["shards"].items():
            names.update({str(entry["file"]), f"{name}.problems.parquet"})
        for name in manifest.get("planned", []):  # the run's own names, finished or not
            names.update({f"{name}.parquet", f"{name}.problems.parquet"})
    for name in names:
        path = out / name
        if Path(name).name == name and path.is_file():  # a bare file name inside out, never a path elsewhere
            path.unlink()
    for name in (PROBLEMS, MANIFEST):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / CACHE_DIR, ignore_errors=True)


def embed(
    source: str | os.PathLike | Sequence[str | os.PathLike],
    embedder: Embedder,
    *,
    out: str | os.PathLike,
    engine: str = "local",
    address: str | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    actors: int | None = None,
    gpus_per_actor: float | None = None,
    cpus_per_actor: float = 1.0,
    num_cpus: int | None = None,
    image_column: str | None = None,
    id_column: str | None = None,
    overwrite: bool = False,
    max_file_bytes: int | None = None,
    progress: bool = True,
    **engine_options: Any,
) -> EmbedRun:
    """Embed every image of ``source`` into a folder of Parquet shards (plus ``manifest.json``).

    Parameters
    ----------
    source
        A folder or glob of images, a Parquet/CSV table with a column of bytes, paths or
        URLs, WebDataset ``.tar`` shards, or a list of these.
    embedder
        The model (:class:`~cirscope.Embedder`). With ``engine="ray"`` its weights must come
        from a file or a pretrained tag (random weights differ from worker to worker).
    out
        The output folder. A rerun into it skips finished shards; shards of another model
        are refused (``overwrite=True`` replaces them).
    engine
        ``"local"`` (this process, the in-process pipeline) or ``"ray"`` (Ray Data: a local
        runtime, or the cluster at ``address``).
    address
        A Ray cluster address (``"ray://head:10001"``, ``"auto"``); default: start a local
        runtime with ``num_cpus`` CPUs (all by default). Reuses a runtime already connected.
    shard_size
        Images per shard (tables are cut into row ranges; each tar is one shard).
    actors, gpus_per_actor, cpus_per_actor
        Ray actors (default: as many as the resources allow) and what each one reserves
        (default: one GPU per actor when the cluster has GPUs).
    image_column, id_column
        Table columns holding the images and the ids (found by name when omitted).
    overwrite
        Delete an earlier run's shards in ``out`` first (only the files its manifest lists,
        their problems files and the cache; other files in ``out`` are kept).
    max_file_bytes
        Largest image file or tar member read, in bytes (default 256 MiB); larger ones are
        reported in the problems and skipped.
    progress
        Show progress bars.

    Returns
    -------
    EmbedRun
        What was computed, reused, skipped and failed; ``.space()`` opens the result.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> photos = pathlib.Path(tmp.name, "photos")
    >>> photos.mkdir()
    >>> for row in range(6):
    ...     gallery.load_image(row).save(photos / f"img{row}.png")
    >>> run = cs.embed(photos, space.embedder, out=pathlib.Path(tmp.name, "photos.shards"), shard_size=4,
    ...                progress=False)
    >>> run.rows, run.shards, run.complete, len(run.space())
    (6, 2, True, 6)
    >>> cs.embed(photos, space.embedder, out=run.out, shard_size=4, progress=False).reused  # a rerun: nothing to do
    ['shard-00000', 'shard-00001']
    >>> tmp.cleanup()

    On a Ray cluster (not run here: it needs a cluster, and Ray workers need weights from a
    file or a pretrained tag):

    >>> run = cs.embed("photos/", cs.Embedder("ViT-B-32", "openai"), out="photos.shards",
    ...                engine="ray", address="auto")  # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if not isinstance(embedder, Embedder):
        raise TypeError(f"embed needs a cirscope Embedder, got {type(embedder).__name__}; e.g. cs.Embedder.toy()")
    chaos = engine_options.pop("_chaos", None)
    if engine_options:
        raise TypeError(f"embed() got unexpected keyword arguments {sorted(engine_options)}")
    started = time.perf_counter()
    if engine == "ray" and embedder.random_weights:
        raise ValueError(
            f"{embedder.name!r} with random weights (pretrained={embedder.pretrained!r}) would differ on every Ray "
            "worker: pass pretrained= a tag or a checkpoint file present on every node (save the random model with "
            "torch.save(model.state_dict(), path) to embed random weights), or use engine='local'."
        )
    out = Path(out)
    tasks = plan_shards(source, shard_size=shard_size, image_column=image_column, id_column=id_column,
                        max_file_bytes=max_file_bytes, staging=out / STAGING_DIR)
    out.mkdir(parents=True, exist_ok=True)
    staged = {Path(t["path"]).name for t in tasks if t["kind"] == "table"}
    for old in (out / STAGING_DIR).glob("*.parquet"):  # conversions of CSVs no longer planned, or changed
        if old.name not in staged:
            old.unlink(missing_ok=True)

    if engine == "ray":
        from cirscope.embedding._ray_engine import connect

        ray, startup = connect(address, num_cpus)
        if gpus_per_actor is None:
            gpus_per_actor = 1.0 if ray.cluster_resources().get("GPU", 0) >= 1 else 0.0
        device = "cuda" if gpus_per_actor else "cpu"
    else:
        startup, device = 0.0, embedder.device
    from cirscope.embedding._shard_worker import identity, model_spec

    spec = model_spec(embedder, device=device)
    model = identity(spec)

    if overwrite:
        try:
            old = load_manifest(out)
        except ShardError:
            old = None
        _clear(out, old)
    try:
        manifest = load_manifest(out)
    except ShardError as exc:
        raise ShardError(exc.path, exc.problem,
                         f"{exc.fix} Or pass overwrite=True (--overwrite) to start over in this folder.") from None
    if manifest is not None:
        check_same_model(manifest, model, out)
    else:
        manifest = new_manifest(model, None)
    manifest["model"] = model
    planned = {t["name"]: t for t in tasks}
    reused = []
    for name, entry in list(manifest["shards"].items()):
        path = out / entry["file"]
        fresh = (name in planned and entry.get("key") == planned[name]["key"] and path.is_file()
                 and path.stat().st_size == entry["bytes"])
        if fresh:
            reused.append(name)
        else:
            del manifest["shards"][name]
    manifest["planned"] = sorted(planned)
    manifest["failed"] = {}
    manifest["source"] = [str(s) for s in ([source] if isinstance(source, (str, os.PathLike)) else source)]
    save_manifest(out, manifest)
    pending = [t for t in tasks if t["name"] not in manifest["shards"]]
    computed: list[str] = []
    failed: dict[str, str] = {}
    bar = tqdm(total=len(tasks), initial=len(reused), desc=f"Embedding shards ({engine})", unit="shard",
               disable=not progress)

    def on_done(entry: dict[str, Any]) -> None:
        manifest["shards"][entry["name"]] = entry
        manifest["dim"] = manifest.get("dim") or entry["dim"]
        manifest["failed"].pop(entry["name"], None)
        save_manifest(out, manifest)
        computed.append(entry["name"])
        bar.update(1)

    def on_fail(name: str, reason: str) -> None:
        failed[name] = reason
        manifest["failed"][name] = reason
        save_manifest(out, manifest)
        bar.update(1)

    timings: dict[str, float] = {"startup": startup}
    try:
        if engine == "ray":
            from cirscope.embedding._ray_engine import run_ray

            timings.update(run_ray(
                pending, spec, out, on_done, on_fail, address=address, num_cpus=num_cpus, actors=actors,
                cpus_per_actor=cpus_per_actor, gpus_per_actor=gpus_per_actor, progress=progress, chaos=chaos,
            ))
            timings["startup"] += startup
        else:
            from cirscope.embedding._shard_worker import embed_task

            job = time.perf_counter()
            for task in pending:
                try:
                    on_done(embed_task(embedder, task, out, spec["key"], num_workers=embedder.num_workers))
                except (OSError, ValueError) as exc:  # an unreadable table or tar: the other shards go on
                    on_fail(task["name"], f"{type(exc).__name__}: {exc}")
            timings["job"] = time.perf_counter() - job
    finally:
        bar.close()
    problems = _collect_problems(out, manifest, failed)
    if len(problems):
        write_problems(out / PROBLEMS, problems)
    elif (out / PROBLEMS).exists():
        (out / PROBLEMS).unlink()
    run = EmbedRun(
        out=out, engine=engine, shards=len(tasks), computed=computed, reused=reused, failed=failed,
        rows=sum(int(e["rows"]) for e in manifest["shards"].values()), problems=problems,
        seconds=time.perf_counter() - started, timings=timings,
    )
    if progress and (len(problems) or failed):
        print(run.summary(), file=sys.stderr)
    return run


def _collect_problems(out: Path, manifest: dict[str, Any], failed: dict[str, str]) -> pd.DataFrame:
    parts = []
    for name in sorted(manifest["shards"]):
        if manifest["shards"][name].get("problems"):
            path = out / f"{name}.problems.parquet"
            if path.is_file():
                parts.append(read_problems(path))
    if failed:
        parts.append(pd.DataFrame([(name, name, f"shard failed: {why}") for name, why in sorted(failed.items())],
                                  columns=PROBLEM_COLUMNS))
    if not parts:
        return pd.DataFrame(columns=PROBLEM_COLUMNS)
    return pd.concat(parts, ignore_index=True)[PROBLEM_COLUMNS]

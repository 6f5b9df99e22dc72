"""Run the shards of an embedding job on Ray Data (a local runtime or a running cluster).

The job is one Ray Data pipeline: a dataset with one row per unfinished shard, and
``map_batches`` over it with an actor pool (``concurrency`` actors, ``num_gpus`` each),
so every actor loads the model once and then embeds shard after shard, writing each
shard's Parquet file itself (atomically) and handing back only its manifest entry. The
driver records each entry in the manifest as it arrives, so a killed job resumes at the
first unfinished shard.

Fault tolerance is Ray's own: an actor that dies (a lost node, an out-of-memory kill) is
restarted (``max_restarts``) and its shard retried (``max_task_retries``); a shard that
keeps failing is skipped (``DataContext.max_errored_blocks``) and reported, never failing
the others. An error inside a shard that Python can catch (an unreadable table, say)
becomes a failed-shard record at once. Nothing here is a worker protocol of its own.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import signal
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

INSTALL_HINT = 'The Ray engine needs Ray Data: pip install "cirscope[ray]" (or pip install "ray[data]").'
MAX_RESTARTS = 3
STARTUP_ATTEMPTS = 3


def import_ray():
    """Import ray, or say how to install it."""
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return ray


class ShardEmbedder:
    """The Ray Data actor: loads the model once, then embeds and writes one shard per row.

    ``chaos`` (tests only) makes one actor kill its own process with SIGKILL before its
    ``after``-th shard, once per ``marker`` file, to exercise Ray's recovery.
    """

    def __init__(self, spec: dict[str, Any], out: str, chaos: dict[str, Any] | None = None):
        from cirscope.embedding._shard_worker import make_embedder

        self.spec = spec
        self.out = out
        self.chaos = chaos
        self.done = 0
        self.embedder = make_embedder(spec)

    def _maybe_die(self) -> None:
        if not self.chaos or self.done < int(self.chaos["after"]):
            return
        try:
            fd = os.open(self.chaos["marker"], os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        os.kill(os.getpid(), signal.SIGKILL)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from cirscope.embedding._shard_worker import embed_task

        results = []
        for text in batch["task"]:
            task = json.loads(str(text))
            self._maybe_die()
            try:
                entry = embed_task(self.embedder, task, self.out, self.spec["key"], num_workers=0)
                results.append(json.dumps({"ok": True, "entry": entry}))
            except Exception as exc:  # one unreadable shard must not stop the job
                results.append(json.dumps({"ok": False, "name": task["name"], "error": f"{type(exc).__name__}: {exc}"}))
            self.done += 1
        return {"result": np.array(results, dtype=object)}


def fault_tolerance() -> dict[str, int]:
    """Ray options of each actor: restart a dead actor and retry its shard, a bounded number of times."""
    return {"max_restarts": MAX_RESTARTS, "max_task_retries": MAX_RESTARTS}


def connect(address: str | None = None, num_cpus: int | None = None) -> tuple[Any, float]:
    """Connect to ``address`` (a running cluster), or start a local runtime; reuse one already connected.

    Returns the ray module and the seconds start-up took.
    """
    ray = import_ray()
    start = time.perf_counter()
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"address": address} if address else {"num_cpus": num_cpus}
        for attempt in range(STARTUP_ATTEMPTS):
            try:
                ray.init(include_dashboard=False, logging_level=logging.WARNING, **kwargs)
                break
            except Exception as exc:  # on a busy machine the local raylet may miss Ray's 30 s start-up deadline
                if address or "timed out during startup" not in str(exc) or attempt == STARTUP_ATTEMPTS - 1:
                    raise
                ray.shutdown()
    return ray, time.perf_counter() - start


def run_ray(
    tasks: list[dict[str, Any]],
    spec: dict[str, Any],
    out: Path,
    on_done: Callable[[dict[str, Any]], None],
    on_fail: Callable[[str, str], None],
    *,
    address: str | None = None,
    num_cpus: int | None = None,
    actors: int | None = None,
    cpus_per_actor: float = 1.0,
    gpus_per_actor: float = 0.0,
    max_errored_blocks: int | None = None,
    progress: bool = True,
    chaos: dict[str, Any] | None = None,
    actor_class: type = ShardEmbedder,
) -> dict[str, float]:
    """Embed ``tasks`` on Ray; call ``on_done(entry)`` per finished shard and ``on_fail(name, reason)`` per failed one.

    Returns timings: ``startup`` (connecting or starting the runtime) and ``job`` seconds.
    """
    ray, startup = connect(address, num_cpus)
    if not tasks:
        return {"startup": startup, "job": 0.0}
    if actors is None:
        if gpus_per_actor:
            actors = max(1, int(ray.cluster_resources().get("GPU", 0) / gpus_per_actor))
        else:
            actors = max(1, int(ray.cluster_resources().get("CPU", 1) / cpus_per_actor))
    actors = max(1, min(actors, len(tasks)))
    ctx = ray.data.DataContext.get_current()
    saved = (ctx.max_errored_blocks, ctx.enable_progress_bars)
    ctx.max_errored_blocks = len(tasks) if max_errored_blocks is None else max_errored_blocks
    ctx.enable_progress_bars = progress
    start = time.perf_counter()
    seen: set[str] = set()
    try:
        ds = ray.data.from_items([{"task": json.dumps(t)} for t in tasks], override_num_blocks=len(tasks))
        options: dict[str, Any] = {}
        if "ray_remote_args_fn" in inspect.signature(ds.map_batches).parameters:
            # bounded restarts (Ray Data's default is to restart and retry forever, which a
            # shard that crashes its worker every time would never leave)
            options["ray_remote_args_fn"] = fault_tolerance
        with warnings.catch_warnings():  # deprecated in Ray 2.60 with no replacement yet
            warnings.filterwarnings("ignore", message=".*ray_remote_args_fn.* is deprecated")
            ds = ds.map_batches(
                actor_class,
                fn_constructor_kwargs={"spec": spec, "out": str(out), "chaos": chaos},
                batch_size=1,
                batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=actors),
                num_cpus=cpus_per_actor,
                num_gpus=gpus_per_actor or None,
                **options,
            )
        for batch in ds.iter_batches(batch_size=1, batch_format="numpy"):
            for text in batch["result"]:
                result = json.loads(str(text))
                if result["ok"]:
                    seen.add(result["entry"]["name"])
                    on_done(result["entry"])
                else:
                    seen.add(result["name"])
                    on_fail(result["name"], result["error"])
    finally:
        ctx.max_errored_blocks, ctx.enable_progress_bars = saved
    for task in tasks:
        if task["name"] not in seen:
            on_fail(task["name"], f"the shard's Ray task failed {MAX_RESTARTS + 1} times (see the Ray logs); rerun to retry")
    return {"startup": startup, "job": time.perf_counter() - start}

"""Embed one planned shard and write it: the unit of work of both engines (in-process and Ray).

The decoding and preprocessing are the in-process pipeline's own
(:func:`cirscope.embedding._pipeline.iterate_batches` with the Embedder's transform, JPEG draft size,
precision and device), so a shard embedded on a Ray worker holds the same vectors as the
same images embedded by ``cs.Space``. Imported lazily (it imports torch).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from cirscope.embedding._embedder import Embedder
from cirscope.embedding._models import RegisteredModel, register_model, registered_model
from cirscope.embedding._shard_read import read_task
from cirscope.embedding._shard_write import write_shard
from cirscope.embedding._shards import PROBLEM_COLUMNS


def model_spec(embedder: Embedder, *, device: str | None = None) -> dict[str, Any]:
    """What a worker needs to rebuild ``embedder`` exactly, and the identity its shards record.

    ``device`` is where the workers run (default: the embedder's). The precision is fixed
    here, on the driver, so that every worker of a run uses the same one.
    """
    device = device or embedder.device
    precision = embedder._precision or ("fp16" if str(device).startswith("cuda") else "fp32")
    fingerprint = embedder.fingerprint
    key = f"{embedder.name}-{fingerprint[:20]}-{precision}-{'draft' if embedder.fast_jpeg else 'full'}"
    return {
        "model": embedder.name,
        "pretrained": embedder.pretrained,
        "fingerprint": fingerprint,
        "precision": precision,
        "preprocessing": "fast" if embedder.fast_jpeg else "reference",
        "key": key,
        "device": device,
        "batch_size": embedder._batch_size,
        "gpu_decode": embedder.gpu_decode,
        "registered": _registration(embedder.registered),
    }


def _registration(spec: RegisteredModel | None) -> dict[str, Any] | None:
    """A registered model's registration, for workers in other processes (which may not have run it)."""
    if spec is None:
        return None
    return {"name": spec.name, "loader": spec.loader, "aliases": spec.aliases,
            "weights_file": None if spec.weights_file is None else str(spec.weights_file),
            "description": spec.description}


def identity(spec: dict[str, Any]) -> dict[str, Any]:
    """The part of a model spec that a manifest records (no device or batch size)."""
    return {k: spec[k] for k in ("model", "pretrained", "fingerprint", "precision", "preprocessing", "key")}


def make_embedder(spec: dict[str, Any]) -> Embedder:
    """Rebuild the run's Embedder on a worker and check that its weights are the run's.

    A model registered on the driver (:func:`cirscope.register_model`) is registered here too
    when the worker's process has not done it.
    """
    registration = spec.get("registered")
    if registration and registered_model(spec["model"]) is None:
        register_model(**registration)
    embedder = Embedder(
        spec["model"], spec["pretrained"], device=spec["device"], precision=spec["precision"],
        batch_size=spec["batch_size"], fast_jpeg=spec["preprocessing"] == "fast", gpu_decode=spec["gpu_decode"],
    )
    embedder.load()
    if embedder.fingerprint != spec["fingerprint"]:
        raise RuntimeError(
            f"The weights of {spec['model']} on this worker ({embedder.fingerprint[:12]}) differ from the driver's "
            f"({spec['fingerprint'][:12]}): install the same checkpoint file on every node."
        )
    return embedder


def embed_task(
    embedder: Embedder,
    task: dict[str, Any],
    out: str | os.PathLike,
    model_key: str,
    *,
    num_workers: int | None = 0,
    progress: Any = None,
) -> dict[str, Any]:
    """Embed the items of ``task`` and write its shard (and problems) into ``out``; return the manifest entry.

    Bad items (missing, corrupt, unreachable) become problem rows, never exceptions.
    ``progress``, when given, is called with the number of items done after each batch.
    """
    import torch

    from cirscope.embedding._pipeline import iterate_batches

    items, read_problems = read_task(task)
    problems: list[tuple[str, str, str]] = list(read_problems)
    vectors: dict[int, np.ndarray] = {}
    if items:
        embedder.load()
        dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(embedder.precision, torch.float32)
        for rows, batch, bad in iterate_batches(
            [it[1] for it in items],
            range(len(items)),
            embedder.preprocess,
            batch_size=embedder.batch_size,
            num_workers=num_workers,
            pin_memory=embedder.device == "cuda",
            draft_size=embedder.image_size if embedder.fast_jpeg else None,
            device=embedder.device,
            dtype=dtype,
            fast=embedder.fast_jpeg,
            gpu_decode=embedder.gpu_decode,
            max_file_bytes=task.get("max_file_bytes"),
        ):
            for row, reason in bad:
                problems.append((items[row][0], items[row][2], reason))
            if batch is not None:
                for row, vec in zip(rows, embedder.encode_pixels(batch), strict=True):
                    vectors[row] = vec
            if progress is not None:
                progress(len(rows) + len(bad))
    ok = sorted(vectors)
    dim = len(next(iter(vectors.values()))) if vectors else embedder.dim
    emb = np.stack([vectors[r] for r in ok]) if ok else np.zeros((0, dim), np.float32)
    entry = write_shard(
        out, task["name"], [items[r][0] for r in ok], [items[r][2] for r in ok], emb, model_key,
        problems=pd.DataFrame(problems, columns=PROBLEM_COLUMNS),
    )
    entry.update(key=task["key"], dim=int(dim))
    return entry

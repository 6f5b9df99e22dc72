"""Decode and preprocess gallery images in worker processes, feeding the model in batches.

Imported lazily (it imports torch). Three ways to turn image sources into model input:

``gpu``
    (chosen automatically on CUDA) workers only read the files and check JPEG headers;
    baseline JPEGs are decoded in batches on the device (nvJPEG) and resized, cropped and
    normalised there (:mod:`cirscope.embedding._gpu_preprocess`), in a background thread on a side
    CUDA stream so that the next batch is decoded while the model runs. Any other file
    (PNG, CMYK, progressive or EXIF-rotated JPEG, ...) and any JPEG the device cannot
    decode goes through the CPU path below, file by file, and is counted.
``cpu-fast``
    workers decode with Pillow (JPEG ``draft`` mode: decoding at a reduced scale when the
    image is at least twice the target size) and resize/crop with torch's vectorised
    uint8 kernel; pixels travel to the main process as uint8 (a quarter of float32) and
    are normalised there, on the model's device.
``reference``
    workers apply the model's own eval transform (open_clip's PIL preprocessing) to a
    full decode; used when ``fast=False`` or when the transform is not a standard one.

An image that fails becomes a problem record, never an exception, so one bad file cannot
stop a long run. Workers hand over small chunks of images and at most
``workers * 2`` chunks are in flight, so a run holds about two batches of decoded pixels
whatever its length. What a worker does with its chunk is in :mod:`cirscope.embedding._chunks`.
"""

from __future__ import annotations

import math
import os
import queue
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.data import DataLoader

from cirscope.embedding._chunks import Chunk, ChunkDataset
from cirscope.embedding._gpu_preprocess import (
    PreprocessPlan,
    decode_jpegs,
    normalize,
    pixel_budget_groups,
    plan_from_transform,
    resize_crop_batch,
)
from cirscope.gallery import _decode as _images

#: Most pixels decoded on the device at once (a bound on GPU memory for big photos).
GPU_PIXEL_BUDGET = 64 * 2**20
_PREFETCH = 2


@dataclass
class DecodeStats:
    """How the images of a run were decoded.

    ``fast``: images that took the run's fast path (device decoding for ``gpu``; the
    vectorised CPU path for ``cpu-fast``); ``fallback``: images decoded by Pillow on the
    CPU instead, with ``fallback_reasons`` counting why; ``problems``: images skipped.
    """

    path: str = "reference"
    workers: int = 0
    fast: int = 0
    fallback: int = 0
    problems: int = 0
    fallback_reasons: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "workers": self.workers,
            "fast": self.fast,
            "fallback": self.fallback,
            "problems": self.problems,
            "fallback_reasons": dict(self.fallback_reasons),
        }


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def default_workers(n_items: int, batch_size: int, device: str = "cpu") -> int:
    """Worker processes: none for a few batches (start-up costs more), else one per core (up to 16 with a GPU, 8 without)."""
    if n_items < 4 * batch_size:
        return 0
    cap = 16 if str(device).startswith("cuda") else 8
    return max(1, min(cap, _available_cores()))


def chunk_size(batch_size: int, num_workers: int) -> int:
    """Rows per worker hand-over: a divisor of ``batch_size`` near ``batch_size / num_workers``
    (at most 64), so that the ``num_workers * 2`` chunks in flight are about two batches.

    Examples
    --------
    >>> chunk_size(64, 2), chunk_size(256, 16), chunk_size(10, 3), chunk_size(64, 0)
    (32, 16, 2, 64)
    """
    batch_size = max(1, batch_size)
    if num_workers == 0:
        return batch_size
    target = min(64, max(4, math.ceil(batch_size / num_workers)))
    parts = math.ceil(batch_size / target)
    while batch_size % parts:
        parts += 1
    return batch_size // parts


@contextmanager
def _one_thread(enabled: bool) -> Iterator[None]:
    """Run torch's CPU ops single-threaded for a moment (the batch assembly between model calls).

    While decoding workers keep the cores busy, a multi-threaded elementwise op mostly waits
    for its descheduled threads: on 2 cores with 2 workers, normalising a batch costs the
    main process about five times more CPU with 2 threads than with 1.
    """
    threads = torch.get_num_threads()
    if not enabled or threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _in_background(make: Callable[[], Iterator[Any]], depth: int = 2) -> Iterator[Any]:
    """Run the iterator ``make()`` in a thread, ``depth`` items ahead of the consumer.

    Lets the next batch's decoding (which releases the GIL in native code) overlap the
    model's work on the current one. Errors are raised in the consumer; when the consumer
    stops early the thread stops too.
    """
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        it = make()
        try:
            for item in it:
                if not put((None, item)):
                    return
            put((None, done))
        except BaseException as exc:
            put((exc, None))
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=run, name="cirscope-decode", daemon=True)
    thread.start()
    try:
        while True:
            exc, item = items.get()
            if exc is not None:
                raise exc
            if item is done:
                return
            yield item
    finally:
        stop.set()
        thread.join(timeout=30)


def iterate_batches(
    sources: Sequence[Any],
    rows: Sequence[int],
    preprocess: Callable,
    *,
    batch_size: int,
    num_workers: int | None = None,
    pin_memory: bool = False,
    draft_size: int | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    fast: bool = True,
    gpu_decode: bool | None = None,
    stats: DecodeStats | None = None,
    max_file_bytes: int | None = None,
) -> Iterator[tuple[list[int], torch.Tensor | None, list[tuple[int, str]]]]:
    """Yield ``(rows, pixel_batch, problems)`` over ``rows``, decoding in worker processes.

    Parameters
    ----------
    sources
        Image sources (paths, bytes, PIL images, arrays...) indexed by row.
    rows
        The rows to process, in order.
    preprocess
        The model's eval transform (PIL image -> tensor).
    batch_size
        Images per yielded batch (fewer when some fail).
    num_workers
        Worker processes; default :func:`default_workers`.
    pin_memory
        Put CPU batches in pinned memory before the copy to ``device``.
    draft_size
        Let JPEGs decode at a reduced scale while their shorter side stays at least this
        (Pillow's ``draft``); ``None`` decodes at full size.
    device, dtype
        Where, and in which floating type, the yielded batches are (normalised model input).
    fast
        Use the fast paths (``gpu`` or ``cpu-fast``) when the transform is a standard
        open_clip one; ``False`` always runs ``preprocess`` itself (``reference``).
    gpu_decode
        Decode JPEGs with ``torchvision.io.decode_jpeg`` on ``device``; default: when
        ``device`` is CUDA. (On a CPU device it works too, which is how it is tested.)
    stats
        A :class:`DecodeStats` to fill in.
    max_file_bytes
        Largest image file read (default :data:`cirscope.gallery._decode.MAX_FILE_BYTES`). Files
        that are larger or not regular files (pipes, devices) become problems unread.

    A problem's reason is a :class:`cirscope.gallery._decode.TransientReason` when the failure is
    one of the run (out of memory, I/O errors) rather than of the file.

    Examples
    --------
    >>> pre = cs.Embedder.toy().preprocess  # the toy model's eval transform: 64 x 64 input
    >>> srcs = [np.zeros((40, 60, 3), np.uint8)] * 3
    >>> [tuple(b.shape) for _, b, _ in iterate_batches(srcs, range(3), pre, batch_size=2)]
    [(2, 3, 64, 64), (1, 3, 64, 64)]
    """
    rows = list(rows)
    stats = stats if stats is not None else DecodeStats()
    plan = plan_from_transform(preprocess) if fast else None
    device = torch.device(device)
    if gpu_decode is None:
        gpu_decode = device.type == "cuda"
    gpu_decode = bool(gpu_decode and plan is not None)
    stats.path = "gpu" if gpu_decode else ("cpu-fast" if plan is not None else "reference")
    if num_workers is None:
        num_workers = default_workers(len(rows), batch_size, device.type)
    stats.workers = num_workers
    chunk = chunk_size(batch_size, num_workers)
    chunks = [rows[i : i + chunk] for i in range(0, len(rows), chunk)]
    per_batch = max(1, batch_size) // chunk
    dataset = ChunkDataset(sources, chunks, preprocess, plan, draft_size, gpu_decode, max_file_bytes)

    loader = DataLoader(
        dataset,
        batch_size=None,
        shuffle=False,
        num_workers=num_workers,
        prefetch_factor=_PREFETCH if num_workers else None,
        persistent_workers=False,
    )
    items = iter(loader)  # starts the workers here, in the calling thread (before any other thread)

    def batches() -> Iterator[tuple[list[int], torch.Tensor | None, list[tuple[int, str]]]]:
        if gpu_decode and device.type == "cuda":
            # decode and preprocess on a side stream of this (background) thread, so that
            # they overlap the model's work on the default stream
            torch.cuda.set_stream(torch.cuda.Stream(device))
        # on a CPU device the assembly runs in this (the model's) thread between model calls
        serial = device.type == "cpu" and not gpu_decode and num_workers > 0
        pending: list[Chunk] = []
        for item in items:
            pending.append(item)
            if len(pending) == per_batch:
                with _one_thread(serial):
                    out = _assemble(pending, dataset, plan, device, dtype, pin_memory, stats)
                yield out
                pending = []
        if pending:
            with _one_thread(serial):
                out = _assemble(pending, dataset, plan, device, dtype, pin_memory, stats)
            yield out

    if not gpu_decode:
        yield from batches()
        return
    for batch_rows, batch, problems in _in_background(batches):
        if batch is not None and batch.device.type == "cuda":
            batch.record_stream(torch.cuda.current_stream(batch.device))  # allocated on the side stream
        yield batch_rows, batch, problems


def _assemble(
    chunks: list[Chunk],
    dataset: ChunkDataset,
    plan: PreprocessPlan | None,
    device: torch.device,
    dtype: torch.dtype | None,
    pin_memory: bool,
    stats: DecodeStats,
) -> tuple[list[int], torch.Tensor | None, list[tuple[int, str]]]:
    """Turn worker chunks into one normalised batch on ``device`` (decoding JPEGs there)."""
    problems = [p for c in chunks for p in c.problems]
    pixel_rows = [r for c in chunks for r in c.pixel_rows]
    pixel_parts = [c.pixels for c in chunks if c.pixels is not None]
    for c in chunks:
        stats.fallback_reasons.update(c.fallback)
    stats.fallback += sum(len(c.fallback) for c in chunks)

    jpeg_rows: list[int] = []
    jpeg_data: list[torch.Tensor] = []
    jpeg_sizes: list[tuple[int, int]] = []
    for c in chunks:
        start = 0
        for row, end, size in zip(c.jpeg_rows, c.jpeg_ends, c.jpeg_sizes, strict=True):
            jpeg_rows.append(row)
            jpeg_data.append(c.jpeg_bytes[start:end])  # type: ignore[index]
            jpeg_sizes.append(size)
            start = end

    parts: list[torch.Tensor] = []
    order: list[int] = []
    if jpeg_rows:
        assert plan is not None
        decoded_rows: list[int] = []
        for group in pixel_budget_groups(jpeg_sizes, GPU_PIXEL_BUDGET):
            decoded = decode_jpegs([jpeg_data[i] for i in group], device)
            good = [(jpeg_rows[i], img) for i, img in zip(group, decoded, strict=True) if isinstance(img, torch.Tensor)]
            for i, img in zip(group, decoded, strict=True):
                if isinstance(img, torch.Tensor):
                    continue
                row = jpeg_rows[i]  # the device could not decode it: Pillow on the CPU, here
                stats.fallback += 1
                stats.fallback_reasons["device decoder failed"] += 1
                try:
                    pix = dataset.cpu_pixels(dataset.sources[row], jpeg_data[i].numpy().tobytes())
                    parts.append(normalize(pix[None], plan, device=device, dtype=dtype))
                    order.append(row)
                except Exception as exc:
                    problems.append((row, _images.problem_from(exc).reason))
            if good:
                parts.append(normalize(resize_crop_batch([img for _, img in good], plan), plan, device=device, dtype=dtype))
                decoded_rows.extend(r for r, _ in good)
                order.extend(r for r, _ in good)
        stats.fast += len(decoded_rows)
    if pixel_parts:
        first = pixel_parts[0]
        shape = (sum(len(p) for p in pixel_parts), *first.shape[1:])
        if plan is not None and device.type == "cpu":
            # uint8 chunks straight into one float32 batch, normalised in place: no extra copies
            host = torch.empty(shape, dtype=torch.float32)
            start = 0
            for part in pixel_parts:
                host[start : start + len(part)].copy_(part)
                start += len(part)
        else:  # uint8 (or float, reference path) into pinned memory, for a fast copy to the GPU
            pin = pin_memory and device.type == "cuda"
            host = torch.cat(pixel_parts, out=torch.empty(shape, dtype=first.dtype, pin_memory=pin))
        if plan is not None:
            batch = normalize(host, plan, device=device, dtype=dtype)
        else:
            batch = host.to(device, dtype=dtype or host.dtype, non_blocking=pin_memory and device.type == "cuda")
        if stats.path != "gpu":  # on the gpu path these are the fallbacks, counted above
            stats.fast += len(host)
        parts.append(batch)
        order.extend(pixel_rows)
    stats.problems += len(problems)
    if not parts:
        return [], None, problems
    batch = torch.cat(parts) if len(parts) > 1 else parts[0]
    if len(parts) > 1:  # restore the input's row order within the batch
        rank = {row: i for i, row in enumerate(r for c in chunks for r in c.rows)}
        position = {row: i for i, row in enumerate(order)}
        order = sorted(order, key=rank.__getitem__)
        batch = batch.index_select(0, torch.tensor([position[r] for r in order], device=batch.device))
    if stats.path == "gpu" and device.type == "cuda":
        torch.cuda.current_stream(device).synchronize()  # made on the decoding thread's side stream
    return order, batch, problems

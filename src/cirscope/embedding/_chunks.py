"""The worker side of the decoding pipeline: one chunk of rows read, decoded and preprocessed.

A DataLoader worker process reads each file of its chunk once; with device decoding it keeps
baseline JPEG bytes for the GPU and decodes everything else on the CPU, so the main process
(:mod:`cirscope.embedding._pipeline`) receives a :class:`Chunk` per hand-over.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from cirscope.embedding._gpu_preprocess import PreprocessPlan, resize_crop_uint8, sniff_jpeg
from cirscope.gallery import _decode as _images


@dataclass
class Chunk:
    """What a worker hands over for a few consecutive rows."""

    rows: list[int]  # all rows of the chunk, in input order
    jpeg_rows: list[int]  # rows whose JPEG bytes are in ``jpeg_bytes`` (gpu path)
    jpeg_bytes: torch.Tensor | None  # all those files concatenated (one shared-memory tensor)
    jpeg_ends: list[int]  # end offset of each file in ``jpeg_bytes``
    jpeg_sizes: list[tuple[int, int]]  # (height, width) from the headers
    pixel_rows: list[int]  # rows decoded on the CPU, in ``pixels``
    pixels: torch.Tensor | None  # (k, 3, S, S): uint8 (fast paths) or float32 (reference)
    fallback: list[str]  # reason per CPU-decoded row that fell back from the gpu path
    problems: list[tuple[int, str]]


def stack_shared(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Stack into shared memory when in a worker (saves a copy on the way to the main process)."""
    first = tensors[0]
    out = torch.empty((len(tensors), *first.shape), dtype=first.dtype)
    if get_worker_info() is not None:
        out.share_memory_()
    return torch.stack(tensors, out=out)


class ChunkDataset(Dataset):
    """The chunks of one run, as a torch ``Dataset`` that DataLoader workers read."""

    def __init__(
        self,
        sources: Sequence[Any],
        chunks: list[list[int]],
        preprocess: Callable,
        plan: PreprocessPlan | None,
        draft_size: int | None,
        jpeg_to_device: bool,
        max_file_bytes: int | None = None,
    ):
        self.max_file_bytes = max_file_bytes
        self.sources = sources
        self.chunks = chunks
        self.preprocess = preprocess
        self.plan = plan
        self.draft_size = draft_size
        self.jpeg_to_device = jpeg_to_device

    def __len__(self) -> int:
        return len(self.chunks)

    def cpu_pixels(self, source: Any, data: bytes | None) -> torch.Tensor:
        """Decode and preprocess one image on the CPU (raises ImageProblem)."""
        if self.plan is None:
            return self.preprocess(_images.decode(source, data, draft_size=self.draft_size))
        img = _images.decode(source, data, draft_size=self.draft_size)
        return resize_crop_uint8(np.asarray(img), self.plan)

    def __getitem__(self, i: int) -> Chunk:
        jpeg_rows, jpeg_parts, jpeg_sizes = [], [], []
        pixel_rows, pixels, fallback, problems = [], [], [], []
        for row in self.chunks[i]:
            source = self.sources[row]
            try:
                data = _images.read_bytes(source, self.max_file_bytes)
                reason = None
                if self.jpeg_to_device:
                    if data is None:
                        reason = "decoded image in memory"
                    else:
                        reason, size = sniff_jpeg(data)
                        if reason is None:
                            jpeg_rows.append(row)
                            jpeg_parts.append(data)
                            jpeg_sizes.append(size)
                            continue
                pixels.append(self.cpu_pixels(source, data))
                pixel_rows.append(row)
                if reason is not None:
                    fallback.append(reason)
            except Exception as exc:  # a failure on an odd image (or of memory) must not kill the run
                problems.append((row, _images.problem_from(exc).reason))
        jpeg_bytes = None
        if jpeg_parts:
            jpeg_bytes = torch.from_numpy(np.frombuffer(b"".join(jpeg_parts), dtype=np.uint8).copy())
        return Chunk(
            rows=list(self.chunks[i]),
            jpeg_rows=jpeg_rows,
            jpeg_bytes=jpeg_bytes,
            jpeg_ends=np.cumsum([len(p) for p in jpeg_parts]).tolist(),
            jpeg_sizes=jpeg_sizes,
            pixel_rows=pixel_rows,
            pixels=stack_shared(pixels) if pixels else None,
            fallback=fallback,
            problems=problems,
        )

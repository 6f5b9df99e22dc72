"""Decode and preprocess gallery images in worker processes, feeding the model in batches.

Imported lazily (it imports torch). Each worker decodes an image and applies the model's
eval preprocessing; an image that fails becomes a problem record, never an exception,
so one bad file cannot stop a long run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from cirscope import _images
from cirscope._images import ImageProblem


class _DecodeDataset(Dataset):
    def __init__(self, sources: Sequence[Any], rows: Sequence[int], preprocess: Callable, draft_size: int | None):
        self.sources = sources
        self.rows = list(rows)
        self.preprocess = preprocess
        self.draft_size = draft_size

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor | None, str | None]:
        row = self.rows[i]
        try:
            img = _images.decode(self.sources[row], draft_size=self.draft_size)
            return row, self.preprocess(img), None
        except ImageProblem as exc:
            return row, None, exc.reason
        except Exception as exc:  # a preprocessing failure on an odd image must not kill the run
            return row, None, f"cannot preprocess ({type(exc).__name__}: {exc})"


def _collate(items: list[tuple[int, torch.Tensor | None, str | None]]):
    good = [(r, t) for r, t, _ in items if t is not None]
    bad = [(r, reason) for r, t, reason in items if t is None]
    rows = [r for r, _ in good]
    batch = torch.stack([t for _, t in good]) if good else None
    return rows, batch, bad


def default_workers(n_items: int, batch_size: int) -> int:
    """Worker processes: none for a few batches (start-up costs more), else up to 8, one per core."""
    if n_items < 4 * batch_size:
        return 0
    return max(1, min(8, (os.cpu_count() or 1)))


def iterate_batches(
    sources: Sequence[Any],
    rows: Sequence[int],
    preprocess: Callable,
    *,
    batch_size: int,
    num_workers: int | None = None,
    pin_memory: bool = False,
    draft_size: int | None = None,
) -> Iterator[tuple[list[int], torch.Tensor | None, list[tuple[int, str]]]]:
    """Yield ``(rows, pixel_batch, problems)`` over ``rows``, decoding in worker processes."""
    if num_workers is None:
        num_workers = default_workers(len(rows), batch_size)
    loader = DataLoader(
        _DecodeDataset(sources, rows, preprocess, draft_size),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=_collate,
        pin_memory=pin_memory,
        prefetch_factor=4 if num_workers else None,
        persistent_workers=False,
    )
    yield from loader

"""The embedding run: every image of a gallery through the cache, the decoders and the model."""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cirscope.embedding._cache import EmbeddingCache
from cirscope.gallery._decode import ImageProblem, TransientReason
from cirscope.gallery._table import Gallery

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.embedding._embedder import Embedder

#: Seconds between two writes to the embedding cache during a run (and every ``flush_every`` images).
FLUSH_SECONDS = 30.0


@dataclass
class EmbedResult:
    """What an embedding run produced."""

    embeddings: np.ndarray  # (n_ok, D) float32, L2-normalised
    rows: np.ndarray  # positional gallery rows of ``embeddings``
    problems: pd.DataFrame  # id, source, reason of skipped images
    n_cached: int = 0
    n_embedded: int = 0
    seconds: float = 0.0
    damaged_cache_files: list[str] = field(default_factory=list)
    decode: dict[str, Any] = field(default_factory=dict)  # how images were decoded (see _pipeline.DecodeStats)

    def summary(self) -> str:
        text = (
            f"{len(self.rows)} images embedded ({self.n_cached} from the cache, {self.n_embedded} computed) "
            f"in {self.seconds:.1f} s"
        )
        if len(self.problems):
            text += f"; {len(self.problems)} skipped (see .problems)"
        return text


def embed_gallery(
    embedder: Embedder,
    gallery: Gallery,
    *,
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    flush_every: int = 2048,
    flush_seconds: float = FLUSH_SECONDS,
    max_file_bytes: int | None = None,
) -> EmbedResult:
    """The run behind :meth:`Embedder.embed_gallery <cirscope.Embedder.embed_gallery>`, which documents it."""
    import torch
    from tqdm.auto import tqdm

    from cirscope.embedding._pipeline import DecodeStats, iterate_batches

    start = time.perf_counter()
    n = len(gallery)
    if max_file_bytes is not None:
        gallery.max_file_bytes = int(max_file_bytes)
    max_bytes = gallery.max_file_bytes
    store = EmbeddingCache(cache_dir, embedder.cache_key) if cache else None
    hashes, problems, result = _look_up_cache(gallery, store, progress)
    n_cached = len(result)
    todo = [r for r in range(n) if r not in result and r not in problems]
    pending_keys: list[str] = []
    pending_vecs: list[np.ndarray] = []
    pending_problems: dict[str, str] = {}
    decode_stats = DecodeStats()
    last_flush = time.monotonic()

    def flush() -> None:
        nonlocal last_flush
        if store is not None:
            if pending_keys:
                store.add(pending_keys, np.stack(pending_vecs))
            store.add_problems(pending_problems)
        pending_keys.clear()
        pending_vecs.clear()
        pending_problems.clear()
        last_flush = time.monotonic()

    if todo:
        embedder.load()
        bar = tqdm(total=len(todo), desc=f"Embedding images ({embedder.name}, {embedder.device})", unit="img",
                   disable=not progress)
        try:
            for rows, batch, bad in iterate_batches(
                gallery.sources,
                todo,
                embedder.preprocess,
                batch_size=embedder.batch_size,
                num_workers=embedder.num_workers,
                pin_memory=embedder.device == "cuda",
                draft_size=embedder.image_size if embedder.fast_jpeg else None,
                device=embedder.device,
                dtype={"fp16": torch.float16, "bf16": torch.bfloat16}.get(embedder.precision, torch.float32),
                fast=embedder.fast_jpeg,
                gpu_decode=embedder.gpu_decode,
                stats=decode_stats,
                max_file_bytes=max_bytes,
            ):
                for row, reason in bad:
                    problems[row] = reason
                    # only what the file itself causes is remembered; a failure of this run is retried
                    if row in hashes and not isinstance(reason, TransientReason):
                        pending_problems[hashes[row]] = str(reason)
                if batch is not None:
                    vecs = embedder.encode_pixels(batch)
                    for row, vec in zip(rows, vecs, strict=False):
                        result[row] = vec
                        key = hashes.get(row)
                        if key is None and store is not None:
                            key = gallery.content_hash(row)
                        if key is not None:
                            pending_keys.append(key)
                            pending_vecs.append(vec)
                if len(pending_keys) >= flush_every or time.monotonic() - last_flush >= flush_seconds:
                    flush()
                bar.update(len(rows) + len(bad))
        finally:
            flush()
            bar.close()
    for row, reason in problems.items():
        gallery.record_problem(row, reason)
    ok = np.array(sorted(result), dtype=np.int64)
    dim = next(iter(result.values())).shape[0] if result else 0
    emb = np.stack([result[r] for r in ok]).astype(np.float32) if len(ok) else np.zeros((0, dim), np.float32)
    prob = _problem_table(gallery, problems)
    out = EmbedResult(
        embeddings=emb, rows=ok, problems=prob, n_cached=n_cached, n_embedded=len(ok) - n_cached,
        seconds=time.perf_counter() - start, damaged_cache_files=list(store.damaged) if store else [],
        decode=decode_stats.as_dict() if todo else {},
    )
    if progress and (len(prob) or out.damaged_cache_files):
        msg = out.summary()
        if out.damaged_cache_files:
            msg += f"; rebuilt damaged cache files {out.damaged_cache_files}"
        print(msg, file=sys.stderr)
    return out


def _look_up_cache(
    gallery: Gallery, store: EmbeddingCache | None, progress: bool
) -> tuple[dict[int, str], dict[int, str], dict[int, np.ndarray]]:
    """Content hashes by row, known problems by row, and the embeddings the cache already holds."""
    from tqdm.auto import tqdm

    hashes: dict[int, str] = {}
    problems: dict[int, str] = {}
    if store is None:
        return hashes, problems, {}
    n = len(gallery)

    def _hash(row: int) -> tuple[int, str | None, str | None]:
        try:
            return row, gallery.content_hash(row), None
        except ImageProblem as exc:
            return row, None, exc.reason

    with ThreadPoolExecutor(max_workers=8) as pool:
        it = pool.map(_hash, range(n))
        for row, h, reason in tqdm(it, total=n, desc="Hashing images", disable=not progress or n < 2000):
            if h is None:
                problems[row] = reason or "unreadable"
            else:
                hashes[row] = h
    found = store.lookup(list(hashes.values()))
    result = {row: found[h] for row, h in hashes.items() if h in found}
    # files that failed before fail again: no need to load the model for them
    known = store.known_problems([h for row, h in hashes.items() if row not in result])
    problems.update({row: known[h] for row, h in hashes.items() if h in known and row not in result})
    return hashes, problems, result


def _problem_table(gallery: Gallery, problems: dict[int, str]) -> pd.DataFrame:
    """The skipped images as a table: id, source (``<in memory>`` for in-memory images), reason."""
    ids, sources = (gallery.ids, gallery.sources) if problems else ((), ())  # each an O(n) copy: once
    return pd.DataFrame(
        [(ids[r], sources[r] if isinstance(sources[r], str) else "<in memory>", reason)
         for r, reason in sorted(problems.items())],
        columns=["id", "source", "reason"],
    )

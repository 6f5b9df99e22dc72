"""Read a folder (or glob) of embedding shards as the parts of a :class:`~cirscope.Space`, without torch.

:meth:`cirscope.Space.from_parquet` assembles the space from :func:`read_shards`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
from PIL import Image

from cirscope.embedding._embedder import Embedder
from cirscope.embedding._shards import open_shards
from cirscope.gallery._decode import ImageProblem
from cirscope.gallery._table import Gallery
from cirscope.space._parts import SpaceParts

#: Why an item read from inside a tar shard or a table cell has no thumbnail.
NOT_KEPT = ("its image was read from inside a WebDataset tar or a table cell, and the shards keep its embedding, "
            "not its bytes (no thumbnail; see the source column for where it came from)")
#: ``source`` values the shard writer gives such items: ``w.tar/key.jpg`` and ``t.parquet#12``.
_NOT_KEPT_PATTERN = r"(?:\.tar/.+|\.(?:parquet|csv|tsv)#\d+)$"


def not_kept(sources: Sequence[str] | np.ndarray) -> np.ndarray:
    """Which ``source`` values name an image inside a tar shard or a table cell (not a readable file).

    Examples
    --------
    >>> not_kept(["/data/a.jpg", "w-000.tar/k1.jpg", "t.parquet#12", "http://x/y.png"]).tolist()
    [False, True, True, False]
    """
    return pd.Series(np.asarray(sources, dtype=object), dtype=object).astype(str).str.contains(
        _NOT_KEPT_PATTERN, regex=True).to_numpy(dtype=bool)


class ShardGallery(Gallery):
    """A gallery over shard sources: rows whose image lived inside a tar or a table cell report a clear problem."""

    _not_kept: np.ndarray

    def load_image(self, row: int) -> Image.Image:
        if self._not_kept[row]:
            self.record_problem(row, NOT_KEPT)
            raise ImageProblem(NOT_KEPT)
        return super().load_image(row)

    def content_hash(self, row: int) -> str:
        if self._not_kept[row]:
            self.record_problem(row, NOT_KEPT)
            raise ImageProblem(NOT_KEPT)
        return super().content_hash(row)

    def subset(self, rows: Sequence[int] | np.ndarray) -> Gallery:
        out = super().subset(rows)
        out.__class__ = ShardGallery
        out._not_kept = self._not_kept[np.asarray(rows, dtype=np.int64)]
        return out


def read_shards(folder_or_glob: str | os.PathLike, embedder: Embedder | None = None, *,
                verify: bool = False) -> SpaceParts:
    """Read Parquet embedding shards as the parts of a space (see :meth:`cirscope.Space.from_parquet`).

    The embeddings are the memory-mapped matrix :func:`~cirscope.embedding._shards.open_shards`
    caches beside the shards (unit float32 rows, checked on every open); the fingerprint
    comes from the manifest's shard checksums, so the matrix is never hashed as a whole.
    Without ``embedder``, the model the manifest names is set up lazily.
    """
    shards = open_shards(folder_or_glob, verify=verify)
    if len(shards.ids) == 0:
        raise ValueError(f"{folder_or_glob} holds no embedded image (see its problems.parquet)")
    gallery = ShardGallery(pd.DataFrame({"id": shards.ids, "source": shards.sources}), list(shards.sources))
    gallery._not_kept = not_kept(shards.sources)
    model = dict(shards.model)
    if embedder is None and model.get("model") not in (None, "unknown"):
        embedder = Embedder(model["model"], model.get("pretrained"), fast_jpeg=model.get("preprocessing", "fast") == "fast")
    model = {"model": model.get("model"), "pretrained": model.get("pretrained"),
             "fingerprint": model.get("fingerprint"), **{k: v for k, v in model.items() if k in ("key",)}}
    return SpaceParts(gallery=gallery, embeddings=shards.embeddings, embedder=embedder, model=model,
                      folder=shards.folder, fingerprint=shards.fingerprint, problems=shards.problems,
                      shards_missing=list(shards.missing))

"""Open a folder (or glob) of embedding shards as a :class:`~cirscope.Space`, without torch."""

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


def space_from_parquet(
    folder_or_glob: str | os.PathLike,
    embedder: Embedder | None = None,
    *,
    verify: bool = False,
):
    """A :class:`~cirscope.Space` over the Parquet shards written by :func:`cirscope.embed`.

    Parameters
    ----------
    folder_or_glob
        The output folder of a run, or a glob of shard files (any Parquet files with
        ``id``, ``embedding`` and, optionally, ``source`` columns work too).
    embedder
        The model for text and composed queries; by default the one the manifest names,
        set up lazily (torch is imported only when a text must be encoded).
    verify
        Check every shard against its manifest checksum (always done on the first open).

    The embeddings are memory-mapped from a matrix cached beside the shards (see
    :mod:`cirscope.embedding._shards`); derived results (index, map) are cached in the folder too,
    keyed by a fingerprint made from the manifest's shard checksums (so the matrix is never
    hashed as a whole). Items are in shard order; skipped items are in ``space.problems``.
    Items whose image was read from inside a tar shard or a table cell have no thumbnail:
    loading their image reports a problem that says so.

    Examples
    --------
    >>> import cirscope as cs
    >>> space = cs.Space.from_parquet("photos.shards")  # doctest: +SKIP
    >>> space.search("a red star", k=5)  # doctest: +SKIP
    """
    from cirscope.space._space import Space

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
    # open_shards hands out unit float32 rows, normalised and validated when its matrix was built
    # (and checked against that matrix's record on every open): use them as they are, memory-mapped
    space = Space.__new__(Space)
    space._init(gallery, shards.embeddings, embedder, model, problems=shards.problems, folder=shards.folder,
                checked=True, fingerprint=shards.fingerprint)
    space.shards_missing = shards.missing
    return space

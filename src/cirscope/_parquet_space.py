"""Open a folder (or glob) of embedding shards as a :class:`~cirscope.Space`, without torch."""

from __future__ import annotations

import os

import pandas as pd

from cirscope._embedder import Embedder
from cirscope._gallery import Gallery
from cirscope._shards import open_shards


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
    :mod:`cirscope._shards`); derived results (index, map) are cached in the folder too.
    Items are in shard order; skipped items are in ``space.problems``.

    Examples
    --------
    >>> import cirscope as cs
    >>> space = cs.Space.from_parquet("photos.shards")  # doctest: +SKIP
    >>> space.search("a red star", k=5)  # doctest: +SKIP
    """
    from cirscope._space import Space

    shards = open_shards(folder_or_glob, verify=verify)
    if len(shards.ids) == 0:
        raise ValueError(f"{folder_or_glob} holds no embedded image (see its problems.parquet)")
    gallery = Gallery(pd.DataFrame({"id": shards.ids, "source": shards.sources}), list(shards.sources))
    model = dict(shards.model)
    if embedder is None and model.get("model") not in (None, "unknown"):
        embedder = Embedder(model["model"], model.get("pretrained"), fast_jpeg=model.get("preprocessing", "fast") == "fast")
    model = {"model": model.get("model"), "pretrained": model.get("pretrained"),
             "fingerprint": model.get("fingerprint"), **{k: v for k, v in model.items() if k in ("key",)}}
    # open_shards hands out unit float32 rows, normalised and validated when its matrix was built
    # (and checked against that matrix's record on every open): use them as they are, memory-mapped
    space = Space.__new__(Space)
    space._init(gallery, shards.embeddings, embedder, model, problems=shards.problems, folder=shards.folder,
                checked=True)
    space.shards_missing = shards.missing
    return space

"""A Space: a gallery, its image embeddings and the model that made them."""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cirscope.embedding._embedder import Embedder
from cirscope.embedding._run import EmbedResult
from cirscope.gallery._table import Gallery
from cirscope.space import _files as files
from cirscope.space._files import FORMAT_VERSION
from cirscope.space._parts import SpaceParts, check_embeddings
from cirscope.space._tags import TagMixin

__all__ = ["FORMAT_VERSION", "Space"]

_TEXT_CACHE_SIZE = 4096


class Space(TagMixin):
    """A gallery together with its image embeddings, ready for queries, maps and audits.

    Parameters
    ----------
    gallery
        The images (:class:`Gallery`).
    embedder
        The model: an :class:`Embedder`, or a model name such as ``"cirscope-toy"``
        (the small model shipped with cirscope, works offline) or an open_clip name.
    cache, cache_dir
        Use the on-disk embedding cache (see :mod:`cirscope.embedding._cache`) and where it lives.
    progress
        Show progress bars.

    Images that cannot be decoded are skipped and listed in :attr:`problems`;
    :attr:`gallery` then holds the embedded images only, aligned row by row with
    :attr:`image_embeddings`.

    Examples
    --------
    >>> import cirscope as cs
    >>> small = cs.Space(cs.datasets.shapes(40), cs.Embedder.toy(), cache=False, progress=False)
    >>> small.image_embeddings.shape, len(small.problems)
    ((40, 128), 0)
    """

    def __init__(
        self,
        gallery: Gallery,
        embedder: Embedder | str | None = None,
        *,
        cache: bool = True,
        cache_dir: str | os.PathLike | None = None,
        progress: bool = True,
    ):
        if not isinstance(gallery, Gallery):
            raise TypeError(f"Space needs a cirscope Gallery, got {type(gallery).__name__}; see cs.Gallery.from_*")
        if embedder is None:
            raise TypeError(
                "Space needs an embedder, e.g. cs.Space(gallery, cs.Embedder.toy()); to use embeddings you "
                "already have, call cs.Space.from_embeddings(gallery, array, model_name=...)."
            )
        if isinstance(embedder, str):
            embedder = Embedder(embedder)
        elif not isinstance(embedder, Embedder):
            raise TypeError(
                f"Space needs a cirscope Embedder or a model name (e.g. \"cirscope-toy\"), got "
                f"{type(embedder).__name__}"
            )
        result = embedder.embed_gallery(gallery, cache=cache, cache_dir=cache_dir, progress=progress)
        if len(result.rows) == 0:
            raise ValueError(
                f"None of the {len(gallery)} images could be embedded; reasons: "
                f"{result.problems['reason'].value_counts().to_dict()}. See gallery.problems."
            )
        kept = gallery if len(result.rows) == len(gallery) else gallery.subset(result.rows)
        self._init(kept, result.embeddings, embedder, embedder.identity, problems=result.problems)
        self.embed_result: EmbedResult | None = result

    def _init(
        self,
        gallery: Gallery,
        embeddings: np.ndarray,
        embedder: Embedder | None,
        model: dict[str, Any],
        problems: pd.DataFrame | None = None,
        folder: Path | None = None,
        checked: bool = False,
        fingerprint: str | None = None,
    ) -> None:
        self.gallery = gallery
        # ``checked``: unit float32 rows verified by the loader (possibly a read-only memory map): no copy
        self.image_embeddings = embeddings if checked else check_embeddings(embeddings, len(gallery))
        if self.image_embeddings.flags.writeable:
            self.image_embeddings.setflags(write=False)
        self.embedder = embedder
        self.model = dict(model)
        self.problems = problems if problems is not None else pd.DataFrame(columns=["id", "source", "reason"])
        self.folder = folder
        self.embed_result = None
        self._fingerprint: str | None = fingerprint
        self._texts: OrderedDict[str, np.ndarray] = OrderedDict()
        self._checked_model = False
        self._index: Any = None
        self._tags = None  # cirscope.space._tags.Tags, made on first use

    @classmethod
    def from_embeddings(
        cls,
        gallery: Gallery,
        embeddings: Any,
        *,
        model_name: str | None = None,
        embedder: Embedder | None = None,
    ) -> Space:
        """A space from embeddings you already have (one L2-normalisable row per gallery image).

        Pass ``embedder`` (the model that made them) to run text and composed queries.
        """
        space = cls.__new__(cls)
        if embedder is not None:
            model = {"model": embedder.name, "pretrained": embedder.pretrained, "fingerprint": None}
        else:
            model = {"model": model_name or "unknown", "pretrained": None, "fingerprint": None}
        space._init(gallery, embeddings, embedder, model)
        return space

    @classmethod
    def from_parquet(
        cls, folder_or_glob: str | os.PathLike, embedder: Embedder | str | None = None, *, verify: bool = False
    ) -> Space:
        """A space over the Parquet embedding shards written by :func:`cirscope.embed`, without torch.

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
        :mod:`cirscope.embedding._shards`); derived results (index, map) are cached in the folder
        too, keyed by a fingerprint made from the manifest's shard checksums. Items are in shard
        order; skipped items are in ``space.problems``; ``space.shards_missing`` lists planned
        shards that are not there. Items whose image was read from inside a tar shard or a table
        cell have no thumbnail: loading their image reports a problem that says so
        (:mod:`cirscope.space._parquet`).

        Examples
        --------
        >>> import pathlib, tempfile
        >>> tmp = tempfile.TemporaryDirectory()
        >>> images = pathlib.Path(tmp.name, "images")
        >>> images.mkdir()
        >>> for row in range(4):
        ...     gallery.load_image(row).save(images / f"img{row}.png")
        >>> run = cs.embed(images, space.embedder, out=pathlib.Path(tmp.name, "shards"), progress=False)
        >>> shards = cs.Space.from_parquet(run.out)
        >>> len(shards), shards.shards_missing, shards.search("a red star", k=2)["rank"].tolist()
        (4, [], [1, 2])
        >>> tmp.cleanup()
        """
        from cirscope.space._parquet import read_shards

        if isinstance(embedder, str):
            embedder = Embedder(embedder)
        return cls._from_parts(read_shards(folder_or_glob, embedder, verify=verify))

    @classmethod
    def _from_parts(cls, parts: SpaceParts) -> Space:
        """Assemble a space from what a loader read (verified unit rows, used as they are)."""
        space = cls.__new__(cls)
        space._init(parts.gallery, parts.embeddings, parts.embedder, parts.model, problems=parts.problems,
                    folder=parts.folder, checked=True, fingerprint=parts.fingerprint)
        space._read_tags()  # tags.arrow beside it (a damaged file raises DamagedFileError)
        if parts.shards_missing is not None:
            space.shards_missing = list(parts.shards_missing)
        return space

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return len(self.gallery)

    def __repr__(self) -> str:
        n, d = self.image_embeddings.shape
        return f"Space({n} images x {d} dims, model={self.model.get('model')!r}, problems={len(self.problems)})"

    @property
    def dim(self) -> int:
        return int(self.image_embeddings.shape[1])

    @property
    def metadata(self) -> pd.DataFrame:
        """The gallery's metadata plus one boolean ``"tag:<name>"`` column per tag (a copy)."""
        tags = self._tags
        return pd.concat([self.gallery.metadata, tags.frame()], axis=1) if tags else self.gallery.metadata

    @property
    def fingerprint(self) -> str:
        """A hash of the embeddings (keys derived caches such as maps and indexes)."""
        if self._fingerprint is None:
            self._fingerprint = files.embeddings_fingerprint(self.image_embeddings)
        return self._fingerprint

    @property
    def cache_dir(self) -> Path:
        """Where derived results (maps, indexes) are cached for this space."""
        if self.folder is not None:
            return self.folder / "derived"
        from cirscope.embedding._cache import default_root

        return default_root() / "derived" / self.fingerprint

    # ------------------------------------------------------------------ encoding
    def _require_embedder(self) -> Embedder:
        if self.embedder is None:
            raise RuntimeError(
                "This space has no embedder, so it cannot encode texts or new images. Pass one: "
                "cs.Space.load(folder, embedder=cs.Embedder(...)) or Space.from_embeddings(..., embedder=...)."
            )
        if not self._checked_model:
            fp = self.model.get("fingerprint")
            if fp and self.embedder.fingerprint != fp:
                raise ValueError(
                    f"The embedder ({self.embedder.name}, weights {self.embedder.fingerprint[:12]}) is not the "
                    f"model these embeddings were made with ({self.model.get('model')}, weights {fp[:12]}). "
                    "Pass the same model and weights, or re-embed the gallery with this one."
                )
            self._checked_model = True
        return self.embedder

    def encode_text(self, texts: list[str] | str) -> np.ndarray:
        """Encode texts with the space's model, ``(n, D)`` float32; repeated texts come from an LRU cache."""
        if isinstance(texts, str):
            texts = [texts]
        texts = [str(t) for t in texts]
        missing = list(dict.fromkeys(t for t in texts if t not in self._texts))
        if missing:
            vecs = self._require_embedder().encode_text(missing)
            if vecs.shape[1] != self.dim:
                raise ValueError(
                    f"The embedder gives {vecs.shape[1]}-d vectors but the space holds {self.dim}-d embeddings: "
                    "use the model that made them."
                )
            for t, v in zip(missing, vecs, strict=False):
                v.setflags(write=False)
                self._texts[t] = v
        out = np.stack([self._texts[t] for t in texts])
        for t in texts:
            self._texts.move_to_end(t)
        while len(self._texts) > _TEXT_CACHE_SIZE:
            self._texts.popitem(last=False)
        return out

    def encode_image(self, image: Any) -> np.ndarray:
        """The embedding of a gallery row (int), a gallery id (str present in the gallery) or a new image."""
        if isinstance(image, (int, np.integer)):
            return self.image_embeddings[int(image)]
        if isinstance(image, str) and image in set(self.gallery.ids):
            return self.image_embeddings[self.gallery.row_of(image)]
        return self._require_embedder().encode_images([image])[0]

    # ------------------------------------------------------------------ features
    @property
    def index(self):
        """The neighbour index over the image embeddings (built on first use)."""
        if self._index is None:
            from cirscope.neighbors._index import EXACT_BELOW, NeighborIndex

            ids = np.asarray(self.gallery.ids)
            if len(self) < EXACT_BELOW:  # exact search: nothing worth saving
                self._index = NeighborIndex(self.image_embeddings, ids=ids, fingerprint=self.fingerprint)
            else:  # an annoy forest: saved under cache_dir and memory-mapped on the next open
                try:
                    self._index = NeighborIndex.cached(
                        self.image_embeddings, self.cache_dir / "index", fingerprint=self.fingerprint, ids=ids
                    )
                except OSError:  # a read-only folder: build it in memory
                    self._index = NeighborIndex(self.image_embeddings, ids=ids, fingerprint=self.fingerprint)
        return self._index

    def search(self, query: Any, method: str | None = None, k: int = 20, *, where: Any = None,
               **params: Any) -> pd.DataFrame:
        """Rank the gallery for a text, an image, a gallery row or a :class:`ComposedQuery`.

        See :func:`cirscope.query._search.search` for the methods and their parameters.
        ``where`` ranks only some rows: metadata filters ``{column: values or (low, high)}``
        (a column's values OR-ed, columns AND-ed, ``"tag:<name>"`` too; see
        :mod:`cirscope.space._filters`) or a boolean mask, one per row (as ``mask=``).
        When the model ignored words of a query text (the toy model knows only its world's
        words), an :class:`~cirscope.embedding._unknown_words.UnknownWordsWarning` names them
        and ``df.attrs["notice"]`` holds the same sentence.
        """
        from cirscope.query._search import search

        if where is not None:
            from cirscope.space._filters import space_where

            if params.get("mask") is not None:
                raise TypeError("Pass where= or mask=, not both")
            params["mask"] = space_where(self, where)
        out = search(self, query, method=method, k=k, **params)
        if getattr(self.embedder, "registered", None) is not None:
            import warnings

            from cirscope.embedding._unknown_words import UnknownWordsWarning, query_notice

            notice = query_notice(self.embedder, out.attrs.get("query", {}))
            if notice:
                out.attrs["notice"] = notice
                warnings.warn(notice, UnknownWordsWarning, stacklevel=2)
        return out

    def map(self, method: str = "umap", **params: Any) -> np.ndarray:
        """2-D coordinates of every image (UMAP or PCA), cached on disk by embeddings and parameters."""
        from cirscope.projection._compute import compute_map

        return compute_map(self.image_embeddings, method=method, cache_dir=self.cache_dir,
                           fingerprint=self.fingerprint, **params)

    # ------------------------------------------------------------------ persistence
    def save(self, folder: str | os.PathLike) -> Path:
        """Write a self-describing folder: ``embeddings.npy``, ``gallery.parquet``, ``space.json``.

        Everything is written into a fresh, uniquely named sibling folder, flushed to disk,
        then swapped into place in one step, so the folder is always either the previous
        save or this one, never a mix; concurrent saves to one folder each succeed and the
        last one wins. Embeddings are stored as unit float32 rows; ``space.json`` records
        their fingerprint and a verification record that :meth:`load` checks cheaply.
        Derived caches (maps, indexes) survive a save of the same embeddings.

        When the folder also holds other files (e.g. your images), it is not swapped: the
        space's own files are replaced one by one under a lock, ``space.json`` last, and a
        save interrupted midway is detected (and refused) by :meth:`load`.

        :meth:`load` reopens it without re-embedding and without importing torch. The
        space's tags (:meth:`tag`) go to ``tags.arrow`` beside them and follow every later change.
        """
        from cirscope.space._persist import write_space

        self.folder = write_space(self, folder)
        self._save_tags(self.folder)  # tags.arrow: the space's tags, kept beside it
        return self.folder

    @classmethod
    def load(
        cls,
        folder: str | os.PathLike,
        embedder: Embedder | str | None = None,
        *,
        verify: str = "sample",
    ) -> Space:
        """Reopen a folder written by :meth:`save` (or ``cirscope embed``).

        Embeddings are memory-mapped read-only: opening costs no memory until rows are used.

        Parameters
        ----------
        folder
            The space folder.
        embedder
            The model (an :class:`Embedder` or a model name). Without it, one is set up from
            the recorded model name and weights; it loads (and imports torch) only when a
            text or a new image must be encoded.
        verify
            ``"sample"`` (default): check every file's size, the small files' hashes and a
            fixed pseudo-random sample of embedding rows (first and last included) against
            ``space.json`` — O(sample), not O(n). ``"full"``: also re-hash every row and check
            every row is a unit vector.

        Raises
        ------
        FileNotFoundError
            The folder holds no ``space.json``.
        cirscope._core.errors.DamagedFileError
            A file is damaged, truncated, edited, or comes from another save; the message names it.

        Notes
        -----
        Folders written by cirscope before format 2 (no verification record) still open:
        their embeddings are read into memory, checked against the recorded fingerprint and
        normalised, with a warning suggesting to save them again.
        """
        if verify not in ("sample", "full"):
            raise ValueError(f'verify must be "sample" or "full", got {verify!r}')
        folder = Path(os.path.abspath(folder))
        if files.is_shard_folder(folder):  # Parquet shards written by cs.embed / cirscope embed --engine
            return cls.from_parquet(folder, embedder, verify=verify == "full")
        from cirscope.space._persist import read_space

        if isinstance(embedder, str):
            embedder = Embedder(embedder)
        return cls._from_parts(read_space(folder, embedder, full=verify == "full"))

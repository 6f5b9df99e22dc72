"""A Space: a gallery, its image embeddings and the model that made them."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cirscope._core.arrays import check_matrix, normalize_rows
from cirscope._core.errors import DamagedFileError, ModelLoadError
from cirscope.embedding._embedder import Embedder
from cirscope.embedding._run import EmbedResult
from cirscope.gallery._table import Gallery
from cirscope.space import _files as files
from cirscope.space._files import FORMAT_VERSION

__all__ = ["FORMAT_VERSION", "Space", "check_embeddings"]

_TEXT_CACHE_SIZE = 4096


def check_embeddings(embeddings: Any, n: int | None = None) -> np.ndarray:
    """Validate an ``(N, D)`` embedding array and return it L2-normalised as float32 (a new array).

    Normalisation runs in float64 after scaling each row by its largest value, and is
    validated afterwards (finite, unit rows), so tiny or huge values cannot turn into
    infinite or all-zero rows.

    Examples
    --------
    >>> check_embeddings([[1e-30, 0.0], [0.0, 1e25]]).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    arr = np.asarray(embeddings)
    if arr.ndim == 2 and arr.dtype.kind in "fiu" and arr.shape[1] > 0 and (n is None or arr.shape[0] == n):
        return normalize_rows(arr)
    return normalize_rows(check_matrix(embeddings, n=n))


class Space:
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
    >>> space = cs.Space(cs.datasets.shapes(200), cs.Embedder.toy())  # doctest: +SKIP
    >>> space.image_embeddings.shape  # doctest: +SKIP
    (200, 128)
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
        """Open Parquet embedding shards (written by :func:`cirscope.embed`) without torch.

        See :func:`cirscope.space._parquet.space_from_parquet`; the embeddings are memory-mapped.
        """
        from cirscope.space._parquet import space_from_parquet

        if isinstance(embedder, str):
            embedder = Embedder(embedder)
        return space_from_parquet(folder_or_glob, embedder, verify=verify)

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
        return self.gallery.metadata

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

    def search(self, query: Any, method: str | None = None, k: int = 20, **params: Any) -> pd.DataFrame:
        """Rank the gallery for a text, an image, a gallery row or a :class:`ComposedQuery`.

        See :func:`cirscope.query._search.search` for the methods and their parameters.
        """
        from cirscope.query._search import search

        return search(self, query, method=method, k=k, **params)

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

        :meth:`load` reopens it without re-embedding and without importing torch.
        """
        from cirscope._core.atomic import fsync_tree, swap_folder, temp_sibling

        target = Path(os.path.abspath(folder))
        if target.exists() and not target.is_dir():
            raise NotADirectoryError(f"{target} exists and is not a folder: pass a folder path for the space")
        fingerprint = self.fingerprint
        new = temp_sibling(target)
        try:
            with open(new / "embeddings.npy", "wb") as fh:
                np.save(fh, self.image_embeddings, allow_pickle=False)
            self.gallery.save(new, root=target)
            files.write_problems(new, self.problems)
            info = files.describe(new, self.image_embeddings, fingerprint, self.model, len(self.problems),
                                  files.fresh_seed())
            (new / "space.json").write_text(json.dumps(info, indent=2))
            fsync_tree(new)
            foreign = _foreign_entries(target)
            if foreign:
                _replace_in_place(new, target, fingerprint)
            else:
                swap_folder(new, target, keep=lambda old, tgt: _keep_derived(old, tgt, fingerprint))
        finally:
            if new.exists():
                shutil.rmtree(new, ignore_errors=True)
        self.folder = target
        return target

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
        info = files.read_info(folder)
        n, dim = info["n"], info["dim"]
        if info["version"] < 2:
            embeddings, fingerprint = _load_old_embeddings(folder, info)
        else:
            record = info["verify"]["files"]
            files.verify_file(folder, "gallery.parquet", record["gallery.parquet"])
            files.verify_file(folder, "problems.csv", record.get("problems.csv"))
            files.verify_file(folder, "embeddings.npy", {"bytes": record["embeddings.npy"]["bytes"]})
            embeddings = files.open_embeddings(folder, n, dim, mmap=True)
            files.verify_embeddings(folder, embeddings, info, full=verify == "full")
            fingerprint = info["embeddings_fingerprint"]
        # format 2 checked gallery.parquet's hash above; format 1 had no record, so its ids are checked
        gallery = Gallery.load(folder, _verified=info["version"] >= 2)
        if len(gallery) != n:
            raise DamagedFileError(folder / "gallery.parquet", f"it has {len(gallery)} rows but space.json says {n}",
                                   files.RESAVE)
        model = info.get("model", {})
        if isinstance(embedder, str):
            embedder = Embedder(embedder)
        if embedder is None and model.get("model") not in (None, "unknown"):
            try:
                embedder = Embedder(model["model"], model.get("pretrained"))
            except ModelLoadError as exc:
                # a name with no weights: either embeddings given with only a model name (nothing to
                # rebuild), or a space saved with random weights before they needed opting in
                if model.get("fingerprint") is not None or model.get("pretrained") is not None:
                    warnings.warn(f"{folder}: opened without its model ({exc}). Searching by text or image "
                                  "needs cs.Space.load(folder, embedder=cs.Embedder(...)).", UserWarning,
                                  stacklevel=2)
        problems = None
        if (folder / "problems.csv").is_file():
            try:
                problems = pd.read_csv(folder / "problems.csv", dtype=str)
            except (ValueError, UnicodeDecodeError) as exc:
                raise DamagedFileError(folder / "problems.csv", f"it cannot be read as CSV ({exc})",
                                       files.RESAVE) from exc
        space = cls.__new__(cls)
        space._init(gallery, embeddings, embedder, model, problems=problems, folder=folder, checked=True,
                    fingerprint=fingerprint)
        return space


def _load_old_embeddings(folder: Path, info: dict[str, Any]) -> tuple[np.ndarray, str]:
    """Format 1 (before verification records): read, check the whole fingerprint, normalise in memory."""
    raw = files.open_embeddings(folder, info["n"], info["dim"], mmap=False)
    fingerprint = files.embeddings_fingerprint(raw)
    if raw.dtype != np.float32 or fingerprint != info["embeddings_fingerprint"]:
        raise DamagedFileError(folder / "embeddings.npy", "its rows do not match the fingerprint in space.json "
                               "(edited, or from another save)", files.RESAVE)
    try:
        embeddings = check_embeddings(raw, info["n"])
    except ValueError as exc:
        raise DamagedFileError(folder / "embeddings.npy", str(exc), files.RESAVE) from exc
    warnings.warn(
        f"{folder} was saved by an older cirscope (space format 1): its embeddings were read into memory and "
        "normalised; save it again (space.save(folder)) to open it instantly and verified.",
        UserWarning,
        stacklevel=3,
    )
    return embeddings, files.embeddings_fingerprint(embeddings)


def _foreign_entries(target: Path) -> list[str]:
    """Entries of ``target`` that are not the space's own files (e.g. the user's images)."""
    if not target.is_dir():
        return []
    return sorted(e.name for e in target.iterdir() if e.name not in files.MANAGED)


def _keep_derived(old: Path, target: Path, fingerprint: str) -> None:
    """Carry the derived caches over when the embeddings did not change."""
    try:
        same = files.read_info(old)["embeddings_fingerprint"] == fingerprint
    except (OSError, ValueError):
        same = False
    if same and (old / "derived").is_dir() and not (target / "derived").exists():
        os.rename(old / "derived", target / "derived")


def _replace_in_place(new: Path, target: Path, fingerprint: str) -> None:
    """Move the space's files from ``new`` into ``target`` one by one (``space.json`` last), under a lock."""
    from cirscope._core.atomic import fsync_dir

    try:
        import fcntl
    except ImportError:  # no flock (Windows): saves to one folder of images are not serialised
        fcntl = None
    fd = os.open(target, os.O_RDONLY)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            same = files.read_info(target)["embeddings_fingerprint"] == fingerprint
        except (OSError, ValueError):
            same = False
        for name in ("embeddings.npy", "gallery.parquet", "problems.csv"):
            if (new / name).exists():
                os.replace(new / name, target / name)
            else:
                (target / name).unlink(missing_ok=True)
        if not same and (target / "derived").is_dir():
            shutil.rmtree(target / "derived", ignore_errors=True)
        os.replace(new / "space.json", target / "space.json")
        fsync_dir(target)
    finally:
        os.close(fd)  # closing releases the lock

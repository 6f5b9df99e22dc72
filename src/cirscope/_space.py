"""A Space: a gallery, its image embeddings and the model that made them."""

from __future__ import annotations

import hashlib
import json
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cirscope._embedder import Embedder, EmbedResult
from cirscope._gallery import Gallery
from cirscope._vectors import check_matrix

FORMAT_VERSION = 1
_TEXT_CACHE_SIZE = 4096


def check_embeddings(embeddings: Any, n: int | None = None) -> np.ndarray:
    """Validate an ``(N, D)`` embedding array and return it L2-normalised as float32 (a copy)."""
    arr = check_matrix(embeddings, n=n).copy()
    return arr / np.linalg.norm(arr, axis=1, keepdims=True)


class Space:
    """A gallery together with its image embeddings, ready for queries, maps and audits.

    Parameters
    ----------
    gallery
        The images (:class:`Gallery`).
    embedder
        The model (:class:`Embedder`); ``Embedder.toy()`` works offline.
    cache, cache_dir
        Use the on-disk embedding cache (see :mod:`cirscope._cache`) and where it lives.
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
        embedder: Embedder | None = None,
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
    ) -> None:
        self.gallery = gallery
        self.image_embeddings = check_embeddings(embeddings, len(gallery))
        self.image_embeddings.setflags(write=False)
        self.embedder = embedder
        self.model = dict(model)
        self.problems = problems if problems is not None else pd.DataFrame(columns=["id", "source", "reason"])
        self.folder = folder
        self.embed_result = None
        self._fingerprint: str | None = None
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
            h = hashlib.blake2b(digest_size=16)
            h.update(str(self.image_embeddings.shape).encode())
            h.update(np.ascontiguousarray(self.image_embeddings).tobytes())
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    @property
    def cache_dir(self) -> Path:
        """Where derived results (maps, indexes) are cached for this space."""
        if self.folder is not None:
            return self.folder / "derived"
        from cirscope._cache import default_root

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
            from cirscope._index import EXACT_BELOW, NeighborIndex

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

        See :func:`cirscope._search.search` for the methods and their parameters.
        """
        from cirscope._search import search

        return search(self, query, method=method, k=k, **params)

    def map(self, method: str = "umap", **params: Any) -> np.ndarray:
        """2-D coordinates of every image (UMAP or PCA), cached on disk by embeddings and parameters."""
        from cirscope._map import compute_map

        return compute_map(self.image_embeddings, method=method, cache_dir=self.cache_dir,
                           fingerprint=self.fingerprint, **params)

    # ------------------------------------------------------------------ persistence
    def save(self, folder: str | os.PathLike) -> Path:
        """Write a self-describing folder: ``embeddings.npy``, ``gallery.parquet``, ``space.json``.

        :meth:`load` reopens it without re-embedding and without importing torch.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / "embeddings.npy.tmp"
        with open(tmp, "wb") as fh:
            np.save(fh, np.ascontiguousarray(self.image_embeddings))
        os.replace(tmp, folder / "embeddings.npy")
        self.gallery.save(folder)
        if len(self.problems):
            self.problems.astype(str).to_csv(folder / "problems.csv", index=False)
        info = {
            "format": "cirscope.space",
            "version": FORMAT_VERSION,
            "n": len(self),
            "dim": self.dim,
            "model": self.model,
            "embeddings_fingerprint": self.fingerprint,
            "problems": len(self.problems),
        }
        tmp = folder / "space.json.tmp"
        tmp.write_text(json.dumps(info, indent=2))
        os.replace(tmp, folder / "space.json")
        self.folder = folder
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike, embedder: Embedder | None = None) -> Space:
        """Reopen a folder written by :meth:`save` (or ``cirscope embed``).

        Without ``embedder``, one is set up from the recorded model name and weights; it
        loads (and imports torch) only when a text or a new image must be encoded.
        """
        folder = Path(folder)
        info_path = folder / "space.json"
        if not info_path.is_file():
            raise FileNotFoundError(f"{info_path} not found: pass a folder written by Space.save or `cirscope embed`")
        info = json.loads(info_path.read_text())
        if info.get("format") != "cirscope.space":
            raise ValueError(f"{info_path} is not a cirscope space description")
        try:
            embeddings = np.load(folder / "embeddings.npy", mmap_mode=None, allow_pickle=False)
        except Exception as exc:
            raise ValueError(f"{folder / 'embeddings.npy'} is unreadable ({exc}); embed the gallery again") from exc
        gallery = Gallery.load(folder)
        if embeddings.shape != (info["n"], info["dim"]) or len(gallery) != info["n"]:
            raise ValueError(
                f"{folder} is inconsistent: space.json says {info['n']}x{info['dim']}, embeddings.npy is "
                f"{embeddings.shape}, the gallery has {len(gallery)} rows. Embed the gallery again."
            )
        model = info.get("model", {})
        if embedder is None and model.get("model") not in (None, "unknown"):
            embedder = Embedder(model["model"], model.get("pretrained"))
        problems = None
        if (folder / "problems.csv").is_file():
            problems = pd.read_csv(folder / "problems.csv", dtype=str)
        space = cls.__new__(cls)
        space._init(gallery, embeddings, embedder, model, problems=problems, folder=folder)
        return space

"""Saving and reopening a :class:`~cirscope.NeighborIndex`: files, their hashes and the checks on load.

A saved index is a folder: ``index.json`` (the settings, the embeddings' fingerprint, the backend
file's size and hashes, the recall report), ``ids.npy``, the backend's own file and, optionally,
``embeddings.npy``. Every file is written under a temporary name and renamed, ``index.json`` last.
Reopening checks the backend file's size and a hash of sampled blocks (:func:`sampled_digest`);
an index that no longer matches its embeddings, or whose files are damaged, is rebuilt with an
:class:`IndexRebuilt` warning.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
import warnings
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from cirscope._core.atomic import atomic_write, atomic_write_bytes
from cirscope._core.hashing import embeddings_fingerprint, file_digest
from cirscope.neighbors._backends import BACKENDS
from cirscope.neighbors._calibrate import RecallReport

__all__ = ["IndexRebuilt", "Persisted", "sampled_digest"]

_FORMAT = "cirscope.neighbor-index"
_VERSION = 2
# The settings a saved index must share with a request for cached() to reuse it.
_OPTION_KEYS = ("backend", "exact_below", "n_trees", "search_k", "breadth", "hnsw_m", "ef_construction",
                "storage", "nlist", "target_recall", "seed")


class IndexRebuilt(UserWarning):
    """A saved index did not match the embeddings (or was unreadable) and was rebuilt."""




# Reopening a saved index checks its backend file by size and by a hash of sampled blocks (the
# first, the last, and others at positions drawn from a generator seeded by the size), not by
# hashing the whole file (0.8 GB at 1M x 256). Files up to _SAMPLE_BLOCKS blocks are hashed whole.
_SAMPLE_BLOCK = 1 << 16
_SAMPLE_BLOCKS = 64


def sampled_digest(path: Path) -> str:
    """blake2b of the file's size and of sampled ``_SAMPLE_BLOCK``-byte blocks (whole when small).

    A truncated or extended file changes the size; damage inside a sampled block changes the hash.
    Damage elsewhere in a large file can pass (faiss still refuses graph links outside the rows
    when it reads the file): it then reaches faiss / annoy as a damaged graph, stored vector or
    tree, and since every candidate is re-scored exactly against the embeddings (whose fingerprint
    is checked), that can only lower recall, never return wrong scores. ``NeighborIndex.load(verify="full")`` hashes
    the whole file.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "x.bin"
    >>> _ = path.write_bytes(bytes(range(256)) * 1024)
    >>> sampled_digest(path) == sampled_digest(path), len(sampled_digest(path))
    (True, 32)
    """
    size = path.stat().st_size
    n_blocks = -(-size // _SAMPLE_BLOCK)
    h = hashlib.blake2b(digest_size=16)
    h.update(str(size).encode())
    with open(path, "rb") as fh:
        if n_blocks <= _SAMPLE_BLOCKS:
            while chunk := fh.read(1 << 23):
                h.update(chunk)
            return h.hexdigest()
        rng = np.random.default_rng(size)
        inner = rng.choice(np.arange(1, n_blocks - 1), size=_SAMPLE_BLOCKS - 2, replace=False)
        for block in [0, *np.sort(inner).tolist(), n_blocks - 1]:
            fh.seek(block * _SAMPLE_BLOCK)
            h.update(fh.read(_SAMPLE_BLOCK))
    return h.hexdigest()


def _atomic_save_npy(path: Path, arr: np.ndarray) -> None:
    with atomic_write(path) as fh:
        np.save(fh, arr)



class Persisted:
    """:meth:`save`, :meth:`load` and :meth:`cached` of :class:`~cirscope.NeighborIndex` (a mixin).

    ``load`` and ``cached`` construct the class they are called on; they read its ``_DEFAULTS``
    (the constructor's defaults of the settings that key a saved index), ``_check_embeddings``
    and ``_auto_choice``.
    """

    _DEFAULTS: ClassVar[dict[str, Any]]
    embeddings: Any
    ids: np.ndarray
    options: dict[str, Any]
    breadth: int | None
    _backend: Any
    _report: RecallReport | None

    def _description(self, backend_file: str | None, size: int, digest: str, sampled: str) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "n": len(self),
            "dim": self.dim,
            "fingerprint": self.fingerprint,
            "options": self.options,
            "backend": self.backend,
            "resolved_backend": self.backend_name,
            "backend_settings": self._backend.settings() if self._backend is not None else {},
            "breadth": self.breadth,
            "backend_file": backend_file,
            "backend_file_bytes": size,
            "backend_file_blake2b": digest,
            "backend_file_sampled_blake2b": sampled,
            "recall_report": self._report.to_dict() if self._report is not None else None,
            "exact_reason": self.exact_reason,
            "note": self.note,
        }

    def save(self, folder: str | os.PathLike, *, embeddings: bool = True) -> Path:
        """Write ``index.json``, ``ids.npy``, the backend's file and (``embeddings=True``) ``embeddings.npy``.

        Every file is written under a temporary name and renamed; ``index.json`` comes last and
        records the backend file's size and hash, so a folder is either complete or still
        describes the previous index, and a damaged file is detected on load.

        Examples
        --------
        >>> import tempfile
        >>> folder = cs.NeighborIndex(np.eye(3), ids=["a", "b", "c"]).save(tempfile.mkdtemp())
        >>> cs.NeighborIndex.load(folder).ids.tolist()
        ['a', 'b', 'c']
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        backend_file, size, digest, sampled = None, 0, "", ""
        if self._backend is not None:
            b = self._backend
            tag = hashlib.blake2b(json.dumps(b.settings(), sort_keys=True).encode(), digest_size=4).hexdigest()
            backend_file = f"{b.name}-{self.fingerprint[:16]}-{tag}-{self.seed}.{b.file_suffix}"
            tmp = folder / f".{backend_file}.{uuid.uuid4().hex}.tmp"
            b.save(tmp)
            size, digest, sampled = tmp.stat().st_size, file_digest(tmp), sampled_digest(tmp)
            os.replace(tmp, folder / backend_file)
        _atomic_save_npy(folder / "ids.npy", self.ids)
        if embeddings:
            _atomic_save_npy(folder / "embeddings.npy", np.ascontiguousarray(self.embeddings))
        atomic_write_bytes(
            folder / "index.json", json.dumps(self._description(backend_file, size, digest, sampled), indent=2).encode()
        )
        for name in BACKENDS.values():
            for stale in folder.glob(f"{name.name}-*.{name.file_suffix}"):
                if stale.name != backend_file:
                    stale.unlink(missing_ok=True)
        return folder

    @staticmethod
    def _settings(info: dict[str, Any]) -> dict[str, Any]:
        return {key: info["options"][key] for key in _OPTION_KEYS if key in info.get("options", {})}

    @classmethod
    def load(
        cls,
        folder: str | os.PathLike,
        embeddings: Any = None,
        *,
        fingerprint: str | None = None,
        progress: bool = True,
        verify: str = "sampled",
    ) -> Any:
        """Reopen a folder written by :meth:`save`; embeddings are memory-mapped, as is annoy's forest.

        Pass the current ``embeddings`` (and their ``fingerprint`` if known) to check that the
        saved index still matches them: when it does not, or when the backend's file fails its
        size / hash check, a new index is built with the saved settings and an
        :class:`IndexRebuilt` warning says so. Without ``embeddings`` the folder must hold
        ``embeddings.npy``.

        ``verify="sampled"`` (default) checks the backend file's size and a hash of sampled blocks
        (the whole file when it is small; a few MB read however large it is); ``"full"`` hashes
        the whole file. Damage the sample misses can only lower recall: every candidate is
        re-scored exactly against the embeddings.
        """
        if verify not in ("sampled", "full"):
            raise ValueError(f"verify must be 'sampled' or 'full', got {verify!r}")
        folder = Path(folder)
        info_path = folder / "index.json"
        if not info_path.is_file():
            raise FileNotFoundError(f"{info_path} not found: pass a folder written by NeighborIndex.save")
        info = json.loads(info_path.read_text())
        if info.get("format") != _FORMAT:
            raise ValueError(f"{info_path} does not describe a cirscope neighbour index")
        ids = np.load(folder / "ids.npy", allow_pickle=False)
        if embeddings is None:
            path = folder / "embeddings.npy"
            if not path.is_file():
                raise FileNotFoundError(
                    f"{path} not found: the index was saved without embeddings; pass them: "
                    "NeighborIndex.load(folder, embeddings)"
                )
            emb = np.load(path, mmap_mode="r", allow_pickle=False)
            fp = info["fingerprint"]
        else:
            emb = cls._check_embeddings(embeddings)
            fp = fingerprint or embeddings_fingerprint(emb)

        def rebuild(reason: str) -> Any:
            warnings.warn(f"The saved neighbour index in {folder} {reason}; rebuilding it.", IndexRebuilt,
                          stacklevel=3)  # fmt: skip
            keep_ids = ids if len(ids) == emb.shape[0] else None
            settings = cls._settings(info) if info.get("version") == _VERSION else {}
            return cls(emb, ids=keep_ids, progress=progress, fingerprint=fp, **settings)

        reason = cls._mismatch(info, emb, fp, ids)
        if reason:
            return rebuild(reason)
        index = cls.__new__(cls)
        index.embeddings = emb
        index.ids = ids
        index.options = dict(info["options"])
        index.exact_below = int(index.options["exact_below"])
        index.target_recall = float(index.options["target_recall"])
        index.seed = int(index.options["seed"])
        index.progress = progress
        index._fingerprint = fp
        index._backend = None
        index._row_of = None
        index.breadth = info.get("breadth")
        index.build_seconds = 0.0
        index.fast_queries = 0
        index.loaded_from = folder
        index.exact_reason = info.get("exact_reason", "")
        index.note = info.get("note", "")
        index.backend_name = info.get("resolved_backend", info["backend"])
        report = info.get("recall_report")
        index._report = RecallReport.from_dict(report) if report else None
        if info.get("backend_file"):
            path = folder / info["backend_file"]
            try:
                if not path.is_file():
                    raise OSError(f"{path.name} is missing")
                sampled = info.get("backend_file_sampled_blake2b")
                if verify == "full" or not sampled:
                    digest, expected = file_digest, info["backend_file_blake2b"]
                else:
                    digest, expected = sampled_digest, sampled
                if path.stat().st_size != info["backend_file_bytes"] or digest(path) != expected:
                    raise OSError(f"{path.name} is damaged (its size or hash changed)")
                backend = BACKENDS[info["backend"]].load(path, int(info["dim"]), info["backend_settings"], index.seed)
                if backend.n_items() != len(emb):
                    raise OSError(f"{path.name} has {backend.n_items()} items, not {len(emb)}")
            except (OSError, ImportError) as exc:
                return rebuild(f"has an unusable {info['backend']} file ({exc})")
            index._backend = backend
        return index

    @staticmethod
    def _mismatch(info: dict[str, Any], emb: np.ndarray, fp: str, ids: np.ndarray) -> str:
        if info.get("version") != _VERSION:
            return f"has format version {info.get('version')}, not {_VERSION}"
        if tuple(emb.shape) != (info["n"], info["dim"]):
            return (
                f"covers {info['n']} x {info['dim']} embeddings but these are {emb.shape[0]} x {emb.shape[1]}"
            )
        if info["fingerprint"] != fp:
            return "was built from different embeddings (fingerprint changed)"
        if len(ids) != info["n"]:
            return "has an ids file of the wrong length"
        return ""

    @classmethod
    def cached(
        cls,
        embeddings: Any,
        folder: str | os.PathLike,
        fingerprint: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """Load the index saved in ``folder`` if it matches ``embeddings`` and the settings, else build and save one.

        The embeddings themselves are not written (the caller owns them). Keyword arguments go
        to the constructor; a saved index built with other settings (backend, breadth, trees,
        graph, seed, ``exact_below``, target recall) is rebuilt.

        Examples
        --------
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> emb = np.eye(4)
        >>> cs.NeighborIndex.cached(emb, folder).loaded_from is None
        True
        >>> cs.NeighborIndex.cached(emb, folder).loaded_from is not None
        True
        """
        folder = Path(folder)
        emb = cls._check_embeddings(embeddings)
        fp = fingerprint or embeddings_fingerprint(emb)
        info_path = folder / "index.json"
        rebuilt: Any = None
        if info_path.is_file():
            try:
                info = json.loads(info_path.read_text())
                wanted = {key: kwargs.get(key, cls._DEFAULTS.get(key)) for key in _OPTION_KEYS}
                wanted["target_recall"] = float(wanted["target_recall"])
                ok = info.get("fingerprint") == fp and info.get("options") == wanted
                if ok and wanted["backend"] == "auto":
                    # built with annoy because faiss was missing, say: rebuild now that it is there
                    now = cls._auto_choice(emb.shape[0], int(wanted["exact_below"]), wanted)[0]
                    ok = info.get("resolved_backend") == now
                if ok and "ids" in kwargs and kwargs["ids"] is not None:
                    # the saved ids were checked unique when built: equal ids need no uniqueness sort
                    saved = np.load(folder / "ids.npy", allow_pickle=False)
                    given = np.asarray(kwargs["ids"])
                    ok = np.array_equal(saved, given.astype(str) if given.dtype == object else given)
                if ok:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", IndexRebuilt)  # a rebuild is what cached() is for
                        index = cls.load(folder, emb, fingerprint=fp, progress=kwargs.get("progress", True))
                    if index.loaded_from is not None:
                        return index
                    rebuilt = index  # the saved files were damaged: load() built a new index
            except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError):
                pass
        index = rebuilt if rebuilt is not None else cls(emb, fingerprint=fp, **kwargs)
        try:
            index.save(folder, embeddings=False)
            index.loaded_from = None
        except OSError as exc:
            warnings.warn(
                f"Could not save the neighbour index in {folder} ({exc}); it will be rebuilt next time.",
                stacklevel=2,
            )
        return index

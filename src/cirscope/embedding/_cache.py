"""On-disk cache of image embeddings, keyed by model identity and image content hash.

Layout: ``<root>/<model-key>/shard-<uuid>.npz``, one file per flush of an embedding run.
Each shard holds ``keys`` (content hashes), ``emb`` (float32, L2-normalised) and a JSON
``meta`` record (model key, count, dimension, checksums of ``emb`` and ``keys``). A shard is written to a
temporary file and renamed, so a crash never leaves a half-written shard under its final
name; a shard that is truncated or fails its checksum is reported, deleted and its images
embedded again. Many small shards are merged into one when they pile up. ``problems.json``
remembers the content hashes of files that failed to decode, with the reason, so a re-run
reports them again without loading the model; only failures that are properties of the file
belong there (the embedding run leaves out failures of the run itself, such as running out of
memory). A damaged ``problems.json`` is reported (:class:`CacheDamaged`) and rebuilt.

The root is, in order: the ``cache_dir`` argument, the ``CIRSCOPE_CACHE_DIR`` environment
variable, or the user cache folder from platformdirs (``.../cirscope/embeddings``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cirscope._core.atomic import atomic_write
from cirscope._core.errors import DamagedFileError

ENV_VAR = "CIRSCOPE_CACHE_DIR"
_MAX_SHARDS = 32


def default_root() -> Path:
    """The cache root: ``$CIRSCOPE_CACHE_DIR`` or the platform's user cache folder."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("cirscope")) / "embeddings"


def _checksum(arr: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(arr).tobytes(), digest_size=16).hexdigest()


def _keys_checksum(keys: np.ndarray) -> str:
    """A checksum of the content hashes, in order (swapped keys would hand out other images' vectors)."""
    return _checksum(np.asarray(keys).astype("U"))


class CacheDamaged(UserWarning):
    """A cache shard was unreadable or inconsistent and is being rebuilt."""


class EmbeddingCache:
    """Embeddings by content hash for one model.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> c = EmbeddingCache(tempfile.mkdtemp(), "toy-abc")
    >>> c.add(["h1"], np.ones((1, 4), np.float32) / 2)
    >>> sorted(c.lookup(["h1", "h2"]))
    ['h1']
    """

    def __init__(self, root: str | os.PathLike | None, model_key: str):
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", model_key)
        self.model_key = model_key
        self.folder = Path(root if root is not None else default_root()) / safe
        self._index: dict[str, tuple[Path, int]] | None = None
        self._arrays: dict[Path, np.ndarray] = {}
        self.damaged: list[str] = []

    def _shards(self) -> list[Path]:
        return sorted(self.folder.glob("shard-*.npz")) if self.folder.is_dir() else []

    def _read(self, path: Path) -> tuple[np.ndarray, np.ndarray] | None:
        try:
            with np.load(path, allow_pickle=False) as data:
                keys = data["keys"]
                emb = data["emb"]
                meta = json.loads(bytes(data["meta"]).decode())
            ok = (
                meta.get("model_key") == self.model_key
                and meta.get("count") == len(keys) == len(emb)
                and emb.ndim == 2
                and meta.get("dim") == emb.shape[1]
                and meta.get("checksum") == _checksum(emb)
                # shards written before keys were checksummed have no keys_checksum
                and meta.get("keys_checksum", _keys_checksum(keys)) == _keys_checksum(keys)
            )
            reason = None if ok else "contents do not match its own record (mismatched model or corrupted data)"
        except Exception as exc:  # a truncated zip raises BadZipFile, EOFError, ValueError, OSError...
            reason = f"unreadable ({type(exc).__name__}: {exc})"
        if reason is not None:
            warnings.warn(
                f"Embedding cache file {path.name} in {self.folder} is damaged: {reason}. It was removed "
                "and its images will be embedded again.",
                CacheDamaged,
                stacklevel=3,
            )
            self.damaged.append(path.name)
            path.unlink(missing_ok=True)
            return None
        return keys, emb

    def _load_index(self) -> dict[str, tuple[Path, int]]:
        if self._index is None:
            self._index = {}
            for path in self._shards():
                got = self._read(path)
                if got is None:
                    continue
                keys, emb = got
                self._arrays[path] = emb
                for i, k in enumerate(keys.tolist()):
                    self._index[k] = (path, i)
        return self._index

    def lookup(self, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """The cached embeddings of those hashes that are in the cache."""
        index = self._load_index()
        out = {}
        for h in hashes:
            hit = index.get(h)
            if hit is not None:
                out[h] = self._arrays[hit[0]][hit[1]]
        return out

    def add(self, hashes: Sequence[str], embeddings: np.ndarray) -> None:
        """Store embeddings (one row per hash) as a new shard, atomically."""
        if len(hashes) == 0:
            return
        embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        if embeddings.ndim != 2 or len(embeddings) != len(hashes):
            raise ValueError(f"expected ({len(hashes)}, D) embeddings, got {embeddings.shape}")
        keys = np.asarray(list(hashes), dtype=str)
        path = self._write(keys, embeddings)
        index = self._load_index()
        self._arrays[path] = embeddings
        for i, k in enumerate(keys.tolist()):
            index[k] = (path, i)
        if len(self._arrays) > _MAX_SHARDS:
            self.compact()

    def _write(self, keys: np.ndarray, emb: np.ndarray) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        meta = {"model_key": self.model_key, "count": len(keys), "dim": int(emb.shape[1]), "checksum": _checksum(emb),
                "keys_checksum": _keys_checksum(keys)}
        final = self.folder / f"shard-{uuid.uuid4().hex}.npz"
        with atomic_write(final) as fh:
            np.savez(fh, keys=keys, emb=emb, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
        return final

    def compact(self) -> None:
        """Merge all shards into one."""
        index = self._load_index()
        if not index:
            return
        keys = list(index)
        emb = np.stack([self._arrays[p][i] for p, i in index.values()])
        old = list(self._arrays)
        path = self._write(np.asarray(keys, dtype=str), emb)
        for p in old:
            p.unlink(missing_ok=True)
        self._arrays = {path: emb}
        self._index = {k: (path, i) for i, k in enumerate(keys)}

    # ------------------------------------------------------------------ images that failed
    @property
    def _problems_path(self) -> Path:
        return self.folder / "problems.json"

    def _read_problems(self) -> dict[str, str]:
        """The recorded problems; a damaged file is reported, removed and treated as empty."""
        path = self._problems_path
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:  # not UTF-8, not JSON, a folder...
            problem = f"unreadable ({type(exc).__name__}: {exc})"
        else:
            if isinstance(record, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in record.items()):
                return record
            problem = "not a mapping of content hashes to reasons"
        err = DamagedFileError(
            path, problem, "it was removed and is rebuilt by this run; the images it listed are tried again"
        )
        warnings.warn(str(err), CacheDamaged, stacklevel=3)
        self.damaged.append(path.name)
        with contextlib.suppress(OSError):  # a folder in its place stays; add_problems then says so
            path.unlink()
        return {}

    def known_problems(self, hashes: Sequence[str]) -> dict[str, str]:
        """Reasons recorded for content hashes that failed to decode before (same bytes, same failure)."""
        record = self._read_problems()
        return {h: record[h] for h in hashes if h in record}

    def add_problems(self, problems: dict[str, str]) -> None:
        """Remember content hashes whose files cannot be used, so a re-run does not load the model for them.

        Record only failures that are properties of the file (decode errors, corrupt data, too
        large, not a regular file), never those of a run (out of memory, I/O errors).
        """
        if not problems:
            return
        record = self._read_problems()
        record.update({str(k): str(v) for k, v in problems.items()})
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            with atomic_write(self._problems_path, "w") as fh:
                fh.write(json.dumps(record))
        except OSError as exc:  # e.g. a folder in its place: the run goes on without remembering
            warnings.warn(f"Could not write {self._problems_path} ({exc}).", CacheDamaged, stacklevel=2)

    def __len__(self) -> int:
        return len(self._load_index())

"""Tags on a space's images: one boolean column per tag, stored beside the space.

:class:`Tags` maps gallery rows to tag names with one boolean numpy array per tag (tagging
100,000 rows is one vectorised assignment). Tags are keyed by gallery **id** on disk, so
they survive a re-embedding or a re-ordered gallery.

Where tags are kept:

* a saved space (:meth:`Space.save`/:meth:`Space.load`): ``tags.arrow`` in the space's
  folder, rewritten atomically on every change (never inside the image folder itself,
  unless the space was saved there);
* an unsaved space: in memory, or in a sidecar file you name with :meth:`Tags.save`
  (later changes are written there too); :meth:`Space.save` writes them into the folder.

The file is Arrow IPC (``pd.read_feather`` reads it) with two columns, ``id`` and
``tag``, and a record in the schema metadata (format, version, row count, checksum): a
truncated, edited or foreign file raises :class:`~cirscope.DamagedFileError` and is never
loaded as silent garbage. Ids the gallery does not hold are kept (and written back), not lost.
"""

from __future__ import annotations

import hashlib
import json
import os
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cirscope._core.atomic import atomic_write_bytes
from cirscope._core.errors import DamagedFileError

__all__ = ["TAG_FILE", "TAG_PREFIX", "TagMixin", "Tags", "check_tag_name", "tag_column_name"]

TAG_FILE = "tags.arrow"
TAG_PREFIX = "tag:"
FORMAT = "cirscope.tags"
VERSION = 1
MAX_NAME = 200
_FIX = "Move the file aside (the space then opens without its tags) or restore it from a backup"


def check_tag_name(name: Any) -> str:
    """A tag name, stripped; empty names, control characters and names over 200 characters are refused.

    Any other text is allowed (markup and quotes included): every view shows tags as text.

    Examples
    --------
    >>> check_tag_name("  duplicate ")
    'duplicate'
    >>> check_tag_name("<b>\\"odd\\"</b> é")
    '<b>"odd"</b> é'
    >>> check_tag_name("a\\nb")
    Traceback (most recent call last):
    ValueError: A tag name cannot hold control characters (line breaks, tabs...): 'a\\nb'
    """
    if not isinstance(name, str):
        raise TypeError(f"A tag name must be a string, got {type(name).__name__}")
    text = name.strip()
    if not text:
        raise ValueError("A tag name cannot be empty")
    if any(unicodedata.category(c) == "Cc" for c in text):
        raise ValueError(f"A tag name cannot hold control characters (line breaks, tabs...): {text!r}")
    if len(text) > MAX_NAME:
        raise ValueError(f"A tag name has at most {MAX_NAME} characters, got {len(text)}")
    return text


def tag_column_name(name: str) -> str:
    """The metadata column that shows a tag: ``"tag:<name>"``.

    Examples
    --------
    >>> tag_column_name("duplicate")
    'tag:duplicate'
    """
    return TAG_PREFIX + name


def _stamp(path: Path) -> tuple[int, int, int]:
    st = path.stat()  # every atomic write makes a new inode
    return st.st_ino, st.st_mtime_ns, st.st_size


def _checksum(ids: np.ndarray, tags: np.ndarray) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update("\x00".join(ids.tolist()).encode("utf-8", "surrogatepass"))
    h.update(b"\x01")
    h.update("\x00".join(tags.tolist()).encode("utf-8", "surrogatepass"))
    return h.hexdigest()


class Tags:
    """The tags of a space's rows (one boolean array per tag), kept in memory or in a file.

    Parameters
    ----------
    ids
        The gallery ids, one per row.
    path
        The file changes are written to (``None``: memory only).

    Examples
    --------
    >>> tags = Tags(np.array(["a", "b", "c"]))
    >>> tags.add([0, 2], "keep"), tags.add(np.array([False, True, True]), "keep")
    (2, 1)
    >>> tags.rows("keep").tolist(), tags.names, tags.of([1, 2])
    ([0, 1, 2], ['keep'], [['keep'], ['keep']])
    >>> tags.remove(["b"], "keep"), tags.frame()["tag:keep"].tolist()
    (1, [True, False, True])
    """

    def __init__(self, ids: Any, path: str | os.PathLike | None = None):
        self._index = pd.Index(np.asarray(ids, dtype=object)).astype(str)  # object strings, not fixed-width
        self.ids = self._index.to_numpy(dtype=object)
        self._masks: dict[str, np.ndarray] = {}
        self._orphans = pd.DataFrame({"id": pd.Series([], dtype=str), "tag": pd.Series([], dtype=str)})
        self.path: Path | None = Path(os.path.abspath(path)) if path is not None else None
        self.version = 0  # counts changes (widgets follow it)
        self._synced: tuple[int, int, int] | None = None  # the file's (inode, mtime_ns, size) as last read or written here
        self._base: dict[str, np.ndarray] = {}  # the tags as they were then (for merging another writer's)

    # ------------------------------------------------------------------ reading
    def __len__(self) -> int:
        return len(self._masks)

    def __contains__(self, name: object) -> bool:
        return name in self._masks

    def __repr__(self) -> str:
        counts = ", ".join(f"{k!r}: {v}" for k, v in self.counts().items())
        return f"Tags({{{counts}}}, stored in {self.path or 'memory'})"

    @property
    def names(self) -> list[str]:
        """Tag names, in the order they were first used."""
        return list(self._masks)

    def counts(self) -> dict[str, int]:
        """How many rows carry each tag."""
        return {name: int(mask.sum()) for name, mask in self._masks.items()}

    def column(self, name: str) -> np.ndarray:
        """The tag as a read-only boolean array, one value per row."""
        if name not in self._masks:
            raise KeyError(f"No tag {name!r}; tags are {self.names}")
        out = self._masks[name].view()
        out.setflags(write=False)
        return out

    def rows(self, name: str) -> np.ndarray:
        """The rows carrying tag ``name`` (int64, ascending)."""
        return np.flatnonzero(self.column(name))

    def frame(self) -> pd.DataFrame:
        """One boolean column per tag, named ``"tag:<name>"`` (no columns without tags)."""
        return pd.DataFrame({tag_column_name(k): m.copy() for k, m in self._masks.items()},
                            index=pd.RangeIndex(len(self.ids)))

    def of(self, rows: Any) -> list[list[str]]:
        """The tag names of each of ``rows``."""
        idx = self.to_rows(rows)
        picked = [(name, mask[idx]) for name, mask in self._masks.items()]
        return [[name for name, hit in picked if hit[i]] for i in range(idx.size)]

    def to_frame(self) -> pd.DataFrame:
        """Long form: one ``(id, tag)`` row per tagged image (ids the gallery lacks included)."""
        parts = [pd.DataFrame({"id": self.ids[m], "tag": name}) for name, m in self._masks.items()]
        frame = pd.concat([*parts, self._orphans], ignore_index=True) if parts else self._orphans.copy()
        return frame.astype({"id": str, "tag": str})

    def find(self, ids: Any) -> np.ndarray:
        """The row of each gallery id (``-1`` where the gallery has no such id)."""
        values = np.asarray(ids, dtype=object).reshape(-1)
        if values.size == 0:
            return np.empty(0, np.int64)
        return self._index.get_indexer(pd.Index(values).astype(str)).astype(np.int64)

    # ------------------------------------------------------------------ changing
    def to_rows(self, rows: Any) -> np.ndarray:
        """Rows from row numbers, a boolean mask, gallery ids or a search result (its ``row`` column)."""
        n = len(self.ids)
        if isinstance(rows, pd.DataFrame):
            if "row" not in rows.columns:
                raise ValueError("A table of rows needs a 'row' column (as space.search returns)")
            rows = rows["row"]
        arr = np.asarray(list(rows) if isinstance(rows, (set, frozenset)) else rows)
        if arr.ndim != 1:
            arr = arr.reshape(-1) if arr.ndim == 0 else arr
            if arr.ndim != 1:
                raise TypeError(f"rows must be one-dimensional, got shape {arr.shape}")
        if arr.dtype == bool:
            if arr.shape != (n,):
                raise ValueError(f"A boolean mask needs one value per row ({n}), got {arr.size}")
            return np.flatnonzero(arr)
        if arr.dtype.kind in "USO" and arr.size:
            found = self.find(arr)
            if (found < 0).any():
                missing = arr[found < 0][:3].tolist()
                raise KeyError(f"{int((found < 0).sum())} ids are not in the gallery, e.g. {missing}")
            return found.astype(np.int64)
        if arr.size == 0:
            return np.empty(0, np.int64)
        if arr.dtype.kind not in "iu":
            raise TypeError(f"rows must be row numbers, a boolean mask or gallery ids, got dtype {arr.dtype}")
        arr = arr.astype(np.int64)
        if arr.min() < 0 or arr.max() >= n:
            raise IndexError(f"rows must lie in 0..{n - 1}; got values from {arr.min()} to {arr.max()}")
        return arr

    def add(self, rows: Any, name: str) -> int:
        """Tag ``rows`` with ``name``; returns how many rows were newly tagged."""
        name = check_tag_name(name)
        idx = self.to_rows(rows)
        mask = self._masks.get(name)
        if mask is None:
            mask = np.zeros(len(self.ids), bool)
        before = int(mask.sum())
        mask[idx] = True
        added = int(mask.sum()) - before
        if added:
            self._masks[name] = mask
            self._changed()
        return added

    def remove(self, rows: Any, name: str) -> int:
        """Take tag ``name`` off ``rows``; returns how many rows lost it (a tag left on no row goes)."""
        mask = self._masks.get(name)
        if mask is None:
            return 0
        idx = self.to_rows(rows)
        before = int(mask.sum())
        mask[idx] = False
        removed = before - int(mask.sum())
        if not mask.any():
            del self._masks[name]
        if removed:
            self._changed()
        return removed

    def drop(self, name: str) -> int:
        """Remove a tag from every row; returns how many rows had it."""
        return self.remove(np.arange(len(self.ids)), name) if name in self._masks else 0

    def _changed(self) -> None:
        self.version += 1
        if self.path is not None:
            self._merge_from_disk(self.path)
            self.write(self.path)

    def _merge_from_disk(self, path: Path) -> None:
        """Another process changed the file since we read or wrote it: apply our changes onto its tags.

        A three-way merge per tag: what the file holds, plus what we added, minus what we
        removed since our last read or write, so two notebooks tagging one space lose nothing.
        """
        if self._synced is None or not path.is_file() or _stamp(path) == self._synced:
            return
        disk = Tags.read(path, self.ids, bind=False)
        merged: dict[str, np.ndarray] = {}
        none = np.zeros(len(self.ids), bool)
        for name in dict.fromkeys([*disk.names, *self._masks, *self._base]):
            ours, base = self._masks.get(name, none), self._base.get(name, none)
            mask = (disk._masks.get(name, none) | (ours & ~base)) & ~(base & ~ours)
            if mask.any():
                merged[name] = mask
        self._masks = merged
        self._orphans = pd.concat([disk._orphans, self._orphans], ignore_index=True).drop_duplicates()

    def save(self, path: str | os.PathLike) -> Path:
        """Write the tags to ``path`` (atomically) and keep writing every later change there."""
        path = Path(os.path.abspath(path))
        if path == self.path:
            self._merge_from_disk(path)
        self.path = path
        self.write(self.path)
        return self.path

    def write(self, path: str | os.PathLike) -> None:
        """Write the tags to ``path`` atomically (Arrow IPC with a checksummed record)."""
        import pyarrow as pa

        frame = self.to_frame()
        ids, tags = frame["id"].to_numpy(dtype=object), frame["tag"].to_numpy(dtype=object)
        record = {"format": FORMAT, "version": VERSION, "rows": len(frame), "checksum": _checksum(ids, tags)}
        table = pa.table({"id": pa.array(ids, pa.string()), "tag": pa.array(tags, pa.string())})
        table = table.replace_schema_metadata({"cirscope": json.dumps(record)})
        sink = pa.BufferOutputStream()
        with pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, sink.getvalue().to_pybytes())
        if self.path is not None and Path(os.path.abspath(path)) == self.path:
            self._sync(self.path)

    def _sync(self, path: Path) -> None:
        self._synced = _stamp(path)
        self._base = {name: mask.copy() for name, mask in self._masks.items()}

    @classmethod
    def read(cls, path: str | os.PathLike, ids: Any, *, bind: bool = True) -> Tags:
        """Read a tag file for a gallery with ``ids``; a damaged file raises :class:`DamagedFileError`."""
        import pyarrow as pa

        path = Path(os.path.abspath(path))
        try:
            with pa.memory_map(str(path)) as source:
                table = pa.ipc.open_file(source).read_all()
        except FileNotFoundError:
            raise
        except (pa.ArrowInvalid, OSError, ValueError) as exc:
            raise DamagedFileError(path, f"it is not a readable tag file ({exc})", _FIX) from exc
        try:
            record = json.loads((table.schema.metadata or {}).get(b"cirscope", b"null"))
        except ValueError:
            record = None
        if not isinstance(record, dict) or record.get("format") != FORMAT:
            raise DamagedFileError(path, "it carries no cirscope tag record", _FIX)
        if not isinstance(record.get("version"), int) or record["version"] > VERSION:
            raise ValueError(f"{path} was written by a newer cirscope (tag format {record.get('version')}); "
                             "upgrade cirscope (pip install -U cirscope)")
        if table.schema.names != ["id", "tag"] or not all(pa.types.is_string(f.type) for f in table.schema):
            raise DamagedFileError(path, f"its columns are {table.schema}, not id and tag strings", _FIX)
        file_ids = table.column("id").to_numpy(zero_copy_only=False).astype(object)
        file_tags = table.column("tag").to_numpy(zero_copy_only=False).astype(object)
        if record.get("rows") != len(file_ids) or record.get("checksum") != _checksum(file_ids, file_tags):
            raise DamagedFileError(path, "its rows do not match its checksum (edited, truncated or mixed)", _FIX)
        out = cls(ids, path if bind else None)
        where = out.find(file_ids)
        known = where >= 0
        for name in pd.unique(file_tags[known]):
            name = check_tag_name(str(name))
            mask = np.zeros(len(out.ids), bool)
            mask[where[known & (file_tags == name)]] = True
            out._masks[name] = mask
        out._orphans = pd.DataFrame({"id": file_ids[~known], "tag": file_tags[~known]}).astype(str)
        if bind:
            out._sync(path)
        return out


class TagMixin:
    """What :class:`~cirscope.Space` gets from tags: ``tag``, ``untag``, ``tagged``, ``tags``, ``column``."""

    _tags: Tags | None
    folder: Path | None
    gallery: Any

    @property
    def tags(self) -> Tags:
        """The space's :class:`Tags` (written to ``tags.arrow`` in its folder when it is saved)."""
        if self._tags is None:
            path = self.folder / TAG_FILE if self.folder is not None else None
            self._tags = Tags(self.gallery.ids, path)
        return self._tags

    def tag(self, rows: Any, name: str) -> int:
        """Tag ``rows`` (row numbers, a mask, ids or a search result) with ``name``; returns how many were new.

        Examples
        --------
        >>> space.tag(space.search("a red star", k=5), "red stars")
        5
        >>> space.tagged("red stars").size, int(space.column("tag:red stars").sum())
        (5, 5)
        >>> space.untag(space.tagged("red stars"), "red stars")
        5
        """
        return self.tags.add(rows, name)

    def untag(self, rows: Any, name: str) -> int:
        """Take tag ``name`` off ``rows``; returns how many rows lost it."""
        return self.tags.remove(rows, name)

    def tagged(self, name: str) -> np.ndarray:
        """The rows carrying tag ``name``."""
        return self.tags.rows(name)

    def column(self, name: str) -> pd.Series:
        """A metadata column or a tag column (``"tag:<name>"``, boolean), one value per row."""
        if name.startswith(TAG_PREFIX) and name[len(TAG_PREFIX):] in self.tags:
            return pd.Series(self.tags.column(name[len(TAG_PREFIX):]).copy(), name=name)
        return self.gallery.column(name).reset_index(drop=True)

    def _read_tags(self) -> None:
        """Read ``tags.arrow`` from the space's folder, when there is one (a damaged file raises)."""
        if self.folder is not None and (self.folder / TAG_FILE).is_file():
            self._tags = Tags.read(self.folder / TAG_FILE, self.gallery.ids)

    def _save_tags(self, folder: Path) -> None:
        """After a save into ``folder``: the tags go there too (a stale file of another space goes)."""
        tags = self._tags
        if tags is not None and (len(tags) or len(tags._orphans)):
            tags.save(folder / TAG_FILE)
        else:
            (folder / TAG_FILE).unlink(missing_ok=True)
            if tags is not None:
                tags.path = folder / TAG_FILE

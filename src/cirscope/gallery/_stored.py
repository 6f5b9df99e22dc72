"""The saved gallery, ``gallery.parquet``: metadata plus one image path or image bytes per row.

Paths inside the gallery's folder are stored relative to it (format 2), so the folder and
its images can move together; reading checks the file and says what is damaged.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from cirscope.gallery import _decode as _images
from cirscope.gallery._decode import ImageProblem

GALLERY_FILE = "gallery.parquet"
GALLERY_FORMAT = 2  # 2: image paths relative to the gallery's folder when inside it, else absolute
#: The fix named when ``gallery.parquet`` is damaged.
RESAVE = "Save the gallery (or space) again from its images."


def write_gallery(
    folder: str | os.PathLike, metadata: pd.DataFrame, sources: Sequence[Any], *, root: str | os.PathLike | None = None
) -> None:
    """Write ``gallery.parquet`` into ``folder`` atomically (see :meth:`Gallery.save <cirscope.Gallery.save>`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from cirscope._core.atomic import atomic_write

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    base = os.path.abspath(root if root is not None else folder)
    paths: list[str | None] = []
    blobs: list[bytes | None] = []
    for src in sources:
        if isinstance(src, (str, Path)):
            paths.append(stored_path(src, base))
            blobs.append(None)
        else:
            data = None
            try:
                data = _images.read_bytes(src)
            except ImageProblem:
                data = None
            if data is None:
                try:
                    data = _images.encode_png(_images.decode(src))
                except ImageProblem:
                    data = b""
            paths.append(None)
            blobs.append(data)
    table = pa.Table.from_pandas(metadata, preserve_index=False)
    table = table.append_column("__source_path__", pa.array(paths, pa.string()))
    table = table.append_column("__source_bytes__", pa.array(blobs, pa.binary()))
    meta = dict(table.schema.metadata or {})
    meta[b"cirscope"] = json.dumps({"kind": "gallery", "version": GALLERY_FORMAT}).encode()
    table = table.replace_schema_metadata(meta)
    with atomic_write(folder / GALLERY_FILE) as fh:
        pq.write_table(table, fh)


def read_gallery(folder: str | os.PathLike) -> tuple[pd.DataFrame, Sequence[Any]]:
    """The metadata and sources stored in ``folder/gallery.parquet``.

    Raises :class:`~cirscope._core.errors.DamagedFileError` naming the file when it is
    unreadable or not a cirscope gallery.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from cirscope._core.errors import DamagedFileError

    path = Path(folder) / GALLERY_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: pass a folder written by Gallery.save or Space.save")
    fix = RESAVE
    try:
        table = pq.read_table(path)
    except Exception as exc:
        raise DamagedFileError(path, f"it cannot be read as Parquet ({type(exc).__name__}: {exc})", fix) from exc
    try:
        info = json.loads((table.schema.metadata or {}).get(b"cirscope", b"{}"))
    except ValueError:
        info = {}
    if not isinstance(info, dict) or info.get("kind") != "gallery":
        raise DamagedFileError(path, "it carries no cirscope gallery description", fix)
    version = info.get("version")
    if version not in (1, GALLERY_FORMAT):
        raise DamagedFileError(path, f"its gallery format version {version!r} is unknown", fix)
    missing = [c for c in ("id", "__source_path__", "__source_bytes__") if c not in table.column_names]
    if missing:
        raise DamagedFileError(path, f"columns {missing} are missing", fix)
    path_column = table.column("__source_path__")
    blob_column = table.column("__source_bytes__")
    if not (pa.types.is_string(path_column.type) and pa.types.is_binary(blob_column.type)):
        raise DamagedFileError(path, f"its source columns have types {path_column.type} and "
                               f"{blob_column.type}, not string and binary", fix)
    if version == GALLERY_FORMAT:
        path_column = resolve_stored_paths(path_column, os.path.abspath(folder))
    if pc.any(pc.and_(pc.is_null(path_column), pc.is_null(blob_column))).as_py():
        raise DamagedFileError(path, "some rows have neither an image path nor image bytes", fix)
    if blob_column.null_count == len(path_column):  # all images are files: keep them in Arrow
        sources = PathColumn(path_column)
    else:
        blobs = blob_column.to_pylist()
        sources = [p if p is not None else b for p, b in zip(path_column.to_pylist(), blobs, strict=False)]
    df = table.drop_columns(["__source_path__", "__source_bytes__"]).to_pandas()
    del table, blob_column, path_column
    return df, sources


class PathColumn(Sequence):
    """Image paths held in an Arrow string column, read one row at a time (a gallery reopened from disk).

    At a million rows a Python list of paths costs ~100 MB of ``str`` objects; the Arrow column
    costs its bytes. Indexing returns a ``str`` as the list did.
    """

    def __init__(self, column: Any):
        self._column = column.combine_chunks() if hasattr(column, "combine_chunks") else column

    def __len__(self) -> int:
        return len(self._column)

    def __getitem__(self, row: Any) -> Any:
        if isinstance(row, slice):
            return self._column[row].to_pylist()
        return self._column[int(row) if int(row) >= 0 else int(row) + len(self)].as_py()

    def __iter__(self):
        for start in range(0, len(self._column), 65_536):
            yield from self._column[start : start + 65_536].to_pylist()



def resolve_stored_paths(column: Any, base: str) -> Any:
    """Stored paths (an Arrow column) with the relative ones joined to ``base``, vectorised."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if os.name != "posix":  # drive letters and UNC paths: ask os.path row by row
        paths = column.to_pylist()
        return pa.chunked_array([pa.array(
            [p if p is None or os.path.isabs(p) or _images.is_url(p) else os.path.join(base, p) for p in paths],
            pa.string())])
    url = pc.match_substring_regex(column, "^https?://")
    relative = pc.fill_null(pc.and_(pc.invert(pc.starts_with(column, "/")), pc.invert(url)), False)
    if not pc.any(relative).as_py():
        return column
    joined = pc.binary_join_element_wise(base.rstrip("/"), column, "/")
    return pc.if_else(relative, joined, column)


def stored_path(source: str | os.PathLike, base: str) -> str:
    """``source`` relative to ``base`` (POSIX separators) when inside it, else absolute; URLs as they are."""
    if _images.is_url(source):
        return str(source)
    full = os.path.abspath(source)
    try:
        rel = os.path.relpath(full, base)
    except ValueError:  # another drive
        return full
    if rel == os.pardir or rel.startswith(os.pardir + os.sep) or os.path.isabs(rel):
        return full
    return Path(rel).as_posix()

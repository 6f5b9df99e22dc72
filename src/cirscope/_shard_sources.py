"""Where images come from in a sharded run: plan the shards of a source, then read one shard.

Sources:

* a folder of images (recursively; ids are paths relative to the folder, as in
  :meth:`Gallery.from_folder`), a single image file, or a glob of image files;
* a Parquet or CSV table with a column of encoded bytes, file paths (relative ones are
  resolved against the table's folder) or http(s) URLs, LAION-style; a struct column
  ``{bytes, path}`` (Hugging Face's image feature) works too;
* WebDataset tar shards (``*.tar``): the members sharing a key are one sample, and its
  first image member is the image.

Planning reads no image (a table's row count comes from its Parquet footer), so it is
cheap on the driver; each planned shard is a small JSON-able dict that a worker turns into
``(ids, sources, descriptions)`` with :func:`read_task`. A shard's ``key`` changes when
its input changes, so a rerun recomputes exactly the shards whose input moved.
"""

from __future__ import annotations

import glob as globlib
import hashlib
import json
import os
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cirscope._images import IMAGE_EXTENSIONS

TABLE_SUFFIXES = (".parquet", ".csv", ".tsv")
IMAGE_COLUMNS = ("image", "jpg", "png", "bytes", "image_bytes", "img", "url", "URL", "image_url", "path",
                 "filepath", "file", "file_name", "filename")
ID_COLUMNS = ("id", "key", "__key__", "uid", "sample_id")
DEFAULT_SHARD_SIZE = 10_000


def _key(*parts: Any) -> str:
    return hashlib.blake2b(json.dumps(parts, default=str).encode(), digest_size=12).hexdigest()


def _stat_key(path: Path) -> list[Any]:
    st = path.stat()
    return [str(path.resolve()), st.st_size, st.st_mtime_ns]


def _list_images(root: Path) -> list[Path]:
    return sorted(
        p for p in root.rglob("*")
        if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()
    )


def _expand(source: str | os.PathLike) -> tuple[list[Path], Path | None, list[Path], list[Path]]:
    """(image files, their id root, tables, tar shards) named by one source."""
    text = str(source)
    path = Path(text).expanduser()
    if path.is_dir():
        return _list_images(path), path, [], []
    if any(ch in text for ch in "*?["):
        matched = sorted(Path(p) for p in globlib.glob(str(path), recursive=True))
        matched = [p for p in matched if p.is_file() and not p.name.startswith(".")]
        root = Path(text.split("*")[0].split("?")[0].split("[")[0])
        root = root if root.is_dir() else root.parent
    elif path.is_file():
        matched, root = [path], path.parent
    else:
        raise FileNotFoundError(f"{text} not found: pass a folder, an image/Parquet/CSV/tar file or a glob.")
    images = [p for p in matched if p.suffix.lower() in IMAGE_EXTENSIONS]
    tables = [p for p in matched if p.suffix.lower() in TABLE_SUFFIXES]
    tars = [p for p in matched if p.suffix.lower() == ".tar"]
    if not (images or tables or tars):
        raise ValueError(
            f"{text} names no images, tables (.parquet, .csv) or WebDataset shards (.tar); image extensions: "
            f"{', '.join(sorted(IMAGE_EXTENSIONS))}."
        )
    return images, root, tables, tars


def _table_rows(path: Path) -> int:
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(path).metadata.num_rows
        except Exception as exc:
            raise ValueError(f"{path} is not a readable Parquet file ({type(exc).__name__}: {exc})") from None
    return len(_read_csv(path))


def _read_csv(path: Path):
    import pandas as pd

    return pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",", dtype=str, keep_default_na=False)


def plan_shards(
    source: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    shard_size: int = DEFAULT_SHARD_SIZE,
    image_column: str | None = None,
    id_column: str | None = None,
) -> list[dict[str, Any]]:
    """The shards of ``source`` (one or several folders, files or globs), in a stable order.

    Examples
    --------
    >>> plan_shards("photos/", shard_size=1000)[0]["kind"]  # doctest: +SKIP
    'files'
    """
    if shard_size < 1:
        raise ValueError(f"shard_size must be at least 1, got {shard_size}")
    sources = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    if not sources:
        raise ValueError("no source given")
    tasks: list[dict[str, Any]] = []

    def add(task: dict[str, Any]) -> None:
        task["name"] = f"shard-{len(tasks):05d}"
        tasks.append(task)

    for src in sources:
        images, root, tables, tars = _expand(src)
        if images:
            assert root is not None
            ids = [p.relative_to(root).as_posix() if p.is_relative_to(root) else str(p) for p in images]
            for i in range(0, len(images), shard_size):
                chunk_ids, chunk_paths = ids[i : i + shard_size], [str(p) for p in images[i : i + shard_size]]
                add({"kind": "files", "ids": chunk_ids, "paths": chunk_paths, "key": _key("files", chunk_ids, chunk_paths)})
        for table in tables:
            n = _table_rows(table)
            for start in range(0, n, shard_size):
                stop = min(n, start + shard_size)
                add({"kind": "table", "path": str(table), "start": start, "stop": stop, "image_column": image_column,
                     "id_column": id_column, "key": _key("table", _stat_key(table), start, stop, image_column, id_column)})
        for tar in tars:
            add({"kind": "tar", "path": str(tar), "key": _key("tar", _stat_key(tar))})
    if not tasks:
        raise ValueError(f"No images found in {sources}.")
    return tasks


# ---------------------------------------------------------------------- reading one shard
Item = tuple[str, Any, str]  # id, what the decoder reads (path, URL, bytes, dict), description
Problem = tuple[str, str, str]  # id, description, reason


def _pick(columns: Sequence[str], wanted: str | None, candidates: Sequence[str], what: str, path: Path) -> str | None:
    if wanted is not None:
        if wanted not in columns:
            raise ValueError(f"{path} has no column {wanted!r} (columns: {list(columns)})")
        return wanted
    lowered = {c.lower(): c for c in columns}
    for cand in candidates:
        if cand.lower() in lowered:
            return lowered[cand.lower()]
    if what == "image":
        raise ValueError(
            f"{path}: no image column found among {list(columns)}; name it with image_column=... "
            f"(--image-column): a column of bytes, paths or URLs."
        )
    return None


def _read_table_slice(task: dict[str, Any]) -> tuple[list[Item], list[Problem]]:
    path = Path(task["path"])
    start, stop = int(task["start"]), int(task["stop"])
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(path)
        names = pf.schema_arrow.names
        image_col = _pick(names, task.get("image_column"), IMAGE_COLUMNS, "image", path)
        id_col = _pick(names, task.get("id_column"), ID_COLUMNS, "id", path)
        columns = [c for c in dict.fromkeys([image_col, id_col]) if c is not None]
        # read only the row groups that overlap [start, stop)
        groups, offset, first = [], 0, None
        for g in range(pf.num_row_groups):
            rows = pf.metadata.row_group(g).num_rows
            if offset + rows > start and offset < stop:
                groups.append(g)
                first = offset if first is None else first
            offset += rows
        table = pf.read_row_groups(groups, columns=columns).slice(start - (first or 0), stop - start)
        images = table.column(image_col).to_pylist()
        ids = table.column(id_col).to_pylist() if id_col else None
    else:
        df = _read_csv(path)
        image_col = _pick(list(df.columns), task.get("image_column"), IMAGE_COLUMNS, "image", path)
        id_col = _pick(list(df.columns), task.get("id_column"), ID_COLUMNS, "id", path)
        images = df[image_col].iloc[start:stop].tolist()
        ids = df[id_col].iloc[start:stop].tolist() if id_col else None
    items: list[Item] = []
    problems: list[Problem] = []
    for k, value in enumerate(images):
        row = start + k
        item_id = str(ids[k]) if ids is not None and ids[k] is not None else f"{path.stem}:{row}"
        where = f"{path.name}#{row}"
        if value is None or (isinstance(value, (str, bytes)) and len(value) == 0):
            problems.append((item_id, where, "empty image cell"))
        elif isinstance(value, (bytes, bytearray)):
            items.append((item_id, bytes(value), where))
        elif isinstance(value, dict):
            described = str(value.get("path") or where)
            items.append((item_id, value, described))
        else:
            text = str(value)
            if not text.startswith(("http://", "https://")) and not os.path.isabs(text):
                text = str(path.parent / text)
            items.append((item_id, text, text))
    return items, problems


def _read_tar(task: dict[str, Any]) -> tuple[list[Item], list[Problem]]:
    path = Path(task["path"])
    samples: dict[str, tuple[str, bytes | None, str | None]] = {}
    problems: list[Problem] = []
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                folder, _, base = member.name.rpartition("/")
                stem, dot, ext = base.partition(".")
                if not dot or stem.startswith("."):
                    continue
                key = f"{folder}/{stem}" if folder else stem
                if f".{ext.lower()}" not in IMAGE_EXTENSIONS or key in samples:
                    continue
                try:
                    fh = tar.extractfile(member)
                    data = fh.read() if fh is not None else None
                    samples[key] = (member.name, data, None if data is not None else "unreadable tar member")
                except (OSError, tarfile.TarError) as exc:
                    samples[key] = (member.name, None, f"unreadable tar member ({exc})")
    except (OSError, tarfile.TarError, EOFError) as exc:  # a truncated tar: keep the members read so far
        problems.append((f"{path.name}", str(path), f"tar shard damaged after {len(samples)} samples ({exc})"))
    items: list[Item] = []
    for key, (name, data, reason) in samples.items():
        where = f"{path.name}/{name}"
        if data is None:
            problems.append((key, where, reason or "unreadable tar member"))
        else:
            items.append((key, data, where))
    return items, problems


def read_task(task: dict[str, Any]) -> tuple[list[Item], list[Problem]]:
    """The items of one planned shard, and the problems found while reading it (never raises for one bad item)."""
    kind = task["kind"]
    if kind == "files":
        return [(i, p, p) for i, p in zip(task["ids"], task["paths"], strict=True)], []
    if kind == "table":
        return _read_table_slice(task)
    if kind == "tar":
        return _read_tar(task)
    raise ValueError(f"unknown shard kind {kind!r}")


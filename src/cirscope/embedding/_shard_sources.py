"""Where images come from in a sharded run: plan the shards of a source (reading one: ``_shard_read``).

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
``(ids, sources, descriptions)`` with :func:`cirscope.embedding._shard_read.read_task`. A shard's ``key`` changes when
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

from cirscope.gallery._decode import IMAGE_EXTENSIONS

TABLE_SUFFIXES = (".parquet", ".csv", ".tsv")
IMAGE_COLUMNS = ("image", "jpg", "png", "bytes", "image_bytes", "img", "url", "URL", "image_url", "path",
                 "filepath", "file", "file_name", "filename")
ID_COLUMNS = ("id", "key", "__key__", "uid", "sample_id")
DEFAULT_SHARD_SIZE = 10_000


def _key(*parts: Any) -> str:
    return hashlib.blake2b(json.dumps(parts, default=str).encode(), digest_size=12).hexdigest()


def _abs(path: str | os.PathLike) -> Path:
    """An absolute path (links kept, as the user named them), so shards open from any directory or node."""
    return Path(os.path.abspath(os.path.expanduser(os.fspath(path))))


def _stat_key(path: Path) -> list[Any]:
    st = path.stat()
    return [str(path), st.st_size, st.st_mtime_ns]


def _stamp(path: Path) -> list[int] | None:
    """``[st_size, st_mtime_ns]`` of a file (following links); ``None`` when it cannot be stat-ed."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _list_images(root: Path) -> list[Path]:
    """The image files under ``root``, listed as :meth:`Gallery.from_folder` lists them.

    Hidden files and folders are skipped; special files (pipes, devices, dangling links)
    are kept, so that reading them reports a problem instead of dropping them silently.
    """
    from cirscope.gallery._table import _list_files

    return sorted(p for p in _list_files(root, True) if p.suffix.lower() in IMAGE_EXTENSIONS)


def _expand(source: str | os.PathLike) -> tuple[list[Path], Path | None, list[Path], list[Path]]:
    """(image files, their id root, tables, tar shards) named by one source, all absolute."""
    text = os.path.expanduser(str(source))
    path = _abs(text)
    if path.is_dir():
        return _list_images(path), path, [], []
    if any(ch in text for ch in "*?["):
        matched = sorted(_abs(p) for p in globlib.glob(text, recursive=True))
        matched = [p for p in matched if not p.is_dir() and not p.name.startswith(".")]
        root = _abs(text.split("*")[0].split("?")[0].split("[")[0] or ".")
        root = root if root.is_dir() else root.parent
    elif path.is_file() or path.is_symlink() or path.exists():
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


def _read_csv(path: Path):
    import pandas as pd

    return pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",", dtype=str, keep_default_na=False)


def _stage_csv(path: Path, staging: Path) -> Path:
    """A Parquet copy of a CSV/TSV table (all columns text), parsed once and reused while the CSV is unchanged.

    Shards then read their row ranges from it like any Parquet table: O(rows) in all, not
    O(rows x shards).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from cirscope._core.atomic import atomic_write

    staged = staging / f"{path.stem}-{_key(_stat_key(path))}.parquet"
    if not staged.is_file():
        try:
            table = pa.Table.from_pandas(_read_csv(path), preserve_index=False)
        except Exception as exc:
            raise ValueError(f"{path} is not a readable CSV table ({type(exc).__name__}: {exc})") from None
        staging.mkdir(parents=True, exist_ok=True)
        with atomic_write(staged) as fh:
            pq.write_table(table, fh)
    return staged


def _table_labels(tables: list[Path]) -> dict[Path, str]:
    """The prefix of a table's default ids (``label:row``): its stem, or its path when stems collide."""
    stems = [t.stem for t in tables]
    if len(set(stems)) == len(stems):
        return dict(zip(tables, stems, strict=True))
    common = Path(os.path.commonpath([str(t.parent) for t in tables]))
    return {t: t.relative_to(common).as_posix() for t in tables}


def _plan_table(path: Path, label: str, image_column: str | None, id_column: str | None,
                staging: Path) -> tuple[dict[str, Any], Any]:
    """The columns, row count and ids of one table (ids read at planning to check that they are unique)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    readable = path if path.suffix.lower() == ".parquet" else _stage_csv(path, staging)
    try:
        pf = pq.ParquetFile(readable)
        names = pf.schema_arrow.names
        n = pf.metadata.num_rows
    except Exception as exc:
        raise ValueError(f"{path} is not a readable Parquet file ({type(exc).__name__}: {exc})") from None
    try:
        image_col = pick_column(names, image_column, IMAGE_COLUMNS, "image", path)
    except ValueError:  # reported by the table's shards, which then fail alone (the other sources go on)
        image_col = image_column
    id_col = pick_column(names, id_column, ID_COLUMNS, "id", path)
    rows = np.arange(n).astype(str).astype(object)
    ids = np.array([f"{label}:"] * n, dtype=object) + rows
    if id_col is not None:
        col = pq.read_table(readable, columns=[id_col]).column(id_col).cast(pa.string())
        values = col.to_numpy(zero_copy_only=False).astype(object)
        given = ~col.is_null().to_numpy(zero_copy_only=False)
        ids[given] = values[given]
    info = {"path": str(readable), "origin": str(path), "label": label, "image_column": image_col,
            "id_column": id_col, "rows": n}
    return info, ids


def tar_sample_key(name: str) -> str | None:
    """The WebDataset key of an image member (``folder/stem``), ``None`` for other members."""
    folder, _, base = name.rpartition("/")
    stem, dot, ext = base.partition(".")
    if not dot or stem.startswith(".") or f".{ext.lower()}" not in IMAGE_EXTENSIONS:
        return None
    return f"{folder}/{stem}" if folder else stem


def _tar_keys(path: Path) -> list[str]:
    """The sample keys of a tar shard, from its member headers (no image is read)."""
    keys: dict[str, None] = {}
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                key = tar_sample_key(member.name) if member.isfile() else None
                if key is not None:
                    keys[key] = None
    except (OSError, tarfile.TarError, EOFError):
        pass  # a damaged tar: its worker reports it
    return list(keys)


def _check_unique(id_parts: list[Any], where: list[str]) -> None:
    """Raise a clear error, with examples, when an id occurs twice across the planned shards."""
    import numpy as np
    import pandas as pd

    if not id_parts:
        return
    ids = pd.Series(np.concatenate([np.asarray(p, dtype=object) for p in id_parts]), dtype=object)
    dup = ids.duplicated(keep=False)
    if not dup.any():
        return
    origin = np.repeat(np.array(where, dtype=object), [len(p) for p in id_parts])
    shown = pd.DataFrame({"id": ids[dup].to_numpy(), "where": origin[dup.to_numpy()]})
    examples = "; ".join(
        f"{item!r} in {', '.join(dict.fromkeys(group['where']))}"
        for item, group in list(shown.groupby("id", sort=False))[:3]
    )
    raise ValueError(
        f"{shown['id'].nunique()} ids occur more than once (e.g. {examples}); every embedded image needs its own "
        "id. Fix: for a table, pass id_column= (--id-column) naming a column of unique values, or drop the "
        "repeated rows; for WebDataset shards, give every sample its own key; for folders, name each folder "
        "once (images in several folders get ids relative to their common parent)."
    )


def plan_shards(
    source: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    shard_size: int = DEFAULT_SHARD_SIZE,
    image_column: str | None = None,
    id_column: str | None = None,
    max_file_bytes: int | None = None,
    staging: str | os.PathLike | None = None,
) -> list[dict[str, Any]]:
    """The shards of ``source`` (one or several folders, files or globs), in a stable order.

    Paths are absolute, so the shards (and their ``source`` column) work from any directory
    and on any node that sees the same storage. A file's size and modification time are part
    of its shard's ``key``, so replacing an image under the same name recomputes its shard.
    Ids are checked to be unique here, before anything is embedded: images from several
    folders get ids relative to the folders' common parent; repeated id-column values or
    tar keys raise ``ValueError`` with examples.

    Parameters
    ----------
    staging
        Where CSV/TSV tables are converted (once) to Parquet for the workers to read;
        :func:`cirscope.embed` uses a folder inside its output. Default: a temporary folder.
    max_file_bytes
        Largest image file or tar member read (default :data:`cirscope.gallery._decode.MAX_FILE_BYTES`).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> photos = pathlib.Path(tempfile.mkdtemp())
    >>> for i in range(3):
    ...     gallery.load_image(i).save(photos / f"{i}.png")
    >>> [(task["kind"], task["ids"]) for task in plan_shards(photos, shard_size=2)]
    [('files', ['0.png', '1.png']), ('files', ['2.png'])]
    """
    if shard_size < 1:
        raise ValueError(f"shard_size must be at least 1, got {shard_size}")
    if max_file_bytes is not None and max_file_bytes <= 0:
        raise ValueError(f"max_file_bytes must be positive, got {max_file_bytes}")
    sources = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    if not sources:
        raise ValueError("no source given")
    expanded = [_expand(src) for src in sources]
    roots = [root for images, root, _, _ in expanded if images and root is not None]
    common = Path(os.path.commonpath([str(r) for r in roots])) if len(roots) > 1 else None
    all_tables = [t for _, _, tables, _ in expanded for t in tables]
    labels = _table_labels(list(dict.fromkeys(all_tables)))
    staging_dir = Path(staging) if staging is not None else None
    tasks: list[dict[str, Any]] = []
    id_parts: list[Any] = []
    where: list[str] = []

    def add(task: dict[str, Any], ids: Any) -> None:
        task["name"] = f"shard-{len(tasks):05d}"
        task["max_file_bytes"] = max_file_bytes
        tasks.append(task)
        id_parts.append(ids)
        where.append(task.get("origin") or task.get("path") or task["name"])

    for images, root, tables, tars in expanded:
        if images:
            assert root is not None
            base = common or root
            ids = [p.relative_to(base).as_posix() if p.is_relative_to(base) else str(p) for p in images]
            for i in range(0, len(images), shard_size):
                chunk_ids, chunk = ids[i : i + shard_size], images[i : i + shard_size]
                paths = [str(p) for p in chunk]
                stamps = [_stamp(p) for p in chunk]
                add({"kind": "files", "ids": chunk_ids, "paths": paths, "origin": str(root),
                     "key": _key("files", chunk_ids, paths, stamps, max_file_bytes)}, chunk_ids)
        for table in tables:
            if staging_dir is None:
                import tempfile

                staging_dir = Path(tempfile.mkdtemp(prefix="cirscope-tables-"))
            info, ids = _plan_table(table, labels[table], image_column, id_column, staging_dir)
            stat = _stat_key(table)
            for start in range(0, info["rows"], shard_size):
                stop = min(info["rows"], start + shard_size)
                add({"kind": "table", "path": info["path"], "origin": info["origin"], "label": info["label"],
                     "start": start, "stop": stop, "image_column": info["image_column"],
                     "id_column": info["id_column"],
                     "key": _key("table", stat, start, stop, info["image_column"], info["id_column"],
                                 info["label"], max_file_bytes)}, ids[start:stop])
        for tar in tars:
            add({"kind": "tar", "path": str(tar), "key": _key("tar", _stat_key(tar), max_file_bytes)},
                _tar_keys(tar))
    if not tasks:
        raise ValueError(f"No images found in {sources}.")
    _check_unique(id_parts, where)
    return tasks


def pick_column(columns: Sequence[str], wanted: str | None, candidates: Sequence[str], what: str, path: Path) -> str | None:
    """The column named ``wanted``, else the first of ``candidates`` present (case-insensitive)."""
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

"""Read one planned shard of a sharded run: its items (id, what to decode, description) and problems.

Runs in the worker that embeds the shard; the shards are planned on the driver by
:func:`cirscope.embedding._shard_sources.plan_shards`.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path
from typing import Any

from cirscope.embedding._shard_sources import ID_COLUMNS, IMAGE_COLUMNS, pick_column, tar_sample_key
from cirscope.gallery._decode import MAX_FILE_BYTES, format_bytes

Item = tuple[str, Any, str]  # id, what the decoder reads (path, URL, bytes, dict), description
Problem = tuple[str, str, str]  # id, description, reason


def _limit(task: dict[str, Any]) -> int:
    cap = task.get("max_file_bytes")
    return MAX_FILE_BYTES if cap is None else int(cap)


def _too_large(size: int, cap: int) -> str:
    return (f"file too large ({format_bytes(size)}; the limit is {format_bytes(cap)}, raise it with "
            "max_file_bytes= or --max-file-mb)")


def _read_table_slice(task: dict[str, Any]) -> tuple[list[Item], list[Problem]]:
    """Rows ``[start, stop)`` of a planned table (a Parquet file; CSVs were converted once at planning)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(task["path"])
    origin = Path(task.get("origin") or path)
    label = task.get("label") or origin.stem
    start, stop = int(task["start"]), int(task["stop"])
    cap = _limit(task)
    pf = pq.ParquetFile(path)
    names = pf.schema_arrow.names
    image_col = pick_column(names, task.get("image_column"), IMAGE_COLUMNS, "image", origin)
    id_col = pick_column(names, task.get("id_column"), ID_COLUMNS, "id", origin)
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
    ids = table.column(id_col).cast(pa.string()).to_pylist() if id_col else None
    items: list[Item] = []
    problems: list[Problem] = []
    for k, value in enumerate(images):
        row = start + k
        item_id = str(ids[k]) if ids is not None and ids[k] is not None else f"{label}:{row}"
        where = f"{origin.name}#{row}"
        if value is None or (isinstance(value, (str, bytes)) and len(value) == 0):
            problems.append((item_id, where, "empty image cell"))
        elif isinstance(value, (bytes, bytearray)):
            if len(value) > cap:
                problems.append((item_id, where, _too_large(len(value), cap)))
            else:
                items.append((item_id, bytes(value), where))
        elif isinstance(value, dict):
            described = str(value.get("path") or where)
            items.append((item_id, value, described))
        else:
            text = str(value)
            if not text.startswith(("http://", "https://")) and not os.path.isabs(text):
                text = str(origin.parent / text)
            items.append((item_id, text, text))
    return items, problems


def _read_tar(task: dict[str, Any]) -> tuple[list[Item], list[Problem]]:
    path = Path(task["path"])
    cap = _limit(task)
    samples: dict[str, tuple[str, bytes | None, str | None]] = {}
    problems: list[Problem] = []
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                key = tar_sample_key(member.name) if member.isfile() else None
                if key is None or key in samples:
                    continue
                if member.size > cap:  # never read: a huge member cannot exhaust the worker's memory
                    samples[key] = (member.name, None, _too_large(member.size, cap))
                    continue
                try:
                    fh = tar.extractfile(member)
                    data = fh.read(cap + 1) if fh is not None else None
                    if data is not None and len(data) > cap:
                        samples[key] = (member.name, None, _too_large(len(data), cap))
                    else:
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


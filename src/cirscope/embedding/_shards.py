"""The on-disk layout of an embedding run: Parquet shards, a manifest and a problems table.

A run writes into one folder::

    OUT/
      manifest.json                 format, model identity, dim, one entry per finished shard
      shard-00000.parquet           id (string), source (string),
      shard-00001.parquet           embedding (fixed_size_list<float32>[dim]), model (string)
      shard-00000.problems.parquet  id, source, reason of the items skipped in that shard
      problems.parquet              all problems of the run (rewritten at the end of a run)
      .cirscope-cache/              embeddings-<digest>.npy: the shards as one matrix (see below)
      .cirscope-tables/             CSV sources converted once to Parquet, for the workers to read

Every file is written under a unique temporary name, fsynced and renamed into place
(:mod:`cirscope._core.atomic`), so a killed writer or a power loss leaves either the old file or
the new one, never half of one. The manifest lists
each shard with its row count, size and BLAKE2b checksum; a shard missing from it counts as
unfinished (a rerun embeds it again). Shards of different models never mix: the manifest
names the model (weights fingerprint, precision, preprocessing) and a run with another
model refuses the folder.

Reading: Parquet pages are compressed and encoded, so they cannot be memory-mapped. On
first open the shards are checked against their checksums and concatenated into one
``.npy`` matrix beside them (named by a digest of the manifest, so a changed run never
reuses a stale matrix), which every later open memory-maps with ``np.load(mmap_mode="r")``:
one contiguous array, as the neighbour index and the map expect, paged in on demand. (Arrow
IPC files can be memory-mapped too, but only batch by batch: the index would still need one
contiguous copy.) When the folder is read-only the matrix is assembled in memory instead.
"""

from __future__ import annotations

import glob as globlib
import hashlib
import json
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cirscope._core.atomic import atomic_write as _atomic_open
from cirscope._core.errors import DamagedFileError
from cirscope._core.hashing import read_rows, sample_hash, sample_rows

FORMAT = "cirscope.shards"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
PROBLEMS = "problems.parquet"
CACHE_DIR = ".cirscope-cache"
STAGING_DIR = ".cirscope-tables"
PROBLEM_COLUMNS = ["id", "source", "reason"]


class ShardError(DamagedFileError):
    """A damaged shard, manifest or problems file: ``(path, problem, fix)`` like :class:`DamagedFileError`."""


class MixedModelsError(ValueError):
    """Shards of different models were to be mixed (in a folder or a glob); the message says what to do."""


# ---------------------------------------------------------------------- writing
def atomic_write(path: Path, write: Callable[[Any], None]) -> None:
    """Call ``write(fh)`` on a binary file handle that :func:`cirscope._core.atomic.atomic_write` puts in place.

    The bytes are fsynced before the rename, so a power loss leaves the old file or the new one.
    """
    with _atomic_open(path, "wb") as fh:
        write(fh)


def file_checksum(path: str | os.PathLike) -> str:
    """BLAKE2b (128 bits) of a file's bytes, as hex."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def read_problems(path: str | os.PathLike) -> pd.DataFrame:
    """A problems table written by :func:`write_problems`; a damaged one raises :class:`ShardError`."""
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a truncated or foreign file
        raise ShardError(path, f"it is not a readable problems table ({type(exc).__name__}: {exc})",
                         "Delete it and run the embedding again (finished shards are kept).") from None
    if list(df.columns) != PROBLEM_COLUMNS:
        raise ShardError(path, f"its columns are {list(df.columns)}, not {PROBLEM_COLUMNS}",
                         "Delete it and run the embedding again (finished shards are kept).")
    return df.astype(str)


def write_problems(path: str | os.PathLike, problems: pd.DataFrame) -> None:
    """Write a problems table (id, source, reason; all text) atomically."""
    df = pd.DataFrame(problems, columns=PROBLEM_COLUMNS).astype(str)
    atomic_write(Path(path), lambda fh: df.to_parquet(fh, index=False))


# ---------------------------------------------------------------------- manifest
def new_manifest(model: dict[str, Any], dim: int | None) -> dict[str, Any]:
    """An empty manifest for ``model`` (its identity, with a ``key`` that changes with weights and preprocessing)."""
    return {"format": FORMAT, "version": FORMAT_VERSION, "model": dict(model), "dim": dim, "shards": {},
            "failed": {}}


def save_manifest(folder: str | os.PathLike, manifest: dict[str, Any]) -> None:
    """Write ``manifest.json`` atomically (unique temporary name, then rename)."""
    text = json.dumps(manifest, indent=1, sort_keys=True)
    atomic_write(Path(folder) / MANIFEST, lambda fh: fh.write(text.encode()))


def load_manifest(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The manifest of a shard folder, ``None`` when there is none; a damaged one raises :class:`ShardError`."""
    path = Path(folder) / MANIFEST
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ShardError(path, f"it is not readable JSON ({exc})",
                         "Embed again into a new folder (or delete the folder to start over).") from None
    ok = (
        isinstance(manifest, dict)
        and manifest.get("format") == FORMAT
        and isinstance(manifest.get("shards"), dict)
        and isinstance(manifest.get("model"), dict)
    )
    if not ok:
        raise ShardError(path, f"it is not a cirscope shard manifest (format {FORMAT!r})",
                         "Embed again into a new folder.")
    if manifest.get("version") != FORMAT_VERSION:
        raise ShardError(path, f"it has format version {manifest.get('version')}; this cirscope reads version "
                         f"{FORMAT_VERSION}", "Upgrade cirscope or embed again.")
    for name, entry in manifest["shards"].items():
        if not isinstance(entry, dict) or not {"file", "rows", "checksum", "bytes"} <= set(entry):
            raise ShardError(path, f"the entry of shard {name!r} is incomplete", "Embed again into a new folder.")
    return manifest


def check_same_model(manifest: dict[str, Any], model: dict[str, Any], folder: str | os.PathLike) -> None:
    """Refuse to add shards of ``model`` to a folder holding another model's shards."""
    old = manifest.get("model", {})
    if manifest.get("shards") and old.get("key") != model.get("key"):
        raise MixedModelsError(
            f"{folder} holds embeddings of another model ({old.get('model')}, {old.get('key')}); this run uses "
            f"{model.get('model')} ({model.get('key')}). Shards of different models never mix: write to a new "
            "folder, or pass overwrite=True (--overwrite) to replace the old shards."
        )


# ---------------------------------------------------------------------- reading
@dataclass
class ShardSet:
    """What a shard folder holds, aligned row by row."""

    ids: np.ndarray  # (n,) object (str)
    sources: np.ndarray  # (n,) object (str)
    embeddings: np.ndarray  # (n, dim) float32; memory-mapped when a cache could be written
    model: dict[str, Any]
    problems: pd.DataFrame
    folder: Path | None
    missing: list[str]  # shards planned by a run but not finished (failed or not run yet)
    fingerprint: str | None = None  # a digest of the manifest's shard checksums (None for a glob without one)


def _shard_files(folder_or_glob: str | os.PathLike) -> tuple[Path | None, list[Path]]:
    """The folder (when one is meant) and the shard files of a folder or a glob."""
    text = str(folder_or_glob)
    path = Path(text)
    if path.is_dir():
        return path, sorted(p for p in path.glob("*.parquet") if not p.name.endswith(".problems.parquet")
                            and p.name != PROBLEMS)
    files = sorted(Path(p) for p in globlib.glob(text, recursive=True))
    files = [p for p in files if p.is_file() and not p.name.endswith(".problems.parquet") and p.name != PROBLEMS]
    if not files:
        raise FileNotFoundError(
            f"No Parquet shards at {text}: pass a folder written by cs.embed / `cirscope embed --engine ...` "
            "or a glob of Parquet files with 'id' and 'embedding' columns."
        )
    parents = {p.parent for p in files}
    return (parents.pop() if len(parents) == 1 else None), files


def _read_columns(path: Path, columns: list[str]):
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path, columns=columns)
    except Exception as exc:
        raise ShardError(path, f"it is unreadable ({type(exc).__name__}: {exc})", "Embed it again.") from None


def _embedding_block(path: Path, dim: int | None) -> np.ndarray:
    import pyarrow as pa

    table = _read_columns(path, ["embedding"])
    col = table.column("embedding").combine_chunks()
    if isinstance(col.type, pa.FixedSizeListType):
        width = col.type.list_size
        values = col.flatten()
    elif pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
        values = col.flatten()
        width = len(values) // len(col) if len(col) else (dim or 0)
        if len(col) and len(values) != width * len(col):
            raise ShardError(path, "its embeddings have different lengths", "Embed it again.")
    else:
        raise ShardError(path, f"column 'embedding' is {col.type}, not a list of floats", "Embed it again.")
    if col.null_count or values.null_count:
        raise ShardError(path, "column 'embedding' has missing values", "Embed it again.")
    if dim is not None and width != dim:
        raise ShardError(path, f"its embeddings are {width}-d, the manifest says {dim}-d", "Embed it again.")
    return values.to_numpy(zero_copy_only=False).astype(np.float32, copy=False).reshape(len(col), width)


def _unit_blocks(files: list[Path], dim: int) -> Iterator[np.ndarray]:
    """Every shard's rows, shard by shard, normalised in float64 and validated (finite, non-zero)."""
    from cirscope._core.arrays import normalize_rows

    for path in files:
        block = _embedding_block(path, dim)
        try:
            yield np.ascontiguousarray(normalize_rows(block, what=f"the embeddings in {path.name}"), np.float32)
        except ValueError as exc:
            raise ShardError(path, str(exc), "Delete the shard and rerun the embedding.") from None


def _write_npy(fh: Any, files: list[Path], n: int, dim: int) -> None:
    """Stream the shards' unit rows into an open file as one ``.npy`` matrix of shape ``(n, dim)``."""
    np.lib.format.write_array_header_1_0(fh, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)),
                                              "fortran_order": False, "shape": (n, dim)})
    for block in _unit_blocks(files, dim):
        fh.write(block.tobytes())


def _matrix_record(arr: np.ndarray) -> dict[str, Any]:
    """What the cached matrix is checked against on every open: shape and a hash of sampled rows."""
    rows = sample_rows(arr.shape[0], 0)
    values = read_rows(arr, rows)
    return {"shape": list(arr.shape), "sample_blake2b": sample_hash(rows, values)}


def open_shards(folder_or_glob: str | os.PathLike, *, verify: bool = False, cache: bool = True) -> ShardSet:
    """Open the shards of a run (a folder or a glob) as one aligned set.

    Parameters
    ----------
    folder_or_glob
        A folder written by :func:`cirscope.embed`, or a glob of its shard files (or of any
        Parquet files with ``id`` and ``embedding`` columns).
    verify
        Check every shard's checksum even when a cached matrix exists (always done when the
        matrix is first built).
    cache
        Build (or reuse) the memory-mapped ``.npy`` matrix beside the shards.

    Raises
    ------
    ShardError
        A damaged manifest or shard (wrong checksum or size, unreadable, wrong dimension).
    """
    folder, files = _shard_files(folder_or_glob)
    manifest = load_manifest(folder) if folder is not None else None
    problems = pd.DataFrame(columns=PROBLEM_COLUMNS)
    missing: list[str] = []
    if manifest is not None:
        assert folder is not None
        entries = manifest["shards"]
        wanted = {p.name for p in files}
        names = sorted(n for n, e in entries.items() if e["file"] in wanted)
        if not names:
            raise ShardError(folder / MANIFEST, f"it lists no finished shard ({len(files)} Parquet file(s) not in "
                             "the manifest)", "Run the embedding again into this folder.")
        for name in names:
            entry, path = entries[name], folder / entries[name]["file"]
            if not path.is_file():
                raise ShardError(path, "it is listed in the manifest but missing",
                                 "Embed again into this folder (finished shards are kept).")
            if path.stat().st_size != entry["bytes"]:
                raise ShardError(path, f"it has {path.stat().st_size} bytes, the manifest says {entry['bytes']}",
                                 "Delete it and rerun the embedding (only that shard is recomputed).")
        files = [folder / entries[n]["file"] for n in names]
        rows = [int(entries[n]["rows"]) for n in names]
        dim = manifest.get("dim")
        model = dict(manifest["model"])
        missing = sorted(set(manifest.get("planned", [])) - set(entries))
        if (folder / PROBLEMS).is_file():
            problems = read_problems(folder / PROBLEMS)
        digest_src = json.dumps([[n, entries[n]["checksum"]] for n in names])
        fingerprint: str | None = hashlib.blake2b(
            json.dumps([model.get("key"), digest_src]).encode(), digest_size=16).hexdigest()
    else:
        import pyarrow.parquet as pq

        rows = []
        for path in files:
            try:
                rows.append(pq.ParquetFile(path).metadata.num_rows)
            except Exception as exc:
                raise ShardError(path, f"it is unreadable ({type(exc).__name__}: {exc})",
                                 "Embed it again or leave it out of the glob.") from None
        dim = None
        model = {"model": "unknown", "pretrained": None, "fingerprint": None}
        digest_src = ""
        fingerprint = None

    id_parts, source_parts = [], []
    for path in files:
        import pyarrow.parquet as pq

        try:
            cols = set(pq.read_schema(path).names)
        except Exception as exc:
            raise ShardError(path, f"it is unreadable ({type(exc).__name__}: {exc})", "Embed it again.") from None
        if not {"id", "embedding"} <= cols:
            raise ShardError(path, "it has no 'id' and 'embedding' columns: not an embedding shard",
                             "Leave it out of the glob, or embed again.")
        table = _read_columns(path, [c for c in ("id", "source", "model") if c in cols])
        id_parts.append(table.column("id").to_numpy(zero_copy_only=False).astype(str).astype(object))
        src = table.column("source") if "source" in cols else table.column("id")
        source_parts.append(src.to_numpy(zero_copy_only=False).astype(str).astype(object))
        if manifest is None and "model" in cols and len(table):
            keys = set(table.column("model").unique().to_pylist())
            if model.get("key") is not None:
                keys.add(model["key"])
            if len(keys) > 1:
                raise MixedModelsError(
                    f"{folder_or_glob} mixes embeddings of different models ({', '.join(sorted(map(str, keys)))}; "
                    f"seen in {path}). Open the shards of one model at a time (a narrower glob, or the run's folder)."
                )
            model["key"] = keys.pop()
        del table
    ids = np.concatenate(id_parts) if id_parts else np.array([], dtype=object)
    sources = np.concatenate(source_parts) if source_parts else np.array([], dtype=object)
    n = int(sum(rows))
    if len(ids) != n:
        raise ShardError(folder_or_glob, f"the shards hold {len(ids)} rows, the manifest says {n}",
                         "Embed again into a new folder.")
    if dim is None:
        dim = _embedding_block(files[0], None).shape[1] if n else 0

    def verify_all() -> None:
        if manifest is None:
            return
        for name in names:
            path = folder / manifest["shards"][name]["file"]  # type: ignore[operator]
            if file_checksum(path) != manifest["shards"][name]["checksum"]:
                raise ShardError(path, "it does not match its checksum in the manifest",
                                 "Delete it and rerun the embedding (only that shard is recomputed).")

    embeddings: np.ndarray | None = None
    if cache and manifest is not None and folder is not None:
        digest = hashlib.blake2b(digest_src.encode(), digest_size=10).hexdigest()
        cache_path = folder / CACHE_DIR / f"embeddings-{digest}.npy"
        record_path = cache_path.with_suffix(".json")
        if cache_path.is_file():
            try:
                arr = np.load(cache_path, mmap_mode="r", allow_pickle=False)
                record = json.loads(record_path.read_text())
                if arr.shape == (n, dim) and arr.dtype == np.float32 and _matrix_record(arr) == record:
                    embeddings = arr
                    if verify:
                        verify_all()
                else:
                    warnings.warn(f"{cache_path} does not match its record (damaged or edited): rebuilt from the "
                                  "shards", UserWarning, stacklevel=2)
            except (OSError, ValueError):
                embeddings = None  # a damaged matrix or record: rebuilt below
        if embeddings is None:
            verify_all()
            try:
                cache_path.parent.mkdir(exist_ok=True)
                for old in cache_path.parent.glob("embeddings-*.*"):
                    old.unlink()

                record_path.unlink(missing_ok=True)
                atomic_write(cache_path, lambda fh: _write_npy(fh, files, n, dim))
                embeddings = np.load(cache_path, mmap_mode="r", allow_pickle=False)
                record_text = json.dumps(_matrix_record(embeddings))
                atomic_write(record_path, lambda fh: fh.write(record_text.encode()))
            except OSError:  # a read-only folder: assemble in memory
                embeddings = None
    elif manifest is not None:
        verify_all()
    if embeddings is None:
        embeddings = np.empty((n, dim), np.float32)
        start = 0
        for block in _unit_blocks(files, dim):
            embeddings[start : start + len(block)] = block
            start += len(block)
        embeddings.setflags(write=False)
    return ShardSet(ids=ids, sources=sources, embeddings=embeddings, model=model, problems=problems,
                    folder=folder, missing=missing, fingerprint=fingerprint)


def is_shard_folder(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds a shard manifest (what ``Space.load`` checks)."""
    return (Path(folder) / MANIFEST).is_file()

"""The on-disk form of a Space: writing a folder atomically and verifying it cheaply on open.

A space folder holds ``embeddings.npy`` (unit rows, float32, memory-mapped on open),
``gallery.parquet``, optionally ``problems.csv``, and ``space.json``, which records the
shape, the full fingerprint of the embeddings (computed once, at save time) and a
verification record: every file's byte size, a hash of a fixed pseudo-random sample of
embedding rows (always including the first and last), and hashes of the small files.
Opening checks that record in O(sample) time; ``verify="full"`` re-hashes every row.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from cirscope._core.arrays import check_unit_rows
from cirscope._core.errors import DamagedFileError
from cirscope._core.hashing import (
    embeddings_fingerprint,
    file_digest,
    read_rows,
    sample_hash,
    sample_rows,
)

FORMAT_VERSION = 2
MANAGED = ("embeddings.npy", "gallery.parquet", "space.json", "problems.csv", "derived")
RESAVE = "Save the space again (space.save(folder)) or re-embed the gallery (`cirscope embed`)."

__all__ = [
    "FORMAT_VERSION", "MANAGED", "describe", "read_info", "verify_embeddings", "verify_file",
]


def describe(folder: Path, embeddings: np.ndarray, fingerprint: str, model: dict[str, Any],
             problems: int, seed: int) -> dict[str, Any]:
    """The ``space.json`` record for the files already written in ``folder``."""
    n, dim = embeddings.shape
    rows = sample_rows(n, seed)
    files: dict[str, Any] = {"embeddings.npy": {"bytes": (folder / "embeddings.npy").stat().st_size}}
    for name in ("gallery.parquet", "problems.csv"):
        if (folder / name).is_file():
            files[name] = {"bytes": (folder / name).stat().st_size, "blake2b": file_digest(folder / name)}
    info = {
        "format": "cirscope.space",
        "version": FORMAT_VERSION,
        "n": int(n),
        "dim": int(dim),
        "dtype": "float32",
        "normalized": True,
        "model": model,
        "embeddings_fingerprint": fingerprint,
        "problems": int(problems),
        "verify": {"seed": int(seed), "sample_blake2b": sample_hash(rows, embeddings[rows]), "files": files},
    }
    info["checksum"] = _record_checksum(info)
    return info


def _record_checksum(info: dict[str, Any]) -> str:
    """blake2b of the record's canonical JSON (without the checksum itself): any edit shows."""
    body = {k: v for k, v in info.items() if k != "checksum"}
    return hashlib.blake2b(json.dumps(body, sort_keys=True).encode(), digest_size=16).hexdigest()


# ---------------------------------------------------------------------------- reading
def _bad_field(path: Path, key: str, value: Any, expected: str) -> DamagedFileError:
    shown = json.dumps(value)[:60]
    return DamagedFileError(path, f'field "{key}" is {shown} ({type(value).__name__}), expected {expected}', RESAVE)


def _int_field(info: dict, key: str, path: Path, low: int) -> int:
    if key not in info:
        raise DamagedFileError(path, f'field "{key}" is missing', RESAVE)
    value = info[key]
    if type(value) is not int or value < low:
        raise _bad_field(path, key, value, f"an integer >= {low}")
    return value


def read_info(folder: Path) -> dict[str, Any]:
    """Parse and type-check ``space.json``; any defect is a :class:`DamagedFileError` naming it."""
    path = folder / "space.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: pass a folder written by Space.save or `cirscope embed`")
    try:
        info = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        raise DamagedFileError(path, f"it is not valid JSON ({exc})", RESAVE) from exc
    if not isinstance(info, dict):
        raise DamagedFileError(path, f"it holds a JSON {type(info).__name__}, not an object", RESAVE)
    if info.get("format") != "cirscope.space":
        raise DamagedFileError(path, f'its "format" is {json.dumps(info.get("format"))[:60]}, not "cirscope.space"',
                               RESAVE)
    version = _int_field(info, "version", path, 1)
    if version > FORMAT_VERSION and info.get("checksum") != _record_checksum(info):
        # every format from 2 on checksums its record the same way: a version that does not match
        # its checksum is damage (a flipped digit), not a newer cirscope
        raise DamagedFileError(path, "its fields do not match its checksum (edited by hand, or damaged)", RESAVE)
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{path} was written by a newer cirscope (space format {version}; this one reads up to "
            f"{FORMAT_VERSION}): upgrade cirscope (pip install -U cirscope)."
        )
    _int_field(info, "n", path, 1)
    _int_field(info, "dim", path, 1)
    model = info.get("model", {})
    if not isinstance(model, dict) or not all(isinstance(model.get(k), (str, type(None)))
                                              for k in ("model", "pretrained", "fingerprint")):
        raise _bad_field(path, "model", model, 'an object with string "model", "pretrained", "fingerprint"')
    fp = info.get("embeddings_fingerprint")
    if not (isinstance(fp, str) and len(fp) == 32 and all(c in "0123456789abcdef" for c in fp)):
        raise _bad_field(path, "embeddings_fingerprint", fp, "32 hex digits")
    if version < 2 and ("verify" in info or "checksum" in info):
        raise DamagedFileError(path, f'it says "version": {version} but carries a format {FORMAT_VERSION} '
                               "verification record", RESAVE)
    if version >= 2:
        if info.get("dtype") != "float32":
            raise _bad_field(path, "dtype", info.get("dtype"), '"float32"')
        if info.get("normalized") is not True:
            raise _bad_field(path, "normalized", info.get("normalized"), "true")
        verify = info.get("verify")
        if not isinstance(verify, dict):
            raise _bad_field(path, "verify", verify, "an object")
        if type(verify.get("seed")) is not int:
            raise _bad_field(path, "verify.seed", verify.get("seed"), "an integer")
        if not isinstance(verify.get("sample_blake2b"), str):
            raise _bad_field(path, "verify.sample_blake2b", verify.get("sample_blake2b"), "a string")
        files = verify.get("files")
        if not isinstance(files, dict) or not all(
            name in MANAGED and isinstance(rec, dict) and type(rec.get("bytes")) is int
            and isinstance(rec.get("blake2b", ""), str)
            for name, rec in files.items()
        ) or "embeddings.npy" not in files or "gallery.parquet" not in files:
            raise _bad_field(path, "verify.files", files, "byte sizes and hashes of the space's files")
        if info.get("checksum") != _record_checksum(info):
            raise DamagedFileError(path, "its fields do not match its checksum (edited by hand, or damaged)", RESAVE)
    return info


def verify_file(folder: Path, name: str, record: dict[str, Any] | None) -> None:
    """Check a file's presence, size and (when recorded) hash against ``space.json``."""
    path = folder / name
    if record is None:
        if path.exists():
            raise DamagedFileError(path, "space.json does not list it: it comes from another save", RESAVE)
        return
    if not path.is_file():
        raise DamagedFileError(path, "it is missing (space.json lists it)", RESAVE)
    size = path.stat().st_size
    if size != record["bytes"]:
        raise DamagedFileError(
            path, f"it has {size} bytes but space.json recorded {record['bytes']} (truncated, or from another save)",
            RESAVE,
        )
    if "blake2b" in record and file_digest(path) != record["blake2b"]:
        raise DamagedFileError(path, "its content differs from what space.json recorded (edited or from another save)",
                               RESAVE)


def open_embeddings(folder: Path, n: int, dim: int, mmap: bool) -> np.ndarray:
    """``embeddings.npy`` read-only (memory-mapped when ``mmap``), checked against the recorded shape."""
    path = folder / "embeddings.npy"
    if not path.is_file():
        raise DamagedFileError(path, "it is missing", RESAVE)
    try:
        arr = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except Exception as exc:
        raise DamagedFileError(path, f"it cannot be read as a .npy array ({type(exc).__name__}: {exc})",
                               RESAVE) from exc
    if not isinstance(arr, np.ndarray) or arr.ndim != 2 or arr.dtype.kind != "f":
        raise DamagedFileError(path, f"it holds a {getattr(arr, 'dtype', '?')} array of shape "
                               f"{getattr(arr, 'shape', '?')}, not (N, D) floats", RESAVE)
    if arr.shape != (n, dim):
        raise DamagedFileError(path, f"it is {arr.shape[0]}x{arr.shape[1]} but space.json says {n}x{dim}", RESAVE)
    if mmap and (arr.dtype != np.dtype("<f4") or not arr.flags.c_contiguous):
        raise DamagedFileError(path, f"it holds {arr.dtype} (order {'C' if arr.flags.c_contiguous else 'F'}) "
                               "but space.json says little-endian float32 rows", RESAVE)
    return arr


def verify_embeddings(folder: Path, arr: np.ndarray, info: dict[str, Any], full: bool) -> None:
    """Sampled rows (always) and every row (``full``) against ``space.json``; rows must be unit vectors."""
    path = folder / "embeddings.npy"
    rows = sample_rows(arr.shape[0], info["verify"]["seed"])
    try:
        values = read_rows(arr, rows)
    except OSError as exc:
        raise DamagedFileError(path, f"its rows cannot be read ({exc})", RESAVE) from exc
    if sample_hash(rows, values) != info["verify"]["sample_blake2b"]:
        raise DamagedFileError(
            path, "its rows differ from those saved (rows swapped or edited, or the file comes from another save)",
            RESAVE,
        )
    try:
        check_unit_rows(values)
        if full:
            check_unit_rows(arr)
    except ValueError as exc:
        raise DamagedFileError(path, str(exc), RESAVE) from exc
    if full and embeddings_fingerprint(arr) != info["embeddings_fingerprint"]:
        raise DamagedFileError(path, "its rows do not match the fingerprint in space.json (edited or mixed)", RESAVE)


def write_problems(folder: Path, problems: Any) -> None:
    if len(problems):
        problems.astype(str).to_csv(folder / "problems.csv", index=False)


def fresh_seed() -> int:
    return int.from_bytes(os.urandom(4), "little")


def is_shard_folder(folder: Path) -> bool:
    """Whether ``folder`` holds Parquet embedding shards (a manifest and no ``space.json``)."""
    return (folder / "manifest.json").is_file() and not (folder / "space.json").is_file()

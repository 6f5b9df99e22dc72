"""Save a space to a folder and read one back as :class:`~cirscope.space._parts.SpaceParts`.

The file checks live in :mod:`~cirscope.space._files`; this module orders the writes (a
fresh sibling folder swapped into place, or the space's own files replaced one by one
under a lock when the folder holds other files) and assembles what a load reads.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cirscope._core.errors import DamagedFileError, ModelLoadError
from cirscope.embedding._embedder import Embedder
from cirscope.gallery._table import Gallery
from cirscope.space import _files as files
from cirscope.space._parts import SpaceParts, check_embeddings

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.space._space import Space

__all__ = ["read_space", "write_space"]


def write_space(space: Space, folder: str | os.PathLike) -> Path:
    """Write ``space`` into ``folder`` (see :meth:`cirscope.Space.save`); returns the absolute folder."""
    from cirscope._core.atomic import fsync_tree, swap_folder, temp_sibling

    target = Path(os.path.abspath(folder))
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"{target} exists and is not a folder: pass a folder path for the space")
    fingerprint = space.fingerprint
    new = temp_sibling(target)
    try:
        with open(new / "embeddings.npy", "wb") as fh:
            np.save(fh, space.image_embeddings, allow_pickle=False)
        space.gallery.save(new, root=target)
        files.write_problems(new, space.problems)
        info = files.describe(new, space.image_embeddings, fingerprint, space.model, len(space.problems),
                              files.fresh_seed())
        (new / "space.json").write_text(json.dumps(info, indent=2))
        fsync_tree(new)
        if _foreign_entries(target):
            _replace_in_place(new, target, fingerprint)
        else:
            swap_folder(new, target, keep=lambda old, tgt: _keep_derived(old, tgt, fingerprint))
    finally:
        if new.exists():
            shutil.rmtree(new, ignore_errors=True)
    return target


def read_space(folder: Path, embedder: Embedder | None, *, full: bool) -> SpaceParts:
    """Read a folder written by :func:`write_space` (see :meth:`cirscope.Space.load`), checking it.

    ``full``: re-hash every embedding row (else a fixed sample of rows is checked).
    """
    info = files.read_info(folder)
    n, dim = info["n"], info["dim"]
    if info["version"] < 2:
        embeddings, fingerprint = _load_old_embeddings(folder, info)
    else:
        record = info["verify"]["files"]
        files.verify_file(folder, "gallery.parquet", record["gallery.parquet"])
        files.verify_file(folder, "problems.csv", record.get("problems.csv"))
        files.verify_file(folder, "embeddings.npy", {"bytes": record["embeddings.npy"]["bytes"]})
        embeddings = files.open_embeddings(folder, n, dim, mmap=True)
        files.verify_embeddings(folder, embeddings, info, full=full)
        fingerprint = info["embeddings_fingerprint"]
    # format 2 checked gallery.parquet's hash above; format 1 had no record, so its ids are checked
    gallery = Gallery.load(folder, _verified=info["version"] >= 2)
    if len(gallery) != n:
        raise DamagedFileError(folder / "gallery.parquet", f"it has {len(gallery)} rows but space.json says {n}",
                               files.RESAVE)
    model = info.get("model", {})
    if embedder is None and model.get("model") not in (None, "unknown"):
        try:
            embedder = Embedder(model["model"], model.get("pretrained"))
        except ModelLoadError as exc:
            # a name with no weights: either embeddings given with only a model name (nothing to
            # rebuild), or a space saved with random weights before they needed opting in
            if model.get("fingerprint") is not None or model.get("pretrained") is not None:
                warnings.warn(f"{folder}: opened without its model ({exc}). Searching by text or image "
                              "needs cs.Space.load(folder, embedder=cs.Embedder(...)).", UserWarning,
                              stacklevel=3)
    problems = None
    if (folder / "problems.csv").is_file():
        try:
            problems = pd.read_csv(folder / "problems.csv", dtype=str)
        except (ValueError, UnicodeDecodeError) as exc:
            raise DamagedFileError(folder / "problems.csv", f"it cannot be read as CSV ({exc})",
                                   files.RESAVE) from exc
    return SpaceParts(gallery=gallery, embeddings=embeddings, embedder=embedder, model=model, folder=folder,
                      fingerprint=fingerprint, problems=problems)


def _load_old_embeddings(folder: Path, info: dict[str, Any]) -> tuple[np.ndarray, str]:
    """Format 1 (before verification records): read, check the whole fingerprint, normalise in memory."""
    raw = files.open_embeddings(folder, info["n"], info["dim"], mmap=False)
    fingerprint = files.embeddings_fingerprint(raw)
    if raw.dtype != np.float32 or fingerprint != info["embeddings_fingerprint"]:
        raise DamagedFileError(folder / "embeddings.npy", "its rows do not match the fingerprint in space.json "
                               "(edited, or from another save)", files.RESAVE)
    try:
        embeddings = check_embeddings(raw, info["n"])
    except ValueError as exc:
        raise DamagedFileError(folder / "embeddings.npy", str(exc), files.RESAVE) from exc
    warnings.warn(
        f"{folder} was saved by an older cirscope (space format 1): its embeddings were read into memory and "
        "normalised; save it again (space.save(folder)) to open it instantly and verified.",
        UserWarning,
        stacklevel=4,
    )
    return embeddings, files.embeddings_fingerprint(embeddings)


def _foreign_entries(target: Path) -> list[str]:
    """Entries of ``target`` that are not the space's own files (e.g. the user's images)."""
    if not target.is_dir():
        return []
    return sorted(e.name for e in target.iterdir() if e.name not in files.MANAGED)


def _keep_derived(old: Path, target: Path, fingerprint: str) -> None:
    """Carry the derived caches over when the embeddings did not change."""
    try:
        same = files.read_info(old)["embeddings_fingerprint"] == fingerprint
    except (OSError, ValueError):
        same = False
    if same and (old / "derived").is_dir() and not (target / "derived").exists():
        os.rename(old / "derived", target / "derived")


def _replace_in_place(new: Path, target: Path, fingerprint: str) -> None:
    """Move the space's files from ``new`` into ``target`` one by one (``space.json`` last), under a lock."""
    from cirscope._core.atomic import fsync_dir

    try:
        import fcntl
    except ImportError:  # no flock (Windows): saves to one folder of images are not serialised
        fcntl = None
    fd = os.open(target, os.O_RDONLY)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            same = files.read_info(target)["embeddings_fingerprint"] == fingerprint
        except (OSError, ValueError):
            same = False
        for name in ("embeddings.npy", "gallery.parquet", "problems.csv"):
            if (new / name).exists():
                os.replace(new / name, target / name)
            else:
                (target / name).unlink(missing_ok=True)
        if not same and (target / "derived").is_dir():
            shutil.rmtree(target / "derived", ignore_errors=True)
        os.replace(new / "space.json", target / "space.json")
        fsync_dir(target)
    finally:
        os.close(fd)  # closing releases the lock

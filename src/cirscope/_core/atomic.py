"""Atomic writes: a file or a whole folder appears complete or not at all.

Every temporary name is unique (process id + random token), so concurrent writers to
the same destination never collide; the last one to finish wins, cleanly.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

__all__ = ["atomic_write", "atomic_write_bytes", "fsync_dir", "fsync_tree", "swap_folder", "temp_sibling", "unique_name"]


def unique_name(path: str | os.PathLike, tag: str) -> Path:
    """A hidden sibling of ``path`` named uniquely for this process and call.

    Examples
    --------
    >>> a, b = unique_name("out/space", "new"), unique_name("out/space", "new")
    >>> a != b and a.parent == b.parent and a.name.startswith(".space.new-")
    True
    """
    path = Path(os.path.abspath(path))
    return path.with_name(f".{path.name}.{tag}-{os.getpid()}-{uuid.uuid4().hex[:12]}")


def fsync_dir(folder: str | os.PathLike) -> None:
    """fsync a folder so that renames inside it are durable."""
    with contextlib.suppress(OSError):  # some filesystems refuse fsync on directories
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a unique temporary sibling of ``path``; on success fsync it and ``os.replace`` it into place.

    On an exception the temporary file is removed and ``path`` is left as it was.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     with atomic_write(Path(d) / "a.txt", "w") as fh:
    ...         _ = fh.write("hello")
    ...     (Path(d) / "a.txt").read_text(), len(list(Path(d).iterdir()))
    ('hello', 1)
    """
    path = Path(path)
    tmp = unique_name(path, "part")
    try:
        with open(tmp, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path, "wb") as fh:
        fh.write(data)


def fsync_tree(folder: str | os.PathLike) -> None:
    """fsync every file and folder below ``folder`` (before it is swapped into place)."""
    folder = Path(folder)
    for root, _dirs, files in os.walk(folder):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(root))


def temp_sibling(path: str | os.PathLike) -> Path:
    """Create and return a fresh, uniquely named, empty folder beside ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = unique_name(path, "new")
    tmp.mkdir()
    return tmp


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two paths (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EPERM):
        return False
    raise OSError(err, os.strerror(err), str(b))


def swap_folder(new: str | os.PathLike, target: str | os.PathLike,
                keep: Callable[[Path, Path], None] | None = None) -> None:
    """Put the complete folder ``new`` in place of ``target`` (which may not exist yet).

    Where the kernel allows, the two are exchanged in one atomic step, so readers always
    see either the old or the new folder; elsewhere the old one is renamed aside first.
    The old folder is then removed. ``keep(old, target)``, when given, runs before that
    removal to carry entries over (e.g. caches still valid for the new content).
    Concurrent swaps into one target each succeed; the last one wins.
    """
    new, target = Path(new), Path(target)
    fsync_dir(new)
    for _attempt in range(100):
        if not target.exists():
            try:
                os.rename(new, target)  # fails if another writer created a non-empty target meanwhile
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
                continue
            fsync_dir(target.parent)
            return
        if _exchange(new, target):
            old = new  # the exchange left the previous content under the temporary name
        else:
            old = unique_name(target, "old")
            try:
                os.rename(target, old)
            except FileNotFoundError:  # another writer moved it aside first: retry
                continue
            try:
                os.rename(new, target)
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
                shutil.rmtree(old, ignore_errors=True)  # a newer writer got there: its folder wins
                continue
        fsync_dir(target.parent)
        if keep is not None:
            with contextlib.suppress(OSError):
                keep(old, target)
        shutil.rmtree(old, ignore_errors=True)
        return
    raise OSError(f"Could not put {new} in place of {target}: other writers kept replacing it")

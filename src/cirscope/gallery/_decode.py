"""Turn any image source into a clean RGB picture, or say precisely why not.

Sources: a file path, an http(s) URL, encoded bytes, a Hugging Face image dict
(``{"bytes": ..., "path": ...}``), a PIL image or a numpy array. Every failure becomes an
:class:`ImageProblem` with a short reason, so a caller can record it and move on.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import stat
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

#: Largest image (in pixels) decoded before it is treated as a decompression bomb.
MAX_PIXELS = 89_478_485  # Pillow's own warning threshold
URL_TIMEOUT = 10.0
MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024
#: Largest image file read from disk (a default; galleries and runs can set their own).
MAX_FILE_BYTES = 256 * 1024 * 1024
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm", ".jfif"}
)


class TransientReason(str):
    """The reason for a failure of one run rather than of the file (memory, I/O, time-outs).

    It is reported like any other reason but never remembered: the embedding cache records
    only failures that are properties of the file (see :func:`is_transient`).
    """

    __slots__ = ()


class ImageProblem(Exception):
    """An image that cannot be used, with a short human-readable reason.

    ``transient`` marks a failure of this run (out of memory, an I/O error, a time-out) rather
    than of the file; its :attr:`reason` is then a :class:`TransientReason`.
    """

    def __init__(self, reason: str, transient: bool = False):
        super().__init__(reason)
        self.reason: str = TransientReason(reason) if transient else str(reason)
        self.transient = transient

    def __reduce__(self):  # keep ``transient`` across worker processes
        return (type(self), (str(self.reason), self.transient))


#: errno values of failures of the machine or the moment, not of the file.
_TRANSIENT_ERRNOS = frozenset(
    getattr(errno, name)
    for name in ("EIO", "EMFILE", "ENFILE", "ENOMEM", "EAGAIN", "ETIMEDOUT", "EINTR", "ENOSPC", "ESTALE",
                 "ENOBUFS", "EBUSY", "ECONNRESET", "EHOSTUNREACH", "ENETUNREACH")
    if hasattr(errno, name)
)


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is a failure of the run (memory, I/O, time-out) rather than of the file.

    Examples
    --------
    >>> is_transient(MemoryError()), is_transient(OSError(24, "Too many open files"))
    (True, True)
    >>> is_transient(ValueError("corrupt")), is_transient(ImageProblem("truncated"))
    (False, False)
    """
    if isinstance(exc, ImageProblem):
        return exc.transient
    if isinstance(exc, (MemoryError, TimeoutError)):
        return True
    if isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS:
        return True
    if isinstance(exc, RuntimeError):  # torch's OutOfMemoryError and allocator failures
        text = str(exc).lower()
        return "out of memory" in text or "can't allocate memory" in text or "cannot allocate memory" in text
    return False


def problem_from(exc: BaseException, what: str = "cannot preprocess") -> ImageProblem:
    """An :class:`ImageProblem` for an unexpected exception, marked transient when it is.

    Examples
    --------
    >>> p = problem_from(MemoryError())
    >>> p.reason, p.transient
    ('cannot preprocess (MemoryError: out of memory for this run; will be retried)', True)
    """
    if isinstance(exc, ImageProblem):
        return exc
    if isinstance(exc, MemoryError):
        return ImageProblem(f"{what} (MemoryError: out of memory for this run; will be retried)", transient=True)
    return ImageProblem(f"{what} ({type(exc).__name__}: {exc})", transient=is_transient(exc))


def is_url(source: object) -> bool:
    return isinstance(source, str) and source.startswith(("http://", "https://"))


def describe_source(source: object) -> str:
    """A short text naming a source (for problem reports and metadata)."""
    if isinstance(source, (str, Path)):
        return str(source)
    if isinstance(source, dict):
        return str(source.get("path") or "<bytes>")
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes>"
    if isinstance(source, Image.Image):
        return f"<PIL {source.mode} {source.size[0]}x{source.size[1]}>"
    if isinstance(source, np.ndarray):
        return f"<array {source.dtype} {source.shape}>"
    return f"<{type(source).__name__}>"


def read_bytes(source: object, max_bytes: int | None = None) -> bytes | None:
    """The encoded bytes of a file/URL/bytes source; ``None`` for decoded (PIL/array) sources.

    Files are read with :func:`read_file` (regular files of at most ``max_bytes`` only).
    """
    if isinstance(source, dict):
        if source.get("bytes") is not None:
            return bytes(source["bytes"])
        if source.get("path"):
            return read_bytes(source["path"], max_bytes)
        raise ImageProblem("image record has neither bytes nor path")
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if is_url(source):
        return _fetch(str(source))
    if isinstance(source, (str, Path, os.PathLike)):
        return read_file(source, max_bytes)
    return None


_FILE_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _not_regular(mode: int) -> str:
    kind = next((name for test, name in _FILE_KINDS if test(mode)), "a special file")
    return f"not a regular file: {kind}"


def format_bytes(n: float) -> str:
    """A byte count for people.

    Examples
    --------
    >>> format_bytes(4 * 2**30), format_bytes(256 * 2**20), format_bytes(2**19), format_bytes(100)
    ('4 GiB', '256 MiB', '512 KiB', '100 bytes')
    """
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} bytes"


def _too_large(size: int, max_bytes: int) -> ImageProblem:
    return ImageProblem(
        f"file too large ({format_bytes(size)}; the limit is {format_bytes(max_bytes)}, "
        "raise it with max_file_bytes= or --max-file-mb)"
    )


def _os_problem(exc: OSError, path: Path) -> ImageProblem:
    if isinstance(exc, FileNotFoundError):
        if path.is_symlink():
            return ImageProblem("dangling symbolic link (its target does not exist)")
        return ImageProblem("file not found")
    if isinstance(exc, IsADirectoryError):
        return ImageProblem(_not_regular(stat.S_IFDIR))
    if isinstance(exc, PermissionError):
        return ImageProblem("permission denied")
    if exc.errno == errno.ELOOP:
        return ImageProblem("symbolic link loop")
    return ImageProblem(f"cannot read file ({exc.strerror or exc})", transient=is_transient(exc))


def read_file(path: str | os.PathLike, max_bytes: int | None = None) -> bytes:
    """The bytes of a regular file of at most ``max_bytes`` (default :data:`MAX_FILE_BYTES`).

    Named pipes, devices, sockets, directories, dangling links and files over the limit
    raise :class:`ImageProblem` without being read: the file is checked with ``stat``
    (following links) before it is opened, opened without blocking and checked again on the
    open descriptor, and never read past the limit, so a FIFO cannot hang a run and a link
    to ``/dev/zero`` cannot exhaust its memory.

    Examples
    --------
    >>> import os, tempfile
    >>> fifo = os.path.join(tempfile.mkdtemp(), "pipe.jpg"); os.mkfifo(fifo)
    >>> read_file(fifo)
    Traceback (most recent call last):
    ...
    cirscope.gallery._decode.ImageProblem: not a regular file: a named pipe (FIFO)
    """
    limit = MAX_FILE_BYTES if max_bytes is None else int(max_bytes)
    path = Path(path)
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise ImageProblem(_not_regular(st.st_mode))
        if st.st_size > limit:
            raise _too_large(st.st_size, limit)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        try:
            st = os.fstat(fd)  # the path may have been swapped since the stat above
            if not stat.S_ISREG(st.st_mode):
                raise ImageProblem(_not_regular(st.st_mode))
            with os.fdopen(fd, "rb", closefd=False) as fh:
                data = fh.read(limit + 1)
        finally:
            os.close(fd)
    except OSError as exc:
        raise _os_problem(exc, path) from None
    except MemoryError:
        raise ImageProblem("cannot read file (out of memory for this run; will be retried)", transient=True) from None
    if len(data) > limit:  # the file grew after the stat
        raise _too_large(len(data), limit)
    return data


def _fetch(url: str) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "cirscope"})
    try:
        with urllib.request.urlopen(request, timeout=URL_TIMEOUT) as response:
            data = response.read(MAX_DOWNLOAD_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise ImageProblem(f"URL unreachable (HTTP {exc.code})") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ImageProblem(f"URL unreachable ({reason})", transient=True) from None
    if len(data) > MAX_DOWNLOAD_BYTES:
        raise ImageProblem(f"download larger than {MAX_DOWNLOAD_BYTES // 2**20} MiB")
    return data


def content_hash(source: object, data: bytes | None = None, max_bytes: int | None = None) -> str:
    """A hash of what an image source contains (encoded bytes, or decoded pixels)."""
    h = hashlib.blake2b(digest_size=16)
    if data is None:
        data = read_bytes(source, max_bytes)
    if data is not None:
        h.update(b"bytes:")
        h.update(data)
    elif isinstance(source, Image.Image):
        h.update(f"pil:{source.mode}:{source.size}:".encode())
        h.update(source.tobytes())
    elif isinstance(source, np.ndarray):
        arr = np.ascontiguousarray(source)
        h.update(f"array:{arr.dtype.str}:{arr.shape}:".encode())
        h.update(arr.tobytes())
    else:
        raise ImageProblem(f"unsupported image source {describe_source(source)}")
    return h.hexdigest()


def to_rgb(img: Image.Image) -> Image.Image:
    """Apply EXIF orientation and convert any mode to 8-bit RGB.

    Transparent images are composited on white; CMYK, palette, grayscale and 16-bit or
    float images are converted (16-bit values are scaled to 8 bits, not clipped).
    """
    img = ImageOps.exif_transpose(img)
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    elif mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        img = Image.fromarray(np.nan_to_num((arr - lo) * scale).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    if img.mode != "RGB":
        img = img.convert("RGB")
    return img


def decode(
    source: object,
    data: bytes | None = None,
    *,
    max_pixels: int = MAX_PIXELS,
    draft_size: int | None = None,
    max_bytes: int | None = None,
) -> Image.Image:
    """Decode ``source`` fully into an RGB image, raising :class:`ImageProblem` on failure.

    ``draft_size`` lets a JPEG decode at a reduced scale (Pillow's ``draft`` mode) as long
    as its shorter side stays at least ``draft_size`` pixels: much faster for large photos
    that a model will shrink anyway.

    Examples
    --------
    >>> from PIL import Image
    >>> decode(Image.new("LA", (4, 4))).mode
    'RGB'
    """
    if isinstance(source, np.ndarray):
        return to_rgb(_from_array(source))
    if isinstance(source, Image.Image):
        if source.width * source.height > max_pixels:
            raise ImageProblem(f"image too large ({source.width}x{source.height} px; decompression-bomb guard)")
        return to_rgb(source)
    if data is None:
        data = read_bytes(source, max_bytes)
    if data is None:
        raise ImageProblem(f"unsupported image source {describe_source(source)}")
    if len(data) == 0:
        raise ImageProblem("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            if img.width * img.height > max_pixels:
                raise ImageProblem(f"image too large ({img.width}x{img.height} px; decompression-bomb guard)")
            if draft_size and img.format == "JPEG" and min(img.size) > 2 * draft_size:
                scale = draft_size / min(img.size)
                img.draft("RGB", (max(1, round(img.width * scale)), max(1, round(img.height * scale))))
            img.load()
    except ImageProblem:
        raise
    except UnidentifiedImageError:
        raise ImageProblem("not an image (unrecognised format)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageProblem("image too large (decompression-bomb guard)") from None
    except MemoryError:
        raise ImageProblem("cannot decode (out of memory for this run; will be retried)", transient=True) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        text = str(exc).lower()
        if "truncated" in text or isinstance(exc, EOFError):
            raise ImageProblem("truncated or incomplete image data") from None
        raise ImageProblem(f"corrupt image ({exc})") from None
    return to_rgb(img)


def _from_array(arr: np.ndarray) -> Image.Image:
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):
        arr = np.moveaxis(arr, 0, -1)  # channels-first
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)):
        raise ImageProblem(f"array of shape {arr.shape} is not an image (expected HxW, HxWx3 or HxWx4)")
    if not np.all(np.isfinite(arr)):
        raise ImageProblem("array contains NaN or infinite values")
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and arr.max(initial=0) <= 1.0:
            arr = arr * 255.0
        elif arr.dtype == np.uint16:
            arr = arr / 257.0
        arr = np.clip(arr + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(arr)


def make_thumbnail(img: Image.Image, size: int = 128, quality: int = 85) -> bytes:
    """A JPEG thumbnail whose longer side is at most ``size`` pixels."""
    thumb = img.copy()
    thumb.thumbnail((size, size), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    thumb.save(buf, format="JPEG", quality=quality, optimize=True)
    return buf.getvalue()


def encode_png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


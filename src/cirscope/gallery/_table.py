"""The gallery: a table of images with stable ids, a source per image and metadata."""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from cirscope.gallery import _decode as _images
from cirscope.gallery._decode import IMAGE_EXTENSIONS, ImageProblem
from cirscope.gallery._metadata import concat_metadata, join_metadata, read_table, require_columns
from cirscope.gallery._stored import GALLERY_FILE, RESAVE, PathColumn, read_gallery, write_gallery

_PROBLEM_COLUMNS = ["id", "source", "reason"]

#: Thumbnails kept in memory per gallery (about 5 KB each at 128 px).
THUMBNAIL_CACHE = 20_000


class Gallery:
    """A table of images: one row per item with a stable ``id``, an image source and metadata.

    Build one with :meth:`from_folder`, :meth:`from_dataframe`, :meth:`from_images`,
    :meth:`from_paths` or :meth:`from_hf`. Images are decoded only when needed; an image
    that cannot be decoded is recorded in :attr:`problems` (id, source, reason) and skipped
    by whoever asked for it, never raised out of a long run.

    Examples
    --------
    >>> from PIL import Image
    >>> import pandas as pd
    >>> g = Gallery.from_images([Image.new("RGB", (8, 8), c) for c in ("red", "blue")],
    ...                         metadata=pd.DataFrame({"color": ["red", "blue"]}))
    >>> len(g), list(g.metadata.columns)
    (2, ['id', 'color'])
    """

    def __init__(self, metadata: pd.DataFrame, sources: Sequence[Any], *, _ids_checked: bool = False):
        if len(metadata) != len(sources):
            raise ValueError(f"metadata has {len(metadata)} rows but there are {len(sources)} image sources")
        if len(metadata) == 0:
            raise ValueError(
                "The gallery is empty: no images were found. Check the folder/paths and the file "
                f"extensions (recognised: {', '.join(sorted(IMAGE_EXTENSIONS))})."
            )
        if "id" not in metadata.columns:
            raise ValueError("metadata needs an 'id' column")
        metadata = metadata.reset_index(drop=True).copy()
        metadata["id"] = metadata["id"].astype(str)
        # (a gallery reopened from a file whose hash was verified was checked when it was saved)
        dup = metadata["id"][:0] if _ids_checked else metadata["id"][metadata["id"].duplicated()]
        if len(dup):
            raise ValueError(
                f"Duplicate ids in the gallery: {sorted(set(dup))[:5]} ({len(dup)} duplicates). Give each item "
                "a unique id (pass id='some_unique_column', or drop the duplicate rows)."
            )
        self._metadata = metadata
        # file paths reopened from a saved gallery stay in Arrow (a few bytes a row, not a Python str each)
        self._sources: Sequence[Any] = sources if isinstance(sources, PathColumn) else list(sources)
        self._thumbs: OrderedDict[tuple[int, int], bytes] = OrderedDict()  # LRU, THUMBNAIL_CACHE entries
        self._hashes: dict[int, str] = {}
        self._problems: dict[str, tuple[str, str]] = {}
        #: Largest image file read from disk, in bytes; larger files become problems.
        self.max_file_bytes: int = _images.MAX_FILE_BYTES

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_folder(
        cls,
        folder: str | os.PathLike,
        metadata: str | os.PathLike | pd.DataFrame | None = None,
        *,
        key: str | None = None,
        recursive: bool = True,
        extensions: Iterable[str] = IMAGE_EXTENSIONS,
        max_file_bytes: int | None = None,
    ) -> Gallery:
        """All image files under ``folder`` (ids are paths relative to it).

        Hidden files and hidden folders (names starting with ``.``, such as
        ``.ipynb_checkpoints`` or ``.git``) are skipped, with everything inside them. Entries
        that are not regular files (named pipes, devices, sockets, dangling links) or that
        are larger than ``max_file_bytes`` are listed but never read: they become
        :attr:`problems` with a clear reason when the gallery is embedded.

        Parameters
        ----------
        folder
            The folder to scan.
        metadata
            A CSV/Parquet file or DataFrame joined on file name: its ``key`` column (by
            default the first of file, filename, file_name, path, image, name, id) holds
            paths relative to ``folder`` or bare file names. Rows that name no image and
            images without a row are reported in a :class:`MetadataWarning` (with counts and
            examples); images without a row get missing values. A metadata column called
            ``id`` that is not the key is kept as ``id_original`` (``id`` is the gallery's
            own column, the path relative to ``folder``).
        key
            The metadata column holding file names.
        recursive
            Scan sub-folders too.
        extensions
            File extensions (lower case, with dot) that count as images.
        max_file_bytes
            Largest image file read, in bytes (default 256 MiB).

        Examples
        --------
        >>> import pathlib, tempfile
        >>> photos = pathlib.Path(tempfile.mkdtemp())
        >>> for i in range(3):
        ...     gallery.load_image(i).save(photos / f"{i}.png")
        >>> import pandas as pd
        >>> pd.DataFrame({"file": ["0.png", "1.png", "2.png"], "label": ["cat", "dog", "cat"]}).to_csv(
        ...     photos / "labels.csv", index=False)
        >>> g = Gallery.from_folder(photos, metadata=photos / "labels.csv")
        >>> g.metadata[["id", "label"]].values.tolist()
        [['0.png', 'cat'], ['1.png', 'dog'], ['2.png', 'cat']]
        """
        root = Path(folder)
        if not root.is_dir():
            raise FileNotFoundError(f"Folder not found: {root}. Pass the folder that holds your images.")
        exts = {e.lower() if e.startswith(".") else "." + e.lower() for e in extensions}
        files = sorted(p for p in _list_files(root, recursive) if p.suffix.lower() in exts)
        if not files:
            raise ValueError(
                f"No image files found in {root} (looked for {', '.join(sorted(exts))}"
                f"{', recursively' if recursive else ''}; hidden files and folders are skipped). "
                "Check the folder or pass extensions=[...]."
            )
        rel = [p.relative_to(root).as_posix() for p in files]
        table = pd.DataFrame({"id": rel, "path": [str(p) for p in files]})
        if metadata is not None:
            table = join_metadata(table, read_table(metadata), key)
        gallery = cls(table, [str(p) for p in files])
        if max_file_bytes is not None:
            gallery.max_file_bytes = int(max_file_bytes)
        return gallery

    @classmethod
    def from_dataframe(cls, df: pd.DataFrame, image: str = "path", *, id: str | None = None) -> Gallery:
        """A gallery from a DataFrame whose ``image`` column holds paths, URLs, bytes or PIL images.

        Every other column is metadata. ``id`` names a column of unique ids; by default the
        image column (when it holds unique paths/URLs) or the row number is used.

        Examples
        --------
        >>> import pandas as pd
        >>> df = pd.DataFrame({"path": ["a.jpg", "b.jpg"], "label": ["cat", "dog"]})
        >>> Gallery.from_dataframe(df, image="path").ids.tolist()
        ['a.jpg', 'b.jpg']
        """
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"from_dataframe expects a pandas DataFrame, got {type(df).__name__}")
        require_columns(df, [image] + ([id] if id else []), "image/id")
        sources = list(df[image])
        meta = df.drop(columns=[image]).reset_index(drop=True)
        if id is not None:
            ids = df[id].astype(str).to_numpy()
            meta = meta.drop(columns=[id]) if id != image else meta
        elif all(isinstance(s, (str, Path)) for s in sources) and len(set(map(str, sources))) == len(sources):
            ids = np.asarray([str(s) for s in sources])
        else:
            ids = np.asarray([str(i) for i in range(len(df))])
        if "id" in meta.columns:
            meta = meta.rename(columns={"id": "id_original"})
        if all(isinstance(s, (str, Path)) for s in sources):
            meta.insert(0, image if image != "id" else "path", [str(s) for s in sources])
        meta.insert(0, "id", ids)
        return cls(meta, sources)

    @classmethod
    def from_paths(cls, paths: Iterable[str | os.PathLike], metadata: pd.DataFrame | None = None) -> Gallery:
        """A gallery from a list of file paths or URLs (ids are the paths)."""
        paths = [str(p) for p in paths]
        df = pd.DataFrame({"path": paths})
        if metadata is not None:
            df = concat_metadata(df, metadata)
        return cls.from_dataframe(df, image="path")

    @classmethod
    def from_images(
        cls,
        images: Sequence[Any],
        metadata: pd.DataFrame | None = None,
        *,
        ids: Sequence[str] | None = None,
    ) -> Gallery:
        """A gallery of in-memory images (PIL images, HxWxC arrays or encoded bytes)."""
        images = list(images)
        table = pd.DataFrame(index=range(len(images)))
        if metadata is not None:
            table = concat_metadata(table, metadata)
        if ids is None and "id" in table.columns:
            ids = table.pop("id").astype(str).tolist()
        if ids is not None and len(ids) != len(images):
            raise ValueError(f"{len(ids)} ids for {len(images)} images: pass one id per image")
        table.insert(0, "id", list(ids) if ids is not None else [str(i) for i in range(len(images))])
        return cls(table, images)

    @classmethod
    def from_hf(cls, dataset: Any, image: str = "image", *, id: str | None = None) -> Gallery:
        """A gallery from a Hugging Face ``datasets.Dataset`` with an image column.

        Images are kept encoded (``decode=False``) and decoded only when needed.
        """
        names = list(getattr(dataset, "column_names", []))
        if image not in names:
            raise KeyError(f"Column {image!r} not in the dataset; its columns are {names}. Pass image='...'.")
        try:
            from datasets import Image as HFImage

            dataset = dataset.cast_column(image, HFImage(decode=False))
        except ImportError:  # a dataset-like object without the library: use it as it is
            pass
        df = dataset.to_pandas() if hasattr(dataset, "to_pandas") else pd.DataFrame(dataset[:])
        return cls.from_dataframe(df, image=image, id=id)

    # ------------------------------------------------------------------ table
    def __len__(self) -> int:
        return len(self._metadata)

    def __repr__(self) -> str:
        cols = [c for c in self._metadata.columns if c != "id"]
        return f"Gallery({len(self)} images, metadata={cols}, problems={len(self._problems)})"

    @property
    def ids(self) -> np.ndarray:
        """The items' ids (unique strings), in row order."""
        return self._metadata["id"].to_numpy()

    @property
    def metadata(self) -> pd.DataFrame:
        """One row per item: ``id`` and the metadata columns (a copy)."""
        return self._metadata.copy()

    @property
    def sources(self) -> list[Any]:
        return list(self._sources)

    def row_of(self, item_id: str) -> int:
        """The positional row of an id."""
        rows = np.flatnonzero(self._metadata["id"].to_numpy() == str(item_id))
        if rows.size == 0:
            raise KeyError(f"No item with id {item_id!r} in the gallery")
        return int(rows[0])

    def column(self, name: str) -> pd.Series:
        """A metadata column, with an error listing the columns when ``name`` is unknown."""
        require_columns(self._metadata, [name], "metadata")
        return self._metadata[name]

    def subset(self, rows: Sequence[int] | np.ndarray) -> Gallery:
        """A new gallery of the given positional rows (thumbnails already made are kept)."""
        rows = np.asarray(rows, dtype=np.int64)
        out = Gallery(self._metadata.iloc[rows].reset_index(drop=True), [self._sources[i] for i in rows])
        position = {int(r): i for i, r in enumerate(rows)}
        out._thumbs = OrderedDict(((position[r], s), b) for (r, s), b in self._thumbs.items() if r in position)
        out._hashes = {position[r]: h for r, h in self._hashes.items() if r in position}
        out.max_file_bytes = self.max_file_bytes
        return out

    # ------------------------------------------------------------------ images
    def load_image(self, row: int) -> Image.Image:
        """Decode row ``row`` into an RGB image; raises :class:`ImageProblem` (and records it)."""
        source = self._sources[row]
        try:
            data = _images.read_bytes(source, self.max_file_bytes)
            if data is not None and row not in self._hashes:
                self._hashes[row] = _images.content_hash(source, data)
            return _images.decode(source, data)
        except ImageProblem as exc:
            self.record_problem(row, exc.reason)
            raise

    def content_hash(self, row: int) -> str:
        """A hash of the image's content (encoded bytes, or pixels for in-memory images)."""
        if row not in self._hashes:
            try:
                self._hashes[row] = _images.content_hash(self._sources[row], max_bytes=self.max_file_bytes)
            except ImageProblem as exc:
                self.record_problem(row, exc.reason)
                raise
        return self._hashes[row]

    def thumbnail(self, row: int, size: int = 128) -> bytes:
        """JPEG bytes of the image, at most ``size`` px on its longer side (made once, cached).

        A row whose image cannot be decoded gets a grey placeholder (and a problem record).
        """
        key = (int(row), int(size))
        if key in self._thumbs:
            self._thumbs.move_to_end(key)
            return self._thumbs[key]
        try:
            img = self.load_image(row)
        except ImageProblem:
            img = Image.new("RGB", (size, size), (200, 200, 200))
        thumb = self._thumbs[key] = _images.make_thumbnail(img, size)
        while len(self._thumbs) > THUMBNAIL_CACHE:  # hovering over a 100k map must not grow without bound
            self._thumbs.popitem(last=False)
        return thumb

    # ------------------------------------------------------------------ problems
    def record_problem(self, row: int, reason: str) -> None:
        item = str(self._metadata["id"].iat[row])
        self._problems[item] = (_images.describe_source(self._sources[row]), reason)

    @property
    def problems(self) -> pd.DataFrame:
        """Images that could not be used: columns id, source, reason."""
        return pd.DataFrame(
            [(i, s, r) for i, (s, r) in self._problems.items()], columns=_PROBLEM_COLUMNS
        )

    # ------------------------------------------------------------------ persistence
    def save(self, folder: str | os.PathLike, *, root: str | os.PathLike | None = None) -> None:
        """Write ``gallery.parquet`` (metadata + sources; in-memory images as PNG bytes), atomically.

        Image paths inside ``root`` (default: ``folder``, the folder the gallery will live
        in) are stored relative to it, so the folder and its images can move together;
        other paths are stored absolute, so the folder opens from any working directory.
        """
        write_gallery(folder, self._metadata, self._sources, root=root)

    @classmethod
    def load(cls, folder: str | os.PathLike, *, _verified: bool = False) -> Gallery:
        """Reopen a gallery written by :meth:`save`; relative image paths resolve against ``folder``.

        (``_verified``: the caller has checked the file's hash against the record written with it,
        so the ids are known to be unique and are not checked again: O(n) hashing saved at 1M rows.)

        Raises :class:`~cirscope._core.errors.DamagedFileError` naming ``gallery.parquet`` when the
        file is unreadable or not a cirscope gallery.
        """
        import pyarrow as pa

        from cirscope._core.errors import DamagedFileError

        df, sources = read_gallery(folder)
        try:
            return cls(df, sources, _ids_checked=_verified)
        except (ValueError, KeyError, TypeError) as exc:
            raise DamagedFileError(Path(folder) / GALLERY_FILE, str(exc), RESAVE) from exc
        finally:
            pa.default_memory_pool().release_unused()  # Arrow's pool keeps the decoded table's pages otherwise


def _list_files(root: Path, recursive: bool) -> list[Path]:
    """Every non-directory entry under ``root`` whose name and folders are not hidden.

    Links to folders are followed once (a link loop is not walked twice); anything else
    (files, links to files, dangling links, pipes...) is listed for the caller to check.
    """
    out: list[Path] = []
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = [] if not recursive else sorted(d for d in dirnames if not d.startswith("."))
        out.extend(Path(dirpath, f) for f in filenames if not f.startswith("."))
    return out

"""Export rows of a space: a table (CSV, Parquet), a folder of links or copies, or a FiftyOne-readable folder.

Every export holds, per row: ``row``, ``id``, ``path`` (the image file; ``""`` for images
held in memory), the metadata columns, one boolean ``tag:<name>`` column per tag and, when
known (a search result), ``rank`` and ``score``. Nothing is overwritten silently: an
existing destination raises ``FileExistsError`` unless ``overwrite=True`` (and a folder
that is not empty is never written into). Files appear atomically (complete or not at all).
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cirscope._core.atomic import atomic_write, swap_folder, temp_sibling
from cirscope.gallery._decode import ImageProblem

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.space._space import Space

__all__ = ["FORMATS", "export", "export_frame", "resolve_rows"]

FORMATS = ("csv", "parquet", "folder", "fiftyone")
#: Column names an export writes itself; metadata columns of the same name get " (metadata)" added.
_RESERVED = frozenset({"row", "id", "path", "rank", "score", "file", "problem", "filepath", "tags", "cirscope_id"})
_SUFFIX = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
#: The script a ``format="fiftyone"`` export holds beside ``labels.csv`` (run it where fiftyone is installed).
FIFTYONE_SCRIPT = "load_fiftyone.py"


def resolve_rows(space: Space, rows: Any) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """``(rows, ranks, scores)`` from row numbers, a mask, ids, a tag name or a search result.

    Examples
    --------
    >>> r, ranks, scores = resolve_rows(space, space.search("a red star", k=3))
    >>> r.size, ranks.tolist(), bool(scores[0] >= scores[-1])
    (3, [1, 2, 3], True)
    >>> resolve_rows(space, [4, 2])[0].tolist()
    [4, 2]
    """
    if isinstance(rows, str):
        if rows not in space.tags:
            raise KeyError(f"No tag {rows!r}: pass rows, ids, a search result or one of the tags {space.tags.names}")
        return space.tagged(rows), None, None
    if isinstance(rows, pd.DataFrame):
        idx = space.tags.to_rows(rows)
        ranks = rows["rank"].to_numpy(np.int64) if "rank" in rows.columns else None
        scores = rows["score"].to_numpy(np.float32) if "score" in rows.columns else None
        return idx, ranks, scores
    return space.tags.to_rows(rows), None, None


def _paths(sources: list[Any], rows: np.ndarray) -> np.ndarray:
    """The image file of each row as text ("" where the image is not a local file).

    A gallery of file paths (the common case) is handled column-wise; other sources
    (dicts, bytes, images in memory) one by one.
    """
    picked = pd.Series([sources[r] for r in rows.tolist()], dtype=object)
    if pd.api.types.infer_dtype(picked, skipna=False) == "string":
        text = picked.astype(pd.StringDtype("pyarrow"))  # Arrow string kernels, not a Python loop
        url = (text.str.startswith("http://") | text.str.startswith("https://")).to_numpy(bool)
        relative = ~text.str.startswith(os.sep).to_numpy(bool) & ~url
        out = picked.to_numpy(dtype=object).copy()
        out[relative] = [os.path.abspath(t) for t in out[relative]]
        out[url] = ""
        return out
    out = np.full(rows.size, "", dtype=object)
    for i, s in enumerate(picked.tolist()):
        if isinstance(s, dict):
            s = s.get("path")
        if isinstance(s, (str, Path)) and not str(s).startswith(("http://", "https://")):
            out[i] = os.path.abspath(s)
    return out


def export_frame(space: Space, rows: Any, scores: Any = None) -> pd.DataFrame:
    """The table an export writes: row, id, path, metadata, ``tag:<name>`` columns, rank and score.

    Examples
    --------
    >>> frame = export_frame(space, [0, 5])
    >>> list(frame.columns[:3]), frame["row"].tolist()
    (['row', 'id', 'path'], [0, 5])
    """
    idx, ranks, found = resolve_rows(space, rows)
    meta = space.gallery.metadata.iloc[idx].reset_index(drop=True)
    frame = pd.DataFrame({"row": idx, "id": meta["id"].astype(str).to_numpy(),
                          "path": _paths(space.gallery.sources, idx)})
    frame["path"] = frame["path"].astype(str)
    meta = meta.drop(columns=["id"])
    meta.columns = [f"{c} (metadata)" if str(c) in _RESERVED else c for c in meta.columns]  # never two "path"s
    frame = pd.concat([frame, meta], axis=1)
    if len(space.tags):
        frame = pd.concat([frame, space.tags.frame().iloc[idx].reset_index(drop=True)], axis=1)
    if scores is not None:
        found = np.asarray(scores, dtype=np.float32).reshape(-1)
        if found.size != idx.size:
            raise ValueError(f"scores has {found.size} values for {idx.size} rows")
    if ranks is not None:
        frame["rank"] = ranks
    if found is not None:
        frame["score"] = found
    return frame


def _format(path: Path, format: str | None) -> str:
    if format is None:
        format = _SUFFIX.get(path.suffix.lower())
        if format is None:
            raise ValueError(f"Cannot tell the format from {path.name!r}: pass format= one of {list(FORMATS)}")
    if format not in FORMATS:
        raise ValueError(f"Unknown export format {format!r}; use one of {list(FORMATS)}")
    return format


def export(
    space: Space,
    rows: Any,
    path: str | os.PathLike,
    format: str | None = None,
    *,
    scores: Any = None,
    link: str = "symlink",
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Export ``rows`` of ``space`` to ``path``; returns the absolute path written.

    Parameters
    ----------
    space
        The :class:`~cirscope.Space`.
    rows
        Row numbers, a boolean mask, gallery ids, a tag name (``"duplicate"``) or a search
        result (``space.search(...)``: its ranks and scores are exported too).
    path
        A ``.csv`` or ``.parquet`` file, or a folder (``format="folder"`` / ``"fiftyone"``).
    format
        ``"csv"``, ``"parquet"``, ``"folder"`` (the images as links or copies, named after
        their files, plus ``index.csv``) or ``"fiftyone"`` (a folder FiftyOne reads as a
        ``CSVDataset``: ``labels.csv`` with ``filepath``, ``tags`` as a JSON list and the
        metadata, and ``load_fiftyone.py``, whose ``fo.Dataset.from_dir`` call parses each
        column back to its type). Default: from the file's suffix.
    scores
        Scores to write beside the rows (one per row), when ``rows`` is not a search result.
    link
        For folders: ``"symlink"`` (default) or ``"copy"``. Images that are not local files
        (held in memory, inside archives, URLs) are written as PNG either way.
    overwrite
        Replace an existing file, or a folder an earlier export wrote (one holding
        ``index.csv`` or ``labels.csv``); any other folder is never replaced. An empty
        folder is written into without it.
    progress
        Show a progress bar for folders of more than 500 images.

    Examples
    --------
    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> out = export(space, space.search("a red star", k=4), Path(tmp.name) / "stars.csv")
    >>> pd.read_csv(out)[["rank", "id"]].shape
    (4, 2)
    >>> export(space, [0], out)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    FileExistsError: ... exists: pass overwrite=True to replace it, or another path
    >>> tmp.cleanup()
    """
    path = Path(os.path.abspath(path))
    format = _format(path, format)
    if link not in ("symlink", "copy"):
        raise ValueError(f'link must be "symlink" or "copy", got {link!r}')
    empty_folder = path.is_dir() and not any(path.iterdir())
    if path.exists() and not overwrite and not (empty_folder and format in ("folder", "fiftyone")):
        raise FileExistsError(f"{path} exists: pass overwrite=True to replace it, or another path")
    if path.is_dir() and not empty_folder and not ((path / "index.csv").is_file() or (path / "labels.csv").is_file()):
        raise FileExistsError(f"{path} is a folder that holds no earlier export (no index.csv or labels.csv): "
                              "it is never replaced; pass another path")
    frame = export_frame(space, rows, scores)
    if format in ("csv", "parquet"):
        if path.is_dir():
            raise IsADirectoryError(f"{path} is a folder: pass a file path for a {format} export")
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path, "w" if format == "csv" else "wb") as fh:
            if format == "csv":
                frame.to_csv(fh, index=False)
            else:
                frame.to_parquet(fh, index=False)
        return path
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{path} is a file: pass a folder path for a {format} export")
    new = temp_sibling(path)
    try:
        if format == "folder":
            _write_folder(space, frame, new, link, progress)
        else:
            _write_fiftyone(space, frame, new, progress)
        swap_folder(new, path)
    finally:
        if new.exists():
            shutil.rmtree(new, ignore_errors=True)
    return path


def _unique_names(frame: pd.DataFrame) -> list[str]:
    """File names for the rows: the image's own name, with ``-<row>`` added where two would collide."""
    names = []
    for path, item, row in zip(frame["path"].tolist(), frame["id"].tolist(), frame["row"].tolist(), strict=True):
        base = Path(path).name if path else f"{item}.png"
        names.append(base.replace(os.sep, "_") if base not in ("", ".", "..") else f"row-{row}.png")
    repeated = pd.Series(names).duplicated(keep=False).to_numpy()
    taken: set[str] = {"index.csv"}  # the folder's own table
    out = []
    for name, row, clash in zip(names, frame["row"].tolist(), repeated, strict=True):
        if clash or name in taken:  # every image of a shared name gets its row: no name depends on order
            stem, suffix = os.path.splitext(name)
            name, extra = f"{stem}-{row}{suffix}", 1
            while name in taken:
                name, extra = f"{stem}-{row}-{extra}{suffix}", extra + 1
        taken.add(name)
        out.append(name)
    return out


def _is_regular(path: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _place(space: Space, row: int, source: str, dest: Path, link: str) -> str:
    """Put one image at ``dest``; returns the problem ("" when it went well)."""
    if source:
        if not _is_regular(source):
            return "not a readable regular file"
        if link == "symlink":
            os.symlink(source, dest)
        else:
            shutil.copyfile(source, dest)
        return ""
    try:  # an image held in memory, in an archive or behind a URL: written as PNG
        space.gallery.load_image(row).save(dest, format="PNG")
    except (ImageProblem, OSError, ValueError) as exc:  # reported in the index, not raised
        return f"{type(exc).__name__}: {exc}"
    return ""


def _write_images(space: Space, frame: pd.DataFrame, folder: Path, link: str, progress: bool) -> tuple[list, list]:
    from tqdm.auto import tqdm

    names = _unique_names(frame)
    problems = []
    rows, sources = frame["row"].tolist(), frame["path"].tolist()
    for name, row, source in tqdm(list(zip(names, rows, sources, strict=True)), desc="Exporting images",
                                  disable=not progress or len(names) <= 500, leave=False):
        problems.append(_place(space, row, source, folder / name, link))
    return names, problems


def _write_folder(space: Space, frame: pd.DataFrame, folder: Path, link: str, progress: bool) -> None:
    names, problems = _write_images(space, frame, folder, link, progress)
    index = frame.copy()
    index.insert(0, "file", names)
    index["problem"] = problems
    index.loc[index["problem"] != "", "file"] = ""
    index.to_csv(folder / "index.csv", index=False)


def _write_fiftyone(space: Space, frame: pd.DataFrame, folder: Path, progress: bool) -> None:
    import json

    memory = frame["path"] == ""
    filepath = frame["path"].to_numpy(dtype=object).copy()
    if memory.any():
        data = folder / "data"
        data.mkdir()
        names, problems = _write_images(space, frame[memory].reset_index(drop=True), data, "copy", progress)
        filepath[memory.to_numpy()] = [str(data / n) if not p else "" for n, p in zip(names, problems, strict=True)]
    tag_cols = [c for c in frame.columns if c.startswith("tag:")]
    tags = frame[tag_cols].to_numpy(bool) if tag_cols else np.zeros((len(frame), 0), bool)
    names = np.array([c[4:] for c in tag_cols], dtype=object)
    labels = frame.drop(columns=["path", "row", *tag_cols]).rename(columns={"id": "cirscope_id"})
    labels.insert(0, "filepath", filepath)
    labels["tags"] = [json.dumps(names[t].tolist(), ensure_ascii=False) for t in tags]
    labels = labels[labels["filepath"] != ""]
    labels.to_csv(folder / "labels.csv", index=False)
    (folder / FIFTYONE_SCRIPT).write_text(fiftyone_script(labels), encoding="utf-8")


def fiftyone_script(labels: pd.DataFrame) -> str:
    """Python that loads an export folder into FiftyOne, parsing every column of ``labels`` to its type.

    Examples
    --------
    >>> print(fiftyone_script(pd.DataFrame({"filepath": ["/a.png"], "n": [1.5], "tags": ["[]"]})))
    ... # doctest: +NORMALIZE_WHITESPACE
    # Load this folder into FiftyOne (pip install fiftyone): python load_fiftyone.py
    import json
    from pathlib import Path
    <BLANKLINE>
    import fiftyone as fo
    <BLANKLINE>
    FIELDS = {
        'n': float,
        'tags': json.loads,
    }
    dataset = fo.Dataset.from_dir(dataset_dir=str(Path(__file__).parent), dataset_type=fo.types.CSVDataset,
                                  fields=FIELDS)
    print(dataset)
    """
    lines = []
    for name in labels.columns:
        if name == "filepath":
            continue
        col = labels[name]
        if name == "tags":
            parser = "json.loads"
        elif pd.api.types.is_bool_dtype(col):
            parser = "lambda v: v == 'True'"
        elif pd.api.types.is_numeric_dtype(col):
            parser = "float"
        else:
            parser = "None"  # text
        lines.append(f"    {str(name)!r}: {parser},")
    return "\n".join([
        f"# Load this folder into FiftyOne (pip install fiftyone): python {FIFTYONE_SCRIPT}",
        "import json", "from pathlib import Path", "", "import fiftyone as fo", "",
        "FIELDS = {", *lines, "}",
        "dataset = fo.Dataset.from_dir(dataset_dir=str(Path(__file__).parent), dataset_type=fo.types.CSVDataset,",
        "                              fields=FIELDS)",
        "print(dataset)", "",
    ])

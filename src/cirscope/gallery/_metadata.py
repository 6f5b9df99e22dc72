"""Gallery metadata: reading a table and joining it onto the images by file name.

What does not join cleanly (rows naming no image, images without a row, a name several
images share, renamed columns) is said in a :class:`MetadataWarning` with counts and examples.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

_KEY_CANDIDATES = ("file", "filename", "file_name", "path", "image", "name", "id")
#: What a user's own metadata column called ``id`` is renamed to (``id`` is the gallery's).
USER_ID_COLUMN = "id_original"
_EXAMPLES = 5


class MetadataWarning(UserWarning):
    """Metadata that did not join cleanly: rows naming no image, images without a row, renamed columns."""


def read_table(metadata: str | os.PathLike | pd.DataFrame) -> pd.DataFrame:
    """A metadata table: a DataFrame (copied) or a CSV, TSV, Parquet or JSON file."""
    if isinstance(metadata, pd.DataFrame):
        return metadata.copy()
    path = Path(metadata)
    if not path.is_file():
        raise FileNotFoundError(f"Metadata file not found: {path}")
    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if path.suffix.lower() in (".tsv", ".tab"):
        return pd.read_csv(path, sep="\t")
    if path.suffix.lower() == ".json":
        return pd.read_json(path)
    return pd.read_csv(path)


def _examples(values: Sequence[Any]) -> str:
    shown = ", ".join(repr(str(v)) for v in list(values)[:_EXAMPLES])
    return shown + (", ..." if len(values) > _EXAMPLES else "")


def join_metadata(table: pd.DataFrame, meta: pd.DataFrame, key: str | None) -> pd.DataFrame:
    """Join ``meta`` onto the gallery table by file name, warning about whatever did not join."""
    if key is None:
        key = next((c for c in _KEY_CANDIDATES if c in meta.columns), None)
        if key is None:
            raise KeyError(
                f"Cannot tell which metadata column holds file names: none of {list(_KEY_CANDIDATES)} "
                f"among its columns {list(meta.columns)}. Pass key='your_column'."
            )
    require_columns(meta, [key], "metadata")
    meta = meta.reset_index(drop=True)
    keys = meta[key].astype(str).str.replace("\\", "/", regex=False)
    ids = table["id"].astype(str)
    match = pd.Index(ids).get_indexer(keys)  # by path relative to the folder, else by bare file name
    names = ids.str.rsplit("/", n=1).str[-1]
    # a bare file name joins only when one image has it: "x.jpg" with a/x.jpg and b/x.jpg is ambiguous
    shared = names.duplicated(keep=False).to_numpy()
    by_name = pd.Series(np.flatnonzero(~shared), index=names[~shared].to_numpy())
    unmatched = match < 0
    bare = keys[unmatched].str.rsplit("/", n=1).str[-1]
    match[unmatched] = by_name.reindex(bare.to_numpy()).fillna(-1).to_numpy(dtype=np.int64)
    ambiguous = keys[unmatched][bare.isin(set(names[shared])).to_numpy() & (match[unmatched] < 0)]
    if len(ambiguous):
        warnings.warn(
            f"{len(ambiguous)} metadata rows give a file name that several images share and were not used "
            f"(column {key!r}: {_examples(ambiguous.tolist())}); name those images by their path relative to "
            "the folder (e.g. 'a/x.jpg').",
            MetadataWarning,
            stacklevel=3,
        )
    hit = match >= 0
    if not hit.any():
        raise ValueError(
            f"No metadata row matches an image: column {key!r} holds e.g. {keys.head(3).tolist()} while the "
            f"images are e.g. {table['id'].head(3).tolist()}. Use file names relative to the folder, or pass key=."
        )
    if len(np.unique(match[hit])) != int(hit.sum()):
        raise ValueError(f"Several metadata rows name the same image in column {key!r}: remove the duplicates.")
    missing = keys[~hit & ~keys.isin(set(ambiguous)).to_numpy()]
    if len(missing):
        warnings.warn(
            f"{len(missing)} of {len(meta)} metadata rows name no image in the folder and were not used "
            f"(column {key!r}: {_examples(missing.tolist())}).",
            MetadataWarning,
            stacklevel=3,
        )
    covered = np.zeros(len(table), dtype=bool)
    covered[match[hit]] = True
    if not covered.all():
        lonely = ids[~covered]
        warnings.warn(
            f"{len(lonely)} of {len(table)} images have no metadata row; their metadata columns are empty "
            f"(missing values): {_examples(lonely.tolist())}.",
            MetadataWarning,
            stacklevel=3,
        )
    cols = [c for c in meta.columns if c != key]
    extra = meta.loc[hit, cols].set_axis(match[hit], axis=0).reindex(range(len(table)))
    if "id" in cols:
        new = USER_ID_COLUMN if USER_ID_COLUMN not in cols else f"{USER_ID_COLUMN}_meta"
        extra = extra.rename(columns={"id": new})
        warnings.warn(
            f"The metadata column 'id' was kept as {new!r}: 'id' is the gallery's own column (each image's path "
            "relative to the folder).",
            MetadataWarning,
            stacklevel=3,
        )
    clash = [c for c in extra.columns if c in table.columns]
    extra = extra.rename(columns={c: f"{c}_meta" for c in clash})
    return pd.concat([table, extra.reset_index(drop=True)], axis=1)


def concat_metadata(table: pd.DataFrame, metadata: pd.DataFrame) -> pd.DataFrame:
    """Put ``metadata`` (one row per image, in order) beside the gallery table."""
    if not isinstance(metadata, pd.DataFrame):
        raise TypeError(f"metadata must be a pandas DataFrame, got {type(metadata).__name__}")
    if len(metadata) != len(table):
        raise ValueError(f"metadata has {len(metadata)} rows for {len(table)} images: give one row per image")
    metadata = metadata.reset_index(drop=True)
    clash = [c for c in metadata.columns if c in table.columns]
    if clash:
        raise ValueError(f"metadata columns {clash} clash with the gallery's own columns: rename them")
    return pd.concat([table.reset_index(drop=True), metadata], axis=1)


def require_columns(df: pd.DataFrame, names: Sequence[str], what: str) -> None:
    """Raise a :class:`KeyError` naming the available columns when one of ``names`` is missing."""
    missing = [n for n in names if n not in df.columns]
    if missing:
        raise KeyError(f"Unknown {what} column(s) {missing}; available columns: {list(df.columns)}")

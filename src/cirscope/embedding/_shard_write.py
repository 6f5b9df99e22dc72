"""Write one embedding shard: a Parquet file of ids, sources and embeddings, with its problems table.

The folder layout, the manifest and reading are in :mod:`cirscope.embedding._shards`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cirscope.embedding._shards import atomic_write, file_checksum, write_problems


def shard_schema(dim: int):
    """The Arrow schema of an embedding shard."""
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("source", pa.string(), nullable=False),
            pa.field("embedding", pa.list_(pa.float32(), dim), nullable=False),
            pa.field("model", pa.string(), nullable=False),
        ]
    )


def write_shard(
    folder: str | os.PathLike,
    name: str,
    ids: Sequence[str],
    sources: Sequence[str],
    embeddings: np.ndarray,
    model_key: str,
    problems: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Write one shard (and its problems) atomically; return its manifest entry.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> d = tempfile.mkdtemp()
    >>> entry = write_shard(d, "shard-00000", ["a", "b"], ["a.jpg", "b.jpg"], np.eye(2, dtype=np.float32), "m")
    >>> entry["rows"], entry["file"]
    (2, 'shard-00000.parquet')
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = Path(folder)
    emb = np.ascontiguousarray(embeddings, dtype=np.float32)
    if emb.ndim != 2 or len(emb) != len(ids) or len(ids) != len(sources):
        raise ValueError(f"shard {name}: {len(ids)} ids, {len(sources)} sources and embeddings {emb.shape} disagree")
    dim = emb.shape[1]
    flat = pa.array(emb.reshape(-1), pa.float32())
    table = pa.table(
        [
            pa.array([str(i) for i in ids], pa.string()),
            pa.array([str(s) for s in sources], pa.string()),
            pa.FixedSizeListArray.from_arrays(flat, dim),
            pa.array([model_key] * len(ids), pa.string()),
        ],
        schema=shard_schema(dim),
    )
    path = folder / f"{name}.parquet"
    atomic_write(path, lambda fh: pq.write_table(table, fh))
    n_problems = 0
    if problems is not None and len(problems):
        write_problems(folder / f"{name}.problems.parquet", problems)
        n_problems = len(problems)
    return {
        "name": name,
        "file": path.name,
        "rows": len(ids),
        "problems": n_problems,
        "bytes": path.stat().st_size,
        "checksum": file_checksum(path),
    }

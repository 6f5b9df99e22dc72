"""Rank a space's gallery for a text, an image, a gallery row or a composed query.

:func:`search_hits` is the array path (what a slider move runs): one neighbour search,
returning :class:`Hits` (rows, scores and the query vector). :func:`search` returns the same
ranking as a DataFrame, built from the hits.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cirscope._core.arrays import top_k
from cirscope.query._composed import ComposedQuery, ResolvedQuery
from cirscope.query._methods import METHODS

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.space._space import Space

__all__ = ["Hits", "exact_neighbors", "search", "search_hits"]

_COLUMNS: weakref.WeakKeyDictionary[Any, dict[str, np.ndarray]] = weakref.WeakKeyDictionary()


def exact_neighbors(
    embeddings: np.ndarray,
    vector: np.ndarray,
    k: int,
    *,
    mask: np.ndarray | None = None,
    exclude: list[int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` rows with the highest cosine to ``vector`` (exact, numpy), best first.

    ``mask`` (bool, one per row) keeps only the rows where it is true; ``exclude`` lists
    rows to leave out. Returns ``(rows, scores)``; fewer than ``k`` when fewer rows qualify.

    Examples
    --------
    >>> emb = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    >>> rows, scores = exact_neighbors(emb, np.array([1.0, 0.0]), 2)
    >>> rows.tolist(), [round(float(s), 2) for s in scores]
    ([0, 2], [1.0, 0.6])
    """
    scores = embeddings @ np.asarray(vector, dtype=embeddings.dtype)
    if mask is not None or exclude:
        scores = scores.astype(np.float64)
        if mask is not None:
            scores[~mask] = -np.inf
        if exclude:
            scores[np.asarray(exclude, dtype=np.int64)] = -np.inf
    order = top_k(scores, k, finite_only=True)
    return order.astype(np.int64), scores[order].astype(np.float32)


def _neighbors(
    space: Space, vector: np.ndarray, k: int, mask: np.ndarray | None, exclude: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    rows, scores = space.index.query(vector, k, mask=mask, exclude=exclude)
    return np.asarray(rows, dtype=np.int64), np.asarray(scores, dtype=np.float32)


def _columns(space: Space) -> dict[str, np.ndarray]:
    """The gallery's metadata as numpy columns (cached per gallery: a search takes 20 rows of them)."""
    gallery = space.gallery
    columns = _COLUMNS.get(gallery)
    if columns is None:
        meta = gallery.metadata
        columns = {str(c): meta[c].to_numpy() for c in meta.columns}
        _COLUMNS[gallery] = columns
    return columns


def _check_mask(mask: Any, n: int) -> np.ndarray | None:
    if mask is None:
        return None
    arr = np.asarray(mask.to_numpy() if isinstance(mask, pd.Series) else mask)
    if arr.dtype != bool:
        raise TypeError(
            f"mask must be a boolean array with one value per gallery row (got dtype {arr.dtype}); e.g. "
            "mask=space.gallery.metadata['color'] == 'red'"
        )
    if arr.shape != (n,):
        raise ValueError(f"mask has shape {arr.shape} but the gallery has {n} rows: pass one value per row")
    return arr


def _is_image_path(query: str) -> bool:
    from cirscope.gallery._decode import IMAGE_EXTENSIONS

    p = Path(query)
    return p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()


def _plain_method(method: str | None, kind: str, params: dict[str, Any]) -> str:
    method = method or kind
    if method != kind:
        raise ValueError(
            f"A {kind} query is searched with method {kind!r}, not {method!r}; for a composed query pass "
            "cs.ComposedQuery(reference, text)"
        )
    if params:
        raise TypeError(f"A {kind} query takes no method parameters, got {sorted(params)}")
    return method


def _is_vector(query: Any) -> bool:
    """Whether an array is a query vector rather than an image (decided by shape and dtype).

    A vector is a 1-D array ``(D,)`` or a 2-D floating-point array of one row ``(1, D)``.
    Images are ``(H, W, 3)`` / ``(H, W, 4)`` arrays or 2-D integer (grayscale) arrays.

    Examples
    --------
    >>> _is_vector(np.ones(8)), _is_vector(np.ones((1, 8))), _is_vector(np.zeros((4, 4, 3), np.uint8))
    (True, True, False)
    """
    if not isinstance(query, np.ndarray):
        return False
    if query.ndim == 1:
        return True
    return query.ndim == 2 and query.shape[0] == 1 and query.dtype.kind == "f"


def _query_vector(query: np.ndarray, dim: int) -> np.ndarray:
    """A validated, L2-normalised ``(D,)`` float32 query vector."""
    vec = query.reshape(-1)
    if query.dtype.kind not in "fiu":
        raise TypeError(f"A query vector must hold numbers, got dtype {query.dtype}")
    if vec.shape[0] != dim:
        raise ValueError(f"A query vector must have {dim} dimensions, got {vec.shape[0]} (shape {query.shape})")
    vec = vec.astype(np.float64)
    if not np.all(np.isfinite(vec)) or not np.any(vec):
        raise ValueError("The query vector has NaN/infinite values or is all zeros")
    return (vec / np.linalg.norm(vec)).astype(np.float32)


def _resolve(space: Space, query: Any, method: str | None, params: dict[str, Any]):
    """``(vector, reference_row, method, info)`` for any query kind."""
    if isinstance(query, (ComposedQuery, ResolvedQuery)):
        resolved = query.resolve(space) if isinstance(query, ComposedQuery) else query
        method = method or "pdv"
        if method not in METHODS:
            raise ValueError(f"Unknown composing method {method!r}; choose one of {list(METHODS)}")
        vector = resolved.vector(method, **params)
        full = {**METHODS[method].defaults(), **{k: float(v) for k, v in params.items() if v is not None}}
        return vector, resolved.reference_row, method, {**resolved.info(), "params": full}
    if isinstance(query, (bool, np.bool_)):
        raise TypeError("A query must be a text, an image, a gallery row or a ComposedQuery, not a bool")
    if isinstance(query, (int, np.integer)):
        row = int(query)
        n = len(space.gallery)
        if not 0 <= row < n:
            raise IndexError(f"Gallery row {row} is outside 0..{n - 1}")
        return space.image_embeddings[row], row, _plain_method(method, "image", params), {"reference_row": row}
    if isinstance(query, str):
        if not query.strip():
            raise ValueError("The text query is empty")
        if _is_image_path(query):
            vec = space.encode_image(Path(query))
            return vec, None, _plain_method(method, "image", params), {"reference": query}
        vec = space.encode_text([query])[0]
        return vec, None, _plain_method(method, "text", params), {"text": query}
    if (
        isinstance(query, np.ndarray)
        and query.ndim == 2
        and query.dtype.kind == "f"
        and query.shape[0] > 1
        and query.shape[1] == space.image_embeddings.shape[1]
    ):
        raise ValueError(
            f"search takes one query vector, got {query.shape[0]} (shape {query.shape}); pass a (D,) or (1, D) "
            "array, or search each row"
        )
    if _is_vector(query):
        vec = _query_vector(np.asarray(query), space.image_embeddings.shape[1])
        return vec, None, _plain_method(method, "vector", params), {}
    vec = space.encode_image(query)  # PIL image, image array, Path, bytes
    label = str(query) if isinstance(query, Path) else f"<{type(query).__name__}>"
    return vec, None, _plain_method(method, "image", params), {"reference": label}


@dataclass(frozen=True, eq=False)
class Hits:
    """One search's answer as arrays: what a slider move needs, without a DataFrame.

    Attributes
    ----------
    rows : (k,) int64
        Gallery rows, best first.
    scores : (k,) float32
        Their cosines to the query vector.
    vector : (D,) float32
        The final query vector the gallery was ranked by (composed, if a composed query).
    method : str
        The method that made ``vector``.
    info : dict
        The resolved query (texts, sources, params, ``k``, excluded rows): ``attrs["query"]``
        of :meth:`to_frame`.

    Examples
    --------
    >>> hits = search_hits(space, cs.ComposedQuery(0, "make it blue"), k=5)
    >>> hits.rows.shape, hits.vector.shape, hits.method, 0 in hits.rows  # the reference is left out
    ((5,), (128,), 'pdv', False)
    >>> frame = hits.to_frame()
    >>> frame["row"].tolist() == hits.rows.tolist(), np.array_equal(frame.attrs["vector"], hits.vector)
    (True, True)
    """

    rows: np.ndarray
    scores: np.ndarray
    vector: np.ndarray
    method: str
    info: dict[str, Any]
    _columns: dict[str, np.ndarray] = field(repr=False)

    def __len__(self) -> int:
        return int(self.rows.size)

    def to_frame(self) -> pd.DataFrame:
        """The hits as :func:`search` returns them: rank, row, id, score, then the metadata columns.

        ``attrs["query"]`` holds the resolved query and ``attrs["vector"]`` the query vector (a
        tuple of its float32 values: a tuple, so frames with attrs still concatenate).
        """
        rows, columns = self.rows, self._columns
        out = pd.DataFrame(
            {
                "rank": np.arange(1, len(rows) + 1),
                "row": rows,
                "id": columns["id"][rows],
                "score": self.scores,
                **{name: values[rows] for name, values in columns.items() if name != "id"},
            }
        )
        out.attrs["query"] = dict(self.info)
        out.attrs["vector"] = tuple(self.vector.tolist())
        return out


def search_hits(
    space: Space,
    query: Any,
    method: str | None = None,
    k: int = 20,
    exclude_reference: bool = True,
    mask: Any = None,
    **params: Any,
) -> Hits:
    """:func:`search` as arrays: one neighbour search, returning :class:`Hits`.

    Takes the same arguments as :func:`search`; ``search(...)`` equals
    ``search_hits(...).to_frame()``. The hits carry the query vector, so placing the query
    on a map (:func:`cirscope.projection._place.place` with ``rows=``/``scores=``) needs no second search.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    mask_arr = None if mask is None else _check_mask(mask, len(space.gallery))
    vector, ref_row, method, info = _resolve(space, query, method, params)
    exclude = [ref_row] if (exclude_reference and ref_row is not None) else []
    rows, scores = _neighbors(space, vector, int(k), mask_arr, exclude)
    return Hits(
        rows=rows,
        scores=scores,
        vector=np.asarray(vector, dtype=np.float32),
        method=method,
        info={**info, "method": method, "k": int(k), "excluded": exclude},
        _columns=_columns(space),
    )


def search(
    space: Space,
    query: Any,
    method: str | None = None,
    k: int = 20,
    exclude_reference: bool = True,
    mask: Any = None,
    **params: Any,
) -> pd.DataFrame:
    """Rank the gallery of ``space`` for a query; the best ``k`` rows as a DataFrame.

    Parameters
    ----------
    space
        The :class:`~cirscope.Space`.
    query
        A text (method ``"text"``), an image (PIL image, ``(H, W, 3)`` array, a
        :class:`~pathlib.Path` or a string naming an existing image file: method
        ``"image"``), a gallery row (int: method ``"image"``), a query vector (a ``(D,)``
        array, or a floating-point ``(1, D)`` array: method ``"vector"``), or a
        :class:`~cirscope.ComposedQuery` (default method ``"pdv"``; any of
        ``"image"``, ``"text"``, ``"sum"``, ``"weimocir"``, ``"slerp"``, ``"pdv"``).
    method
        The composing method (see :data:`cirscope.query._methods.METHODS`).
    k
        How many results.
    exclude_reference
        Leave the reference image out of the results when it is a gallery row (the CIRR
        convention).
    mask
        Optional boolean array (one per gallery row): search only where it is true.
    **params
        The method's parameters, e.g. ``alpha_t=1.2, alpha_i=1.4, beta=0.75`` for PDV.

    Returns
    -------
    pandas.DataFrame
        Columns ``rank`` (1-based), ``row`` (gallery position), ``id``, ``score`` (cosine),
        then the gallery's metadata columns. ``df.attrs["query"]`` holds the resolved query
        (texts, their sources, method, params) and ``df.attrs["vector"]`` the query vector the
        gallery was ranked by (``np.asarray(df.attrs["vector"], np.float32)``; one search made
        both). Thumbnails: ``space.gallery.thumbnail(row)``.

    Examples
    --------
    >>> q = cs.ComposedQuery(0, "make it blue")
    >>> df = space.search(q, method="pdv", k=5, alpha_t=1.2, alpha_i=1.4, beta=0.75)
    >>> df.columns[:4].tolist(), df["rank"].tolist(), df.attrs["query"]["params"]["beta"]
    (['rank', 'row', 'id', 'score'], [1, 2, 3, 4, 5], 0.75)
    >>> vector = np.asarray(df.attrs["vector"], np.float32)
    >>> np.allclose(vector, q.vector(space, "pdv", alpha_t=1.2, alpha_i=1.4, beta=0.75))
    True
    >>> space.search("a red star", k=2)[["shape", "color"]].values.tolist()
    [['star', 'red'], ['star', 'red']]
    """
    return search_hits(space, query, method, k, exclude_reference, mask, **params).to_frame()

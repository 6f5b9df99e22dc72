"""Shared helpers of the diagnostics: attribute labels, row selectors, query resolution, ranking."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.space._space import Space

MISSING = "(missing)"


def attribute_columns(space: Space, max_values: int = 50) -> list[str]:
    """Metadata columns usable as a sensitive attribute: 2 to ``max_values`` distinct values, not ids/paths."""
    meta = space.gallery.metadata
    out = []
    for col in meta.columns:
        if col in ("id", "caption", "path", "file", "filename", "file_name", "url"):
            continue
        series = meta[col]
        if pd.api.types.is_float_dtype(series):
            continue
        n = series.nunique(dropna=True)
        if 2 <= n <= max_values:
            out.append(str(col))
    return out


def check_space(space: Any) -> Space:
    """Raise a clear error unless ``space`` is a :class:`~cirscope.Space`."""
    from cirscope.space._space import Space

    if not isinstance(space, Space):
        raise TypeError(
            f"Diagnostics take a cirscope Space, got {type(space).__name__}; build one with "
            "cs.Space(gallery, embedder) or cs.Space.from_embeddings(gallery, array)"
        )
    return space


def labels_of(space: Space, attribute: str | Sequence[Any] | np.ndarray | pd.Series) -> tuple[np.ndarray, str]:
    """``(labels, name)``: one string label per gallery row, from a column name or an array.

    Missing values become ``"(missing)"``.

    Examples
    --------
    >>> labels, name = labels_of(space, "color")
    >>> name, len(labels) == len(space), sorted(set(labels))[:3]
    ('color', True, ['blue', 'cyan', 'green'])
    """
    n = len(space.gallery)
    if isinstance(attribute, str):
        values = space.gallery.column(attribute)
        name = attribute
    else:
        values = pd.Series(np.asarray(attribute, dtype=object))
        name = str(getattr(attribute, "name", None) or "attribute")
        if len(values) != n:
            raise ValueError(
                f"The attribute has {len(values)} labels but the gallery has {n} rows: pass a column name or "
                "one label per gallery row"
            )
    labels = np.array([MISSING if _is_missing(v) else str(v) for v in values], dtype=object)
    return labels, name


def _is_missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def selector_rows(space: Space, selector: Any, what: str = "selector") -> np.ndarray:
    """Gallery rows chosen by a selector: ``{column: value or [values]}``, a boolean mask or rows.

    Examples
    --------
    >>> rows = selector_rows(space, {"shape": "star", "color": ["red", "blue"]})
    >>> sorted(set(zip(space.gallery.column("shape").iloc[rows], space.gallery.column("color").iloc[rows])))
    [('star', 'blue'), ('star', 'red')]
    """
    n = len(space.gallery)
    if isinstance(selector, Mapping):
        if not selector:
            raise ValueError(f"The {what} {{}} selects nothing: name a column and a value, e.g. {{'color': 'red'}}")
        mask = np.ones(n, dtype=bool)
        for column, value in selector.items():
            col = space.gallery.column(str(column)).astype(str).to_numpy()
            values = [value] if isinstance(value, (str, int, float, np.integer, np.floating)) else list(value)
            mask &= np.isin(col, [str(v) for v in values])
        return np.flatnonzero(mask)
    arr = np.asarray(selector.to_numpy() if isinstance(selector, pd.Series) else selector)
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise ValueError(f"The {what} mask has shape {arr.shape}; the gallery has {n} rows")
        return np.flatnonzero(arr)
    if arr.ndim == 1 and (arr.size == 0 or np.issubdtype(arr.dtype, np.integer)):
        rows = arr.astype(np.int64)
        bad = rows[(rows < 0) | (rows >= n)]
        if bad.size:
            raise IndexError(f"The {what} names rows outside the gallery (0..{n - 1}): {bad[:5].tolist()}")
        return rows
    raise TypeError(
        f"The {what} must be {{column: value}}, a boolean mask or a list of gallery rows; got {type(selector).__name__}"
    )


def check_mask(space: Space, mask: Any) -> np.ndarray | None:
    """A boolean array over the gallery (or ``None``) from a mask, selector or row list."""
    if mask is None:
        return None
    out = np.zeros(len(space.gallery), dtype=bool)
    out[selector_rows(space, mask, "mask")] = True
    return out


@dataclass
class Query:
    """One resolved query: a display name, a unit vector and rows left out of its ranking."""

    name: str
    vector: np.ndarray
    kind: str
    exclude: list[int] = field(default_factory=list)
    #: The words of the query (a text query's text, a composed query's modification text).
    text: str | None = None


def _query_name(space: Space, query: Any) -> str:
    from cirscope.query._composed import ComposedQuery

    if isinstance(query, str):
        return query
    if isinstance(query, ComposedQuery):
        ref = query.reference
        ref_s = f"row {int(ref)}" if isinstance(ref, (int, np.integer)) else str(ref)
        return f"[{ref_s}] + {query.text!r}"
    if isinstance(query, (int, np.integer)):
        return f"image row {int(query)}"
    return f"<{type(query).__name__}>"


def resolve_queries(space: Space, queries: Any, method: str | None = None, **params: Any) -> list[Query]:
    """Resolve texts, :class:`~cirscope.ComposedQuery` objects, gallery rows or vectors.

    ``queries`` is one query, a list of them, or ``{name: query}``. Texts are encoded in
    one batch; a composed query uses ``method`` (default ``"pdv"``) with ``params`` and
    leaves its reference row out of its ranking.
    """
    from cirscope.query._composed import ComposedQuery
    from cirscope.query._methods import METHODS

    if isinstance(queries, Mapping):
        items = [(str(k), v) for k, v in queries.items()]
    elif isinstance(queries, (str, ComposedQuery, int, np.integer)) or (
        isinstance(queries, np.ndarray) and queries.ndim == 1 and queries.dtype.kind == "f"
    ):
        items = [(None, queries)]
    else:
        items = [(None, q) for q in queries]
    if not items:
        raise ValueError("No queries given: pass a text, a ComposedQuery, or a list of them")
    texts = [q for _, q in items if isinstance(q, str)]
    for t in texts:
        if not t.strip():
            raise ValueError("A text query is empty")
    text_vecs = dict(zip(texts, space.encode_text(texts), strict=True)) if texts else {}
    out: list[Query] = []
    for name, q in items:
        label = name or _query_name(space, q)
        if isinstance(q, bool):
            raise TypeError("A query must be a text, a ComposedQuery, a gallery row or a vector, not a bool")
        if isinstance(q, str):
            out.append(Query(label, np.asarray(text_vecs[q], dtype=np.float32), "text", text=q))
        elif isinstance(q, ComposedQuery):
            m = method or "pdv"
            if m not in METHODS:
                raise ValueError(f"Unknown composing method {m!r}; choose one of {list(METHODS)}")
            resolved = q.resolve(space)
            exclude = [] if resolved.reference_row is None else [int(resolved.reference_row)]
            out.append(Query(label, resolved.vector(m, **params), "composed", exclude, text=str(q.text)))
        elif isinstance(q, (int, np.integer)):
            row = int(q)
            if not 0 <= row < len(space):
                raise IndexError(f"Query row {row} is outside the gallery (0..{len(space) - 1})")
            out.append(Query(label, np.asarray(space.image_embeddings[row]), "image", [row]))
        else:
            vec = np.asarray(q, dtype=np.float64)
            if vec.shape != (space.dim,) or not np.all(np.isfinite(vec)) or not np.any(vec):
                raise ValueError(
                    f"A query vector must be finite, non-zero and have {space.dim} dimensions; got shape {vec.shape}"
                )
            out.append(Query(label, (vec / np.linalg.norm(vec)).astype(np.float32), "vector"))
    names = [q.name for q in out]
    if len(set(names)) != len(names):
        seen: dict[str, int] = {}
        for q in out:
            seen[q.name] = seen.get(q.name, 0) + 1
            if names.count(q.name) > 1:
                q.name = f"{q.name} #{seen[q.name]}"
    return out


def ranking(space: Space, query: Query, k: int | None, mask: np.ndarray | None = None) -> np.ndarray:
    """Gallery rows ranked for ``query`` (exact cosine, best first), ``k`` of them or all."""
    from cirscope.query._search import exact_neighbors

    n = len(space.gallery)
    rows, _ = exact_neighbors(space.image_embeddings, query.vector, n if k is None else k, mask=mask,
                              exclude=query.exclude)
    return rows


def knn_distances(emb: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Cosine distances and rows of every image's ``k`` nearest *other* images (scikit-learn, brute force).

    In float64: scikit-learn computes in the input's precision, and float32 distances are
    off by about 1e-7.
    """
    from sklearn.neighbors import NearestNeighbors

    if len(emb) <= k:
        raise ValueError(f"The gallery has {len(emb)} images; this needs more than k={k}")
    emb = np.asarray(emb, dtype=np.float64)
    nn = NearestNeighbors(n_neighbors=k, metric="cosine", algorithm="brute").fit(emb)
    dist, ind = nn.kneighbors()  # no X: each point's neighbours exclude itself
    return np.clip(dist, 0.0, 2.0), ind


def n_rankable(space: Space, query: Query, mask: np.ndarray | None) -> int:
    """How many rows can appear in ``query``'s ranking."""
    allowed = np.ones(len(space.gallery), dtype=bool) if mask is None else mask.copy()
    if query.exclude:
        allowed[query.exclude] = False
    return int(allowed.sum())


def check_ks(k: int | Sequence[int]) -> tuple[int, ...]:
    """A sorted tuple of positive integer cut-offs."""
    ks = (k,) if isinstance(k, (int, np.integer)) else tuple(k)
    if not ks:
        raise ValueError("Give at least one cut-off k, e.g. k=(10, 50, 100)")
    for value in ks:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"Every k must be a positive integer, got {value!r}")
    return tuple(sorted({int(v) for v in ks}))


def default_texts(space: Space) -> list[str]:
    """Texts describing a gallery: its unique captions, else prompts of its metadata words."""
    meta = space.gallery.metadata
    if "caption" in meta.columns:
        caps = [str(c) for c in pd.unique(meta["caption"].dropna()) if str(c).strip()]
        if caps:
            return caps
    prompts = default_prompts(space, exclude=())
    if not prompts:
        raise ValueError(
            "The gallery has no caption column and no categorical metadata to build prompts from: pass texts=[...]"
        )
    return prompts


def default_prompts(space: Space, exclude: Sequence[str] = ()) -> list[str]:
    """Prompts for every word of the gallery's categorical columns (except ``exclude``)."""
    from cirscope.query._vocabulary import Vocabulary

    vocab = Vocabulary.from_metadata(space.gallery.metadata)
    return [vocab.prompt(fam, w) for fam, words in vocab.families.items() if fam not in exclude for w in words]


def prompt_template(space: Space, attribute: str) -> str:
    """The zero-shot prompt template for a column ("a photo of {}" unless the vocabulary knows better)."""
    from cirscope.query._vocabulary import Vocabulary

    vocab = Vocabulary.from_metadata(space.gallery.metadata)
    return vocab.prompts.get(attribute, "a photo of {}")


def progress_bar(iterable: Any, total: int | None, desc: str, enabled: bool) -> Any:
    """A ``tqdm.auto`` bar around ``iterable`` when ``enabled`` (and the work is big)."""
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, leave=False)

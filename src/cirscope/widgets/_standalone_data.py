"""What a kernel-free report holds: results on a grid of slider values, the map, text and thumbnails.

Plain functions (no widget, no HTML): :mod:`cirscope.widgets._standalone` calls them and
:mod:`cirscope.widgets._standalone_page` writes what they return into the page. Arrays travel
as ``{"dtype", "data"}`` with little-endian bytes in base64 (:func:`packed`): gallery rows as
``uint16`` (``uint32`` past 65,535 images), cosines quantised to ``int16``, map coordinates
quantised to ``uint16`` over one square frame (so the map keeps its aspect ratio).
"""

from __future__ import annotations

import base64
import io
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cirscope.query._methods import METHODS, Param
from cirscope.query._search import search_hits

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.gallery._table import Gallery
    from cirscope.space._space import Space

__all__ = [
    "COORD_LEVELS",
    "DEFAULT_ALPHAS",
    "DEFAULT_BETAS",
    "DEFAULT_WEIGHTS",
    "MAX_GRID_POINTS",
    "SCORE_SCALE",
    "GridResults",
    "SavedQuery",
    "axis_values",
    "grid_results",
    "map_frame",
    "packed",
    "quantize_coords",
    "query_axes",
    "text_columns",
    "thumbnails",
    "unpacked",
]

#: PDV's alpha_t and alpha_i on the report's sliders (the whole range of the panel's sliders, 0.5 apart).
DEFAULT_ALPHAS: tuple[float, ...] = (-0.5, 0.0, 0.5, 1.0, 1.5, 2.0)
#: PDV's fusion weight beta on the report's slider.
DEFAULT_BETAS: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
#: The text weight ``a`` of WeiMoCIR and Slerp on the report's slider.
DEFAULT_WEIGHTS: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
#: Most slider settings one saved query may precompute (each costs one search).
MAX_GRID_POINTS = 4096
#: Cosines are stored as ``round(score * SCORE_SCALE)`` in int16 (a step of 3e-5).
SCORE_SCALE = 32767
#: Map coordinates are stored as 0..COORD_LEVELS in uint16 over the frame of :func:`map_frame`.
COORD_LEVELS = 65535

_AXIS_ARGUMENT = {"alpha_t": "alphas", "alpha_i": "alphas", "beta": "betas", "a": "weights"}


@dataclass
class SavedQuery:
    """One query of a report: what to search, with which method, and where its sliders start."""

    query: Any  # a ComposedQuery, a text (str) or a gallery row (int)
    method: str
    label: str
    start: dict[str, float] = field(default_factory=dict)


@dataclass
class GridResults:
    """A saved query searched at every setting of its sliders.

    ``axes`` lists ``(param, values)`` per slider; point ``p`` of the grid is the C-order
    (row-major) index of one value per axis, as :func:`itertools.product` walks them.
    ``rows`` is ``(G, k)`` int64 (-1 where fewer than ``k`` results), ``scores`` ``(G, k)``
    float32 (NaN there), ``info`` the resolved query of the first search.
    """

    axes: list[tuple[Param, list[float]]]
    rows: np.ndarray
    scores: np.ndarray
    info: dict[str, Any]

    def params_at(self, point: int) -> dict[str, float]:
        """The parameter values of grid point ``point``."""
        shape = [len(values) for _, values in self.axes]
        index = np.unravel_index(point, shape) if shape else ()
        return {p.name: values[i] for (p, values), i in zip(self.axes, index, strict=True)}


def packed(values: np.ndarray, dtype: str) -> dict[str, str]:
    """An array as ``{"dtype", "data"}``: its little-endian bytes in base64 (a JavaScript typed array).

    Examples
    --------
    >>> packed(np.array([1, 258]), "uint16")
    {'dtype': 'uint16', 'data': 'AQACAQ=='}
    """
    arr = np.ascontiguousarray(np.asarray(values).astype(np.dtype(dtype).newbyteorder("<"), copy=False))
    return {"dtype": dtype, "data": base64.b64encode(arr.tobytes()).decode("ascii")}


def unpacked(message: Mapping[str, str]) -> np.ndarray:
    """The array of a :func:`packed` message.

    Examples
    --------
    >>> unpacked(packed(np.array([1, 258]), "uint16")).tolist()
    [1, 258]
    """
    return np.frombuffer(base64.b64decode(message["data"]), dtype=np.dtype(message["dtype"]).newbyteorder("<"))


def axis_values(param: Param, given: Sequence[float] | None, start: float | None = None) -> list[float]:
    """The grid of one slider: ``given`` (default: 5 even steps over its range, and its default)
    plus ``start``, sorted, each checked to be a finite number inside the parameter's range.

    Examples
    --------
    >>> axis_values(METHODS["pdv"].params[2], [0.0, 0.5, 1.0], start=0.75)
    [0.0, 0.5, 0.75, 1.0]
    """
    if given is None:
        given = [*np.linspace(param.min, param.max, 5).round(6).tolist(), param.default]
    try:
        values = [float(v) for v in given]
    except (TypeError, ValueError):
        raise TypeError(f"The grid of {param.name!r} must be a sequence of numbers, got {given!r}") from None
    if start is not None:
        values.append(float(start))
    arg = _AXIS_ARGUMENT.get(param.name, "grid")
    if not values:
        raise ValueError(f"The grid of {param.name!r} ({arg}=) is empty: give at least one value")
    bad = [v for v in values if not np.isfinite(v) or not param.min <= v <= param.max]
    if bad:
        raise ValueError(f"{arg}= holds {bad} for {param.name!r}, outside its range {param.min}..{param.max}")
    return sorted(set(values))


def query_axes(saved: SavedQuery, grids: Mapping[str, Sequence[float] | None]) -> list[tuple[Param, list[float]]]:
    """The sliders of a saved query and their values (none for a text or image query).

    ``grids`` maps a parameter name to its values (missing: :func:`axis_values`' default).

    Examples
    --------
    >>> saved = SavedQuery(cs.ComposedQuery(0, "make it blue"), "slerp", "q", {"a": 0.5})
    >>> [(p.name, values) for p, values in query_axes(saved, {"a": [0.0, 1.0]})]
    [('a', [0.0, 0.5, 1.0])]
    """
    from cirscope.query._composed import ComposedQuery

    method = METHODS.get(saved.method)
    params = method.params if method is not None and isinstance(saved.query, ComposedQuery) else ()
    axes = [(p, axis_values(p, grids.get(p.name), saved.start.get(p.name))) for p in params]
    total = int(np.prod([len(v) for _, v in axes])) if axes else 1
    if total > MAX_GRID_POINTS:
        sizes = " x ".join(str(len(v)) for _, v in axes)
        raise ValueError(f"{saved.label}: {sizes} = {total} slider settings, more than {MAX_GRID_POINTS}; "
                         "give fewer values (alphas=, betas=, weights=)")
    return axes


def grid_results(space: Space, saved: SavedQuery, axes: list[tuple[Param, list[float]]], k: int, *,
                 progress: Any = None) -> GridResults:
    """Search ``saved`` at every combination of its sliders' values (one ``space.search`` each).

    ``axes`` comes from :func:`query_axes`; ``progress`` is an open tqdm bar to advance per
    search (or ``None``).

    Examples
    --------
    >>> saved = SavedQuery(cs.ComposedQuery(0, "make it blue"), "pdv", "q")
    >>> axes = query_axes(saved, {"alpha_t": [1.0], "alpha_i": [0.0, 1.0], "beta": [0.75]})
    >>> res = grid_results(space, saved, axes, k=5)
    >>> res.rows.shape, res.params_at(1)
    ((2, 5), {'alpha_t': 1.0, 'alpha_i': 1.0, 'beta': 0.75})
    """
    total = int(np.prod([len(v) for _, v in axes])) if axes else 1
    rows = np.full((total, k), -1, dtype=np.int64)
    scores = np.full((total, k), np.nan, dtype=np.float32)
    info: dict[str, Any] = {}
    names = [p.name for p, _ in axes]
    for point, combo in enumerate(itertools.product(*[values for _, values in axes])):
        hits = search_hits(space, saved.query, method=saved.method, k=k, **dict(zip(names, combo, strict=True)))
        rows[point, : len(hits)] = hits.rows
        scores[point, : len(hits)] = hits.scores
        if point == 0:
            info = hits.info
        if progress is not None:
            progress.update(1)
    return GridResults(axes, rows, scores, info)


def map_frame(coords: np.ndarray) -> dict[str, float]:
    """The square frame the map's coordinates are quantised over: lower-left corner and side.

    Examples
    --------
    >>> map_frame(np.array([[0.0, 1.0], [4.0, 2.0]]))
    {'x0': 0.0, 'y0': 1.0, 'span': 4.0, 'levels': 65535}
    """
    xy = np.asarray(coords, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2 or not np.all(np.isfinite(xy)):
        raise ValueError(f"map coordinates must be a finite (N, 2) array, got shape {xy.shape}")
    lo = xy.min(axis=0) if len(xy) else np.zeros(2)
    hi = xy.max(axis=0) if len(xy) else np.ones(2)
    span = float(max(hi[0] - lo[0], hi[1] - lo[1]))
    return {"x0": float(lo[0]), "y0": float(lo[1]), "span": span if span > 0 else 1.0, "levels": COORD_LEVELS}


def quantize_coords(coords: np.ndarray, frame: Mapping[str, float]) -> np.ndarray:
    """Coordinates as uint16 steps of ``frame`` (interleaved x, y; NaN rows become 0).

    Examples
    --------
    >>> frame = map_frame(np.array([[0.0, 0.0], [2.0, 1.0]]))
    >>> quantize_coords(np.array([[0.0, 0.0], [2.0, 1.0], [1.0, 0.5]]), frame).tolist()
    [0, 0, 65535, 32768, 32768, 16384]
    """
    xy = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
    t = (xy - [frame["x0"], frame["y0"]]) / frame["span"] * frame["levels"]
    return np.clip(np.nan_to_num(np.rint(t)), 0, frame["levels"]).astype(np.uint16).ravel()


def _cell_text(value: Any, limit: int = 200) -> str:
    from cirscope.widgets._map_data import _text

    return _text(value, limit)


def text_columns(metadata: pd.DataFrame, names: Sequence[str]) -> list[dict[str, Any]]:
    """Metadata columns as text, dictionary-encoded: ``{"name", "labels", "codes"}`` each.

    Each distinct value is turned into text once (as the hover cards show it: missing is
    ``""``, floats keep 4 significant digits, texts are cut at 200 characters).

    Examples
    --------
    >>> cols = text_columns(pd.DataFrame({"c": ["red", None, "red"]}), ["c"])
    >>> cols[0]["labels"], unpacked(cols[0]["codes"]).tolist()
    (['red', ''], [0, 1, 0])
    """
    out = []
    for name in names:
        codes, uniques = pd.factorize(metadata[name], use_na_sentinel=True)
        labels = [_cell_text(v) for v in uniques]
        if (codes < 0).any():
            codes = np.where(codes < 0, len(labels), codes)
            labels.append("")
        dtype = "uint8" if len(labels) <= 256 else "uint16" if len(labels) <= 65536 else "uint32"
        out.append({"name": str(name), "labels": labels, "codes": packed(codes, dtype)})
    return out


def _webp(image: Any, size: int, quality: int) -> bytes:
    thumb = image.copy()
    thumb.thumbnail((size, size))
    buf = io.BytesIO()
    thumb.save(buf, format="WEBP", quality=quality, method=4)
    return buf.getvalue()


def thumbnails(gallery: Gallery, order: Sequence[int] | np.ndarray, *, size: int = 64, quality: int = 70,
               budget: int | None = None, progress: bool = True) -> dict[str, Any]:
    """WebP thumbnails of the rows in ``order`` (first come first), identical ones stored once.

    Rows past ``budget`` bytes of (distinct) images, and rows whose image cannot be decoded,
    get none. Returns ``{"type", "blobs" (base64 strings), "index" (packed int32, -1: none),
    "count", "bytes", "over_budget", "failed"}``.

    Examples
    --------
    >>> th = thumbnails(gallery, [0, 1, 2], size=32, progress=False)
    >>> th["type"], th["count"], unpacked(th["index"]).tolist()[:3]
    ('image/webp', 3, [0, 1, 2])
    """
    from tqdm.auto import tqdm

    from cirscope.gallery._decode import ImageProblem

    n = len(gallery)
    index = np.full(n, -1, dtype=np.int32)
    seen: dict[bytes, int] = {}
    blobs: list[str] = []
    total = over = failed = 0
    rows = np.asarray(order, dtype=np.int64)
    for row in tqdm(rows.tolist(), desc="Report thumbnails", unit="img", disable=not progress or len(rows) < 500,
                    leave=False):
        if index[row] >= 0:
            continue
        if budget is not None and total >= budget:
            over += 1
            continue
        try:
            data = _webp(gallery.load_image(row), size, quality)
        except ImageProblem:
            failed += 1
            continue
        slot = seen.get(data)
        if slot is None:
            slot = seen[data] = len(blobs)
            blobs.append(base64.b64encode(data).decode("ascii"))
            total += len(data)
        index[row] = slot
    return {"type": "image/webp", "blobs": blobs, "index": packed(index, "int32"), "count": int((index >= 0).sum()),
            "bytes": total, "over_budget": over, "failed": failed}

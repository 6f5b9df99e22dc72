"""Plain computations behind the widgets: map coordinates, point colours, metadata as text.

The 2-D maps themselves come from :meth:`cirscope.Space.map` (:mod:`cirscope.projection._compute`); this
module picks which one, colours points by a metadata column and turns metadata rows into
the strings shown on hover cards.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "AUTO_UMAP_LIMIT",
    "CATEGORICAL",
    "MISSING",
    "ROLES_KEY",
    "SEQUENTIAL",
    "MetadataText",
    "color_columns",
    "color_encoding",
    "column_roles",
    "default_color_column",
    "drawing_columns",
    "hover_columns",
    "map_coords",
    "panel_path",
    "path_key",
]

# a 20-colour qualitative palette (hand-picked for contrast on white)
CATEGORICAL: tuple[str, ...] = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
    "#86bcb6", "#d37295", "#8cd17d", "#b6992d", "#499894", "#f1ce63", "#a0cbe8", "#ffbe7d", "#d4a6c8",
    "#79706e", "#bab0ac",
)  # fmt: skip
MISSING = "#c8c8c8"
OTHER = "#9a9a9a"
# stops of a perceptually ordered dark-blue -> green -> yellow scale (continuous columns)
SEQUENTIAL: tuple[str, ...] = ("#440154", "#3b528b", "#21918c", "#5ec962", "#fde725")
# category labels that name a colour are drawn in that colour
_NAMED = {
    "red": "#dc1e1e", "orange": "#f58714", "yellow": "#e6d21e", "green": "#28aa3c", "cyan": "#28d2dc",
    "blue": "#2346e1", "purple": "#8c32be", "pink": "#fa87c3", "black": "#101010", "white": "#e8e8e8",
    "gray": "#808080", "grey": "#808080", "brown": "#694426", "magenta": "#d020d0", "violet": "#8f5fd0",
}  # fmt: skip


AUTO_UMAP_LIMIT = 20_000
_MAX_TEXT_VALUES = 100
#: The ``DataFrame.attrs`` key under which a dataset marks its columns for people (:func:`column_roles`).
ROLES_KEY = "cirscope"
#: How many facts (``id`` included) a map's hover card shows.
HOVER_FACTS = 6


def map_coords(space: Any, method: Any = "auto") -> np.ndarray:
    """The map coordinates of ``space``: ``"umap"``, ``"pca"``, ``"auto"`` or an ``(N, 2)`` array.

    ``"auto"`` is UMAP up to :data:`AUTO_UMAP_LIMIT` images and PCA above (UMAP of
    100,000 images takes minutes). Both come from :meth:`cirscope.Space.map`, which caches
    them on disk.

    Examples
    --------
    >>> map_coords(space, "pca").shape
    (120, 2)
    """
    n = len(space)
    if not isinstance(method, str):
        arr = np.asarray(method, dtype=np.float32)
        if arr.shape != (n, 2):
            raise ValueError(f"map coordinates must have shape ({n}, 2), one row per image; got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError("map coordinates contain NaN or infinite values")
        return arr
    if method not in ("auto", "umap", "pca"):
        raise ValueError(f"Unknown map {method!r}; use 'umap', 'pca', 'auto' or pass an (N, 2) array of coordinates")
    if method == "auto":
        method = "umap" if n <= AUTO_UMAP_LIMIT else "pca"
    return np.asarray(space.map(method), dtype=np.float32)


#: The composing methods whose query has a path (a parameter to sweep).
PATH_METHODS = ("pdv", "weimocir", "slerp")


def path_key(binding: Any) -> tuple | None:
    """What a query panel's path depends on: the query's inputs, method, the fixed parameters and ``k``.

    ``None`` when the panel's query has no path (no composed query, no results, or a method
    without a parameter to sweep). An ``alpha`` move keeps the key: the path stays.
    """
    from cirscope.analysis._path import path_params
    from cirscope.query._composed import ComposedQuery

    p = binding.panel
    current = binding.current_query()
    if current is None or binding.hits is None or not isinstance(current[0], ComposedQuery):
        return None
    method = current[1]
    if method not in PATH_METHODS:
        return None
    moved = path_params(method, "alpha")
    fixed = tuple(sorted((k, v) for k, v in p.params().items() if k not in moved))
    inputs = (p.reference, p.text.strip(), p.reference_text_override.strip(), p.composed_text_override.strip())
    return (inputs, method, fixed, int(p.k))


def panel_path(binding: Any, coords: np.ndarray) -> Any:
    """The :func:`~cirscope.analysis.query_path` of a query panel's query: ``alpha`` from 0 to its
    maximum, the other parameters as the panel has them, the panel's ``k``, on the map ``coords``.

    Examples
    --------
    >>> from cirscope.widgets._query_panel import QueryPanel
    >>> panel = QueryPanel(space, reference=0, text="make it blue", k=5)
    >>> path = panel_path(panel.binding, space.map("pca"))
    >>> path.rows.shape, float(path.values[-1]), path_key(panel.binding)[1:]
    ((21, 5), 2.0, ('pdv', (('beta', 0.75),), 5))
    """
    from cirscope.analysis._path import path_params, query_path

    query, method = binding.current_query()
    moved = path_params(method, "alpha")
    fixed = {k: v for k, v in binding.panel.params().items() if k not in moved}
    return query_path(binding.space, query, "alpha", method=method, k=int(binding.panel.k), map=coords, **fixed)


def drawing_columns(metadata: pd.DataFrame) -> set[str]:
    """Columns of a shapes-world gallery that say how an image was drawn (``x``, ``y``, ``radius``...).

    They describe pixels, not content, so the colour menu leaves them out. Only a gallery
    with the shapes world's attribute columns has them: a user's own ``x`` column stays.

    Examples
    --------
    >>> sorted(drawing_columns(cs.datasets.shapes(4).metadata))
    ['radius', 'rotation', 'x', 'y']
    >>> drawing_columns(pd.DataFrame({"x": [1.0, 2.0], "y": [3.0, 4.0]}))
    set()
    """
    from cirscope.datasets._shapes import ATTRIBUTES, DRAWING_COLUMNS

    if not set(ATTRIBUTES) <= set(metadata.columns):
        return set()
    return {c for c in DRAWING_COLUMNS if c in metadata.columns}


def column_roles(metadata: pd.DataFrame) -> dict[str, Any]:
    """Which metadata columns are for people (colour menu, hover card) and which colours the map first.

    A dataset marks them in ``metadata.attrs["cirscope"]``: ``{"columns": [...], "color_by":
    "..."}`` (both optional; names that are not columns are ignored). The shapes world
    needs no mark: its attribute columns, caption and source are for people (first, in that
    order), and so is any column a user adds to it; its drawing parameters are not. It is
    coloured by ``color`` (whose labels name the colour each point is drawn in, so the map's
    colours are the images' own). Any other table: every column but ``id``, coloured by the
    first with 2 to 20 values.

    Returns
    -------
    dict
        ``columns`` (list, in order, without ``id``) and ``color_by`` (a column, or ``""``).

    Examples
    --------
    >>> column_roles(cs.datasets.shapes(40).metadata)
    {'columns': ['shape', 'color', 'background', 'size', 'caption', 'source'], 'color_by': 'color'}
    >>> mine = cs.datasets.shapes(40).metadata.assign(note=["plain", "odd"] * 20)
    >>> column_roles(mine)["columns"][-2:]  # a user's own column stays for people
    ['source', 'note']
    >>> table = pd.DataFrame({"id": list("abcd"), "label": list("xyxy"), "file": list("pqrs")})
    >>> table.attrs["cirscope"] = {"columns": ["label"], "color_by": "label"}
    >>> column_roles(table)
    {'columns': ['label'], 'color_by': 'label'}
    """
    from cirscope.datasets._shapes import ATTRIBUTES

    columns, mark = _people_columns(metadata)
    present = {str(c) for c in metadata.columns if c != "id"}
    color_by = mark.get("color_by")
    if not (isinstance(color_by, str) and color_by in present):
        shapes_world = set(ATTRIBUTES) <= present and not mark.get("columns")
        color_by = "color" if shapes_world else _first_few_valued(metadata, columns)
    return {"columns": columns, "color_by": color_by}


def _people_columns(metadata: pd.DataFrame) -> tuple[list[str], dict]:
    """The columns for people (no counting of values: cheap on any size) and the dataset's mark."""
    from cirscope.datasets._shapes import ATTRIBUTES

    present = [str(c) for c in metadata.columns if c != "id"]
    mark = metadata.attrs.get(ROLES_KEY) if isinstance(metadata.attrs, dict) else None
    mark = mark if isinstance(mark, dict) else {}
    marked = mark.get("columns")
    if isinstance(marked, (list, tuple)) and marked:
        return [c for c in dict.fromkeys(str(m) for m in marked) if c in present], mark
    hidden = drawing_columns(metadata)
    if set(ATTRIBUTES) <= set(present):  # the shapes world's own columns first, then the user's additions
        known = [c for c in (*ATTRIBUTES, "caption", "source") if c in present]
        return known + [c for c in present if c not in hidden and c not in known], mark
    return [c for c in present if c not in hidden], mark


def _colorable(col: pd.Series) -> bool:
    distinct = col.nunique(dropna=True)
    if distinct < 2:
        return False
    return pd.api.types.is_numeric_dtype(col) or (distinct <= _MAX_TEXT_VALUES and distinct <= len(col) / 2)


def _first_few_valued(metadata: pd.DataFrame, columns: list[str]) -> str:
    for name in columns:
        if _colorable(metadata[name]) and 2 <= metadata[name].nunique(dropna=True) <= 20:
            return name
    return ""


def color_columns(metadata: pd.DataFrame) -> list[str]:
    """Columns worth colouring by: numeric ones and text ones with 2 to 100 repeating values.

    Only columns for people (:func:`column_roles`) are offered: ids and a shapes-world
    gallery's drawing parameters (:func:`drawing_columns`) are left out.

    Examples
    --------
    >>> color_columns(pd.DataFrame({"id": ["a", "b", "c", "d"], "k": ["x", "x", "y", "y"], "u": list("pqrs")}))
    ['k']
    >>> color_columns(cs.datasets.shapes(40, seed=0).metadata)
    ['shape', 'color', 'background', 'size']
    """
    return [name for name in _people_columns(metadata)[0] if _colorable(metadata[name])]


def default_color_column(metadata: pd.DataFrame) -> str:
    """The column the map is coloured by at first (:func:`column_roles`; "" when there is none).

    Examples
    --------
    >>> default_color_column(pd.DataFrame({"id": list("abcd"), "shape": ["star", "circle"] * 2}))
    'shape'
    >>> default_color_column(cs.datasets.shapes(40).metadata)  # its labels name the points' colours
    'color'
    """
    return column_roles(metadata)["color_by"]


def hover_columns(metadata: pd.DataFrame, color_by: str = "", limit: int = HOVER_FACTS) -> list[str]:
    """The facts a hover card shows: ``id``, the colouring column, then the other columns for people.

    Examples
    --------
    >>> hover_columns(cs.datasets.shapes(4).metadata, "size")
    ['id', 'size', 'shape', 'color', 'background', 'caption']
    """
    first = ["id"] if "id" in metadata.columns else []
    if color_by and color_by in metadata.columns:
        first.append(color_by)
    return list(dict.fromkeys([*first, *_people_columns(metadata)[0]]))[:limit]


def _hex_to_rgb(color: str) -> tuple[int, int, int]:
    c = color.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def _interpolate(stops: tuple[str, ...], t: np.ndarray) -> np.ndarray:
    rgb = np.array([_hex_to_rgb(s) for s in stops], dtype=np.float64)
    pos = np.linspace(0.0, 1.0, len(stops))
    return np.stack([np.interp(t, pos, rgb[:, c]) for c in range(3)], axis=1)


def color_encoding(values: pd.Series | np.ndarray | None, max_categories: int = 20) -> dict[str, Any]:
    """Colours for a metadata column: per-point RGB and a legend or a colour bar.

    Numeric columns with more than ``max_categories`` distinct values get a continuous
    scale (:data:`SEQUENTIAL`, min to max); others are categories (the most frequent
    ``max_categories - 1`` get a colour each, the rest share "other"). Labels that name a
    colour ("red", "blue", ...) are drawn in that colour. Missing values are grey.

    Returns
    -------
    dict
        ``rgb`` (``(N, 3)`` uint8), ``mode`` ("categorical", "continuous" or "none"),
        ``legend`` (list of ``{"label", "color", "count"}``) and ``colorbar``
        (``{"min", "max", "stops"}`` or ``{}``).

    Examples
    --------
    >>> enc = color_encoding(pd.Series(["red", "blue", "red"]))
    >>> enc["mode"], [item["label"] for item in enc["legend"]], enc["rgb"][0].tolist()
    ('categorical', ['red', 'blue'], [220, 30, 30])
    >>> color_encoding(pd.Series(np.arange(30.0)))["colorbar"]["max"]
    29.0
    """
    if values is None:
        return {"rgb": None, "mode": "none", "legend": [], "colorbar": {}}
    s = pd.Series(values).reset_index(drop=True)
    n = len(s)
    missing = s.isna().to_numpy()
    rgb = np.tile(np.array(_hex_to_rgb(MISSING), dtype=np.uint8), (n, 1))
    numeric = pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
    if numeric and s.nunique(dropna=True) > max_categories:
        v = s.to_numpy(dtype=np.float64, na_value=np.nan)
        ok = np.isfinite(v)
        lo, hi = (float(v[ok].min()), float(v[ok].max())) if ok.any() else (0.0, 1.0)
        t = (v[ok] - lo) / (hi - lo) if hi > lo else np.zeros(int(ok.sum()))
        rgb[ok] = np.round(_interpolate(SEQUENTIAL, t)).astype(np.uint8)
        return {"rgb": rgb, "mode": "continuous", "legend": [], "colorbar": {"min": lo, "max": hi, "stops": list(SEQUENTIAL)}}
    labels = s.astype(str).where(~missing, None)
    counts = labels.value_counts(dropna=True)
    keep = list(counts.index[: max_categories - 1]) if len(counts) > max_categories else list(counts.index)
    named = all(str(lab).lower() in _NAMED for lab in keep)
    legend = []
    position = {lab: i for i, lab in enumerate(keep)}
    codes = labels.map(position).fillna(-1).to_numpy(dtype=np.int64)
    for i, lab in enumerate(keep):
        color = _NAMED[str(lab).lower()] if named else CATEGORICAL[i % len(CATEGORICAL)]
        rgb[codes == i] = _hex_to_rgb(color)
        legend.append({"label": str(lab), "color": color, "count": int(counts[lab])})
    other = (codes < 0) & ~missing
    if other.any():
        rgb[other] = _hex_to_rgb(OTHER)
        legend.append({"label": f"other ({len(counts) - len(keep)} values)", "color": OTHER, "count": int(other.sum())})
    if missing.any():
        legend.append({"label": "missing", "color": MISSING, "count": int(missing.sum())})
    return {"rgb": rgb, "mode": "categorical", "legend": legend, "colorbar": {}}


class MetadataText:
    """Metadata rows as short strings (hover cards), from numpy columns made once.

    Missing values become ``""``, floats keep 4 significant digits, long texts are cut at
    200 characters. Making the columns once keeps a lookup of 20 rows fast on 100,000-row
    galleries (pandas row selection and Arrow-backed strings cost milliseconds per call).

    Examples
    --------
    >>> text = MetadataText(pd.DataFrame({"id": ["a", "b"], "n": [1.5, None]}))
    >>> text.rows([1])
    [{'id': 'b', 'n': ''}]
    """

    def __init__(self, metadata: pd.DataFrame, skip: tuple[str, ...] = ()):
        self.columns = {str(c): metadata[c].to_numpy() for c in metadata.columns if c not in skip}

    def rows(self, rows: np.ndarray | list[int]) -> list[dict[str, str]]:
        """One ``{column: text}`` dict per row."""
        idx = np.asarray(rows, dtype=np.int64)
        picked = {name: values[idx] for name, values in self.columns.items()}
        return [{name: _text(values[i]) for name, values in picked.items()} for i in range(idx.size)]


def _text(value: Any, limit: int = 200) -> str:
    if value is None or (not isinstance(value, str) and bool(np.ndim(value) == 0 and pd.isna(value))):
        return ""
    if isinstance(value, (float, np.floating)):
        text = f"{float(value):.4g}"
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"

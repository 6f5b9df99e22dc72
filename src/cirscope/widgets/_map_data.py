"""Plain computations behind the map widget: 2-D coordinates, point colours, query placement."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "CATEGORICAL",
    "MISSING",
    "SEQUENTIAL",
    "color_encoding",
    "pca_coords",
    "place_query",
    "row_metadata",
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


def pca_coords(embeddings: np.ndarray) -> np.ndarray:
    """The first two principal components of ``embeddings`` (``(N, D)`` -> ``(N, 2)`` float32).

    Uses the ``D x D`` covariance, so it is fast for many rows; the sign of each axis is
    fixed (largest absolute loading positive) so that the map does not flip between runs.

    Examples
    --------
    >>> x = np.array([[0.0, 0.0], [1.0, 0.1], [2.0, 0.0], [3.0, 0.1]])
    >>> pca_coords(x)[:, 0].round(2).tolist()
    [-1.5, -0.5, 0.5, 1.5]
    """
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"PCA needs a non-empty (N, D) array, got shape {x.shape}")
    x = x - x.mean(axis=0)
    if x.shape[1] < 2:
        x = np.hstack([x, np.zeros((x.shape[0], 2 - x.shape[1]))])
    vals, vecs = np.linalg.eigh(x.T @ x)
    comps = vecs[:, np.argsort(vals)[::-1][:2]]
    signs = np.sign(comps[np.abs(comps).argmax(axis=0), range(2)])
    comps = comps * np.where(signs == 0, 1.0, signs)
    return (x @ comps).astype(np.float32)


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
    codes = pd.Categorical(labels, categories=keep).codes
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


def place_query(
    coords: np.ndarray, rows: np.ndarray, scores: np.ndarray, neighbors: int = 10, temperature: float = 0.05
) -> tuple[float, float] | None:
    """Where a query falls on the map: the weighted mean of its nearest neighbours' coordinates.

    The weights are a softmax of the cosine scores of the best ``neighbors`` results,
    ``w_i = exp((s_i - s_max) / temperature)``, so near-ties share the position and a clear
    winner dominates. Returns ``None`` when there are no results.

    Examples
    --------
    >>> xy = np.array([[0.0, 0.0], [2.0, 0.0], [9.0, 9.0]])
    >>> place_query(xy, np.array([0, 1]), np.array([0.5, 0.5]))
    (1.0, 0.0)
    """
    rows = np.asarray(rows, dtype=np.int64)[:neighbors]
    if rows.size == 0:
        return None
    s = np.asarray(scores, dtype=np.float64)[: rows.size]
    w = np.exp((s - s.max()) / temperature)
    xy = (np.asarray(coords, dtype=np.float64)[rows] * w[:, None]).sum(axis=0) / w.sum()
    return float(xy[0]), float(xy[1])


def row_metadata(metadata: pd.DataFrame, rows: np.ndarray | list[int], skip: tuple[str, ...] = ()) -> list[dict[str, str]]:
    """Metadata of ``rows`` as lists of strings (for hover cards); missing values become "".

    Examples
    --------
    >>> row_metadata(pd.DataFrame({"id": ["a", "b"], "n": [1.5, None]}), [1])
    [{'id': 'b', 'n': ''}]
    """
    part = metadata.iloc[np.asarray(rows, dtype=np.int64)]
    part = part[[c for c in part.columns if c not in skip]]
    out = []
    for rec in part.to_dict(orient="records"):
        out.append({str(k): ("" if v is None or (isinstance(v, float) and np.isnan(v)) else _short(v)) for k, v in rec.items()})
    return out


def _short(value: Any, limit: int = 200) -> str:
    text = value if isinstance(value, str) else (f"{value:.4g}" if isinstance(value, float) else str(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"

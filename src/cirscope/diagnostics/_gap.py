"""The modality gap between image and text embeddings, and the cone effect of each modality."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

import cirscope.diagnostics._guides as _guides
from cirscope._core.text import plotly_texts
from cirscope.diagnostics._common import check_space, default_texts
from cirscope.diagnostics._result import DiagnosticResult, base_layout, clickable

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.space._space import Space

__all__ = ["GapResult", "cone", "gap", "modality_gap"]

_PLOT_MAX = 2000


_CHUNK_ROWS = 65_536  # rows converted to float64 at once (32 MB at 512 dimensions)


def unit_sum(vectors: np.ndarray) -> tuple[np.ndarray, int]:
    """``(sum_i x_i / ||x_i||, n)`` in float64, in chunks of rows (a memory map is read once).

    The diagnostics' definitions are over unit vectors; stored float32 rows are only unit
    to about 1e-7, so every row is re-normalised in float64 before it is summed.

    Examples
    --------
    >>> total, n = unit_sum(np.array([[3.0, 4.0], [0.0, 2.0]], dtype=np.float32))
    >>> total.tolist(), n
    ([0.6, 1.8], 2)
    """
    x = vectors if isinstance(vectors, np.ndarray) else np.asarray(vectors)  # a memory map stays one
    if x.ndim != 2:
        raise ValueError(f"Expected an (n, D) array of vectors, got shape {x.shape}")
    total = np.zeros(x.shape[1], dtype=np.float64)
    for start in range(0, len(x), _CHUNK_ROWS):
        block = np.asarray(x[start:start + _CHUNK_ROWS], dtype=np.float64)
        norms = np.linalg.norm(block, axis=1, keepdims=True)
        if not np.all(np.isfinite(block)) or np.any(norms == 0):
            raise ValueError("The vectors must be finite and non-zero to be normalised")
        total += (block / norms).sum(axis=0)
    return total, len(x)


def _cone_from_sum(total: np.ndarray, n: int) -> float:
    if n < 2:
        raise ValueError("The cone effect needs at least two vectors")
    return float((total @ total - n) / (n * (n - 1)))


def gap(images: np.ndarray, texts: np.ndarray) -> tuple[float, np.ndarray]:
    """``(||Delta||, Delta)`` with ``Delta = mean(images) - mean(texts)`` over unit vectors
    (Liang et al., NeurIPS 2022); rows are normalised in float64 first.

    Examples
    --------
    >>> g, d = gap(np.array([[1.0, 0.0]]), np.array([[0.0, 2.0]]))
    >>> round(g, 4), d.tolist()
    (1.4142, [1.0, -1.0])
    """
    (si, ni), (st, nt) = unit_sum(images), unit_sum(texts)
    if ni == 0 or nt == 0:
        raise ValueError("The modality gap needs at least one image and one text")
    delta = si / ni - st / nt
    return float(np.linalg.norm(delta)), delta


def cone(vectors: np.ndarray) -> float:
    """The cone effect: the mean off-diagonal cosine within one set of vectors.

    ``sum_{i != j} x_i . x_j / (n (n - 1)) = (||sum x||^2 - n) / (n (n - 1))`` with every
    ``x_i`` normalised to unit length in float64.

    Examples
    --------
    >>> round(cone(np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])), 4)  # (0 + 0.6 + 0.8) / 3
    0.4667
    """
    return _cone_from_sum(*unit_sum(vectors))


@dataclass(frozen=True, repr=False, eq=False)
class GapResult(DiagnosticResult):
    """The result of :func:`modality_gap`."""

    name = "modality_gap"
    title = "Modality gap"
    GUIDE = _guides.GAP

    def sentence(self) -> str:
        """The result in one plain sentence."""
        return _guides.gap_sentence(self.summary())

    gap: float
    delta: np.ndarray
    cone_images: float
    cone_texts: float
    texts: list[str]
    coords_images: np.ndarray
    coords_texts: np.ndarray
    plot_rows: np.ndarray
    n_images: int
    n_texts: int
    image_text_cosine: float

    def to_frame(self) -> pd.DataFrame:
        """Tidy: ``quantity``, ``modality``, ``value``."""
        return pd.DataFrame([
            {"quantity": "gap", "modality": "image - text", "value": self.gap},
            {"quantity": "cone", "modality": "image", "value": self.cone_images},
            {"quantity": "cone", "modality": "text", "value": self.cone_texts},
            {"quantity": "mean cosine", "modality": "image x text", "value": self.image_text_cosine},
            {"quantity": "count", "modality": "image", "value": float(self.n_images)},
            {"quantity": "count", "modality": "text", "value": float(self.n_texts)},
        ])

    def summary(self) -> dict[str, Any]:
        return {"gap": self.gap, "cone_images": self.cone_images, "cone_texts": self.cone_texts,
                "image_text_cosine": self.image_text_cosine, "images": self.n_images, "texts": self.n_texts}

    def rows_for(self, row: int | None = None) -> np.ndarray:
        """``row=r``: that image; no argument: the plotted images."""
        if row is not None:
            return np.asarray([int(row)], dtype=np.int64)
        return np.asarray(self.plot_rows, dtype=np.int64)

    def figure(self) -> Any:
        """Images and texts on their first two principal components (the gap is the split)."""
        import plotly.graph_objects as go

        fig = go.Figure()
        fig.add_trace(go.Scattergl(
            x=self.coords_images[:, 0], y=self.coords_images[:, 1], mode="markers", name="images",
            marker={"size": 5, "color": "#4C78A8", "opacity": 0.6},
            hovertemplate="image row %{customdata[0]}<extra></extra>",
            **clickable(["row"], [[int(r)] for r in self.plot_rows])))
        fig.add_trace(go.Scattergl(
            x=self.coords_texts[:, 0], y=self.coords_texts[:, 1], mode="markers", name="texts",
            marker={"size": 6, "color": "#F58518", "symbol": "diamond", "opacity": 0.8},
            text=plotly_texts(self.texts[: len(self.coords_texts)]), hovertemplate="%{text}<extra></extra>"))
        fig.update_xaxes(title_text="PC 1")
        fig.update_yaxes(title_text="PC 2", scaleanchor="x")
        return base_layout(fig, "Modality gap", f"||mean(img) - mean(txt)|| = {self.gap:.3f}; cone: images "
                                                f"{self.cone_images:.3f}, texts {self.cone_texts:.3f}")


def modality_gap(space: Space, texts: Sequence[str] | np.ndarray | None = None, *, seed: int = 0) -> GapResult:
    """The modality gap and the cone effect of each modality.

    Liang, Zhang, Kwon, Yeung & Zou, "Mind the Gap: Understanding the Modality Gap in
    Multi-modal Contrastive Representation Learning" (NeurIPS 2022)::

        Delta = mean(image embeddings) - mean(text embeddings);   gap = ||Delta||_2
        cone(modality) = mean off-diagonal cosine within that modality

    (CLIP on MS-COCO: gap about 0.82.) Image and text vectors live in different cones,
    which is why composing a query from both needs weights (PDV's beta, WeiMoCIR's a).

    Parameters
    ----------
    space
        The :class:`~cirscope.Space`.
    texts
        Texts (or an ``(n, D)`` array of text embeddings); default: the gallery's captions,
        else prompts of its metadata words.
    seed
        Seed of the subsample plotted when the gallery has more than 2,000 images.

    Returns
    -------
    GapResult
        ``.gap``, ``.cone_images``, ``.cone_texts``, ``.to_frame()``, ``.figure()`` (PCA view).

    Examples
    --------
    >>> res = cs.diagnostics.modality_gap(space)
    >>> res.to_frame()["quantity"].tolist()
    ['gap', 'cone', 'cone', 'mean cosine', 'count', 'count']
    >>> bool(0 < res.gap <= 2), res.n_images
    (True, 120)
    """
    from sklearn.decomposition import PCA

    space = check_space(space)
    if texts is None:
        texts = default_texts(space)
    if isinstance(texts, np.ndarray) and texts.ndim == 2 and texts.dtype.kind == "f":
        if texts.shape[1] != space.dim:
            raise ValueError(f"Text embeddings must have {space.dim} dimensions, got {texts.shape[1]}")
        t = np.asarray(texts, dtype=np.float64)
        names = [f"text {i}" for i in range(len(t))]
    else:
        names = [str(x) for x in texts]
        if len(names) < 2:
            raise ValueError("modality_gap needs at least two texts")
        t = np.asarray(space.encode_text(names), dtype=np.float64)
    if len(t) < 2:
        raise ValueError("modality_gap needs at least two texts")
    img = space.image_embeddings
    img_sum, n_img = unit_sum(img)
    txt_sum, n_txt = unit_sum(t)
    img_mean, txt_mean = img_sum / n_img, txt_sum / n_txt
    delta = img_mean - txt_mean
    rng = np.random.default_rng(seed)
    rows = np.arange(n_img) if n_img <= _PLOT_MAX else np.sort(rng.choice(n_img, _PLOT_MAX, replace=False))
    trows = np.arange(n_txt) if n_txt <= _PLOT_MAX else np.sort(rng.choice(n_txt, _PLOT_MAX, replace=False))
    both = np.vstack([_unit_rows(img[rows]), _unit_rows(t[trows])])
    coords = PCA(n_components=2, random_state=seed).fit_transform(both)
    cross = float(img_mean @ txt_mean)  # mean over all (image, text) pairs of their cosine
    return GapResult(float(np.linalg.norm(delta)), delta, _cone_from_sum(img_sum, n_img),
                     _cone_from_sum(txt_sum, n_txt), [names[i] for i in trows], coords[: len(rows)],
                     coords[len(rows):], rows, n_img, n_txt, cross)


def _unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)

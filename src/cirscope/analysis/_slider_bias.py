"""Bias along the slider: retrieval skew of an attribute in the top K as PDV's alpha moves.

The curve is computed once per query (all alphas composed at once, one batched search);
a slider move then only moves the chart's marker (:meth:`SliderBiasResult.at`).
Skew and NDKL are the definitions of :mod:`cirscope.diagnostics._skew` (Geyik et al., KDD 2019).
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cirscope.analysis._common import best_rows, check_k, resolve_composed, scored
from cirscope.diagnostics._common import check_mask, check_space, labels_of
from cirscope.diagnostics._result import DiagnosticResult, base_layout, clickable
from cirscope.diagnostics._skew import desired_shares

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.space._space import Space

__all__ = ["SLIDER_ALPHAS", "SliderBiasResult", "slider_bias"]

#: The PDV slider's range, -0.5 to 2 in steps of 0.1.
SLIDER_ALPHAS: tuple[float, ...] = tuple(float(a) for a in np.round(np.arange(-0.5, 2.0001, 0.1), 4))
_SCALES = {"both": ("alpha_t", "alpha_i"), "alpha_t": ("alpha_t",), "alpha_i": ("alpha_i",)}
#: per space: {column: (labels, label codes, label names)}; a column's labels are read once, not per query
_LABELS: weakref.WeakKeyDictionary[Any, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]] = (
    weakref.WeakKeyDictionary())


def _coded_labels(space: Space, attribute: Any) -> tuple[np.ndarray, str, np.ndarray, np.ndarray]:
    """``(labels, name, codes, names)``: one label per row, its code and the sorted label names."""
    cache = _LABELS.setdefault(space, {}) if isinstance(attribute, str) else {}
    if isinstance(attribute, str) and attribute in cache:
        labels, codes, names = cache[attribute]
        return labels, attribute, codes, names
    labels, name = labels_of(space, attribute)
    names, codes = np.unique(labels.astype(str), return_inverse=True)
    if isinstance(attribute, str):
        cache[attribute] = (labels, codes, names)
    return labels, name, codes, names


def skew_curves(codes: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MaxSkew@K, MinSkew@K (with their label codes) and NDKL of every ranking at once.

    ``codes`` is ``(A, K)`` label codes of the top K of each ranking, ``q`` the desired
    share of each label. The formulas of :func:`cirscope.diagnostics._skew.label_skew` and
    :func:`~cirscope.diagnostics._skew.ndkl` (Geyik et al., KDD 2019), vectorised over the
    rankings (a test checks them equal)::

        p_a = count_a / K (1 / K when 0),   Skew_a@K = ln p_a - ln q_a
        NDKL = (1/Z) sum_i KL(P_i || Q) / log2(i + 1)

    Examples
    --------
    >>> skew, low, ndkl, arg, argmin = skew_curves(np.array([[0, 1]]), np.array([0.5, 0.5]), 2)
    >>> skew.round(4).tolist(), round(float(ndkl[0]), 3)
    ([0.0], 0.425)
    """
    a, labels = codes.shape[0], q.size
    onehot = np.zeros((a, k, labels))
    onehot[np.arange(a)[:, None], np.arange(k)[None, :], codes] = 1.0
    counts = onehot.sum(axis=1)
    p = np.where(counts == 0, 1.0 / k, counts / k)
    skew = np.log(p) - np.log(q)[None, :]
    prefix = np.cumsum(onehot, axis=1) / np.arange(1, k + 1)[None, :, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(prefix > 0, prefix * (np.log(prefix) - np.log(q)[None, None, :]), 0.0)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    ndkl = (terms.sum(axis=2) * discount).sum(axis=1) / discount.sum()
    return skew.max(axis=1), skew.min(axis=1), ndkl, skew.argmax(axis=1), skew.argmin(axis=1)


@dataclass(frozen=True, repr=False, eq=False)
class SliderBiasResult(DiagnosticResult):
    """The result of :func:`slider_bias`.

    Attributes
    ----------
    alphas : numpy.ndarray
        The scales visited.
    frame : pandas.DataFrame
        One row per alpha: ``alpha, max_skew, max_label, min_skew, min_label, ndkl``.
    rankings : numpy.ndarray
        ``(A, k)`` top-K rows at each alpha.
    """

    name = "slider_bias"
    title = "Bias along the slider"

    query: str
    attribute: str
    k: int
    scale: str
    alphas: np.ndarray
    frame: pd.DataFrame
    rankings: np.ndarray
    _labels: np.ndarray
    params: dict[str, float]

    def to_frame(self) -> pd.DataFrame:
        """One row per alpha: ``alpha, max_skew, max_label, min_skew, min_label, ndkl``."""
        return self.frame.copy()

    def at(self, alpha: float) -> dict[str, Any]:
        """The curve's values at the visited alpha nearest ``alpha`` (what the marker shows)."""
        i = int(np.argmin(np.abs(self.alphas - float(alpha))))
        row = self.frame.iloc[i]
        return {key: (row[key].item() if hasattr(row[key], "item") else row[key]) for key in self.frame.columns}

    def summary(self) -> dict[str, Any]:
        worst = self.frame.loc[self.frame["max_skew"].idxmax()]
        return {
            "query": self.query, "attribute": self.attribute, "k": self.k, "scale": self.scale,
            "alpha_range": (float(self.alphas[0]), float(self.alphas[-1])),
            "max_skew_range": (float(self.frame["max_skew"].min()), float(self.frame["max_skew"].max())),
            "worst_alpha": float(worst["alpha"]), "worst_label": str(worst["max_label"]),
            "ndkl_range": (float(self.frame["ndkl"].min()), float(self.frame["ndkl"].max())),
        }

    def rows_for(self, alpha: float, label: str | None = None) -> np.ndarray:
        """The top-K rows at the visited ``alpha`` nearest the one given, optionally of one ``label``."""
        rows = self.rankings[int(np.argmin(np.abs(self.alphas - float(alpha))))]
        rows = rows[rows >= 0]
        if label is not None:
            rows = rows[self._labels[rows] == str(label)]
        return np.asarray(rows, dtype=np.int64)

    def figure(self, current_alpha: float | None = None) -> Any:
        """MaxSkew@K and NDKL against alpha, with ``current_alpha`` marked."""
        import plotly.graph_objects as go

        from cirscope._core.text import plotly_text

        f = self.frame
        fig = go.Figure()
        fig.add_trace(go.Scatter(
            x=f["alpha"], y=f["max_skew"], mode="lines+markers", name=f"MaxSkew@{self.k}",
            text=[plotly_text(v) for v in f["max_label"]],
            hovertemplate="alpha %{x}: MaxSkew %{y:.3f} (%{text})<extra></extra>",
            **clickable(["alpha", "label"], [[float(a), str(lab)] for a, lab in zip(f["alpha"], f["max_label"],
                                                                                      strict=True)])))
        fig.add_trace(go.Scatter(x=f["alpha"], y=f["ndkl"], mode="lines+markers", name=f"NDKL@{self.k}",
                                 hovertemplate="alpha %{x}: NDKL %{y:.3f}<extra></extra>",
                                 **clickable(["alpha"], [[float(a)] for a in f["alpha"]])))
        if current_alpha is not None:
            fig.add_vline(x=float(current_alpha), line_color="#d62728", annotation_text=f"alpha = {current_alpha:g}")
        fig.update_xaxes(title_text=f"PDV scale ({self.scale})")
        fig.update_yaxes(title_text="skew (0: matches the target mix)")
        return base_layout(fig, f"'{plotly_text(self.attribute)}' skew of the top {self.k} along the slider",
                           self.query)


def slider_bias(
    space: Space,
    query: Any,
    attribute: str | Sequence[Any],
    alphas: Sequence[float] = SLIDER_ALPHAS,
    *,
    k: int = 50,
    scale: str = "both",
    desired: str | Mapping[str, float] = "uniform",
    mask: Any = None,
    **params: float,
) -> SliderBiasResult:
    """MaxSkew@K and NDKL of ``attribute`` in the top K at every alpha of PDV's slider.

    All alphas are composed at once (PDV's formula broadcasts over them) and the gallery is
    ranked for all of them in one batched product, the reference left out::

        d = norm(t_comp) - norm(t_ref)
        q(alpha) = norm((1 - beta)(v + alpha_i d) + beta (t_ref + alpha_t d))
        Skew_a@K = ln(p_a) - ln(q_a),  MaxSkew@K = max_a Skew_a@K,  NDKL as in the diagnostics

    Parameters
    ----------
    space
        The :class:`~cirscope.Space`.
    query
        A :class:`~cirscope.ComposedQuery`.
    attribute
        The column (or one label per row) whose skew is tracked.
    alphas
        The scales (default -0.5 to 2 by 0.1, the slider's range).
    k
        The cut-off (default 50).
    scale
        ``"both"`` (``alpha_t = alpha_i = alpha``), ``"alpha_t"`` or ``"alpha_i"``.
    desired
        The target mix ``q_a``: ``"uniform"`` (default), ``"gallery"`` or ``{label: share}``.
    mask
        Rank only these rows.
    **params
        Other PDV parameters (``beta``; the unswept alpha).

    Returns
    -------
    SliderBiasResult
        ``.to_frame()`` (one row per alpha), ``.figure(current_alpha=)``, ``.at(alpha)``.

    Examples
    --------
    >>> res = cs.analysis.slider_bias(space, cs.ComposedQuery(0, "make it blue"), "color", k=20)
    >>> res.to_frame().columns.tolist()
    ['alpha', 'max_skew', 'max_label', 'min_skew', 'min_label', 'ndkl']
    >>> len(res.alphas), round(res.at(1.0)["alpha"], 2)
    (26, 1.0)
    """
    from cirscope.query._formulas import STEPS
    from cirscope.query._methods import METHODS

    space = check_space(space)
    resolved = resolve_composed(space, query, "slider_bias")
    if scale not in _SCALES:
        raise ValueError(f"scale must be one of {list(_SCALES)}, got {scale!r}")
    swept = _SCALES[scale]
    clash = sorted(set(swept) & set(params))
    if clash:
        raise TypeError(f"{clash} are swept by scale={scale!r}; do not pass them")
    unknown = sorted(set(params) - {p.name for p in METHODS["pdv"].params})
    if unknown:
        raise TypeError(f"Unknown PDV parameters {unknown}; PDV takes alpha_t, alpha_i and beta")
    grid = np.asarray(sorted({float(a) for a in alphas}), dtype=np.float64)
    if grid.size < 2 or not np.all(np.isfinite(grid)):
        raise ValueError("Give at least two finite alphas, e.g. alphas=np.linspace(-0.5, 2, 26)")
    k = check_k(k)
    labels, name, codes, names = _coded_labels(space, attribute)
    mask_arr = check_mask(space, mask)
    exclude = [] if resolved.reference_row is None else [int(resolved.reference_row)]
    allowed = len(labels) - len(exclude) if mask_arr is None else int(mask_arr.sum()) - sum(
        bool(mask_arr[r]) for r in exclude)
    if k > allowed:
        raise ValueError(f"k={k} is larger than the {allowed} rankable rows; pass a smaller k")
    settings = {**METHODS["pdv"].defaults(), **params}
    settings.update({p: grid[:, None] for p in swept})
    prepare, core = STEPS["pdv"]
    vectors = core(**prepare(resolved.v_ref, resolved.t_ref, resolved.t_comp), **settings)  # (A, D) at once
    rows = best_rows(scored(space.image_embeddings, vectors, exclude, mask_arr), k)
    pool = names if mask_arr is None else names[np.unique(codes[mask_arr])]
    if isinstance(desired, str) and desired == "gallery":
        pool = names[codes if mask_arr is None else codes[mask_arr]]
    target = desired_shares(pool, desired)  # its index: the sorted label names present
    position = np.searchsorted(names, target.index.to_numpy(dtype=str))
    remap = np.full(names.size, -1)
    remap[position] = np.arange(target.size)
    top_codes = remap[codes[rows]]
    if (top_codes < 0).any():  # pragma: no cover - the ranking holds only rows of the pool
        raise ValueError("A ranked row has a label without a desired share")
    high, low, curve, arg_high, arg_low = skew_curves(top_codes, target.to_numpy(), k)
    label_names = target.index.to_numpy(dtype=str)
    frame = pd.DataFrame({"alpha": grid, "max_skew": high, "max_label": label_names[arg_high], "min_skew": low,
                          "min_label": label_names[arg_low], "ndkl": curve})
    fixed = {p: float(v) for p, v in settings.items() if p not in swept}
    return SliderBiasResult(f"[{resolved.reference}] + {resolved.text!r}", name, k, scale, grid,
                            frame, rows, labels, fixed)

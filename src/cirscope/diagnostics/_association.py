"""Association tests (WEAT) between target sets and attribute sets, images or texts."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

import cirscope.diagnostics._guides as _guides
from cirscope._core.arrays import top_k
from cirscope._core.text import plotly_text, plotly_texts
from cirscope.diagnostics._common import check_space, selector_rows
from cirscope.diagnostics._reading import (
    BASELINE_COLUMNS,
    DRAWS,
    INTERVAL_COLUMNS,
    cohen_band,
    floor_row,
    interval_row,
)
from cirscope.diagnostics._result import DiagnosticResult, base_layout, clickable

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.space._space import Space

__all__ = ["AssociationResult", "Concept", "association", "resolve_concept", "weat"]


@dataclass
class Concept:
    """A set of vectors for the association test: images (with their gallery rows), texts or raw vectors."""

    name: str
    vectors: np.ndarray
    kind: str
    labels: list[str]
    rows: np.ndarray | None = None


def resolve_concept(space: Space, spec: Any, name: str) -> Concept:
    """A set of images or texts from a specification.

    ``spec`` may be a text or a list of texts; ``{column: value}`` (the gallery images that
    match), a boolean mask or a list of gallery rows (images); or an ``(n, D)`` array.
    """
    if isinstance(spec, str):
        spec = [spec]
    if isinstance(spec, (list, tuple)) and spec and all(isinstance(s, str) for s in spec):
        texts = [str(s) for s in spec]
        return Concept(name, np.asarray(space.encode_text(texts), dtype=np.float64), "text", texts)
    if isinstance(spec, np.ndarray) and spec.ndim == 2 and spec.dtype.kind == "f":
        if spec.shape[1] != space.dim:
            raise ValueError(f"{name}: vectors must have {space.dim} dimensions, got {spec.shape[1]}")
        return Concept(name, spec.astype(np.float64), "vector", [f"vector {i}" for i in range(len(spec))])
    if isinstance(spec, (list, tuple)) and not spec:
        raise ValueError(f"{name} is empty: give texts, {{column: value}}, a mask or gallery rows")
    rows = selector_rows(space, spec, name)
    if rows.size == 0:
        raise ValueError(f"{name} selects no gallery images ({spec!r}); check the column values")
    ids = space.gallery.ids
    return Concept(name, np.asarray(space.image_embeddings[rows], dtype=np.float64), "image",
                   [str(ids[r]) for r in rows], rows)


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    n = np.linalg.norm(x, axis=1, keepdims=True)
    if np.any(n == 0) or not np.all(np.isfinite(x)):
        raise ValueError("Association sets need finite, non-zero vectors")
    return x / n


def _partition_stats(s: np.ndarray, nx: int, n_permutations: int, seed: int) -> tuple[np.ndarray, bool]:
    """``sum_{X_i} s - sum_{Y_i} s`` over equal-size re-partitions: all of them or a random sample."""
    n = s.size
    total = s.sum()
    if math.comb(n, nx) <= n_permutations:
        combos = np.fromiter(itertools.chain.from_iterable(itertools.combinations(range(n), nx)),
                             dtype=np.int64).reshape(-1, nx)
        return 2.0 * s[combos].sum(axis=1) - total, True
    rng = np.random.default_rng(seed)
    out = np.empty(n_permutations)
    chunk = max(1, min(n_permutations, 2_000_000 // max(n, 1)))
    for start in range(0, n_permutations, chunk):
        m = min(chunk, n_permutations - start)
        keys = rng.random((m, n))
        pick = top_k(-keys, nx)  # the nx smallest random keys: a random subset
        out[start:start + m] = 2.0 * s[pick].sum(axis=1) - total
    return out, False


def weat(
    x: np.ndarray,
    y: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    n_permutations: int = 10_000,
    seed: int = 0,
) -> dict[str, Any]:
    """WEAT effect size and one-sided permutation p-value.

    Caliskan, Bryson & Narayanan, "Semantics derived automatically from language corpora
    contain human-like biases" (Science 2017)::

        s(w, A, B) = mean_{a in A} cos(w, a) - mean_{b in B} cos(w, b)
        d = (mean_{x in X} s(x) - mean_{y in Y} s(y)) / std_{w in X u Y} s(w)      (ddof = 1)
        S = sum_{x in X} s(x) - sum_{y in Y} s(y)
        p = share of equal-size re-partitions (X_i, Y_i) of X u Y with S_i >= S   (ties count)

    All ``C(|X|+|Y|, |X|)`` partitions are enumerated when there are at most
    ``n_permutations`` of them, else ``n_permutations`` random ones are drawn.

    When sampled partitions never reach the observed statistic, the share is 0 but the true
    p-value is only known to be below ``1 / n_permutations``: ``p_value`` is then that bound
    and ``p_below`` is True (report "p < 1/n", never "p = 0").

    Returns
    -------
    dict
        ``effect_size``, ``p_value``, ``p_below``, ``statistic``, ``s_x``, ``s_y``, ``exact``,
        ``n_partitions``, ``null_effect`` (the effect size of every partition tested).

    Examples
    --------
    >>> x = np.array([[1.0, 0.1], [1.0, 0.2]]); y = np.array([[0.1, 1.0], [0.2, 1.0]])
    >>> a = np.array([[1.0, 0.0]]); b = np.array([[0.0, 1.0]])
    >>> r = weat(x, y, a, b)
    >>> round(r["effect_size"], 3), r["p_value"], r["n_partitions"]
    (1.728, 0.16666666666666666, 6)
    """
    if isinstance(n_permutations, bool) or int(n_permutations) < 1:
        raise ValueError(f"n_permutations must be a positive integer, got {n_permutations!r}")
    X, Y, A, B = (_unit(v) for v in (x, y, a, b))
    dims = {v.shape[1] for v in (X, Y, A, B)}
    if len(dims) != 1:
        raise ValueError(f"All sets must have the same dimension, got {sorted(dims)}")
    W = np.vstack([X, Y])
    s = (W @ A.T).mean(axis=1) - (W @ B.T).mean(axis=1)
    nx = len(X)
    s_x, s_y = s[:nx], s[nx:]
    std = float(np.std(s, ddof=1)) if s.size > 1 else 0.0
    effect = float((s_x.mean() - s_y.mean()) / std) if std > 0 else float("nan")
    observed = 2.0 * s_x.sum() - s.sum()  # = sum_X s - sum_Y s, computed as the partitions are
    stats, exact = _partition_stats(s, nx, int(n_permutations), seed)
    tol = 1e-12 * max(1.0, float(np.abs(s).sum()))
    p = float(np.mean(stats >= observed - tol))
    # no random partition reached the statistic: p < 1/n, reported as that bound, never as 0
    below = bool(p == 0.0)
    if below:
        p = 1.0 / stats.size
    # each partition's effect size: mean_X - mean_Y from sum_X = (stat + total) / 2, over the same std
    sum_x = (stats + s.sum()) / 2.0
    ny = s.size - nx
    null_d = (sum_x / nx - (s.sum() - sum_x) / ny) / std if std > 0 and ny > 0 else np.full(stats.size, np.nan)
    return {"effect_size": effect, "p_value": p, "p_below": below, "statistic": float(s_x.sum() - s_y.sum()),
            "s_x": s_x, "s_y": s_y, "exact": exact, "n_partitions": int(stats.size), "null_effect": null_d}


@dataclass(frozen=True, repr=False, eq=False)
class AssociationResult(DiagnosticResult):
    """The result of :func:`association`: WEAT effect size, p-value and per-target scores."""

    name = "association"
    title = "Association test (WEAT)"

    targets: tuple[Concept, Concept]
    attributes: tuple[Concept, Concept]
    effect_size: float
    p_value: float
    statistic: float
    exact: bool
    n_partitions: int
    s: tuple[np.ndarray, np.ndarray]
    p_below: bool = False
    null_effect: np.ndarray | None = None
    seed: int = 0

    GUIDE = _guides.ASSOCIATION

    @property
    def measures(self) -> str:
        """What the test describes: text targets measure the model (what it associates with words),
        image targets describe the gallery (what its images look like), mixed targets both."""
        kinds = {c.kind for c in self.targets}
        if kinds == {"text"}:
            return "the model (text targets)"
        if kinds == {"image"}:
            return "the gallery (image targets)"
        return "gallery and model mixed (" + " and ".join(f"{c.kind} targets" for c in self.targets) + ")"

    @property
    def band(self) -> str:
        """Cohen's (1988) label of ``|effect_size|``: negligible, small, medium or large."""
        return cohen_band(self.effect_size)

    @property
    def p_text(self) -> str:
        """The p-value as it should be reported: ``"p < 0.0001"`` when no random partition reached the
        statistic (never ``p = 0``), else ``"p = 0.004"``."""
        return f"p < {self.p_value:.2g}" if self.p_below else f"p = {self.p_value:.3g}"

    @property
    def baseline(self) -> pd.DataFrame:
        """The effect size of the random re-partitions of X u Y (the permutation null): median and
        5th/95th percentiles; ``beyond_random`` when ``d`` lies past the 95th."""
        if self.null_effect is None:
            return super().baseline
        return pd.DataFrame([floor_row("effect_size", self.effect_size, self.null_effect,
                                       "random re-partitions of X and Y")], columns=BASELINE_COLUMNS)

    @property
    def interval(self) -> pd.DataFrame:
        """A bootstrap interval of ``d``: X and Y resampled with replacement (1000 times, seeded)."""
        sx, sy = self.s
        rng = np.random.default_rng([int(self.seed), 1])
        bx = sx[rng.integers(0, sx.size, size=(DRAWS, sx.size))]
        by = sy[rng.integers(0, sy.size, size=(DRAWS, sy.size))]
        both = np.concatenate([bx, by], axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            d = (bx.mean(axis=1) - by.mean(axis=1)) / both.std(axis=1, ddof=1)
        return pd.DataFrame([interval_row("effect_size", self.effect_size, d, "bootstrap of X and Y")],
                            columns=INTERVAL_COLUMNS)

    def sentence(self) -> str:
        what = ("what the model associates with the words" if self.measures.startswith("the model")
                else "what colour/content the gallery's images have, not what the model believes"
                if self.measures.startswith("the gallery") else "a mix of the gallery's images and the model")
        return (f"Effect size d = {self.effect_size:.2f} ({self.band}, Cohen 1988), {self.p_text} "
                f"({self.n_partitions} partitions): this measures {self.measures}, i.e. {what}.")

    def to_frame(self) -> pd.DataFrame:
        """One row per target: ``set`` (X or Y), ``index``, ``kind``, ``label``, ``row`` (-1 for texts), ``s``."""
        parts = []
        for which, concept, s in zip(("X", "Y"), self.targets, self.s, strict=True):
            rows = concept.rows if concept.rows is not None else np.full(len(s), -1)
            parts.append(pd.DataFrame({"set": which, "index": np.arange(len(s)), "kind": concept.kind,
                                       "label": concept.labels, "row": rows, "s": s}))
        return pd.concat(parts, ignore_index=True)

    def summary(self) -> dict[str, Any]:
        (x, y), (a, b) = self.targets, self.attributes
        return {
            "effect_size": self.effect_size, "p_value": self.p_value, "statistic": self.statistic,
            "X": f"{x.name} ({len(x.labels)} {x.kind}s)", "Y": f"{y.name} ({len(y.labels)} {y.kind}s)",
            "A": f"{a.name} ({len(a.labels)} {a.kind}s)", "B": f"{b.name} ({len(b.labels)} {b.kind}s)",
            "exact": self.exact, "partitions": self.n_partitions, "band": self.band, "p": self.p_text,
            "measures": self.measures,
        }

    def rows_for(self, set: str = "X", index: int | None = None) -> np.ndarray:
        """The gallery rows of target set ``"X"`` or ``"Y"`` (image targets only), sorted by ``s``
        (highest first), or of its ``index``-th target."""
        if set not in ("X", "Y"):
            raise ValueError(f"set must be 'X' or 'Y', got {set!r}")
        i = 0 if set == "X" else 1
        concept, s = self.targets[i], self.s[i]
        if concept.rows is None:
            return np.empty(0, dtype=np.int64)
        if index is not None:
            return np.asarray([concept.rows[int(index)]], dtype=np.int64)
        return np.asarray(concept.rows[np.argsort(-s, kind="stable")], dtype=np.int64)

    def figure(self) -> Any:
        """The association score ``s(w, A, B)`` of every target, X and Y side by side."""
        import plotly.graph_objects as go

        fig = go.Figure()
        rng = np.random.default_rng(0)
        for j, (which, concept, s) in enumerate(zip(("X", "Y"), self.targets, self.s, strict=True)):
            jitter = j + rng.uniform(-0.18, 0.18, len(s))
            fig.add_trace(go.Scatter(
                x=jitter, y=s, mode="markers", name=plotly_text(f"{which}: {concept.name}"), text=plotly_texts(concept.labels),
                marker={"size": 7, "opacity": 0.75},
                hovertemplate="%{text}<br>s = %{y:.4f}<extra></extra>",
                **clickable(["set", "index"], [[which, i] for i in range(len(s))])))
            fig.add_trace(go.Scatter(x=[j - 0.3, j + 0.3], y=[float(np.mean(s))] * 2, mode="lines",
                                     line={"color": "#333", "width": 2}, showlegend=False, hoverinfo="skip"))
        a, b = self.attributes
        fig.update_xaxes(tickvals=[0, 1], ticktext=plotly_texts([f"X: {self.targets[0].name}", f"Y: {self.targets[1].name}"]),
                         range=[-0.6, 1.6])
        fig.update_yaxes(title_text=plotly_text(f"s(w, A={a.name}, B={b.name})"))
        how = "exact" if self.exact else f"{self.n_partitions} random partitions"
        return base_layout(fig, f"Association test (WEAT): measures {self.measures}",
                           f"effect size d = {self.effect_size:.3f} ({self.band}), one-sided {self.p_text} ({how})")


def association(
    space: Space,
    targets_x: Any,
    targets_y: Any,
    attributes_a: Any,
    attributes_b: Any,
    n_permutations: int = 10_000,
    *,
    seed: int = 0,
) -> AssociationResult:
    """Word-Embedding Association Test between two target sets and two attribute sets.

    Caliskan et al. (Science 2017), applied to image and text embeddings as in the image
    variants of the test (Steed & Caliskan, FAccT 2021)::

        s(w, A, B) = mean_{a in A} cos(w, a) - mean_{b in B} cos(w, b)
        d = (mean_X s - mean_Y s) / std_{X u Y} s                        (ddof = 1)
        p = share of equal-size re-partitions of X u Y whose sum_X s - sum_Y s >= the observed one

    Every set may be images or texts, so image targets with text attributes (and the
    other three combinations) are all tested the same way. They answer different questions:
    **text targets measure the model** (does it put "a star" nearer "yellow" than "a circle"?),
    **image targets describe the gallery** (are its star images more yellow than its circle
    images?). ``result.measures`` says which; the report labels it. Partitions are enumerated
    when ``C(|X|+|Y|, |X|) <= n_permutations``, else sampled; ties count as successes.

    Parameters
    ----------
    space
        The :class:`~cirscope.Space`.
    targets_x, targets_y, attributes_a, attributes_b
        Each a list of texts, ``{column: value}`` (matching gallery images), a boolean
        mask, a list of gallery rows or an ``(n, D)`` array of vectors.
    n_permutations
        The enumeration limit and the number of random partitions (default 10,000).
    seed
        Seed of the random partitions.

    Returns
    -------
    AssociationResult
        ``.effect_size``, ``.p_value``, ``.to_frame()`` (per target ``s``), ``.figure()``,
        ``.rows_for(set="X")``.

    Examples
    --------
    >>> res = cs.diagnostics.association(space, {"shape": "star"}, {"shape": "circle"},
    ...                                  ["a yellow shape"], ["a blue shape"])
    >>> res.summary()["X"], res.summary()["A"]
    ('shape=star (18 images)', 'a yellow shape (1 texts)')
    >>> bool(-2 <= res.effect_size <= 2 and 0 <= res.p_value <= 1)
    True
    """
    space = check_space(space)
    x = resolve_concept(space, targets_x, _name(targets_x, "X"))
    y = resolve_concept(space, targets_y, _name(targets_y, "Y"))
    a = resolve_concept(space, attributes_a, _name(attributes_a, "A"))
    b = resolve_concept(space, attributes_b, _name(attributes_b, "B"))
    if x.rows is not None and y.rows is not None:
        both = np.intersect1d(x.rows, y.rows)
        if both.size:
            raise ValueError(f"The target sets share {both.size} gallery rows (e.g. {both[:5].tolist()}): "
                             "X and Y must be disjoint")
    if len(x.labels) + len(y.labels) < 3:
        raise ValueError("WEAT needs at least three targets in X and Y together to estimate a spread")
    out = weat(x.vectors, y.vectors, a.vectors, b.vectors, n_permutations=n_permutations, seed=seed)
    return AssociationResult((x, y), (a, b), out["effect_size"], out["p_value"], out["statistic"],
                             out["exact"], out["n_partitions"], (out["s_x"], out["s_y"]), out["p_below"],
                             out["null_effect"], int(seed))


def _name(spec: Any, default: str) -> str:
    if isinstance(spec, str):
        return spec
    if isinstance(spec, Mapping):
        return ", ".join(f"{k}={v}" for k, v in spec.items())
    if isinstance(spec, (list, tuple)) and spec and all(isinstance(s, str) for s in spec):
        return spec[0] if len(spec) == 1 else f"{spec[0]} (+{len(spec) - 1})"
    return default

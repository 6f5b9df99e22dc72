"""Long tail: how often a concept appears in the gallery against how well it is recognised zero-shot."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

import cirscope.diagnostics._guides as _guides
from cirscope._core.text import plotly_text, plotly_texts
from cirscope._core.wording import fill
from cirscope.diagnostics._common import MISSING, check_space, labels_of, prompt_template
from cirscope.diagnostics._result import DiagnosticResult, base_layout, clickable

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.space._space import Space

__all__ = ["LongTailResult", "head_tail_gap", "long_tail"]

_CHUNK_ROWS = 65_536


def head_tail_gap(counts: np.ndarray, accuracy: np.ndarray, tail: float = 0.2) -> tuple[float, np.ndarray]:
    """``(gap, is_tail)``: mean accuracy of the head minus that of the bottom ``tail`` share of labels by count.

    The tail is the ``ceil(tail * L)`` rarest labels (ties broken by label order); the head
    is every other label.

    Examples
    --------
    >>> gap, is_tail = head_tail_gap(np.array([100, 50, 40, 10, 5]), np.array([0.9, 0.9, 0.8, 0.6, 0.4]))
    >>> round(gap, 4), is_tail.tolist()  # head (0.9 + 0.9 + 0.8 + 0.6) / 4 - tail 0.4
    (0.4, [False, False, False, False, True])
    """
    counts = np.asarray(counts, dtype=np.float64)
    accuracy = np.asarray(accuracy, dtype=np.float64)
    n_tail = max(1, int(np.ceil(tail * counts.size)))
    order = np.argsort(counts, kind="stable")
    is_tail = np.zeros(counts.size, dtype=bool)
    is_tail[order[:n_tail]] = True
    if is_tail.all():
        return float("nan"), is_tail
    return float(accuracy[~is_tail].mean() - accuracy[is_tail].mean()), is_tail


@dataclass(frozen=True, repr=False, eq=False)
class LongTailResult(DiagnosticResult):
    """The result of :func:`long_tail`."""

    name = "long_tail"
    title = "Long tail"
    GUIDE = _guides.LONG_TAIL

    def sentence(self) -> str:
        """The result in one plain sentence."""
        return _guides.long_tail_sentence(self.summary(), self.notes())

    attribute: str
    template: str
    frame: pd.DataFrame
    spearman: float
    spearman_p: float
    gap: float
    _labels: np.ndarray
    _predicted: np.ndarray

    def to_frame(self) -> pd.DataFrame:
        """One row per label: ``label``, ``count``, ``log_count``, ``accuracy``, ``prompt``, ``tail``."""
        return self.frame.copy()

    def summary(self) -> dict[str, Any]:
        return {"attribute": self.attribute, "labels": len(self.frame), "spearman": self.spearman,
                "spearman_p": self.spearman_p, "head_tail_gap": self.gap,
                "mean_accuracy": float(self.frame["accuracy"].mean())}

    def _why_undefined(self, quantity: str) -> str | None:
        f = self.frame
        if quantity in ("spearman", "spearman_p"):
            if f["count"].nunique() <= 1:
                return (f"Spearman correlation undefined: every {self.attribute} label has the same number of "
                        f"images ({int(f['count'].iloc[0])}), so frequency cannot explain accuracy here.")
            if f["accuracy"].nunique() <= 1:
                return (f"Spearman correlation undefined: every {self.attribute} label has the same zero-shot "
                        f"accuracy ({float(f['accuracy'].iloc[0]):.0%}), a constant that cannot be ranked.")
            return None
        if quantity == "head_tail_gap":
            return "Head - tail gap undefined: every label falls in the tail (too few labels for a head)."
        return None

    def rows_for(self, label: str, correct: bool | None = None) -> np.ndarray:
        """The images of ``label``: misclassified first (or only ``correct=True/False`` ones)."""
        rows = np.flatnonzero(self._labels == str(label))
        ok = self._predicted[rows] == str(label)
        if correct is not None:
            return rows[ok == bool(correct)]
        return np.concatenate([rows[~ok], rows[ok]])

    def figure(self) -> Any:
        """Accuracy against gallery count (log axis), one point per label."""
        import plotly.graph_objects as go

        f = self.frame
        fig = go.Figure()
        for tail, color, name in ((False, "#4C78A8", "head"), (True, "#E45756", "tail (bottom 20%)")):
            sub = f[f["tail"] == tail]
            fig.add_trace(go.Scatter(
                x=sub["count"], y=sub["accuracy"], mode="markers+text", text=plotly_texts(sub["label"]), name=name,
                textposition="top center", marker={"size": 10, "color": color},
                hovertemplate="%{text}: %{x} images, accuracy %{y:.3f}<extra></extra>",
                **clickable(["label"], [[str(lab)] for lab in sub["label"]])))
        fig.update_xaxes(type="log", title_text=f"images per {plotly_text(self.attribute)} (log)")
        fig.update_yaxes(title_text="zero-shot accuracy", range=[-0.05, 1.1])
        rho = "undefined (constant input)" if np.isnan(self.spearman) else f"{self.spearman:.3f}"
        gap = "undefined" if np.isnan(self.gap) else f"{self.gap:.3f}"
        return base_layout(fig, f"Long tail of '{self.attribute}'",
                           f"Spearman(log count, accuracy) = {rho}, head - tail gap = {gap}")


def long_tail(
    space: Space,
    attribute: str | Sequence[Any],
    *,
    template: str | None = None,
    tail: float = 0.2,
) -> LongTailResult:
    """Per-label gallery count against zero-shot accuracy, their Spearman correlation and the head-tail gap.

    Following the concept-frequency analysis of Udandarao et al., "No 'Zero-Shot' Without
    Exponential Data" (NeurIPS 2024): every image is classified zero-shot among the
    attribute's labels (the label whose prompt ``template.format(label)`` is closest), and
    per label::

        count    = images with that label;   accuracy = share of them classified correctly
        rho      = scipy.stats.spearmanr(log count, accuracy)
        gap      = mean accuracy of the head - mean accuracy of the bottom-20% labels by count

    Parameters
    ----------
    space
        The :class:`~cirscope.Space`.
    attribute
        The label column (or one label per gallery row); missing labels are left out.
    template
        The prompt, e.g. ``"a photo of a {}"``; default: the gallery vocabulary's prompt for
        the column (the shapes world: ``"a {} shape"`` for colour) else ``"a photo of {}"``.
    tail
        Share of the rarest labels forming the tail (default 0.2).

    Returns
    -------
    LongTailResult
        ``.spearman``, ``.gap``, ``.to_frame()``, ``.figure()``, ``.rows_for(label=...)``.

    Examples
    --------
    >>> res = cs.diagnostics.long_tail(space, "color")
    >>> res.to_frame().columns.tolist()
    ['label', 'count', 'log_count', 'accuracy', 'prompt', 'tail']
    >>> int(res.to_frame()["count"].sum()), res.summary()["labels"]
    (120, 8)
    """
    from scipy.stats import spearmanr

    space = check_space(space)
    labels, name = labels_of(space, attribute)
    if template is None:
        template = prompt_template(space, name) if isinstance(attribute, str) else "a photo of {}"
    if "{}" not in template:
        raise ValueError(f"template needs a '{{}}' where the label goes, got {template!r}")
    known = labels != MISSING
    values = sorted(set(labels[known].tolist()))
    if len(values) < 2:
        raise ValueError(f"long_tail needs at least two labels in {name!r}, found {values}")
    prompts = [fill(template, v) for v in values]
    text = np.asarray(space.encode_text(prompts), dtype=np.float64)
    text /= np.linalg.norm(text, axis=1, keepdims=True)  # cosine: float32 rows are unit to ~1e-7 only
    images = space.image_embeddings
    best = np.empty(len(images), dtype=np.int64)
    for start in range(0, len(images), _CHUNK_ROWS):
        best[start:start + _CHUNK_ROWS] = np.argmax(
            np.asarray(images[start:start + _CHUNK_ROWS], dtype=np.float64) @ text.T, axis=1)
    predicted = np.asarray(values, dtype=object)[best]
    records = []
    for v, prompt in zip(values, prompts, strict=True):
        rows = np.flatnonzero(labels == v)
        records.append({"label": v, "count": int(rows.size), "log_count": float(np.log(rows.size)),
                        "accuracy": float(np.mean(predicted[rows] == v)), "prompt": prompt})
    frame = pd.DataFrame(records)
    gap, is_tail = head_tail_gap(frame["count"].to_numpy(), frame["accuracy"].to_numpy(), tail)
    frame["tail"] = is_tail
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant input: the correlation is undefined (nan)
        res = spearmanr(frame["log_count"], frame["accuracy"])
    rho, p = float(res.statistic), float(res.pvalue)
    return LongTailResult(name, template, frame.sort_values("count", ascending=False, kind="stable")
                          .reset_index(drop=True), rho, p, gap, labels, predicted)

"""Paraphrase robustness: does a composing method return the same images when the edit is reworded?

For one reference and N wordings of one modification, every method ranks the gallery once per
wording (all in one batched product); per method the result reports

* ``jaccard``: the mean pairwise Jaccard index of the top-K sets (1: every wording gives the same set);
* ``rank_std`` / ``rank_iqr``: for each row in the union of the top-K sets, the standard deviation
  (mean over rows) and interquartile range (median over rows) of its rank across wordings;
* with ``targets``: ``recall@1`` and ``recall@k`` across wordings, and the spread of the best
  target's rank. A method that ignores the text (image only) is perfectly stable and useless:
  read stability beside recall.

Template rewrites come from the shapes world's phrasing lists (:mod:`cirscope.toy._phrasings`:
the training phrasings and the held-out ones).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cirscope.analysis._common import best_rows, check_k, exact_ranks, marked_rows, scored
from cirscope.diagnostics._result import DiagnosticResult, base_layout, clickable

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.space._space import Space

__all__ = ["ParaphraseResult", "guess_edit", "paraphrases", "rewrites"]

_BACKGROUND_WORDS = ("background", "backdrop", "backing", "canvas", "setting", "on")


def _pool(attribute: str, value: str, old: str) -> list[str]:
    from cirscope.toy._phrasings import SPLITS, _options

    out: dict[str, None] = {}
    for split in SPLITS:
        out.update(dict.fromkeys(t.format(value=value, old=old) for t in _options(attribute, value, split)))
    return list(out)


def _reference_values(space: Space, reference: int) -> dict[str, str]:
    from cirscope.datasets._shapes import ATTRIBUTES

    meta = space.gallery.metadata
    return {a: str(meta[a].iloc[reference]) for a in ATTRIBUTES if a in meta.columns}


def guess_edit(text: str, old: Mapping[str, str]) -> tuple[str, str]:
    """The shapes-world edit ``(attribute, value)`` that ``text`` asks for (``old``: the reference's values).

    Examples
    --------
    >>> guess_edit("make it blue", {"color": "red"}), guess_edit("on a white backdrop", {"background": "black"})
    (('color', 'blue'), ('background', 'white'))
    """
    from cirscope.datasets._shapes import ATTRIBUTES

    wanted = text.strip().lower()
    for attr, values in ATTRIBUTES.items():
        for value in values:
            before = old.get(attr) or next(v for v in values if v != value)
            if wanted in _pool(attr, value, before):
                return attr, value
    words = set(wanted.replace(",", " ").split())
    named = [(a, v) for a, values in ATTRIBUTES.items() for v in values if v in words]
    found = [(a, v) for a, v in named if v != old.get(a)] or named  # a value the reference has may be asked for too
    if len(found) > 1 and any(w in words for w in _BACKGROUND_WORDS[:-1]):
        found = [f for f in found if f[0] == "background"] or found
    elif len(found) > 1:
        found = [f for f in found if f[0] != "background"] or found
    if len(found) != 1:
        raise ValueError(f"Cannot tell which edit {text!r} asks for; pass edit=(attribute, value) or texts=[...]")
    return found[0]


def rewrites(space: Space, reference: int, text: str | None = None, *, edit: tuple[str, str] | None = None,
             n: int = 8, seed: int = 0) -> list[str]:
    """``n`` wordings of a shapes-world edit: ``text`` first, then rewrites drawn from the phrasing templates.

    Examples
    --------
    >>> texts = cs.analysis.rewrites(space, 0, "make it blue", n=4)
    >>> len(texts), texts[0], all("blue" in t for t in texts)
    (4, 'make it blue', True)
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    old = _reference_values(space, int(reference))
    if edit is None:
        if text is None:
            raise ValueError("Pass the modification text or edit=(attribute, value)")
        edit = guess_edit(text, old)
    attr, value = edit
    from cirscope.datasets._shapes import ATTRIBUTES

    if attr not in ATTRIBUTES or value not in ATTRIBUTES[attr]:
        raise ValueError(f"Unknown edit {edit!r}; attributes and values: {dict(ATTRIBUTES)}")
    before = old.get(attr) or next(v for v in ATTRIBUTES[attr] if v != value)
    pool = [t for t in _pool(attr, value, before) if t != text]
    first = [text] if text is not None else []
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(pool), size=min(n - len(first), len(pool)), replace=False)
    return first + [pool[int(i)] for i in picks]


@dataclass(frozen=True, repr=False, eq=False)
class ParaphraseResult(DiagnosticResult):
    """The result of :func:`paraphrases`.

    Attributes
    ----------
    texts : list of str
        The wordings.
    frame : pandas.DataFrame
        One row per method (see :func:`paraphrases`).
    top : dict
        ``{method: (T, k) rows}``, the top K of each wording.
    pairwise : dict
        ``{method: (T, T) Jaccard}``.
    """

    name = "paraphrases"
    title = "Paraphrase robustness"

    query: str
    texts: list[str]
    k: int
    frame: pd.DataFrame
    top: dict[str, np.ndarray]
    pairwise: dict[str, np.ndarray]

    def to_frame(self) -> pd.DataFrame:
        """One row per method: ``jaccard, rank_std, rank_iqr`` (and target recall and rank spread)."""
        return self.frame.copy()

    def summary(self) -> dict[str, Any]:
        f = self.frame.set_index("method")
        return {"query": self.query, "wordings": len(self.texts), "k": self.k,
                "most_stable": str(f["jaccard"].idxmax()), "least_stable": str(f["jaccard"].idxmin()),
                **{f"jaccard[{m}]": float(v) for m, v in f["jaccard"].items()}}

    def rows_for(self, method: str, text: int | None = None) -> np.ndarray:
        """The union of ``method``'s top-K rows over the wordings (or of wording number ``text``)."""
        rows = self.top[method] if text is None else self.top[method][int(text)][None]
        rows = np.unique(rows[rows >= 0]) if text is None else rows[0][rows[0] >= 0]
        return rows.astype(np.int64)

    def figure(self) -> Any:
        """Bars per method: mean pairwise Jaccard of the top K, and the mean rank spread."""
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        f = self.frame
        fig = make_subplots(rows=1, cols=2, subplot_titles=(f"Jaccard of the top {self.k} (1: same set)",
                                                            "rank std across wordings (0: same ranks)"))
        data = [[m] for m in f["method"]]
        fig.add_trace(go.Bar(x=f["method"], y=f["jaccard"], name="Jaccard", marker_color="#4575b4",
                             **clickable(["method"], data)), row=1, col=1)
        fig.add_trace(go.Bar(x=f["method"], y=f["rank_std"], name="rank std", marker_color="#d73027",
                             **clickable(["method"], data)), row=1, col=2)
        fig.update_yaxes(range=[0, 1], row=1, col=1)
        fig.update_layout(showlegend=False)
        return base_layout(fig, f"Paraphrase robustness over {len(self.texts)} wordings", self.query)


def _jaccard(top: np.ndarray) -> np.ndarray:
    """``(T, T)`` Jaccard indices of the rows' top-K sets (``-1`` pads ignored)."""
    valid = top >= 0
    same = (top[:, None, :, None] == top[None, :, None, :]) & valid[:, None, :, None] & valid[None, :, None, :]
    inter = same.any(axis=3).sum(axis=2)
    sizes = valid.sum(axis=1)
    union = sizes[:, None] + sizes[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def paraphrases(
    space: Space,
    reference: int,
    texts: str | Sequence[str],
    *,
    n: int = 8,
    edit: tuple[str, str] | None = None,
    methods: Sequence[str] | None = None,
    settings: Mapping[str, Mapping[str, float]] | None = None,
    k: int = 10,
    targets: Sequence[int] | None = None,
    seed: int = 0,
    query_options: Mapping[str, Any] | None = None,
    progress: bool = False,
    callback: Callable[[int, int], Any] | None = None,
) -> ParaphraseResult:
    """How stable each composing method is to the wording of a modification.

    Parameters
    ----------
    space
        The :class:`~cirscope.Space`.
    reference
        The reference image's gallery row.
    texts
        The wordings (at least two), or one modification text: then ``n`` wordings are drawn
        from the shapes world's phrasing templates (:func:`rewrites`), the text first.
    n, edit, seed
        For generated wordings: how many, the edit ``(attribute, value)`` (default: guessed
        from the text), the seed.
    methods
        Composing methods (default: all), at their defaults unless ``settings[method]`` says otherwise.
    k
        The cut-off (default 10).
    targets
        The rows that are right answers (optional): adds ``recall@1``, ``recall@k`` and the
        spread of the best target's rank across wordings.
    query_options
        Keyword arguments of every :class:`~cirscope.ComposedQuery` (e.g. ``caption_column=None``:
        zero-shot reference texts).
    progress, callback
        A progress bar over the wordings; ``callback(done, total)`` after each one.

    Returns
    -------
    ParaphraseResult
        ``.to_frame()``: per method ``jaccard`` (mean pairwise, top K), ``rank_std`` (mean over
        the union of the top-K rows of their rank's std across wordings), ``rank_iqr``
        (median IQR), and with targets ``recall@1``, ``recall@k``, ``target_rank_median``,
        ``target_rank_iqr``.

    Examples
    --------
    >>> res = cs.analysis.paraphrases(space, 0, ["make it blue", "make it blue"], methods=["sum", "pdv"])
    >>> res.to_frame()[["method", "jaccard", "rank_std"]].values.tolist()
    [['sum', 1.0, 0.0], ['pdv', 1.0, 0.0]]
    """
    from cirscope.diagnostics._common import progress_bar
    from cirscope.query._composed import ComposedQuery
    from cirscope.query._methods import METHODS

    k = check_k(k)
    nrows = len(space.gallery)
    reference = int(marked_rows([reference], nrows, "reference")[0])
    wordings = rewrites(space, reference, texts, edit=edit, n=n, seed=seed) if isinstance(texts, str) else [
        str(t) for t in texts]
    if len(wordings) < 2:
        raise ValueError("Give at least two wordings (or one text and n >= 2 to generate rewrites)")
    names = list(methods) if methods is not None else list(METHODS)
    for m in names:
        if m not in METHODS:
            raise ValueError(f"Unknown composing method {m!r}; choose from {list(METHODS)}")
    goal = None if targets is None else marked_rows(targets, nrows, "targets")
    if goal is not None and goal.size == 0:
        raise ValueError("targets is empty: pass the rows that are right answers, or leave targets out")
    resolved = []
    for i, text in enumerate(progress_bar(wordings, len(wordings), "wordings", progress)):
        resolved.append(ComposedQuery(reference, text, **dict(query_options or {})).resolve(space))
        if callback is not None:
            callback(i + 1, len(wordings))
    vectors = np.stack([r.vector(m, **{**METHODS[m].defaults(), **dict((settings or {}).get(m, {}))})
                        for m in names for r in resolved])
    scores = scored(space.image_embeddings, vectors, [reference])
    top = best_rows(scores, k)
    T = len(wordings)
    records, tops, pairs = [], {}, {}
    iu = np.triu_indices(T, 1)
    for j, m in enumerate(names):
        block = slice(j * T, (j + 1) * T)
        mine = top[block]
        jac = _jaccard(mine)
        union = np.unique(mine[mine >= 0])
        ranks = exact_ranks(scores[block], union)
        q75, q25 = np.percentile(ranks, [75, 25], axis=0)
        rec = {"method": m, "jaccard": float(jac[iu].mean()), "rank_std": float(ranks.std(axis=0).mean()),
               "rank_iqr": float(np.median(q75 - q25))}
        if goal is not None:
            best = np.nanmin(exact_ranks(scores[block], goal), axis=1)
            b75, b25 = np.percentile(best, [75, 25])
            rec.update({"recall@1": float(np.mean(best <= 1)), f"recall@{k}": float(np.mean(best <= k)),
                        "target_rank_median": float(np.median(best)), "target_rank_iqr": float(b75 - b25)})
        records.append(rec)
        tops[m], pairs[m] = mine, jac
    label = f"[{space.gallery.ids[reference]}] + {wordings[0]!r}"
    return ParaphraseResult(label, wordings, k, pd.DataFrame(records), tops, pairs)

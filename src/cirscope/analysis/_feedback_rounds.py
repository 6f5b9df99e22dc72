"""Simulated relevance feedback on a benchmark: how many rounds fix the queries that start wrong.

Each round shows the top K of every query, marks each shown row relevant or not by the
benchmark's ground truth (the judgments accumulate over rounds), refines the *current* query
(the previous round's) with every mark so far, using :func:`cirscope.analysis.feedback`'s
formulas, and ranks the gallery again, all queries at once: what a user pressing "Refine"
round after round does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cirscope.analysis._common import best_rows, check_k, scored
from cirscope.analysis._feedback import FEEDBACK_METHODS, refine_direction, rocchio
from cirscope.diagnostics._result import DiagnosticResult, base_layout, clickable

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.eval._benchmark import CIRBenchmark
    from cirscope.space._space import Space

__all__ = ["RoundsResult", "feedback_rounds"]


@dataclass(frozen=True, repr=False, eq=False)
class RoundsResult(DiagnosticResult):
    """The result of :func:`feedback_rounds`.

    Attributes
    ----------
    curve : pandas.DataFrame
        ``variant, round, R@1`` over the queries that start wrong (round 0: no feedback, so 0).
    fixed_at : dict
        ``{variant: (Q,) rounds}``: the first round whose top 1 is a target (NaN: never).
    wrong : numpy.ndarray
        Reference rows of the queries that start wrong.
    wrong_queries : numpy.ndarray
        Their positions in the (prepared) benchmark.
    first : dict
        ``{variant: (W, rounds + 1) rows}``: the top-1 row of each wrong query after each round.
    """

    name = "feedback_rounds"
    title = "Feedback rounds"

    benchmark: str
    queries: int
    start_r1: float
    k: int
    curve: pd.DataFrame
    fixed_at: dict[str, np.ndarray]
    wrong: np.ndarray
    wrong_queries: np.ndarray
    first: dict[str, np.ndarray]
    _top1: dict[str, np.ndarray]

    def to_frame(self) -> pd.DataFrame:
        """``variant, round, R@1`` over the queries that start wrong."""
        return self.curve.copy()

    def rounds_to(self, level: float = 0.99) -> dict[str, int | None]:
        """The first round whose R@1 (over the queries that start wrong) reaches ``level`` (``None``: never)."""
        out: dict[str, int | None] = {}
        for variant, group in self.curve.groupby("variant", sort=False):
            hit = group[group["R@1"] >= level]
            out[str(variant)] = int(hit["round"].iloc[0]) if len(hit) else None
        return out

    def distribution(self) -> pd.DataFrame:
        """How many queries are first fixed at each round, per variant (``never``: not within the rounds)."""
        cols = {}
        for variant, fixed in self.fixed_at.items():
            keys = pd.Series(np.where(np.isnan(fixed), "never", np.nan_to_num(fixed).astype(np.int64).astype(str)))
            cols[variant] = keys.value_counts()
        return pd.DataFrame(cols).fillna(0).astype(int)

    def summary(self) -> dict[str, Any]:
        return {"benchmark": self.benchmark, "queries": self.queries, "start_R@1": self.start_r1,
                "start_wrong": int(self.wrong.size), "k": self.k,
                **{f"rounds_to_0.99[{v}]": r for v, r in self.rounds_to().items()}}

    def rows_for(self, variant: str, round: int) -> np.ndarray:
        """Reference rows of the queries still wrong after ``round`` rounds of ``variant``."""
        return self.wrong[~self._top1[variant][:, int(round)]]

    def figure(self) -> Any:
        """R@1 of the queries that start wrong, after each round, per variant."""
        import plotly.graph_objects as go

        fig = go.Figure()
        for variant, group in self.curve.groupby("variant", sort=False):
            fig.add_trace(go.Scatter(
                x=group["round"], y=group["R@1"], mode="lines+markers", name=str(variant),
                hovertemplate="round %{x}: R@1 %{y:.3f}<extra></extra>",
                **clickable(["variant", "round"], [[str(variant), int(r)] for r in group["round"]])))
        fig.add_hline(y=0.99, line_dash="dot", line_color="#444", annotation_text="0.99")
        fig.update_xaxes(title_text="feedback rounds", dtick=1)
        fig.update_yaxes(title_text="R@1 of the queries that start wrong", range=[0, 1.02])
        return base_layout(fig, f"Relevance feedback on {self.benchmark}: {self.wrong.size} queries start wrong",
                           f"top {self.k} marked by ground truth each round")


def feedback_rounds(
    space: Space,
    benchmark: CIRBenchmark | None = None,
    *,
    n_queries: int = 500,
    seed: int = 0,
    phrasings: str = "held-out",
    k: int = 10,
    rounds: int = 10,
    variants: Sequence[str] = FEEDBACK_METHODS,
    a: float = 1.0,
    b: float = 0.75,
    c: float = 0.15,
    reference_text: str = "zero-shot",
    progress: bool = False,
    **params: float,
) -> RoundsResult:
    """Simulate relevance feedback on a benchmark and count the rounds that fix the wrong queries.

    Parameters
    ----------
    space
        The :class:`~cirscope.Space` holding the benchmark's gallery.
    benchmark
        A :class:`~cirscope.eval.CIRBenchmark`; default: the shapes benchmark drawn from the
        gallery (``n_queries``, ``seed``, ``phrasings``; held-out phrasings by default, so that
        some queries start wrong).
    k
        How many results a round shows (and marks).
    rounds
        How many rounds to run.
    variants
        ``"rocchio"`` and/or ``"pdv"`` (see :mod:`cirscope.analysis._feedback`).
    a, b, c
        Feedback weights.
    reference_text
        The reference-text policy of :func:`cirscope.eval.prepare`.
    **params
        PDV's parameters before feedback (``alpha_t``, ``alpha_i``, ``beta``).

    Returns
    -------
    RoundsResult
        ``.to_frame()`` (R@1 after each round), ``.rounds_to(0.99)``, ``.distribution()``, ``.figure()``.

    Examples
    --------
    >>> res = cs.analysis.feedback_rounds(space, n_queries=40, rounds=3)
    >>> res.to_frame().groupby("variant")["round"].max().to_dict()
    {'pdv': 3, 'rocchio': 3}
    """
    from cirscope.eval._prepare import prepare
    from cirscope.eval._shapes import make_shapes_benchmark
    from cirscope.query._formulas import STEPS
    from cirscope.query._methods import METHODS

    k = check_k(k)
    if isinstance(rounds, bool) or int(rounds) != rounds or rounds < 1:
        raise ValueError(f"rounds must be a positive integer, got {rounds!r}")
    bad = [v for v in variants if v not in FEEDBACK_METHODS]
    if bad or not variants:
        raise ValueError(f"variants must be some of {list(FEEDBACK_METHODS)}, got {list(variants)}")
    settings = {**METHODS["pdv"].defaults(), **params}
    if benchmark is None:
        benchmark = make_shapes_benchmark(space.gallery.metadata, n_queries, seed=seed, phrasings=phrasings,
                                          name=f"shapes-{phrasings}")
    prep = prepare(space, benchmark, reference_text=reference_text, progress=progress)
    emb = np.asarray(prep.embeddings, dtype=np.float32)
    n = emb.shape[0]
    refs = prep.reference_rows
    pdv = STEPS["pdv"][0](prep.inputs["v_ref"], prep.inputs["t_ref"], prep.inputs["t_comp"])
    q0 = STEPS["pdv"][1](**pdv, **settings)
    target_keys = np.sort(np.concatenate([i * n + t for i, t in enumerate(prep.targets)]))

    def search(vectors: np.ndarray, which: np.ndarray) -> np.ndarray:
        out = np.empty((which.size, k), dtype=np.int64)
        for s in range(0, which.size, 256):
            part = which[s : s + 256]
            sc = scored(emb, vectors[s : s + 256], ())
            sc[np.arange(part.size), refs[part]] = -np.inf
            out[s : s + 256] = best_rows(sc, k)
        return out

    def is_target(which: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return np.isin(which * n + rows, target_keys) & (rows >= 0)

    start = search(q0, np.arange(len(refs)))
    hit0 = is_target(np.arange(len(refs)), start[:, 0])
    wrong = np.flatnonzero(~hit0)
    records, fixed_at, top1, first_rows = [], {}, {}, {}
    for variant in variants:
        shown = start[wrong]
        rel_sum = np.zeros((wrong.size, emb.shape[1]))
        non_sum = np.zeros_like(rel_sum)
        rel_n = np.zeros(wrong.size)
        non_n = np.zeros(wrong.size)
        seen = np.empty(0, dtype=np.int64)
        history = np.zeros((wrong.size, rounds + 1), dtype=bool)
        firsts = np.zeros((wrong.size, rounds + 1), dtype=np.int64)
        firsts[:, 0] = shown[:, 0]
        vec, d = q0[wrong], pdv["d"][wrong]
        records.append({"variant": variant, "round": 0, "R@1": 0.0})
        for r in range(1, rounds + 1):
            local = np.repeat(np.arange(wrong.size), k)
            rows = shown.ravel()
            keys = local * n + rows
            new = (rows >= 0) & ~np.isin(keys, seen)
            seen = np.union1d(seen, keys[new])
            good = is_target(wrong[local], rows) & new
            bad_ = ~is_target(wrong[local], rows) & new
            np.add.at(rel_sum, local[good], emb[rows[good]])
            np.add.at(non_sum, local[bad_], emb[rows[bad_]])
            rel_n += np.bincount(local[good], minlength=wrong.size)
            non_n += np.bincount(local[bad_], minlength=wrong.size)
            if variant == "rocchio":  # each round refines the current query with every mark so far
                vec = rocchio(vec, rel_sum, rel_n, non_sum, non_n, a, b, c)
            else:
                d = refine_direction(pdv["v"][wrong], d, rel_sum, rel_n, non_sum, non_n, a, b, c)
                vec = STEPS["pdv"][1](pdv["v"][wrong], pdv["t_ref_n"][wrong], d, **settings)
            shown = search(vec, wrong)
            history[:, r] = is_target(wrong, shown[:, 0])
            firsts[:, r] = shown[:, 0]
            records.append({"variant": variant, "round": r, "R@1": float(history[:, r].mean()) if wrong.size else 1.0})
        first = np.where(history.any(axis=1), history.argmax(axis=1), np.nan).astype(np.float64)
        fixed_at[variant], top1[variant], first_rows[variant] = first, history, firsts
    return RoundsResult(benchmark.name, len(refs), float(hit0.mean()), k, pd.DataFrame(records), fixed_at,
                        refs[wrong], wrong, first_rows, top1)

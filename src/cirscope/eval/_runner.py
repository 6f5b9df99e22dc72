"""Run every composing method on a benchmark, and sweep the PDV parameters.

The queries are resolved once (reference embeddings, reference and composed texts, all
texts encoded once); each method setting then costs one ``(Q, D) @ (D, N)`` product and a
top-K selection, so a sweep over a hundred settings takes seconds.
"""

from __future__ import annotations

import itertools
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cirscope._core.arrays import top_k
from cirscope.eval._benchmark import CIRBenchmark
from cirscope.query._composed import DEFAULT_TEMPLATE, NEUTRAL_PROMPT, fill_template
from cirscope.query._methods import METHODS, compose
from cirscope.query._vocabulary import Vocabulary, zero_shot_captions

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go

    from cirscope.space._space import Space

__all__ = ["PDVSweep", "Prepared", "benchmark_gallery", "evaluate", "prepare", "score", "sweep_pdv"]

REFERENCE_TEXT_POLICIES = ("auto", "caption", "zero-shot", "neutral")
_CHUNK = 512


@dataclass
class Prepared:
    """A benchmark resolved against a space: rows, targets and the four embeddings per query."""

    benchmark: CIRBenchmark
    embeddings: np.ndarray
    reference_rows: np.ndarray
    targets: list[np.ndarray]
    subsets: list[np.ndarray] | None
    inputs: dict[str, np.ndarray]
    reference_texts: list[str]
    composed_texts: list[str]
    reference_text_sources: list[str]
    skipped: int = 0
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.reference_rows)


def _encode(space: Space, texts: list[str], progress: bool) -> np.ndarray:
    from tqdm.auto import tqdm

    unique = list(dict.fromkeys(texts))
    chunks = [unique[i : i + 256] for i in range(0, len(unique), 256)]
    vecs: dict[str, np.ndarray] = {}
    for chunk in tqdm(chunks, desc="encoding texts", disable=not progress or len(chunks) < 4, leave=False):
        for t, v in zip(chunk, space.encode_text(chunk), strict=False):
            vecs[t] = v
    return np.stack([vecs[t] for t in texts]).astype(np.float32)


def prepare(
    space: Space,
    benchmark: CIRBenchmark,
    *,
    reference_text: str = "auto",
    template: str = DEFAULT_TEMPLATE,
    vocabulary: Vocabulary | Mapping[str, Sequence[str]] | None = None,
    rewriter: Callable[[str, str], str] | None = None,
    caption_column: str = "caption",
    neutral: str = NEUTRAL_PROMPT,
    progress: bool = True,
) -> Prepared:
    """Resolve every query of ``benchmark`` against ``space`` (texts encoded once).

    Parameters
    ----------
    reference_text
        Where the reference text comes from: ``"auto"`` (the order a
        :class:`~cirscope.ComposedQuery` uses: caption column, else zero-shot, else
        neutral), ``"caption"``, ``"zero-shot"`` or ``"neutral"``.
    template, vocabulary, rewriter, caption_column, neutral
        As for :class:`~cirscope.ComposedQuery`.

    Queries whose reference or targets are not in the gallery are skipped (counted in
    ``Prepared.skipped``).
    """
    if reference_text not in REFERENCE_TEXT_POLICIES:
        raise ValueError(f"reference_text must be one of {REFERENCE_TEXT_POLICIES}, got {reference_text!r}")
    if len(benchmark) == 0:
        raise ValueError("The benchmark has no queries")
    meta = space.gallery.metadata
    row_of = {str(i): r for r, i in enumerate(meta["id"].to_numpy())}
    keep, refs, targets, subsets = [], [], [], []
    has_subsets = bool(benchmark.protocol.subset_ks)
    skipped = 0
    no_targets = 0
    for qi, q in enumerate(benchmark.queries):
        t_rows = np.array(sorted({row_of[t] for t in q.targets if t in row_of}), dtype=np.int64)
        if q.reference not in row_of or t_rows.size == 0:
            skipped += 1
            no_targets += int(len(q.targets) == 0)
            continue
        if has_subsets:
            if q.subset is None:
                raise ValueError(f"Query {q.id} has no candidate subset but the protocol reports Recall_subset")
            members = [row_of[m] for m in q.subset if m in row_of]
            subsets.append(np.array(sorted(set(members)), dtype=np.int64))
        keep.append(qi)
        refs.append(row_of[q.reference])
        targets.append(t_rows)
    if not keep:
        hint = " (the split has no public targets: use the validation split)" if no_targets == skipped else ""
        raise ValueError(f"None of the {len(benchmark)} queries has its reference and a target in the gallery{hint}")
    notes = []
    if skipped:
        notes.append(f"{skipped} of {len(benchmark)} queries skipped (reference or every target missing from the gallery)")
        warnings.warn(notes[-1], stacklevel=2)
    queries = [benchmark.queries[i] for i in keep]
    ref_rows = np.asarray(refs, dtype=np.int64)
    emb = space.image_embeddings
    v_ref = emb[ref_rows]

    ref_texts: list[str | None] = [None] * len(queries)
    sources: list[str] = [""] * len(queries)
    if reference_text in ("auto", "caption"):
        try:
            captions = space.gallery.column(caption_column)
        except KeyError:
            if reference_text == "caption":
                raise
            captions = None
        if captions is not None:
            for i, r in enumerate(ref_rows):
                c = captions.iloc[int(r)]
                if isinstance(c, str) and c.strip():
                    ref_texts[i], sources[i] = c, "caption"
    if reference_text in ("auto", "zero-shot"):
        vocab = vocabulary if vocabulary is not None else Vocabulary.from_metadata(meta, exclude=[caption_column])
        if not isinstance(vocab, Vocabulary):
            vocab = Vocabulary(dict(vocab))
        todo = [i for i, t in enumerate(ref_texts) if t is None]
        if vocab and todo:
            described = zero_shot_captions(v_ref[todo], vocab, space.encode_text)
            for i, (desc, _) in zip(todo, described, strict=False):
                ref_texts[i], sources[i] = desc, "zero-shot"
        elif reference_text == "zero-shot":
            raise ValueError("No vocabulary for zero-shot captions: pass vocabulary={family: [words]}")
    for i, t in enumerate(ref_texts):
        if t is None:
            if reference_text == "caption":
                raise ValueError(f"Reference {queries[i].reference} has no caption in column {caption_column!r}")
            ref_texts[i], sources[i] = neutral, "neutral"
    final_refs = [str(t) for t in ref_texts]
    if rewriter is not None:
        composed = [str(rewriter(r, q.text)) for r, q in zip(final_refs, queries, strict=False)]
    else:
        composed = [fill_template(template, r, q.text) for r, q in zip(final_refs, queries, strict=False)]
    inputs = {
        "v_ref": v_ref.astype(np.float32),
        "t_mod": _encode(space, [q.text for q in queries], progress),
        "t_ref": _encode(space, final_refs, progress),
        "t_comp": _encode(space, composed, progress),
    }
    return Prepared(
        benchmark=benchmark.take(keep),
        embeddings=emb,
        reference_rows=ref_rows,
        targets=targets,
        subsets=subsets if has_subsets else None,
        inputs=inputs,
        reference_texts=final_refs,
        composed_texts=composed,
        reference_text_sources=sources,
        skipped=skipped,
        notes=notes,
    )


def score(prepared: Prepared, queries: np.ndarray) -> dict[str, float]:
    """Protocol metrics of one query vector per prepared query.

    Returns ``{"R@K": ..., "Rs@K": ..., "mAP@K": ...}`` for the Ks of the benchmark's
    protocol (Recall@K, Recall_subset@K and mAP@K, see :mod:`cirscope.eval._metrics`).
    """
    protocol = prepared.benchmark.protocol
    q = np.asarray(queries, dtype=np.float32)
    if q.shape != prepared.inputs["v_ref"].shape:
        raise ValueError(f"Expected one query vector per prepared query {prepared.inputs['v_ref'].shape}, got {q.shape}")
    emb = prepared.embeddings
    n = emb.shape[0]
    kmax = min(max([*protocol.recall_ks, *protocol.map_ks, 1]), n)
    hits = np.zeros((len(q), kmax), dtype=bool)
    subset_rank = np.full(len(q), np.iinfo(np.int64).max, dtype=np.int64)
    for start in range(0, len(q), _CHUNK):
        stop = min(start + _CHUNK, len(q))
        s = q[start:stop] @ emb.T
        local = np.arange(stop - start)
        if protocol.exclude_reference:
            s[local, prepared.reference_rows[start:stop]] = -np.inf
        ranked = top_k(s, kmax)
        is_target = np.zeros((stop - start, n), dtype=bool)
        for j, i in enumerate(range(start, stop)):
            is_target[j, prepared.targets[i]] = True
        hits[start:stop] = np.take_along_axis(is_target, ranked, axis=1)
        if prepared.subsets is None:
            continue
        for j, i in enumerate(range(start, stop)):
            members = prepared.subsets[i]
            members = members[members != prepared.reference_rows[i]]
            member_scores = s[j, members]
            best_target = member_scores[np.isin(members, prepared.targets[i])]
            if best_target.size:
                # 0-based rank of the best target within the subset (a tie counts for the target)
                subset_rank[i] = int(np.sum(member_scores > best_target.max()))
    n_targets = np.array([t.size for t in prepared.targets])
    out: dict[str, float] = {}
    for k in protocol.recall_ks:
        out[f"R@{k}"] = float(hits[:, : min(k, kmax)].any(axis=1).mean())
    for k in protocol.subset_ks:
        out[f"Rs@{k}"] = float((subset_rank < k).mean())
    for k in protocol.map_ks:
        rel = hits[:, : min(k, kmax)].astype(np.float64)
        precision = np.cumsum(rel, axis=1) / np.arange(1, rel.shape[1] + 1)
        out[f"mAP@{k}"] = float(np.mean((precision * rel).sum(axis=1) / np.minimum(n_targets, k)))
    return out


def _vector(prepared: Prepared, method: str, params: Mapping[str, float]) -> np.ndarray:
    return compose(method, **{k: prepared.inputs[k] for k in METHODS[method].inputs}, **params)


def evaluate(
    space: Space | None,
    benchmark: CIRBenchmark | None = None,
    methods: Sequence[str] | None = None,
    *,
    settings: Mapping[str, Mapping[str, float]] | None = None,
    extra: Mapping[str, tuple[str, Mapping[str, float]]] | None = None,
    prepared: Prepared | None = None,
    **prepare_kwargs: Any,
) -> pd.DataFrame:
    """Score composing methods on a benchmark.

    Parameters
    ----------
    space, benchmark
        The space holding the benchmark's gallery, and the benchmark (or pass ``prepared``).
    methods
        Method names (default: all of :data:`~cirscope.query._methods.METHODS`), each at its
        default parameters unless ``settings[name]`` overrides them.
    extra
        More rows: ``{label: (method, params)}``, e.g. ``{"pdv (tuned)": ("pdv", best)}``.
    **prepare_kwargs
        Passed to :func:`prepare` (``reference_text=``, ``template=``, ...).

    Returns
    -------
    pandas.DataFrame
        One row per method (index ``method``), a ``params`` column and one column per metric.

    Examples
    --------
    >>> table = evaluate(space, bench)  # doctest: +SKIP
    >>> table.loc["pdv", "R@10"]  # doctest: +SKIP
    """
    if prepared is None:
        if space is None or benchmark is None:
            raise ValueError("Pass a space and a benchmark, or a prepared benchmark")
        prepared = prepare(space, benchmark, **prepare_kwargs)
    methods = list(methods) if methods is not None else list(METHODS)
    rows: list[tuple[str, str, Mapping[str, float]]] = []
    for name in methods:
        if name not in METHODS:
            raise ValueError(f"Unknown composing method {name!r}; choose from {list(METHODS)}")
        rows.append((name, name, {**METHODS[name].defaults(), **dict((settings or {}).get(name, {}))}))
    for label, (name, params) in (extra or {}).items():
        rows.append((label, name, {**METHODS[name].defaults(), **dict(params)}))
    records = []
    for label, name, params in rows:
        metrics = score(prepared, _vector(prepared, name, params))
        text = ", ".join(f"{k}={v:g}" for k, v in params.items())
        records.append({"method": label, "params": text, **metrics})
    table = pd.DataFrame.from_records(records).set_index("method")
    table.attrs.update(
        {
            "benchmark": prepared.benchmark.name,
            "queries": len(prepared),
            "skipped": prepared.skipped,
            "reference_text_sources": pd.Series(prepared.reference_text_sources).value_counts().to_dict(),
        }
    )
    return table


@dataclass
class PDVSweep:
    """The result of :func:`sweep_pdv`: one row per setting, the best one and a heatmap."""

    table: pd.DataFrame
    metric: str
    mode: str

    def _best_row(self) -> pd.Series:
        metrics = [c for c in self.table.columns if c not in ("alpha_t", "alpha_i", "beta")]
        tie_break = self.table[[c for c in metrics if c != self.metric]].sum(axis=1).to_numpy()
        order = np.lexsort((-tie_break, -self.table[self.metric].to_numpy()))
        return self.table.iloc[int(order[0])]

    @property
    def best(self) -> dict[str, float]:
        """The setting with the highest metric (ties: the highest sum of the other metrics, then sweep order)."""
        row = self._best_row()
        return {k: float(row[k]) for k in ("alpha_t", "alpha_i", "beta")}

    @property
    def best_score(self) -> float:
        return float(self.table[self.metric].max())

    def figure(self) -> go.Figure:
        """A plotly heatmap of the metric: alpha x beta (tied), or alpha_t x alpha_i with a beta slider."""
        import plotly.graph_objects as go

        t = self.table
        best = self.best
        if self.mode == "tied":
            pivot = t.pivot_table(index="beta", columns="alpha_t", values=self.metric)
            fig = go.Figure(
                go.Heatmap(
                    z=pivot.to_numpy(),
                    x=pivot.columns.to_numpy(),
                    y=pivot.index.to_numpy(),
                    colorscale="Viridis",
                    colorbar={"title": self.metric},
                    hovertemplate="alpha=%{x}<br>beta=%{y}<br>" + self.metric + "=%{z:.3f}<extra></extra>",
                )
            )
            fig.add_trace(
                go.Scatter(
                    x=[best["alpha_t"]], y=[best["beta"]], mode="markers",
                    marker={"symbol": "x", "size": 14, "color": "red"}, name=f"best {self.best_score:.3f}",
                )
            )
            fig.update_layout(
                title=f"PDV-F {self.metric} (alpha_t = alpha_i = alpha)",
                xaxis_title="alpha", yaxis_title="beta",
            )
            return fig
        betas = sorted(t["beta"].unique())
        fig = go.Figure()
        zmin, zmax = float(t[self.metric].min()), float(t[self.metric].max())
        for b in betas:
            pivot = t[t["beta"] == b].pivot_table(index="alpha_i", columns="alpha_t", values=self.metric)
            fig.add_trace(
                go.Heatmap(
                    z=pivot.to_numpy(), x=pivot.columns.to_numpy(), y=pivot.index.to_numpy(),
                    zmin=zmin, zmax=zmax, colorscale="Viridis", colorbar={"title": self.metric},
                    visible=bool(np.isclose(b, best["beta"])), name=f"beta={b:g}",
                    hovertemplate="alpha_t=%{x}<br>alpha_i=%{y}<br>" + self.metric + "=%{z:.3f}<extra></extra>",
                )
            )
        steps = [
            {"method": "update", "label": f"{b:g}", "args": [{"visible": [j == i for j in range(len(betas))]}]}
            for i, b in enumerate(betas)
        ]
        active = int(np.argmin([abs(b - best["beta"]) for b in betas]))
        fig.update_layout(
            title=f"PDV-F {self.metric}; best {self.best_score:.3f} at {best}",
            xaxis_title="alpha_t", yaxis_title="alpha_i",
            sliders=[{"active": active, "currentvalue": {"prefix": "beta = "}, "steps": steps}],
        )
        return fig

    def write_html(self, path: str | os.PathLike) -> Path:
        """Write the heatmap as a self-contained (offline) HTML file."""
        path = Path(path)
        self.figure().write_html(path, include_plotlyjs=True)
        return path


def sweep_pdv(
    space: Space | None = None,
    benchmark: CIRBenchmark | None = None,
    *,
    alphas: Sequence[float] = tuple(np.round(np.arange(-0.5, 2.0001, 0.25), 4)),
    betas: Sequence[float] = tuple(np.round(np.linspace(0.0, 1.0, 11), 4)),
    mode: str = "tied",
    metric: str = "R@10",
    prepared: Prepared | None = None,
    progress: bool = True,
    **prepare_kwargs: Any,
) -> PDVSweep:
    """Grid-search PDV-F's ``alpha`` and ``beta`` on a benchmark.

    ``mode="tied"`` sets ``alpha_t = alpha_i = alpha`` (grid alpha x beta);
    ``mode="both"`` sweeps alpha_t, alpha_i and beta independently. ``metric`` is any
    column :func:`score` reports (``"R@10"`` by default).

    Examples
    --------
    >>> sweep = sweep_pdv(space, bench, mode="tied")  # doctest: +SKIP
    >>> sweep.best, sweep.write_html("pdv.html")  # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    if mode not in ("tied", "both"):
        raise ValueError(f"mode must be 'tied' or 'both', got {mode!r}")
    if not alphas or not betas:
        raise ValueError("alphas and betas need at least one value each")
    if prepared is None:
        if space is None or benchmark is None:
            raise ValueError("Pass a space and a benchmark, or a prepared benchmark")
        prepared = prepare(space, benchmark, progress=progress, **prepare_kwargs)
    if mode == "tied":
        grid = [(a, a, b) for b in betas for a in alphas]
    else:
        grid = [(at, ai, b) for b, ai, at in itertools.product(betas, alphas, alphas)]
    records = []
    for at, ai, b in tqdm(grid, desc="PDV sweep", disable=not progress or len(grid) < 20, leave=False):
        metrics = score(prepared, _vector(prepared, "pdv", {"alpha_t": at, "alpha_i": ai, "beta": b}))
        if metric not in metrics:
            raise ValueError(f"Metric {metric!r} is not reported for this benchmark; choose from {list(metrics)}")
        records.append({"alpha_t": float(at), "alpha_i": float(ai), "beta": float(b), **metrics})
    return PDVSweep(pd.DataFrame.from_records(records), metric, mode)


def benchmark_gallery(benchmark: CIRBenchmark):
    """The :class:`~cirscope.Gallery` of a file-based benchmark (ids = the benchmark's image ids).

    Examples
    --------
    >>> g = benchmark_gallery(read_cirr("data/cirr"))  # doctest: +SKIP
    """
    from cirscope.gallery._table import Gallery

    paths = benchmark.image_paths()
    df = pd.DataFrame({"id": list(paths), "path": list(paths.values())})
    return Gallery.from_dataframe(df, image="path", id="id")

"""Score composing methods on a benchmark, and sweep the PDV parameters.

The queries are resolved once (:func:`~cirscope.eval.prepare`: reference embeddings, reference
and composed texts, all texts encoded once); each method setting then costs one
``(Q, D) @ (D, N)`` product and a top-K selection, so a sweep over a hundred settings takes seconds.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cirscope._core.arrays import top_k
from cirscope.eval._benchmark import CIRBenchmark
from cirscope.eval._pdv_sweep import PDVSweep
from cirscope.eval._prepare import Prepared, prepare
from cirscope.eval._uncertainty import interval, mcnemar_p
from cirscope.query._methods import METHODS, compose

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.space._space import Space

__all__ = ["evaluate", "per_query", "query_vectors", "score", "sweep_pdv"]

_CHUNK = 512


def score(prepared: Prepared, queries: np.ndarray) -> dict[str, float]:
    """Protocol metrics of one query vector per prepared query.

    Returns ``{"R@K": ..., "Rs@K": ..., "mAP@K": ...}`` for the Ks of the benchmark's
    protocol (Recall@K, Recall_subset@K and mAP@K, see :mod:`cirscope.eval._metrics`):
    the means of :func:`per_query`.
    """
    return {k: float(v.mean()) for k, v in per_query(prepared, queries).items()}


def per_query(prepared: Prepared, queries: np.ndarray) -> dict[str, np.ndarray]:
    """Each protocol metric per query: ``{"R@K": hits (0/1), "Rs@K": hits, "mAP@K": AP@K}``, each ``(Q,)``.

    Their means are :func:`score`; bootstrap intervals and paired tests
    (:mod:`cirscope.eval._uncertainty`) resample them.
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
    out: dict[str, np.ndarray] = {}
    for k in protocol.recall_ks:
        out[f"R@{k}"] = hits[:, : min(k, kmax)].any(axis=1).astype(np.float64)
    for k in protocol.subset_ks:
        out[f"Rs@{k}"] = (subset_rank < k).astype(np.float64)
    for k in protocol.map_ks:
        rel = hits[:, : min(k, kmax)].astype(np.float64)
        precision = np.cumsum(rel, axis=1) / np.arange(1, rel.shape[1] + 1)
        out[f"mAP@{k}"] = (precision * rel).sum(axis=1) / np.minimum(n_targets, k)
    return out


def _vector(prepared: Prepared, method: str, params: Mapping[str, float]) -> np.ndarray:
    return compose(method, **{k: prepared.inputs[k] for k in METHODS[method].inputs}, **params)


def query_vectors(prepared: Prepared, method: str, **params: float) -> np.ndarray:
    """One query vector per prepared query for ``method`` at ``params`` (``(Q, D)``, unit length).

    Feed it to :func:`score` or :func:`per_query`, or rank the gallery with it yourself.

    Examples
    --------
    >>> from cirscope.eval import make_shapes_benchmark, prepare
    >>> prep = prepare(space, make_shapes_benchmark(space.gallery.metadata, n_queries=5), progress=False)
    >>> query_vectors(prep, "pdv", beta=1.0).shape == prep.inputs["v_ref"].shape
    True
    """
    if method not in METHODS:
        raise ValueError(f"Unknown composing method {method!r}; choose from {list(METHODS)}")
    return _vector(prepared, method, {**METHODS[method].defaults(), **params})


def evaluate(
    space: Space | None,
    benchmark: CIRBenchmark | None = None,
    methods: Sequence[str] | None = None,
    *,
    settings: Mapping[str, Mapping[str, float]] | None = None,
    extra: Mapping[str, tuple[str, Mapping[str, float]]] | None = None,
    prepared: Prepared | None = None,
    intervals: Sequence[str] = (),
    level: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
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
    intervals
        Metrics (e.g. ``("R@1", "R@10")``) that get a percentile bootstrap interval over the
        queries (columns ``"<metric> lo"`` and ``"<metric> hi"``, at ``level``, ``n_boot``
        resamples, ``seed``) and, for Recall metrics, the exact McNemar p-value of each row
        against the row with the best mean (column ``"<metric> p vs best"``; 1.0 for that row).
    **prepare_kwargs
        Passed to :func:`prepare` (``reference_text=``, ``template=``, ...).

    Returns
    -------
    pandas.DataFrame
        One row per method (index ``method``), a ``params`` column and one column per metric.

    Examples
    --------
    >>> from cirscope.eval import make_shapes_benchmark
    >>> bench = make_shapes_benchmark(space.gallery.metadata, n_queries=20)
    >>> table = evaluate(space, bench, progress=False)
    >>> table.index.tolist()
    ['image', 'text', 'sum', 'weimocir', 'slerp', 'pdv']
    >>> table.columns.tolist()[:4], table.attrs["queries"]
    (['params', 'R@1', 'R@5', 'R@10'], 20)
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
    values: list[dict[str, np.ndarray]] = []
    for label, name, params in rows:
        values.append(per_query(prepared, _vector(prepared, name, params)))
        text = ", ".join(f"{k}={v:g}" for k, v in params.items())
        records.append({"method": label, "params": text, **{k: float(v.mean()) for k, v in values[-1].items()}})
    table = pd.DataFrame.from_records(records).set_index("method")
    for metric in intervals:
        if metric not in values[0]:
            raise ValueError(f"Metric {metric!r} is not reported for this benchmark; choose from {list(values[0])}")
        stack = np.stack([v[metric] for v in values])
        table[[f"{metric} lo", f"{metric} hi"]] = interval(stack, level, n_boot, seed)
        if metric.startswith(("R@", "Rs@")):
            best = int(np.argmax(stack.mean(axis=1)))
            table[f"{metric} p vs best"] = [mcnemar_p(stack[best], row) for row in stack]
    table.attrs.update(
        {
            "benchmark": prepared.benchmark.name,
            "queries": len(prepared),
            "skipped": prepared.skipped,
            "reference_text_sources": pd.Series(prepared.reference_text_sources).value_counts().to_dict(),
        }
    )
    return table


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
    """Grid-search PDV's ``alpha`` and ``beta`` on a benchmark.

    ``mode="tied"`` sets ``alpha_t = alpha_i = alpha`` (grid alpha x beta);
    ``mode="both"`` sweeps alpha_t, alpha_i and beta independently (the paper's separate
    values, e.g. alpha_i 1.4 with alpha_t 1.2). ``metric`` is any column :func:`score`
    reports (``"R@10"`` by default); its per-query values are kept, so
    :meth:`PDVSweep.plateau` can say which settings are within noise of the best.

    Examples
    --------
    >>> from cirscope.eval import make_shapes_benchmark
    >>> bench = make_shapes_benchmark(space.gallery.metadata, n_queries=20)
    >>> sweep = sweep_pdv(space, bench, mode="tied", progress=False)
    >>> len(sweep.table), sorted(sweep.best)  # 11 alphas x 11 betas; sweep.write_html("pdv.html") saves the heatmap
    (121, ['alpha_i', 'alpha_t', 'beta'])
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
    cells = []
    for at, ai, b in tqdm(grid, desc="PDV sweep", disable=not progress or len(grid) < 20, leave=False):
        values = per_query(prepared, _vector(prepared, "pdv", {"alpha_t": at, "alpha_i": ai, "beta": b}))
        if metric not in values:
            raise ValueError(f"Metric {metric!r} is not reported for this benchmark; choose from {list(values)}")
        cells.append(values[metric].astype(np.float32))
        records.append({"alpha_t": float(at), "alpha_i": float(ai), "beta": float(b),
                        **{k: float(v.mean()) for k, v in values.items()}})
    return PDVSweep(pd.DataFrame.from_records(records), metric, mode, np.stack(cells))

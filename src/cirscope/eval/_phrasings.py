"""In-template against held-out phrasings: how a model copes with the words people type.

The shapes benchmark drawn twice with one seed (same references, changes and targets),
once with the instructions the toy model was trained on and once with held-out ones
(:data:`cirscope.toy._phrasings.HELD_OUT_EDITS`), every method scored on both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cirscope.eval._runner import evaluate
from cirscope.eval._shapes import PHRASING_SETS, make_shapes_benchmark

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.space import Space

#: The figures reported per method and phrasing set.
PHRASING_METRICS = ("R@1", "mAP@10")


def phrasing_comparison(
    space: Space,
    n_queries: int = 1000,
    seed: int = 0,
    *,
    reference_text: str = "zero-shot",
    progress: bool = False,
) -> dict[str, Any]:
    """R@1 and mAP@10 of every method (default settings) on in-template and held-out phrasings.

    Parameters
    ----------
    space
        A space over a shapes-world gallery.
    n_queries, seed
        Size and seed of the generated benchmark (one seed: the same queries in both sets).
    reference_text
        The reference-text policy of :func:`~cirscope.eval.prepare` (default zero-shot:
        the shapes world's captions are ground truth).

    Returns
    -------
    dict
        ``{"queries", "seed", "phrasings": {set: {method: {"R@1", "mAP@10"}}},
        "unknown_words": [...]}``: the last lists the held-out words the model's tokenizer
        reports as unknown (and ignores); empty for models that report none.

    Examples
    --------
    >>> rep = phrasing_comparison(space, n_queries=20)
    >>> sorted(rep["phrasings"]), sorted(rep["phrasings"]["held-out"]["pdv"])
    (['held-out', 'in-template'], ['R@1', 'mAP@10'])
    """
    out: dict[str, Any] = {"queries": 0, "seed": seed, "phrasings": {}, "unknown_words": []}
    unknown: dict[str, None] = {}
    for which in PHRASING_SETS:
        bench = make_shapes_benchmark(space.gallery.metadata, n_queries, seed=seed, phrasings=which,
                                      name=f"shapes-{which}")
        table = evaluate(space, bench, reference_text=reference_text, progress=progress)
        out["queries"] = int(table.attrs["queries"])
        out["phrasings"][which] = {
            str(m): {k: round(float(row[k]), 4) for k in PHRASING_METRICS} for m, row in table.iterrows()
        }
        if which == "held-out" and space.embedder is not None:
            for q in bench.queries:
                unknown.update(dict.fromkeys(space.embedder.unknown_words(q.text)))
    out["unknown_words"] = sorted(unknown)
    return out


def format_comparison(report: dict[str, Any]) -> list[str]:
    """Lines of a plain-text table of :func:`phrasing_comparison`'s report."""
    sets = list(report["phrasings"])
    head = "".join(f"{f'{s} {m}':>20}" for s in sets for m in PHRASING_METRICS)
    lines = [f"  {'method':<10}{head}"]
    for method in report["phrasings"][sets[0]]:
        cells = "".join(f"{report['phrasings'][s][method][m]:20.3f}" for s in sets for m in PHRASING_METRICS)
        lines.append(f"  {method:<10}{cells}")
    if report["unknown_words"]:
        lines.append("  words of the held-out phrasings the model does not know (ignored): "
                     + ", ".join(report["unknown_words"]))
    return lines

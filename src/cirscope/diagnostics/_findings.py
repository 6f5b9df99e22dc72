"""From findings to decisions: what the diagnostics found, whether the gallery or the model causes it, what to do.

``findings(space or audit report)`` returns a table: finding -> evidence -> source (gallery
or model) -> action, with the function that carries the action out
(:mod:`cirscope.diagnostics._fixes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cirscope._core.text import html_text
from cirscope.diagnostics._common import attribute_columns, check_space, labels_of
from cirscope.diagnostics._duplicates import duplicates
from cirscope.diagnostics._hubness import hubness
from cirscope.diagnostics._skew import skew

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.space._space import Space

__all__ = ["FINDING_COLUMNS", "Findings", "findings"]

FINDING_COLUMNS = ["finding", "evidence", "source", "action", "how"]
_MAX_GROUPS = 12  # columns with more values are not split into groups


@dataclass(frozen=True, repr=False, eq=False)
class Findings:
    """The findings table (``finding``, ``evidence``, ``source``: gallery or model, ``action``, ``how``)."""

    table: pd.DataFrame
    attribute: str

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def __len__(self) -> int:
        return len(self.table)

    def __repr__(self) -> str:
        return f"Findings({len(self.table)} on {self.attribute!r}: {self.table['finding'].tolist()})"

    def _repr_html_(self) -> str:  # every cell is user-derived text: escaped
        return f"<b>{html_text(len(self.table))} findings on {html_text(self.attribute)}</b>" + self.table.to_html(
            index=False, escape=True)


def _composition(space: Space, attribute: str, labels: np.ndarray) -> list[dict[str, str]]:
    """Groups (one value of another column) whose mix of ``attribute`` is far from the gallery's."""
    from scipy.stats import hypergeom

    out = []
    meta = space.gallery.metadata
    overall = pd.Series(labels).value_counts()
    n = len(labels)
    for column in attribute_columns(space, max_values=_MAX_GROUPS):
        if column == attribute:
            continue
        values = meta[column].astype(str).to_numpy()
        for value in sorted(set(values)):
            rows = np.flatnonzero(values == value)
            counts = pd.Series(labels[rows]).value_counts().reindex(overall.index, fill_value=0)
            top = str(counts.idxmax())
            # beyond the 99.9th percentile of a random group of that size: a real imbalance, not noise
            limit = hypergeom.ppf(0.999, n, int(overall[top]), rows.size)
            if counts[top] > limit and counts[top] / rows.size > 2.0 * overall[top] / n:
                few = counts.sort_values().head(3)
                scarce = ", ".join(f"{lab} {int(c)}" for lab, c in few.items())
                out.append({
                    "finding": f"{column}={value} images are mostly {top}",
                    "evidence": f"{int(counts[top])} of {rows.size} ({counts[top] / rows.size:.0%}) vs "
                                f"{overall[top] / n:.0%} of the whole gallery; fewest: {scarce}",
                    "source": "gallery",
                    "action": f"rebalance or collect: more {column}={value} images of the scarce {attribute}s, or "
                              f"subsample the {top} ones",
                    "how": f"counts per combination: pd.crosstab(meta['{column}'], meta['{attribute}'])",
                })
    return out


def _model_skew(space: Space, attribute: str, k: int, seed: int) -> list[dict[str, str]]:
    """Within each group (e.g. the stars), does the model's top K over-represent a label beyond random?"""
    from cirscope.query._vocabulary import Vocabulary

    vocab = Vocabulary.from_metadata(space.gallery.metadata)
    out = []
    for column in attribute_columns(space, max_values=_MAX_GROUPS):
        if column == attribute or column not in vocab.families:
            continue
        for value in vocab.families[column]:
            rows = space.gallery.column(column).astype(str).to_numpy() == value
            if rows.sum() <= 2 * k:
                continue
            prompt = vocab.prompt(column, value)
            res = skew(space, prompt, attribute, k=k, desired="gallery", mask=rows, seed=seed)
            b = res.baseline.set_index(["query", "quantity"]).loc[(prompt, f"MaxSkew@{k}")]
            if bool(b["beyond_random"]):
                label = res.per_query["max_label"].iloc[0]
                out.append({
                    "finding": f"the model ranks {label} first for {prompt!r}",
                    "evidence": f"MaxSkew@{k} {b['value']:.2f} ({label}) against the {column}={value} images' own "
                                f"{attribute} shares (demographic parity, mask={column}={value}); {k} random of them "
                                f"reach {b['random_p95']:.2f} 95% of the time",
                    "source": "model",
                    "action": "fair re-ranking to the target share, or direction debiasing; measure again",
                    "how": f"cs.diagnostics.rerank(space, {prompt!r}, {attribute!r}, k={k}, mask={{{column!r}: "
                           f"{value!r}}}) / cs.diagnostics.debias(...)",
                })
    return out


def _health(space: Space, results: dict[str, Any]) -> list[dict[str, str]]:
    out = []
    dups = results.get("duplicates") or duplicates(space)
    if len(dups.pairs):
        s = dups.summary()
        out.append({
            "finding": f"{s['pairs']} near-duplicate pairs",
            "evidence": f"{s['images_in_groups']} images in {s['groups']} groups below cosine distance "
                        f"{s['threshold']:.3g}",
            "source": "gallery",
            "action": "drop duplicates (keep one per group) and export the list",
            "how": "cs.diagnostics.drop_list(cs.diagnostics.duplicates(space)).to_csv('drop.csv', index=False)",
        })
    hubs = results.get("hubness_images") or hubness(space, progress=False)
    b = hubs.baseline.set_index("quantity")
    if bool(b.loc["k_skewness", "beyond_random"]) and hubs.summary()["hubs"] > b.loc["hubs", "random_p95"]:
        out.append({
            "finding": f"{hubs.summary()['hubs']} hub images crowd the neighbour lists",
            "evidence": f"k-skewness {b.loc['k_skewness', 'value']:.2f} vs {b.loc['k_skewness', 'random_p95']:.2f} "
                        "for a random graph (95th percentile)",
            "source": "model",
            "action": "a hubness reduction at search time (inverted softmax or CSLS); measure again",
            "how": "cs.diagnostics.hubness(space, mitigation='all')",
        })
    sweep = results.get("direction_sweep")
    if sweep is not None and "note" in sweep.summary():
        s = sweep.summary()
        excess = s.get("excess")
        source = "model" if excess is not None and s["gain"] > 0 and "beyond" in s["note"] else "gallery"
        out.append({"finding": f"the {s['attribute']} mix drifts towards {s['most_gained']} along the slider",
                    "evidence": s["note"], "source": source,
                    "action": "direction debiasing" if source == "model" else "rebalance or collect",
                    "how": "sweep.coverage()"})
    assoc = results.get("association")
    if assoc is not None and assoc.baseline["beyond_random"].any():
        out.append({"finding": f"association d = {assoc.effect_size:.2f} ({assoc.band})",
                    "evidence": f"{assoc.p_text}; measures {assoc.measures}",
                    "source": "model" if assoc.measures.startswith("the model") else "gallery",
                    "action": "direction debiasing" if assoc.measures.startswith("the model") else "rebalance or collect",
                    "how": "report['association'].explain()"})
    return out


def findings(subject: Any, attribute: str | None = None, *, k: int = 10, seed: int = 0) -> Findings:
    """The findings of a space or an audit report, each with its evidence, its source and an action.

    Checks, each separating the gallery from the model:

    * **composition** (gallery): a group (one value of another column, e.g. ``shape=star``)
      whose ``attribute`` mix is far from the gallery's (beyond the 99.9th percentile of a random
      group of that size, and over twice the overall share): rebalance or collect;
    * **model skew** (model): within each group, the model's top ``k`` for the group's prompt
      ("a star") against the group's own shares (demographic parity with a mask), flagged past
      the 95th percentile of random rows of the group: fair re-ranking or debiasing;
    * **duplicates** (gallery), **hubs** beyond a random graph (model), and from an audit report
      the direction sweep (coverage gap or bias) and the association test.

    Examples
    --------
    >>> f = cs.diagnostics.findings(space, "color")
    >>> f.to_frame().columns.tolist()
    ['finding', 'evidence', 'source', 'action', 'how']
    >>> set(f.to_frame()["source"]) <= {"gallery", "model"}
    True
    """
    results: dict[str, Any] = {}
    if hasattr(subject, "results") and hasattr(subject, "info"):  # an AuditReport (its module imports this one)
        if subject.space is None:
            raise ValueError("This audit report holds no space; pass the space: findings(space, attribute)")
        results = dict(subject.results)
        attribute = attribute or subject.info.get("attribute")
        subject = subject.space
    space = check_space(subject)
    if not attribute:
        raise ValueError(f"Name the attribute to audit, e.g. one of {attribute_columns(space)}")
    labels, name = labels_of(space, attribute)
    rows = _composition(space, name, labels) + _model_skew(space, name, int(k), seed) + _health(space, results)
    return Findings(pd.DataFrame(rows, columns=FINDING_COLUMNS), name)

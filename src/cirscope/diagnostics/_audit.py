"""``cs.audit``: run a sensible set of diagnostics on a space and collect them in one report."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from cirscope._core.atomic import atomic_write
from cirscope._core.text import html_text
from cirscope.diagnostics._association import association
from cirscope.diagnostics._common import attribute_columns, check_space, labels_of, progress_bar
from cirscope.diagnostics._duplicates import duplicates
from cirscope.diagnostics._gap import modality_gap
from cirscope.diagnostics._html import render_report
from cirscope.diagnostics._hubness import hubness
from cirscope.diagnostics._long_tail import long_tail
from cirscope.diagnostics._outliers import outliers
from cirscope.diagnostics._registry import run_diagnostic
from cirscope.diagnostics._result import DiagnosticResult
from cirscope.diagnostics._skew_math import mentions
from cirscope.diagnostics._source_bias import source_bias
from cirscope.diagnostics._sweep import direction_sweep
from cirscope.diagnostics._uniqueness import uniqueness

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.space._space import Space

__all__ = ["AuditReport", "audit"]


@dataclass(frozen=True, repr=False, eq=False)
class AuditReport:
    """The diagnostics of one audit: results by name, what was skipped and why, a summary, HTML.

    Attributes
    ----------
    results : dict of str to DiagnosticResult
        In the order they ran, e.g. ``report.results["skew"]`` (also ``report["skew"]``).
    skipped : dict of str to str
        Diagnostics that could not run on this space, with the reason.
    info : dict
        What was audited (gallery size, model, attribute).
    space : Space or None
        The audited space (the report's thumbnails come from its gallery).
    """

    results: dict[str, DiagnosticResult]
    skipped: dict[str, str]
    info: dict[str, Any]
    space: Space | None = None

    def __getitem__(self, name: str) -> DiagnosticResult:
        if name not in self.results:
            raise KeyError(f"No {name!r} in this report; it holds {list(self.results)} (skipped: {list(self.skipped)})")
        return self.results[name]

    def __iter__(self):
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def summary(self) -> pd.DataFrame:
        """Tidy headline numbers: ``diagnostic``, ``quantity``, ``value``."""
        rows = [{"diagnostic": name, "quantity": q, "value": v}
                for name, res in self.results.items() for q, v in res.summary().items()]
        return pd.DataFrame(rows, columns=["diagnostic", "quantity", "value"])

    def summary_text(self) -> pd.DataFrame:
        """:meth:`summary` as a person reads it: values as text, an undefined (NaN) one as a sentence saying why."""
        rows = [{"diagnostic": name, "quantity": q, "value": text}
                for name, res in self.results.items() for q, text in res.summary_text()]
        return pd.DataFrame(rows, columns=["diagnostic", "quantity", "value"])

    def findings(self, k: int = 10) -> Any:
        """The findings table of this audit (see :func:`cirscope.diagnostics.findings`)."""
        from cirscope.diagnostics._findings import findings

        return findings(self, k=k)

    def to_html(self, path: str | os.PathLike, *, thumbnails: bool = True, thumb_size: int = 80,
                findings: bool = False) -> Path:
        """Write a standalone HTML report (plotly.js inlined, images embedded: it opens offline).

        Clicking a bar or a point of a chart shows the images behind it under the chart. Every
        diagnostic says in a sentence what it found and, per number, its range, meaning, noise
        floor and interval. ``findings=True`` adds the findings table (finding, evidence,
        gallery or model, action) at the top.
        """
        path = Path(path)
        if path.suffix.lower() not in (".html", ".htm"):
            raise ValueError(f"The report is an HTML file: give a path ending in .html, got {path.name!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        table = self.findings().to_frame() if findings else None
        html = render_report(self, thumbnails=thumbnails and self.space is not None, thumb_size=thumb_size,
                             findings=table)
        with atomic_write(path, "wb") as fh:  # unique temporary name: concurrent writers never collide
            fh.write(html.encode("utf-8"))
        return path

    def __repr__(self) -> str:
        return (f"AuditReport({self.info.get('images')} images, attribute={self.info.get('attribute')!r}, "
                f"results={list(self.results)}, skipped={list(self.skipped)})")

    def _repr_html_(self) -> str:
        skipped = "".join(f"<li><b>{html_text(k)}</b>: {html_text(v)}</li>" for k, v in self.skipped.items())
        table = self.summary_text().to_html(index=False)
        return (f"<div><b>cirscope audit</b> of {html_text(self.info.get('images'))} images, attribute "
                f"<code>{html_text(self.info.get('attribute'))}</code>. Charts: <code>report['skew']</code> etc.; "
                f"HTML: <code>report.to_html('report.html')</code>.{table}"
                + (f"<p>Skipped:</p><ul>{skipped}</ul>" if skipped else "") + "</div>")


def audit(
    space: Space,
    attribute: str,
    *,
    queries: Sequence[Any] | Mapping[str, Any] | None = None,
    k: int | Sequence[int] = (10, 50, 100),
    desired: str = "uniform",
    texts: Sequence[str] | None = None,
    hubness_k: int = 10,
    mitigation: str | Sequence[str] | None = None,
    duplicate_threshold: float | None = None,
    outlier_k: int = 10,
    composed: Any = None,
    source_column: str | None = None,
    source_queries: Mapping[Any, Any] | None = None,
    weat: tuple[Any, Any, Any, Any] | None = None,
    progress: bool = True,
) -> AuditReport:
    """Run a sensible set of diagnostics on ``space`` and return an :class:`AuditReport`.

    Always (each skipped with its reason when the space cannot support it, e.g. no text
    encoder): retrieval skew of ``attribute`` (:func:`skew`), long tail of ``attribute``
    (:func:`long_tail`), hubness image → image and text → image (:func:`hubness`),
    modality gap (:func:`modality_gap`), near-duplicates (:func:`duplicates`), outliers
    (:func:`outliers`) and uniqueness (:func:`uniqueness`). When given: the direction
    sweep of a composed query (:func:`direction_sweep`), source bias
    (:func:`source_bias`) and an association test (:func:`association`).

    Parameters
    ----------
    space
        The :class:`~cirscope.Space`.
    attribute
        The sensitive attribute column (skew, long tail, sweep).
    queries
        Skew queries; default: a prompt per word of the other categorical columns
        (the shapes world with ``attribute="color"``: "a circle", "a star", ...).
    k, desired
        Skew cut-offs (those not below the gallery size are dropped) and target.
    texts
        Texts for the modality gap and text hubness (default: captions, else prompts).
    hubness_k, mitigation
        Hubness neighbourhood and optional mitigations (``"all"``: inverted softmax and CSLS).
    duplicate_threshold
        Cosine distance of near-duplicates (default: relative to the space, see
        :func:`~cirscope.diagnostics.duplicates`).
    outlier_k
        Neighbours of the outlier score (default 10).
    composed
        A :class:`~cirscope.ComposedQuery` for the direction sweep.
    source_column, source_queries
        Source bias: the source column and ``{query: relevant selector}``.
    weat
        ``(targets_x, targets_y, attributes_a, attributes_b)`` for an association test.
    progress
        Show a progress bar over the diagnostics.

    Returns
    -------
    AuditReport
        ``report.summary()``, ``report["skew"].figure()``, ``report.to_html("report.html")``.

    Examples
    --------
    >>> report = cs.audit(space, attribute="color", progress=False)
    >>> list(report.results)  # doctest: +NORMALIZE_WHITESPACE
    ['skew', 'long_tail', 'hubness_images', 'hubness_texts', 'modality_gap', 'duplicates',
     'outliers', 'uniqueness']
    >>> report.summary().columns.tolist()
    ['diagnostic', 'quantity', 'value']
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = report.to_html(f"{folder}/audit.html", thumbnails=False)
    ...     path.name, path.stat().st_size > 3_000_000  # plotly.js inlined: it opens offline
    ('audit.html', True)
    """
    space = check_space(space)
    labels_of(space, attribute)  # an unknown column fails now, with the list of columns
    steps: list[tuple[str, Callable[[], DiagnosticResult]]] = [
        ("skew", lambda: run_diagnostic(space, "skew", attribute, queries=queries, k=k, desired=desired)),
        ("long_tail", lambda: long_tail(space, attribute)),
        ("hubness_images", lambda: hubness(space, hubness_k, "images", mitigation=mitigation, progress=progress)),
        ("hubness_texts", lambda: hubness(space, hubness_k, list(texts) if texts else "texts",
                                          mitigation=mitigation, progress=progress)),
        ("modality_gap", lambda: modality_gap(space, texts)),
        ("duplicates", lambda: duplicates(space, duplicate_threshold)),
        ("outliers", lambda: outliers(space, outlier_k)),
        ("uniqueness", lambda: uniqueness(space)),
    ]
    sweep_attribute = attribute
    if composed is not None:
        # a text that names a label of the attribute ("make it red") moves it on purpose: sweep another column
        named = mentions(getattr(composed, "text", None), labels_of(space, attribute)[0].tolist())
        if named:
            others = [c for c in attribute_columns(space) if c != attribute
                      and not mentions(composed.text, sorted(set(space.gallery.column(c).astype(str))))]
            sweep_attribute = others[0] if others else attribute
        steps.insert(1, ("direction_sweep", lambda: direction_sweep(space, composed, sweep_attribute)))
    if source_column is not None:
        if not source_queries:
            raise ValueError("source_column needs source_queries={query: relevant selector}")
        steps.append(("source_bias", lambda: source_bias(space, source_column, source_queries)))
    if weat is not None:
        if len(weat) != 4:
            raise ValueError("weat takes (targets_x, targets_y, attributes_a, attributes_b)")
        steps.append(("association", lambda: association(space, *weat)))
    results: dict[str, DiagnosticResult] = {}
    skipped: dict[str, str] = {}
    for name, step in progress_bar(steps, len(steps), "audit", progress):
        try:
            results[name] = step()
        except (ValueError, RuntimeError) as exc:  # the space cannot support it: say why, go on
            skipped[name] = str(exc)
    info = {"images": len(space), "dim": space.dim, "model": space.model.get("model"),
            "pretrained": space.model.get("pretrained"), "attribute": attribute}
    if composed is not None:
        info["sweep_attribute"] = sweep_attribute
    return AuditReport(results, skipped, info, space)

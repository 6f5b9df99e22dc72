"""Bias and health diagnostics of an embedded gallery, each with a table, a chart and the images behind it.

Every function takes a :class:`~cirscope.Space` and returns a result with ``.to_frame()``
(a tidy DataFrame), ``.figure()`` (a plotly figure), ``.summary()`` (headline numbers)
and ``.rows_for(...)`` (the gallery rows behind a number; ``.rows_at(fig, curve, point)``
maps a click on the chart to them).

* :func:`skew` -- MaxSkew@K, MinSkew@K, per-label Skew and NDKL (Geyik et al. 2019).
* :func:`direction_sweep` -- the attribute mix of the top K along the PDV slider.
* :func:`association` -- WEAT effect size and permutation p-value (Caliskan et al. 2017).
* :func:`hubness` -- N_k, k-skewness, hubs, antihubs, Robin Hood; inverted softmax and CSLS.
* :func:`modality_gap` -- gap norm and cone effect (Liang et al. 2022).
* :func:`duplicates`, :func:`outliers`, :func:`uniqueness` -- gallery health.
* :func:`long_tail` -- label count against zero-shot accuracy.
* :func:`source_bias` -- per-source R@k / NDCG@k and relative Delta (Xu et al. 2024).
* :func:`audit` -- a sensible set of them in one :class:`AuditReport` (``.to_html(path)``).
* :func:`findings` -- finding -> evidence -> gallery or model -> action; the actions
  :func:`rerank` (fair re-ranking), :func:`debias` (direction debiasing) and :func:`drop_list`
  (duplicates to drop), each measured again.

Every result reads its numbers: ``.baseline`` (what random rankings of the same gallery
give), ``.interval`` (bootstrap), ``.readings()`` (range and meaning) and ``.explain()``.

Examples
--------
``space`` is a :class:`~cirscope.Space`, e.g. ``cs.Space(cs.datasets.shapes(120), cs.Embedder.toy())``:

>>> res = cs.diagnostics.skew(space, "a star", "color", k=(10, 50))
>>> res.to_frame().columns.tolist()[:7]
['query', 'k', 'max_skew', 'max_label', 'min_skew', 'min_label', 'ndkl']
>>> res.to_frame()["k"].tolist()
[10, 50]
>>> sorted(res.summary())[:3]
['MaxSkew@10', 'MaxSkew@50', 'MinSkew@10']
"""

from cirscope.diagnostics._association import AssociationResult, association, weat
from cirscope.diagnostics._audit import AuditReport, audit
from cirscope.diagnostics._duplicates import DuplicatesResult, duplicates
from cirscope.diagnostics._findings import Findings, findings
from cirscope.diagnostics._fixes import FixResult, debias, drop_list, fair_rerank, rerank
from cirscope.diagnostics._gap import GapResult, modality_gap
from cirscope.diagnostics._hubness import HubnessResult, hubness, hubness_stats, k_occurrence, robin_hood
from cirscope.diagnostics._long_tail import LongTailResult, long_tail
from cirscope.diagnostics._outliers import OutliersResult, outliers
from cirscope.diagnostics._registry import DIAGNOSTICS, attribute_columns, run_diagnostic
from cirscope.diagnostics._result import DiagnosticResult
from cirscope.diagnostics._skew import SkewResult, label_skew, ndkl, skew
from cirscope.diagnostics._source_bias import SourceBiasResult, source_bias
from cirscope.diagnostics._sweep import SweepResult, direction_sweep
from cirscope.diagnostics._uniqueness import UniquenessResult, uniqueness

__all__ = [
    "DIAGNOSTICS",
    "AssociationResult",
    "AuditReport",
    "DiagnosticResult",
    "DuplicatesResult",
    "Findings",
    "FixResult",
    "GapResult",
    "HubnessResult",
    "LongTailResult",
    "OutliersResult",
    "SkewResult",
    "SourceBiasResult",
    "SweepResult",
    "UniquenessResult",
    "association",
    "attribute_columns",
    "audit",
    "debias",
    "direction_sweep",
    "drop_list",
    "duplicates",
    "fair_rerank",
    "findings",
    "hubness",
    "hubness_stats",
    "k_occurrence",
    "label_skew",
    "long_tail",
    "modality_gap",
    "ndkl",
    "outliers",
    "rerank",
    "robin_hood",
    "run_diagnostic",
    "skew",
    "source_bias",
    "uniqueness",
    "weat",
]

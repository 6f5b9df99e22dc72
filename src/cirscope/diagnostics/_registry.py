"""The diagnostics a panel offers: names, titles, what each needs, and how to run it with defaults."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cirscope.diagnostics._common import attribute_columns, check_ks, default_prompts, labels_of
from cirscope.diagnostics._duplicates import duplicates
from cirscope.diagnostics._gap import modality_gap
from cirscope.diagnostics._hubness import hubness
from cirscope.diagnostics._long_tail import long_tail
from cirscope.diagnostics._outliers import outliers
from cirscope.diagnostics._result import DiagnosticResult
from cirscope.diagnostics._skew import skew
from cirscope.diagnostics._sweep import direction_sweep
from cirscope.diagnostics._uniqueness import uniqueness

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.space._space import Space

__all__ = ["DIAGNOSTICS", "DiagnosticSpec", "attribute_columns", "default_skew_queries", "run_diagnostic"]


@dataclass(frozen=True)
class DiagnosticSpec:
    """One entry of the panel's menu."""

    name: str
    title: str
    needs_attribute: bool
    uses_queries: bool
    run: Callable[..., DiagnosticResult]


def default_skew_queries(space: Space, attribute: str | None) -> list[str]:
    """Prompts for the words of every categorical column except ``attribute`` (e.g. "a star")."""
    prompts = default_prompts(space, exclude=(attribute,) if attribute else ())
    if not prompts:
        raise ValueError("No other categorical column to build queries from: pass queries=[...]")
    return prompts


def _skew(space: Space, attribute: str, queries: Sequence[Any] | None = None, k: Any = (10, 50, 100),
          desired: str = "uniform", **kw: Any) -> DiagnosticResult:
    ks = [kk for kk in check_ks(k) if kk < len(space)]
    if not ks:
        raise ValueError(f"Every cut-off k is at least the gallery size ({len(space)}): pass smaller k")
    return skew(space, list(queries) if queries else default_skew_queries(space, attribute), attribute,
                k=tuple(ks), desired=desired, **kw)


def _sweep(space: Space, attribute: str, composed: Any = None, **kw: Any) -> DiagnosticResult:
    if composed is None:
        raise ValueError("The direction sweep needs a composed query: pass composed=cs.ComposedQuery(row, text)")
    return direction_sweep(space, composed, attribute, **kw)


DIAGNOSTICS: dict[str, DiagnosticSpec] = {
    s.name: s
    for s in (
        DiagnosticSpec("skew", "Retrieval skew (MaxSkew@K, NDKL)", True, True, _skew),
        DiagnosticSpec("direction_sweep", "Direction slider as a bias probe", True, False, _sweep),
        DiagnosticSpec("long_tail", "Long tail (count vs zero-shot accuracy)", True, False,
                       lambda space, attribute, **kw: long_tail(space, attribute, **kw)),
        DiagnosticSpec("hubness_images", "Hubness (image → image)", False, False,
                       lambda space, attribute=None, **kw: hubness(space, queries="images", **kw)),
        DiagnosticSpec("hubness_texts", "Hubness (text → image)", False, False,
                       lambda space, attribute=None, **kw: hubness(space, queries="texts", **kw)),
        DiagnosticSpec("modality_gap", "Modality gap and cone effect", False, False,
                       lambda space, attribute=None, **kw: modality_gap(space, **kw)),
        DiagnosticSpec("duplicates", "Near-duplicates", False, False,
                       lambda space, attribute=None, **kw: duplicates(space, **kw)),
        DiagnosticSpec("outliers", "Outliers", False, False,
                       lambda space, attribute=None, **kw: outliers(space, **kw)),
        DiagnosticSpec("uniqueness", "Uniqueness", False, False,
                       lambda space, attribute=None, **kw: uniqueness(space, **kw)),
    )
}


def run_diagnostic(space: Space, name: str, attribute: str | None = None, **options: Any) -> DiagnosticResult:
    """Run the diagnostic ``name`` of :data:`DIAGNOSTICS` with its defaults and ``options``.

    Examples
    --------
    >>> run_diagnostic(space, "skew", "color", queries=["a star"], k=(10, 50))  # doctest: +ELLIPSIS
    SkewResult(attribute='color', desired='uniform', queries=1, MaxSkew@10=..., NDKL@50=...)
    """
    if name not in DIAGNOSTICS:
        raise ValueError(f"Unknown diagnostic {name!r}; choose one of {list(DIAGNOSTICS)}")
    spec = DIAGNOSTICS[name]
    if spec.needs_attribute:
        if not attribute:
            raise ValueError(f"{spec.title} needs an attribute column, e.g. one of {attribute_columns(space)}")
        labels_of(space, attribute)  # clear error for an unknown column
        return spec.run(space, attribute, **options)
    return spec.run(space, **options)

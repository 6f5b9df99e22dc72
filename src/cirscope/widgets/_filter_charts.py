"""Plain computations behind the filter panel: which columns get a chart, the charts' bars, chips and clicks.

A chart is a list of bars, each with a ``key`` the browser sends back when it is clicked:
a category's code (``"0"`` is the most frequent value), ``"other"`` (the values past the
top ones), ``"missing"``, or a histogram bin's number. Counts travel as one list of integers
per chart, aligned with its bars: the browser never receives rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cirscope.space._filters import Filter, FilterColumn
from cirscope.widgets._map_data import color_columns

__all__ = ["TOP_VALUES", "active_keys", "bar_counts", "chart_spec", "chip_text", "click_filter", "filter_columns",
           "range_of_bins"]

#: Bars of a categorical chart before "other".
TOP_VALUES = 12
_LABEL_LIMIT = 80


def filter_columns(metadata: pd.DataFrame) -> list[str]:
    """Columns meant for people: those the map's colour menu offers, less integer columns unique per row.

    Ids, paths, free text, single-valued columns and a shapes-world gallery's drawing
    parameters are left out (see :func:`cirscope.widgets._map_data.color_columns`); a float
    column stays even when every value differs (it gets a histogram).

    Examples
    --------
    >>> filter_columns(cs.datasets.shapes(40, seed=0).metadata)
    ['shape', 'color', 'background', 'size']
    >>> filter_columns(pd.DataFrame({"n": [1, 2, 3, 4], "w": [0.5, 0.25, 0.125, 0.0], "k": ["a", "a", "b", "b"]}))
    ['w', 'k']
    """
    out = []
    for name in color_columns(metadata):
        col = metadata[name]
        if pd.api.types.is_integer_dtype(col) and col.nunique(dropna=True) == len(col):
            continue  # an integer id
        out.append(name)
    return out


def _number(value: float) -> str:
    return f"{value:.4g}" if np.isfinite(value) else ("-∞" if value < 0 else "∞")


def _label(value: Any) -> str:
    text = str(value)
    return text if len(text) <= _LABEL_LIMIT else text[: _LABEL_LIMIT - 1] + "…"


def _top(col: FilterColumn, top: int) -> int:
    """How many categories get a bar of their own (a lone leftover value gets one rather than "other")."""
    k = len(col.categories)
    return k if k <= top + 1 else top


def chart_spec(col: FilterColumn, top: int = TOP_VALUES) -> dict[str, Any]:
    """The chart of a prepared column: ``{column, kind, bars: [{key, label}], total}`` (text only).

    Examples
    --------
    >>> from cirscope.space._filters import FilterColumn
    >>> spec = chart_spec(FilterColumn.of("c", pd.Series(["a", "b", "a", None])))
    >>> [(bar["key"], bar["label"]) for bar in spec["bars"]], spec["total"]
    ([('0', 'a'), ('1', 'b'), ('missing', 'missing')], [2, 1, 1])
    """
    missing = bool(col.total[-1])
    if col.kind == "categories":
        t, k = _top(col, top), len(col.categories)
        bars = [{"key": str(i), "label": _label(col.categories[i])} for i in range(t)]
        if k > t:
            bars.append({"key": "other", "label": f"other ({k - t:,} values)"})
    else:
        e = col.edges
        bars = [{"key": str(i), "label": f"{_number(e[i])} – {_number(e[i + 1])}"} for i in range(len(e) - 1)]
    if missing:
        bars.append({"key": "missing", "label": "missing"})
    spec = {"column": col.name, "kind": col.kind, "bars": bars, "total": bar_counts(col, col.total, top)}
    if col.edges is not None:
        spec["range"] = [float(col.edges[0]), float(col.edges[-1])]
    return spec


def bar_counts(col: FilterColumn, counts: np.ndarray, top: int = TOP_VALUES) -> list[int]:
    """Per-code counts as the chart's bars count them (top values, "other", then "missing" if any)."""
    counts = np.asarray(counts, dtype=np.int64)
    if col.kind == "categories":
        t, k = _top(col, top), len(col.categories)
        out = counts[:t].tolist() + ([int(counts[t:k].sum())] if k > t else [])
    else:
        out = counts[:-1].tolist()
    return out + ([int(counts[-1])] if col.total[-1] else [])


def _key_codes(col: FilterColumn, key: str, top: int) -> set[int]:
    t, k = _top(col, top), len(col.categories)
    if key == "missing":
        return {col.slots - 1}
    if key == "other":
        return set(range(t, k))
    return {_key_index(key, t)}


def _key_index(key: str, limit: int) -> int:
    try:
        index = int(key)
    except (TypeError, ValueError):
        raise ValueError(f"No bar {key!r} in this chart") from None
    if not 0 <= index < limit:
        raise ValueError(f"No bar {key!r} in this chart")
    return index


def range_of_bins(col: FilterColumn, first: int, last: int) -> Filter:
    """The range of histogram bins ``first..last``, exactly the rows they count.

    A bin holds ``edges[i] <= v < edges[i + 1]``; the range is inclusive, so it ends just below
    the next bin's edge (the last bin keeps its right edge).

    Examples
    --------
    >>> from cirscope.space._filters import FilterColumn
    >>> col = FilterColumn.of("v", pd.Series(np.arange(100.0)), bins=4)
    >>> f = range_of_bins(col, 1, 1)
    >>> f.lo, f.hi < 50.0, int(col.mask(f).sum()), int(col.total[1])
    (24.75, True, 25, 25)
    """
    bins = len(col.edges) - 1
    a, b = sorted((_key_index(str(first), bins), _key_index(str(last), bins)))
    hi = float(col.edges[b + 1])
    return Filter("range", lo=float(col.edges[a]), hi=hi if b == bins - 1 else float(np.nextafter(hi, -np.inf)))


def click_filter(col: FilterColumn, current: Filter | None, key: str, top: int = TOP_VALUES) -> Filter | None:
    """The column's filter after a click on bar ``key`` (``None``: no filter left).

    Categories: the bar's values are added, or taken out when all of them are in (OR within
    the column). Histogram: a bin becomes the range (clicked again: no filter); "missing" keeps
    only the rows without a value.

    Examples
    --------
    >>> from cirscope.space._filters import FilterColumn
    >>> col = FilterColumn.of("c", pd.Series(["a", "b", "a", "c"]))
    >>> f = click_filter(col, None, "1"); f.codes
    (1,)
    >>> click_filter(col, f, "0").codes, click_filter(col, f, "1")
    ((0, 1), None)
    """
    if col.kind == "histogram":
        if key == "missing":
            made = Filter("numbers", missing=True)
        else:
            i = _key_index(key, len(col.edges) - 1)
            made = range_of_bins(col, i, i)
        return None if made == current else made
    codes = _key_codes(col, key, top)
    have = set(current.codes) if current is not None and current.kind == "codes" else set()
    have = have - codes if codes <= have else have | codes
    return Filter("codes", codes=tuple(sorted(have))) if have else None


def active_keys(col: FilterColumn, f: Filter | None, top: int = TOP_VALUES) -> dict[str, list[str]]:
    """The bars a filter keeps (``on``) and those it keeps in part (``partial``: some of "other").

    Examples
    --------
    >>> from cirscope.space._filters import FilterColumn
    >>> col = FilterColumn.of("v", pd.Series(np.arange(100.0)), bins=4)
    >>> active_keys(col, range_of_bins(col, 1, 2))
    {'on': ['1', '2'], 'partial': []}
    """
    on: list[str] = []
    partial: list[str] = []
    if f is None:
        return {"on": on, "partial": partial}
    missing_on = f.missing or (f.kind == "codes" and col.slots - 1 in f.codes)
    if col.kind == "categories":
        t, k = _top(col, top), len(col.categories)
        kept = np.zeros(col.slots, dtype=bool)
        if f.kind == "codes":
            kept[list(f.codes)] = True
        else:  # a range or numbers on a numeric column with few values: the categories it keeps
            kept = _kept(np.array([float(c) for c in col.categories] + [np.nan]), f)
        on = [str(i) for i in range(t) if kept[i]]
        if k > t and kept[t:k].any():
            (on if kept[t:k].all() else partial).append("other")
    else:
        e = col.edges
        if f.kind == "range":
            last = len(e) - 2  # bin i holds e[i] <= v < e[i + 1]; the last one its right edge too
            on = [str(i) for i in range(last + 1)
                  if e[i] <= f.hi and (e[i + 1] > f.lo or (i == last and e[i + 1] >= f.lo))]
        elif f.kind == "numbers" and f.numbers:
            hit = np.clip(np.searchsorted(e, np.asarray(f.numbers), side="right") - 1, 0, len(e) - 2)
            inside = (np.asarray(f.numbers) >= e[0]) & (np.asarray(f.numbers) <= e[-1])
            on = [str(i) for i in sorted(set(hit[inside].tolist()))]
    if missing_on and col.total[-1]:
        on.append("missing")
    return {"on": on, "partial": partial}


def _kept(values: np.ndarray, f: Filter) -> np.ndarray:
    """Which of ``values`` (one per category, then NaN for missing) a range or numbers filter keeps."""
    with np.errstate(invalid="ignore"):
        if f.kind == "range":
            return (values >= f.lo) & (values <= f.hi)
    out = np.isin(values, np.asarray(f.numbers, dtype=np.float64))
    return out | np.isnan(values) if f.missing else out


def chip_text(col: FilterColumn, f: Filter, limit: int = 3) -> str:
    """A filter in words for its chip: ``"red, blue +2 more"``, ``"0.5 – 2"``, ``"≥ 3"``, ``"missing"``.

    Examples
    --------
    >>> from cirscope.space._filters import FilterColumn
    >>> col = FilterColumn.of("c", pd.Series(list("abcde")))
    >>> chip_text(col, Filter("codes", codes=(0, 1, 2, 3)))
    'a, b, c +1 more'
    >>> chip_text(FilterColumn.of("v", pd.Series(np.arange(30.0))), Filter("range", lo=3.0))
    '≥ 3'
    """
    if f.kind == "range":
        if np.isinf(f.lo) and np.isinf(f.hi):
            return "any number"
        if np.isinf(f.lo):
            return f"≤ {_number(f.hi)}"
        if np.isinf(f.hi):
            return f"≥ {_number(f.lo)}"
        return f"{_number(f.lo)} – {_number(f.hi)}"
    words = ["missing" if v is None else (_number(v) if isinstance(v, float) else _label(v)) for v in col.describe(f)]
    more = f" +{len(words) - limit:,} more" if len(words) > limit else ""
    return ", ".join(words[:limit]) + more

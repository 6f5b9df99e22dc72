"""Metadata filters as array operations: which rows a set of column filters keeps, and cross-filter counts.

A filter names values of a column (``{"color": ["red", "blue"]}``: OR within the column) or
an inclusive range of a numeric one (``{"size": (0.2, 0.5)}``); filters on several columns
combine with AND. :class:`FilterTable` prepares each column once as small integer codes (a
category by frequency, or a histogram bin; one more code for missing values), so a mask is a
lookup-table gather or two comparisons and each chart's counts one ``np.bincount``, with no
Python loop over rows. :meth:`FilterTable.counts` gives the usual cross-filter counts: each
column is counted with the filters of the *other* columns.

Examples
--------
>>> meta = pd.DataFrame({"color": ["red", "blue", "red", None], "size": [1.0, 2.0, 3.0, 4.0]})
>>> table = FilterTable(meta, bins=3)
>>> table.mask({"color": "red"}).tolist()
[True, False, True, False]
>>> table.mask({"color": ["red", None], "size": (2.5, None)}).tolist()
[False, False, True, True]
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cirscope.space._tags import TAG_PREFIX

__all__ = ["DEFAULT_BINS", "MAX_CATEGORIES", "Filter", "FilterColumn", "FilterTable", "space_where", "where_mask"]

#: Numeric columns with more distinct values than this get a histogram; others get bars.
MAX_CATEGORIES = 20
#: Histogram bins of a numeric column.
DEFAULT_BINS = 20


@dataclass(frozen=True)
class Filter:
    """One column's filter: category ``codes``, a ``(lo, hi)`` range, or exact ``numbers``.

    ``missing`` adds the rows without a value (for ``numbers``; categories code them).
    """

    kind: str  # "codes", "range" or "numbers"
    codes: tuple[int, ...] = ()
    lo: float = -np.inf
    hi: float = np.inf
    numbers: tuple[float, ...] = ()
    missing: bool = False


@dataclass
class FilterColumn:
    """A column prepared for filtering and counting (see :meth:`FilterColumn.of`).

    Attributes
    ----------
    kind : {"categories", "histogram"}
        Bars of values (text, booleans, numbers with few values) or a binned histogram.
    codes : (N,) int32
        Per row: the category (0 = the most frequent) or the bin; ``slots - 1`` is "missing".
    categories : list
        The values, most frequent first (``"categories"`` columns).
    edges : (bins + 1,) float64 or None
        Bin edges (``"histogram"`` columns); a bin holds ``edges[i] <= v < edges[i + 1]``, the
        last one its right edge too.
    values : (N,) float64 or None
        The numbers (numeric columns), for ranges.
    total : (slots,) int64
        Rows per code over the whole column.
    """

    name: str
    kind: str
    codes: np.ndarray
    categories: list = field(default_factory=list)
    edges: np.ndarray | None = None
    values: np.ndarray | None = None
    total: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    _lookup: dict = field(default_factory=dict, repr=False)

    @property
    def slots(self) -> int:
        """Number of codes, the last being "missing"."""
        return int(self.total.size)

    @classmethod
    def of(cls, name: str, series: pd.Series, bins: int = DEFAULT_BINS) -> FilterColumn:
        """Prepare ``series``: a histogram for numbers with more than :data:`MAX_CATEGORIES` values, else bars."""
        s = series.reset_index(drop=True)
        numeric = pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)
        values = s.to_numpy(dtype=np.float64, na_value=np.nan) if numeric else None
        if numeric and s.nunique(dropna=True) > MAX_CATEGORIES:
            return cls._histogram(name, values, bins)
        try:
            raw, uniques = pd.factorize(s, use_na_sentinel=True)
        except TypeError:  # unhashable values (lists, dicts): compare them as text
            raw, uniques = pd.factorize(s.astype(str).where(s.notna(), None), use_na_sentinel=True)
        k = len(uniques)
        order = np.argsort(-np.bincount(raw[raw >= 0], minlength=k), kind="stable")
        rank = np.empty(k, np.int32)
        rank[order] = np.arange(k, dtype=np.int32)
        codes = np.where(raw >= 0, rank[np.maximum(raw, 0)], k).astype(np.int32)
        categories = np.asarray(uniques, dtype=object)[order].tolist()
        lookup: dict = {}
        for code, value in enumerate(categories):  # by value, then by text (what a browser sends back)
            lookup.setdefault(value, code)
        for code, value in enumerate(categories):
            lookup.setdefault(str(value), code)
        total = np.bincount(codes, minlength=k + 1).astype(np.int64)
        return cls(str(name), "categories", codes, categories, None, values, total, lookup)

    @classmethod
    def _histogram(cls, name: str, values: np.ndarray, bins: int) -> FilterColumn:
        finite = np.isfinite(values)
        edges = np.histogram_bin_edges(values[finite], bins=bins).astype(np.float64)
        codes = np.searchsorted(edges, values, side="right").astype(np.int32) - 1
        np.clip(codes, 0, bins - 1, out=codes)  # the maximum falls in the last bin
        codes[~finite] = bins  # missing (NaN) and infinite values
        total = np.bincount(codes, minlength=bins + 1).astype(np.int64)
        return cls(str(name), "histogram", codes, [], edges, values, total)

    # ------------------------------------------------------------------ filters
    def code_of(self, value: Any) -> int:
        """The category code of ``value`` (``None``/NaN: missing); ``ValueError`` naming close values."""
        if _is_missing(value):
            return self.slots - 1
        try:
            code = self._lookup.get(value)
        except TypeError:  # unhashable
            code = None
        if code is None:
            code = self._lookup.get(str(value))
        if code is None and self.values is not None and isinstance(value, str):  # "2" for the number 2.0
            try:
                code = self._lookup.get(float(value))
            except ValueError:
                code = None
        if code is None:
            texts = [str(c) for c in self.categories]
            close = difflib.get_close_matches(str(value), texts, n=3)
            hint = f"did you mean {close}?" if close else f"its values include {texts[:8]}"
            raise ValueError(f"Column {self.name!r} has no value {value!r}; {hint}")
        return int(code)

    def make(self, spec: Any) -> Filter | None:
        """A validated :class:`Filter` from what a user wrote (``None`` for an empty list: no filter).

        A tuple of two numbers (or ``None`` for an open end) is an inclusive range of a numeric
        column; a list, a set or a single value names values (``None``: missing).
        """
        if isinstance(spec, Filter):
            return spec
        if isinstance(spec, tuple) and len(spec) == 2 and self.values is not None and all(_is_bound(b) for b in spec):
            lo = -np.inf if spec[0] is None else float(spec[0])
            hi = np.inf if spec[1] is None else float(spec[1])
            if np.isnan(lo) or np.isnan(hi) or lo > hi:
                raise ValueError(f"The range for {self.name!r} must be (low, high) with low <= high, got {spec!r}")
            return Filter("range", lo=lo, hi=hi)
        if isinstance(spec, tuple) and len(spec) == 2 and self.kind == "histogram":
            raise TypeError(f"A range for {self.name!r} takes two numbers (or None for an open end), got {spec!r}")
        items = [spec] if isinstance(spec, (str, bytes)) or not np.iterable(spec) else list(spec)
        if not items:
            return None
        if self.kind == "categories":
            return Filter("codes", codes=tuple(sorted({self.code_of(v) for v in items})))
        missing = any(_is_missing(v) for v in items)
        try:
            numbers = tuple(sorted({float(v) for v in items if not _is_missing(v)}))
        except (TypeError, ValueError):
            raise TypeError(f"Column {self.name!r} holds numbers: filter it by numbers or a (low, high) range, "
                            f"got {spec!r}") from None
        return Filter("numbers", numbers=numbers, missing=missing)

    def mask(self, f: Filter) -> np.ndarray:
        """The rows ``f`` keeps (bool, one per row): a table lookup or comparisons, no loop over rows."""
        if f.kind == "codes":
            table = np.zeros(self.slots, dtype=bool)
            table[list(f.codes)] = True
            return table[self.codes]
        v = self.values
        if f.kind == "range":
            with np.errstate(invalid="ignore"):
                return (v >= f.lo) & (v <= f.hi)
        out = np.isin(v, np.asarray(f.numbers, dtype=np.float64))
        return out | np.isnan(v) if f.missing else out

    def describe(self, f: Filter) -> Any:
        """``f`` as a user writes it: a list of values (``None``: missing) or a ``(lo, hi)`` tuple."""
        if f.kind == "codes":
            missing = self.slots - 1
            return [None if c == missing else _plain(self.categories[c]) for c in f.codes]
        if f.kind == "range":
            return (None if np.isinf(f.lo) else f.lo, None if np.isinf(f.hi) else f.hi)
        return [*f.numbers, *([None] if f.missing else [])]


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(np.ndim(value) == 0 and pd.isna(value))
    except (TypeError, ValueError):
        return False


def _is_bound(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool))


def _plain(value: Any) -> Any:
    """numpy scalars as Python ones (what a user compares with)."""
    return value.item() if isinstance(value, np.generic) else value


class FilterTable:
    """Columns of a metadata frame prepared for filtering, and the masks and counts of a set of filters.

    Parameters
    ----------
    metadata
        One row per gallery item.
    columns
        The columns to prepare (default: all).
    bins
        Histogram bins of numeric columns with many values.

    Examples
    --------
    >>> meta = pd.DataFrame({"shape": ["star", "star", "cube", "cube"], "color": ["red", "blue", "red", "red"]})
    >>> table = FilterTable(meta)
    >>> mask, counts = table.counts({"shape": ["star"]})
    >>> mask.tolist(), counts["color"].tolist(), counts["shape"].tolist()  # shape is counted without its own filter
    ([True, True, False, False], [1, 1, 0], [2, 2, 0])
    """

    def __init__(self, metadata: pd.DataFrame, columns: list[str] | None = None, *, bins: int = DEFAULT_BINS):
        names = list(metadata.columns) if columns is None else list(columns)
        missing = [c for c in names if c not in metadata.columns]
        if missing:
            raise KeyError(f"No metadata column {missing[0]!r}; the columns are {[str(c) for c in metadata.columns]}")
        if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
            raise ValueError(f"bins must be a positive integer, got {bins!r}")
        self.n = len(metadata)
        self.columns: dict[str, FilterColumn] = {str(c): FilterColumn.of(str(c), metadata[c], int(bins)) for c in names}

    def column(self, name: str) -> FilterColumn:
        """The prepared column ``name`` (``KeyError`` naming the columns there are)."""
        try:
            return self.columns[name]
        except KeyError:
            raise KeyError(f"No filterable column {name!r}; the columns are {list(self.columns)}") from None

    def normalize(self, filters: Mapping[str, Any] | None) -> dict[str, Filter]:
        """Validate every filter first (a bad one raises and changes nothing); empty ones are dropped."""
        if filters is None:
            return {}
        if not isinstance(filters, Mapping):
            raise TypeError(f"filters must be a dict of column -> values or (low, high), got {type(filters).__name__}")
        out = {}
        for name, spec in filters.items():
            made = self.column(str(name)).make(spec)
            if made is not None:
                out[str(name)] = made
        return out

    def masks(self, filters: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """One boolean mask per filtered column."""
        return {name: self.columns[name].mask(f) for name, f in self.normalize(filters).items()}

    def mask(self, filters: Mapping[str, Any] | None) -> np.ndarray | None:
        """The rows every filter keeps (AND across columns); ``None`` without filters."""
        masks = list(self.masks(filters or {}).values())
        return np.logical_and.reduce(masks) if masks else None

    def counts(self, filters: Mapping[str, Any] | None) -> tuple[np.ndarray | None, dict[str, np.ndarray]]:
        """``(mask, {column: counts per code})``: each column counted with the *other* columns' filters.

        The masks "all filters but one" come from prefix and suffix ANDs (a few passes over
        the rows, however many filters there are).
        """
        masks = self.masks(filters or {})
        names, arrays = list(masks), list(masks.values())
        prefix: list[np.ndarray | None] = [None]
        for m in arrays:
            prefix.append(m if prefix[-1] is None else prefix[-1] & m)
        suffix: list[np.ndarray | None] = [None]
        for m in reversed(arrays):
            suffix.append(m if suffix[-1] is None else suffix[-1] & m)
        suffix.reverse()
        total = prefix[-1]
        others: dict[str, np.ndarray | None] = {}
        for i, name in enumerate(names):
            a, b = prefix[i], suffix[i + 1]
            others[name] = a if b is None else b if a is None else a & b
        out = {}
        for name, col in self.columns.items():
            keep = others[name] if name in others else total
            out[name] = col.total if keep is None else _masked_counts(col.codes, col.slots, keep)
        return total, out


def _masked_counts(codes: np.ndarray, slots: int, keep: np.ndarray) -> np.ndarray:
    """``np.bincount(codes[keep])``; when many rows are kept, without the boolean compress: the kept
    rows' codes are shifted past the others' and one bincount counts both (2-5x faster at
    1,000,000 rows keeping 40 %; a compress of a few kept rows is cheaper, see
    ``benchmarks/bench_filters.py``).

    Examples
    --------
    >>> _masked_counts(np.array([0, 1, 1, 2], np.int32), 3, np.array([True, True, False, True])).tolist()
    [1, 1, 1]
    """
    if np.count_nonzero(keep) * 16 < keep.size:
        return np.bincount(codes[keep], minlength=slots)
    key = keep.astype(np.int32)
    key *= slots
    key += codes
    return np.bincount(key, minlength=2 * slots)[slots:]


def where_mask(metadata: pd.DataFrame, where: Any) -> np.ndarray | None:
    """A search's ``where=``: a boolean mask (one per row) or filters ``{column: values or (lo, hi)}``.

    Examples
    --------
    >>> where_mask(pd.DataFrame({"color": ["red", "blue"]}), {"color": "blue"}).tolist()
    [False, True]
    """
    if where is None:
        return None
    if isinstance(where, Mapping):
        mask = FilterTable(metadata, [str(k) for k in where]).mask({str(k): v for k, v in where.items()})
        return np.ones(len(metadata), dtype=bool) if mask is None else mask
    arr = np.asarray(where.to_numpy() if isinstance(where, pd.Series) else where)
    if arr.dtype != bool or arr.shape != (len(metadata),):
        raise TypeError(f"where must be a dict of column filters or a boolean mask of {len(metadata)} values "
                        f"(one per gallery row), got {arr.dtype} of shape {arr.shape}")
    return arr


def space_where(space: Any, where: Any) -> np.ndarray | None:
    """:func:`where_mask` over a space's metadata (its tag columns ``"tag:<name>"`` only when named).

    Examples
    --------
    >>> rows = space.search("a red star", k=5, where={"color": ["blue", "green"]})
    >>> set(rows["color"]) <= {"blue", "green"}, len(rows)
    (True, 5)
    """
    tagged = isinstance(where, Mapping) and any(str(c).startswith(TAG_PREFIX) for c in where)
    return where_mask(space.metadata if tagged else space.gallery.metadata, where)

"""Row selections: validated row numbers (:func:`check_rows`, :class:`Rows`) and the :class:`RowSet` trait.

A selection travels as one binary buffer both ways, int32 rows or, when smaller, a bitmask
of one bit per point (:func:`use_bitmask`); the matching JS is ``encodeSelection`` /
``decodeSelection`` in ``js/map_view.js``. Validation is vectorised with numpy: no
per-element Python work at a million rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import traitlets

__all__ = ["BITMASK", "RowSet", "Rows", "check_rows", "rowset_from_json", "rowset_to_json", "use_bitmask"]

_ROW_WIRE = ("int32", "uint32", "int64", "uint64", "int16", "uint16", "int8", "uint8")


def check_rows(
    values: Any, n: int | None, *, unique: bool = False, name: str = "rows", within: str = ""
) -> np.ndarray:
    """Row numbers as a read-only int64 array, validated with numpy (no per-element Python work).

    Accepts a list, a tuple, an integer array or a boolean mask of length ``n``. Raises
    ``TypeError`` for non-integers or more than one dimension, ``IndexError`` for rows
    outside ``0..n-1`` (``within`` names that range in the message) and, with ``unique``, ``ValueError`` for repeated rows.

    Examples
    --------
    >>> check_rows([3, 1], 5).tolist()
    [3, 1]
    >>> check_rows(np.array([True, False, True]), 3).tolist()
    [0, 2]
    >>> check_rows([1, 1], 5, unique=True)
    Traceback (most recent call last):
    ...
    ValueError: rows must not repeat: row 1 appears more than once
    """
    if isinstance(values, Rows):
        arr = values.array
        if n is None or arr.size == 0 or int(arr.max()) < n:
            return arr  # validated when it was made (distinct, non-negative, read-only)
    elif isinstance(values, np.ndarray):
        arr = values
    else:
        try:
            arr = np.asarray(list(values) if not isinstance(values, (list, tuple)) else values)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be a flat list of row numbers (ints), got {type(values).__name__}") from None
    if arr.size == 0:
        return _frozen(np.empty(0, dtype=np.int64))
    if arr.ndim != 1:
        raise TypeError(f"{name} must be a flat list of row numbers (ints), got an array of shape {arr.shape}")
    if arr.dtype.kind == "b":
        if n is not None and arr.size != n:
            raise TypeError(f"a boolean mask for {name} needs one value per point ({n}), got {arr.size}")
        return _frozen(np.flatnonzero(arr).astype(np.int64))
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must be a flat list of row numbers (ints), got values of dtype {arr.dtype}")
    out_of_range = (arr < 0) if n is None else ((arr < 0) | (arr >= n))
    if out_of_range.any():
        bad = arr[out_of_range][:5].tolist()
        where = "negative" if n is None else f"outside the {within or f'{n:,} points'} (0..{n - 1})"
        raise IndexError(f"{name} {bad} are {where}")
    if unique:
        if n is not None and n <= 8 * arr.size + 1024:  # a mark per point: O(n), no sort
            mark = np.zeros(n, dtype=np.bool_)
            mark[arr] = True
            repeated = int(np.count_nonzero(mark)) != arr.size
        else:
            repeated = np.unique(arr).size != arr.size
        if repeated:
            sorted_rows = np.sort(arr)
            dup = int(sorted_rows[1:][sorted_rows[1:] == sorted_rows[:-1]][0])
            raise ValueError(f"{name} must not repeat: row {dup} appears more than once")
    return _frozen(arr)


def _frozen(arr: np.ndarray) -> np.ndarray:
    """``arr`` as a read-only int64 array nobody else holds."""
    out = arr.astype(np.int64)  # always a copy: the caller's array may change later
    out.flags.writeable = False
    return out


class Rows(list):
    """Row numbers: a list (compares, indexes and prints like one) that keeps its int64 array.

    ``array`` is the same rows as a read-only numpy array, so large selections go to numpy
    without a per-element conversion. The Python ints are made only when first used as a
    list (``len``, ``bool`` and ``np.asarray`` read the array), so a 500,000-row selection
    arriving from the browser costs no list building until user code looks at its items. It
    cannot be changed in place (the browser would not see the change): assign a new list instead.

    Examples
    --------
    >>> rows = Rows(np.array([2, 5]))
    >>> rows == [2, 5], rows.array.dtype, len(rows)
    (True, dtype('int64'), 2)
    >>> [0] + rows, sorted(rows, reverse=True), 5 in rows
    ([0, 2, 5], [5, 2], True)
    >>> rows.append(7)
    Traceback (most recent call last):
    ...
    TypeError: A selection cannot be changed in place (the browser would not see it); assign a new list, e.g. view.selected = [*view.selected, 7]
    """

    __slots__ = ("_filled", "array")

    def __init__(self, array: Any = ()):
        self.array: np.ndarray = check_rows(array, None, unique=True)
        self._filled = False

    @classmethod
    def _of(cls, arr: np.ndarray) -> Rows:
        """Rows over an already validated read-only int64 array (no copy, no list yet)."""
        rows = cls.__new__(cls)
        rows.array = arr
        rows._filled = False
        return rows

    def _list(self) -> list:
        """The list itself, its items made from ``array`` on first use."""
        if not self._filled:
            self._filled = True
            list.extend(self, self.array.tolist())
        return self

    def __len__(self) -> int:
        return int(self.array.size)

    def __bool__(self) -> bool:
        return bool(self.array.size)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.array if dtype is None else self.array.astype(dtype)

    def __iter__(self) -> Any:
        return list.__iter__(self._list())

    def __reversed__(self) -> Any:
        return list.__reversed__(self._list())

    def __getitem__(self, key: Any) -> Any:
        return list.__getitem__(self._list(), key)

    def __contains__(self, value: Any) -> bool:
        return list.__contains__(self._list(), value)

    def __eq__(self, other: Any) -> Any:
        if isinstance(other, Rows):
            return bool(np.array_equal(self.array, other.array))
        if isinstance(other, list) and len(other) != self.array.size:
            return False
        return list.__eq__(self._list(), other)

    def __ne__(self, other: Any) -> Any:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __lt__(self, other: Any) -> Any:
        return list.__lt__(self._list(), other)

    def __le__(self, other: Any) -> Any:
        return list.__le__(self._list(), other)

    def __gt__(self, other: Any) -> Any:
        return list.__gt__(self._list(), other)

    def __ge__(self, other: Any) -> Any:
        return list.__ge__(self._list(), other)

    __hash__ = None  # type: ignore[assignment]

    def __add__(self, other: Any) -> Any:
        return list.__add__(self._list(), other)

    def __radd__(self, other: Any) -> Any:
        return list.__add__(other, self._list()) if isinstance(other, list) else NotImplemented

    def __mul__(self, count: Any) -> Any:
        return list.__mul__(self._list(), count)

    __rmul__ = __mul__

    def index(self, *args: Any) -> int:
        return list.index(self._list(), *args)

    def count(self, value: Any) -> int:
        return list.count(self._list(), value)

    def copy(self) -> list:
        return list(self._list())

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        extra = f", {args[0]!r}" if args and not isinstance(args[0], (list, tuple, slice)) else ", ..."
        raise TypeError(
            "A selection cannot be changed in place (the browser would not see it); assign a new list, "
            f"e.g. view.selected = [*view.selected{extra}]"
        )

    append = extend = insert = remove = pop = clear = sort = reverse = _refuse
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse

    def __reduce__(self) -> tuple:
        return (Rows, (self.array.copy(),))

    def __repr__(self) -> str:
        return list.__repr__(self._list())


# a bitmask on the wire: bit (i & 7) of byte i >> 3 is row i (numpy's bitorder="little")
BITMASK = "bitmask"


def use_bitmask(count: int, n: int | None) -> bool:
    """Send ``count`` rows of ``n`` points as a bitmask (1 bit per point) rather than int32s?

    Whichever is smaller; the browser (``useBitmask`` in ``js/map_view.js``) uses the same
    rule, so a selection the browser sent encodes to the same bytes here and is not echoed.

    Examples
    --------
    >>> use_bitmask(10, 1_000_000), use_bitmask(500_000, 1_000_000)
    (False, True)
    """
    return n is not None and 4 * count > (n + 7) // 8


def _points(widget: Any, size_trait: str = "coords") -> int | None:
    ref = getattr(widget, size_trait, None) if widget is not None else None
    return None if ref is None else len(ref)


def rowset_to_json(value: Any, widget: Any = None) -> dict[str, Any]:
    """A selection as one buffer message: int32 rows, or a bitmask of the widget's points when smaller.

    Examples
    --------
    >>> rowset_to_json([3, 1])["dtype"]
    'int32'
    >>> class W:
    ...     coords = np.zeros((10, 2))
    >>> msg = rowset_to_json(list(range(0, 10, 2)), W())
    >>> msg["dtype"], msg["shape"], msg["data"].hex()  # rows 0, 2, 4, 6 in byte 0; row 8 in byte 1
    ('bitmask', [10], '5501')
    """
    arr = value.array if isinstance(value, Rows) else np.asarray(value if value is not None else [], dtype=np.int64)
    n = _points(widget)
    # bytes, not a memoryview: ipywidgets compares this with the browser's message (as bytes,
    # see MapView.set_state) to decide whether to send it back, and bytes compare with memcmp
    if n is not None and use_bitmask(int(arr.size), n) and (arr.size == 0 or int(arr.max()) < n):
        mark = np.zeros(n, dtype=np.bool_)
        mark[arr] = True
        return {"dtype": BITMASK, "shape": [n], "data": np.packbits(mark, bitorder="little").tobytes()}
    return {"dtype": "int32", "shape": [int(arr.size)], "data": arr.astype("<i4").tobytes()}


def rowset_from_json(value: Any, widget: Any = None) -> np.ndarray:
    """The rows of a browser message: int32 rows (read without copying) or a bitmask (a boolean mask).

    Checks the dtype, the size of the buffer against the shape, for a bitmask that it covers
    the widget's points exactly and that no bit past the last point is set. Raises
    ``ValueError`` with what was wrong for a damaged message (the trait keeps its value).
    """
    if value is None:
        return np.empty(0, dtype=np.int64)
    if isinstance(value, (list, tuple)):
        return np.asarray(value)
    if not isinstance(value, dict) or "data" not in value or "dtype" not in value:
        raise ValueError(f"A selection message must be {{dtype, shape, data}} with a binary buffer, got {type(value).__name__}")
    dtype = str(value["dtype"])
    if dtype not in _ROW_WIRE and dtype != BITMASK:
        raise ValueError(
            f"A selection buffer must hold integers ({', '.join(_ROW_WIRE)}) or a {BITMASK}, got dtype {dtype!r}"
        )
    data = value["data"]
    try:
        buf = memoryview(data).cast("B")
    except TypeError:
        raise ValueError(f"A selection message needs a binary buffer, got {type(data).__name__}") from None
    if dtype == BITMASK:
        return _bitmask_rows(buf, value.get("shape"), _points(widget))
    item = np.dtype(dtype).itemsize
    shape = value.get("shape", [buf.nbytes // item])
    if not isinstance(shape, (list, tuple)) or len(shape) != 1:
        raise ValueError(f"A selection buffer must be one-dimensional, got shape {shape!r}")
    if buf.nbytes % item or int(shape[0]) * item != buf.nbytes:
        raise ValueError(f"A selection buffer of {buf.nbytes} bytes does not hold {shape[0]} values of {dtype}")
    return np.frombuffer(buf, dtype=np.dtype(dtype).newbyteorder("<"))


def _bitmask_rows(buf: memoryview, shape: Any, n: int | None) -> np.ndarray:
    """A bitmask message's boolean mask (one value per point), checked whole before use."""
    if not isinstance(shape, (list, tuple)) or len(shape) != 1 or not isinstance(shape[0], int) or shape[0] < 0:
        raise ValueError(f"A selection bitmask needs shape [number of points], got {shape!r}")
    size = int(shape[0])
    if n is not None and size != n:
        raise ValueError(f"A selection bitmask of {size:,} points does not fit this map of {n:,} points")
    if buf.nbytes != (size + 7) // 8:
        raise ValueError(
            f"A selection bitmask of {size:,} points needs {(size + 7) // 8:,} bytes, got {buf.nbytes:,}"
        )
    bits = np.frombuffer(buf, dtype=np.uint8)
    if size % 8 and bits[-1] >> (size % 8):
        raise ValueError(f"A selection bitmask of {size:,} points has bits set past the last point")
    return np.unpackbits(bits, count=size, bitorder="little").view(np.bool_)


class RowSet(traitlets.TraitType):
    """A selection of distinct rows: set from a list, an array or a boolean mask; read as :class:`Rows`.

    Travels as one buffer both ways: int32 rows, or a bitmask over the owner's points when
    that is smaller (see :func:`use_bitmask`). Validation is vectorised (dtype, one dimension,
    bounds against the owner's number of points given by ``size_trait``, no repeats); a
    refused value leaves the previous selection in place.

    Examples
    --------
    >>> class T(traitlets.HasTraits):
    ...     coords = traitlets.Any(np.zeros((4, 2)))
    ...     picked = RowSet(size_trait="coords")
    >>> T(picked=[3, 0]).picked
    [3, 0]
    >>> T(picked=[4])
    Traceback (most recent call last):
    ...
    traitlets.traitlets.TraitError: The 'picked' trait: rows [4] are outside the 4 points (0..3)
    """

    info_text = "distinct row numbers"

    def __init__(self, size_trait: str | None = None, **kwargs: Any):
        self._size_trait = size_trait
        super().__init__(default_value=Rows(), **kwargs)
        self.tag(to_json=rowset_to_json, from_json=rowset_from_json)

    def _size(self, obj: Any) -> int | None:
        return None if self._size_trait is None else _points(obj, self._size_trait)

    def validate(self, obj: Any, value: Any) -> Rows:
        if value is None:
            value = ()
        try:
            arr = check_rows(value, self._size(obj), unique=True)
        except (TypeError, IndexError, ValueError) as exc:
            raise traitlets.TraitError(f"The {self.name!r} trait: {exc}") from None
        if isinstance(value, Rows) and value.array is arr:
            return value
        return Rows._of(arr)  # no list built here: see Rows

    def make_dynamic_default(self) -> Rows:
        return Rows()

"""Binary codec for arrays sent to the browser: ``{"dtype", "shape", "data"}``.

ipywidgets sends every ``bytes``/``memoryview`` found in a widget's state as a binary
buffer, so an array travels as one buffer plus a tiny JSON header; the matching decoder is
``decodeArray`` in the ``js/`` modules. float64 is cast to float32 and int64 to int32 (the
browser's typed arrays have no 64-bit floats worth the bandwidth and no safe 64-bit ints).
Selections of rows (validated, sent as int32 rows or a bitmask) are in
:mod:`cirscope.widgets._rowset`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import traitlets

__all__ = [
    "Array",
    "RowList",
    "array_from_json",
    "array_to_json",
    "rows_from_json",
    "rows_to_json",
]

_WIRE = {
    "float64": "float32",
    "float32": "float32",
    "float16": "float32",
    "int64": "int32",
    "int32": "int32",
    "int16": "int16",
    "int8": "int8",
    "uint64": "uint32",
    "uint32": "uint32",
    "uint16": "uint16",
    "uint8": "uint8",
    "bool": "uint8",
}


def array_to_json(value: np.ndarray | None, widget: Any = None) -> dict[str, Any] | None:
    """Serialise an array as ``{"dtype", "shape", "data": memoryview}`` (``None`` stays ``None``).

    Examples
    --------
    >>> out = array_to_json(np.array([[1.0, 2.0]]))
    >>> out["dtype"], out["shape"], bytes(out["data"]) == np.float32([1, 2]).tobytes()
    ('float32', [1, 2], True)
    """
    if value is None:
        return None
    arr = np.asarray(value)
    wire = _WIRE.get(arr.dtype.name)
    if wire is None:
        raise TypeError(f"Arrays of dtype {arr.dtype} cannot be sent to the browser; use a numeric dtype")
    arr = np.ascontiguousarray(arr, dtype=np.dtype(wire).newbyteorder("<"))
    return {"dtype": wire, "shape": list(arr.shape), "data": memoryview(arr.tobytes())}


def array_from_json(value: dict[str, Any] | None, widget: Any = None) -> np.ndarray | None:
    """Inverse of :func:`array_to_json` (the browser sends the same layout).

    Examples
    --------
    >>> array_from_json(array_to_json(np.arange(3))).tolist()
    [0, 1, 2]
    """
    if value is None:
        return None
    dtype = np.dtype(value["dtype"]).newbyteorder("<")
    arr = np.frombuffer(bytes(value["data"]), dtype=dtype)
    return arr.reshape([int(s) for s in value["shape"]]).astype(dtype.newbyteorder("="))


def rows_to_json(value: list[int] | None, widget: Any = None) -> dict[str, Any]:
    """A list of row numbers as an int32 array message."""
    return array_to_json(np.asarray(value if value is not None else [], dtype=np.int32))  # type: ignore[return-value]


def rows_from_json(value: Any, widget: Any = None) -> list[int]:
    """Row numbers from the browser: an int32 array message (or a plain JSON list)."""
    if value is None:
        return []
    if isinstance(value, dict):
        return [int(r) for r in array_from_json(value).ravel()]  # type: ignore[union-attr]
    return [int(r) for r in value]


class Array(traitlets.TraitType):
    """A numpy array trait sent as a binary buffer; validates dtype kind and dimensions.

    Parameters
    ----------
    dtype
        The dtype values are cast to (e.g. ``np.float32``).
    ndim, width
        Required number of dimensions and, when given, size of the last one.

    Examples
    --------
    >>> class T(traitlets.HasTraits):
    ...     xy = Array(np.float32, ndim=2, width=2)
    >>> T(xy=[[0, 1], [2, 3]]).xy.dtype
    dtype('float32')
    """

    info_text = "a numeric array"

    def __init__(self, dtype: Any = np.float32, ndim: int | None = None, width: int | None = None, **kwargs: Any):
        self._dtype = np.dtype(dtype)
        self._ndim = ndim
        self._width = width
        kwargs.setdefault("allow_none", True)
        super().__init__(default_value=None, **kwargs)
        self.tag(to_json=array_to_json, from_json=array_from_json)

    def validate(self, obj: Any, value: Any) -> np.ndarray | None:
        if value is None:
            if self.allow_none:
                return None
            self.error(obj, value)
        try:
            arr = np.asarray(value, dtype=self._dtype)
        except (TypeError, ValueError):
            raise traitlets.TraitError(
                f"The {self.name!r} trait needs numbers convertible to {self._dtype}, got {type(value).__name__}"
            ) from None
        if self._ndim is not None and arr.ndim != self._ndim:
            raise traitlets.TraitError(f"The {self.name!r} trait needs a {self._ndim}-D array, got shape {arr.shape}")
        if self._width is not None and (arr.ndim == 0 or arr.shape[-1] != self._width):
            raise traitlets.TraitError(
                f"The {self.name!r} trait needs arrays of shape (N, {self._width}), got {arr.shape}"
            )
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            raise traitlets.TraitError(f"The {self.name!r} trait got NaN or infinite values")
        return arr


class RowList(traitlets.List):
    """A list of positional rows (Python side) that travels as an int32 buffer."""

    def __init__(self, **kwargs: Any):
        super().__init__(traitlets.Int(), **kwargs)
        self.tag(to_json=rows_to_json, from_json=rows_from_json)

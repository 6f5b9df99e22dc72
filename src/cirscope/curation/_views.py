"""Saved views: an Explorer's state as a small JSON file with a version and a checksum.

An :class:`ExplorerView` holds what a person set: the reference (by gallery id, so the
view still fits a re-ordered or re-embedded gallery), the modification text, the method and
its sliders, ``k``, the colour column, the curation bar's filter, the metadata filters of
the filters sidebar, the selection (ids), the tags (ids per tag) and what the grid shows (``"query"`` results or the ``"selection"``). :func:`write_view` writes it atomically; :func:`read_view` refuses a file that is
not a view, was edited or damaged (:class:`~cirscope.DamagedFileError`), or comes from a
newer cirscope.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from cirscope._core.atomic import atomic_write_bytes
from cirscope._core.errors import DamagedFileError

__all__ = ["VIEW_FORMAT", "VIEW_VERSION", "ExplorerView", "decode_filters", "encode_filters", "read_view", "write_view"]

VIEW_FORMAT = "cirscope.view"
VIEW_VERSION = 1
_FIX = "Save the view again from the Explorer (ex.save_view(path))"
_PARAMS = ("alpha_t", "alpha_i", "beta", "a")


@dataclasses.dataclass
class ExplorerView:
    """What an Explorer shows, as plain data.

    Examples
    --------
    >>> view = ExplorerView(reference="shape-0-00003", text="make it blue", method="slerp", params={"a": 0.4})
    >>> ExplorerView.from_dict(view.to_dict()) == view
    True
    """

    reference: str | None = None
    text: str = ""
    method: str = "pdv"
    params: dict[str, float] = dataclasses.field(default_factory=dict)
    k: int = 20
    color_by: str = ""
    filters: list[dict[str, str]] = dataclasses.field(default_factory=list)
    selection: list[str] = dataclasses.field(default_factory=list)
    tags: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    grid: str = "query"
    #: the filters sidebar: ``{column: {"values": [...]}}`` or ``{column: {"range": [low, high]}}``
    #: (``null`` for an open bound); see :func:`encode_filters`
    metadata_filters: dict[str, dict[str, list[Any]]] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The view as JSON-ready data."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: Path | str = "<view>") -> ExplorerView:
        """Check every field's type; a wrong one raises :class:`DamagedFileError` naming it."""

        def bad(key: str, expected: str) -> DamagedFileError:
            shown = json.dumps(data.get(key))[:60]
            return DamagedFileError(path, f'field "{key}" is {shown}, expected {expected}', _FIX)

        def strings(value: Any) -> bool:
            return isinstance(value, list) and all(isinstance(v, str) for v in value)

        if not (data.get("reference") is None or isinstance(data.get("reference"), str)):
            raise bad("reference", "a gallery id or null")
        if data.get("grid") not in ("query", "selection"):
            raise bad("grid", '"query" or "selection"')
        for key in ("text", "method", "color_by"):
            if not isinstance(data.get(key), str):
                raise bad(key, "a string")
        if type(data.get("k")) is not int or not 1 <= data["k"] <= 500:
            raise bad("k", "an integer from 1 to 500")
        params = data.get("params")
        if not isinstance(params, dict) or not all(k in _PARAMS and isinstance(v, (int, float))
                                                   and not isinstance(v, bool) for k, v in params.items()):
            raise bad("params", f"numbers for {list(_PARAMS)}")
        filters = data.get("filters")
        if not isinstance(filters, list) or not all(
                isinstance(f, dict) and set(f) == {"column", "value"} and all(isinstance(v, str) for v in f.values())
                for f in filters):
            raise bad("filters", 'a list of {"column": ..., "value": ...} strings')
        if not strings(data.get("selection")):
            raise bad("selection", "a list of gallery ids")
        tags = data.get("tags")
        if not isinstance(tags, dict) or not all(strings(v) for v in tags.values()):
            raise bad("tags", "an object of tag name -> list of gallery ids")
        metadata_filters = data.get("metadata_filters", {})  # absent from views of earlier releases
        if not _filters_ok(metadata_filters):
            raise bad("metadata_filters", 'an object of column -> {"values": [...]} or {"range": [low, high]}')
        return cls(reference=data["reference"], text=data["text"], method=data["method"],
                   params={k: float(v) for k, v in params.items()}, k=data["k"], color_by=data["color_by"],
                   filters=[dict(f) for f in filters], selection=list(data["selection"]),
                   tags={k: list(v) for k, v in tags.items()}, grid=data["grid"],
                   metadata_filters={k: {kind: list(v) for kind, v in f.items()} for k, f in metadata_filters.items()})


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, bool, int)) or (isinstance(value, float) and value == value)


def _filters_ok(filters: Any) -> bool:
    if not isinstance(filters, dict):
        return False
    for column, spec in filters.items():
        if not isinstance(column, str) or not isinstance(spec, dict) or len(spec) != 1:
            return False
        (kind, value), = spec.items()
        if kind == "values" and isinstance(value, list) and all(_scalar(v) for v in value):
            continue
        if kind == "range" and isinstance(value, list) and len(value) == 2 and all(
                v is None or (isinstance(v, (int, float)) and not isinstance(v, bool) and v == v) for v in value):
            continue
        return False
    return True


def encode_filters(filters: dict[str, Any]) -> dict[str, dict[str, list[Any]]]:
    """The filters sidebar's filters (``{column: [values]}`` or ``{column: (low, high)}``) as JSON data.

    Examples
    --------
    >>> encode_filters({"color": ["red", None], "size": (0.2, None)})
    {'color': {'values': ['red', None]}, 'size': {'range': [0.2, None]}}
    >>> decode_filters(encode_filters({"color": ["red"], "size": (0.2, 0.5)}))
    {'color': ['red'], 'size': (0.2, 0.5)}
    """
    out: dict[str, dict[str, list[Any]]] = {}
    for column, spec in filters.items():
        if isinstance(spec, tuple):
            out[str(column)] = {"range": [_plain(v) for v in spec]}
        else:
            out[str(column)] = {"values": [_plain(v) for v in (spec if isinstance(spec, list) else [spec])]}
    return out


def decode_filters(data: dict[str, dict[str, list[Any]]]) -> dict[str, Any]:
    """The inverse of :func:`encode_filters`."""
    return {column: tuple(spec["range"]) if "range" in spec else list(spec["values"]) for column, spec in data.items()}


def _plain(value: Any) -> Any:
    """A JSON scalar for a numpy or pandas value (``None`` for a missing one)."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


def _checksum(body: dict[str, Any]) -> str:
    return hashlib.blake2b(json.dumps(body, sort_keys=True, ensure_ascii=True).encode(), digest_size=16).hexdigest()


def write_view(view: ExplorerView, path: str | os.PathLike) -> Path:
    """Write ``view`` to ``path`` (JSON, atomically); returns the absolute path.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = write_view(ExplorerView(text="make it blue"), Path(d) / "v.json")
    ...     read_view(p).text
    'make it blue'
    """
    path = Path(os.path.abspath(path))
    body = {"format": VIEW_FORMAT, "version": VIEW_VERSION, "view": view.to_dict()}
    record = {**body, "checksum": _checksum(body)}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, json.dumps(record, indent=1, ensure_ascii=False).encode("utf-8"))
    return path


def read_view(path: str | os.PathLike) -> ExplorerView:
    """Read a view written by :func:`write_view`; a damaged or foreign file raises :class:`DamagedFileError`."""
    path = Path(os.path.abspath(path))
    raw = path.read_bytes()  # FileNotFoundError names the path
    if len(raw) > 256 * 1024 * 1024:
        raise DamagedFileError(path, f"it holds {len(raw):,} bytes, far more than a view", _FIX)
    try:
        record = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise DamagedFileError(path, f"it is not valid JSON ({exc})", _FIX) from exc
    if not isinstance(record, dict) or record.get("format") != VIEW_FORMAT:
        raise DamagedFileError(path, "it is not a cirscope view (no \"format\": \"cirscope.view\")", _FIX)
    body = {k: v for k, v in record.items() if k != "checksum"}
    if record.get("checksum") != _checksum(body):
        raise DamagedFileError(path, "its fields do not match its checksum (edited by hand, or damaged)", _FIX)
    version = record.get("version")
    if type(version) is not int or version < 1:
        raise DamagedFileError(path, f'its "version" is {json.dumps(version)[:40]}', _FIX)
    if version > VIEW_VERSION:
        raise ValueError(f"{path} was written by a newer cirscope (view format {version}; this one reads up to "
                         f"{VIEW_VERSION}): upgrade cirscope (pip install -U cirscope)")
    if not isinstance(record.get("view"), dict):
        raise DamagedFileError(path, 'it has no "view" object', _FIX)
    return ExplorerView.from_dict(record["view"], path)

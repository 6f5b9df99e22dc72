"""The curation bar and its binding: tag, filter, export and save/restore views from an Explorer.

:class:`CurationBar` holds the traits the browser shows (``js/curation_bar.js``);
:class:`CurationBinding` acts on the Explorer's parts: it tags the map selection or the
results (:meth:`cirscope.Space.tag`), filters searches by ``column == value`` (tags
included), exports (:func:`cirscope.curation._export.export`) and captures or restores an
:class:`~cirscope.curation._views.ExplorerView`. Tag columns (``tag:<name>``) join the
map's colour menu as soon as a tag exists.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import traitlets as t

from cirscope.curation._export import FORMATS, export
from cirscope.curation._views import ExplorerView, decode_filters, encode_filters, read_view, write_view
from cirscope.space._tags import TAG_PREFIX, tag_column_name
from cirscope.widgets._base import WidgetBase
from cirscope.widgets._binding import Binding
from cirscope.widgets._static import static_file

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.space._space import Space
    from cirscope.widgets._grid import NeighborGrid
    from cirscope.widgets._map_view import MapView
    from cirscope.widgets._query_panel import QueryPanel

__all__ = ["CurationBar", "CurationBinding", "filter_mask"]

_ERRORS = (ValueError, TypeError, KeyError, IndexError, OSError)


def _shown(path: Path) -> str:
    """A written path as the bar shows it: relative to the kernel's working folder when inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def filter_mask(space: Space, column: str, value: str) -> np.ndarray:
    """Rows where ``column == value`` (compared as text; a tag column takes ``true``/``false``).

    Examples
    --------
    >>> int(filter_mask(space, "color", "red").sum()) == int((space.gallery.metadata["color"] == "red").sum())
    True
    """
    values = space.column(column)
    if pd.api.types.is_bool_dtype(values):
        wanted = value.strip().lower() in ("true", "1", "yes", "y")
        return values.to_numpy(bool) == wanted
    if pd.api.types.is_numeric_dtype(values):
        try:
            return values.to_numpy(np.float64) == float(value)
        except ValueError:
            pass
    return (values.astype(str) == value).to_numpy(bool) & values.notna().to_numpy(bool)


class CurationBar(WidgetBase):
    """Tag, filter, export and save views (the bar under an :class:`~cirscope.Explorer`'s map).

    The buttons send their action to Python; :attr:`message` says what was done (e.g. the
    path written) and :attr:`error` why not.
    """

    _esm = static_file("curation_bar.js")

    tags = t.List(t.Dict(), help="The space's tags: [{name, count}]").tag(sync=True)
    columns = t.List(t.Unicode(), help="Columns offered to the filter (tag columns included)").tag(sync=True)
    filter_column = t.Unicode("", help="The filter's column ('' : no filter)").tag(sync=True)
    filter_value = t.Unicode("", help="The filter's value (rows with column == value)").tag(sync=True)
    formats = t.List(t.Unicode(), default_value=list(FORMATS)).tag(sync=True)
    n_selected = t.Int(0).tag(sync=True)
    n_results = t.Int(0).tag(sync=True)
    message = t.Unicode("").tag(sync=True)
    error = t.Unicode("").tag(sync=True)


class CurationBinding(Binding):
    """Acts on an Explorer's space, map and query panel for a :class:`CurationBar`.

    Examples
    --------
    >>> from cirscope.widgets import MapView, QueryPanel
    >>> map_view, panel = MapView(space, map="pca"), QueryPanel(space, reference=0)
    >>> curation = CurationBinding(CurationBar(), space, map_view, panel)
    >>> map_view.selected = [3, 4]
    >>> curation.tag("selection", "checked"), "tag:checked" in map_view.color_columns
    (2, True)
    >>> curation.capture().tags["checked"] == space.gallery.metadata["id"].iloc[[3, 4]].tolist()
    True
    >>> space.tags.drop("checked")
    2
    """

    def __init__(self, bar: CurationBar, space: Space, map_view: MapView, panel: QueryPanel,
                 grid: NeighborGrid | None = None):
        self.bar, self.space, self.map, self.panel, self.grid = bar, space, map_view, panel, grid
        #: the Explorer's filters sidebar (a :class:`~cirscope.widgets.FilterPanel`), saved with views
        self.filter_panel: Any = None
        self._base_columns = list(map_view.color_columns)
        self.follow(bar, self._on_filter, ["filter_column", "filter_value"])
        self.follow(map_view, self._on_counts, "selected")
        self.follow(panel, self._on_counts, "result_version")
        bar.on_msg(self._on_msg)
        self.refresh_tags()
        self._on_counts({})

    def close(self) -> None:
        """Stop acting for the bar (calling it again does nothing)."""
        self.bar.on_msg(self._on_msg, remove=True)
        super().close()

    # ------------------------------------------------------------------ rows
    def rows(self, scope: str) -> np.ndarray:
        """The rows of ``"selection"`` (the map's), ``"results"`` (the panel's) or ``"tag:<name>"``."""
        if scope == "selection":
            return np.asarray(self.map.selected.array, dtype=np.int64)
        if scope == "results":
            hits = self.panel.binding.hits if self.panel.binding is not None else None
            return hits.rows if hits is not None else np.empty(0, np.int64)
        if scope.startswith(TAG_PREFIX):
            return self.space.tagged(scope[len(TAG_PREFIX):])
        raise ValueError(f'scope must be "selection", "results" or "tag:<name>", got {scope!r}')

    def _scores(self, scope: str) -> np.ndarray | None:
        hits = self.panel.binding.hits if self.panel.binding is not None else None
        return hits.scores if scope == "results" and hits is not None else None

    def _on_counts(self, change: dict) -> None:
        with self.bar.hold_sync():
            self.bar.n_selected = int(self.map.selected.array.size)
            self.bar.n_results = len(self.panel.results)

    # ------------------------------------------------------------------ tags
    def tag(self, scope: str, name: str) -> int:
        """Tag the rows of ``scope`` with ``name``; returns how many were newly tagged."""
        rows = self.rows(scope)
        if rows.size == 0:
            raise ValueError(f"Nothing to tag: the {scope} is empty")
        added = self.space.tag(rows, name)
        self.refresh_tags()
        return added

    def untag(self, scope: str, name: str) -> int:
        """Take tag ``name`` off the rows of ``scope``."""
        removed = self.space.untag(self.rows(scope), name)
        self.refresh_tags()
        return removed

    def refresh_tags(self) -> None:
        """Show the space's tags in the bar, the filter menu and the map's colour menu (recolouring by a tag)."""
        tags = self.space.tags
        tag_columns = [tag_column_name(name) for name in tags.names]
        binding = self.map.binding
        if binding is not None and (tag_columns or any(c.startswith(TAG_PREFIX) for c in binding.metadata.columns)):
            binding.metadata = self.space.metadata  # the gallery's columns plus one boolean column per tag
        base = [c for c in self._base_columns if not c.startswith(TAG_PREFIX)]
        with self.bar.hold_sync():
            self.bar.tags = [{"name": k, "count": v} for k, v in tags.counts().items()]
            self.bar.columns = base + tag_columns
        self.map.color_columns = base + tag_columns
        if self.map.color_by.startswith(TAG_PREFIX) and binding is not None:
            if self.map.color_by in tag_columns:
                binding.recolor()
            else:  # its tag is gone
                self.map.color_by = base[0] if base else ""
        if self.bar.filter_column.startswith(TAG_PREFIX):
            self._on_filter({})

    # ------------------------------------------------------------------ filter
    def _on_filter(self, change: dict) -> None:
        column, value = self.bar.filter_column, self.bar.filter_value
        binding = self.panel.binding
        if binding is None:
            return
        if not column:
            binding.set_mask(None)
            self.bar.message = "No filter: searches rank every image."
            return
        try:
            mask = filter_mask(self.space, column, value)
        except _ERRORS as exc:
            self.bar.error = f"Filter: {exc}"
            return
        self.bar.error = ""
        binding.set_mask(mask)
        self.bar.message = f"Filter {column} == {value}: searches rank {int(mask.sum()):,} of {mask.size:,} images."

    # ------------------------------------------------------------------ export and views
    def export(self, scope: str, path: str | os.PathLike, format: str | None = None, **options: Any) -> Path:
        """Export the rows of ``scope`` (see :func:`cirscope.curation._export.export`)."""
        rows = self.rows(scope)
        if rows.size == 0:
            raise ValueError(f"Nothing to export: the {scope} is empty")
        return export(self.space, rows, path, format, scores=self._scores(scope), **options)

    def capture(self) -> ExplorerView:
        """The Explorer's current state as an :class:`ExplorerView`."""
        p, ids = self.panel, self.space.tags.ids
        reference = str(ids[p.reference]) if 0 <= p.reference < ids.size else None
        filters = [{"column": self.bar.filter_column, "value": self.bar.filter_value}] if self.bar.filter_column else []
        tags = {name: ids[self.space.tagged(name)].tolist() for name in self.space.tags.names}
        return ExplorerView(reference=reference, text=p.text, method=p.method,
                            params={k: float(getattr(p, k)) for k in ("alpha_t", "alpha_i", "beta", "a")},
                            k=int(p.k), color_by=self.map.color_by, filters=filters,
                            selection=ids[self.map.selected.array].tolist(), tags=tags,
                            grid=self.grid.mode if self.grid is not None else "query",
                            metadata_filters=encode_filters(self.filter_panel.filters)
                            if self.filter_panel is not None else {})

    def restore(self, view: ExplorerView) -> list[str]:
        """Show ``view``: tags are added (none removed), then filter, query, colours, selection.

        Returns notes on what could not be restored (ids missing from this gallery, unknown columns).
        """
        notes: list[str] = []
        def rows_of(ids: list[str], what: str) -> np.ndarray:
            found = self.space.tags.find(ids)
            if (found < 0).any():
                notes.append(f"{int((found < 0).sum())} {what} ids are not in this gallery")
            return found[found >= 0]

        for name, ids in view.tags.items():
            self.space.tag(rows_of(ids, f"tag {name!r}"), name)
        self.refresh_tags()
        found = rows_of([view.reference], "reference") if view.reference is not None else []
        reference = int(found[0]) if len(found) else -1
        first = view.filters[0] if view.filters else {"column": "", "value": ""}
        if first["column"] and first["column"] not in self.bar.columns:
            notes.append(f"no column {first['column']!r} to filter by")
            first = {"column": "", "value": ""}
        with self.bar.hold_trait_notifications():
            self.bar.filter_column, self.bar.filter_value = first["column"], first["value"]
        self._restore_metadata_filters(view, notes)
        with self.panel.hold_trait_notifications():
            self.panel.reference = reference
            self.panel.text = view.text
            self.panel.method = view.method
            for key, value in view.params.items():
                setattr(self.panel, key, value)
            self.panel.k = view.k
        if view.color_by in self.map.color_columns or view.color_by == "":
            self.map.color_by = view.color_by
        else:
            notes.append(f"no column {view.color_by!r} to colour by")
        self.map.selected = rows_of(view.selection, "selected")
        if self.grid is not None and (view.grid == "query" or self.map.selected.array.size):
            self.grid.mode = view.grid
        return notes

    def _restore_metadata_filters(self, view: ExplorerView, notes: list[str]) -> None:
        if self.filter_panel is None or self.filter_panel.binding is None:
            if view.metadata_filters:
                notes.append("no filters sidebar to show the metadata filters in")
            return
        wanted = decode_filters(view.metadata_filters)
        known = set(self.filter_panel.binding.table.columns)
        for column in [c for c in wanted if c not in known]:
            notes.append(f"no column {column!r} in the filters sidebar")
            del wanted[column]
        try:
            self.filter_panel.filters = wanted
        except _ERRORS as exc:  # a value this gallery cannot hold: the view's other parts still show
            notes.append(f"metadata filters not restored ({exc})")

    def save_view(self, path: str | os.PathLike) -> Path:
        """Write the current state to ``path`` (JSON)."""
        return write_view(self.capture(), path)

    def restore_view(self, path: str | os.PathLike) -> list[str]:
        """Read a view file and show it (see :meth:`restore`)."""
        return self.restore(read_view(path))

    # ------------------------------------------------------------------ browser actions
    def _on_msg(self, widget: Any, content: Any, buffers: list) -> None:
        if not isinstance(content, dict) or not isinstance(content.get("event"), str):
            return
        event = content["event"]
        text = {k: str(v) for k, v in content.items() if isinstance(v, (str, int, float))}
        try:
            if event in ("export", "save_view", "restore_view") and not text.get("path", "").strip():
                raise ValueError("Type a path first")
            if event == "tag":
                added = self.tag(text.get("scope", "selection"), text.get("name", ""))
                message = f"Tagged {added:,} more images {text.get('name', '').strip()!r}."
            elif event == "untag":
                removed = self.untag(text.get("scope", "selection"), text.get("name", ""))
                message = f"Took {text.get('name', '')!r} off {removed:,} images."
            elif event == "export":
                path = self.export(text.get("scope", "selection"), text.get("path", ""), text.get("format") or None)
                message = f"Wrote {_shown(path)}"
            elif event == "save_view":
                message = f"Saved the view to {_shown(self.save_view(text.get('path', '')))}"
            elif event == "restore_view":
                notes = self.restore_view(text.get("path", ""))
                message = "Restored the view" + (f" ({'; '.join(notes)})" if notes else ".")
            else:
                return
        except _ERRORS as exc:
            with self.bar.hold_sync():
                self.bar.message = ""
                self.bar.error = f"{type(exc).__name__}: {exc}"
            return
        with self.bar.hold_sync():
            self.bar.error = ""
            self.bar.message = message

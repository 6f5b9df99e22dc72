"""Two spaces of one gallery side by side: two linked maps, the images whose neighbourhoods changed most.

:class:`CompareView` holds the traits the browser shows (``js/compare_view.js`` lays out the
two :class:`MapView` parts and the tables); :class:`CompareBinding` runs
:func:`cirscope.compare` and links the maps: a box/lasso selection in one selects the same
images in the other, and a picked image (a table row or a map point) is outlined in both
with its nearest neighbours in each space highlighted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import traitlets as t
from anywidget import WidgetTrait

from cirscope.diagnostics._result import format_value
from cirscope.widgets._base import WidgetBase
from cirscope.widgets._binding import Binding
from cirscope.widgets._map_view import MapView
from cirscope.widgets._static import static_file

if TYPE_CHECKING:  # pragma: no cover
    from cirscope.analysis._compare import CompareResult
    from cirscope.space._space import Space

__all__ = ["CompareBinding", "CompareView"]


class CompareView(WidgetBase):
    """Two models of one gallery compared: two linked maps and the images whose neighbours changed most.

    Drag a box or lasso on either map: the same images are selected on the other, so you
    see where one model's neighbourhood lands in the other's map. Click a row of the table
    (or a point on a map) to pick an image: it is outlined on both maps, with its ``k``
    nearest neighbours in each space highlighted. Also a "Compare" tab of
    ``cs.Explorer(space, compare=other_space)``.

    Parameters
    ----------
    space_a, space_b
        :class:`~cirscope.Space` objects of one gallery (same ids, same order), e.g. two
        models or two checkpoints.
    k
        Neighbourhood size of :func:`cirscope.compare`.
    map_a, map_b
        Each map: ``"auto"``, ``"umap"``, ``"pca"`` or an ``(N, 2)`` array.
    color_by
        The metadata column colouring both maps.
    n_changed
        How many of the most changed images the table lists.
    height
        Height of each map in pixels.

    Attributes
    ----------
    map_a, map_b : MapView
        The two maps.
    result : cirscope.analysis.CompareResult
        The comparison (``.to_frame()``, ``.most_changed(n)``, ``.figure()``).
    focus : int
        The picked image (-1: none).

    Examples
    --------
    >>> view = cs.CompareView(space, space, k=5, map_a="pca", map_b="pca")
    >>> view.names, view.summary["mean overlap"]
    (['cirscope-toy (A)', 'cirscope-toy (B)'], '1')
    >>> view.map_a.selected = [3, 4]  # a drag in the first map
    >>> view.map_b.selected
    [3, 4]
    >>> view.focus = 7
    >>> view.map_b.reference, len(view.map_b.highlighted)
    (7, 5)
    >>> view.close()
    """

    _esm = static_file("compare_view.js")

    map_a = WidgetTrait().tag(sync=True)
    map_b = WidgetTrait().tag(sync=True)
    names = t.List(t.Unicode(), help="The two spaces' names").tag(sync=True)
    k = t.Int(10).tag(sync=True)
    summary = t.Dict(help="Headline numbers as text").tag(sync=True)
    changed = t.List(t.Dict(), help="The most changed images: row, id, shared, overlap (text)").tag(sync=True)
    diagnostics = t.List(t.Dict(), help="Diagnostics side by side: quantity, a, b (text)").tag(sync=True)
    focus = t.Int(-1, min=-1, help="The picked image (-1: none)").tag(sync=True)

    def __init__(
        self,
        space_a: Space,
        space_b: Space,
        *,
        k: int = 10,
        map_a: Any = "auto",
        map_b: Any = "auto",
        color_by: str | None = None,
        n_changed: int = 30,
        height: int = 360,
    ):
        from cirscope.analysis._compare import check_same_gallery

        check_same_gallery(space_a, space_b)  # before two maps are computed
        first = MapView(space_a, map=map_a, color_by=color_by, height=height)
        second = MapView(space_b, map=map_b, color_by=color_by, height=height)
        super().__init__(map_a=first, map_b=second, k=int(k))
        self.binding = CompareBinding(self, space_a, space_b, k=int(k), n_changed=n_changed)

    @property
    def result(self) -> CompareResult:
        """The :class:`~cirscope.analysis.CompareResult` shown."""
        return self.binding.result

    def close(self) -> None:
        """Unlink and close both maps."""
        binding = self.__dict__.get("binding")
        if binding is not None:
            binding.close()
        for name in ("map_a", "map_b"):
            part = self._trait_values.get(name)
            if part is not None:
                if part.binding is not None:
                    part.binding.close()
                part.close()
        super().close()


def _text(value: float) -> str:
    """A diagnostic number as the table shows it ("n/a" where the space cannot measure it)."""
    return "n/a" if np.isnan(value) else format_value(value)


class CompareBinding(Binding):
    """Fills a :class:`CompareView` from :func:`cirscope.compare` and links its two maps.

    Examples
    --------
    >>> view = CompareView(space, space, k=5, map_a="pca", map_b="pca")
    >>> view.binding.result.summary()["mean_overlap"]
    1.0
    >>> view.close()
    """

    def __init__(self, view: CompareView, space_a: Space, space_b: Space, *, k: int = 10, n_changed: int = 30):
        from cirscope.analysis._compare import compare

        self.view = view
        self.result = compare(space_a, space_b, k=k, progress=False)
        self._linking = False
        self._fill(n_changed)
        maps = (view.map_a, view.map_b)
        self.follow(maps[0], lambda change: self._link(maps[0], maps[1]), "selected")
        self.follow(maps[1], lambda change: self._link(maps[1], maps[0]), "selected")
        self.follow(view, self._on_focus, "focus")
        for m in maps:
            m.on_click(self.pick)

    def close(self) -> None:
        for m in (self.view.map_a, self.view.map_b):
            m.on_click(self.pick, remove=True)
        super().close()

    def pick(self, row: int) -> None:
        """Make ``row`` the picked image (a map click does this)."""
        if 0 <= row < len(self.result):
            self.view.focus = int(row)

    def _fill(self, n_changed: int) -> None:
        res, view = self.result, self.view
        a, b = res.names
        s = res.summary()
        changed = res.most_changed(n_changed)
        table = res.diagnostics_frame()
        with view.hold_sync():
            view.names = [a, b]
            view.summary = {
                "images": f"{s['images']:,}", "k": str(res.k), "mean overlap": format_value(s["mean_overlap"], 3),
                "all kept": f"{s['unchanged_share']:.0%}", "none kept": f"{s['disjoint_share']:.0%}",
            }  # fmt: skip
            view.changed = [
                {"row": int(r), "id": str(i), "shared": f"{int(sh)}/{res.k}", "overlap": f"{ov:.2f}"}
                for r, i, sh, ov in zip(changed["row"], changed["id"], changed["shared"], changed["overlap"], strict=True)
            ]
            view.diagnostics = [
                {"quantity": str(q), "a": _text(va), "b": _text(vb)}
                for q, va, vb in zip(table["quantity"], table[a], table[b], strict=True)
            ]

    def _link(self, source: MapView, target: MapView) -> None:
        if self._linking:
            return
        rows = source.selected.array
        if np.array_equal(rows, target.selected.array):
            return
        self._linking = True
        try:
            target.selected = rows
        finally:
            self._linking = False

    def _on_focus(self, change: dict) -> None:
        row = int(change["new"])
        res = self.result
        for m, neighbors in ((self.view.map_a, res.neighbors_a), (self.view.map_b, res.neighbors_b)):
            with m.hold_sync():
                m.reference = row if 0 <= row < len(res) else -1
                m.highlighted = neighbors[row].astype(np.int32) if 0 <= row < len(res) else np.empty(0, np.int32)

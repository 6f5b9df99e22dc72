"""A map that shows something at once: a PCA layout first, UMAP swapped in when it is ready.

With ``map="auto"`` (galleries up to :data:`~cirscope.widgets._map_data.AUTO_UMAP_LIMIT` images) a
:class:`~cirscope.widgets.MapView` whose UMAP is not cached yet opens on the PCA layout (instant)
and holds a :class:`ProgressiveMap`. The UMAP fit starts when a view of the map is first drawn
(the front end's ping; a script that never shows the widget never pays for it) or when
:meth:`ProgressiveMap.ready` is called. It runs in a daemon thread
(:func:`cirscope.projection._background.background_map`, shared by every map of the same space);
the map's status line says "UMAP 40% · ETA 12 s", then the UMAP layout replaces the PCA one with
a short note. Rows stay rows: the selection, the reference and the highlights carry over, and the
front end keeps the points that were in view in view. A failed fit is said in the status line
(and raised by :meth:`ProgressiveMap.ready`); closing the widget cancels the fit once no other
map waits for it. A cached UMAP is shown at once, with no PCA step.

Trait updates happen on the kernel's event loop when there is one (progress polled every
:data:`POLL_S` seconds, the swap scheduled from the thread), so no observer runs on the
fitting thread; without a loop (a plain script) the swap happens on the fitting thread.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import numpy as np

from cirscope.projection._background import MapJob, background_map
from cirscope.projection._compute import _MIN_UMAP, cached_map
from cirscope.widgets._map_data import AUTO_UMAP_LIMIT, map_coords

__all__ = ["POLL_S", "ProgressiveMap", "first_coords"]

#: Seconds between two progress readings shown in the map's status line.
POLL_S = 0.5


def first_coords(space: Any, method: Any = "auto") -> tuple[np.ndarray, bool]:
    """``(coordinates to show now, whether UMAP should follow in the background)``.

    ``"auto"`` up to :data:`AUTO_UMAP_LIMIT` images: the cached UMAP when there is one, else the
    PCA layout and ``True``. Anything else is :func:`~cirscope.widgets._map_data.map_coords`.

    Examples
    --------
    >>> xy, later = first_coords(space, "pca")
    >>> xy.shape, later
    ((120, 2), False)
    """
    if isinstance(method, str) and method == "auto" and _MIN_UMAP <= len(space) <= AUTO_UMAP_LIMIT:
        cached = cached_map(space.image_embeddings, "umap", space.cache_dir, space.fingerprint)
        if cached is not None:
            return cached, False
        return map_coords(space, "pca"), True
    return map_coords(space, method), False


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class ProgressiveMap:
    """Fits a map's UMAP in the background and swaps it in (see the module's text).

    Parameters
    ----------
    view
        The :class:`~cirscope.widgets.MapView` (its ``map_status`` and ``map_status_kind`` traits
        show progress, the note and errors).
    binding
        Its :class:`~cirscope.widgets._map_view.MapBinding` (:meth:`show_coords` swaps the layout).
    space
        The space whose UMAP is fitted.
    params
        Passed on to :meth:`cirscope.Space.map` (e.g. ``n_neighbors``); none by default, so the
        fit fills the same cache entry as ``space.map("umap")``.
    """

    def __init__(self, view: Any, binding: Any, space: Any, params: dict[str, Any] | None = None):
        self.view, self.binding, self.space = view, binding, space
        self.params = dict(params or {})
        self.job: MapJob | None = None
        self._lock = threading.Lock()
        self._apply_lock = threading.Lock()  # held while the outcome is shown: a second caller waits for it
        self._applied = self._closed = False
        self._loop = _running_loop()
        self._timer: Any = None
        self._status("PCA layout for now · UMAP starts when the map is shown", "progress")
        view.on_msg(self._on_msg)

    # ------------------------------------------------------------------ status
    def _status(self, text: str, kind: str) -> None:
        with self.view.hold_sync():
            self.view.map_status = text
            self.view.map_status_kind = kind

    def _on_msg(self, widget: Any, content: Any, buffers: list) -> None:
        if isinstance(content, dict) and content.get("event") == "ping":  # a view was drawn
            self.start()

    # ------------------------------------------------------------------ fitting
    def start(self) -> None:
        """Start the UMAP fit (once; the map's first drawing calls it)."""
        with self._lock:
            if self.job is not None or self._closed:
                return
            self.job = job = background_map(self.space.image_embeddings, self.space.cache_dir, self.space.fingerprint,
                                            **self.params)
        self._status(job.progress().text(), "progress")
        job.on_done(self._on_done)
        self._schedule_poll()

    def _schedule_poll(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._timer = self._loop.call_later(POLL_S, self._poll)

    def _poll(self) -> None:
        self._timer = None
        job = self.job
        if self._closed or self._applied or job is None or job.wait(0):
            return
        self._status(job.progress().text(), "progress")
        self._schedule_poll()

    def _on_done(self, job: MapJob) -> None:
        """From the fitting thread: swap on the kernel's loop when there is one."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self.apply)
                return
            except RuntimeError:  # the loop closed meanwhile
                pass
        self.apply()

    def apply(self) -> None:
        """Show the finished fit's outcome (once): the UMAP layout, or the error in the status line."""
        job = self.job
        with self._apply_lock:
            if self._applied or self._closed or job is None or not job.wait(0):
                return
            self._applied = True
            if self._timer is not None:
                self._timer.cancel()
            if job.result is not None:
                self.binding.show_coords(job.result)
                self._status("UMAP layout (it replaced the PCA preview; the selection is kept)", "note")
            elif job.error is not None:
                self._status(f"UMAP failed, still showing PCA: {type(job.error).__name__}: {job.error}", "error")
            else:
                self._status("", "")

    def ready(self, timeout: float | None = None) -> bool:
        """Start the fit if needed, wait for it and show its outcome here and now.

        Returns ``True`` once the UMAP layout is shown, ``False`` when ``timeout`` seconds
        passed first (or the fit was cancelled). Raises ``RuntimeError`` (from the fit's
        error) when it failed; the map's status line says so too.
        """
        self.start()
        job = self.job
        if job is None or not job.wait(timeout):
            return False
        self.apply()
        if job.error is not None:
            raise RuntimeError(f"The UMAP map could not be computed: {job.error}") from job.error
        return job.result is not None

    def close(self) -> None:
        """Stop: cancel the poll and let go of the fit (cancelled when no other map waits for it)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            job = self.job
        if self._timer is not None:
            self._timer.cancel()
        self.view.on_msg(self._on_msg, remove=True)
        if job is not None:
            job.release(self._on_done)

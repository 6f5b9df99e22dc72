"""A UMAP map fitted in a background thread, so a widget can show a PCA layout at once.

:func:`background_map` starts (or joins) a :class:`MapJob`: a daemon thread running
:func:`~cirscope.projection._compute.compute_map`, which caches the result as usual. Callers read
its progress (:meth:`MapJob.progress`), wait for it (:meth:`MapJob.wait`) and hear when it ends
(:meth:`MapJob.on_done`). Two callers asking for the same map (same embeddings, same
parameters) share one job; when the last one lets go (:meth:`MapJob.release`) the job is
cancelled at its next stage boundary. The thread is a daemon: a kernel that shuts down never
waits for it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from cirscope.projection._progress import MapCancelled, MapProgress, MapTracker

__all__ = ["MapJob", "background_map"]

_JOBS: dict[Any, MapJob] = {}
_JOBS_LOCK = threading.Lock()


class MapJob:
    """One map fitted in a daemon thread.

    Attributes
    ----------
    result : (N, 2) float32 or None
        The map, once done.
    error : BaseException or None
        What the fit raised (``None`` when it succeeded or was cancelled).
    tracker : MapTracker
        Its progress, read by :meth:`progress`.

    Examples
    --------
    >>> x = np.random.default_rng(0).normal(size=(40, 8))
    >>> job = MapJob(x, method="pca")
    >>> job.acquire().start().wait(30), job.state, job.result.shape
    (True, 'done', (40, 2))
    """

    def __init__(self, embeddings: Any, *, key: Any = None, **params: Any):
        self.embeddings = embeddings
        self.params = {"method": "umap", **params, "progress": False}
        self.key = key
        self.tracker = MapTracker()
        self.result: np.ndarray | None = None
        self.error: BaseException | None = None
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[MapJob], Any]] = []
        self._users = 0
        self._thread: threading.Thread | None = None

    @property
    def state(self) -> str:
        """``"waiting"`` (not started), ``"running"``, ``"done"``, ``"failed"`` or ``"cancelled"``."""
        if not self._done.is_set():
            return "running" if self._thread is not None else "waiting"
        if self.result is not None:
            return "done"
        return "failed" if self.error is not None else "cancelled"

    def start(self) -> MapJob:
        """Start the thread (once); returns the job."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="cirscope-map", daemon=True)
                self._thread.start()
        return self

    def _run(self) -> None:
        from cirscope.projection._compute import compute_map

        try:
            self.result = compute_map(self.embeddings, tracker=self.tracker, **self.params)
        except MapCancelled:
            pass
        except BaseException as exc:  # shown by the widget, re-raised by wait_result
            self.error = exc
        finally:
            with _JOBS_LOCK:
                if _JOBS.get(self.key) is self:
                    del _JOBS[self.key]
            with self._lock:
                self._done.set()
                callbacks, self._callbacks = self._callbacks, []
            for callback in callbacks:
                callback(self)

    def progress(self) -> MapProgress:
        """How far the fit has come (any thread)."""
        return self.tracker.snapshot()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the job ends (done, failed or cancelled); ``False`` on timeout."""
        return self._done.wait(timeout)

    def on_done(self, callback: Callable[[MapJob], Any]) -> None:
        """Call ``callback(job)`` when the job ends, from its thread (at once when it has ended)."""
        with self._lock:
            if not self._done.is_set():
                self._callbacks.append(callback)
                return
        callback(self)

    def acquire(self) -> MapJob:
        """One more user of the job."""
        with self._lock:
            self._users += 1
        return self

    def release(self, callback: Callable[[MapJob], Any] | None = None) -> None:
        """One user less (and its ``on_done`` callback dropped); the last one cancels an unfinished job."""
        with self._lock:
            if callback is not None and callback in self._callbacks:
                self._callbacks.remove(callback)
            self._users = max(0, self._users - 1)
            last = self._users == 0 and not self._done.is_set()
        if last:
            self.tracker.cancel()
            with _JOBS_LOCK:
                if _JOBS.get(self.key) is self:
                    del _JOBS[self.key]


def background_map(
    embeddings: Any,
    cache_dir: str | os.PathLike | None = None,
    fingerprint: str | None = None,
    **params: Any,
) -> MapJob:
    """A started, acquired :class:`MapJob` computing ``compute_map(embeddings, "umap", ...)``.

    A job already running for the same embeddings and parameters is shared (acquired again),
    never started twice. Call :meth:`MapJob.release` when the map is no longer wanted.

    Examples
    --------
    >>> x = np.random.default_rng(0).normal(size=(40, 8))
    >>> job = background_map(x, method="pca")
    >>> job.wait(30), job.result.shape
    (True, (40, 2))
    >>> job.release()
    """
    key = None
    if cache_dir is not None and fingerprint is not None:
        key = (os.fspath(cache_dir), fingerprint, repr(sorted(params.items())))
    with _JOBS_LOCK:
        job = _JOBS.get(key) if key is not None else None
        if job is None or job.tracker.cancelled:
            job = MapJob(embeddings, key=key, cache_dir=cache_dir, fingerprint=fingerprint, **params)
            if key is not None:
                _JOBS[key] = job
        job.acquire()
    return job.start()

"""How far a map's fit has come: a thread-safe record of its stages that another thread can read.

:func:`~cirscope.projection._fit.fit_umap` reports each stage to a :class:`MapTracker`
(start, items done, finish); a widget reads :meth:`MapTracker.snapshot` while the fit runs in
the background and shows "UMAP 40% · ETA 12 s". umap-learn's layout reports nothing while it
runs, so its share of the work advances on a time estimate (:func:`layout_seconds`, scaled by
the machine's load), capped below the stage's end until the stage really ends. A cancelled tracker stops the fit at the
next stage boundary (:class:`MapCancelled`).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

__all__ = ["FIRST_FIT_S", "LAYOUT_FIXED_S", "LAYOUT_S_PER_POINT_EPOCH", "MapCancelled", "MapProgress", "MapTracker",
           "layout_seconds", "slowdown"]

#: Seconds the first UMAP fit in a process spends compiling umap-learn's numba code before the
#: layout starts, on a quiet 2-core machine (a later fit in the same process pays none).
FIRST_FIT_S = 15.0
#: Seconds of umap-learn's layout per point and epoch on a quiet 2-core machine, and its fixed part
#: (the fuzzy graph, the spectral start). Measured on 2 cores at a load average of ~14 (random
#: 128-d vectors, ``compute_map``'s ``timings``): first fit of 1,000 points 107 s, then 1,000
#: points 29 s and 3,000 points 53 s at 500 epochs, i.e. 2.4e-5 s per point and epoch, 17 s fixed
#: and ~78 s of compilation; divided by the load over the cores (7) for a quiet machine. The
#: estimate is multiplied back by that ratio at the time of the fit (:func:`slowdown`).
LAYOUT_S_PER_POINT_EPOCH = 3.5e-6
LAYOUT_FIXED_S = 2.5
#: The layout's estimated share never passes this fraction of its stage before the stage ends.
_CAP = 0.95

_fitted_once = False  # a UMAP fit finished in this process: numba's code is compiled


def slowdown() -> float:
    """How much slower than a quiet machine this one runs now: the 1-minute load average over the
    number of cores, at least 1 (1 where the load average is unknown).

    Examples
    --------
    >>> slowdown() >= 1.0
    True
    """
    try:
        return max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))
    except (AttributeError, OSError):  # no load average on this platform
        return 1.0


def layout_seconds(points: int, epochs: int | None = None, first: bool | None = None,
                   factor: float | None = None) -> float:
    """Estimated seconds of umap-learn's layout of ``points`` (its default epochs: 500 up to
    10,000 points, else 200), plus :data:`FIRST_FIT_S` when it is the process's first fit, times
    ``factor`` (default: :func:`slowdown`).

    Examples
    --------
    >>> layout_seconds(1000, first=False, factor=1.0), layout_seconds(1000, first=True, factor=2.0)
    (4.25, 38.5)
    """
    if epochs is None or epochs <= 0:
        epochs = 500 if points <= 10_000 else 200
    if first is None:
        first = not _fitted_once
    if factor is None:
        factor = slowdown()
    return factor * ((FIRST_FIT_S if first else 0.0) + LAYOUT_FIXED_S + LAYOUT_S_PER_POINT_EPOCH * points * epochs)


def note_fitted() -> None:
    """Record that a UMAP fit finished in this process (later estimates leave out the compilation)."""
    global _fitted_once
    _fitted_once = True


class MapCancelled(Exception):
    """The map's fit was cancelled (its widget closed); raised at the next stage boundary."""


@dataclass(frozen=True)
class MapProgress:
    """One reading of a fit: ``fraction`` done (0-1), ``eta_s`` (``None`` until it can be said),
    the current ``stage``'s description and the seconds ``elapsed``."""

    fraction: float
    eta_s: float | None
    stage: str
    elapsed_s: float

    def text(self, method: str = "UMAP") -> str:
        """The map's status line.

        Examples
        --------
        >>> MapProgress(0.4, 12.2, "layout", 8.0).text()
        'UMAP 40% · ETA 12 s'
        >>> MapProgress(0.0, None, "", 0.0).text()
        'UMAP 0% · computing'
        """
        eta = f"ETA {self.eta_s:.0f} s" if self.eta_s is not None else "computing"
        return f"{method} {100 * self.fraction:.0f}% · {eta}"


class MapTracker:
    """Thread-safe progress of a map's fit: the fitting thread writes, any thread reads.

    Parameters
    ----------
    clock
        The time source (``time.monotonic``; a test passes its own).

    Examples
    --------
    >>> now = [0.0]
    >>> tracker = MapTracker(clock=lambda: now[0])
    >>> tracker.plan({"knn": 1, "layout": 3}, layout_s=30.0)
    >>> tracker.start("knn", "neighbours"); now[0] = 2.0; tracker.finish()
    >>> tracker.start("layout", "layout"); now[0] = 17.0
    >>> p = tracker.snapshot()
    >>> round(p.fraction, 3), round(p.eta_s, 1), p.stage
    (0.625, 10.2, 'layout')
    >>> tracker.cancel(); tracker.start("place", "placing")
    Traceback (most recent call last):
    cirscope.projection._progress.MapCancelled: the map's fit was cancelled
    """

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._units: dict[str, int] = {}
        self._layout_s = 0.0
        self._done = 0.0  # units of finished stages
        self._stage, self._description = "", ""
        self._in_stage = 0.0  # fraction of the current stage done by count
        self._started = clock()
        self._stage_started = self._started

    def plan(self, units: dict[str, int], layout_s: float) -> None:
        """The stages' units of work and the layout's estimated seconds."""
        with self._lock:
            self._units = {k: v for k, v in units.items() if v}
            self._layout_s = max(float(layout_s), 1e-3)

    def cancel(self) -> None:
        """Ask the fit to stop at its next stage boundary."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def _check(self) -> None:
        if self._cancel.is_set():
            raise MapCancelled("the map's fit was cancelled")

    def start(self, name: str, description: str) -> None:
        self._check()
        with self._lock:
            self._stage, self._description, self._in_stage = name, description, 0.0
            self._stage_started = self._clock()

    def advance(self, fraction: float) -> None:
        """The current stage is ``fraction`` done (by count of items)."""
        with self._lock:
            self._in_stage = min(1.0, max(self._in_stage, float(fraction)))

    def finish(self) -> None:
        with self._lock:
            self._done += self._units.get(self._stage, 0)
            self._stage, self._description, self._in_stage = "", "", 0.0
        self._check()

    def snapshot(self) -> MapProgress:
        """How far the fit has come now (any thread)."""
        with self._lock:
            now = self._clock()
            total = sum(self._units.values()) or 1
            part = self._in_stage
            if self._stage == "layout":
                part = min(_CAP, (now - self._stage_started) / self._layout_s)
            fraction = min(1.0, (self._done + part * self._units.get(self._stage, 0)) / total)
            elapsed = now - self._started
            eta = elapsed * (1 - fraction) / fraction if fraction >= 0.02 else None
            return MapProgress(fraction, eta, self._description, elapsed)

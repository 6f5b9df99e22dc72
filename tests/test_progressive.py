"""The progressive map: a PCA layout at once, UMAP fitted in a background thread, then swapped in.

Real umap-learn fits in real threads. The front end's ping (what a drawn view sends) is delivered
as the comm message it is; ``map_ready`` waits for the fit.
"""

from __future__ import annotations

import json
import shutil
import threading

import numpy as np
import pytest

import cirscope as cs
from cirscope.projection._background import background_map
from cirscope.projection._compute import cached_map
from cirscope.projection._progress import MapProgress, MapTracker
from cirscope.widgets._controller import query_position
from cirscope.widgets._map_progress import ProgressiveMap

TIMEOUT = 300  # seconds; the first fit in a process also compiles umap-learn's numba code (~20 s)


@pytest.fixture(scope="module")
def small_space():
    return cs.Space(cs.datasets.shapes(160, seed=3), cs.Embedder.toy(), cache=False, progress=False)


def _drawn(widget) -> None:
    """What the browser sends when a view of ``widget`` is drawn."""
    widget._handle_custom_msg({"event": "ping"}, [])


def _fit_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "cirscope-map"]


# ---------------------------------------------------------------------------- progress
def test_tracker_estimates_the_layout_by_time_and_never_claims_it_done():
    now = [0.0]
    tracker = MapTracker(clock=lambda: now[0])
    tracker.plan({"pca": 1, "layout": 9}, layout_s=10.0)
    assert tracker.snapshot().eta_s is None  # nothing done yet: no ETA to say
    tracker.start("pca", "PCA")
    tracker.advance(0.5)
    assert tracker.snapshot().fraction == pytest.approx(0.05)
    now[0] = 1.0
    tracker.finish()
    tracker.start("layout", "layout of 160 points")
    readings = []
    for t in (1.0, 3.0, 6.0, 11.0, 60.0):
        now[0] = t
        readings.append(tracker.snapshot())
    fractions = [r.fraction for r in readings]
    assert fractions == sorted(fractions) and fractions[0] == pytest.approx(0.1)
    assert fractions[-1] == pytest.approx(0.1 + 0.9 * 0.95)  # capped below the stage's end
    assert readings[2].eta_s == pytest.approx(6.0 * (1 - fractions[2]) / fractions[2])
    assert readings[2].stage == "layout of 160 points"
    tracker.finish()
    assert tracker.snapshot().fraction == pytest.approx(1.0)


def test_progress_text():
    assert MapProgress(0.4, 12.4, "layout", 8.0).text() == "UMAP 40% · ETA 12 s"
    assert MapProgress(0.01, None, "layout", 0.1).text() == "UMAP 1% · computing"


# ---------------------------------------------------------------------------- the background job
def test_background_map_equals_compute_map_and_fills_its_cache(tmp_path):
    x = np.random.default_rng(0).normal(size=(120, 16)).astype(np.float32)
    job = background_map(x, tmp_path, "fp-a", seed=0)
    try:
        assert job.wait(TIMEOUT) and job.state == "done", job.error
        assert job._thread is not None and job._thread.daemon, "a kernel shutting down never waits for it"
        assert job.progress().fraction == pytest.approx(1.0)
        cached = cached_map(x, "umap", tmp_path, "fp-a", seed=0)
        assert cached is not None and np.array_equal(cached, job.result)
    finally:
        job.release()


def test_same_map_is_fitted_once_and_cancelled_when_nobody_waits(tmp_path):
    x = np.random.default_rng(1).normal(size=(150, 16)).astype(np.float32)
    first = background_map(x, tmp_path, "fp-b")
    second = background_map(x, tmp_path, "fp-b")
    assert second is first, "two maps of the same space share one fit"
    first.release()
    assert not first.tracker.cancelled, "another map still waits for it"
    second.release()
    assert first.tracker.cancelled
    assert first.wait(TIMEOUT) and first.state == "cancelled" and first.result is None
    assert cached_map(x, "umap", tmp_path, "fp-b") is None, "a cancelled fit writes no cache"
    third = background_map(x, tmp_path, "fp-b")
    try:
        assert third is not first, "a cancelled job is not handed out again"
    finally:
        third.release()


# ---------------------------------------------------------------------------- the widgets
def test_explorer_opens_on_pca_and_waits_to_be_drawn(small_space):
    ex = cs.Explorer(small_space)
    try:
        progressive = ex.map.binding.progressive
        assert progressive is not None and progressive.job is None, "no fit before a view is drawn"
        assert np.array_equal(ex.map.coords, small_space.map("pca"))
        assert ex.map.map_status_kind == "progress" and "PCA" in ex.map.map_status
    finally:
        ex.close()


def test_umap_replaces_pca_keeping_selection_reference_and_results(small_space):
    ex = cs.Explorer(small_space, reference=5, text="make it blue", k=8)
    try:
        pca = np.array(ex.map.coords)
        ex.map.selected = [1, 2, 30]
        results = list(ex.grid.rows)
        before_point = list(ex.map.query_point)
        _drawn(ex)  # the Explorer's view pings: the fit starts
        job = ex.map.binding.progressive.job
        assert job is not None and job.state in ("running", "done")
        assert ex.map_ready(timeout=TIMEOUT) is True
        umap_xy = small_space.map("umap")  # the background fit filled the cache
        assert np.array_equal(ex.map.coords, umap_xy) and not np.array_equal(umap_xy, pca)
        assert ex.map.selected == [1, 2, 30] and ex.map.reference == 5 and ex.query.reference == 5
        assert ex.grid.rows == results
        hits = ex.query.binding.hits
        assert ex.map.query_point == query_position(None, None, umap_xy, rows=hits.rows, scores=hits.scores)
        assert ex.map.query_point != before_point
        assert np.array_equal(ex.controller.coords, umap_xy)
        assert ex.controller.path is not None
        assert np.allclose(ex.map.path, ex.controller.path.positions) and np.abs(ex.map.path).max() <= 1.0 + 1e-6
        assert ex.map.map_status_kind == "note" and "UMAP" in ex.map.map_status
        assert ex.map_ready(timeout=0) is True  # again: nothing to wait for
    finally:
        ex.close()


def test_a_cached_umap_shows_at_once(small_space):
    xy = small_space.map("umap")
    ex = cs.Explorer(small_space)
    try:
        assert ex.map.binding.progressive is None
        assert np.array_equal(ex.map.coords, xy) and ex.map.map_status == ""
        assert ex.map_ready(timeout=0) is True
    finally:
        ex.close()


def test_two_explorers_share_one_fit_and_closing_both_cancels_it(small_space):
    one, two = cs.Explorer(small_space), cs.Explorer(small_space)
    try:
        _drawn(one)
        _drawn(two)
        job = one.map.binding.progressive.job
        assert two.map.binding.progressive.job is job
        one.close()
        assert not job.tracker.cancelled
    finally:
        two.close()
    assert job.state == "done" or job.tracker.cancelled
    assert job.wait(TIMEOUT)
    assert job.state in ("done", "cancelled")


def test_a_failed_fit_is_said_on_the_map_and_raised_by_map_ready(small_space):
    view = cs.MapView(small_space)
    try:
        view.binding.progressive.close()
        view.binding.progressive = ProgressiveMap(view, view.binding, small_space, params={"n_epochs": -1})
        with pytest.raises(RuntimeError, match="UMAP map could not be computed") as info:
            view.map_ready(timeout=TIMEOUT)
        assert isinstance(info.value.__cause__, ValueError)
        assert view.map_status_kind == "error" and "n_epochs" in view.map_status
        assert np.array_equal(view.coords, small_space.map("pca")), "the PCA layout stays"
    finally:
        view.close()


def test_explicit_maps_never_start_a_background_fit(small_space):
    threads = len(_fit_threads())
    for how in ("pca", small_space.map("pca") * 2):
        ex = cs.Explorer(small_space, map=how)
        try:
            _drawn(ex)
            assert ex.map.binding.progressive is None and ex.map.map_status == ""
        finally:
            ex.close()
    assert len(_fit_threads()) <= threads


# ---------------------------------------------------------------------------- the front end's view
@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_a_zoomed_view_keeps_its_points_in_view_after_the_swap(tmp_path):
    """map_view.js: after a new layout, the rows that were on the stage are on it again (all of them)."""
    from tests.test_map_view_js import run_node

    rng = np.random.default_rng(2)
    old, new = rng.normal(size=(400, 2)).astype(np.float32), rng.normal(size=(400, 2)).astype(np.float32) * 5
    out = run_node(tmp_path, f"""
const W = 300, H = 200;
const project = (xy, view) => {{ const s = new Float32Array(xy.length); m.projectPoints(xy, view, W, H, s); return s; }};
const oldXY = Float32Array.from({json.dumps(old.ravel().tolist())});
const newXY = Float32Array.from({json.dumps(new.ravel().tolist())});
const zoomed = m.zoomAt(m.fitView(m.dataBounds(oldXY), W, H), 60, 50, 4, W, H);
const before = project(oldXY, zoomed);
const kept = m.viewKeepingRows(before, newXY, W, H);
const after = project(newXY, kept);
const inside = (s, i) => s[2 * i] >= 0 && s[2 * i] <= W && s[2 * i + 1] >= 0 && s[2 * i + 1] <= H;
out.was = []; out.still = [];
for (let i = 0; i < 400; i++) {{ if (inside(before, i)) {{ out.was.push(i); if (inside(after, i)) out.still.push(i); }} }}
out.none = m.viewKeepingRows(before.map(() => -5), newXY, W, H);
""")
    assert 0 < len(out["was"]) < 400, "the zoomed view shows some of the points"
    assert out["still"] == out["was"]
    assert out["none"] is None

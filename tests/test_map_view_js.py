"""The map's pure helpers (projection, hit tests, selection, binning, codec) run in node, alone."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

JS = Path(__file__).resolve().parents[1] / "js" / "map_view.js"

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


def run_node(tmp_path: Path, body: str) -> dict:
    """Run ``body`` (an async ES module body with the helpers imported as ``m``); it sets ``out``."""
    module = tmp_path / "map_view.mjs"  # .mjs: node loads it as an ES module
    module.write_text(JS.read_text())
    script = tmp_path / "case.mjs"
    script.write_text(f"import * as m from {json.dumps(module.as_uri())};\nlet out = {{}};\n{body}\n"
                      "console.log(JSON.stringify(out));\n")
    done = subprocess.run(["node", str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_projection_matches_numpy_and_counts_visible_points(tmp_path):
    xy = np.random.default_rng(0).normal(size=(500, 2)).astype(np.float32)
    out = run_node(tmp_path, f"""
const xy = Float32Array.from({json.dumps(xy.ravel().tolist())});
const view = m.zoomAt(m.fitView(m.dataBounds(xy), 300, 200), 100, 50, 3, 300, 200);
const sxy = new Float32Array(xy.length);
out.visible = m.projectPoints(xy, view, 300, 200, sxy);
out.sxy = Array.from(sxy); out.view = view; out.bounds = m.dataBounds(xy);
""")
    b = out["bounds"]
    assert [b["x0"], b["x1"], b["y0"], b["y1"]] == pytest.approx([xy[:, 0].min(), xy[:, 0].max(),
                                                                  xy[:, 1].min(), xy[:, 1].max()])
    v = out["view"]
    sx = (xy[:, 0] - v["cx"]) * v["scale"] + 150
    sy = 100 - (xy[:, 1] - v["cy"]) * v["scale"]
    got = np.asarray(out["sxy"]).reshape(-1, 2)
    np.testing.assert_allclose(got, np.stack([sx, sy], 1), rtol=1e-4, atol=1e-3)
    inside = (sx >= 0) & (sy >= 0) & (sx < 300) & (sy < 200)
    assert out["visible"] == int(inside.sum()) and 0 < out["visible"] < 500  # zoomed in: some are off stage


def test_zoom_keeps_the_point_under_the_cursor(tmp_path):
    out = run_node(tmp_path, """
const v0 = { scale: 2, cx: 1, cy: -1 };
const v1 = m.zoomAt(v0, 40, 70, 1.7, 200, 100);
const data = (v, x, y) => [v.cx + (x - 100) / v.scale, v.cy + (50 - y) / v.scale];
out.before = data(v0, 40, 70); out.after = data(v1, 40, 70); out.scale = v1.scale;
""")
    assert out["after"] == pytest.approx(out["before"]) and out["scale"] == pytest.approx(3.4)


def test_hover_grid_finds_the_nearest_point_like_brute_force(tmp_path):
    sxy = np.random.default_rng(1).uniform(0, 200, size=(3000, 2)).astype(np.float32)
    probes = np.random.default_rng(2).uniform(-5, 205, size=(200, 2))
    out = run_node(tmp_path, f"""
const sxy = Float32Array.from({json.dumps(sxy.ravel().tolist())});
const grid = m.buildGrid(sxy, 200, 200, 16);
out.hits = {json.dumps(probes.tolist())}.map(([x, y]) => m.nearestPoint(grid, sxy, x, y, 8));
out.wide = m.nearestPoint(grid, sxy, 100, 100, 40);
""")
    for (x, y), hit in zip(probes, out["hits"], strict=True):
        d = ((sxy.astype(np.float64) - [x, y]) ** 2).sum(1)
        if d.min() > 64:
            assert hit == -1
        else:
            assert d[hit] == pytest.approx(d.min(), abs=1e-3)
    d = ((sxy.astype(np.float64) - [100, 100]) ** 2).sum(1)
    assert d[out["wide"]] == pytest.approx(d.min(), abs=1e-3)  # a radius over two cells still searches far enough


def test_box_and_lasso_selection_and_union(tmp_path):
    sxy = np.random.default_rng(3).uniform(0, 100, size=(5000, 2)).astype(np.float32)
    tri = [[10, 10], [90, 20], [40, 80]]
    out = run_node(tmp_path, f"""
const sxy = Float32Array.from({json.dumps(sxy.ravel().tolist())});
const box = m.selectBox(sxy, 60, 70, 20, 30);  // corners in any order
out.box = Array.from(box); out.boxType = box.constructor.name;
out.lasso = Array.from(m.selectPolygon(sxy, {json.dumps(tri)}));
out.union = Array.from(m.unionRows(Int32Array.from([5, 1, 4999]), Int32Array.from([1, 2, 7000]), 5000));
out.inside = m.pointInPolygon(50, 40, {json.dumps(tri)}); out.outside = m.pointInPolygon(5, 50, {json.dumps(tri)});
out.tiny = m.selectPolygon(sxy, [[0, 0], [100, 100]]).length;
""")
    x, y = sxy[:, 0], sxy[:, 1]
    assert out["boxType"] == "Int32Array"
    assert out["box"] == np.flatnonzero((x >= 20) & (x <= 60) & (y >= 30) & (y <= 70)).tolist()
    # independent: a point is inside a convex polygon when it is on the same side of every edge
    poly = np.array(tri, dtype=np.float64)
    p = sxy.astype(np.float64)
    sides = [np.sign((b[0] - a[0]) * (p[:, 1] - a[1]) - (b[1] - a[1]) * (p[:, 0] - a[0]))
             for a, b in zip(poly, np.roll(poly, -1, axis=0), strict=True)]
    inside = np.all(np.array(sides) > 0, axis=0) | np.all(np.array(sides) < 0, axis=0)
    assert out["lasso"] == np.flatnonzero(inside).tolist()
    assert out["lasso"] == sorted(out["lasso"]) and len(out["lasso"]) > 100
    assert out["union"] == [1, 2, 5, 4999]  # sorted, distinct, out-of-range dropped
    assert out["inside"] is True and out["outside"] is False and out["tiny"] == 0


def test_density_bins_count_points_and_colour_by_their_mean(tmp_path):
    out = run_node(tmp_path, """
const sxy = Float32Array.from([0.2, 0.2, 0.7, 0.9, 0.5, 0.5, 3.5, 1.5, -1, 0, 9, 9]);  // 3 in pixel 0, 1 in (3,1), 2 off
const colors = m.packColors(Uint8Array.from([255, 0, 0, 0, 0, 255, 255, 0, 0, 0, 255, 0, 1, 1, 1, 1, 1, 1]), 6);
const bins = m.binDensity(sxy, colors, 4, 2, 1, null);
const counts = (b) => Array.from(b.acc.filter((_, q) => q % 4 === 0));
out.count = counts(bins); out.max = bins.max;
const px = new Uint32Array(8);
m.densityPixels(bins, px);
const rgba = new Uint8Array(px.buffer);
out.p0 = Array.from(rgba.slice(0, 4)); out.p7 = Array.from(rgba.slice(28, 32)); out.empty = Array.from(rgba.slice(4, 8));
const again = m.binDensity(sxy, colors, 4, 2, 1, bins);  // reused buffers are cleared
out.reused = again === bins; out.count2 = counts(again);
out.dpr2 = counts(m.binDensity(sxy, colors, 8, 4, 2, null)).reduce((a, b) => a + b, 0);
out.modes = [m.wantsDensity(300000, 800, 400, 200000), m.wantsDensity(1000, 800, 400, 200000),
             m.wantsDensity(5000, 50, 50, 200000), m.wantsDensity(10 ** 7, 800, 400, -1), m.wantsDensity(11, 800, 400, 10)];
""")
    assert out["count"] == [3, 0, 0, 0, 0, 0, 0, 1] and out["max"] == 3
    assert out["p0"][:3] == [170, 0, 85] and out["p0"][3] == 255  # mean of red, blue, red; the densest is opaque
    assert out["p7"][:3] == [0, 255, 0] and 100 < out["p7"][3] < 255  # a lone point stays visible
    assert out["empty"] == [0, 0, 0, 0]
    assert out["reused"] and out["count2"] == out["count"]
    assert out["dpr2"] == 4
    assert out["modes"] == [True, False, True, False, True]


def test_stamping_writes_discs_clipped_to_the_buffer(tmp_path):
    out = run_node(tmp_path, """
const px = new Uint32Array(10 * 10);
const stamp = m.discStamp(1.5);
m.stampPoints(px, 10, 10, Float32Array.from([5, 5, 0, 0, 50, 50]), 1, stamp, null, (i) => i + 1);
out.nStamp = stamp.length / 2;
out.centre = px[55]; out.corner = px[0]; out.filled = px.filter((v) => v).length;
const only = new Uint32Array(100);
m.stampPoints(only, 10, 10, Float32Array.from([5, 5, 0, 0]), 1, m.discStamp(0.5), Int32Array.from([1]), () => 9);
out.only = only.filter((v) => v).length; out.only0 = only[0];
""")
    assert out["nStamp"] == 9  # the 3x3 disc
    assert out["centre"] == 1 and out["corner"] == 2
    assert out["filled"] == 9 + 4  # the corner disc is clipped to a quarter; the far point draws nothing
    assert out["only"] == 1 and out["only0"] == 9


def test_codec_round_trip_keeps_dtype_and_shape(tmp_path):
    out = run_node(tmp_path, """
const msg = m.encodeArray(Int32Array.from([7, -1, 3]));
const back = m.decodeArray(msg);
out.dtype = msg.dtype; out.shape = msg.shape; out.data = Array.from(back.data); out.type = back.data.constructor.name;
out.none = m.decodeArray(null);
try { m.decodeArray({ dtype: "float64", shape: [1], data: new DataView(new ArrayBuffer(8)) }); } catch (e) { out.err = String(e); }
""")
    assert out["dtype"] == "int32" and out["shape"] == [3] and out["data"] == [7, -1, 3] and out["type"] == "Int32Array"
    assert out["none"] is None and "unsupported array dtype float64" in out["err"]


def test_view_transform_moves_the_last_image_to_the_new_view(tmp_path):
    xy = np.random.default_rng(4).normal(size=(300, 2)).astype(np.float32)
    out = run_node(tmp_path, f"""
const xy = Float32Array.from({json.dumps(xy.ravel().tolist())});
const from = m.fitView(m.dataBounds(xy), 320, 200);
let to = m.zoomAt(from, 70, 150, 2.3, 320, 200);
to = {{ ...to, cx: to.cx + 0.4, cy: to.cy - 0.25 }};  // a zoom, then a pan
const a = new Float32Array(xy.length), b = new Float32Array(xy.length);
m.projectPoints(xy, from, 320, 200, a);
m.projectPoints(xy, to, 320, 200, b);
out.t = m.viewTransform(from, to, 320, 200); out.a = Array.from(a); out.b = Array.from(b);
out.same = m.viewTransform(from, from, 320, 200);
""")
    t = out["t"]
    a = np.asarray(out["a"]).reshape(-1, 2)
    b = np.asarray(out["b"]).reshape(-1, 2)
    # every point of the old image lands where the new view projects it
    np.testing.assert_allclose(t["k"] * a + [t["tx"], t["ty"]], b, rtol=1e-4, atol=2e-3)
    assert t["k"] == pytest.approx(2.3)
    assert out["same"] == {"k": 1, "tx": 0, "ty": 0}


def test_selection_codec_picks_the_smaller_of_rows_and_bitmask_and_round_trips(tmp_path):
    n = 1003  # not a multiple of 8: the last byte is partly used
    dense = np.flatnonzero(np.random.default_rng(5).random(n) < 0.4)
    out = run_node(tmp_path, f"""
const dense = Int32Array.from({json.dumps(dense.tolist())});
const d = m.encodeSelection(dense, {n});
out.dense = {{ dtype: d.dtype, shape: d.shape, bytes: Array.from(new Uint8Array(d.data.buffer, d.data.byteOffset, d.data.byteLength)) }};
out.denseBack = Array.from(m.decodeSelection(d, {n}));
const s = m.encodeSelection(Int32Array.from([1002, 0, 77]), {n});
out.sparse = {{ dtype: s.dtype, shape: s.shape }}; out.sparseBack = Array.from(m.decodeSelection(s, {n}));
out.rule = [m.useBitmask(31, 1000), m.useBitmask(32, 1000), m.useBitmask(0, 10), m.useBitmask(1, 0)];
out.outside = Array.from(m.decodeSelection(m.encodeArray(Int32Array.from([5, {n}, -1, 9])), {n}));
out.shorter = Array.from(m.decodeSelection(d, 9));  // a map that lost points: rows past it are left out
out.empty = Array.from(m.decodeSelection(null, {n}));
""")
    bits = np.unpackbits(np.frombuffer(bytes(out["dense"]["bytes"]), np.uint8), bitorder="little")
    assert out["dense"]["dtype"] == "bitmask" and out["dense"]["shape"] == [n] and len(out["dense"]["bytes"]) == 126
    assert np.flatnonzero(bits).tolist() == dense.tolist()  # numpy's bitorder="little": what the kernel reads
    assert out["denseBack"] == dense.tolist()
    assert out["sparse"] == {"dtype": "int32", "shape": [3]} and out["sparseBack"] == [1002, 0, 77]
    assert out["rule"] == [False, True, False, True]
    assert out["outside"] == [5, 9] and out["shorter"] == dense[dense < 9].tolist() and out["empty"] == []


def test_a_resize_keeps_the_users_zoom_and_refits_only_an_unmoved_view(tmp_path):
    out = run_node(tmp_path, """
const bounds = { x0: 0, x1: 10, y0: 0, y1: 5 };
const fitted = m.fitView(bounds, 400, 200);
const zoomed = m.zoomAt(fitted, 50, 60, 4, 400, 200);
out.kept = m.viewAfterResize(zoomed, true, bounds, 600, 300);
out.zoomed = zoomed;
out.refit = m.viewAfterResize(fitted, false, bounds, 600, 300);
out.fit600 = m.fitView(bounds, 600, 300);
""")
    assert out["kept"] == pytest.approx(out["zoomed"])  # same centre and scale: the user's zoom survives
    assert out["refit"] == pytest.approx(out["fit600"]) and out["refit"]["scale"] != pytest.approx(out["zoomed"]["scale"])


def test_a_wheel_zoom_during_a_pan_does_not_make_the_view_jump(tmp_path):
    """The data point under the pointer stays under it through pan, wheel zoom (re-anchored drag)
    and more pan, as the map's handlers do it."""
    out = run_node(tmp_path, """
const W = 400, H = 200;
const data = (v, x, y) => [v.cx + (x - W / 2) / v.scale, v.cy + (H / 2 - y) / v.scale];
let view = { scale: 20, cx: 5, cy: 2 };
const drag = { x0: 100, y0: 100, view: { ...view } };
const grabbed = data(view, 100, 100);
view = m.panView(drag, 140, 90);                         // pan 40 px right, 10 up
out.afterPan = data(view, 140, 90);
view = m.zoomAt(view, 140, 90, 2.5, W, H);               // wheel at the pointer, mid-drag
drag.x0 = 140; drag.y0 = 90; drag.view = { ...view };    // re-anchored as onWheel does
out.afterZoom = data(view, 140, 90);
view = m.panView(drag, 170, 120);                        // the pan goes on
out.afterMore = data(view, 170, 120);
out.grabbed = grabbed;
""")
    for key in ("afterPan", "afterZoom", "afterMore"):
        assert out[key] == pytest.approx(out["grabbed"]), key


def test_to_screen_is_the_projection_of_one_point_and_same_view_compares_views(tmp_path):
    xy = np.random.default_rng(6).normal(size=(50, 2)).astype(np.float32)
    out = run_node(tmp_path, f"""
const xy = Float32Array.from({json.dumps(xy.ravel().tolist())});
const view = m.zoomAt(m.fitView(m.dataBounds(xy), 300, 200), 80, 40, 1.8, 300, 200);
const sxy = new Float32Array(xy.length);
m.projectPoints(xy, view, 300, 200, sxy);
out.sxy = Array.from(sxy);
out.one = Array.from({{ length: 50 }}, (_, i) => m.toScreen(view, 300, 200, xy[2 * i], xy[2 * i + 1]));
out.same = [m.sameView(view, {{ ...view }}), m.sameView(view, {{ ...view, cx: view.cx + 1e-9 }}),
            m.sameView(null, view), m.sameView(view, null)];
""")
    np.testing.assert_allclose(np.asarray(out["one"]), np.asarray(out["sxy"]).reshape(-1, 2), rtol=1e-4, atol=1e-3)
    assert out["same"] == [True, False, False, False]


def test_frame_plan_draws_dirty_layers_and_moves_the_last_image_in_a_gesture(tmp_path):
    out = run_node(tmp_path, """
const plan = (flags) => m.layerPlan({ base: false, sel: false, top: false, fast: false, ...flags });
out.idle = plan({});
out.colours = plan({ base: true, top: true });
out.gesture = plan({ fast: true });
out.gestureAndSel = plan({ fast: true, sel: true });
out.moves = [m.movesLastImage(true, 0, true), m.movesLastImage(false, 40, true), m.movesLastImage(false, 5, true),
             m.movesLastImage(true, 40, false)];
""")
    assert out["idle"] == {"base": "", "sel": "", "top": False, "full": False, "fast": False}
    assert out["colours"] == {"base": "draw", "sel": "", "top": True, "full": True, "fast": False}
    assert out["gesture"] == {"base": "move", "sel": "move", "top": True, "full": False, "fast": True}
    # a selection drawn afresh mid-gesture: the base image is moved, the frame is not a fast one
    assert out["gestureAndSel"] == {"base": "move", "sel": "draw", "top": True, "full": True, "fast": False}
    # a density image or slow full frames move the last image; fast frames, or no image yet, draw
    assert out["moves"] == [True, True, False, False]


def test_selection_discs_radii_and_rows_in_range(tmp_path):
    out = run_node(tmp_path, """
out.density = m.selectionDiscs(true, 10, 10, 3, 2);
out.few = m.selectionDiscs(false, 10, 10, 1, 2);
out.many = m.selectionDiscs(false, 9000, 9000, 1.3, 1);
out.manyInRange = m.selectionDiscs(false, 9000, 4000, 1.3, 1);
const rows = Int32Array.from([3, 1, 7]);
out.same = m.rowsInRange(rows, 8) === rows;
out.cut = Array.from(m.rowsInRange(Int32Array.from([3, -1, 9, 7]), 8));
out.radius = [m.pointRadius(0, 100), m.pointRadius(0, 50000), m.pointRadius(4, 50000)];
""")
    assert out["density"] == {"fill": 1, "ring": 0}
    assert out["few"] == {"fill": 5, "ring": 7}  # at least 2.5 css px, ringed one device px (here 2) wider
    assert out["many"] == {"fill": 1.3, "ring": 0}  # over 5,000 drawn: their own colours, no ring
    assert out["manyInRange"] == {"fill": 2.5, "ring": 3.5}  # 4,000 of them on the stage: ringed
    assert out["same"] is True and out["cut"] == [3, 7]
    assert out["radius"] == [3.5, 1.3, 4]


def test_input_decisions_keys_wheel_drags_and_hover_pacing(tmp_path):
    out = run_node(tmp_path, """
out.keys = ["Escape", "0", "+", "=", "-", "a"].map(m.keyAction);
out.wheel = [m.wheelZoom(-100), m.wheelZoom(0), m.wheelZoom(100) * m.wheelZoom(-100)];
out.kinds = [m.dragKind(0, "box"), m.dragKind(0, "lasso"), m.dragKind(0, "pan"), m.dragKind(1, "box"), m.dragKind(2, "box")];
out.moved = [m.dragMoved(10, 10, 12, 11), m.dragMoved(10, 10, 12, 12), m.dragMoved(10, 10, 6, 10)];
out.wait = [m.hoverWait(-Infinity, 1000), m.hoverWait(980, 1000), m.hoverWait(900, 1000)];
""")
    assert out["keys"] == ["clear", "reset", 1.25, 1.25, 0.8, None]
    assert out["wheel"][0] == pytest.approx(1.0015**100) and out["wheel"][1] == 1 and out["wheel"][2] == pytest.approx(1)
    assert out["kinds"] == ["box", "lasso", "pan", "pan", None]
    assert out["moved"] == [False, True, True]  # over 3 px (|dx| + |dy|) is a drag, not a click
    assert out["wait"] == [0, 30, 0]


def test_card_placement_stays_inside_the_stage(tmp_path):
    out = run_node(tmp_path, """
out.right = m.cardLeft(100 - 14, 100 + 14, 120, 400);   // fits on the right of the point
out.left = m.cardLeft(350 - 14, 350 + 14, 120, 400);    // would overflow: ends left of the point
out.clamped = m.cardLeft(60 - 14, 60 + 14, 390, 400);   // wider than either side: at the left edge
out.tops = [m.cardTop(100, 80, 300), m.cardTop(10, 80, 300), m.cardTop(290, 80, 300), m.cardTop(50, 400, 300)];
""")
    assert out["right"] == 114 and out["left"] == 216 and out["clamped"] == 0
    assert out["tops"] == [60, 0, 220, 0]


def test_star_points_and_css_colours(tmp_path):
    out = run_node(tmp_path, """
out.star = m.starPoints(10, 20, 10, 4);
out.colour = m.cssColor(Uint8Array.from([1, 2, 3, 200, 100, 50]), 1); out.none = m.cssColor(null, 5);
""")
    star = np.asarray(out["star"])
    r = np.hypot(star[:, 0] - 10, star[:, 1] - 20)
    assert star.shape == (10, 2)
    np.testing.assert_allclose(r, [10, 4] * 5, atol=1e-9)  # tips and notches alternate
    assert star[0] == pytest.approx([10, 10])  # the first tip points up (y grows downwards)
    assert out["colour"] == "rgb(200,100,50)" and out["none"] == "#1f77b4"


def test_frame_counters_count_fast_and_crisp_full_frames(tmp_path):
    out = run_node(tmp_path, """
const stats = {};
m.countFrame(stats, m.layerPlan({ base: true, sel: false, top: true, fast: false }), true, 12.34, 1000);
m.countFrame(stats, m.layerPlan({ base: false, sel: false, top: false, fast: true }), false, 2.01, 1100);
m.countFrame(stats, m.layerPlan({ base: true, sel: true, top: true, fast: false }), false, 30, 1200);
out.stats = stats;
""")
    # three frames; one fast; one full frame drawn for the current view (crisp), at t=1000
    assert out["stats"] == {"frames": "3", "fastFrames": "1", "frameMs": "30.0", "crisp": "false",
                            "fullFrames": "1", "fullFrameMs": "12.3", "crispAt": "1000"}

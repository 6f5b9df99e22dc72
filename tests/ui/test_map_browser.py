"""The map widget in a real browser: input coalesced into one frame, density mode, box selection to Python.

One notebook shows a MapView over 40,000 clustered points with a low ``density_threshold``
so the density image is drawn at a size that stays cheap for CI. The test checks what the
canvases hold (pixel counts), that a burst of wheel events costs one frame which moves the
last density image (no re-binning) and that the map is binned again, crisp, once the wheel
pauses; that zooming in brings single points back, and that a box selection reaches the
kernel row for row (as a bitmask) and a dense one set in Python is drawn.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.ui._harness import NOTEBOOK, cell_output, run_cell, wait_for_kernel, widget_errors, write_notebook

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]

N = 40_000
SETUP = f"""\
import json
import numpy as np
import cirscope as cs

rng = np.random.default_rng(0)
centres = np.array([[0, 0], [6, 1], [2, 5], [-4, 3]], np.float32)
labels = rng.integers(0, 4, {N})
coords = centres[labels] + rng.normal(scale=0.9, size=({N}, 2)).astype(np.float32)
palette = np.array([[228, 26, 28], [55, 126, 184], [77, 175, 74], [152, 78, 163]], np.uint8)
view = cs.MapView(coords=coords, colors=palette[labels], density_threshold=10_000, height=420)
view"""

CHECK = """\
_sel = view.selected
print("STATE " + json.dumps({"n": len(_sel), "rows": _sel.array.tolist(), "type": type(_sel).__name__,
                             "module": cs.__file__}))"""

BASE = ".cirscope-map canvas.cs-base"
SEL = ".cirscope-map canvas.cs-sel"
TOP = ".cirscope-map canvas.cs-top"

PIXELS = """
(canvas) => {
  const ctx = canvas.getContext('2d');
  const d = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0, dark = 0, vivid = 0;
  const colours = new Set();
  for (let p = 0; p < d.length; p += 4) {
    if (d[p + 3] === 0) continue;
    painted++;
    if (d[p] < 60 && d[p + 1] < 60 && d[p + 2] < 60 && d[p + 3] > 200) dark++;
    if (d[p + 3] === 255 && Math.max(d[p], d[p + 1], d[p + 2]) - Math.min(d[p], d[p + 1], d[p + 2]) > 60) vivid++;
    colours.add((d[p] >> 5) * 64 + (d[p + 1] >> 5) * 8 + (d[p + 2] >> 5));
  }
  return { painted, dark, vivid, colours: colours.size, total: d.length / 4 };
}
"""

BURST = """
async ([count, deltaY]) => {
  // wheel events at the stage centre in one task; read the canvases in the frame that draws them
  const top = document.querySelector('.cirscope-map canvas.cs-top');
  const base = document.querySelector('.cirscope-map canvas.cs-base');
  const box = top.getBoundingClientRect();
  const count0 = (key) => Number(base.dataset[key] || 0);
  const before = document.createElement('canvas');
  before.width = base.width; before.height = base.height;
  before.getContext('2d').drawImage(base, 0, 0);
  const frames0 = count0('frames'), fast0 = count0('fastFrames'), full0 = count0('fullFrames');
  const index0 = Number(top.dataset.indexBuilds || 0);
  for (let i = 0; i < count; i++)
    top.dispatchEvent(new WheelEvent('wheel', { deltaY, clientX: box.left + box.width / 2,
                                                clientY: box.top + box.height / 2, bubbles: true, cancelable: true }));
  const sentAt = performance.now();
  await new Promise((r) => requestAnimationFrame(r));  // runs after the map's own frame callback
  // what the frame should show if it moved the old image: zoom by k about the stage centre
  const k = Math.pow(1.0015, -deltaY * count), dpr = base.width / box.width;
  const expected = document.createElement('canvas');
  expected.width = base.width; expected.height = base.height;
  const ex = expected.getContext('2d');
  ex.setTransform(k, 0, 0, k, (box.width / 2) * (1 - k) * dpr, (box.height / 2) * (1 - k) * dpr);
  ex.drawImage(before, 0, 0);
  const a = base.getContext('2d').getImageData(0, 0, base.width, base.height).data;
  const b = ex.getImageData(0, 0, base.width, base.height).data;
  let painted = 0, mismatched = 0;
  for (let p = 3; p < a.length; p += 4) {
    if (a[p] > 0 || b[p] > 0) painted++;
    if ((a[p] > 0) !== (b[p] > 0)) mismatched++;
  }
  return { frames: count0('frames') - frames0, fast: count0('fastFrames') - fast0, full: count0('fullFrames') - full0,
           indexBuilds: Number(top.dataset.indexBuilds || 0) - index0, crisp: base.dataset.crisp,
           mode: base.dataset.mode, painted, mismatched, sentAt };
}
"""

CRISP = """
async ([sentAt, full0]) => {
  // wait for the full redraw that follows the pause in input
  const base = document.querySelector('.cirscope-map canvas.cs-base');
  while (!(base.dataset.crisp === 'true' && Number(base.dataset.fullFrames) > full0))
    await new Promise((r) => setTimeout(r, 10));
  return { after: Number(base.dataset.crispAt) - sentAt, mode: base.dataset.mode, visible: Number(base.dataset.visible) };
}
"""


def read_state(page: Any) -> dict:
    before = cell_output(page, 1)
    run_cell(page, 1)
    page.wait_for_function(
        """([notebook, before]) => {
            const out = document.querySelectorAll(`${notebook} .jp-Cell`)[1].querySelector('.jp-OutputArea');
            const text = out ? out.innerText : '';
            return text.includes('STATE ') && text !== before;
        }""",
        arg=[NOTEBOOK, before],
        timeout=60_000,
    )
    text = cell_output(page, 1)
    return json.loads(text[text.index("STATE ") + 6:].strip().splitlines()[0])


def test_density_coalesced_zoom_and_box_selection(jupyter_server, browser, artifacts):
    write_notebook(jupyter_server.root / "map.ipynb", [SETUP, CHECK, f"view.selected = np.arange(0, {N}, 2)"])
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"{exc}\n{exc.stack}"))
    try:
        page.goto(f"{jupyter_server.url}/lab/tree/map.ipynb?reset")
        page.wait_for_selector(f"{NOTEBOOK} .jp-Cell .jp-InputArea-editor", timeout=90_000)
        wait_for_kernel(page, timeout=90_000)
        run_cell(page, 0)
        page.wait_for_selector(f"{BASE}[data-n-points='{N}'][data-mode]", timeout=120_000)
        page.locator(".cirscope-map").scroll_into_view_if_needed()

        # zoomed out: all 40,000 points in view, above the threshold -> a density image
        assert page.get_attribute(BASE, "data-mode") == "density"
        assert int(page.get_attribute(BASE, "data-visible")) == N
        dens = page.eval_on_selector(BASE, PIXELS)
        assert 2_000 < dens["painted"] < N  # binned: fewer painted pixels than points, but clusters cover area
        assert dens["colours"] >= 4  # the four cluster colours (and their mixes) survive binning
        page.locator(".cirscope-map").screenshot(path=str(artifacts / "map-density.png"))

        # a burst of 30 wheel events in one task is one frame, and in density mode that frame only
        # moves the last image (zoomed about the cursor, no projection or binning); no hover index is built
        full0 = int(page.get_attribute(BASE, "data-full-frames"))
        burst = page.evaluate(BURST, [30, -15])
        assert burst["frames"] == 1 and burst["fast"] == 1 and burst["full"] == 0 and burst["indexBuilds"] == 0
        assert burst["crisp"] == "false" and burst["mode"] == "density"
        assert burst["painted"] > 2_000 and burst["mismatched"] < 0.02 * burst["painted"]  # the old image, moved
        # once the wheel pauses, the points are binned again for the new view: one full frame, crisp
        crisp = page.evaluate(CRISP, [burst["sentAt"], full0])
        assert crisp["after"] >= 100  # not before the pause (SETTLE_MS)
        assert int(page.get_attribute(BASE, "data-full-frames")) == full0 + 1 and crisp["visible"] < N
        rebinned = page.eval_on_selector(BASE, PIXELS)
        assert rebinned["painted"] > 0 and rebinned != dens
        # zoom far in: few points in view -> single points again (after the pause)
        full0 += 1
        burst = page.evaluate(BURST, [10, -150])
        assert burst["frames"] == 1 and burst["fast"] == 1 and burst["mode"] == "density"
        crisp = page.evaluate(CRISP, [burst["sentAt"], full0])
        assert crisp["mode"] == "points" and 0 < crisp["visible"] < 10_000
        points = page.eval_on_selector(BASE, PIXELS)
        assert points["painted"] > 0
        page.locator(".cirscope-map").screenshot(path=str(artifacts / "map-zoomed-points.png"))

        # hovering builds the index once, lazily
        box = page.locator(TOP).bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.move(box["x"] + box["width"] / 2 + 3, box["y"] + box["height"] / 2 + 2)
        page.wait_for_function(f"() => Number(document.querySelector('{TOP}').dataset.indexBuilds) === 1")

        # back to the whole map (key 0), then a real mouse drag box-selects
        page.locator(TOP).dblclick()
        page.wait_for_function(f"() => document.querySelector('{BASE}').dataset.mode === 'density'")
        x0, y0 = box["x"] + box["width"] * 0.30, box["y"] + box["height"] * 0.20
        x1, y1 = box["x"] + box["width"] * 0.70, box["y"] + box["height"] * 0.75
        page.mouse.move(x0, y0)
        page.mouse.down()
        for i in range(1, 11):
            page.mouse.move(x0 + (x1 - x0) * i / 10, y0 + (y1 - y0) * i / 10)
        page.mouse.up()
        n_sel = int(page.get_attribute(TOP, "data-n-selected"))
        expected = page.eval_on_selector(
            TOP,
            """(c, [n, x0, y0, x1, y1]) => { const out = [];
                 for (let i = 0; i < n; i++) { const [x, y] = c.pointPosition(i);
                   if (x >= x0 && x <= x1 && y >= y0 && y <= y1) out.push(i); }
                 return out; }""",
            [N, x0 - box["x"], y0 - box["y"], x1 - box["x"], y1 - box["y"]],
        )
        assert 1_000 < n_sel == len(expected) < N
        assert page.get_attribute(TOP, "data-selection-wire") == "bitmask"  # 5,000 bytes, not 4 per row
        state = read_state(page)
        assert "/src/cirscope/" in state["module"]
        assert state["type"] == "Rows" and state["n"] == n_sel and state["rows"] == expected  # row for row

        # the selection shows over the density image: the stage dimmed, the selected points opaque on top
        page.wait_for_timeout(100)
        sel = page.eval_on_selector(SEL, PIXELS)
        assert sel["painted"] == sel["total"] and 1_000 < sel["vivid"] <= n_sel and sel["colours"] >= 4
        page.locator(".cirscope-map").screenshot(path=str(artifacts / "map-density-selection.png"))

        page.locator(".cirscope-map button", has_text="Clear selection").click()
        page.wait_for_selector(f"{TOP}[data-n-selected='0']")
        assert read_state(page)["n"] == 0

        # kernel -> browser: a 20,000-row selection set in Python arrives as one buffer and is drawn
        run_cell(page, 2)
        page.wait_for_selector(f"{TOP}[data-n-selected='{N // 2}']", timeout=60_000)
        page.wait_for_function(
            f"() => {{ const c = document.querySelector('{SEL}');"
            " return c.getContext('2d').getImageData(0, 0, 1, 1).data[3] > 0; }"
        )
        assert widget_errors(errors) == []
    finally:
        context.close()

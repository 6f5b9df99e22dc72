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
import re
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


# ---------------------------------------------------------------------- selection colours, hover card, dark theme
EXPLORER = """\
import warnings
warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
import cirscope as cs

space = cs.Space(cs.datasets.shapes(300, seed=0), cs.Embedder.toy(), progress=False)
ex = cs.Explorer(space, map="pca", reference=3, text="make it blue", k=8)
ex"""

MAP = ".cirscope-map"

# the legend's colours, the ring colour and what the selection layer holds at each selected point
SELECTION_PIXELS = """
([rows]) => {
  const root = document.querySelector('.cirscope-map'), top = root.querySelector('canvas.cs-top');
  const sel = root.querySelector('canvas.cs-sel'), dpr = sel.width / top.getBoundingClientRect().width;
  const legend = [...root.querySelectorAll('.cs-legend .cs-swatch')].map((s) => getComputedStyle(s).backgroundColor
    .match(/\\d+/g).slice(0, 3).map(Number).join(','));
  const d = sel.getContext('2d').getImageData(0, 0, sel.width, sel.height).data;
  const at = (x, y) => { const p = 4 * (Math.round(y * dpr) * sel.width + Math.round(x * dpr)); return [d[p], d[p + 1], d[p + 2], d[p + 3]]; };
  let own = 0, opaqueDark = 0, painted = 0;
  for (const i of rows) { const [x, y] = top.pointPosition(i); const c = at(x, y);
    if (c[3] === 255 && legend.includes(c.slice(0, 3).join(','))) own++; }
  for (let p = 0; p < d.length; p += 4) {
    if (d[p + 3]) painted++;
    if (d[p + 3] === 255 && d[p] < 60 && d[p + 1] < 60 && d[p + 2] < 60) opaqueDark++;
  }
  return { own, opaqueDark, painted, total: d.length / 4, legend, corner: Array.from(d.slice(0, 4)) };
}
"""

# the top layer's pixel at each of the best results (drawn in its own colour, a thin rim around it)
HIGHLIGHT_PIXELS = """
([rows]) => {
  const root = document.querySelector('.cirscope-map'), top = root.querySelector('canvas.cs-top');
  const dpr = top.width / top.getBoundingClientRect().width;
  const legend = [...root.querySelectorAll('.cs-legend .cs-swatch')].map((s) => getComputedStyle(s).backgroundColor
    .match(/\\d+/g).slice(0, 3).map(Number).join(','));
  const ctx = top.getContext('2d');
  return rows.map((i) => { const [x, y] = top.pointPosition(i);
    const c = ctx.getImageData(Math.round(x * dpr), Math.round(y * dpr), 1, 1).data;
    return c[3] === 255 && legend.includes([c[0], c[1], c[2]].join(',')); });
}
"""

THEME = """
() => {
  const root = document.querySelector('.cirscope-map'), stage = root.querySelector('.cs-stage');
  const rgb = (s) => s.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const lum = (c) => (0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]) / 255;
  return { theme: root.dataset.theme, light: document.body.dataset.jpThemeLight,
           stage: lum(rgb(getComputedStyle(stage).backgroundColor)), text: lum(rgb(getComputedStyle(root).color)),
           panel: lum(rgb(getComputedStyle(document.querySelector('.cirscope-query')).color)) };
}
"""


def use_theme(page: Any, name: str) -> None:
    """Pick a JupyterLab theme from the Settings menu (Settings > Theme > name)."""
    page.keyboard.press("Escape")
    page.locator(".lm-MenuBar-item", has_text="Settings").first.click()
    page.locator(".lm-Menu-item", has_text=re.compile(r"^\s*Theme\s*$")).first.hover()
    page.locator(".lm-Menu-item", has_text=re.compile(rf"^\s*{re.escape(name)}\s*$")).first.click()
    light = "false" if "Dark" in name else "true"
    page.wait_for_function(f"() => document.body.dataset.jpThemeLight === '{light}'", timeout=30_000)


def card_box(page: Any) -> dict:
    return page.evaluate("""() => {
      const card = document.querySelector('.cirscope-map .cs-card');
      const stage = document.querySelector('.cirscope-map .cs-stage').getBoundingClientRect();
      const c = card.getBoundingClientRect();
      return { shown: getComputedStyle(card).display !== 'none', w: c.width, h: c.height, left: c.left - stage.left,
               top: c.top - stage.top, right: c.right - stage.left, bottom: c.bottom - stage.top,
               W: stage.width, H: stage.height, lines: card.querySelectorAll('dt').length };
    }""")


CARD_SHOWN = "() => getComputedStyle(document.querySelector('.cirscope-map .cs-card')).display !== 'none'"
CARD_HIDDEN = "() => getComputedStyle(document.querySelector('.cirscope-map .cs-card')).display === 'none'"


def point_on_page(page: Any, row: int) -> tuple[float, float]:
    """Where row is drawn, in the viewport (the whole map scrolled into view first: a click on the
    grid below may have scrolled it out, and a screenshot of the map would scroll it under the pointer)."""
    page.eval_on_selector(MAP, "m => m.scrollIntoView({block: 'nearest', inline: 'nearest'})")
    box = page.locator(TOP).bounding_box()
    xy = page.eval_on_selector(TOP, "(c, i) => c.pointPosition(i)", row)
    return box["x"] + xy[0], box["y"] + xy[1]


def box_select(page: Any, share: float = 0.15) -> list[int]:
    """Drag a box over the middle of the map; returns the rows inside it (by their drawn positions).

    A browser selection that crosses a kernel-side one (within MapView's resync window of a few
    seconds) is answered with the kernel's value: then the drag is made again, later.
    """
    box = page.locator(TOP).bounding_box()
    x0, y0 = box["x"] + box["width"] * share, box["y"] + box["height"] * share
    x1, y1 = box["x"] + box["width"] * (1 - share), box["y"] + box["height"] * (1 - share)
    for attempt in range(2):
        page.mouse.move(x0, y0)
        page.mouse.down()
        for i in range(1, 9):
            page.mouse.move(x0 + (x1 - x0) * i / 8, y0 + (y1 - y0) * i / 8)
        page.mouse.up()
        page.wait_for_timeout(800)
        if page.get_attribute(TOP, "data-n-selected") != "0" or attempt:
            break
        page.wait_for_timeout(5_000)
    rows = page.eval_on_selector(
        TOP,
        """(c, [x0, y0, x1, y1]) => { const out = [];
             for (let i = 0; i < Number(c.dataset.nPoints); i++) { const [x, y] = c.pointPosition(i);
               if (x >= x0 && x <= x1 && y >= y0 && y <= y1) out.push(i); }
             return out; }""",
        [x0 - box["x"], y0 - box["y"], x1 - box["x"], y1 - box["y"]],
    )
    assert int(page.get_attribute(TOP, "data-n-selected")) == len(rows)
    return rows


def best_rows(page: Any) -> list[int]:
    """The query's 8 results, from the grid showing them."""
    page.wait_for_function(f"() => Number(document.querySelector('{TOP}').dataset.nHighlighted) === 8")
    if page.get_attribute(".cirscope-grid", "data-mode") != "query":
        page.locator(".cirscope-grid .cs-toggle button[data-mode='query']").click()
        page.wait_for_selector(".cirscope-grid[data-mode='query'][data-rendering='false']")
    return page.eval_on_selector_all(".cirscope-grid .cs-cell[data-row]", "els => els.map(e => Number(e.dataset.row))")[:8]


def test_selection_keeps_colours_hover_card_is_small_and_the_map_follows_the_dark_theme(
        jupyter_server, browser, artifacts, update_docs):
    from tests.ui.test_compare_browser import save_shot
    from tests.ui.test_explorer_browser import wait_grid_settled

    write_notebook(jupyter_server.root / "theme.ipynb", [EXPLORER])
    # wide enough for the filters sidebar, the map and the query panel side by side with the map
    # about 500 px wide: the best results then lie apart (a narrower map draws some under another's rim)
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"{exc}\n{exc.stack}"))
    dark = False
    try:
        page.goto(f"{jupyter_server.url}/lab/tree/theme.ipynb?reset")
        page.wait_for_selector(f"{NOTEBOOK} .jp-Cell .jp-InputArea-editor", timeout=90_000)
        wait_for_kernel(page, timeout=90_000)
        run_cell(page, 0)
        page.wait_for_selector(f"{TOP}[data-n-points='300']", timeout=150_000)
        page.wait_for_selector(".cirscope-grid .cs-cell[data-row]", timeout=60_000)
        wait_grid_settled(page, None)
        page.locator(".cirscope-explorer").scroll_into_view_if_needed()
        assert page.evaluate(THEME)["theme"] == "light"
        # coloured by the images' own colours at first: the legend names colours
        assert "blue" in page.locator(f"{MAP} .cs-legend").inner_text()

        # the best results on the top layer: each drawn in its own colour (a thin rim around it)
        assert sum(page.evaluate(HIGHLIGHT_PIXELS, [best_rows(page)])) >= 6  # a few may lie under the star or square

        # a box selection: the selected points keep their colours (ringed in grey), never dark squares
        rows = box_select(page)
        assert 20 < len(rows) < 300
        light_sel = page.evaluate(SELECTION_PIXELS, [rows])
        assert light_sel["own"] == len(rows), light_sel  # every selected point's centre holds a legend colour
        assert light_sel["opaqueDark"] == 0 and light_sel["painted"] == light_sel["total"]
        assert light_sel["corner"][:3] == [255, 255, 255] and 100 < light_sel["corner"][3] < 255  # a white veil

        # the hover card: small and inside the map
        row = next((i for i in best_rows(page) if i not in rows), rows[0])
        page.mouse.move(*point_on_page(page, row))
        page.wait_for_function(CARD_SHOWN + " && !!document.querySelector('.cirscope-map .cs-card dt')", timeout=10_000)
        card = card_box(page)
        assert card["w"] <= 222 and card["w"] * card["h"] <= 0.15 * card["W"] * card["H"], card
        assert card["left"] >= 0 and card["top"] >= 0 and card["right"] <= card["W"] + 1 and card["bottom"] <= card["H"] + 1
        assert 2 <= card["lines"] <= 6
        page.locator(MAP).screenshot(path=str(artifacts / "map-hover-card.png"))
        # a click hides it, and it stays hidden while the pointer stays on that point
        before = int(page.get_attribute(".cirscope-grid", "data-version"))
        page.mouse.down()
        page.mouse.up()
        assert card_box(page)["shown"] is False
        x, y = point_on_page(page, row)
        page.mouse.move(x + 1, y)
        page.wait_for_timeout(300)
        assert card_box(page)["shown"] is False
        page.wait_for_selector(f".cirscope-query[data-reference='{row}']")  # the click made it the reference
        wait_grid_settled(page, before)
        # a wheel and Escape hide it too
        for hide in ("wheel", "Escape"):
            x, y = point_on_page(page, row)
            page.mouse.move(x + 80, y + 80)  # off the point (hit-tested in the next frame), then back
            page.evaluate("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")
            page.mouse.move(x, y)
            page.wait_for_function(CARD_SHOWN, timeout=10_000)
            if hide == "wheel":
                page.mouse.wheel(0, -40)
            else:
                page.keyboard.press("Escape")
            page.wait_for_function(CARD_HIDDEN, timeout=5_000)
        page.locator(f"{MAP} button", has_text="Reset view").click()

        # JupyterLab's dark theme: the map's background, text and canvas colours follow
        light = page.evaluate(THEME)
        use_theme(page, "JupyterLab Dark")
        dark = True
        page.wait_for_function("() => document.querySelector('.cirscope-map').dataset.theme === 'dark'", timeout=10_000)
        now = page.evaluate(THEME)
        assert light["stage"] > 0.8 and now["stage"] < 0.25, (light, now)
        assert light["text"] < 0.3 and now["text"] > 0.6 and now["panel"] > 0.6, (light, now)
        assert sum(page.evaluate(HIGHLIGHT_PIXELS, [best_rows(page)])) >= 6  # (before a selection fills the grid)
        rows = box_select(page)
        dark_sel = page.evaluate(SELECTION_PIXELS, [rows])
        assert dark_sel["own"] == len(rows) and dark_sel["opaqueDark"] == 0, dark_sel
        assert max(dark_sel["corner"][:3]) < 80 and 100 < dark_sel["corner"][3] < 255  # a dark veil
        page.locator(f"{MAP} button", has_text="Clear selection").click()
        page.wait_for_timeout(200)
        save_shot(page.locator(".cirscope-explorer .cs-explorer-top").screenshot(), "dark-theme.png", artifacts, update_docs)
        assert widget_errors(errors) == []
    finally:
        if dark:
            try:  # the theme is a user setting of the shared server: put it back for the other tests
                use_theme(page, "JupyterLab Light")
            finally:
                context.close()
        else:
            context.close()

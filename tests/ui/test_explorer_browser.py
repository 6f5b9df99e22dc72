"""The Explorer in JupyterLab 4, driven in Chromium: map, clicks, text, sliders, selection, escaping.

One notebook builds an Explorer on the shapes world (300 items) with the shipped toy
model; every test works on the same page. Each starts from a reset state (a cell run in
the kernel), then acts only through the browser and reads the results from the DOM. A
second cell prints the kernel's view (``ex.map.selected``, the grid's ids, and
``space.search`` run with the panel's settings) for comparison.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

import pytest

from tests.ui._harness import NOTEBOOK, cell_output, run_cell, wait_for_kernel, widget_errors, write_notebook

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]

INJECTED_ROW = 15
INJECTION = '<img src=x onerror="window.__cirscope_xss = 1">'

SETUP = f"""\
import json, warnings
warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
import cirscope as cs

shapes = cs.datasets.shapes(300, seed=0)
meta = shapes.metadata
meta.loc[{INJECTED_ROW}, "caption"] = {INJECTION!r}
space = cs.Space(cs.Gallery(meta, shapes.sources), cs.Embedder.toy(), progress=False)
ex = cs.Explorer(space, map="pca", color_by="color")
_runs = 0
ex"""

CHECK = """\
_runs += 1
_p = ex.query
_q = cs.ComposedQuery(_p.reference, _p.text) if (_p.reference >= 0 and _p.text.strip()) else None
print("STATE " + json.dumps({
    "n": _runs,
    "reference": _p.reference,
    "text": _p.text,
    "method": _p.method,
    "params": _p.params(),
    "grid": ex.grid.to_dataframe()["id"].tolist(),
    "mode": ex.grid.mode,
    "selected": [int(r) for r in ex.map.selected],
    "selected_ids": ex.map.selected_ids,
    "search": None if _q is None else space.search(_q, method=_p.method, k=_p.k, **_p.params())["id"].tolist(),
}))"""

LAYOUT = """\
import ipywidgets
ipywidgets.HBox([ipywidgets.VBox([ex.query], layout=ipywidgets.Layout(width="430px")),
                 ipywidgets.VBox([ex.grid], layout=ipywidgets.Layout(width="720px"))])"""

RESET = """\
ex.map.selected = []
ex.map.select_mode = "box"
with ex.query.hold_trait_notifications():
    ex.query.reference = -1
    ex.query.text = ""
    ex.query.alpha_t, ex.query.alpha_i, ex.query.beta = 1.0, 1.0, 0.75
ex.grid.mode = "query"
_runs += 1
print("RESET", _runs)"""

GRID = ".cirscope-grid"
PANEL = ".cirscope-query"


def _demo_reference() -> tuple[int, int]:
    """The README's example: the first large shape among the grid's opening sample whose blue twin
    (same shape, size and background) is in the gallery, so "make it blue" has a known answer."""
    import cirscope as cs
    from cirscope.widgets._controller import gallery_sample

    meta = cs.datasets.shapes(300, seed=0).metadata
    for row in gallery_sample(len(meta), 20):
        m = meta.loc[row]
        twin = meta.index[(meta["shape"] == m["shape"]) & (meta["size"] == m["size"])
                          & (meta["background"] == m["background"]) & (meta["color"] == "blue")]  # fmt: skip
        if row != INJECTED_ROW and m["size"] == "large" and m["color"] != "blue" and len(twin):
            return int(row), int(twin[0])
    raise AssertionError("no demo reference in the opening sample")


DEMO_ROW, DEMO_TWIN = _demo_reference()
MAP_TOP = ".cirscope-map canvas.cs-top"


# ---------------------------------------------------------------------- helpers
def grid_rows(page: Any) -> list[int]:
    return page.eval_on_selector_all(f"{GRID} .cs-cell", "els => els.map(e => Number(e.dataset.row))")


def grid_ids(page: Any) -> list[str]:
    return page.eval_on_selector_all(f"{GRID} .cs-cell", "els => els.map(e => e.dataset.id)")


def grid_version(page: Any) -> int:
    return int(page.get_attribute(GRID, "data-version") or -1)


def wait_grid_settled(page: Any, before: int | None, timeout: float = 30_000) -> None:
    """Wait until the grid shows a version after ``before`` (if given) and no update follows for a moment."""
    page.wait_for_function(
        """([sel, before]) => {
            const g = document.querySelector(sel);
            return g && (before === null || Number(g.dataset.version) > before) && g.dataset.rendering === "false";
        }""",
        arg=[GRID, before],
        timeout=timeout,
    )
    last = grid_version(page)
    while True:
        time.sleep(0.3)
        now = grid_version(page)
        if now == last and page.get_attribute(GRID, "data-rendering") == "false":
            return
        last = now


def run_and_read(page: Any, index: int, marker: str) -> str:
    """Run code cell ``index`` and return the first output line starting with ``marker`` (a new one)."""
    before = cell_output(page, index)
    run_cell(page, index)
    page.wait_for_function(
        """([notebook, index, marker, before]) => {
            const out = document.querySelectorAll(`${notebook} .jp-Cell`)[index].querySelector('.jp-OutputArea');
            const text = out ? out.innerText : '';
            return text.includes(marker) && text !== before;
        }""",
        arg=[NOTEBOOK, index, marker, before],
        timeout=60_000,
    )
    text = cell_output(page, index)
    return text[text.index(marker) + len(marker):].strip().splitlines()[0]


def kernel_state(page: Any) -> dict:
    """Run the check cell and parse what it prints."""
    return json.loads(run_and_read(page, 1, "STATE "))


def map_point(page: Any, row: int) -> tuple[float, float]:
    """Page coordinates of a map point."""
    page.locator(MAP_TOP).scroll_into_view_if_needed()
    box = page.locator(MAP_TOP).bounding_box()
    xy = page.eval_on_selector(MAP_TOP, "(c, row) => c.pointPosition(row)", row)
    return box["x"] + xy[0], box["y"] + xy[1]


def drag(page: Any, points: list[tuple[float, float]]) -> None:
    page.mouse.move(*points[0])
    page.mouse.down()
    for a, b in itertools.pairwise(points):
        for i in range(1, 9):
            page.mouse.move(a[0] + (b[0] - a[0]) * i / 8, a[1] + (b[1] - a[1]) * i / 8)
    page.mouse.up()


# ---------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def lab_page(jupyter_server, browser, artifacts) -> Any:
    """JupyterLab with the explorer notebook open and its first cell run."""
    write_notebook(jupyter_server.root / "explorer.ipynb", [SETUP, CHECK, RESET, LAYOUT])
    context = browser.new_context(viewport={"width": 1500, "height": 1100})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"{exc}\n{exc.stack}"))
    page.goto(f"{jupyter_server.url}/lab/tree/explorer.ipynb?reset")
    page.wait_for_selector(f"{NOTEBOOK} .jp-Cell .jp-InputArea-editor", timeout=90_000)
    wait_for_kernel(page, timeout=90_000)
    run_cell(page, 0)
    try:
        page.wait_for_selector(f"{MAP_TOP}[data-n-points]", timeout=150_000)
        page.wait_for_selector(f"{GRID}[data-version]", timeout=30_000)
    except Exception:
        page.screenshot(path=str(artifacts / "explorer-failed-to-load.png"))
        raise
    page.page_errors = errors  # type: ignore[attr-defined]
    yield page
    page.screenshot(path=str(artifacts / "explorer-last.png"))
    context.close()


@pytest.fixture
def explorer(lab_page) -> Any:
    """The explorer page, reset to no reference, no text, default sliders, no selection."""
    run_and_read(lab_page, 2, "RESET ")
    wait_grid_settled(lab_page, None)
    lab_page.locator(".cirscope-explorer").scroll_into_view_if_needed()
    lab_page.wait_for_selector(f"{PANEL}[data-reference='-1']")
    yield lab_page
    assert widget_errors(lab_page.page_errors) == []


# ---------------------------------------------------------------------- tests
def test_map_renders_every_point_with_a_legend(explorer, artifacts):
    page = explorer
    assert page.get_attribute(MAP_TOP, "data-n-points") == "300"
    legend = page.locator(".cirscope-map .cs-legend").inner_text()
    for color in ("red", "blue", "green", "yellow"):
        assert color in legend
    # the base layer really drew pixels: count non-blank ones
    painted = page.eval_on_selector(
        ".cirscope-map canvas.cs-base",
        """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                  let k = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) k++; return k; }""",
    )
    assert painted > 300 * 9
    # the grid starts with a sample of the gallery to click
    assert len(grid_rows(page)) == 20
    page.locator(".cirscope-explorer").screenshot(path=str(artifacts / "explorer-start.png"))


def test_injected_caption_shows_as_text(explorer, artifacts):
    page = explorer
    cell = page.locator(f"{GRID} .cs-cell[data-row='{INJECTED_ROW}']")
    cell.hover()
    card = page.locator(f"{GRID} .cs-card")
    card.wait_for(state="visible")
    assert INJECTION in card.inner_text()
    # the map's hover card (thumbnail + metadata from Python)
    page.mouse.move(*map_point(page, INJECTED_ROW))
    map_card = page.locator(".cirscope-map .cs-card")
    map_card.wait_for(state="visible", timeout=10_000)
    page.wait_for_function(
        "(text) => document.querySelector('.cirscope-map .cs-card').innerText.includes(text)", arg=INJECTION
    )
    assert page.eval_on_selector(".cirscope-map .cs-card img", "img => img.src.startsWith('blob:')")
    # the reference caption in the panel
    cell.click()
    page.wait_for_selector(f"{PANEL}[data-reference='{INJECTED_ROW}']")
    assert page.locator(f"{PANEL} .cs-ref-caption").text_content() == INJECTION
    assert page.evaluate("() => document.querySelectorAll('img[src=\"x\"]').length") == 0
    assert page.evaluate("() => window.__cirscope_xss") is None
    page.locator(PANEL).screenshot(path=str(artifacts / "injection-caption.png"))


def test_click_thumbnail_sets_reference(explorer):
    page = explorer
    before = grid_version(page)
    page.locator(f"{GRID} .cs-cell[data-row='0']").click()
    page.wait_for_selector(f"{PANEL}[data-reference='0']")
    wait_grid_settled(page, before)
    assert "shape-0-00000" in page.locator(f"{PANEL} .cs-ref-id").inner_text()
    assert page.eval_on_selector(f"{PANEL} .cs-ref img", "img => img.src.startsWith('blob:')")
    assert 0 not in grid_rows(page)  # the reference itself is left out of its results
    state = kernel_state(page)
    assert state["reference"] == 0
    assert state["grid"] == grid_ids(page)


def test_text_and_alpha_slider_change_the_grid(explorer, artifacts, update_docs):
    page = explorer
    before = grid_version(page)
    page.locator(f"{GRID} .cs-cell[data-row='{DEMO_ROW}']").click()
    wait_grid_settled(page, before)

    before = grid_version(page)
    text = page.locator(f"{PANEL} [data-role='text']")
    text.fill("make it blue")
    text.press("Enter")
    wait_grid_settled(page, before)
    ids_default = grid_ids(page)
    composed = page.locator(f"{PANEL} [data-role='composed_text']").input_value()
    assert composed.endswith("make it blue")
    state = kernel_state(page)
    assert state["text"] == "make it blue" and state["params"]["alpha_t"] == 1.0
    assert ids_default == state["grid"] == state["search"]
    assert grid_rows(page)[0] == DEMO_TWIN  # the blue twin first: the picture in the README shows a success
    # one name for the method: the menu, its tooltip, the legend under it and the grid header
    option = page.locator(f"{PANEL} select option[value='pdv']")
    assert option.inner_text() == "PDV" and option.get_attribute("title") == "Prompt Directional Vector"
    assert page.locator(f"{PANEL} .cs-formula").inner_text().startswith("PDV = Prompt Directional Vector")
    assert page.locator(f"{GRID} span.cs-label").first.inner_text() == "Top 20 · PDV"
    # the map marks the query and its top-k
    assert page.get_attribute(MAP_TOP, "data-n-highlighted") == "20"
    if update_docs is not None:  # a viewport tall enough for the whole Explorer, then back
        page.set_viewport_size({"width": 1500, "height": 1900})
        page.locator(".cirscope-explorer").scroll_into_view_if_needed()
        page.wait_for_timeout(500)
        page.locator(PANEL).hover()
        page.locator(".cirscope-explorer").screenshot(path=str(update_docs / "explorer.png"))
        page.set_viewport_size({"width": 1500, "height": 1100})
    page.locator(".cirscope-explorer").screenshot(path=str(artifacts / "composed-default.png"))

    before = grid_version(page)
    slider = page.locator(f"{PANEL} input[data-param='alpha_t']")
    slider.focus()
    slider.press("End")  # alpha_t to its maximum (2.0), with the keyboard
    wait_grid_settled(page, before)
    alpha = float(slider.input_value())
    assert alpha == 2.0
    ids_moved = grid_ids(page)
    assert ids_moved != ids_default
    state = kernel_state(page)
    assert state["params"]["alpha_t"] == alpha
    assert ids_moved == state["grid"] == state["search"]
    page.locator(".cirscope-explorer").screenshot(path=str(artifacts / "composed-alpha2.png"))


def test_box_and_lasso_selection_reach_python(explorer, artifacts):
    page = explorer
    page.locator(".cirscope-map").scroll_into_view_if_needed()
    box = page.locator(MAP_TOP).bounding_box()
    x0, y0 = box["x"] + box["width"] * 0.05, box["y"] + box["height"] * 0.05
    x1, y1 = box["x"] + box["width"] * 0.55, box["y"] + box["height"] * 0.6
    before = grid_version(page)
    drag(page, [(x0, y0), (x1, y1)])
    page.wait_for_selector(f"{GRID}[data-mode='selection']")
    wait_grid_settled(page, before)
    n_box = int(page.get_attribute(MAP_TOP, "data-n-selected"))
    assert n_box > 0
    state = kernel_state(page)
    assert len(state["selected"]) == n_box
    assert state["mode"] == "selection"
    assert grid_rows(page) == state["selected"][:200]
    assert grid_ids(page) == state["selected_ids"][:200]
    page.locator(".cirscope-explorer").screenshot(path=str(artifacts / "box-selection.png"))

    page.locator(".cirscope-map button", has_text="Lasso").click()
    page.locator(".cirscope-map").scroll_into_view_if_needed()
    box = page.locator(MAP_TOP).bounding_box()
    before = grid_version(page)
    cx, cy = box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5
    w, h = box["width"] * 0.3, box["height"] * 0.3
    drag(page, [(cx - w, cy - h), (cx + w, cy - h), (cx, cy + h), (cx - w, cy - h)])
    wait_grid_settled(page, before)
    n_lasso = int(page.get_attribute(MAP_TOP, "data-n-selected"))
    assert n_lasso > 0
    state = kernel_state(page)
    assert len(state["selected"]) == n_lasso
    assert state["selected"] != []

    # the toggle flips back to the results; Escape on the map clears the selection
    page.locator(f"{GRID} .cs-toggle button[data-mode='query']").click()
    page.wait_for_selector(f"{GRID}[data-mode='query']")
    page.locator(".cirscope-map").first.focus()
    page.keyboard.press("Escape")
    page.wait_for_selector(f"{MAP_TOP}[data-n-selected='0']")
    assert kernel_state(page)["selected"] == []


def test_parts_lay_out_with_ipywidgets(explorer, artifacts, update_docs):
    """The panel and the grid shown a second time in an ipywidgets.HBox stay in step (runs last:
    afterwards every part is on the page twice)."""
    page = explorer
    before = grid_version(page)
    page.locator(f"{GRID} .cs-cell[data-row='{DEMO_ROW}']").click()
    wait_grid_settled(page, before)
    before = grid_version(page)
    text = page.locator(f"{PANEL} [data-role='text']")
    text.fill("make it blue")
    text.press("Enter")
    wait_grid_settled(page, before)
    before = grid_version(page)
    page.locator(f"{PANEL} input[data-param='alpha_t']").fill("1.5")  # sets the value, fires input
    wait_grid_settled(page, before)
    ids = grid_ids(page)

    run_cell(page, 3)
    layout = page.locator(f"{NOTEBOOK} .jp-Cell").nth(3).locator(".widget-hbox")
    layout.locator(".cirscope-grid[data-rendering='false']").wait_for(timeout=30_000)
    second = layout.locator(".cs-cell").evaluate_all("els => els.map(e => e.dataset.id)")
    assert second == ids
    assert layout.locator("input[data-param='alpha_t']").input_value() == "1.5"
    assert layout.locator("[data-role='text']").input_value() == "make it blue"
    layout.locator(".cirscope-query").hover()
    layout.screenshot(path=str(artifacts / "composed-query.png"))
    if update_docs is not None:
        layout.screenshot(path=str(update_docs / "composed-query.png"))

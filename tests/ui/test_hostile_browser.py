"""The Explorer and the DiagnosticsPanel on a hostile gallery, in JupyterLab 4 driven in Chromium.

Ids, captions, a column name and its values are the strings of :mod:`tests.hostile_strings`
(script tags, event handlers, links, plotly tags, entities, TeX, bidi marks, newlines, 10 kB).
Every ``alert`` in them would open a dialog: there must be none, and the text must show
literally in the grid, its hover card, the map's hover card and legend, the query panel and
the diagnostics chart, with clicks still reaching the kernel.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.hostile_strings import HOSTILE_COLUMN, HOSTILE_LABELS, displayed_by_plotly, hostile_gallery
from tests.ui._harness import NOTEBOOK, run_cell, wait_for_kernel, widget_errors, write_notebook
from tests.ui.conftest import REPO
from tests.ui.test_explorer_browser import GRID, MAP_TOP, PANEL, map_point, run_and_read, wait_grid_settled

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(400)]

SETUP = f"""\
import json, sys, warnings
warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
sys.path.insert(0, {str(REPO)!r})
import cirscope as cs
from tests.hostile_strings import HOSTILE_COLUMN, hostile_gallery
space = cs.Space(hostile_gallery(120), cs.Embedder.toy(), progress=False)
ex = cs.Explorer(space, map="pca", color_by=HOSTILE_COLUMN)
ex"""

PANEL_CELL = """\
panel = cs.DiagnosticsPanel(space, attribute=HOSTILE_COLUMN, options={"skew": {"k": (10,)}})
panel"""

CHECK = """\
print("STATE " + json.dumps({"rows": panel.shown_rows, "selection": panel.selection,
                             "reference": ex.query.reference}))"""

DIAG = ".cirscope-diagnostics"


@pytest.fixture(scope="module")
def gallery() -> Any:
    return hostile_gallery(120)


@pytest.fixture(scope="module")
def hostile_page(jupyter_server, browser, artifacts) -> Any:
    write_notebook(jupyter_server.root / "hostile.ipynb", [SETUP, PANEL_CELL, CHECK])
    context = browser.new_context(viewport={"width": 1500, "height": 1100})
    page = context.new_page()
    page.dialogs = []  # type: ignore[attr-defined]
    page.page_errors = []  # type: ignore[attr-defined]
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    page.on("pageerror", lambda exc: page.page_errors.append(f"{exc}\n{exc.stack}"))
    page.goto(f"{jupyter_server.url}/lab/tree/hostile.ipynb?reset")
    page.wait_for_selector(f"{NOTEBOOK} .jp-Cell .jp-InputArea-editor", timeout=90_000)
    wait_for_kernel(page, timeout=90_000)
    run_cell(page, 0)
    try:
        page.wait_for_selector(f"{MAP_TOP}[data-n-points]", timeout=150_000)
        page.wait_for_selector(f"{GRID}[data-version]", timeout=30_000)
        wait_grid_settled(page, None)
    except Exception:
        page.screenshot(path=str(artifacts / "hostile-failed-to-load.png"))
        raise
    yield page
    page.screenshot(path=str(artifacts / "hostile-last.png"), full_page=True)
    context.close()


def _no_injection(page: Any) -> None:
    assert page.dialogs == []
    assert page.evaluate("() => document.querySelectorAll('img[src=\"x\"]').length") == 0
    assert page.evaluate("() => document.querySelectorAll('.jp-OutputArea a[href^=\"javascript\"]').length") == 0
    assert widget_errors(page.page_errors) == []


def test_explorer_shows_hostile_text_literally(hostile_page, gallery, artifacts):
    page = hostile_page
    ids = gallery.ids
    meta = gallery.metadata
    cells = page.eval_on_selector_all(f"{GRID} .cs-cell", "els => els.map(e => [Number(e.dataset.row), e.dataset.id])")
    assert len(cells) >= 10
    for row, shown in cells:
        assert shown == ids[row]  # the raw id, not an escaped or truncated copy
    # the grid's hover card: id and caption as text
    row = next(r for r, _ in cells if "<" in ids[r] and "<" in meta["caption"].iat[r])
    cell = page.locator(f"{GRID} .cs-cell[data-row='{row}']")
    cell.hover()
    card = page.locator(f"{GRID} .cs-card")
    card.wait_for(state="visible")
    text = card.text_content()
    assert ids[row] in text and meta["caption"].iat[row] in text
    # the map: the legend holds the hostile labels, the hover card the column name and the value
    legend = page.locator(".cirscope-map .cs-legend").text_content()
    for label in sorted(set(meta[HOSTILE_COLUMN])):
        assert label in legend
    page.mouse.move(*map_point(page, row))
    page.wait_for_function(
        "(text) => { const c = document.querySelector('.cirscope-map .cs-card');"
        " return c && c.textContent.includes(text); }", arg=meta[HOSTILE_COLUMN].iat[row], timeout=10_000)
    map_card = page.locator(".cirscope-map .cs-card").text_content()
    assert HOSTILE_COLUMN in map_card and ids[row] in map_card
    # the query panel: the reference's id and caption
    before = int(page.get_attribute(GRID, "data-version"))
    cell.click()
    page.wait_for_selector(f"{PANEL}[data-reference='{row}']")
    wait_grid_settled(page, before)
    assert page.locator(f"{PANEL} .cs-ref-caption").text_content() == meta["caption"].iat[row]
    assert ids[row] in page.locator(f"{PANEL} .cs-ref-id").text_content()
    page.locator(".cirscope-explorer").screenshot(path=str(artifacts / "hostile-explorer.png"))
    _no_injection(page)


def test_panel_chart_shows_hostile_labels_literally_and_clicks_work(hostile_page, gallery, artifacts):
    page = hostile_page
    run_cell(page, 1)
    chart = f"{NOTEBOOK} {DIAG} .js-plotly-plot"
    page.wait_for_selector(f"{chart} .main-svg", timeout=120_000)
    page.wait_for_selector(f"{chart} .barlayer .trace .point path", timeout=60_000)
    ticks = page.eval_on_selector_all(f"{chart} .xaxislayer-above .xtick text", "els => els.map(e => e.textContent)")
    labels = sorted(set(gallery.metadata[HOSTILE_COLUMN]))
    for label in labels:
        assert displayed_by_plotly(label) in ticks, (label, ticks)
    assert page.evaluate(f"() => document.querySelectorAll('{chart} .main-svg a').length") == 0
    # click the bar of the https link label: its rows reach the kernel
    target = HOSTILE_LABELS[1]
    point = ticks.index(displayed_by_plotly(target))
    page.locator(f"{chart} .barlayer .trace").first.locator(".point path").nth(point).click(force=True)
    page.wait_for_function(
        "sel => document.querySelector(sel).innerText.includes('Showing')", arg=f"{NOTEBOOK} {DIAG}",
        timeout=30_000)
    caption = page.locator(f"{NOTEBOOK} {DIAG}").text_content()
    assert target in caption
    state = json.loads(run_and_read(page, 2, "STATE "))
    assert state["selection"]["key"]["label"] == target
    colors = gallery.metadata[HOSTILE_COLUMN].to_numpy()
    assert state["rows"] and all(colors[r] == target for r in state["rows"])
    page.locator(f"{NOTEBOOK} {DIAG}").screenshot(path=str(artifacts / "hostile-panel.png"))
    _no_injection(page)

"""The detail view and the grid's keyboard in Chromium: JupyterLab 4 (one page) and Notebook 7.

In JupyterLab one notebook builds an Explorer on the shapes world (300 items, drawn at
160 px) with a hostile caption and a hostile column; each test starts from a reset state (a
cell run in the kernel), acts only through the browser and compares the DOM with what the
kernel prints. Every ``alert`` in the hostile values would open a dialog: none may.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from tests.ui._harness import NOTEBOOK, cell_output, run_cell, wait_for_kernel, widget_errors, write_notebook

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]

ROW = 15  # in the grid's first sample of 300 rows
INJECTION = "<img src=x onerror=alert(1)>"
COLUMN = "<b>note</b>"
NOTE = '<script>alert("note")</script>'

SETUP = f"""\
import json, warnings
warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
import cirscope as cs

shapes = cs.datasets.shapes(300, seed=0, image_size=160)
meta = shapes.metadata
meta.loc[{ROW}, "caption"] = {INJECTION!r}
meta[{COLUMN!r}] = "plain"
meta.loc[{ROW}, {COLUMN!r}] = {NOTE!r}
space = cs.Space(cs.Gallery(meta, shapes.sources), cs.Embedder.toy(), progress=False)
ex = cs.Explorer(space, map="pca", color_by="color")
_runs = 0
ex"""

CHECK = """\
_runs += 1
_d = ex.detail
print("STATE " + json.dumps({
    "n": _runs,
    "row": _d.row,
    "fields": _d.fields,
    "neighbor_ids": _d.neighbor_ids,
    "reference": ex.query.reference,
    "selected": [int(r) for r in ex.map.selected],
    "mode": ex.grid.mode,
    "grid": [int(r) for r in ex.grid.rows],
}))"""

RESET = """\
ex.close_detail()
ex.map.selected = []
ex.query.reference = -1
ex.grid.mode = "query"
_runs += 1
print("RESET", _runs)"""

SELECT = """\
ex.controller.select([31, 47], show=False)  # the grid stays on the gallery sample
_runs += 1
print("SELECTED", _runs, len(ex.map.selected))"""

GRID = ".cirscope-grid"
PANEL = ".cirscope-query"
DETAIL = ".cirscope-detail"
MAP_TOP = ".cirscope-map canvas.cs-top"


# ---------------------------------------------------------------------- helpers
def run_and_read(page: Any, index: int, marker: str) -> str:
    """Run code cell ``index`` and return the first new output line starting with ``marker``."""
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
    return json.loads(run_and_read(page, 1, "STATE "))


def grid_version(page: Any) -> int:
    return int(page.get_attribute(GRID, "data-version") or -1)


def wait_grid_after(page: Any, before: int) -> None:
    page.wait_for_function(
        """([sel, before]) => { const g = document.querySelector(sel);
            return g && Number(g.dataset.version) > before && g.dataset.rendering === "false"; }""",
        arg=[GRID, before],
        timeout=30_000,
    )


def grid_rows(page: Any) -> list[int]:
    return page.eval_on_selector_all(f"{GRID} .cs-cell", "els => els.map(e => Number(e.dataset.row))")


def wait_detail(page: Any, row: int) -> None:
    """Wait until the detail view shows ``row``, its large image decoded."""
    page.wait_for_selector(f"{DETAIL}[data-row='{row}'][data-ready='true']", timeout=30_000)
    page.wait_for_function(
        "sel => { const i = document.querySelector(sel); return i && i.complete && i.naturalWidth > 0; }",
        arg=f"{DETAIL} img.cs-detail-image",
        timeout=10_000,
    )


def focused(page: Any) -> dict:
    """What has the keyboard focus, and how its focus ring looks."""
    return page.evaluate(
        """() => {
            const a = document.activeElement;
            const probe = document.createElement('span');
            probe.style.color = 'var(--cs-accent)';
            a.append(probe);
            const accent = getComputedStyle(probe).color;
            probe.remove();
            const s = getComputedStyle(a);
            return {
                row: a.dataset.row === undefined ? null : Number(a.dataset.row),
                index: a.dataset.index === undefined ? null : Number(a.dataset.index),
                cell: a.classList.contains('cs-cell'),
                inDetail: !!a.closest('.cirscope-detail'),
                visible: a.matches(':focus-visible'),
                outline: [s.outlineStyle, s.outlineWidth, s.outlineColor],
                accent,
            };
        }"""
    )


def visible_shot(page: Any, selector: str) -> bytes:
    """A screenshot of the part of ``selector`` that the notebook shows (its scroller clips the rest)."""
    clip = page.eval_on_selector(
        selector,
        """e => {
            let s = e.parentElement;
            while (s && s !== document.body && !(/auto|scroll/.test(getComputedStyle(s).overflowY)
                                                && s.scrollHeight > s.clientHeight)) s = s.parentElement;
            const port = s && s !== document.body ? s.getBoundingClientRect() : {top: 0, bottom: innerHeight};
            const b = e.getBoundingClientRect();
            const top = Math.max(b.top, port.top), bottom = Math.min(b.bottom, port.bottom, innerHeight);
            return {x: b.left, y: top, width: b.width, height: bottom - top};
        }""",
    )
    return page.screenshot(clip=clip)


def small_png(data: bytes, limit: int = 150_000) -> bytes:
    """The screenshot, reduced to a 256-colour palette when it is over ``limit`` bytes."""
    if len(data) <= limit:
        return data
    from PIL import Image

    out = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").quantize(256).save(out, format="PNG", optimize=True)
    return out.getvalue()


def save_shot(data: bytes, name: str, artifacts: Path, update_docs: Path | None) -> None:
    data = small_png(data)
    (artifacts / name).write_bytes(data)
    if update_docs is not None:
        (update_docs / "screenshots").mkdir(exist_ok=True)
        (update_docs / "screenshots" / name).write_bytes(data)


# ---------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def lab_page(jupyter_server, browser, artifacts) -> Any:
    write_notebook(jupyter_server.root / "detail.ipynb", [SETUP, CHECK, RESET, SELECT])
    context = browser.new_context(viewport={"width": 1500, "height": 1100})
    page = context.new_page()
    errors: list[str] = []
    dialogs: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"{exc}\n{exc.stack}"))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{jupyter_server.url}/lab/tree/detail.ipynb?reset")
    page.wait_for_selector(f"{NOTEBOOK} .jp-Cell .jp-InputArea-editor", timeout=90_000)
    wait_for_kernel(page, timeout=90_000)
    run_cell(page, 0)
    try:
        page.wait_for_selector(f"{MAP_TOP}[data-n-points]", timeout=150_000)
        page.wait_for_selector(f"{GRID}[data-version][data-rendering='false']", timeout=30_000)
    except Exception:
        page.screenshot(path=str(artifacts / "detail-failed-to-load.png"))
        raise
    page.page_errors = errors  # type: ignore[attr-defined]
    page.dialogs = dialogs  # type: ignore[attr-defined]
    yield page
    page.screenshot(path=str(artifacts / "detail-last.png"))
    context.close()


@pytest.fixture
def lab(lab_page) -> Any:
    """The page, reset: detail closed, no selection, no reference."""
    run_and_read(lab_page, 2, "RESET ")
    lab_page.wait_for_selector(f"{DETAIL}[data-row='-1']", state="attached")
    lab_page.wait_for_selector(f"{PANEL}[data-reference='-1']")
    lab_page.wait_for_selector(f"{GRID}[data-rendering='false'] .cs-cell[data-row='{ROW}']")
    lab_page.locator(".cirscope-explorer").scroll_into_view_if_needed()
    yield lab_page
    assert lab_page.dialogs == []
    assert widget_errors(lab_page.page_errors) == []


# ---------------------------------------------------------------------- JupyterLab
def test_details_show_the_large_image_every_value_as_text_and_neighbours(lab, artifacts, update_docs):
    page = lab
    page.eval_on_selector(".cirscope-explorer", "e => e.scrollIntoView({block: 'start'})")
    cell = page.locator(f"{GRID} .cs-cell[data-row='{ROW}']")
    cell.hover()
    cell.locator(".cs-info").click()
    wait_detail(page, ROW)
    assert page.locator(f"{PANEL}").get_attribute("data-reference") == "-1"  # opening is not picking
    # the panel lies in the visible part of the Explorer (the clicked thumbnail is far below its top)
    page.mouse.move(5, 5)
    head = page.locator(f"{DETAIL} .cs-detail-head").bounding_box()
    assert head is not None and 0 <= head["y"] and head["y"] + head["height"] <= 1100  # the viewport's height
    save_shot(visible_shot(page, ".cirscope-explorer"), "detail.png", artifacts, update_docs)

    big = page.eval_on_selector(f"{DETAIL} img.cs-detail-image", "i => [i.naturalWidth, i.src.startsWith('blob:')]")
    small = page.eval_on_selector(f"{GRID} .cs-cell[data-row='{ROW}'] img", "i => i.naturalWidth")
    assert big == [160, True] and small == 96

    state = kernel_state(page)
    assert state["row"] == ROW
    shown = page.eval_on_selector_all(
        f"{DETAIL} .cs-detail-fields tr",
        "trs => trs.map(tr => [tr.cells[0].textContent, tr.cells[1].textContent, tr.cells[1].dataset.kind])",
    )
    expected = [[f["name"], "missing" if f["kind"] == "missing" else f["value"], f["kind"]] for f in state["fields"]]
    assert shown == expected and len(shown) == 12  # every column (11 of the shapes world + ours)
    assert ["caption", INJECTION, "text"] in shown and [COLUMN, NOTE, "text"] in shown
    # the hostile values made no element: no image with src "x", no bold text, no script in our views
    assert page.evaluate("() => document.querySelectorAll('img[src=\"x\"], .cirscope b, .cirscope script').length") == 0
    assert page.locator(f"{DETAIL} .cs-detail-title").inner_text() == f"shape-0-{ROW:05d}"

    ids = page.eval_on_selector_all(f"{DETAIL} .cs-neighbor", "bs => bs.map(b => b.dataset.id)")
    assert ids == state["neighbor_ids"] and len(ids) == 8

    # a neighbour opens its own details; × closes
    first = page.locator(f"{DETAIL} .cs-neighbor").first
    row = int(first.get_attribute("data-row"))
    first.click()
    wait_detail(page, row)
    assert page.locator(f"{DETAIL} .cs-detail-title").inner_text() == ids[0]
    page.locator(f"{DETAIL} .cs-detail-close").click()
    page.wait_for_selector(f"{DETAIL}[data-row='-1']", state="attached")
    assert not page.locator(f"{DETAIL} .cs-detail-panel").is_visible()
    assert kernel_state(page)["row"] == -1


def test_detail_buttons_set_the_reference_and_the_selection(lab):
    page = lab
    sample = grid_rows(page)
    page.locator(f"{GRID} .cs-cell[data-row='{ROW}'] .cs-info").click()
    wait_detail(page, ROW)

    before = grid_version(page)
    page.locator(f"{DETAIL} button[data-action='reference']").click()
    page.wait_for_selector(f"{PANEL}[data-reference='{ROW}']")
    wait_grid_after(page, before)
    page.wait_for_selector(f"{DETAIL}[data-reference='true']")
    rows = grid_rows(page)
    assert rows != sample and ROW not in rows  # the grid shows the reference's results
    assert page.locator(f"{DETAIL} button[data-action='reference']").inner_text() == "The reference \u2713"

    page.locator(f"{DETAIL} button[data-action='select']").click()
    page.wait_for_selector(f"{MAP_TOP}[data-n-selected='1']")
    page.wait_for_selector(f"{DETAIL}[data-selected='true']")
    assert page.locator(f"{DETAIL} button[data-action='unselect']").inner_text() == "Remove from selection"
    state = kernel_state(page)
    assert state["selected"] == [ROW] and state["mode"] == "query" and state["reference"] == ROW
    assert page.get_attribute(GRID, "data-mode") == "query"  # the grid stays on the results
    assert "(1)" in page.locator(f"{GRID} .cs-toggle button[data-mode='selection']").inner_text()

    page.locator(f"{DETAIL} button[data-action='unselect']").click()
    page.wait_for_selector(f"{MAP_TOP}[data-n-selected='0']")
    page.wait_for_selector(f"{DETAIL}[data-selected='false']")
    assert kernel_state(page)["selected"] == []

    # Escape with the focus in the view closes it (and nothing else)
    page.locator(f"{DETAIL} button[data-action='select']").click()
    page.wait_for_selector(f"{MAP_TOP}[data-n-selected='1']")
    page.keyboard.press("Escape")
    page.wait_for_selector(f"{DETAIL}[data-row='-1']", state="attached")
    state = kernel_state(page)
    assert state["row"] == -1 and state["selected"] == [ROW]


def test_keyboard_moves_a_visible_focus_opens_picks_and_escapes(lab, artifacts):
    page = lab
    run_and_read(page, 3, "SELECTED ")
    page.wait_for_selector(f"{MAP_TOP}[data-n-selected='2']")
    assert page.get_attribute(GRID, "data-mode") == "query" and len(grid_rows(page)) == 20
    page.locator(f"{GRID} .cs-cell").first.focus()
    page.keyboard.press("ArrowRight")
    now = focused(page)
    assert now["cell"] and now["index"] == 1
    assert now["visible"] and now["outline"][0] == "solid" and now["outline"][1] == "3px"
    assert now["outline"][2] == now["accent"]
    per_row = page.eval_on_selector_all(
        f"{GRID} .cs-cell", "cs => cs.filter(c => c.offsetTop === cs[0].offsetTop).length")
    page.keyboard.press("ArrowDown")
    now = focused(page)
    assert now["index"] == 1 + per_row and now["visible"]
    page.locator(f"{GRID} .cs-cells").screenshot(path=str(artifacts / "grid-focus.png"))
    row = now["row"]

    # letters are not the notebook's commands while the grid has the focus (b: add a cell below)
    cells = page.locator(f"{NOTEBOOK} .jp-Cell").count()
    page.keyboard.press("b")
    page.wait_for_timeout(300)
    assert page.locator(f"{NOTEBOOK} .jp-Cell").count() == cells and focused(page)["row"] == row

    # i opens the details and the view takes the focus; Escape closes them and gives it back
    page.keyboard.press("i")
    wait_detail(page, row)
    page.wait_for_function("() => !!document.activeElement.closest('.cirscope-detail')")
    page.keyboard.press("Escape")
    page.wait_for_selector(f"{DETAIL}[data-row='-1']", state="attached")
    page.wait_for_function("row => document.activeElement.dataset.row === String(row)", arg=row)
    assert page.get_attribute(MAP_TOP, "data-n-selected") == "2"  # that Escape only closed the view

    # Escape in the grid, the view closed: the selection is cleared
    page.keyboard.press("Escape")
    page.wait_for_selector(f"{MAP_TOP}[data-n-selected='0']")
    assert focused(page)["row"] == row  # the notebook did not take the focus

    # Space opens the details too, without picking the image
    page.keyboard.press(" ")
    wait_detail(page, row)
    page.keyboard.press("Escape")
    page.wait_for_selector(f"{DETAIL}[data-row='-1']", state="attached")
    state = kernel_state(page)
    assert state["reference"] == -1 and state["selected"] == [] and state["row"] == -1

    # Enter picks the focused image as the reference; the focus stays in the grid
    page.locator(f"{GRID} .cs-cell[data-row='{row}']").focus()
    before = grid_version(page)
    page.keyboard.press("Enter")
    page.wait_for_selector(f"{PANEL}[data-reference='{row}']")
    wait_grid_after(page, before)
    assert row not in grid_rows(page)
    assert focused(page)["cell"]
    assert page.locator(f"{NOTEBOOK} .jp-mod-editMode").count() == 0  # Enter did not open a cell's editor
    assert kernel_state(page)["reference"] == row


# ---------------------------------------------------------------------- Notebook 7
NB7 = f"""\
import numpy as np
import cirscope as cs

gallery = cs.datasets.shapes(60, seed=1)
meta = gallery.metadata
meta["caption"] = {INJECTION!r}
vectors = np.random.default_rng(0).normal(size=(60, 16)).astype("float32")
space = cs.Space.from_embeddings(cs.Gallery(meta, gallery.sources), vectors, model_name="random")
ex = cs.Explorer(space, map="pca", k=12)
ex"""


def test_detail_view_in_notebook7(jupyter_server, browser, artifacts):
    write_notebook(jupyter_server.root / "detail7.ipynb", [NB7])
    context = browser.new_context(viewport={"width": 1300, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    dialogs: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"{exc}\n{exc.stack}"))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    try:
        page.goto(f"{jupyter_server.url}/notebooks/detail7.ipynb")
        page.wait_for_selector("#main-panel .jp-Notebook .jp-Cell .jp-InputArea-editor", timeout=90_000)
        assert page.locator(".jp-LabShell").count() == 0  # Notebook 7's own shell
        run_cell(page, 0, attempts=6)
        page.wait_for_selector(f"{GRID}[data-version][data-rendering='false'] .cs-cell", timeout=120_000)
        cell = page.locator(f"{GRID} .cs-cell").nth(3)
        row = int(cell.get_attribute("data-row"))
        cell.hover()
        cell.locator(".cs-info").click()
        wait_detail(page, row)
        values = page.eval_on_selector_all(f"{DETAIL} .cs-detail-fields td", "tds => tds.map(td => td.textContent)")
        assert INJECTION in values and f"shape-1-{row:05d}" in values
        assert page.locator(f"{DETAIL} .cs-neighbor").count() == 8
        page.locator(f"{DETAIL} button[data-action='reference']").click()
        page.wait_for_selector(f".cirscope-query[data-reference='{row}']", timeout=30_000)
        page.keyboard.press("Escape")
        page.wait_for_selector(f"{DETAIL}[data-row='-1']", state="attached")
        page.screenshot(path=str(artifacts / "detail-notebook7.png"))
        assert dialogs == [] and widget_errors(errors) == []
    finally:
        context.close()

"""Curation in JupyterLab, driven in Chromium: tag the selection, history undo/redo, filter, save a view,
restore it into a new Explorer, same state.

One page load: the first Explorer is tagged, queried, filtered and saved through its bar;
a second Explorer over a fresh space (same gallery, no tags) restores the view through its
bar; the two are compared in the DOM and in the kernel.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.ui._harness import NOTEBOOK, cell_output, run_cell, wait_for_kernel, widget_errors, write_notebook

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]

TAG = "<img src=x onerror=\"alert('tag')\"> \"dup\" ü"

SETUP = """\
import json, warnings
warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
import cirscope as cs

gallery = cs.datasets.shapes(120, seed=0)
space = cs.Space(gallery, cs.Embedder.toy(), progress=False)
ex = cs.Explorer(space, map="pca", color_by="color", reference=2)
ex.map.selected = [3, 4, 5]

# a busy kernel: the first text search stays busy after answering, so the browser's next
# change (the method) waits in the widget manager while Undo is clicked
import time
search, slow = ex.query.binding._search, [True]
def busy_search():
    hits = search()
    if slow[0] and ex.query.text == "make it blue":
        slow[0] = False
        time.sleep(2.0)
    return hits
ex.query.binding._search = busy_search
ex"""

SECOND = """\
space2 = cs.Space.from_embeddings(gallery, space.image_embeddings, embedder=space.embedder)
ex2 = cs.Explorer(space2, map="pca")
ex2"""

CHECK = """\
print("STATE " + json.dumps({
    "same": ex2.curator.capture() == ex.curator.capture(),
    "tags": space2.tags.counts(),
    "text": ex.query.text,
    "results": ex.query.results,
    "results2": ex2.query.results,
    "colors": sorted(set(gallery.metadata["color"].iloc[ex.query.results])),
}))"""

EX = ".cirscope-explorer"


def _wait_text(page: Any, selector: str, text: str, timeout: float = 30_000) -> None:
    page.wait_for_function(
        "([sel, text]) => { const e = document.querySelector(sel); return e && e.textContent.includes(text); }",
        arg=[selector, text], timeout=timeout,
    )


def _read_state(page: Any) -> dict:
    before = cell_output(page, 2)
    run_cell(page, 2)
    page.wait_for_function(
        # the output area, not the cell: the cell's source holds "STATE " too
        """([nb, before]) => { const o = document.querySelectorAll(`${nb} .jp-Cell`)[2].querySelector('.jp-OutputArea');
                               return o && o.innerText.includes('STATE ') && o.innerText !== before; }""",
        arg=[NOTEBOOK, before], timeout=60_000,
    )
    text = cell_output(page, 2)
    return json.loads(text[text.index("STATE ") + 6:].strip().splitlines()[0])


def _panel(page: Any, i: int) -> dict:
    return page.evaluate(
        """(i) => { const ex = document.querySelectorAll('.cirscope-explorer')[i];
            const q = ex.querySelector('.cirscope-query');
            const value = (role) => q.querySelector(`[data-role='${role}']`).value;
            return { reference: q.dataset.reference, text: value('text'), method: value('method'), k: value('k'),
                     a: q.querySelector("input[data-param='a']").value,
                     grid: [...ex.querySelectorAll('.cirscope-grid .cs-cell')].map(c => Number(c.dataset.row)),
                     chips: [...ex.querySelectorAll('.cirscope-curation .cs-chip')].map(c => c.textContent),
                     filter: ex.querySelector("[data-role='filter-column']").value,
                     filterValue: ex.querySelector("[data-role='filter-value']").value }; }""",
        i,
    )


def _screenshot(page: Any, explorer: Any, path: Any) -> None:
    """The query panel (with its history buttons) and the curation bar under it."""
    explorer.locator(".cirscope-curation").scroll_into_view_if_needed()
    top = explorer.locator(".cirscope-query").bounding_box()
    bar = explorer.locator(".cirscope-curation").bounding_box()
    x0, y0 = min(top["x"], bar["x"]), top["y"]
    x1, y1 = max(top["x"] + top["width"], bar["x"] + bar["width"]), bar["y"] + bar["height"]
    page.screenshot(path=str(path), clip={"x": x0, "y": y0, "width": x1 - x0, "height": y1 - y0})


def test_tag_history_filter_save_and_restore_in_a_new_explorer(jupyter_server, browser, artifacts, update_docs):
    write_notebook(jupyter_server.root / "curation.ipynb", [SETUP, SECOND, CHECK])
    context = browser.new_context(viewport={"width": 1400, "height": 1300})
    page = context.new_page()
    errors: list[str] = []
    dialogs: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"{exc}\n{exc.stack}"))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    try:
        page.goto(f"{jupyter_server.url}/lab/tree/curation.ipynb?reset")
        page.wait_for_selector(f"{NOTEBOOK} .jp-Cell .jp-InputArea-editor", timeout=90_000)
        wait_for_kernel(page, timeout=90_000)
        run_cell(page, 0)
        page.wait_for_selector(f"{EX} .cirscope-curation[data-ready='true']", timeout=150_000)
        page.wait_for_selector(f"{EX} .cirscope-grid[data-version]", timeout=30_000)
        first = page.locator(EX).nth(0)
        bar = first.locator(".cirscope-curation")

        # tag the map's selection with a hostile name: it shows as text, nothing runs
        bar.locator("[data-role='tag-name']").fill(TAG)
        bar.locator("[data-role='tag-selection']").click()
        page.wait_for_function("(tag) => [...document.querySelectorAll('.cirscope-curation .cs-chip')]"
                               ".some(c => c.textContent === `${tag} (3)`)", arg=TAG, timeout=30_000)
        assert page.evaluate("() => document.querySelectorAll('img[src=\"x\"]').length") == 0

        # a query typed in the panel, a method chosen; undo and redo walk back and forth
        panel = first.locator(".cirscope-query")
        text = panel.locator("[data-role='text']")
        text.fill("make it blue")
        text.press("Enter")
        page.wait_for_function("() => document.querySelector('.cirscope-query .cs-status').textContent"
                               ".includes('results')", timeout=30_000)
        panel.locator("[data-role='method']").select_option("slerp")
        page.wait_for_selector(f"{EX} .cirscope-query[data-method='slerp']")
        panel.locator("[data-role='undo']").click()
        page.wait_for_selector(f"{EX} .cirscope-query[data-method='pdv']", timeout=30_000)
        panel.locator("[data-role='undo']").click()
        page.wait_for_function("() => document.querySelector(\".cirscope-query [data-role='text']\").value === ''",
                               timeout=30_000)
        panel.locator(".cs-formula").click()  # focus inside the panel, not a text box: the keys work
        page.keyboard.press("Control+Shift+Z")
        page.wait_for_function("() => document.querySelector(\".cirscope-query [data-role='text']\").value "
                               "=== 'make it blue'", timeout=30_000)
        page.keyboard.press("Control+Shift+Z")
        page.wait_for_selector(f"{EX} .cirscope-query[data-method='slerp']", timeout=30_000)
        panel.locator("[data-role='redo']:disabled").wait_for(timeout=30_000)  # can_redo follows the search

        # a filter: the search ranks only red images
        bar.locator("[data-role='filter-column']").select_option("color")
        bar.locator("[data-role='filter-value']").fill("red")
        bar.locator("[data-role='filter-apply']").click()
        _wait_text(page, f"{EX} .cirscope-curation .cs-message", "Filter color == red")

        # save the view through the bar
        bar.locator("[data-role='view-path']").fill("view.json")
        bar.locator("[data-role='save-view']").click()
        _wait_text(page, f"{EX} .cirscope-curation .cs-message", "Saved the view to")
        assert (jupyter_server.root / "view.json").is_file()
        _screenshot(page, first, artifacts / "curation.png")
        if update_docs is not None:
            (update_docs / "screenshots").mkdir(exist_ok=True)
            _screenshot(page, first, update_docs / "screenshots" / "curation.png")

        # a second Explorer over a fresh space restores it through its own bar
        run_cell(page, 1)
        page.wait_for_function("() => document.querySelectorAll(\".cirscope-curation[data-ready='true']\")"
                               ".length === 2", timeout=150_000)
        second = page.locator(EX).nth(1)
        second.locator("[data-role='view-path']").fill("view.json")
        second.locator("[data-role='restore-view']").click()
        page.wait_for_function("() => { const m = document.querySelectorAll('.cirscope-curation .cs-message')[1];"
                               " return m && m.textContent.startsWith('Restored the view'); }", timeout=30_000)
        page.wait_for_function("() => document.querySelectorAll('.cirscope-query')[1].dataset.method === 'slerp'")
        page.wait_for_timeout(1000)  # the grid's last update
        a, b = _panel(page, 0), _panel(page, 1)
        assert b == a, (a, b)
        assert a["text"] == "make it blue" and a["filter"] == "color" and a["filterValue"] == "red"
        assert f"{TAG} (3)" in b["chips"]

        state = _read_state(page)
        assert state["same"] and state["tags"] == {TAG.strip(): 3}
        assert state["results2"] == state["results"] and state["colors"] == ["red"]
        assert dialogs == [] and widget_errors(errors) == []
    finally:
        page.screenshot(path=str(artifacts / "curation-last.png"))
        context.close()

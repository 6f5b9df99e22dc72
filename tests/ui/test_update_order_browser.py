"""The grid shows an update whole whatever order its traits arrive in (marimo's model, in Chromium).

marimo's anywidget model applies an update one trait at a time and fires each ``change:``
event at once (``updateAndEmitDiffs`` in marimo's front end), in the order of the message's
keys, which ipywidgets takes from a Python set of changed names: so ``version`` may come
before the ``rows`` and ``ids`` of the same update. The model below does exactly that; the
grid's real module is loaded from a page playwright serves itself.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.ui.conftest import REPO

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

PAGE = """<!doctype html><html><body><div id="host"></div>
<script type="module">
import grid from "./neighbor_grid.js";
window.enc = (a) => ({dtype: "int32", shape: [a.length], data: new DataView(new Int32Array(a).buffer)});
const handlers = {};
let state = {rows: enc([1, 2, 3]), ids: ["a1", "a2", "a3"], thumbnails: [], metadata: [], notes: [], scores: null,
             reference: -1, mode: "query", show_toggle: false, n_selected: 0, selection_label: "", title: "first",
             thumb_size: 96, max_height: 0, version: 1, feedback: false, marks: {}, feedback_method: "rocchio",
             feedback_status: ""};
window.renders = 0;
const model = {
  get: (k) => state[k], set: (k, v) => { state = {...state, [k]: v}; }, save_changes() {}, send() {},
  on: (name, cb) => { (handlers[name] ||= new Set()).add(cb); },
  off: (name, cb) => { handlers[name]?.delete(cb); },
};
// as marimo's model does: each key is set and its change event fired before the next key is set
window.applyUpdate = (update) => {
  for (const [k, v] of Object.entries(update)) {
    if (state[k] === v) continue;
    state = {...state, [k]: v};
    handlers[`change:${k}`]?.forEach((cb) => cb(v));
  }
};
grid.render({ model, el: document.getElementById("host") });
new MutationObserver(() => { window.renders++; })
  .observe(document.querySelector(".cirscope-grid"), {attributes: true, attributeFilter: ["data-version"]});
</script></body></html>"""


def _cells(page: Any) -> list[tuple[str, str]]:
    return page.locator(".cirscope-grid .cs-cell").evaluate_all("els => els.map(e => [e.dataset.row, e.dataset.id])")


def test_grid_takes_an_update_whose_version_comes_before_its_rows(browser):
    module = (REPO / "js" / "neighbor_grid.js").read_text()
    page = browser.new_page()

    def serve(route: Any) -> None:
        if route.request.url.endswith("/neighbor_grid.js"):
            route.fulfill(status=200, content_type="text/javascript", body=module)
        else:
            route.fulfill(status=200, content_type="text/html", body=PAGE)

    page.route("http://cirscope.invalid/**", serve)
    try:
        page.goto("http://cirscope.invalid/page.html")
        page.wait_for_selector(".cirscope-grid[data-version='1'][data-rendering='false']")
        assert _cells(page) == [["1", "a1"], ["2", "a2"], ["3", "a3"]]
        page.evaluate("() => { window.renders = 0; }")

        # version and title first, the rows and ids after them: the order that left the old rows on show
        page.evaluate("""() => applyUpdate({version: 2, title: "second", rows: enc([7, 8]), ids: ["b7", "b8"],
                                             scores: {dtype: "float32", shape: [2],
                                                      data: new DataView(new Float32Array([0.9, 0.5]).buffer)}})""")
        page.wait_for_selector(".cirscope-grid[data-version='2'][data-rendering='false']")
        assert _cells(page) == [["7", "b7"], ["8", "b8"]]
        assert page.locator(".cirscope-grid .cs-cell .cs-score").all_text_contents() == ["0.900", "0.500"]
        assert page.locator(".cirscope-grid span.cs-label").first.text_content() == "second"

        # the other order (version last, as in JupyterLab's model) also ends with the new rows
        page.evaluate("() => applyUpdate({rows: enc([4]), ids: ['c4'], scores: null, version: 3})")
        page.wait_for_selector(".cirscope-grid[data-version='3'][data-rendering='false']")
        assert _cells(page) == [["4", "c4"]]
        # one render per update, not one per changed trait
        page.wait_for_timeout(200)
        assert page.evaluate("() => window.renders") == 2

        # rows alone (Python's `grid.rows = ...` sends them before the full update) draw nothing yet:
        # drawn with the old ids and thumbnails, the cell cache would keep the wrong images
        page.evaluate("() => applyUpdate({rows: enc([5, 6])})")
        page.wait_for_timeout(200)
        assert _cells(page) == [["4", "c4"]]
        page.evaluate("() => applyUpdate({ids: ['d5', 'd6'], version: 4})")
        page.wait_for_selector(".cirscope-grid[data-version='4'][data-rendering='false']")
        assert _cells(page) == [["5", "d5"], ["6", "d6"]]
    finally:
        page.close()

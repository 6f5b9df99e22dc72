"""A view that no kernel answers says it is a snapshot (what a page saved with widget state shows).

The grid's real module is loaded in Chromium from a page playwright serves itself and drawn with a model that
holds saved state, as the HTML widget manager of an exported page gives it: one whose
messages reach no kernel, and one that answers the view's ping as a kernel does.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.ui.conftest import REPO

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

PAGE = """<!doctype html><html><body><div id="host"></div>
<script type="module">
import grid from "./neighbor_grid.js";
const handlers = {};
const state = {rows: null, ids: [], thumbnails: [], metadata: [], scores: null, reference: -1, mode: "query",
               show_toggle: false, n_selected: 0, selection_label: "", title: "saved", thumb_size: 96,
               max_height: 0, version: 3};
const answers = new URLSearchParams(location.search).has("kernel");
const model = {
  get: (k) => state[k], set: (k, v) => { state[k] = v; }, save_changes() {},
  on: (name, cb) => { (handlers[name] ||= new Set()).add(cb); },
  off: (name, cb) => { handlers[name]?.delete(cb); },
  send(msg) {  // no kernel: nothing comes back; with ?kernel the ping is answered
    if (answers && msg.event === "ping") setTimeout(() => handlers["msg:custom"]?.forEach((cb) => cb({event: "pong"})), 50);
  },
};
grid.render({ model, el: document.getElementById("host") });
</script></body></html>"""


def _open(browser: Any, query: str) -> Any:
    """The page, served by playwright itself at a made-up origin (module scripts do not load from file:)."""
    module = (REPO / "js" / "neighbor_grid.js").read_text()
    page = browser.new_page()

    def serve(route: Any) -> None:
        if route.request.url.split("?")[0].endswith("/neighbor_grid.js"):
            route.fulfill(status=200, content_type="text/javascript", body=module)
        else:
            route.fulfill(status=200, content_type="text/html", body=PAGE)

    page.route("http://cirscope.invalid/**", serve)
    page.goto("http://cirscope.invalid/page.html" + query)
    return page


def test_a_view_no_kernel_answers_shows_the_snapshot_note(browser):
    page = _open(browser, "")
    try:
        page.wait_for_selector(".cirscope-grid[data-version='3']")
        assert page.locator(".cs-live-note:visible").count() == 0  # not before the wait is over
        note = page.locator(".cirscope-grid .cs-live-note")
        note.wait_for(state="visible", timeout=15_000)
        assert note.inner_text().startswith("Snapshot: no Python kernel answers")
        assert "run it" in note.inner_text()
        assert page.get_attribute(".cirscope-grid", "data-kernel") == "none"
    finally:
        page.close()


def test_a_view_a_kernel_answers_shows_no_note(browser):
    page = _open(browser, "?kernel")
    try:
        page.wait_for_selector(".cirscope-grid[data-kernel='live']", timeout=15_000)
        page.wait_for_timeout(5_500)  # past the wait: still no note
        assert page.locator(".cs-live-note:visible").count() == 0
    finally:
        page.close()

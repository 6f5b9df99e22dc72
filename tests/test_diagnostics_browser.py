"""The DiagnosticsPanel in JupyterLab 4, driven in Chromium: a click on a bar reaches the kernel as shown_rows."""

from __future__ import annotations

import json
import os

import pytest

from tests.ui._harness import (
    JupyterServer,
    cell_output,
    chromium_path,
    launch_chromium,
    run_cell,
    wait_for_kernel,
    write_notebook,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]

SETUP = """\
import json
import cirscope as cs
space = cs.Space(cs.datasets.shapes(300, seed=0), cs.Embedder.toy(), progress=False)
panel = cs.DiagnosticsPanel(space, attribute="color")
panel"""

CHECK = """\
print("STATE " + json.dumps({"rows": panel.shown_rows, "selection": panel.selection,
                             "labels": [str(x) for x in panel.figure.data[0].x],
                             "expect": {lab: panel.result.rows_for(label=lab, k=10).tolist()
                                        for lab in panel.figure.data[0].x}}))"""


def test_clicking_a_skew_bar_sets_shown_rows(tmp_path):
    chromium = chromium_path()
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("Debian's chromium is required in CI (apt-get install chromium)")
        pytest.skip("chromium is not installed")
    from playwright.sync_api import sync_playwright

    server = JupyterServer(tmp_path / "home", env={"CIRSCOPE_CACHE_DIR": str(tmp_path / "cache")}).start()
    try:
        write_notebook(server.root / "panel.ipynb", [SETUP, CHECK])
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright, chromium)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(f"{server.url}/lab/tree/panel.ipynb")
                page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
                wait_for_kernel(page)
                run_cell(page, 0)
                chart = ".cirscope-diagnostics .js-plotly-plot"
                page.wait_for_selector(f"{chart} .main-svg", timeout=120_000)
                # the first trace: Skew@10 per colour, in label order; click the 8th bar (yellow)
                bars = page.locator(f"{chart} .barlayer .trace").first.locator(".point path")
                assert bars.count() == 8
                bars.nth(7).click(force=True)
                page.wait_for_function(
                    "() => document.querySelector('.cirscope-diagnostics').innerText.includes('Showing')",
                    timeout=30_000)
                run_cell(page, 1)
                page.wait_for_function(
                    "() => document.querySelectorAll('.jp-Notebook .jp-Cell')[1]"
                    ".querySelector('.jp-OutputArea').innerText.includes('STATE')", timeout=60_000)
                state = json.loads(cell_output(page, 1).split("STATE ", 1)[1].strip())
            finally:
                browser.close()
    finally:
        server.stop()
    assert state["labels"][7] == "yellow"
    assert state["selection"]["key"] == {"label": "yellow", "k": 10}
    assert state["rows"] == state["expect"]["yellow"] and state["rows"]

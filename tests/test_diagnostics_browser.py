"""The DiagnosticsPanel in JupyterLab 4, driven in Chromium: a click on a bar reaches the kernel as shown_rows."""

from __future__ import annotations

import json

import pytest

from tests.ui._harness import NOTEBOOK, cell_output, run_cell, wait_for_kernel, write_notebook

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


def test_clicking_a_skew_bar_sets_shown_rows(jupyter_server, browser):
    write_notebook(jupyter_server.root / "panel.ipynb", [SETUP, CHECK])
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(f"{jupyter_server.url}/lab/tree/panel.ipynb?reset")  # no restored tabs
        page.wait_for_selector(f"{NOTEBOOK} .jp-Cell", timeout=60_000)
        wait_for_kernel(page)
        run_cell(page, 0)
        chart = f"{NOTEBOOK} .cirscope-diagnostics .js-plotly-plot"
        page.wait_for_selector(f"{chart} .main-svg", timeout=120_000)
        # the result in words and the reading of every number, as text above the chart
        panel_el = f"{NOTEBOOK} .cirscope-diagnostics"
        assert page.locator(f"{panel_el} .cs-readings summary").inner_text() == "Reading the numbers"
        assert "random rankings" in page.locator(f"{panel_el} .cs-sentence").inner_text()
        assert page.locator(f"{panel_el} .cs-readings li").count() >= 3
        # the first trace: Skew@10 per colour, in label order; click the 8th bar (yellow)
        bars = page.locator(f"{chart} .barlayer .trace").first.locator(".point path")
        assert bars.count() == 8
        bars.nth(7).click(force=True)
        page.wait_for_function(
            "sel => document.querySelector(sel).innerText.includes('Showing')",
            arg=f"{NOTEBOOK} .cirscope-diagnostics", timeout=30_000)
        run_cell(page, 1)
        page.wait_for_function(
            "sel => document.querySelectorAll(sel)[1].querySelector('.jp-OutputArea').innerText.includes('STATE')",
            arg=f"{NOTEBOOK} .jp-Cell", timeout=60_000)
        state = json.loads(cell_output(page, 1).split("STATE ", 1)[1].strip())
    finally:
        page.close()
    assert state["labels"][7] == "yellow"
    assert state["selection"]["key"] == {"label": "yellow", "k": 10}
    assert state["rows"] == state["expect"]["yellow"] and state["rows"]

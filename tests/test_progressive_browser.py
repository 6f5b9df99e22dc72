"""The progressive map in JupyterLab 4, driven in Chromium: the Explorer opens on PCA, its drawing starts
the UMAP fit in the kernel, the map shows "UMAP n% · ETA", then the UMAP layout replaces the PCA one and a
selection made meanwhile is kept. One page load, one kernel."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.ui._harness import NOTEBOOK, cell_output, run_cell, wait_for_kernel, widget_errors, write_notebook

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(400)]

DOCS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
MAP = f"{NOTEBOOK} .cirscope-map"
STATUS = f"{MAP} .cs-map-status"
TOP = f"{MAP} canvas.cs-top"

SETUP = """\
import json
import numpy as np
import cirscope as cs
space = cs.Space(cs.datasets.shapes(240, seed=11), cs.Embedder.toy(), progress=False)
ex = cs.Explorer(space, color_by="color")
ex"""

CHECK = """\
print("STATE " + json.dumps({
    "kind": ex.map.map_status_kind, "status": ex.map.map_status,
    "umap": bool(np.array_equal(ex.map.coords, space.map("umap"))),
    "selected": [int(r) for r in ex.map.selected],
}))"""


def _position(page, row: int) -> list[float]:
    return page.eval_on_selector(TOP, "(c, row) => c.pointPosition(row)", row)


def test_umap_replaces_the_pca_preview_in_the_browser(jupyter_server, browser):
    write_notebook(jupyter_server.root / "progressive.ipynb", [SETUP, CHECK])
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"{exc}\n{exc.stack}"))
    try:
        page.goto(f"{jupyter_server.url}/lab/tree/progressive.ipynb?reset")
        page.wait_for_selector(f"{NOTEBOOK} .jp-Cell .jp-InputArea-editor", timeout=90_000)
        wait_for_kernel(page, timeout=90_000)
        run_cell(page, 0)
        page.wait_for_selector(f"{TOP}[data-n-points='240']", timeout=150_000)
        # progress from the kernel's background fit, polled on its event loop
        page.wait_for_function(
            "sel => { const s = document.querySelector(sel);"
            " return s && !s.hidden && /^UMAP \\d+% · (ETA \\d+ s|computing)$/.test(s.textContent); }",
            arg=STATUS, timeout=60_000)
        seen = page.locator(STATUS).inner_text()
        if os.environ.get("CIRSCOPE_UPDATE_SCREENSHOTS") == "1":
            page.locator(f"{MAP} .cs-stage").screenshot(path=str(DOCS / "progressive-map.png"))
        before = _position(page, 0)
        # a box selection over the whole stage while UMAP computes
        box = page.locator(TOP).bounding_box()
        page.mouse.move(box["x"] + 2, box["y"] + 2)
        page.mouse.down()
        for i in range(1, 9):
            page.mouse.move(box["x"] + 2 + (box["width"] - 4) * i / 8, box["y"] + 2 + (box["height"] - 4) * i / 8)
        page.mouse.up()
        page.wait_for_function("sel => Number(document.querySelector(sel).dataset.nSelected) === 240",
                               arg=TOP, timeout=30_000)
        # the swap: a short note, every point moved, the selection kept
        page.wait_for_function(
            "sel => { const s = document.querySelector(sel); return s && s.dataset.kind === 'note' && !s.hidden; }",
            arg=STATUS, timeout=240_000)
        note = page.locator(STATUS).inner_text()
        after = _position(page, 0)
        n_selected = int(page.get_attribute(TOP, "data-n-selected"))
        run_cell(page, 1)
        page.wait_for_function(
            "sel => document.querySelectorAll(sel)[1].querySelector('.jp-OutputArea').innerText.includes('STATE')",
            arg=f"{NOTEBOOK} .jp-Cell", timeout=60_000)
        state = json.loads(cell_output(page, 1).split("STATE ", 1)[1].strip())
    finally:
        page.close()
    assert seen.startswith("UMAP ") and "%" in seen
    assert "UMAP layout" in note and "PCA" in note
    assert after != before
    assert n_selected == 240
    assert state["kind"] == "note" and state["umap"] is True
    assert state["selected"] == list(range(240))
    assert widget_errors(errors) == []

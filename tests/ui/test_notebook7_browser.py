"""Smoke test: the Explorer renders and reacts in Notebook 7 (``/notebooks/...``), not only in JupyterLab."""

from __future__ import annotations

import pytest

from tests.ui._harness import run_cell, widget_errors, write_notebook

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]

# no model needed: seeded random embeddings, image queries only
SETUP = """\
import numpy as np
import cirscope as cs

gallery = cs.datasets.shapes(60, seed=1)
vectors = np.random.default_rng(0).normal(size=(60, 16)).astype("float32")
space = cs.Space.from_embeddings(gallery, vectors, model_name="random")
ex = cs.Explorer(space, map="pca", k=12)
ex"""


def test_explorer_in_notebook7(jupyter_server, browser, artifacts):
    write_notebook(jupyter_server.root / "notebook7.ipynb", [SETUP])
    context = browser.new_context(viewport={"width": 1300, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"{exc}\n{exc.stack}"))
    try:
        page.goto(f"{jupyter_server.url}/notebooks/notebook7.ipynb")
        page.wait_for_selector("#main-panel .jp-Notebook .jp-Cell .jp-InputArea-editor", timeout=90_000)
        assert page.locator(".jp-LabShell").count() == 0  # really Notebook 7's single-document shell
        run_cell(page, 0, attempts=6)
        page.wait_for_selector(".cirscope-map canvas.cs-top[data-n-points='60']", timeout=120_000)
        page.wait_for_selector(".cirscope-grid[data-version][data-rendering='false']", timeout=30_000)
        assert page.locator(".cirscope-grid .cs-cell").count() == 12
        assert page.locator(".cirscope-query").count() == 1

        cell = page.locator(".cirscope-grid .cs-cell").nth(3)
        row = cell.get_attribute("data-row")
        cell.click()
        page.wait_for_selector(f".cirscope-query[data-reference='{row}']", timeout=30_000)
        page.wait_for_selector(".cirscope-grid .cs-cell .cs-score", timeout=30_000)
        assert row not in page.eval_on_selector_all(".cirscope-grid .cs-cell", "els => els.map(e => e.dataset.row)")
        page.screenshot(path=str(artifacts / "notebook7.png"))
        assert widget_errors(errors) == []
    finally:
        context.close()

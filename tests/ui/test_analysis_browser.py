"""The analysis views in JupyterLab, driven in Chromium: grid marks and Refine, skew along the slider, paraphrases.

One notebook, one page load: an Explorer with ``analysis=True`` on the shapes world (toy
model) with a composed query. The test acts through the browser (mark buttons, the r key,
Refine, the alpha slider, the Paraphrases tab) and compares the DOM with the kernel's results.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.ui._harness import NOTEBOOK, cell_output, run_cell, wait_for_kernel, widget_errors, write_notebook

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]

SETUP = """\
import json, warnings
warnings.filterwarnings("ignore")
import cirscope as cs

space = cs.Space(cs.datasets.shapes(300, seed=0), cs.Embedder.toy(), progress=False)
ex = cs.Explorer(space, map="pca", color_by="color", reference=0, text="make it blue", analysis=True)
ex.analysis.attribute = "color"
ex"""

CHECK = """\
_last = ex.controller.feedback.last
print("STATE " + json.dumps({
    "marks": ex.grid.marks,
    "grid": [int(r) for r in ex.grid.rows],
    "notes": list(ex.grid.notes),
    "changes": None if _last is None else {str(k): v for k, v in _last.rank_changes().items()},
    "round": None if _last is None else _last.round,
    "alpha": ex.query.alpha_t,
    "curve_version": ex.analysis.curve_version,
    "paraphrase": ex.analysis.paraphrase_rows,
    "texts": ex.analysis.paraphrase_texts,
}))"""

GRID = ".cirscope-grid"
VIEW = ".cirscope-analysis"
CHART = f"{VIEW} svg.cs-bias-chart"
HOSTILE = '<img src=x onerror="window.__cirscope_xss = 1">'


def kernel_state(page: Any) -> dict:
    before = cell_output(page, 1)
    run_cell(page, 1)
    page.wait_for_function(
        """([nb, before]) => { const o = document.querySelectorAll(`${nb} .jp-Cell`)[1].querySelector('.jp-OutputArea');
                                return o && o.innerText.includes('STATE ') && o.innerText !== before; }""",
        arg=[NOTEBOOK, before], timeout=60_000)
    text = cell_output(page, 1)
    return json.loads(text[text.index("STATE ") + 6:].strip().splitlines()[0])


def save(page: Any, selector: str, name: str, artifacts: Any, update_docs: Any) -> None:
    page.locator(selector).screenshot(path=str(artifacts / name))
    if update_docs is not None:  # the README's copy, as a palette PNG (small)
        from PIL import Image

        (update_docs / "screenshots").mkdir(exist_ok=True)
        Image.open(artifacts / name).convert("RGB").quantize(colors=128).save(update_docs / "screenshots" / name,
                                                                               optimize=True)


def test_marks_refine_skew_chart_and_paraphrases(jupyter_server, browser, artifacts, update_docs):
    write_notebook(jupyter_server.root / "analysis.ipynb", [SETUP, CHECK])
    context = browser.new_context(viewport={"width": 1500, "height": 1300})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"{exc}\n{exc.stack}"))
    try:
        page.goto(f"{jupyter_server.url}/lab/tree/analysis.ipynb?reset")
        page.wait_for_selector(f"{NOTEBOOK} .jp-Cell .jp-InputArea-editor", timeout=90_000)
        wait_for_kernel(page, timeout=90_000)
        run_cell(page, 0)
        page.wait_for_selector(f"{CHART}[data-points='26']", timeout=150_000)
        page.wait_for_selector(f"{GRID}[data-count='20']", timeout=30_000)

        # ---- bias along the slider: a slider move only moves the marker
        version = page.get_attribute(CHART, "data-version")
        x_before = page.get_attribute(f"{CHART} line.cs-marker", "data-x")
        assert page.locator(f"{VIEW} select").input_value() == "color"
        slider = page.locator(".cirscope-query input[data-param='alpha_t']")
        slider.focus()
        slider.press("End")  # alpha_t = 2
        page.wait_for_function("sel => document.querySelector(sel).dataset.alpha === '2'", arg=CHART, timeout=30_000)
        assert page.get_attribute(CHART, "data-version") == version  # the curve was not computed again
        assert float(page.get_attribute(f"{CHART} line.cs-marker", "data-x")) > float(x_before)
        assert "MaxSkew@50" in page.locator(f"{VIEW} .cs-bias-status").inner_text()
        slider.press("Home")
        page.wait_for_function("sel => document.querySelector(sel).dataset.alpha === '-0.5'", arg=CHART, timeout=30_000)
        save(page, VIEW, "slider_bias.png", artifacts, update_docs)
        # back to the default alpha through the kernel-free path: type the value into the slider
        slider.fill("1")
        page.wait_for_function("sel => document.querySelector(sel).dataset.alpha === '1'", arg=CHART, timeout=30_000)
        page.wait_for_selector(f"{GRID}[data-rendering='false']")

        # ---- relevance marks: buttons and the r / n keys; a mark click does not pick a reference
        cells = page.locator(f"{GRID} .cs-cell")
        shown = [int(r) for r in page.eval_on_selector_all(f"{GRID} .cs-cell", "els => els.map(e => e.dataset.row)")]
        cells.nth(5).locator(".cs-mark[data-mark='relevant']").click()
        cells.nth(0).locator(".cs-mark[data-mark='not relevant']").click()
        cells.nth(1).focus()
        page.keyboard.press("n")
        page.wait_for_function("sel => document.querySelectorAll(`${sel} .cs-cell[data-mark]:not([data-mark=''])`).length === 3",
                               arg=GRID, timeout=30_000)
        assert page.get_attribute(".cirscope-query", "data-reference") == "0"
        state = kernel_state(page)
        assert state["marks"] == {str(shown[5]): "relevant", str(shown[0]): "not relevant", str(shown[1]): "not relevant"}
        version = int(page.get_attribute(GRID, "data-version"))
        page.locator(f"{GRID} button.cs-refine").click()
        page.wait_for_function("([sel, v]) => Number(document.querySelector(sel).dataset.version) > v",
                               arg=[GRID, version], timeout=60_000)
        page.wait_for_selector(f"{GRID}[data-rendering='false']")
        assert page.locator(f"{GRID} span.cs-label").first.inner_text().startswith("Refined · Rocchio · round 1")
        notes = page.eval_on_selector_all(f"{GRID} .cs-cell .cs-note", "els => els.map(e => e.textContent)")
        state = kernel_state(page)
        assert state["round"] == 1 and notes == state["notes"]
        rows = [int(r) for r in page.eval_on_selector_all(f"{GRID} .cs-cell", "els => els.map(e => e.dataset.row)")]
        assert rows == state["grid"]
        assert state["changes"][str(shown[5])] == f"6 -> {rows.index(shown[5]) + 1}"  # was 6th, now higher
        assert rows.index(shown[5]) < 5
        assert all(re.fullmatch(r"(\d+|-) -> (\d+|-)", n) for n in notes if n)
        assert "relevant" in page.locator(f"{GRID} .cs-feedback-status").inner_text()
        save(page, GRID, "feedback.png", artifacts, update_docs)

        # ---- paraphrases: on request, with the user's own (hostile) wording shown as text
        page.locator(f"{VIEW} button[data-tab='paraphrase']").click()
        page.locator(f"{VIEW} textarea").fill(f"paint it blue\n{HOSTILE}")
        page.locator(f"{VIEW} button.cs-compute").click()
        page.wait_for_selector(f"{VIEW} table.cs-paraphrase-table[data-rows='6']", timeout=60_000)
        state = kernel_state(page)
        assert [r["method"] for r in state["paraphrase"]] == ["image", "text", "sum", "weimocir", "slerp", "pdv"]
        table = page.locator(f"{VIEW} table.cs-paraphrase-table tr[data-method='image'] td").all_inner_texts()
        assert table[:2] == ["image", "1.000"]  # the image ignores the words
        assert state["texts"] == ["make it blue", "paint it blue", HOSTILE]
        items = page.eval_on_selector_all(f"{VIEW} details li", "els => els.map(e => e.textContent)")
        assert items[-1] == HOSTILE and page.evaluate("window.__cirscope_xss") is None
        save(page, VIEW, "paraphrase.png", artifacts, update_docs)
        assert widget_errors(errors) == []
    finally:
        page.screenshot(path=str(artifacts / "analysis-last.png"))
        context.close()

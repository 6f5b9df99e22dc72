"""Metadata filters in the browser: the Explorer's sidebar in JupyterLab 4 (one page load) and in Notebook 7.

A click on a bar adds a chip, the map dims the rows outside the filter, the grid and the
searches keep to the rows inside, another column's counts change, a histogram bin adds a
range, and the chip's × removes the filter. The expected rows and counts are computed here
from the same seeded gallery, independently of the kernel.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pytest

from tests.ui._harness import NOTEBOOK, cell_output, run_cell, wait_for_kernel, widget_errors, write_notebook
from tests.ui.test_compare_browser import save_shot

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]

INJECTION = '<img src=x onerror="window.__cirscope_xss = 1">'
N = 300

SETUP = f"""\
import json, warnings
warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
import numpy as np
import cirscope as cs

shapes = cs.datasets.shapes({N}, seed=0)
meta = shapes.metadata
meta["brightness"] = np.random.default_rng(0).random({N}).round(3)
meta["note"] = ["plain", {INJECTION!r}] * {N // 2}
space = cs.Space(cs.Gallery(meta, shapes.sources), cs.Embedder.toy(), progress=False)
ex = cs.Explorer(space, map="pca", color_by="color", k=12)
ex"""

CHECK = """print("STATE " + json.dumps({"filters": ex.filters, "grid": list(ex.grid.rows)}))"""

FILTERS = ".cirscope-filters"
GRID = ".cirscope-grid"
BASE = ".cirscope-map canvas.cs-base"
TOP = ".cirscope-map canvas.cs-top"


def local_metadata() -> Any:
    """The notebook's metadata, made here from the same seeds."""
    import cirscope as cs

    meta = cs.datasets.shapes(N, seed=0).metadata
    meta["brightness"] = np.random.default_rng(0).random(N).round(3)
    return meta


def chart(page: Any, column: str) -> Any:
    return page.locator(f"{FILTERS} .cs-chart-col[data-column='{column}']")


def bar(page: Any, column: str, label: str) -> Any:
    labels = page.locator(".cs-bar-label", has_text=re.compile(f"^{re.escape(label)}$"))
    return chart(page, column).locator(".cs-bar", has=labels)


def counts(page: Any, column: str) -> list[int]:
    return [int(c) for c in chart(page, column).get_attribute("data-counts").split(",")]


def grid_rows(page: Any) -> list[int]:
    return page.eval_on_selector_all(f"{GRID} .cs-cell", "els => els.map(e => Number(e.dataset.row))")


def wait_version(page: Any, selector: str, before: int) -> None:
    page.wait_for_function(
        "([sel, before]) => { const e = document.querySelector(sel); return e && Number(e.dataset.version) > before; }",
        arg=[selector, before], timeout=30_000)


def settle_grid(page: Any) -> None:
    page.wait_for_selector(f"{GRID}[data-rendering='false']", timeout=30_000)
    page.wait_for_timeout(400)
    page.wait_for_selector(f"{GRID}[data-rendering='false']", timeout=30_000)


def pixel_alphas(page: Any, rows: list[int]) -> list[int]:
    """The base layer's opacity at the centre of each row's point."""
    return page.eval_on_selector(
        BASE,
        """(c, rows) => {
            const top = c.parentElement.querySelector('canvas.cs-top');
            const ctx = c.getContext('2d'), dpr = c.width / c.clientWidth;
            return rows.map((r) => { const p = top.pointPosition(r);
                return ctx.getImageData(Math.round(p[0] * dpr), Math.round(p[1] * dpr), 1, 1).data[3]; });
        }""",
        rows,
    )


def kernel_state(page: Any) -> dict:
    before = cell_output(page, 1)
    run_cell(page, 1)
    page.wait_for_function(
        """([nb, before]) => { const o = document.querySelectorAll(`${nb} .jp-Cell`)[1].querySelector('.jp-OutputArea');
                               return o && o.innerText.includes('STATE ') && o.innerText !== before; }""",
        arg=[NOTEBOOK, before], timeout=60_000)
    text = cell_output(page, 1)
    return json.loads(text[text.index("STATE ") + 6:].strip().splitlines()[0])


def test_explorer_filters_cross_filter_in_jupyterlab(jupyter_server, browser, artifacts, update_docs):
    from cirscope.space._filters import FilterColumn
    from cirscope.widgets._filter_charts import range_of_bins

    meta = local_metadata()
    is_red = (meta["color"] == "red").to_numpy()
    write_notebook(jupyter_server.root / "filters.ipynb", [SETUP, CHECK])
    context = browser.new_context(viewport={"width": 1400, "height": 1500})  # the whole Explorer in view
    page = context.new_page()
    errors: list[str] = []
    dialogs: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"{exc}\n{exc.stack}"))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    try:
        page.goto(f"{jupyter_server.url}/lab/tree/filters.ipynb?reset")
        page.wait_for_selector(f"{NOTEBOOK} .jp-Cell .jp-InputArea-editor", timeout=90_000)
        wait_for_kernel(page, timeout=90_000)
        run_cell(page, 0)
        page.wait_for_selector(f"{TOP}[data-n-points='{N}']", timeout=150_000)
        page.wait_for_selector(f"{FILTERS}[data-ready='true']", timeout=30_000)
        settle_grid(page)
        page.locator(".cirscope-explorer").scroll_into_view_if_needed()
        assert page.get_attribute(FILTERS, "data-matching") == str(N)
        shape_labels = chart(page, "shape").locator(".cs-bar-label").all_inner_texts()
        totals = meta["shape"].value_counts()
        assert counts(page, "shape") == [int(totals[s]) for s in shape_labels]
        # a value from user data is shown as text: the markup is the label, nothing ran
        assert INJECTION in chart(page, "note").locator(".cs-bar-label").all_inner_texts()

        # click "red": a chip, the map dims the others, the grid keeps to red, shape counts change
        version = int(page.get_attribute(FILTERS, "data-version"))
        bar(page, "color", "red").click()
        wait_version(page, FILTERS, version)
        page.wait_for_selector(f"{FILTERS} .cs-chip[data-column='color']", timeout=30_000)
        assert "color: red" in page.locator(f"{FILTERS} .cs-chip").inner_text()
        page.wait_for_selector(f"{BASE}[data-n-dimmed='{int((~is_red).sum())}']", timeout=30_000)
        assert page.get_attribute(FILTERS, "data-matching") == str(int(is_red.sum()))
        red_shapes = meta.loc[is_red, "shape"].value_counts()
        assert counts(page, "shape") == [int(red_shapes.get(s, 0)) for s in shape_labels]
        assert counts(page, "shape") != [int(totals[s]) for s in shape_labels]
        page.wait_for_timeout(300)  # a frame for the map
        inside = pixel_alphas(page, np.flatnonzero(is_red)[:15].tolist())
        outside = pixel_alphas(page, np.flatnonzero(~is_red)[:30].tolist())
        assert min(inside) == 255 and sum(a < 255 for a in outside) > 20, (inside, outside)
        settle_grid(page)
        rows = grid_rows(page)
        assert len(rows) == 12 and is_red[rows].all()
        assert kernel_state(page)["filters"] == {"color": ["red"]}

        # a neighbour search from a clicked thumbnail stays inside the filter
        version = int(page.get_attribute(GRID, "data-version"))
        page.locator(f"{GRID} .cs-cell").nth(2).click()
        wait_version(page, GRID, version)
        page.wait_for_selector(f"{GRID} .cs-cell .cs-score", timeout=30_000)
        settle_grid(page)
        rows = grid_rows(page)
        assert len(rows) == 12 and is_red[rows].all()

        # a drag across histogram bins: a range on a second column, AND with the colour
        col = FilterColumn.of("brightness", meta["brightness"])
        in_bin = col.mask(range_of_bins(col, 2, 11))
        bins = chart(page, "brightness").locator(".cs-bin")
        # the grid click above may have scrolled the page (the focused thumbnail is kept in view):
        # bring the chart back, clear of the notebook's toolbar, before dragging on it
        chart(page, "brightness").evaluate("el => el.scrollIntoView({block: 'center'})")
        (x0, y0), (x1, _) = [(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2)
                             for b in (bins.nth(2).bounding_box(), bins.nth(11).bounding_box())]
        page.mouse.move(x0, y0)
        page.mouse.down()
        for i in range(1, 11):
            page.mouse.move(x0 + (x1 - x0) * i / 10, y0)
        page.mouse.up()
        page.wait_for_selector(f"{FILTERS} .cs-chip[data-column='brightness']", timeout=30_000)
        page.wait_for_selector(f"{FILTERS}[data-matching='{int((is_red & in_bin).sum())}']", timeout=30_000)
        assert chart(page, "brightness").locator(".cs-bin.cs-on").count() == 10
        settle_grid(page)
        rows = grid_rows(page)
        assert rows and (is_red & in_bin)[rows].all()
        page.locator(".cirscope-explorer").scroll_into_view_if_needed()
        save_shot(page.locator(".cirscope-explorer").screenshot(), "filters.png", artifacts, update_docs)

        # × removes the filters one by one: the counts and the map come back
        page.locator(f"{FILTERS} .cs-chip[data-column='color'] button").click()
        page.wait_for_selector(f"{FILTERS}[data-matching='{int(in_bin.sum())}']", timeout=30_000)
        assert page.locator(f"{FILTERS} .cs-chip").count() == 1
        page.locator(f"{FILTERS} .cs-chip[data-column='brightness'] button").click()
        page.wait_for_selector(f"{BASE}[data-n-dimmed='0']", timeout=30_000)
        page.wait_for_selector(f"{FILTERS}[data-matching='{N}']", timeout=30_000)
        assert page.locator(f"{FILTERS} .cs-chip").count() == 0
        assert counts(page, "shape") == [int(totals[s]) for s in shape_labels]

        # the filters fold away and the map takes their room; the button brings them back
        fold = page.locator(".cirscope-explorer [data-role='fold-filters']")
        assert fold.get_attribute("aria-expanded") == "true"
        # beside the map (a wide Explorer) the map gets wider; above it (a narrow one) the map moves up
        narrow = "cs-narrow" in page.locator(".cirscope-explorer .cs-pane-explore").get_attribute("class")
        side = "top" if narrow else "width"
        before = page.locator(".cirscope-explorer .cs-slot-map").bounding_box()[{"top": "y", "width": "width"}[side]]
        fold.click()
        page.wait_for_selector(FILTERS, state="hidden", timeout=10_000)
        assert fold.get_attribute("aria-expanded") == "false"
        page.wait_for_function(
            """([side, before]) => {
                const r = document.querySelector('.cirscope-explorer .cs-slot-map').getBoundingClientRect();
                return side === 'top' ? r.top < before - 100 : r.width > before + 100;
            }""", arg=[side, before], timeout=10_000)
        fold.click()
        page.wait_for_selector(FILTERS, state="visible", timeout=10_000)
        assert fold.get_attribute("aria-expanded") == "true"
        assert page.get_attribute(FILTERS, "data-matching") == str(N)
        assert page.evaluate("() => window.__cirscope_xss") is None and dialogs == []
        assert widget_errors(errors) == []
    except Exception:
        page.screenshot(path=str(artifacts / "filters-failed.png"))
        raise
    finally:
        context.close()


SETUP7 = """\
import numpy as np
import cirscope as cs

gallery = cs.datasets.shapes(60, seed=1)
vectors = np.random.default_rng(0).normal(size=(60, 16)).astype("float32")
space = cs.Space.from_embeddings(gallery, vectors, model_name="random")
ex = cs.Explorer(space, map="pca", k=12)
ex"""


def test_explorer_filters_in_notebook7(jupyter_server, browser, artifacts):
    import cirscope as cs

    meta = cs.datasets.shapes(60, seed=1).metadata
    write_notebook(jupyter_server.root / "filters7.ipynb", [SETUP7])
    context = browser.new_context(viewport={"width": 1300, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"{exc}\n{exc.stack}"))
    try:
        page.goto(f"{jupyter_server.url}/notebooks/filters7.ipynb")
        page.wait_for_selector("#main-panel .jp-Notebook .jp-Cell .jp-InputArea-editor", timeout=90_000)
        run_cell(page, 0, attempts=6)
        page.wait_for_selector(f"{FILTERS}[data-ready='true']", timeout=120_000)
        page.wait_for_selector(f"{GRID}[data-version][data-rendering='false']", timeout=30_000)
        first = chart(page, "size").locator(".cs-bar").first
        size = first.locator(".cs-bar-label").inner_text()
        first.click()
        page.wait_for_selector(f"{FILTERS} .cs-chip[data-column='size']", timeout=30_000)
        wanted = (meta["size"] == size).to_numpy()
        page.wait_for_selector(f"{FILTERS}[data-matching='{int(wanted.sum())}']", timeout=30_000)
        page.wait_for_selector(f"{BASE}[data-n-dimmed='{int((~wanted).sum())}']", timeout=30_000)
        settle_grid(page)
        rows = grid_rows(page)
        assert rows and wanted[rows].all()
        assert widget_errors(errors) == []
    except Exception:
        page.screenshot(path=str(artifacts / "filters7-failed.png"))
        raise
    finally:
        context.close()

"""The query's path and two models compared, in JupyterLab 4 driven in Chromium (one page load).

One notebook builds an Explorer on the shapes world (300 items, toy model) with a composed
query and a second space of the same gallery (a random projection of the toy embeddings:
another "model"). The map draws the query's path; Play sweeps alpha in the browser and
ends by setting the panel's alpha to its maximum, after which the grid shows what
``space.search`` returns there. On the Compare tab, a box drawn on one map selects the same
images on the other.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.ui._harness import NOTEBOOK, cell_output, run_cell, wait_for_kernel, widget_errors, write_notebook

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(400)]

SETUP = """\
import json, warnings
warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
import numpy as np
import cirscope as cs

space = cs.Space(cs.datasets.shapes(300, seed=0), cs.Embedder.toy(), progress=False)
proj = space.image_embeddings @ np.random.default_rng(0).normal(size=(space.dim, 16))
other = cs.Space.from_embeddings(space.gallery, proj, model_name="projected <b>16-d</b>")
ex = cs.Explorer(space, map="pca", color_by="color", reference=0, text="make it blue", k=12, compare=other)
ex.map.play_ms = 1500
ex"""

CHECK = """\
_p = ex.query
_q = cs.ComposedQuery(_p.reference, _p.text)
print("STATE " + json.dumps({
    "params": _p.params(),
    "grid": [int(r) for r in ex.grid.rows],
    "search": space.search(_q, method=_p.method, k=_p.k, **_p.params())["row"].tolist(),
    "path_last": ex.controller.path.rows_for(len(ex.controller.path) - 1).tolist(),
    "compare_a": [int(r) for r in ex.compare.map_a.selected],
    "compare_b": [int(r) for r in ex.compare.map_b.selected],
}))"""

MAP = ".cs-slot-map .cirscope-map"
MAP_A = ".cs-slot-map_a .cirscope-map"
MAP_B = ".cs-slot-map_b .cirscope-map"
GRID = ".cirscope-grid"


def kernel_state(page: Any) -> dict:
    before = cell_output(page, 1)
    run_cell(page, 1)
    page.wait_for_function(
        """([notebook, before]) => {
            const out = document.querySelectorAll(`${notebook} .jp-Cell`)[1].querySelector('.jp-OutputArea');
            return out && out.innerText.includes('STATE ') && out.innerText !== before;
        }""",
        arg=[NOTEBOOK, before],
        timeout=60_000,
    )
    text = cell_output(page, 1)
    return json.loads(text[text.index("STATE ") + 6:].splitlines()[0])


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


@pytest.fixture(scope="module")
def page(jupyter_server, browser, artifacts) -> Any:
    write_notebook(jupyter_server.root / "compare.ipynb", [SETUP, CHECK])
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"{exc}\n{exc.stack}"))
    page.goto(f"{jupyter_server.url}/lab/tree/compare.ipynb?reset")
    page.wait_for_selector(f"{NOTEBOOK} .jp-Cell .jp-InputArea-editor", timeout=90_000)
    wait_for_kernel(page, timeout=90_000)
    run_cell(page, 0)
    try:
        page.wait_for_selector(f"{MAP} canvas.cs-top[data-path-steps='21']", timeout=180_000)
    except Exception:
        page.screenshot(path=str(artifacts / "compare-failed-to-load.png"))
        raise
    page.page_errors = errors  # type: ignore[attr-defined]
    yield page
    context.close()


def test_path_play_and_linked_compare_maps(page, artifacts, update_docs):
    # the path: drawn on the explorer's map, with a Play button
    play = page.locator(f"{MAP} button[data-role='play']")
    assert play.is_visible() and "Play" in play.inner_text()
    before = kernel_state(page)
    assert before["params"]["alpha_t"] == 1.0
    page.locator(".cirscope-explorer").scroll_into_view_if_needed()
    play.click()
    page.wait_for_selector(f"{MAP}[data-playing='true']", timeout=5_000)
    page.wait_for_selector(f"{MAP}[data-playing='false']", timeout=20_000)
    trail = page.get_attribute(f"{MAP} canvas.cs-top", "data-play-trail").split(",")
    assert len(trail) >= 10 and trail[0] != trail[-1]  # the highlighted top row moved along the path
    assert page.get_attribute(f"{MAP} canvas.cs-top", "data-play-step") == "20"
    # the end of Play set alpha in Python: the grid and the map follow, as space.search has them
    page.wait_for_function(
        "([sel, n]) => document.querySelector(sel).dataset.nHighlighted === String(n)",
        arg=[f"{MAP} canvas.cs-top", 12],
    )
    state = kernel_state(page)
    assert state["params"]["alpha_t"] == state["params"]["alpha_i"] == 2.0
    page.wait_for_function(
        "([sel, rows]) => Array.from(document.querySelectorAll(sel)).map(e => Number(e.dataset.row)).join() === rows",
        arg=[f"{GRID} .cs-cell", ",".join(map(str, state["search"]))],
        timeout=30_000,
    )
    assert state["grid"] == state["search"] == state["path_last"]
    assert trail[-1] == str(state["path_last"][0])  # Play ended on the path's last step, as Python has it
    save_shot(page.locator(".cs-slot-map").screenshot(), "query_path.png", artifacts, update_docs)

    # the Compare tab: a box on one map selects the same images on the other
    page.locator(".cirscope-explorer .cs-tabs button[data-tab='compare']").click()
    page.wait_for_selector(f"{MAP_B} canvas.cs-top[data-n-points='300']")
    top_a = page.locator(f"{MAP_A} canvas.cs-top")
    top_a.scroll_into_view_if_needed()
    box = top_a.bounding_box()
    x0, y0 = box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.2
    page.mouse.move(x0, y0)
    page.mouse.down()
    for i in range(1, 11):
        page.mouse.move(x0 + box["width"] * 0.05 * i, y0 + box["height"] * 0.05 * i)
    page.mouse.up()
    n_a = int(page.get_attribute(f"{MAP_A} canvas.cs-top", "data-n-selected"))
    assert n_a > 0
    page.wait_for_function(
        "([sel, n]) => document.querySelector(sel).dataset.nSelected === String(n)",
        arg=[f"{MAP_B} canvas.cs-top", n_a],
        timeout=20_000,
    )
    state = kernel_state(page)
    assert state["compare_a"] == state["compare_b"] and len(state["compare_b"]) == n_a
    # a row of the most-changed table picks that image on both maps; user text stays text
    first = page.locator(".cirscope-compare .cs-compare-changed tr[data-row]").first
    row = first.get_attribute("data-row")
    first.click()
    page.wait_for_selector(f".cirscope-compare[data-focus='{row}']")
    assert "projected <b>16-d</b>" in page.locator(".cirscope-compare .cs-slot-map_b .cs-label").first.inner_text()
    assert page.locator(".cirscope-compare b").count() == 0
    page.wait_for_function(
        "(sel) => document.querySelector(sel).dataset.nHighlighted === '10'", arg=f"{MAP_B} canvas.cs-top"
    )
    save_shot(page.locator(".cirscope-compare").screenshot(), "compare.png", artifacts, update_docs)
    assert widget_errors(page.page_errors) == []
    if os.environ.get("CI"):
        assert all((artifacts / n).stat().st_size <= 150_000 for n in ("query_path.png", "compare.png"))

"""The kernel-free report in Chromium with the network blocked (one page load for every check).

The page is ``file://`` with every other route aborted, and every request the page makes is
recorded: only the file itself may be fetched (its images are ``data:`` URIs). On it the map
pans and zooms, hovering a point shows its thumbnail and id, moving a slider shows what
``space.search`` returns at that grid point, and the saved-query menu switches queries. The
gallery's ids and captions, the title and a query text are hostile strings: no dialog opens
and they show literally.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import cirscope as cs
from cirscope.widgets._standalone_data import SCORE_SCALE
from tests.hostile_strings import HOSTILE
from tests.test_standalone import HOSTILE_TEXT, hostile_page, hostile_space  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300),
              pytest.mark.filterwarnings("ignore::cirscope.embedding._unknown_words.UnknownWordsWarning")]

GRID = ".cirscope-report .cirscope-grid"


def shown(page) -> tuple[list[int], list[str], list[str]]:
    """The results on display: rows, scores (as printed) and ids."""
    rows = page.eval_on_selector_all(f"{GRID} .cs-cell", "els => els.map(e => Number(e.dataset.row))")
    scores = page.eval_on_selector_all(f"{GRID} .cs-score", "els => els.map(e => e.textContent)")
    ids = page.eval_on_selector_all(f"{GRID} .cs-id", "els => els.map(e => e.textContent)")
    return rows, scores, ids


def expect(page, space, query, method, **params) -> list[int]:
    """The shown results are ``space.search``'s at these settings: rows, scores and ids (returns the rows)."""
    df = space.search(query, method=method, k=6, **params)
    rows, scores, ids = shown(page)
    assert rows == df["row"].tolist(), (method, params)
    # printed to 3 decimals from a cosine stored in int16 steps of 1/SCORE_SCALE: within half a digit plus a step
    assert len(scores) == len(df) and all(len(x.split(".")[-1]) == 3 for x in scores)
    step = 1 / SCORE_SCALE
    assert np.all(np.abs(np.array(scores, dtype=float) - df["score"].to_numpy()) <= 0.0005 + step + 1e-9), scores
    assert ids == df["id"].tolist()
    return rows


def stage_view(page) -> dict[str, float]:
    return page.eval_on_selector(".cirscope-report .cs-stage", "e => ({scale: +e.dataset.scale, cx: +e.dataset.cx, "
                                 "cy: +e.dataset.cy, frames: +e.dataset.frames})")


def test_the_report_works_offline_in_chromium(hostile_page, hostile_space, browser, artifacts, update_docs,  # noqa: F811
                                              tmp_path):
    url = hostile_page.as_uri()
    requests: list[str] = []
    blocked: list[str] = []
    dialogs: list[str] = []
    errors: list[str] = []

    def route(r):
        if r.request.url == url or r.request.url.startswith("data:"):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.on("request", lambda r: requests.append(r.url))
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.route("**/*", route)
        page.goto(url)
        page.wait_for_selector("#cs-report[data-ready='true']", timeout=30_000)

        # hostile text shows literally: the title, the query menu, the query text, the ids
        assert page.title() == HOSTILE[2] and page.text_content(".cirscope-report h1") == HOSTILE[2]
        options = page.eval_on_selector_all(".cs-chooser option", "els => els.map(e => e.textContent)")
        assert options[0] == f"1. {HOSTILE[0]}" and len(options) == 3
        assert HOSTILE_TEXT in page.eval_on_selector_all(".cs-texts dd", "els => els.map(e => e.textContent)")
        assert page.evaluate("() => document.querySelectorAll('img[src=\"x\"], a, svg, b, i, iframe').length") == 0

        # the first query opens at its start (alpha_t 1, alpha_i 1, beta 0.75)
        space = hostile_space
        composed = cs.ComposedQuery(2, HOSTILE_TEXT)
        seen = [expect(page, space, composed, "pdv", alpha_t=1.0, alpha_i=1.0, beta=0.75)]
        srcs = page.eval_on_selector_all(f"{GRID} img", "els => els.map(e => e.getAttribute('src'))")
        assert len(srcs) == 6 and all(s.startswith("data:image/webp;base64,") for s in srcs)

        # a slider move shows what space.search gives at that grid point
        page.focus("input[data-param='beta']")
        page.keyboard.press("ArrowRight")
        seen.append(expect(page, space, composed, "pdv", alpha_t=1.0, alpha_i=1.0, beta=1.0))
        page.focus("input[data-param='alpha_t']")
        page.keyboard.press("Home")
        seen.append(expect(page, space, composed, "pdv", alpha_t=0.0, alpha_i=1.0, beta=1.0))
        assert page.eval_on_selector("input[data-param='alpha_t'] + output", "e => e.textContent") == "0"
        page.keyboard.press("End")
        seen.append(expect(page, space, composed, "pdv", alpha_t=2.0, alpha_i=1.0, beta=1.0))
        assert len({tuple(rows) for rows in seen}) > 1  # the sliders do change the results

        # pan (drag) and zoom (wheel) change the view
        box = page.locator(".cirscope-report canvas.cs-top").bounding_box()
        cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        before = stage_view(page)
        page.mouse.move(cx, cy)
        page.mouse.down()
        page.mouse.move(cx + 80, cy + 40, steps=4)
        page.mouse.up()
        page.wait_for_function("f => +document.querySelector('.cirscope-report .cs-stage').dataset.frames > f",
                               arg=before["frames"])
        panned = stage_view(page)
        assert panned["scale"] == before["scale"]
        assert panned["cx"] == pytest.approx(before["cx"] - 80 / before["scale"], rel=1e-3)
        assert panned["cy"] == pytest.approx(before["cy"] + 40 / before["scale"], rel=1e-3)
        page.mouse.wheel(0, -400)
        page.wait_for_function("s => +document.querySelector('.cirscope-report .cs-stage').dataset.scale > s",
                               arg=panned["scale"])
        assert stage_view(page)["scale"] > 1.5 * panned["scale"]

        page.click(".cirscope-report .cirscope-map button")  # Reset view: back to the fitted view
        page.wait_for_function("s => +document.querySelector('.cirscope-report .cs-stage').dataset.scale === s",
                               arg=before["scale"])
        assert stage_view(page)["cx"] == before["cx"]

        # hovering a point shows its thumbnail and its id
        row = shown(page)[0][0]
        x, y = page.evaluate("r => window.cirscopeReport.pointOnPage(r)", row)
        assert box["x"] < x < box["x"] + box["width"] and box["y"] < y < box["y"] + box["height"]
        page.mouse.move(x, y)
        page.wait_for_selector(".cirscope-report .cs-card", state="visible", timeout=5_000)
        hovered = int(page.eval_on_selector(".cirscope-report .cs-stage", "e => e.dataset.hovered"))
        assert page.text_content(".cirscope-report .cs-card .cs-card-title") == space.gallery.ids[hovered]
        assert page.eval_on_selector(".cirscope-report .cs-card img", "e => e.src").startswith("data:image/webp")
        page.screenshot(path=str(artifacts / "standalone-hostile.png"))

        # the menu switches query: a slerp query at its start, then a text query
        page.select_option(".cs-chooser select", "1")
        assert page.eval_on_selector_all(".cirscope-report input[type=range]", "els => els.map(e => e.dataset.param)") \
            == ["a"]
        expect(page, space, cs.ComposedQuery(4, "make it red"), "slerp", a=0.8)
        page.select_option(".cs-chooser select", "2")
        expect(page, space, HOSTILE[1], "text")
        assert page.locator(".cirscope-report input[type=range]").count() == 0
        page.select_option(".cs-chooser select", "0")  # back: the sliders kept their positions
        expect(page, space, composed, "pdv", alpha_t=2.0, alpha_i=1.0, beta=1.0)

        page.wait_for_timeout(200)
        assert dialogs == [] and errors == [] and blocked == []
        assert [r for r in requests if not r.startswith("data:")] == [url]  # nothing but the file and data: URIs
    finally:
        page.close()
    if update_docs is not None:  # the README's picture: a plain shapes world, not the hostile one
        write_screenshot(browser, tmp_path, update_docs / "screenshots" / "standalone.png")


def write_screenshot(browser, folder, target) -> None:
    space = cs.Space(cs.datasets.shapes(600, seed=1), cs.Embedder.toy(), cache=False, progress=False)
    path = cs.to_html(space, folder / "shapes.html", [{"reference": 11, "text": "make it blue"}], k=12,
                      map="pca", progress=False)
    page = browser.new_page(viewport={"width": 1200, "height": 860})
    try:
        page.goto(path.as_uri())
        page.wait_for_selector("#cs-report[data-ready='true']")
        x, y = page.evaluate("r => window.cirscopeReport.pointOnPage(r)", 40)
        page.mouse.move(x, y)
        page.wait_for_selector(".cirscope-report .cs-card", state="visible")
        target.parent.mkdir(parents=True, exist_ok=True)
        shot = Image.open(io.BytesIO(page.screenshot(type="png", full_page=False)))
        small = shot.convert("RGB").quantize(colors=256, method=Image.Quantize.MAXCOVERAGE, dither=Image.Dither.NONE)
        small.save(target, optimize=True)  # a small file for the README
    finally:
        page.close()

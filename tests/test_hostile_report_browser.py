"""The audit report of a hostile gallery, opened in Chromium: no script of the data runs, its text shows
literally, and a click on a chart still shows the images behind it (with their real ids)."""

from __future__ import annotations

import pytest

from tests.hostile_strings import HOSTILE_LABELS, displayed_by_plotly
from tests.test_hostile_report import hostile_report, hostile_space  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]


def test_hostile_report_in_chromium(hostile_report, tmp_path, browser):  # noqa: F811
    path = hostile_report.to_html(tmp_path / "hostile.html")
    n_charts = len(hostile_report.results)
    skew = hostile_report["skew"]
    fig = skew.figure()
    point = next(p for p in range(len(fig.data[0].x)) if len(skew.rows_at(fig, 0, p)))
    all_ids = hostile_report.space.gallery.ids
    expected_ids = [str(all_ids[r]) for r in skew.rows_at(fig, 0, point)[:24]]

    dialogs: list[str] = []
    errors: list[str] = []
    requests: list[str] = []

    def route(r):
        if r.request.url.startswith(("file://", "data:")):
            r.continue_()
        else:
            requests.append(r.request.url)
            r.abort()

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.route("**/*", route)
        page.goto(path.as_uri())
        page.wait_for_function(
            "n => document.querySelectorAll('.js-plotly-plot .main-svg').length >= 2 * n", arg=n_charts,
            timeout=60_000)
        assert page.evaluate("typeof CS_LINKS") == "object" and page.evaluate("typeof CS_IDS") == "object"
        # the labels are the skew chart's categories, shown as text (plotly shows a newline as a space)
        ticks = page.eval_on_selector_all("#fig-skew .xaxislayer-above .xtick text", "els => els.map(e => e.textContent)")
        for label in HOSTILE_LABELS[:8]:
            assert displayed_by_plotly(label) in ticks, (label, ticks)
        # none of plotly's pseudo-HTML from the data became markup: no links, no styled spans, no images
        assert page.evaluate("() => document.querySelectorAll('.main-svg a').length") == 0
        assert page.evaluate("() => document.querySelectorAll('tspan[style*=\"60px\"]').length") == 0
        assert page.evaluate("() => document.querySelectorAll('img[src=\"x\"], svg svg').length") == 0
        # the hover label of a bar shows the label literally
        bar = page.locator("#fig-skew .barlayer .trace").first.locator(".point path").nth(point)
        bar.hover(force=True)
        page.wait_for_selector("#fig-skew .hoverlayer .hovertext", timeout=10_000)
        hover = page.eval_on_selector("#fig-skew .hoverlayer .hovertext", "e => e.textContent")
        assert displayed_by_plotly(str(skew.figure().data[0].customdata[point][0])) in hover
        # a click shows the images behind the bar, captioned with their real ids
        bar.click(force=True)
        page.wait_for_selector("#fig-skew-images figure", timeout=10_000)
        captions = page.eval_on_selector_all("#fig-skew-images figcaption", "els => els.map(e => e.textContent)")
        assert captions == expected_ids
        assert page.locator("#fig-skew-images img").count() == len(expected_ids)
        # the summary table shows the attribute's name as text
        assert hostile_report.info["attribute"] in page.locator("body").text_content()
        page.wait_for_timeout(300)
        assert dialogs == [] and errors == [] and requests == []
    finally:
        page.close()

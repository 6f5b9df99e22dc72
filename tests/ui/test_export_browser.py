"""An Explorer notebook exported to HTML opens with the network blocked and shows its snapshot.

The notebook is run headless (nbclient, widget state stored, as ``jupyter nbconvert
--execute`` does) and exported with the README's offline recipe (``jupyter nbconvert
--to html --ClearMetadataPreprocessor.enabled=True``): without widget state the page shows
each Explorer's static ``text/html`` snapshot, which needs no script. Chromium opens the file
with every network request refused.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.ui._clients import INJECTED_ROW, INJECTION, explorer_code

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]


def _export(tmp_path) -> Any:
    import nbclient
    import nbformat
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    code = explorer_code() + f"\nex.query.reference = {INJECTED_ROW}\nex.query.text = 'make it blue'\nex"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbclient.NotebookClient(nb, timeout=180, kernel_name="python3").execute()
    assert "application/vnd.jupyter.widget-state+json" in nb.metadata["widgets"]  # state stored
    html, _ = HTMLExporter(config=Config({"ClearMetadataPreprocessor": {"enabled": True}})).from_notebook_node(nb)
    path = tmp_path / "explorer.html"
    path.write_text(html, encoding="utf-8")
    return path


def test_exported_page_shows_the_snapshot_offline(browser, tmp_path, artifacts, monkeypatch):
    monkeypatch.setenv("CIRSCOPE_CACHE_DIR", str(tmp_path / "cache"))
    path = _export(tmp_path)
    context = browser.new_context(viewport={"width": 1200, "height": 1000})
    blocked: list[str] = []

    def refuse(route: Any) -> None:
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", refuse)
    page = context.new_page()
    try:
        page.goto(path.as_uri())
        note = page.locator(".cirscope-snapshot .cs-snapshot-note")
        note.wait_for(timeout=30_000)
        assert note.inner_text().startswith("Snapshot:") and "run it" in note.inner_text()
        assert blocked, "the page asked for nothing from the network: the test would not show it works offline"
        # the map, the reference and the top 20 drawn from data: URIs
        assert page.locator(".cirscope-snapshot svg circle").count() == 120
        images = page.locator(".cirscope-snapshot img")
        assert images.count() == 21
        assert images.evaluate_all("els => els.every(e => e.complete && e.naturalWidth > 0)")
        assert page.locator(".cirscope-snapshot .cs-snapshot-grid figure").count() == 20
        assert "Top 20" in page.locator(".cirscope-snapshot").inner_text()
        # the hostile caption is text
        assert page.locator(".cirscope-snapshot .cs-snapshot-caption").text_content() == INJECTION
        assert page.locator('img[src="x"]').count() == 0
        assert page.evaluate("() => window.__cirscope_xss") is None
        page.screenshot(path=str(artifacts / "export-offline.png"), full_page=True)
    finally:
        context.close()

"""A notebook saved with an Explorer and its widget state, exported by ``cirscope export``, opens offline.

The notebook is run headless (nbclient stores the widget state, as saving from JupyterLab
does) and written to disk; ``cirscope export`` turns it into a page. Chromium opens the file
with every request that leaves it refused and recorded: the page must ask for nothing and
show the Explorer's labelled snapshot, with the hostile caption as text. For contrast, plain
``jupyter nbconvert --to html`` of the same notebook is checked to hold only the widget view
and to load its widget manager from a CDN (what the command exists to avoid).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.ui._clients import INJECTED_ROW, INJECTION, Offline, explorer_code, save_screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]


def _saved_notebook(tmp_path) -> Any:
    import nbclient
    import nbformat

    code = explorer_code() + f"\nex.query.reference = {INJECTED_ROW}\nex.query.text = 'make it blue'\nex"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# An Explorer, saved"),
                                         nbformat.v4.new_code_cell(code)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbclient.NotebookClient(nb, timeout=180, kernel_name="python3").execute()
    assert "application/vnd.jupyter.widget-state+json" in nb.metadata["widgets"]  # state stored
    path = tmp_path / "explorer.ipynb"
    nbformat.write(nb, path)
    return path


def test_exported_page_shows_the_snapshot_offline(browser, tmp_path, artifacts, update_docs, monkeypatch, capsys):
    from nbconvert import HTMLExporter

    from cirscope.cli import main

    monkeypatch.setenv("CIRSCOPE_CACHE_DIR", str(tmp_path / "cache"))
    notebook = _saved_notebook(tmp_path)

    # plain nbconvert keeps the widget view only, with loaders from a CDN: blank offline
    plain, _ = HTMLExporter().from_filename(str(notebook))
    assert "application/vnd.jupyter.widget-view+json" in plain and "cirscope-snapshot" not in plain
    assert "https://unpkg.com/" in plain

    page_path = tmp_path / "explorer.html"
    assert main(["export", str(notebook), "--out", str(page_path)]) == 0
    assert "1 widget snapshot" in capsys.readouterr().out
    html = page_path.read_text(encoding="utf-8")
    assert "application/vnd.jupyter.widget-view+json" not in html and "<script src=" not in html

    context = browser.new_context(viewport={"width": 1200, "height": 1000})
    offline = Offline(context)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(page_path.as_uri())
        note = page.locator(".cirscope-snapshot .cs-snapshot-note")
        note.wait_for(timeout=30_000)
        assert note.inner_text().startswith("Snapshot:") and "run it" in note.inner_text()
        assert note.is_visible()
        # the map, the reference and the top 20 drawn from data: URIs
        assert page.locator(".cirscope-snapshot svg circle").count() == 120
        images = page.locator(".cirscope-snapshot img")
        assert images.count() == 21
        assert images.evaluate_all("els => els.every(e => e.complete && e.naturalWidth > 0)")
        assert page.locator(".cirscope-snapshot .cs-snapshot-grid figure").count() == 20
        assert "Top 20" in page.locator(".cirscope-snapshot").inner_text()
        assert "make it blue" in page.locator(".cirscope-snapshot .cs-snapshot-query").inner_text()
        # the hostile caption is text
        assert page.locator(".cirscope-snapshot .cs-snapshot-caption").text_content() == INJECTION
        assert page.locator('img[src="x"]').count() == 0
        assert page.evaluate("() => window.__cirscope_xss") is None
        assert page.locator("h1", has_text="An Explorer, saved").count() == 1
        snapshot = page.locator(".cirscope-snapshot")
        save_screenshot(snapshot, artifacts / "client-export.png")
        if update_docs is not None:
            save_screenshot(snapshot, update_docs / "screenshots" / "client-export.png")
        assert offline.requests == [], f"the exported page asked the network for {offline.requests}"
        assert errors == []
    finally:
        context.close()

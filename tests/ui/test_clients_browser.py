"""The same Explorer in JupyterLab 4, Notebook 7, Voila and marimo (``marimo run``), driven in Chromium.

Each client shows ``ex`` unmodified (a notebook cell's last line; marimo: a cell's last
expression) and gets the same checks (:mod:`tests.ui._clients`): points drawn, the hostile
caption shown as text, a click on a thumbnail sets the reference, typing a modification
changes the grid, and the kernel answered the view (no snapshot note). In marimo the
Explorer also has its Diagnostics tab: the plotly chart is drawn and a click on a bar fills
the grid. Every request that leaves 127.0.0.1 is refused and must not happen; every page
error fails the test unless :data:`tests.ui._clients.FOREIGN_ERRORS` names it.
With ``CIRSCOPE_UPDATE_SCREENSHOTS=1`` each writes ``docs/screenshots/client-<name>.png``.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.ui._clients import (
    VOILA_OFFLINE_ARGS,
    AppServer,
    Offline,
    check_diagnostics_tab,
    check_explorer,
    check_round_trips,
    explorer_code,
    install_voila_template,
    page_errors,
    save_screenshot,
)
from tests.ui._harness import NOTEBOOK, run_cell, wait_for_kernel, write_notebook

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]

MARIMO_APP = f'''\
import marimo

app = marimo.App(width="full")


@app.cell
def _():
{textwrap.indent(explorer_code(diagnostics=True), "    ")}
    ex
    return


if __name__ == "__main__":
    app.run()
'''


def _drive(browser: Any, url: str, name: str, artifacts: Path, update_docs: Path | None,
           opened: Callable[[Any], None] | None = None, diagnostics: bool = False) -> None:
    """Open ``url`` offline, run the shared checks, save the screenshots; page errors fail."""
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    offline = Offline(context)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}\n{exc.stack}"))
    page.on("console", lambda msg: errors.append(f"console {msg.type}: {msg.text} at {msg.location}")
            if msg.type == "error" else None)
    try:
        page.goto(url, wait_until="commit", timeout=60_000)  # Voila streams the page while the notebook runs
        if opened is not None:
            opened(page)
        try:
            check_explorer(page, n_points=120)
            check_round_trips(page)
            explorer = page.locator(".cirscope-explorer")  # a composed query on show: the screenshot
            explorer.scroll_into_view_if_needed()
            save_screenshot(explorer, artifacts / f"client-{name}.png")
            if update_docs is not None:
                save_screenshot(explorer, update_docs / "screenshots" / f"client-{name}.png")
            if diagnostics:
                check_diagnostics_tab(page)
        except Exception:
            print("page errors:", *errors, sep="\n")
            page.screenshot(path=str(artifacts / f"client-{name}-failed.png"), full_page=True)
            raise
        body = page.locator("body").inner_text()
        assert "No ESM spec" not in body and "not supported" not in body
        assert offline.requests == [], f"{name} asked the network for {offline.requests}"
        unexpected = page_errors(name, errors)
        assert unexpected == [], "page errors:\n" + "\n\n".join(unexpected)
    finally:
        context.close()


def _lab_opened(page: Any) -> None:
    page.wait_for_selector(f"{NOTEBOOK} .jp-Cell .jp-InputArea-editor", timeout=90_000)
    wait_for_kernel(page, timeout=90_000)
    run_cell(page, 0, attempts=6)


def _notebook7_opened(page: Any) -> None:
    page.wait_for_selector("#main-panel .jp-Notebook .jp-Cell .jp-InputArea-editor", timeout=90_000)
    assert page.locator(".jp-LabShell").count() == 0  # really Notebook 7's single-document shell
    run_cell(page, 0, attempts=6)  # tries again while the kernel is still connecting


def test_explorer_in_jupyterlab(jupyter_server, browser, artifacts, update_docs):
    write_notebook(jupyter_server.root / "clients-lab.ipynb", [explorer_code() + "\nex"])
    _drive(browser, f"{jupyter_server.url}/lab/tree/clients-lab.ipynb?reset", "jupyterlab", artifacts,
           update_docs, opened=_lab_opened)


def test_explorer_in_notebook7(jupyter_server, browser, artifacts, update_docs):
    write_notebook(jupyter_server.root / "clients-nb7.ipynb", [explorer_code() + "\nex"])
    _drive(browser, f"{jupyter_server.url}/notebooks/clients-nb7.ipynb", "notebook7", artifacts, update_docs,
           opened=_notebook7_opened)


def test_explorer_in_voila(browser, tmp_path, artifacts, update_docs):
    pytest.importorskip("voila")
    write_notebook(tmp_path / "explorer.ipynb", [explorer_code() + "\nex"])
    install_voila_template(tmp_path / "data")  # the server's Jupyter data folder
    server = AppServer(tmp_path, [sys.executable, "-m", "voila", "explorer.ipynb", "--no-browser", "--port={port}",
                                  "--Voila.ip=127.0.0.1", "--show_tracebacks=True", *VOILA_OFFLINE_ARGS],
                       env={"CIRSCOPE_CACHE_DIR": str(tmp_path / "cache")})
    server.start()
    try:
        _drive(browser, server.url, "voila", artifacts, update_docs)
    except Exception:
        print(server.log())
        raise
    finally:
        server.stop()


def test_explorer_in_marimo(browser, tmp_path, artifacts, update_docs):
    pytest.importorskip("marimo")
    app = tmp_path / "explorer_app.py"
    app.write_text(MARIMO_APP)
    server = AppServer(tmp_path, [sys.executable, "-m", "marimo", "run", str(app), "--headless", "--host",
                                  "127.0.0.1", "--port", "{port}", "--no-token", "--no-sandbox", "--no-check"],
                       env={"CIRSCOPE_CACHE_DIR": str(tmp_path / "cache")})
    server.start()
    try:
        _drive(browser, server.url, "marimo", artifacts, update_docs, diagnostics=True)
    except Exception:
        print(server.log())
        raise
    finally:
        server.stop()

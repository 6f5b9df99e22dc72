"""Other clients for the browser tests: marimo and Voila servers, and the Explorer checks they share.

Each server runs from ``sys.executable``'s environment on 127.0.0.1 (a free port, no token)
in a temporary home, like :class:`tests.ui._harness.JupyterServer`. The checks act only
through the page and read the results from the DOM; every answer they wait for (the
reference set by a click, the grid after a modification) comes back from the kernel.
Playwright's CSS selectors pierce open shadow roots (marimo draws widgets in one), so the
checks use locators, never ``document.querySelector``.

Every client runs with the network outside 127.0.0.1 refused and recorded (:class:`Offline`):
the tests assert that nothing was asked for. Voila runs with :data:`VOILA_OFFLINE`, a
template that drops the lab template's Font Awesome stylesheets from a CDN, and with the
Notebook 7 lab extension left out. Page errors are all failures except the ones listed in
:data:`FOREIGN_ERRORS`, each named with the client and the code that raises it.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.ui._harness import free_port

INJECTED_ROW = 12  # in the gallery sample the grid shows first (120 images, k=20)
INJECTION = '<img src=x onerror="window.__cirscope_xss = 1">'

#: builds the Explorer on the shapes world with one hostile caption (``ex`` is shown)
EXPLORER_CODE = """\
import warnings
warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
import cirscope as cs

shapes = cs.datasets.shapes(120, seed=0)
meta = shapes.metadata
meta.loc[{row}, "caption"] = {injection!r}
space = cs.Space(cs.Gallery(meta, shapes.sources), cs.Embedder.toy(), progress=False)
ex = cs.Explorer(space, map="pca", color_by="color", diagnostics={diagnostics})"""


def explorer_code(diagnostics: bool = False) -> str:
    """The code that builds ``ex`` (with a diagnostics tab when asked)."""
    return EXPLORER_CODE.format(row=INJECTED_ROW, injection=INJECTION, diagnostics=diagnostics)


GRID = ".cirscope-grid"
PANEL = ".cirscope-query"
MAP_TOP = ".cirscope-map canvas.cs-top"


class AppServer:
    """A web server for notebooks (marimo, Voila) started as a subprocess in a temporary home."""

    def __init__(self, home: Path, cmd: list[str], url_path: str = "/", env: dict[str, str] | None = None):
        self.home = Path(home)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cmd = [part.format(port=self.port) for part in cmd]
        self.url_path = url_path
        self.extra_env = dict(env or {})
        self.proc: subprocess.Popen | None = None
        self.log_path = self.home / "server.log"

    def start(self, timeout: float = 90.0) -> AppServer:
        for sub in ("config", "data", "runtime"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        kernel = self.home / "data" / "kernels" / "python3"
        kernel.mkdir(parents=True, exist_ok=True)
        (kernel / "kernel.json").write_text(json.dumps({
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3", "language": "python",
        }))
        env = dict(os.environ)
        env.update({
            "JUPYTER_CONFIG_DIR": str(self.home / "config"),
            "JUPYTER_DATA_DIR": str(self.home / "data"),
            "JUPYTER_RUNTIME_DIR": str(self.home / "runtime"),
            "JUPYTER_PLATFORM_DIRS": "1",
            "MARIMO_SKIP_UPDATE_CHECK": "1",
            "PATH": str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", ""),
        })
        env.pop("JUPYTER_PATH", None)
        env.update(self.extra_env)
        self._log = open(self.log_path, "wb")  # closed in stop()
        self.proc = subprocess.Popen(self.cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=self.home)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.cmd[2]} exited early (code {self.proc.returncode}):\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/", timeout=2):
                    return self
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"{self.cmd[2]} did not start within {timeout:.0f} s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None
        if getattr(self, "_log", None) is not None:
            self._log.close()
            self._log = None


# ---------------------------------------------------------------------- offline
#: A Voila template (``voila --template=cirscope-offline``) that is the lab template less the
#: stylesheets it loads from a CDN (Font Awesome, in voila 0.5): every ``<link>`` line of its
#: CSS block with an address outside the page is dropped.
VOILA_OFFLINE_TEMPLATE = {
    "conf.json": '{"base_template": "lab"}\n',
    "index.html.j2": """\
{%- extends 'voila/templates/lab/index.html.j2' -%}
{%- block notebook_css -%}
{%- for line in super().splitlines() if not ('<link' in line and '://' in line) %}
{{ line }}
{%- endfor %}
{%- endblock notebook_css -%}
""",
}
#: Voila's options for it: the template, and Notebook 7's lab extension (of no use in Voila) left out
VOILA_OFFLINE_ARGS = [
    "--template=cirscope-offline",
    "--VoilaConfiguration.extension_denylist=['@jupyter-notebook/lab-extension']",
]


def install_voila_template(data_dir: Path) -> Path:
    """Write :data:`VOILA_OFFLINE_TEMPLATE` under ``data_dir/voila/templates`` (a Jupyter data folder)."""
    folder = Path(data_dir) / "voila" / "templates" / "cirscope-offline"
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in VOILA_OFFLINE_TEMPLATE.items():
        (folder / name).write_text(text)
    return folder


class Offline:
    """Refuse every request that leaves 127.0.0.1 (or a ``file:`` page) in a browser context, and list them.

    Examples
    --------
    >>> offline = Offline(context)  # doctest: +SKIP
    >>> offline.requests            # doctest: +SKIP
    []
    """

    LOCAL = re.compile(r"^(file:|data:|blob:|about:|https?://(127\.0\.0\.1|localhost)(:\d+)?/)")

    def __init__(self, context: Any):
        self.requests: list[str] = []
        context.route("**/*", self._route)

    def _route(self, route: Any) -> None:
        url = route.request.url
        if self.LOCAL.match(url):
            route.continue_()
        else:
            self.requests.append(url)
            route.abort()


#: Page errors of the clients' own code, each proven not to come from cirscope: (client, pattern, where from).
#: Everything else a page logs as an error fails the test.
FOREIGN_ERRORS: list[tuple[str, str, str]] = [
    ("notebook7", r"reading 'schema'\)[\s\S]*?/static/notebook/notebook_core\.[0-9a-f]+\.js",
     "Notebook 7's keyboard-shortcuts settings plugin (bundled in notebook_core) reads the schema of a plugin "
     "Notebook 7 does not load; a plain notebook with no cirscope (`1 + 1`) raises it too"),
    ("notebook7", r"Command 'filebrowser:open-path' not registered[\s\S]*?/static/notebook/notebook_core\.",
     "Notebook 7's core runs a JupyterLab file-browser command it does not register, when the server's "
     "workspace comes from JupyterLab; a plain notebook (`1 + 1`) opened after JupyterLab raises it too"),
]


def page_errors(client: str, errors: list[str]) -> list[str]:
    """``errors`` less those :data:`FOREIGN_ERRORS` names for ``client``."""
    foreign = [re.compile(pattern) for name, pattern, _ in FOREIGN_ERRORS if name == client]
    return [e for e in errors if not any(p.search(e) for p in foreign)]


def save_screenshot(locator: Any, path: Path, max_bytes: int = 150_000) -> int:
    """A PNG of ``locator`` at ``path`` under ``max_bytes``: as taken, else with a 256-colour palette, else smaller.

    The mouse is moved off the page first (no hover card over the picture).
    """
    from PIL import Image

    locator.page.mouse.move(0, 0)
    locator.page.wait_for_timeout(300)
    raw = locator.screenshot()
    image = Image.open(io.BytesIO(raw)).convert("RGB")
    data, scale = raw, 1.0
    while len(data) > max_bytes and scale > 0.3:
        shown = image if scale == 1.0 else image.resize((round(image.width * scale), round(image.height * scale)),
                                                        Image.LANCZOS)
        buffer = io.BytesIO()
        shown.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
            buffer, format="PNG", optimize=True)
        data = buffer.getvalue()
        scale *= 0.85
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    assert len(data) <= max_bytes, (path, len(data))
    return len(data)


# ---------------------------------------------------------------------- the checks
def grid_ids(page: Any) -> list[str]:
    return page.locator(f"{GRID} .cs-cell").evaluate_all("els => els.map(e => e.dataset.id)")


def wait_grid(page: Any, changed_from: list[str] | None = None, timeout: float = 30_000) -> list[str]:
    """Wait until the grid is drawn (and its ids differ from ``changed_from``); its ids."""
    deadline = time.monotonic() + timeout / 1000
    while True:
        page.locator(f"{GRID}[data-rendering='false']").wait_for(timeout=timeout)
        ids = grid_ids(page)
        if ids and ids != changed_from:
            return ids
        if time.monotonic() > deadline:
            seen = page.locator(GRID).evaluate_all("els => els.map(e => ({...e.dataset}))")
            raise AssertionError(f"the grid did not change from {changed_from}; grid views: {seen}")
        time.sleep(0.2)


def check_explorer(page: Any, n_points: int) -> None:
    """Points drawn, the grid's sample, the hostile caption literal in the hover card."""
    page.locator(f"{MAP_TOP}[data-n-points='{n_points}']").wait_for(timeout=120_000)
    painted = page.locator(".cirscope-map canvas.cs-base").evaluate(
        """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                  let k = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) k++; return k; }""")
    assert painted > n_points * 9, painted
    page.locator(".cirscope-map .cs-legend", has_text="blue").wait_for(timeout=30_000)
    sample = wait_grid(page)
    assert len(sample) == 20, sample

    # hostile caption: literal in the grid's hover card, no element made from it
    cell = page.locator(f"{GRID} .cs-cell[data-row='{INJECTED_ROW}']")
    cell.scroll_into_view_if_needed()
    cell.hover()
    card = page.locator(f"{GRID} .cs-card")
    card.wait_for(state="visible")
    assert INJECTION in card.inner_text()
    assert page.locator('img[src="x"]').count() == 0
    assert page.evaluate("() => window.__cirscope_xss") is None


def check_round_trips(page: Any) -> None:
    """A click on a thumbnail sets the reference; typing a modification changes the grid; no snapshot note."""
    from playwright.sync_api import expect

    sample = wait_grid(page)
    cell = page.locator(f"{GRID} .cs-cell[data-row='{INJECTED_ROW}']")
    # a click on a thumbnail sets the reference in the kernel, which sends it back
    cell.click()
    page.locator(f"{PANEL}[data-reference='{INJECTED_ROW}']").wait_for(timeout=30_000)
    # the caption is its own trait: a client may deliver it in a later message than the row (marimo does)
    # (a locator, not document.querySelector: marimo draws the widget in a shadow root)
    expect(page.locator(f"{PANEL} .cs-ref-caption")).to_have_text(INJECTION, timeout=10_000)
    results = wait_grid(page, changed_from=sample)
    assert str(INJECTED_ROW) not in page.locator(f"{GRID} .cs-cell").evaluate_all(
        "els => els.map(e => e.dataset.row)")

    # typing a modification: the kernel composes the query and the grid changes
    text = page.locator(f"{PANEL} [data-role='text']")
    text.fill("make it blue")
    text.press("Enter")
    composed = page.locator(f"{PANEL} [data-role='composed_text']")
    page.wait_for_function("el => el.value.endsWith('make it blue')", arg=composed.element_handle(), timeout=30_000)
    wait_grid(page, changed_from=results)
    page.locator(f"{GRID} span.cs-label", has_text="Top 20 · PDV").wait_for(timeout=30_000)
    assert page.locator(".cirscope-map canvas.cs-top[data-n-highlighted='20']").count() == 1

    assert page.locator('img[src="x"]').count() == 0
    assert page.evaluate("() => window.__cirscope_xss") is None
    # the kernel answered the Explorer's ping: no snapshot note
    page.locator(".cirscope-explorer[data-kernel='live']").wait_for(timeout=10_000)
    assert page.locator(".cs-live-note:visible").count() == 0


def check_diagnostics_tab(page: Any) -> None:
    """The Explorer's Diagnostics tab draws the plotly chart; a click on a bar fills the grid."""
    page.locator(".cirscope-explorer .cs-tabs button[data-tab='diagnostics']").click()
    bars = page.locator(".cirscope-diagnostics .js-plotly-plot .barlayer .trace").first.locator(".point path")
    bars.first.wait_for(timeout=60_000)
    assert page.locator(".cirscope-diagnostics select[data-role='attribute']").input_value() == "shape"  # the first column
    bars.nth(0).click(force=True)
    page.locator(".cirscope-diagnostics .cs-caption", has_text="Showing").wait_for(timeout=30_000)
    page.locator(".cirscope-explorer .cs-tabs button[data-tab='explore']").click()
    page.locator(f"{GRID}[data-mode='selection']").wait_for(timeout=30_000)
    page.locator(f"{GRID} span.cs-label", has_text="Diagnostics:").wait_for(timeout=30_000)  # title follows mode

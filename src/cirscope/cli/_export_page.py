"""``cirscope export``: a notebook as one HTML page that opens offline and shows each widget's snapshot.

A notebook saved with widget state exports (``jupyter nbconvert --to html``) to a page whose
widgets need the widget manager and anywidget from CDNs: offline they stay blank. This
command writes a page that needs no network: the saved widget state is dropped, so every
Explorer shows the static snapshot stored beside its view (map, query, top-k thumbnails and
a note saying it is a snapshot and how to make it live, see
:mod:`cirscope.widgets._snapshot`); a widget that stored no snapshot is replaced by a note
that names it. The page loads no script from elsewhere (no require.js, MathJax or Mermaid:
LaTeX in Markdown cells shows as its source). Live widgets from stored state would need
``@jupyter-widgets/html-manager``'s ``embed-amd.js``, which no Python package of the stack
ships (ipywidgets, widgetsnbextension, jupyterlab_widgets, notebook, voila and nbconvert
hold none; nbconvert's pages fetch it from a CDN), so this command never writes that kind of page.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cirscope._core.text import html_text
from cirscope.cli._errors import CliError

__all__ = ["EXPORT_INSTALL", "ExportResult", "export_page", "offline_notebook", "register", "run"]

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
#: What to install for ``cirscope export`` (nbconvert comes with JupyterLab and Notebook 7).
EXPORT_INSTALL = 'pip install "cirscope[export]"'
#: nbconvert's lab template without the scripts it loads from CDNs and without the widget loader.
OFFLINE_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
"""
_TEMPLATE_NAME = "cirscope-offline.html.j2"
#: an element that makes the browser fetch something from another host when the page opens
_REMOTE = re.compile(
    r"<(?:script|img|iframe|link|source|video|audio)\b[^>]*?\b(?:src|href)\s*=\s*[\"']?((?:https?:)?//[^\"'\s>]+)", re.I)
NO_SNAPSHOT_NOTE = ("Widget not shown: this page is a static export and this widget stored no snapshot. "
                    "To see it, open the notebook in JupyterLab, Notebook 7, VS Code, Voila or marimo and run it.")


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_page` wrote.

    ``snapshots``: widget outputs shown by their stored snapshot; ``without_snapshot``: widget
    outputs replaced by a note; ``remote``: addresses the notebook's own outputs still load
    from the network (the page works offline without them, but they stay blank).
    """

    path: Path
    snapshots: int
    without_snapshot: int
    remote: tuple[str, ...]

    def message(self) -> str:
        parts = [f"wrote {self.path}: {self.snapshots} widget snapshot{'s' if self.snapshots != 1 else ''}"]
        if self.without_snapshot:
            parts.append(f"{self.without_snapshot} widget(s) with no snapshot, shown as a note")
        text = ", ".join(parts) + "; the page loads no script from the network"
        if self.remote:
            shown = ", ".join(self.remote[:3]) + (" ..." if len(self.remote) > 3 else "")
            text += f" (but the notebook's outputs refer to {len(self.remote)} remote file(s), blank offline: {shown})"
        return text


def offline_notebook(nb: Any) -> tuple[int, int]:
    """Drop the widget state and the widget views of ``nb`` (in place); ``(snapshots, without_snapshot)``.

    An output with a widget view keeps its other representations (an Explorer's ``text/html``
    snapshot); one with nothing but a text repr gets a note saying the widget is not shown.

    Examples
    --------
    >>> import nbformat
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("ex", outputs=[
    ...     nbformat.v4.new_output("display_data", {WIDGET_VIEW: {"model_id": "a"}, "text/html": "<p>snap</p>",
    ...                                             "text/plain": "Explorer()"}),
    ...     nbformat.v4.new_output("display_data", {WIDGET_VIEW: {"model_id": "b"}, "text/plain": "IntSlider()"})])])
    >>> nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    >>> offline_notebook(nb)
    (1, 1)
    >>> "widgets" in nb.metadata, sorted(nb.cells[0].outputs[1].data)
    (False, ['text/html'])
    """
    nb.metadata.pop("widgets", None)
    snapshots = without = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            data = output.get("data")
            if not data or WIDGET_VIEW not in data:
                continue
            del data[WIDGET_VIEW]
            if "text/html" in data:
                snapshots += 1
                continue
            without += 1
            text = data.pop("text/plain", "")
            text = "".join(text) if isinstance(text, list) else str(text)
            data.clear()
            data["text/html"] = (f'<div class="cirscope-no-snapshot" role="note" style="background:#fff8e1;border:1px solid '
                                 f'#f0c36d;border-radius:4px;padding:6px 8px">{html_text(NO_SNAPSHOT_NOTE)}'
                                 f"<br><code>{html_text(text[:200])}</code></div>")
    return snapshots, without


def _exporter() -> Any:
    try:
        import jinja2
        from nbconvert import HTMLExporter
    except ImportError as exc:  # pragma: no cover - nbconvert comes with the test environment
        raise CliError(f"cirscope export needs nbconvert ({exc}): {EXPORT_INSTALL}") from exc
    return HTMLExporter(template_name="lab", template_file=_TEMPLATE_NAME,
                        extra_loaders=[jinja2.DictLoader({_TEMPLATE_NAME: OFFLINE_TEMPLATE})])


def _read(path: Path) -> Any:
    import nbformat

    if not path.is_file():
        raise CliError(f"{path} is not a file: pass the notebook to export (NOTEBOOK.ipynb)")
    try:
        return nbformat.reads(path.read_text(encoding="utf-8"), as_version=4)
    except Exception as exc:  # nbformat raises many kinds (JSON, schema, version, conversion errors)
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        raise CliError(f"{path} is not a readable Jupyter notebook ({type(exc).__name__}: {first})") from exc


def _execute(nb: Any, folder: Path, timeout: float) -> None:
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    kernel = (nb.metadata.get("kernelspec") or {}).get("name") or "python3"
    try:
        NotebookClient(nb, timeout=timeout, kernel_name=kernel, resources={"metadata": {"path": str(folder)}}).execute()
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as exc:
        raise CliError(f"running the notebook failed, nothing written: {str(exc)[-600:]}") from exc


def export_page(notebook: str | Path, out: str | Path | None = None, *, execute: bool = False,
                timeout: float = 600.0) -> ExportResult:
    """Write ``notebook`` as one HTML page that opens offline (default ``out``: beside it, ``.html``).

    ``execute=True`` runs the notebook first (each cell at most ``timeout`` seconds), as
    ``jupyter nbconvert --execute`` does; otherwise the saved outputs are used. The notebook
    file is never changed; the page is written atomically.
    """
    from cirscope._core.atomic import atomic_write_bytes

    src = Path(notebook)
    dest = src.with_suffix(".html") if out is None else Path(out)
    if dest.exists() and src.exists() and dest.resolve() == src.resolve():
        raise CliError(f"--out {dest} is the notebook itself: choose another file for the page")
    if dest.is_dir():
        raise CliError(f"--out {dest} is a folder: give the page's file name, e.g. {dest / src.with_suffix('.html').name}")
    exporter = _exporter()  # first: says what to install when nbconvert is missing
    nb = _read(src)
    if execute:
        _execute(nb, src.resolve().parent, timeout)
    snapshots, without = offline_notebook(nb)
    html, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": src.stem}})
    remote = tuple(dict.fromkeys(m.group(1) for m in _REMOTE.finditer(html)))
    if not dest.parent.is_dir():
        raise CliError(f"the folder {dest.parent} does not exist: create it or choose another --out")
    atomic_write_bytes(dest, html.encode("utf-8"))
    return ExportResult(dest, snapshots, without, remote)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``export`` to the ``cirscope`` command line."""
    p = subparsers.add_parser(
        "export",
        help="write a notebook as one HTML page that opens offline, widgets shown as snapshots",
        description=(
            "Write NOTEBOOK as one HTML page that needs no kernel and no network. Each Explorer shows "
            "the snapshot stored with its output (the map, the query and the top-k thumbnails, labelled "
            "as a snapshot with how to make it live); widgets that stored none are replaced by a note. "
            "The page loads no script from elsewhere: no require.js, MathJax (LaTeX shows as source) "
            "or widget loaders from CDNs. No Python package ships a local copy of the widget loader "
            "(@jupyter-widgets/html-manager's embed-amd.js), so live widgets from saved state are not "
            "offered."
        ),
    )
    p.add_argument("notebook", type=Path, help="the notebook (.ipynb) to export; it is never changed")
    p.add_argument("--out", type=Path, default=None, help="the page to write (default: NOTEBOOK with .html)")
    p.add_argument("--execute", action="store_true", help="run the notebook first (its saved outputs otherwise)")
    p.add_argument("--timeout", type=float, default=600.0, help="with --execute: seconds per cell (default 600)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export the page and say what it holds."""
    result = export_page(args.notebook, args.out, execute=args.execute, timeout=args.timeout)
    print(result.message())
    return 0

"""``cirscope export``: a saved notebook as one HTML page that shows snapshots and loads nothing remote.

The notebooks hold real display bundles: an Explorer's (its widget view and its static
snapshot, from ``_repr_mimebundle_``) and an ipywidgets slider's (no snapshot), with the
widget state a saved notebook carries. The page is checked as text here; the browser test
(``tests/ui/test_export_browser.py``) opens one with the network blocked.
"""

from __future__ import annotations

import html

import nbformat
import pytest

import cirscope as cs
from cirscope.cli import main
from cirscope.cli._export_page import _REMOTE, NO_SNAPSHOT_NOTE, OFFLINE_TEMPLATE
from cirscope.widgets._snapshot import SNAPSHOT_NOTE

HOSTILE = '<script>window.__pwned = 1</script><img src=x onerror="alert(1)">'
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def _output(widget) -> nbformat.NotebookNode:
    bundle = widget._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    return nbformat.v4.new_output("display_data", data=data)


@pytest.fixture(scope="module")
def saved_notebook_node():
    """A notebook as JupyterLab saves it: an Explorer (hostile caption on the reference) and a slider."""
    import ipywidgets

    shapes = cs.datasets.shapes(60, seed=0)
    meta = shapes.metadata
    meta.loc[4, "caption"] = HOSTILE
    space = cs.Space(cs.Gallery(meta, shapes.sources), cs.Embedder.toy(), cache=False, progress=False)
    ex = cs.Explorer(space, map="pca", reference=4, text="make it blue", k=8)
    slider = ipywidgets.IntSlider(description=HOSTILE)
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Shapes"),
        nbformat.v4.new_code_cell("ex", outputs=[_output(ex)]),
        nbformat.v4.new_code_cell("slider", outputs=[_output(slider)]),
    ])
    nb.metadata["widgets"] = {WIDGET_STATE: {"version_major": 2, "version_minor": 0, "state": {
        ex.model_id: {"model_name": "AnyModel", "state": {}}, slider.model_id: {"model_name": "IntSliderModel", "state": {}},
    }}}
    ex.close()
    slider.close()
    return nb


@pytest.fixture
def saved_notebook(tmp_path, saved_notebook_node):
    path = tmp_path / "shapes.ipynb"
    nbformat.write(saved_notebook_node, path)
    return path


def test_export_writes_a_page_of_snapshots_that_loads_nothing_remote(saved_notebook, capsys):
    before = saved_notebook.read_bytes()
    assert main(["export", str(saved_notebook)]) == 0
    out = capsys.readouterr().out
    assert "1 widget snapshot" in out and "1 widget(s) with no snapshot" in out and "loads no script" in out
    page = saved_notebook.with_suffix(".html").read_text(encoding="utf-8")
    assert saved_notebook.read_bytes() == before  # the notebook is never changed
    # the Explorer's snapshot, with its note; no widget view, no widget state, no loader
    assert page.count('class="cirscope-snapshot"') == 1
    assert html.escape(SNAPSHOT_NOTE, quote=True) in page
    assert "widget-view+json" not in page and WIDGET_STATE not in page
    assert _REMOTE.findall(page) == [] and "<script src=" not in page
    assert page.count('<figure style="margin:0;width:96px') == 8 and 'id="Shapes"' in page
    # the slider stored no snapshot: a note that names it
    assert html.escape(NO_SNAPSHOT_NOTE, quote=True) in page and "IntSlider(" in page
    # hostile text from the data is text, in both (nbconvert re-serialises the page: quotes in text stay bare)
    assert HOSTILE not in page and "<script>window" not in page and "window.__pwned" in page
    assert page.count(html.escape(HOSTILE, quote=False)) == 2


def test_export_reports_remote_files_the_outputs_still_need(tmp_path, capsys):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("fig", outputs=[nbformat.v4.new_output(
        "display_data", data={"text/html": '<script src="https://cdn.example.org/plot.js"></script><div>plot</div>'})])])
    path = tmp_path / "remote.ipynb"
    nbformat.write(nb, path)
    assert main(["export", str(path), "--out", str(tmp_path / "remote page.html")]) == 0
    out = capsys.readouterr().out
    assert "refer to 1 remote file(s)" in out and "https://cdn.example.org/plot.js" in out
    assert (tmp_path / "remote page.html").is_file()


@pytest.mark.parametrize("content", [b"{not json", b'{"cells": 3}', b"\xff\xfe\x00", b"[]"])
def test_export_reports_an_unreadable_notebook_and_writes_nothing(tmp_path, capsys, content):
    path = tmp_path / "broken.ipynb"
    path.write_bytes(content)
    assert main(["export", str(path)]) == 2
    err = capsys.readouterr().err
    assert "broken.ipynb is not a readable Jupyter notebook" in err and err.count("\n") == 1
    assert not path.with_suffix(".html").exists()


def test_export_refuses_bad_destinations(saved_notebook, tmp_path, capsys):
    assert main(["export", str(saved_notebook), "--out", str(saved_notebook)]) == 2
    assert "is the notebook itself" in capsys.readouterr().err
    assert main(["export", str(saved_notebook), "--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert main(["export", str(saved_notebook), "--out", str(tmp_path / "missing" / "page.html")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "absent.ipynb")]) == 2
    assert "is not a file" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shapes.ipynb"]


def test_export_help_says_why_no_live_widgets():
    from cirscope.cli._main import build_parser

    parser = build_parser()
    export = parser._subparsers._group_actions[0].choices["export"]
    text = export.format_help()
    assert "embed-amd.js" in text and "no network" in text
    # the page template drops every script nbconvert's lab template loads from elsewhere
    for block in ("html_head_js_requirejs", "html_head_js_mathjax", "html_head_js_mermaidjs", "jupyter_widgets"):
        assert f"block {block} -" in OFFLINE_TEMPLATE


@pytest.mark.slow
def test_export_execute_runs_the_notebook_first(tmp_path, capsys):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('ran', 6 * 7)")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "run.ipynb"
    nbformat.write(nb, path)
    assert main(["export", str(path), "--execute", "--timeout", "120"]) == 0
    assert "ran 42" in path.with_suffix(".html").read_text(encoding="utf-8")
    assert nbformat.read(path, as_version=4).cells[0].outputs == []  # the notebook file is unchanged

    nb.cells.append(nbformat.v4.new_code_cell("raise ValueError('boom')"))
    nbformat.write(nb, path)
    path.with_suffix(".html").unlink()
    capsys.readouterr()
    assert main(["export", str(path), "--execute"]) == 2
    err = capsys.readouterr().err
    assert "running the notebook failed, nothing written" in err and "boom" in err
    assert not path.with_suffix(".html").exists()

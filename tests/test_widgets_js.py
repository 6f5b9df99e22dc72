"""Static checks of the widgets' front end (js/): files present, shared code in step, text never parsed as HTML."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cirscope.widgets import MapView, NeighborGrid, QueryPanel
from cirscope.widgets._static import static_file

JS = Path(__file__).resolve().parents[1] / "js"
OURS = ["map_view.js", "neighbor_grid.js", "query_panel.js"]
BLOCK = re.compile(r"// (\w+):begin\n(.*?)// \1:end", re.S)


@pytest.mark.parametrize("widget", [MapView, NeighborGrid, QueryPanel])
def test_each_widget_ships_an_es_module_with_a_render_function(widget):
    source = str(widget._esm)
    assert "export default { render }" in source
    assert "function render({ model, el })" in source
    assert "cirscope.css" in str(static_file("cirscope.css"))


def test_static_file_names_the_fix_for_a_missing_file():
    with pytest.raises(FileNotFoundError, match="reinstall cirscope"):
        static_file("nope.js")


def test_shared_blocks_are_identical_in_every_module():
    """The modules are self-contained (no bundler); code they share is copied between markers."""
    blocks: dict[str, dict[str, str]] = {}
    for path in sorted(JS.glob("*.js")):
        for name, body in BLOCK.findall(path.read_text()):
            blocks.setdefault(name, {})[path.name] = body
    assert {"codec", "thumbs"} <= set(blocks)
    for name, copies in blocks.items():
        assert len(set(copies.values())) == 1, f"the {name!r} block differs between {sorted(copies)}"


@pytest.mark.parametrize("name", OURS)
def test_text_is_never_inserted_as_html(name):
    source = (JS / name).read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "createContextualFragment"):
        assert sink not in source, f"{name} uses {sink}"
    assert "textContent" in source


@pytest.mark.parametrize("name", OURS)
def test_no_json_number_lists_or_base64_for_arrays(name):
    source = (JS / name).read_text()
    assert "btoa(" not in source and "atob(" not in source
    assert "base64" not in source.lower()

"""Static checks of the widgets' front end (js/): files present, shared code in step, text never parsed as HTML."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cirscope.widgets import MapView, NeighborGrid, QueryPanel
from cirscope.widgets._static import static_file
from cirscope.widgets._sync_js import BLOCK, blocks, main, shared_sources, stale, sync, synced

JS = Path(__file__).resolve().parents[1] / "js"
PARTS = ["map_view.js", "neighbor_grid.js", "query_panel.js"]
OURS = [*PARTS, "explorer.js", "diagnostics_panel.js", "slider_bias.js", "filter_panel.js"]


@pytest.mark.parametrize("widget", [MapView, NeighborGrid, QueryPanel])
def test_each_widget_ships_an_es_module_with_a_render_function(widget):
    source = str(widget._esm)
    assert "export default { render }" in source
    assert "function render({ model, el })" in source
    assert "cirscope.css" in str(static_file("cirscope.css"))


def test_static_file_names_the_fix_for_a_missing_file():
    with pytest.raises(FileNotFoundError, match="reinstall cirscope"):
        static_file("nope.js")


def test_shared_helpers_are_copied_unchanged_into_every_module():
    """The modules are self-contained (anywidget loads one file each): code they share lives once
    in js/_shared and is copied between markers by ``python -m cirscope.widgets._sync_js``."""
    shared = shared_sources(JS)
    assert {"children", "codec", "dom", "kernel", "thumbs"} <= set(shared)
    used: dict[str, set[str]] = {}
    for name in OURS:
        text = (JS / name).read_text()
        for block, body in blocks(text).items():
            assert body == shared[block], f"{name}: its copy of js/_shared/{block}.js differs; run python -m cirscope.widgets._sync_js"
            used.setdefault(block, set()).add(name)
    assert used["dom"] == set(OURS) and used["thumbs"] == set(PARTS) and used["codec"] == {"map_view.js", "neighbor_grid.js", "slider_bias.js"}
    assert used["children"] == {"explorer.js", "diagnostics_panel.js"}  # the widgets that hold widgets
    assert used["kernel"] == set(OURS)  # every view says when no kernel answers it
    assert set(used) == set(shared), "a shared file no module uses"
    assert stale(JS) == []


def test_no_module_defines_a_shared_helper_outside_its_block():
    """A helper kept in js/_shared is not also written by hand elsewhere in a module."""
    names = {m for text in shared_sources(JS).values() for m in re.findall(r"^(?:function|const) (\w+)", text, re.M)}
    assert {"h", "listen", "decodeArray", "imageURL", "ARRAY_TYPES"} <= names
    for name in OURS:
        outside = BLOCK.sub("", (JS / name).read_text())
        defined = set(re.findall(r"^\s*(?:function|const|let) (\w+)\b", outside, re.M))
        assert not names & defined, f"{name} defines {sorted(names & defined)} again"


def test_sync_rewrites_a_stale_copy_and_check_reports_it(tmp_path, capsys):
    js = tmp_path / "js"
    (js / "_shared").mkdir(parents=True)
    for path in [*(JS / "_shared").glob("*.js"), *(JS / n for n in OURS)]:
        target = js / path.relative_to(JS)
        target.write_text(path.read_text())
    grid = js / "neighbor_grid.js"
    grid.write_text(grid.read_text().replace("function decodeArray(msg) {", "function decodeArray(msg) { // edited"))
    assert main(["--check", "--js", str(js)]) == 1
    assert "neighbor_grid.js: out of date" in capsys.readouterr().out
    assert sync(js) == ["neighbor_grid.js"]
    assert grid.read_text() == (JS / "neighbor_grid.js").read_text()
    assert main(["--check", "--js", str(js)]) == 0


def test_sync_refuses_a_block_without_a_shared_file():
    with pytest.raises(KeyError, match=r"js/_shared/nope\.js"):
        synced("// shared:nope begin\n// shared:nope end\n", {"dom": ""})


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


def test_the_method_menu_shows_the_registry_title_with_the_full_name_as_tooltip():
    """The menu's words come from ``method_specs()`` (title, full_name), not from the JS."""
    source = (JS / "query_panel.js").read_text()
    assert 'h("option", null, m.title)' in source
    assert "o.title = m.full_name" in source
    assert "PDV" not in source and "pdv" not in source  # no method name written into the front end

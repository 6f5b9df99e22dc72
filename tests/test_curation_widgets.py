"""The query history (undo/redo) and the Explorer's curation bar, driven through their messages."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cirscope as cs
from cirscope.widgets._history import QueryHistory


@pytest.fixture(scope="module")
def base():
    return cs.Space(cs.datasets.shapes(80, seed=2), cs.Embedder.toy(), cache=False, progress=False)


@pytest.fixture
def space(base):
    return cs.Space.from_embeddings(base.gallery, base.image_embeddings, embedder=base.embedder)


@pytest.fixture
def explorer(space):
    ex = cs.Explorer(space, map="pca")
    yield ex
    ex.close()


def _state(panel):
    return (panel.reference, panel.text, panel.method, panel.alpha_t, panel.beta, panel.a, panel.k)


def test_history_undo_redo_sequence_searches_each_state_again(space):
    panel = cs.QueryPanel(space)
    states, results = [], []
    for change in ({"reference": 3}, {"text": "make it blue"}, {"method": "slerp"}, {"a": 0.3}, {"k": 7}):
        for key, value in change.items():
            setattr(panel, key, value)
        states.append(_state(panel))
        results.append(list(panel.results))
    assert panel.can_undo and not panel.can_redo and panel.history_position == "6 / 6"
    for i in range(len(states) - 2, -1, -1):  # back to the first state, each searched again
        assert panel.undo()
        assert _state(panel) == states[i] and panel.results == results[i]
    assert panel.undo()  # the empty start (before any reference)
    assert panel.reference == -1 and panel.results == [] and not panel.can_undo
    assert panel.undo() is False
    for i in range(len(states)):
        assert panel.redo() and _state(panel) == states[i] and panel.results == results[i]
    assert not panel.can_redo and panel.redo() is False
    panel.undo()
    panel.text = "make it green"  # a new state after an undo drops the redo branch
    assert not panel.can_redo and panel.text == "make it green"


def test_a_slider_drag_is_one_history_entry():
    h = QueryHistory()
    h.record({"reference": 1, "text": "t", "a": 0.5}, now=0.0)
    h.record({"reference": 1, "text": "u", "a": 0.5}, now=0.1)
    for i, a in enumerate((0.55, 0.6, 0.65, 0.7)):  # one drag
        h.record({"reference": 1, "text": "u", "a": a}, now=1.0 + 0.05 * i)
    h.record({"reference": 1, "text": "u", "a": 0.2}, now=10.0)  # a later, separate move
    assert [(e["text"], e["a"]) for e in h.entries] == [("t", 0.5), ("u", 0.5), ("u", 0.7), ("u", 0.2)]


def test_undo_and_redo_arrive_as_browser_messages(space):
    panel = cs.QueryPanel(space, reference=2)
    panel.text = "make it red"
    panel._handle_custom_msg({"event": "undo"}, [])
    assert panel.text == "" and panel.can_redo
    panel._handle_custom_msg({"event": "redo"}, [])
    assert panel.text == "make it red"


def test_tag_selection_and_results_become_colour_and_filter_columns(explorer, space):
    explorer.map.selected = [4, 5, 6]
    assert explorer.tag_selection("<b>odd</b>") == 3
    assert space.tagged("<b>odd</b>").tolist() == [4, 5, 6]
    assert "tag:<b>odd</b>" in explorer.map.color_columns and "tag:<b>odd</b>" in explorer.curation.columns
    assert explorer.curation.tags == [{"name": "<b>odd</b>", "count": 3}]
    explorer.map.color_by = "tag:<b>odd</b>"
    legend = {item["label"]: item["count"] for item in explorer.map.legend}
    assert legend == {"False": len(space) - 3, "True": 3}
    explorer.map.selected = [7]
    explorer.tag_selection("<b>odd</b>")  # the colours follow the tag
    assert {i["label"]: i["count"] for i in explorer.map.legend}["True"] == 4
    explorer.query.reference = 0
    explorer.curation._handle_custom_msg({"event": "tag", "scope": "results", "name": "top"}, [])
    assert space.tagged("top").tolist() == sorted(explorer.query.results)
    assert explorer.curation.error == "" and "Tagged 20" in explorer.curation.message


def test_filter_restricts_the_search_to_matching_rows(explorer, space):
    explorer.query.reference = 0
    explorer.query.text = "make it blue"
    colors = space.gallery.metadata["color"].to_numpy()
    explorer.curation.filter_column, explorer.curation.filter_value = "color", "red"
    rows = explorer.query.results
    assert rows and all(colors[r] == "red" for r in rows)
    assert len(rows) == min(20, int((colors == "red").sum()) - (colors[0] == "red"))
    assert list(explorer.map.highlighted) == rows and explorer.grid.rows == rows
    space.tag([1, 2, 3], "picked")
    explorer.curator.refresh_tags()
    explorer.curation.filter_column, explorer.curation.filter_value = "tag:picked", "true"
    assert sorted(explorer.query.results) == [1, 2, 3]
    explorer.curation.filter_column = ""
    assert len(explorer.query.results) == 20


def test_bar_reports_errors_as_text_and_keeps_state(explorer, tmp_path):
    bar = explorer.curation
    bar._handle_custom_msg({"event": "tag", "scope": "selection", "name": "x"}, [])
    assert "Nothing to tag" in bar.error
    bar._handle_custom_msg({"event": "export", "scope": "selection", "format": "csv", "path": ""}, [])
    assert "Type a path" in bar.error
    explorer.map.selected = [1, 2]
    out = tmp_path / "sel.csv"
    bar._handle_custom_msg({"event": "export", "scope": "selection", "format": "csv", "path": str(out)}, [])
    assert bar.message == f"Wrote {out}" and pd.read_csv(out)["row"].tolist() == [1, 2]
    bar._handle_custom_msg({"event": "export", "scope": "selection", "format": "csv", "path": str(out)}, [])
    assert "FileExistsError" in bar.error
    bar._handle_custom_msg({"event": "restore_view", "path": str(tmp_path / "none.json")}, [])
    assert "FileNotFoundError" in bar.error


def test_view_save_restore_gives_the_same_state_in_a_new_explorer(explorer, space, base, tmp_path):
    ex = explorer
    ex.map.selected = [10, 11, 12]
    ex.tag_selection("keep")
    ex.query.reference = 5
    ex.query.text = "make it green"
    ex.query.method = "slerp"
    ex.query.a = 0.35
    ex.query.k = 9
    ex.map.color_by = "tag:keep"
    ex.curation.filter_column, ex.curation.filter_value = "shape", "circle"
    path = ex.save_view(tmp_path / "view.json")
    # a fresh space (no tags yet) over the same gallery: the view brings them
    other = cs.Space.from_embeddings(base.gallery, base.image_embeddings, embedder=base.embedder)
    again = cs.Explorer.from_view(other, path, map="pca")
    try:
        assert _state(again.query) == _state(ex.query)
        assert again.query.results == ex.query.results and again.grid.rows == ex.grid.rows
        assert again.map.color_by == "tag:keep" and list(again.map.selected) == [10, 11, 12]
        assert (again.curation.filter_column, again.curation.filter_value) == ("shape", "circle")
        assert other.tagged("keep").tolist() == [10, 11, 12]
        assert again.curator.capture() == ex.curator.capture()
    finally:
        again.close()


def test_views_carry_the_metadata_filters_of_the_sidebar(base, tmp_path):
    meta = base.gallery.metadata.copy()
    meta["brightness"] = np.linspace(0.0, 1.0, len(meta))
    gallery = cs.Gallery(meta, base.gallery.sources)
    space = cs.Space.from_embeddings(gallery, base.image_embeddings, embedder=base.embedder)
    ex = cs.Explorer(space, map="pca", reference=3, filters={"brightness": (0.25, None)})
    try:
        ex.filters = {"color": ["red", "blue"], "brightness": (0.25, None)}
        wanted = meta["color"].isin(["red", "blue"]).to_numpy() & (meta["brightness"] >= 0.25).to_numpy()
        assert wanted[list(ex.grid.rows)].all()
        path = ex.save_view(tmp_path / "view.json")
        again = cs.Explorer.from_view(space, path, map="pca", filters={"brightness": (0.0, None)})
        try:
            assert again.filters == ex.filters
            assert again.grid.rows == ex.grid.rows and wanted[list(again.grid.rows)].all()
        finally:
            again.close()
        # an Explorer without the sidebar, or without a column, says what it could not show
        plain = cs.Explorer(space, map="pca", filters=False)
        try:
            assert any("filters sidebar" in n for n in plain.restore_view(path))
        finally:
            plain.close()
        other = cs.Explorer(cs.Space.from_embeddings(base.gallery, base.image_embeddings, embedder=base.embedder),
                            map="pca")
        try:
            notes = other.restore_view(path)
            assert any("'brightness'" in n for n in notes)
            assert list(other.filters) == ["color"] and set(other.filters["color"]) == {"red", "blue"}
        finally:
            other.close()
    finally:
        ex.close()


def test_view_files_check_their_metadata_filters(tmp_path):
    import json

    from cirscope import DamagedFileError
    from cirscope.curation._views import ExplorerView, read_view, write_view

    view = ExplorerView(metadata_filters={"color": {"values": ["red", None]}, "b": {"range": [0.5, None]}})
    assert read_view(write_view(view, tmp_path / "v.json")) == view
    data = view.to_dict()
    del data["metadata_filters"]  # a view written before the field existed
    assert ExplorerView.from_dict(data).metadata_filters == {}
    for bad in ({"color": ["red"]}, {"b": {"range": [1]}}, {"b": {"range": ["a", 2]}}, {"c": {"values": [{}]}},
                {"c": {"values": ["x"], "range": [0, 1]}}, []):
        with pytest.raises(DamagedFileError, match="metadata_filters"):
            ExplorerView.from_dict({**view.to_dict(), "metadata_filters": bad})
    assert json.loads(json.dumps(view.to_dict())) == view.to_dict()


def test_restoring_into_a_different_gallery_says_what_did_not_fit(explorer, tmp_path):
    explorer.map.selected = [1, 2]
    explorer.query.reference = 70
    path = explorer.save_view(tmp_path / "v.json")
    small = cs.Space(cs.datasets.shapes(40, seed=2), cs.Embedder.toy(), cache=False, progress=False)
    ex = cs.Explorer(small, map="pca")
    try:
        notes = ex.restore_view(path)
        assert ex.query.reference == -1 and any("reference" in n for n in notes)
        assert list(ex.map.selected) == [1, 2]
    finally:
        ex.close()


def test_explorer_close_releases_the_bar(space):
    ex = cs.Explorer(space, map="pca")
    bar = ex.curation
    ex.close()
    assert bar.comm is None
    np.testing.assert_array_equal(space.tags.frame().shape, (len(space), 0))


def test_the_bar_front_end_never_parses_text_as_html():
    source = cs.widgets._curation.static_file("curation_bar.js").read_text()
    assert "export default { render }" in source and "function render({ model, el })" in source
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "createContextualFragment"):
        assert sink not in source
    assert "textContent" in source

"""The detail view without a browser: what it shows for a row, and how the Explorer links it.

The browser side (the overlay, the keys, focus, escaping) is tested in tests/ui/test_detail_browser.py.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ipywidgets.widgets.widget import _remove_buffers
from PIL import Image

import cirscope as cs
from cirscope.widgets._detail import DetailView, field_text, fields_of
from cirscope.widgets._sync_js import BLOCK, blocks, shared_sources
from tests.hostile_strings import HOSTILE

JS = Path(__file__).resolve().parents[1] / "js"


@pytest.fixture(scope="module")
def big_space():
    """A small shapes world drawn at 160 px, with a few hostile, missing and numeric values."""
    gallery = cs.datasets.shapes(60, seed=3, image_size=160)
    meta = gallery.metadata
    meta.loc[4, "caption"] = "<img src=x onerror=alert(1)>"
    meta["score"] = np.linspace(0.0, 1.0, len(meta))
    meta.loc[5, "score"] = np.nan
    vectors = np.random.default_rng(0).normal(size=(len(meta), 16)).astype(np.float32)
    return cs.Space.from_embeddings(cs.Gallery(meta, gallery.sources), vectors, model_name="random")


def message(widget, content: dict) -> None:
    """What the front end sends (a click, a key)."""
    widget._handle_custom_msg(content, [])


# ---------------------------------------------------------------------- values as text
def test_values_become_text_that_says_what_it_is():
    assert field_text(3) == ("3", "number")
    assert field_text(np.int64(7)) == ("7", "number")
    assert field_text(np.float64(1 / 3)) == (str(1 / 3), "number")  # full precision, not 4 digits
    assert field_text(True) == ("True", "text")
    assert field_text(pd.NA) == ("", "missing") and field_text(pd.NaT) == ("", "missing")
    assert field_text(b"caf\xc3\xa9") == ("café", "text")
    long = next(s for s in HOSTILE if len(s) > 4000)
    for hostile in HOSTILE:
        if hostile is not long:
            assert field_text(hostile) == (hostile, "text")  # kept literally: the browser shows it as text
    text, kind = field_text(long)  # 10 kB: cut, saying how long it was
    assert kind == "text" and text.startswith(long[:4000]) and text.endswith(f"… ({len(long):,} characters)")


def test_fields_cover_every_column_in_order():
    frame = pd.DataFrame({"id": ["a", "b"], "<b>col</b>": ["<i>v</i>", None], "n": [1, 2]})
    assert fields_of(frame.iloc[0].items()) == [
        {"name": "id", "value": "a", "kind": "text"},
        {"name": "<b>col</b>", "value": "<i>v</i>", "kind": "text"},
        {"name": "n", "value": "1", "kind": "number"},
    ]
    assert fields_of(frame.iloc[1].items())[1]["kind"] == "missing"


# ---------------------------------------------------------------------- the view and its binding
def test_open_row_shows_image_every_value_and_its_true_neighbours(big_space):
    view = DetailView(big_space, n_neighbors=6)
    view.row = 4
    meta = big_space.gallery.metadata
    assert view.filled == 4 and view.item_id == meta["id"].iat[4]
    assert [f["name"] for f in view.fields] == list(meta.columns)
    values = {f["name"]: f["value"] for f in view.fields}
    assert values["caption"] == "<img src=x onerror=alert(1)>"
    assert values["shape"] == meta["shape"].iat[4] and values["x"] == str(meta["x"].iat[4])
    # the large image: a real JPEG at the view's size (the images are 160 px, the grid's 96)
    big = Image.open(io.BytesIO(view.image))
    assert big.format == "JPEG" and big.size == (160, 160)
    assert view.source.startswith("<PIL") and view.problem == ""
    # the neighbours: the exact top 6 by cosine, the row itself left out
    emb = big_space.image_embeddings / np.linalg.norm(big_space.image_embeddings, axis=1, keepdims=True)
    cos = emb @ emb[4]
    cos[4] = -np.inf
    expected = np.argsort(-cos)[:6]
    assert view.neighbors == expected.tolist()
    np.testing.assert_allclose(view.neighbor_scores, cos[expected], atol=1e-5)
    assert view.neighbor_ids == meta["id"].to_numpy()[expected].tolist()
    assert len(view.neighbor_thumbnails) == 6
    assert all(Image.open(io.BytesIO(b)).size == (64, 64) for b in view.neighbor_thumbnails)
    # a missing value is marked, not shown as "nan"
    view.row = 5
    assert {f["name"]: f["kind"] for f in view.fields}["score"] == "missing"


def test_the_rows_tags_show(big_space):
    space = cs.Space.from_embeddings(big_space.gallery, big_space.image_embeddings, model_name="random")
    assert DetailView(space, row=2).tags == []
    space.tag([2, 3], "keep")
    space.tag([2], "odd one")
    view = DetailView(space, row=2)
    assert view.tags == ["keep", "odd one"]
    view.row = 4
    assert view.tags == []


def test_images_travel_as_binary_buffers(big_space):
    view = DetailView(big_space, row=2)
    state = view.get_state()
    _, _, buffers = _remove_buffers(state)
    sizes = sorted(len(b) for b in buffers)
    assert len(view.image) in sizes
    assert all(len(t) in sizes for t in view.neighbor_thumbnails)


def test_bad_rows_are_refused_and_nothing_is_lost(big_space):
    view = DetailView(big_space, row=3)
    version = view.version
    with pytest.raises(IndexError, match=r"outside the gallery \(0\.\.59\)"):
        view.row = 60
    assert view.row == 3 and view.filled == 3 and view.version == version
    with pytest.raises(IndexError):
        view.show(1000)
    with pytest.raises(Exception, match="row"):
        view.row = -2  # below the trait's minimum
    assert view.row == 3


def test_closing_empties_the_view_and_sizes_refill_it(big_space):
    view = DetailView(big_space, row=7)
    view.row = -1
    assert (view.filled, view.item_id, view.image, view.fields, view.neighbors) == (-1, "", b"", [], [])
    view.row = 7
    view.n_neighbors = 3
    assert len(view.neighbors) == 3 and view.filled == 7
    view.image_size = 64
    assert Image.open(io.BytesIO(view.image)).size == (64, 64)
    view.n_neighbors = 0
    assert view.neighbors == [] and view.neighbor_thumbnails == []


def test_an_image_that_cannot_be_decoded_says_so():
    images = [np.full((32, 32, 3), 40 * i, np.uint8) for i in range(4)] + [b"definitely not an image"]
    gallery = cs.Gallery.from_images(images, pd.DataFrame({"label": list("abcde")}))
    space = cs.Space.from_embeddings(gallery, np.eye(5, dtype=np.float32), model_name="random")
    view = DetailView(space, row=4)
    assert view.problem != "" and Image.open(io.BytesIO(view.image)).format == "JPEG"  # a grey placeholder
    assert view.source == "<23 bytes>"
    view.row = 0
    assert view.problem == ""


def test_an_action_for_a_row_no_longer_open_is_ignored(big_space):
    view = DetailView(big_space, row=1)
    seen = []
    view.on_action(lambda action, row: seen.append((action, row)))
    message(view, {"event": "action", "action": "select", "row": 1})
    message(view, {"event": "action", "action": "select", "row": 9})  # sent before another row opened
    message(view, {"event": "action", "action": "delete", "row": 1})  # not an action
    message(view, {"event": "action", "action": "reference", "row": "x"})
    assert seen == [("select", 1)]


# ---------------------------------------------------------------------- the Explorer's links
def test_explorer_opens_details_from_the_grid_and_acts_on_panel_and_map(big_space):
    ex = cs.Explorer(big_space, map="pca", k=10)
    try:
        assert ex.grid.details and ex.detail.actions and ex.detail.row == -1
        first = ex.grid.rows[2]
        message(ex.grid, {"event": "detail", "row": first})  # the ⓘ button, i or Space
        assert ex.detail.row == first and ex.detail.filled == first
        assert ex.query.reference == -1  # opening details does not change the query
        message(ex.grid, {"event": "detail", "row": 10**6})  # out of range: nothing happens
        assert ex.detail.row == first

        before = list(ex.grid.rows)
        message(ex.detail, {"event": "action", "action": "reference", "row": first})
        assert ex.query.reference == first and ex.detail.is_reference
        assert ex.grid.rows != before and first not in ex.grid.rows  # the grid shows its results

        message(ex.detail, {"event": "action", "action": "select", "row": first})
        assert list(ex.map.selected) == [first] and ex.detail.is_selected
        assert ex.grid.mode == "query" and ex.grid.n_selected == 1  # the grid stays on the results
        message(ex.detail, {"event": "action", "action": "select", "row": first})  # twice: still once
        assert list(ex.map.selected) == [first]

        # a neighbour opened in the view (the browser sets row): marks follow the new row
        other = ex.detail.neighbors[0]
        ex.detail.row = other
        assert not ex.detail.is_reference and not ex.detail.is_selected
        message(ex.detail, {"event": "action", "action": "select", "row": other})
        assert list(ex.map.selected) == [first, other]
        message(ex.detail, {"event": "action", "action": "unselect", "row": other})
        assert list(ex.map.selected) == [first] and not ex.detail.is_selected

        # changes made elsewhere show in the view
        extra = next(r for r in range(60) if r not in (first, other))
        ex.map.selected = [other, extra]
        assert ex.detail.is_selected
        ex.query.reference = other
        assert ex.detail.is_reference

        # Escape in the grid: closes the view first, then clears the selection
        message(ex.grid, {"event": "escape"})
        assert ex.detail.row == -1 and len(ex.map.selected) == 2
        message(ex.grid, {"event": "escape"})
        assert len(ex.map.selected) == 0 and ex.grid.mode == "query"
        message(ex.grid, {"event": "escape"})  # nothing left to do: nothing happens
    finally:
        ex.close()


def test_a_selection_made_on_the_map_still_switches_the_grid(big_space):
    ex = cs.Explorer(big_space, map="pca", k=10)
    try:
        ex.controller.select([1, 2], show=False)
        assert ex.grid.mode == "query" and ex.grid.n_selected == 2
        ex.map.selected = [1, 2, 3]  # a drag on the map
        assert ex.grid.mode == "selection" and ex.grid.rows == [1, 2, 3]
        ex.show_detail(2)
        message(ex.detail, {"event": "action", "action": "unselect", "row": 2})
        assert ex.grid.mode == "selection" and ex.grid.rows == [1, 3]  # the shown selection follows
    finally:
        ex.close()


def test_show_detail_validates_and_close_unlinks(big_space):
    ex = cs.Explorer(big_space, map="pca", k=5)
    ex.show_detail(8)
    assert ex.detail.row == 8
    with pytest.raises(IndexError):
        ex.show_detail(99)
    assert ex.detail.row == 8
    ex.close_detail()
    assert ex.detail.row == -1
    grid, detail = ex.grid, ex.detail
    ex.close()
    ex.close()  # twice: nothing happens
    assert grid._key_callbacks["detail"].callbacks == [] and detail._action_callbacks.callbacks == []


def test_a_grid_on_its_own_has_no_details_button(big_space):
    grid = cs.NeighborGrid(big_space, rows=[1, 2])
    assert grid.details is False
    message(grid, {"event": "detail", "row": 1})  # nobody listens: nothing happens
    message(grid, {"event": "escape"})


# ---------------------------------------------------------------------- the front end, statically
def test_detail_view_js_shows_text_as_text_and_shares_the_helpers():
    source = (JS / "detail_view.js").read_text()
    assert "export default { render }" in source and "function render({ model, el })" in source
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "createContextualFragment"):
        assert sink not in source
    shared = shared_sources(JS)
    copied = blocks(source)
    assert set(copied) == {"codec", "thumbs", "dom", "kernel"}
    assert all(body == shared[name] for name, body in copied.items())
    outside = BLOCK.sub("", source)
    assert "function h(" not in outside and "function imageURL(" not in outside
    assert DetailView._esm and "cirscope-detail" in str(DetailView._esm)
    assert '["detail", "cs-slot-detail"]' in (JS / "explorer.js").read_text()

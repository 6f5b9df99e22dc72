"""The widgets' Python side without a browser: traits, codec, bindings and the Explorer's links.

The browser behaviour (drawing, clicks, sliders, escaping) is tested in tests/ui/.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import traitlets
from ipywidgets.widgets.widget import _remove_buffers

import cirscope as cs
from cirscope.widgets import Explorer, MapView, NeighborGrid, QueryPanel
from cirscope.widgets._codec import Array, array_from_json, array_to_json, rows_from_json, rows_to_json
from cirscope.widgets._controller import gallery_sample
from cirscope.widgets._map_data import (
    MetadataText,
    color_columns,
    color_encoding,
    default_color_column,
    map_coords,
)

JPEG = b"\xff\xd8"


@pytest.fixture(scope="module")
def pca(toy_space) -> np.ndarray:
    return toy_space.map("pca")


def click(widget, row: int) -> None:
    """What the front end sends when a point or a thumbnail is clicked."""
    widget._handle_custom_msg({"event": "click", "row": row}, [])


# ---------------------------------------------------------------------- codec and traits
def test_array_codec_round_trip_and_wire_dtypes():
    out = array_to_json(np.arange(6, dtype=np.float64).reshape(3, 2))
    assert out["dtype"] == "float32" and out["shape"] == [3, 2]
    assert isinstance(out["data"], memoryview) and len(out["data"]) == 6 * 4
    back = array_from_json(out)
    assert back.dtype == np.float32 and back.tolist() == [[0, 1], [2, 3], [4, 5]]
    assert array_to_json(np.array([True, False]))["dtype"] == "uint8"
    assert array_to_json(None) is None
    with pytest.raises(TypeError, match="cannot be sent"):
        array_to_json(np.array(["a"]))
    assert rows_from_json(rows_to_json([4, 1])) == [4, 1]
    assert rows_from_json([2, 3]) == [2, 3]


def test_array_trait_validates_shape_and_values():
    class T(traitlets.HasTraits):
        xy = Array(np.float32, ndim=2, width=2)

    assert T(xy=[[0, 1]]).xy.dtype == np.float32
    with pytest.raises(traitlets.TraitError, match="shape"):
        T(xy=[[0, 1, 2]])
    with pytest.raises(traitlets.TraitError, match="2-D"):
        T(xy=[0, 1])
    with pytest.raises(traitlets.TraitError, match="NaN"):
        T(xy=[[0, np.nan]])


def test_unknown_keyword_is_a_helpful_type_error(toy_space):
    with pytest.raises(TypeError, match="did you mean 'color_by'"):
        MapView(colr_by="shape")
    with pytest.raises(TypeError, match="unexpected keyword argument 'alpha'"):
        QueryPanel(alpha=1.0)
    with pytest.raises(TypeError):
        NeighborGrid(toy_space, thumbsize=64)


def test_coordinates_and_thumbnails_travel_as_binary_buffers(toy_space):
    view = MapView(toy_space, map="pca")
    grid = NeighborGrid(toy_space, rows=[1, 2, 3])
    for widget, binary in ((view, {"coords", "colors"}), (grid, {"thumbnails", "rows"})):
        state, paths, buffers = _remove_buffers(widget.get_state())
        assert binary <= {p[0] for p in paths}
        # no long JSON lists of numbers anywhere in the JSON part
        for value in state.values():
            if isinstance(value, list):
                assert not (len(value) > 3 and all(isinstance(v, float) for v in value))
    _, paths, buffers = _remove_buffers(grid.get_state())
    thumbs = [b for p, b in zip(paths, buffers, strict=True) if p[0] == "thumbnails"]
    assert len(thumbs) == 3 and all(bytes(b[:2]) == JPEG for b in thumbs)


# ---------------------------------------------------------------------- map data
def test_color_encoding_categorical_named_colours_and_missing():
    enc = color_encoding(pd.Series(["red", "blue", None, "red"]))
    assert enc["mode"] == "categorical"
    assert [(i["label"], i["count"]) for i in enc["legend"]] == [("red", 2), ("blue", 1), ("missing", 1)]
    assert enc["rgb"].shape == (4, 3) and enc["rgb"].dtype == np.uint8
    assert enc["rgb"][0].tolist() == [220, 30, 30]  # "red" is drawn red
    assert enc["rgb"][2].tolist() == [200, 200, 200]


def test_color_encoding_continuous_and_many_categories():
    enc = color_encoding(pd.Series(np.linspace(0.0, 1.0, 50)))
    assert enc["mode"] == "continuous" and enc["colorbar"]["min"] == 0.0 and enc["colorbar"]["max"] == 1.0
    assert enc["rgb"][0].tolist() != enc["rgb"][-1].tolist()
    many = color_encoding(pd.Series([f"v{i % 30}" for i in range(300)]))
    assert len(many["legend"]) == 20 and many["legend"][-1]["label"].startswith("other (11 values)")
    assert color_encoding(None)["mode"] == "none"


def test_color_columns_pick_repeating_columns(toy_space):
    meta = toy_space.metadata
    cols = color_columns(meta)
    assert {"shape", "color", "background", "size"} <= set(cols)
    assert "id" not in cols and "source" not in cols  # one value only
    assert default_color_column(meta) == "color"  # the shapes world: its labels name the points' colours


def test_the_colour_menu_offers_metadata_not_drawing_parameters(toy_space, pca):
    """The shapes world's x, y, radius and rotation say where and how big a shape was drawn: not in the menu."""
    view = MapView(toy_space, map="pca")
    assert {"x", "y", "radius", "rotation"} <= set(toy_space.metadata.columns)
    assert not {"x", "y", "radius", "rotation", "id"} & set(view.color_columns)
    assert {"shape", "color", "background", "size"} <= set(view.color_columns)
    assert color_columns(toy_space.metadata) == view.color_columns
    # a user's own numeric columns named x and y stay in the menu
    mine = pd.DataFrame({"id": list("abcd"), "x": [0.1, 0.2, 0.3, 0.4], "y": [1, 2, 1, 2], "rotation": [0, 90, 0, 90]})
    assert color_columns(mine) == ["x", "y", "rotation"]
    # asked for by name, a hidden column still colours the map (and joins the menu)
    explicit = MapView(toy_space, map="pca", color_by="radius")
    assert explicit.color_by == "radius" and "radius" in explicit.color_columns and explicit.colorbar


def test_metadata_text_is_plain_short_strings():
    meta = pd.DataFrame({"id": ["a", "b"], "x": [1.23456789, np.nan], "note": ["<b>hi</b>", "y" * 500]})
    rows = MetadataText(meta, skip=("id",)).rows([0, 1])
    assert rows[0] == {"x": "1.235", "note": "<b>hi</b>"}
    assert rows[1]["x"] == "" and len(rows[1]["note"]) == 200


def test_map_coords_methods_and_validation(toy_space, pca):
    assert np.array_equal(map_coords(toy_space, "pca"), pca)
    xy = np.random.default_rng(0).normal(size=(len(toy_space), 2))
    assert np.allclose(map_coords(toy_space, xy), xy.astype(np.float32))
    with pytest.raises(ValueError, match="shape"):
        map_coords(toy_space, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="NaN"):
        map_coords(toy_space, np.full((len(toy_space), 2), np.nan))
    with pytest.raises(ValueError, match="Unknown map"):
        map_coords(toy_space, "tsne")


def test_gallery_sample_spreads_rows():
    assert gallery_sample(10, 4).tolist() == [0, 3, 6, 9]
    assert gallery_sample(3, 20).tolist() == [0, 1, 2]
    assert gallery_sample(5, 0).tolist() == []


# ---------------------------------------------------------------------- parts on their own
def test_map_view_from_a_space(toy_space, pca):
    view = MapView(toy_space, map="pca", color_by="color")
    assert np.array_equal(view.coords, pca)
    assert view.colors.shape == (len(toy_space), 3)
    assert {i["label"] for i in view.legend} == set(toy_space.metadata["color"].unique())
    assert "color" in view.color_columns
    view.color_by = "radius"  # numeric: a colour bar
    assert view.colorbar["max"] == pytest.approx(float(toy_space.metadata["radius"].max()))
    assert view.legend == []
    view.hovered = 7
    assert view.hover_row == 7 and view.hover_image[:2] == JPEG
    assert view.hover_meta["id"] == toy_space.gallery.ids[7]
    seen = []
    view.on_click(seen.append)
    click(view, 5)
    click(view, 5)
    assert seen == [5, 5] and view.clicked == 5
    with pytest.raises(KeyError, match="not a metadata column"):
        MapView(toy_space, map="pca", color_by="nope")


def test_neighbor_grid_shows_rows_and_exports_them(toy_space):
    grid = NeighborGrid(toy_space, rows=[3, 1, 4])
    ids = toy_space.gallery.ids
    assert grid.ids == [ids[3], ids[1], ids[4]]
    assert len(grid.thumbnails) == 3 and all(t[:2] == JPEG for t in grid.thumbnails)
    assert grid.metadata[0]["shape"] == toy_space.metadata["shape"][3] and "id" not in grid.metadata[0]
    df = grid.to_dataframe()
    assert df[["rank", "row"]].values.tolist() == [[1, 3], [2, 1], [3, 4]]
    assert df["id"].tolist() == grid.ids and "color" in df.columns
    version = grid.version
    grid.show([5, 6], scores=[0.9, 0.8], title="two")
    assert grid.version == version + 1 and grid.title == "two"
    assert grid.to_dataframe()["score"].tolist() == pytest.approx([0.9, 0.8])
    small = len(grid.thumbnails[0])
    grid.thumb_size = 32
    assert len(grid.thumbnails[0]) < small and grid.rows == [5, 6]
    with pytest.raises(IndexError, match="outside the gallery"):
        grid.show([len(toy_space)])
    with pytest.raises(ValueError, match="one score per row"):
        grid.show([1, 2], scores=[0.5])
    with pytest.raises(RuntimeError, match="NeighborGrid\\(space\\)"):
        NeighborGrid().show([1])


def test_query_panel_runs_the_same_search_as_python(toy_space):
    panel = QueryPanel(toy_space)
    assert panel.result is None and panel.results == [] and "reference" in panel.status
    panel.text = "a blue star"
    expected = toy_space.search("a blue star", k=20)
    assert panel.results == expected["row"].tolist()
    panel.reference = 0
    query = cs.ComposedQuery(0, "a blue star")
    expected = toy_space.search(query, method="pdv", k=20, alpha_t=1.0, alpha_i=1.0, beta=0.75)
    assert panel.results == expected["row"].tolist()
    assert panel.reference_thumbnail[:2] == JPEG and panel.reference_id == toy_space.gallery.ids[0]
    assert panel.composed_text.endswith("a blue star") and panel.composed_text_source == "template"
    assert panel.reference_text_source == "caption"
    version = panel.result_version
    panel.alpha_t = 1.8
    assert panel.result_version == version + 1
    expected = toy_space.search(query, method="pdv", k=20, alpha_t=1.8, alpha_i=1.0, beta=0.75)
    assert panel.results == expected["row"].tolist()
    assert np.allclose(panel.scores, expected["score"])
    panel.method, panel.a = "slerp", 0.3
    expected = toy_space.search(query, method="slerp", k=20, a=0.3)
    assert panel.results == expected["row"].tolist() and panel.params() == {"a": 0.3}


def test_query_panel_texts_requests_and_errors(toy_space):
    panel = QueryPanel(toy_space, reference=2, text="make it red", k=5)
    assert len(panel.results) == 5
    panel.composed_text_override = "a red square"
    assert panel.composed_text == "a red square" and panel.composed_text_source == "explicit"
    expected = toy_space.search(cs.ComposedQuery(2, "make it red", composed_text="a red square"), k=5)
    assert panel.results == expected["row"].tolist()
    panel.reference = 3  # a new reference: typed texts described the old one
    assert panel.composed_text_override == "" and panel.composed_text_source == "template"
    # a browser request is always answered, even when nothing else changed
    version = panel.result_version
    panel.request += 1
    assert panel.served == panel.request and panel.result_version == version + 1
    panel.reference = -1
    panel.text = ""
    assert panel.result is None and panel.results == []
    no_model = cs.Space.from_embeddings(toy_space.gallery, toy_space.image_embeddings, model_name="x")
    broken = QueryPanel(no_model, text="a red star")
    assert "no embedder" in broken.error and broken.results == []


def test_parts_link_with_traitlets(toy_space):
    panel, grid = QueryPanel(toy_space, reference=4), NeighborGrid(toy_space)
    traitlets.dlink((panel, "results"), (grid, "rows"))
    assert grid.rows == panel.results and len(grid.thumbnails) == 20
    panel.text = "make it green"
    assert grid.rows == panel.results
    assert grid.to_dataframe()["id"].tolist() == panel.result["id"].tolist()


# ---------------------------------------------------------------------- the Explorer
def test_explorer_links_clicks_results_and_map(toy_space, pca):
    ex = Explorer(toy_space, map="pca", k=10)
    assert ex.grid.rows == gallery_sample(len(toy_space), 10).tolist()
    assert ex.grid.show_toggle and ex.map.highlighted.size == 0 and ex.map.query_point == []
    click(ex.grid, 0)
    assert ex.query.reference == 0 and ex.map.reference == 0 and ex.grid.reference == 0
    expected = toy_space.search(0, k=10)
    assert ex.grid.rows == expected["row"].tolist()
    click(ex.map, 7)
    assert ex.query.reference == 7
    ex.query.text = "make it blue"
    ex.query.alpha_t = 1.6
    query = cs.ComposedQuery(7, "make it blue")
    expected = toy_space.search(query, method="pdv", k=10, alpha_t=1.6, alpha_i=1.0, beta=0.75)
    df = ex.grid.to_dataframe()
    assert df["id"].tolist() == expected["id"].tolist()
    assert df["score"].to_numpy() == pytest.approx(expected["score"].to_numpy())
    assert ex.map.highlighted.tolist() == expected["row"].tolist()
    # the query is placed with cirscope.projection._place.place from the search's own rows and scores, inside the map
    from cirscope.projection._place import place

    placed = place(coords=pca, rows=expected["row"].to_numpy(), scores=expected["score"].to_numpy(), k=10)
    assert ex.map.query_point == pytest.approx(placed[0].tolist(), abs=1e-5)
    ex.close()


def test_method_names_agree_in_the_menu_grid_header_status_and_registry(toy_space):
    """One human name per method: the panel's menu, the grid header, the status line and the
    registry say the same (the API key stays ``"pdv"``)."""
    from cirscope.query._methods import METHODS

    ex = Explorer(toy_space, map="pca", k=5, reference=2, text="make it blue")
    menu = {m["name"]: (m["title"], m["full_name"]) for m in ex.query.methods}
    assert menu == {name: (m.title, m.full_name) for name, m in METHODS.items()}
    assert menu["pdv"] == ("PDV", "Prompt Directional Vector")
    for name in METHODS:
        ex.query.method = name
        title = METHODS[name].title
        assert ex.grid.title == f"Top 5 · {title}"
        assert ex.query.status.startswith(f"{title}: 5 results")
    ex.query.method = "pdv"
    assert "PDV-F" not in ex.grid.title + ex.query.status and " pdv" not in ex.grid.title
    ex.close()


def test_explorer_selection_toggle_and_back(toy_space):
    ex = Explorer(toy_space, map="pca", reference=3, text="make it yellow")
    results = list(ex.grid.rows)
    ex.map.selected = [10, 11, 12]
    assert ex.map.selected_ids == [str(i) for i in toy_space.gallery.ids[[10, 11, 12]]]
    assert ex.grid.mode == "selection" and ex.grid.rows == [10, 11, 12] and ex.grid.n_selected == 3
    assert ex.grid.to_dataframe()["row"].tolist() == [10, 11, 12]
    assert ex.grid.title.startswith("Map selection: 3")
    ex.grid.mode = "query"  # the toggle
    assert ex.grid.rows == results
    ex.grid.mode = "selection"
    assert ex.grid.rows == [10, 11, 12]
    ex.query.beta = 0.5  # a new search brings the results back
    assert ex.grid.mode == "query" and ex.grid.rows == ex.query.results
    ex.map.selected = list(range(250))
    assert len(ex.grid.rows) == 200 and "showing the first 200" in ex.grid.title
    ex.map.selected = []
    assert ex.grid.mode == "query"


def test_explorer_shows_rows_from_a_diagnostics_widget(toy_space):
    import ipywidgets

    class FakePanel(ipywidgets.VBox):
        shown_rows = traitlets.List(traitlets.Int())

    fake = FakePanel()
    ex = Explorer(toy_space, map="pca", diagnostics=fake)
    assert ex.diagnostics is fake and ex.get_state()["diagnostics"] == f"anywidget:{fake.model_id}"
    ex.tab = "diagnostics"  # the front end's tab bar
    with pytest.raises(traitlets.TraitError):
        ex.tab = "charts"
    fake.shown_rows = [5, 9]
    assert ex.grid.mode == "selection" and ex.grid.rows == [5, 9]
    assert ex.map.selected == [5, 9] and ex.grid.selection_label == "Diagnostics"
    ex.map.selected = [1]  # a later map selection is labelled as such
    assert ex.grid.selection_label == "Map selection"
    with pytest.raises(TypeError, match="diagnostics must be"):
        Explorer(toy_space, map="pca", diagnostics="yes")


@pytest.mark.slow
def test_explorer_builds_the_diagnostics_panel(toy_space):
    from cirscope.widgets import DiagnosticsPanel

    ex = Explorer(toy_space, map="pca", diagnostics=True)
    assert isinstance(ex.diagnostics, DiagnosticsPanel)
    assert cs.DiagnosticsPanel is DiagnosticsPanel
    ex.diagnostics.shown_rows = [2, 4, 6]
    assert ex.grid.rows == [2, 4, 6] and ex.grid.selection_label == "Diagnostics"


def test_top_level_names():
    assert cs.Explorer is Explorer and cs.MapView is MapView
    assert cs.QueryPanel is QueryPanel and cs.NeighborGrid is NeighborGrid


def test_bad_input_leaves_every_widget_consistent(toy_space, pca, monkeypatch):
    """Errors are shown (or raised) without leaving stale or half-updated state behind."""
    panel = QueryPanel(toy_space, text="a red star")
    panel.reference = 10**6
    assert "outside the gallery" in panel.error and len(panel.results) == 20  # the text query still runs
    panel = QueryPanel(toy_space, reference=0, text="make it blue")
    version = panel.result_version
    monkeypatch.setattr("cirscope.widgets._query_panel.search_hits",
                        lambda *a, **k: (_ for _ in ()).throw(ValueError("boom")))
    panel.text = "make it red"
    assert panel.error == "ValueError: boom" and panel.results == [] and panel.result_version > version
    monkeypatch.undo()
    view = MapView(toy_space, map=pca, color_by="color")
    with pytest.raises(KeyError, match="not a metadata column"):
        view.color_by = "nope"
    assert view.color_by == "color"
    grid = NeighborGrid(toy_space, rows=[1, 2])
    with pytest.raises(IndexError, match="outside the gallery"):
        grid.rows = [0, 10**6]
    assert grid.rows == [1, 2] and len(grid.to_dataframe()) == 2

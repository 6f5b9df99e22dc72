"""Metadata filters: masks and cross-filter counts (by hand and against pandas), the FilterPanel and
its binding, searches restricted by the filters in an Explorer, and hostile values kept as text."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cirscope as cs
from cirscope.space._filters import Filter, FilterColumn, FilterTable, where_mask
from cirscope.widgets._filter_charts import (
    active_keys,
    bar_counts,
    chart_spec,
    chip_text,
    click_filter,
    filter_columns,
    range_of_bins,
)
from cirscope.widgets._filters import FilterPanel
from tests.hostile_strings import HOSTILE, HOSTILE_COLUMN, HOSTILE_LABELS

# ---------------------------------------------------------------------- a small frame, counted by hand
#   row:     0      1       2      3     4       5      6       7
COLOR = ["red", "blue", "red", None, "green", "red", "blue", "red"]
SIZE = [1.0, 2.0, np.nan, 4.0, 5.0, 6.0, 7.0, 8.0]
SHAPE = ["star", "star", "cube", "cube", "star", "cube", "cube", "star"]


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame({"color": COLOR, "size": SIZE, "shape": SHAPE})


def test_categories_are_coded_by_frequency_with_missing_last(frame):
    col = FilterColumn.of("color", frame["color"])
    assert col.kind == "categories"
    assert col.categories == ["red", "blue", "green"]
    assert col.codes.tolist() == [0, 1, 0, 3, 2, 0, 1, 0]
    assert col.total.tolist() == [4, 2, 1, 1]  # red, blue, green, missing


def test_numbers_with_many_values_get_bins_and_nan_is_missing():
    values = pd.Series([0.0, 1.0, 2.0, np.nan, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, np.inf, *np.arange(10.0, 30.0)])
    col = FilterColumn.of("v", values, bins=3)
    assert col.kind == "histogram"
    assert col.edges.tolist() == pytest.approx([0.0, 29 / 3, 58 / 3, 29.0])
    # 0..9 in the first bin, 10..19 in the second, 20..29 in the last (29 itself included), NaN and inf missing
    assert col.total.tolist() == [9, 10, 10, 2]
    f = range_of_bins(col, 1, 2)
    assert int(col.mask(f).sum()) == 20
    assert int(col.mask(Filter("range", lo=5.0, hi=12.0)).sum()) == 8  # 5..9 and 10..12, NaN and inf out
    assert int(col.mask(col.make([3.0, None])).sum()) == 1  # no 3 in the data; NaN only (inf is not NaN)


def test_few_numbers_are_bars_and_take_ranges_too(frame):
    col = FilterColumn.of("n", pd.Series([1, 2, 2, 3, None, 3, 3]))
    assert col.kind == "categories" and col.categories == [3.0, 2.0, 1.0]
    assert col.mask(col.make((2, 3))).tolist() == [False, True, True, True, False, True, True]
    assert col.mask(col.make([2])).tolist() == [False, True, True, False, False, False, False]
    assert col.mask(col.make("2")).tolist() == col.mask(col.make([2])).tolist()  # text from a browser matches


def test_masks_by_hand(frame):
    table = FilterTable(frame, bins=4)
    assert table.mask(None) is None and table.mask({}) is None
    assert table.mask({"color": "red"}).tolist() == [True, False, True, False, False, True, False, True]
    assert table.mask({"color": ["red", "blue"]}).tolist() == [True, True, True, False, False, True, True, True]
    assert table.mask({"color": [None]}).tolist() == [False, False, False, True, False, False, False, False]
    # AND across columns; the range is inclusive and leaves out the missing size
    assert table.mask({"color": "red", "size": (1.0, 6.0)}).tolist() == [True] + [False] * 4 + [True, False, False]
    assert table.mask({"shape": "cube", "size": (None, 4.0)}).tolist() == [False] * 3 + [True] + [False] * 4
    assert table.mask({"color": []}) is None  # an empty list is no filter


def test_cross_filter_counts_by_hand(frame):
    table = FilterTable(frame, bins=4)
    mask, counts = table.counts({"color": ["red"], "shape": ["star"]})
    assert mask.tolist() == [True, False, False, False, False, False, False, True]
    # color is counted with the shape filter only: star rows 0, 1, 4, 7 -> red 2, blue 1, green 1, missing 0
    assert counts["color"].tolist() == [2, 1, 1, 0]
    # shape is counted with the colour filter only: red rows 0, 2, 5, 7 -> star 2, cube 2
    assert counts["shape"].tolist() == [2, 2, 0]
    # size has no filter: counted within both (rows 0 and 7: sizes 1 and 8)
    size = table.columns["size"]
    assert counts["size"].sum() == 2 and counts["size"][size.codes[0]] == 1 and counts["size"][size.codes[7]] == 1


def test_cross_filter_counts_match_pandas_on_random_data():
    rng = np.random.default_rng(3)
    n = 5000
    meta = pd.DataFrame({
        "a": rng.choice(["x", "y", "z", None], n),
        "b": rng.choice(list("pqrstu"), n),
        "v": np.where(rng.random(n) < 0.05, np.nan, rng.normal(size=n)),
    })
    table = FilterTable(meta, bins=10)
    filters = {"a": ["x", None], "b": ["p", "q", "r"], "v": (-0.5, 1.0)}
    mask, counts = table.counts(filters)
    keep_a = meta["a"].isin(["x"]) | meta["a"].isna()
    keep_b = meta["b"].isin(["p", "q", "r"])
    keep_v = meta["v"].between(-0.5, 1.0)
    assert np.array_equal(mask, (keep_a & keep_b & keep_v).to_numpy())
    expect_b = meta.loc[keep_a & keep_v, "b"].value_counts()
    col_b = table.columns["b"]
    assert {c: int(counts["b"][i]) for i, c in enumerate(col_b.categories)} == {c: int(expect_b.get(c, 0)) for c in
                                                                                  col_b.categories}
    col_v = table.columns["v"]
    inside_v = meta.loc[keep_a & keep_b, "v"]
    expect_v, _ = np.histogram(inside_v.dropna(), bins=col_v.edges)
    assert counts["v"][:-1].tolist() == expect_v.tolist() and counts["v"][-1] == int(inside_v.isna().sum())


def test_bad_filters_raise_clear_errors(frame):
    table = FilterTable(frame)
    with pytest.raises(KeyError, match="No filterable column 'colour'"):
        table.mask({"colour": "red"})
    with pytest.raises(ValueError, match=r"has no value 'rde'; did you mean \['red'\]"):
        table.mask({"color": "rde"})
    with pytest.raises(ValueError, match="low <= high"):
        FilterTable(pd.DataFrame({"v": np.arange(30.0)})).mask({"v": (5, 1)})
    with pytest.raises(TypeError, match="holds numbers"):
        FilterTable(pd.DataFrame({"v": np.arange(30.0)})).mask({"v": ["big"]})
    with pytest.raises(TypeError, match="dict of column"):
        table.mask(["color"])
    with pytest.raises(KeyError, match="No metadata column 'nope'"):
        FilterTable(frame, ["nope"])


def test_where_mask_takes_filters_or_a_boolean_mask(frame):
    assert where_mask(frame, {"shape": "cube"}).tolist() == (frame["shape"] == "cube").tolist()
    assert where_mask(frame, frame["shape"] == "cube").tolist() == (frame["shape"] == "cube").tolist()
    assert where_mask(frame, {}).all()
    with pytest.raises(TypeError, match="boolean mask of 8 values"):
        where_mask(frame, [1, 0, 1])


# ---------------------------------------------------------------------- charts, clicks, chips
def test_chart_bars_top_values_other_and_missing():
    s = pd.Series(["a"] * 5 + ["b"] * 4 + ["c"] * 3 + ["d"] * 2 + ["e"] + [None] * 2)
    col = FilterColumn.of("c", s)
    spec = chart_spec(col, top=2)
    assert [b["key"] for b in spec["bars"]] == ["0", "1", "other", "missing"]
    assert [b["label"] for b in spec["bars"]] == ["a", "b", "other (3 values)", "missing"]
    assert spec["total"] == [5, 4, 6, 2]
    f = click_filter(col, None, "other", top=2)
    assert col.describe(f) == ["c", "d", "e"] and active_keys(col, f, top=2) == {"on": ["other"], "partial": []}
    f = Filter("codes", codes=(0, 3))
    assert active_keys(col, f, top=2) == {"on": ["0"], "partial": ["other"]}
    assert click_filter(col, click_filter(col, None, "missing", 2), "missing", 2) is None
    assert chip_text(col, Filter("codes", codes=(0, 1, 2, 5))) == "a, b, c +1 more"
    assert chip_text(col, Filter("codes", codes=(5,))) == "missing"
    assert bar_counts(col, np.array([1, 1, 1, 1, 1, 7]), top=2) == [1, 1, 3, 7]


def test_a_lone_leftover_value_gets_its_own_bar():
    col = FilterColumn.of("c", pd.Series(list("aabbc")))
    assert [b["label"] for b in chart_spec(col, top=2)["bars"]] == ["a", "b", "c"]


def test_histogram_clicks_ranges_and_their_bars():
    col = FilterColumn.of("v", pd.Series(np.r_[np.arange(100.0), np.nan]), bins=4)
    f = click_filter(col, None, "2")
    assert (f.lo, int(col.mask(f).sum())) == (49.5, 25)
    assert active_keys(col, f) == {"on": ["2"], "partial": []}
    assert click_filter(col, f, "2") is None  # a second click on the same bin: no filter
    assert active_keys(col, range_of_bins(col, 3, 0))["on"] == ["0", "1", "2", "3"]
    assert chip_text(col, Filter("range", lo=1.0, hi=2.5)) == "1 – 2.5" and chip_text(col, Filter("range", hi=2.0)) == "≤ 2"
    missing = click_filter(col, f, "missing")
    assert int(col.mask(missing).sum()) == 1 and active_keys(col, missing)["on"] == ["missing"]
    with pytest.raises(ValueError, match="No bar '7'"):
        click_filter(col, None, "7")


def test_integer_histogram_bins_count_exactly_what_their_range_keeps():
    col = FilterColumn.of("n", pd.Series(np.arange(101)), bins=20)  # edges on multiples of 5
    for i in range(20):
        assert int(col.mask(range_of_bins(col, i, i)).sum()) == int(col.total[i])


def test_filter_columns_leave_out_ids_paths_and_single_values():
    meta = pd.DataFrame({
        "id": [f"i{i}" for i in range(40)], "path": [f"/p/{i}.jpg" for i in range(40)], "index": np.arange(40),
        "one": ["x"] * 40, "kind": ["a", "b"] * 20, "score": np.linspace(0, 1, 40),
    })
    assert filter_columns(meta) == ["kind", "score"]


# ---------------------------------------------------------------------- the panel and its binding
@pytest.fixture
def space(toy_space):
    """The shapes world (300 items) with the toy model, shared by the session: tests leave it as they found it."""
    return toy_space


def test_panel_clicks_counts_and_python_filters(space):
    panel = FilterPanel(space)
    meta = space.gallery.metadata
    assert [c["column"] for c in panel.charts] == ["shape", "color", "background", "size"]
    assert panel.n_total == panel.n_matching == len(space) and panel.chips == []
    seen = []
    panel.on_change(seen.append)
    color = next(c for c in panel.charts if c["column"] == "color")
    red = next(b["key"] for b in color["bars"] if b["label"] == "red")
    panel._handle_custom_msg({"event": "toggle", "column": "color", "key": red}, [])  # what a click sends
    is_red = (meta["color"] == "red").to_numpy()
    assert panel.filters == {"color": ["red"]} and panel.n_matching == int(is_red.sum())
    assert np.array_equal(panel.mask, is_red) and np.array_equal(seen[-1], is_red)
    assert panel.chips == [{"column": "color", "text": "red"}] and panel.active["color"]["on"] == [red]
    shape = next(c for c in panel.charts if c["column"] == "shape")
    expect = meta.loc[is_red, "shape"].value_counts()
    assert panel.counts["shape"] == [int(expect.get(b["label"], 0)) for b in shape["bars"]]
    assert panel.counts["color"] == color["total"]  # its own chart counts without its own filter
    # a second value of the same column: OR; a filter on another column: AND
    panel.filters = {"color": ["red", "blue"], "size": "large"}
    want = meta["color"].isin(["red", "blue"]) & (meta["size"] == "large")
    assert panel.n_matching == int(want.sum())
    panel._handle_custom_msg({"event": "remove", "column": "size"}, [])
    assert list(panel.filters) == ["color"]
    panel._handle_custom_msg({"event": "clear"}, [])
    assert panel.filters == {} and panel.mask is None and seen[-1] is None and panel.n_matching == len(space)


def test_a_bad_filter_changes_nothing_and_bad_messages_only_say_so(space):
    panel = FilterPanel(space)
    panel.filters = {"color": "red"}
    with pytest.raises(ValueError, match="no value 'purpel'"):
        panel.filters = {"shape": "star", "color": "purpel"}
    assert panel.filters == {"color": ["red"]}
    for msg in ({"event": "toggle", "column": "nope", "key": "0"}, {"event": "toggle", "column": "color", "key": "x"},
                {"event": "bins", "column": "color", "first": 0, "last": 1}):
        panel._handle_custom_msg(msg, [])
        assert panel.error.startswith("Filter: ") and panel.filters == {"color": ["red"]}
    panel._handle_custom_msg({"event": "toggle", "column": 3}, [])  # ignored
    panel._handle_custom_msg("not a dict", [])
    assert FilterPanel().filters == {} and FilterPanel().mask is None
    with pytest.raises(RuntimeError, match=r"FilterPanel\(space\)"):
        FilterPanel().filters = {"a": 1}


def test_messages_to_the_browser_carry_counts_not_rows():
    n = 20_000
    rng = np.random.default_rng(0)
    meta = pd.DataFrame({"id": [f"r{i}" for i in range(n)], "kind": rng.choice(list("abcdefghijklmnopq"), n),
                         "score": rng.random(n)})
    vectors = rng.normal(size=(n, 8)).astype("float32")
    sp = cs.Space.from_embeddings(cs.Gallery(meta, [f"r{i}.png" for i in range(n)]), vectors, model_name="random")
    panel = FilterPanel(sp)
    panel.filters = {"kind": ["a", "b"], "score": (0.1, 0.6)}
    state = panel.get_state()
    for name in ("counts", "active", "chips", "charts"):
        assert len(repr(state[name])) < 5_000, name
    for chart in panel.charts:
        assert len(panel.counts[chart["column"]]) == len(chart["bars"]) == len(chart["total"])


def test_hostile_values_and_column_names_stay_text(space):
    meta = space.gallery.metadata.copy()
    meta["note"] = [HOSTILE_LABELS[i % len(HOSTILE_LABELS)] for i in range(len(meta))]
    meta[HOSTILE_COLUMN] = [HOSTILE[i % 3] for i in range(len(meta))]
    hostile = cs.Space.from_embeddings(cs.Gallery(meta, space.gallery.sources), space.image_embeddings, model_name="toy")
    panel = FilterPanel(hostile, columns=["note", HOSTILE_COLUMN])
    labels = {b["label"] for c in panel.charts for b in c["bars"]}
    assert set(HOSTILE_LABELS) <= labels and set(HOSTILE[:3]) <= labels  # the strings themselves, not escaped
    note = panel.charts[0]
    key = next(b["key"] for b in note["bars"] if b["label"] == HOSTILE_LABELS[2])
    panel._handle_custom_msg({"event": "toggle", "column": "note", "key": key}, [])
    assert panel.filters == {"note": [HOSTILE_LABELS[2]]} and panel.chips[0]["text"] == HOSTILE_LABELS[2]
    panel.filters = {HOSTILE_COLUMN: HOSTILE[0]}
    assert panel.chips == [{"column": HOSTILE_COLUMN, "text": HOSTILE[0]}]
    assert panel.n_matching == int((meta[HOSTILE_COLUMN] == HOSTILE[0]).sum())
    long = FilterColumn.of("t", pd.Series([HOSTILE[21], "b", "b"]))
    assert len(chart_spec(long)["bars"][1]["label"]) == 80  # a 10 kB value is cut for its bar


# ---------------------------------------------------------------------- searches inside the filters
def test_space_search_where(space):
    meta = space.gallery.metadata
    q = cs.ComposedQuery(0, "make it blue")
    got = space.search(q, k=10, where={"shape": ["star", "circle"], "size": "small"})
    assert set(got["shape"]) <= {"star", "circle"} and set(got["size"]) == {"small"} and len(got) == 10
    mask = (meta["shape"].isin(["star", "circle"]) & (meta["size"] == "small")).to_numpy()
    assert got["row"].tolist() == space.search(q, k=10, mask=mask)["row"].tolist()
    space.tag([1, 2, 3], "picked")
    try:
        assert sorted(space.search(0, k=5, where={"tag:picked": True})["row"]) == [1, 2, 3]
    finally:
        space.tags.drop("picked")
    with pytest.raises(TypeError, match="not both"):
        space.search(q, where={"size": "small"}, mask=mask)


def test_explorer_filters_restrict_the_map_grid_and_every_search(space):
    meta = space.gallery.metadata
    ex = cs.Explorer(space, map="pca", k=8)
    try:
        assert ex.filter_panel is not None and ex.filters == {}
        ex.filters = {"color": ["red", "green"]}
        inside = meta["color"].isin(["red", "green"]).to_numpy()
        assert sorted(ex.map.dimmed) == np.flatnonzero(~inside).tolist()
        assert inside[ex.grid.rows].all() and "inside the filters" in ex.grid.title  # the gallery sample
        ex.query.reference = int(np.flatnonzero(~inside)[0])  # a neighbour search from a row outside
        assert inside[ex.query.results].all() and len(ex.query.results) == 8
        ex.query.text = "make it blue"  # a composed query
        assert inside[ex.query.results].all() and ex.grid.rows == ex.query.results
        ex.query.beta = 0.2  # a slider move
        assert inside[ex.query.results].all()
        ex.map.selected = list(range(40))  # the selection in the grid keeps to the filters too
        assert ex.grid.mode == "selection" and ex.grid.rows == [r for r in range(40) if inside[r]]
        assert "outside the filters hidden" in ex.grid.title
        ex.filters = {"color": ["red", "green"], "size": "small"}  # the grid stays on the selection
        both = inside & (meta["size"] == "small").to_numpy()
        assert ex.grid.mode == "selection" and ex.grid.rows == [r for r in range(40) if both[r]]
        ex.grid.mode = "query"
        assert both[ex.query.results].all()
        ex.grid.marks = {str(ex.query.results[0]): "relevant"}
        assert both[ex.controller.feedback.refine().rows].all()  # Refine searches inside the filters too
        ex.filters = {}
        assert ex.map.dimmed == [] and ex.query.binding.mask is None
    finally:
        ex.close()


def test_explorer_filters_combine_with_the_curation_filter(space):
    meta = space.gallery.metadata
    ex = cs.Explorer(space, map="pca", reference=0, k=10, filters={"size": "large"})
    try:
        assert ex.filters == {"size": ["large"]} and set(ex.grid.to_dataframe()["size"]) == {"large"}
        ex.curation.filter_column, ex.curation.filter_value = "shape", "star"
        got = meta.iloc[ex.query.results]
        assert set(got["size"]) == {"large"} and set(got["shape"]) == {"star"}
        ex.filters = {}
        assert set(meta.iloc[ex.query.results]["shape"]) == {"star"}  # the bar's filter stays
    finally:
        ex.close()


def test_explorer_filters_options(space):
    off = cs.Explorer(space, map="pca", filters=False)
    chosen = cs.Explorer(space, map="pca", filters=["size"])
    try:
        assert off.filter_panel is None and off.filters == {}
        with pytest.raises(RuntimeError, match="no filter panel"):
            off.filters = {"size": "large"}
        assert [c["column"] for c in chosen.filter_panel.charts] == ["size"]
        with pytest.raises(TypeError, match="filters must be"):
            cs.Explorer(space, map="pca", filters="size")
    finally:
        off.close()
        chosen.close()


# ---------------------------------------------------------------------- the front end's pure helpers, in node
def _node(tmp_path, name: str, body: str) -> dict:
    """Run ``body`` with js/<name>'s helpers imported as ``m`` (see tests/test_map_view_js.py)."""
    import json
    import shutil
    import subprocess
    from pathlib import Path

    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    module = tmp_path / name.replace(".js", ".mjs")
    module.write_text((Path(__file__).resolve().parents[1] / "js" / name).read_text())
    script = tmp_path / "case.mjs"
    script.write_text(f"import * as m from {json.dumps(module.as_uri())};\nlet out = {{}};\n{body}\n"
                      "console.log(JSON.stringify(out));\n")
    done = subprocess.run(["node", str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_filter_panel_js_helpers(tmp_path):
    out = _node(tmp_path, "filter_panel.js", """
out.bins = [m.binAt(-5, 100, 4), m.binAt(0, 100, 4), m.binAt(49.9, 100, 4), m.binAt(100, 100, 4), m.binAt(5, 0, 4)];
out.click = m.dragMessage("v", 2, 2); out.drag = m.dragMessage("v", 3, 1);
out.percents = m.barPercents([5, 0, 10], [10, 20, 40]);
out.axis = [m.axisText(0.123456), m.axisText(12345.6), m.axisText(NaN)];
""")
    assert out["bins"] == [0, 0, 1, 3, -1]
    assert out["click"] == {"event": "toggle", "column": "v", "key": "2"}
    assert out["drag"] == {"event": "bins", "column": "v", "first": 1, "last": 3}
    assert out["percents"] == [12.5, 0, 25] and out["axis"] == ["0.1235", "12350", ""]


def test_map_fades_the_rows_outside_the_filters(tmp_path):
    out = _node(tmp_path, "map_view.js", """
const colors = m.packColors(Uint8Array.from([255, 0, 0, 0, 0, 255, 10, 20, 30]), 3);
const before = Array.from(colors);
m.fadeColors(colors, Int32Array.from([1]));
out.before = before; out.after = Array.from(colors);
out.rest = Array.from(m.complementRows(Int32Array.from([4, 0, 2, 9]), 6));
""")
    assert out["after"][0] == out["before"][0] and out["after"][2] == out["before"][2]
    faded = out["after"][1]
    assert faded >> 24 == 80 and (faded >> 16) & 255 < 255 and faded & 255 > 0  # translucent, greyer blue
    assert out["rest"] == [1, 3, 5]


def test_the_benchmark_agrees_with_pandas_at_a_small_size(tmp_path):
    """benchmarks/bench_filters.py checks its masks and histograms against pandas before it times them."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_filters.py"
    out = tmp_path / "filters.json"
    done = subprocess.run([sys.executable, str(script), "--n", "20000", "--repeats", "1", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert result["n"] == 20000 and set(result["filters"]) == {"1", "2", "4"}
    assert result["kinds"]["score"] == "histogram" and result["kinds"]["year"] == "categories"
    assert result["panel_state_bytes"] < 5_000

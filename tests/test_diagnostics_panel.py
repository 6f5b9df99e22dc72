"""The DiagnosticsPanel: a chart per diagnostic, and a click on it gives the rows behind the element."""

from __future__ import annotations

import json

import numpy as np
import pytest

import cirscope as cs
from cirscope.diagnostics import DIAGNOSTICS, run_diagnostic
from cirscope.widgets._diagnostics_panel import DiagnosticsPanel


def _browser_click(figure, curve: int, point: int) -> None:
    """What the plotly front end sends when a point is clicked."""
    figure._js2py_pointsCallback = {
        "event_type": "plotly_click",
        "points": {"xs": [0], "ys": [0], "point_indexes": [point], "trace_indexes": [curve]},
        "device_state": {"ctrl": False, "alt": False, "shift": False, "meta": False, "button": 0, "buttons": 1},
    }


@pytest.fixture(scope="module")
def panel(toy_space):
    return DiagnosticsPanel(toy_space, attribute="color", options={"duplicates": {"threshold": 0.01}})


def test_panel_shows_skew_and_a_click_sets_shown_rows(panel):
    assert panel.diagnostic == "skew" and panel.attribute == "color" and not panel.error
    assert panel.figure is not None and len(panel.figure.data) == 6  # 3 K x (per label, per query)
    seen = []
    panel.observe(lambda ch: seen.append(ch["new"]), "shown_rows")
    label_trace = panel.figure.data[0]
    point = list(label_trace.x).index("yellow")
    _browser_click(panel.figure, 0, point)
    expected = panel.result.rows_for(label="yellow", k=10).tolist()
    assert panel.shown_rows == expected and seen[-1] == expected and expected
    assert panel.selection["key"] == {"label": "yellow", "k": 10}
    colors = panel.space.metadata["color"].to_numpy()
    assert (colors[panel.shown_rows] == "yellow").all()
    # a per-query bar: that query's top K
    query_trace = next(i for i, t in enumerate(panel.figure.data) if t.meta["keys"] == ["query", "k"])
    rows = panel.click(query_trace, 3)
    query = panel.figure.data[query_trace].customdata[3][0]
    assert rows == panel.result.rows_for(query=query, k=10).tolist() and len(rows) == 10
    assert panel.click(0, 999) == [] and panel.shown_rows == []  # outside the trace: nothing behind it


def test_panel_switches_diagnostics_and_links_hubs_and_pairs(panel):
    panel.diagnostic = "hubness_images"
    res = panel.result
    assert type(res).__name__ == "HubnessResult" and panel.figure.data[-1].meta["keys"] == ["method", "hub"]
    rows = panel.click(len(panel.figure.data) - 1, 0)
    hub = int(panel.figure.data[-1].customdata[0][1])
    assert rows[0] == hub and len(rows) == 1 + res.n_k["none"][hub]

    panel.diagnostic = "duplicates"
    assert panel.result.threshold == 0.01
    pair_trace = next(i for i, t in enumerate(panel.figure.data) if t.meta and t.meta["keys"] == ["pair"])
    if len(panel.result.pairs):
        rows = panel.click(pair_trace, 0)
        first = panel.result.pairs.iloc[0]
        assert rows == [first["row_a"], first["row_b"]]

    for name in ("modality_gap", "outliers", "uniqueness", "long_tail", "hubness_texts"):
        panel.diagnostic = name
        assert panel.result is not None and panel.result.name in name and not panel.error
    before = panel.result
    panel.diagnostic = "skew"
    panel.diagnostic = "hubness_texts"
    assert panel.result is before  # cached


def test_the_caption_of_a_click_goes_when_the_chart_changes(toy_space):
    p = DiagnosticsPanel(toy_space, attribute="shape", diagnostic="long_tail")
    hint = p.caption
    assert hint.startswith("Click a bar or a point") and p.get_state()["caption"] == hint
    rows = p.click(0, 0)
    assert rows and p.caption.startswith(f"Showing {len(rows)} image(s) behind label=")
    assert "in Long tail" in p.caption and p.get_state()["caption"] == p.caption
    p.diagnostic = "outliers"  # another chart: the old caption would describe rows of a chart no longer there
    assert p.caption == hint and p.get_state()["caption"] == hint
    p.click(0, 0)
    assert p.caption.startswith("Showing")
    p.diagnostic = "long_tail"
    p.click(0, 0)
    p.attribute = "color"  # another attribute: a new chart too
    assert p.caption == hint


def test_an_undefined_number_is_a_sentence_not_nan(toy_space):
    p = DiagnosticsPanel(toy_space, attribute="color", diagnostic="long_tail")
    assert np.isnan(p.result.spearman)  # the toy model names every colour right: accuracy is constant
    status = p.get_state()["status"]  # what the front end shows above the chart, as text
    assert "nan" not in json.dumps(status).lower()
    assert "spearman undefined" in status["numbers"]
    assert "Spearman correlation undefined: every color label has the same zero-shot accuracy (100%)" in status["notes"][0]


def test_panel_queries_attribute_and_errors(toy_space):
    p = DiagnosticsPanel(toy_space, attribute="shape", queries=["a red shape", "a blue shape"])
    assert p.result.queries == ["a red shape", "a blue shape"] and p.result.attribute == "shape"
    p.queries = ["a red shape"]
    assert p.result.queries == ["a red shape"] and p.get_state()["queries"] == ["a red shape"]
    p.attribute = "background"
    assert p.result.attribute == "background"
    p.queries = ["   "]  # blank queries fall back to the defaults
    assert len(p.result.queries) > 1
    with pytest.raises(ValueError, match="Unknown diagnostic"):
        DiagnosticsPanel(toy_space, diagnostic="magic")
    with pytest.raises(ValueError, match="Unknown diagnostic"):
        DiagnosticsPanel(toy_space, diagnostic="direction_sweep")  # needs composed=
    with pytest.raises(TypeError, match="unknown diagnostics"):
        DiagnosticsPanel(toy_space, options={"dupes": {}})
    with pytest.raises(KeyError, match="colour"):
        DiagnosticsPanel(toy_space, attribute="colour")


def test_panel_direction_sweep_and_error_display(toy_space):
    ref = int(np.flatnonzero((toy_space.metadata["shape"] == "circle").to_numpy())[0])
    p = DiagnosticsPanel(toy_space, diagnostic="direction_sweep", attribute="shape",
                         composed=cs.ComposedQuery(ref, "turn it into a star"),
                         options={"direction_sweep": {"k": 10}})
    assert p.result.k == 10 and p.figure.layout.xaxis.title.text.startswith("PDV scale")
    p.options["skew"] = {"k": (1000,)}
    p.diagnostic = "skew"
    assert "gallery size" in p.error and p.result is None and p.figure is None
    assert p.click(0, 0) == []


def test_registry_runs_every_diagnostic_it_lists(toy_space):
    assert set(DIAGNOSTICS) >= {"skew", "hubness_images", "duplicates", "long_tail", "modality_gap"}
    with pytest.raises(ValueError, match="needs an attribute"):
        run_diagnostic(toy_space, "skew")
    with pytest.raises(ValueError, match="Unknown diagnostic"):
        run_diagnostic(toy_space, "nope")
    res = run_diagnostic(toy_space, "skew", "color", queries=["a star"], k=(10, 5000))
    assert res.ks == (10,)  # cut-offs not below the gallery size are dropped


def test_the_duplicates_warning_is_its_own_line(toy_space):
    p = DiagnosticsPanel(toy_space, diagnostic="duplicates", options={"duplicates": {"threshold": 0.05}})
    note = p.result.note()
    assert note and "unusually many" in note  # 0.05 is far above the toy model's scale
    assert note in p.status["notes"] and "note " not in p.status["numbers"]
    assert DiagnosticsPanel(toy_space, diagnostic="duplicates").result.note() == ""


def test_panel_is_one_anywidget_with_its_chart_as_a_child(toy_space):
    """Every client that shows anywidgets shows the panel: its controls are synced traits and the
    chart is plotly's FigureWidget referenced by model id (drawn by the front end)."""
    import anywidget

    p = DiagnosticsPanel(toy_space, attribute="color", diagnostic="long_tail")
    assert isinstance(p, anywidget.AnyWidget) and isinstance(p.figure, anywidget.AnyWidget)
    state = p.get_state()
    assert state["figure"] == f"anywidget:{p.figure.model_id}"
    assert [m["name"] for m in state["menu"]][:1] == ["skew"] and "color" in state["attributes"]
    first = p.figure
    p.set_state({"diagnostic": "outliers"})  # what the menu sends
    assert p.result.name in "outliers" and p.figure is not first and first.comm is None  # the old chart is closed
    p.set_state({"queries": ["a red shape", "  "]})
    p.set_state({"diagnostic": "skew"})
    assert p.result.queries == ["a red shape"]
    p.set_state({"diagnostic": "magic"})
    assert "Unknown diagnostic" in p.status["error"]

"""The kernel-free report (``cs.to_html`` / ``Explorer.to_html``), checked without a browser.

The page's data is read back from the written file: every precomputed slider setting holds
exactly what ``space.search`` returns there; hostile ids, captions and query texts stay inert
data; the file names no network resource; bad arguments fail with messages that name the fix.
The browser half is ``tests/ui/test_standalone_browser.py``.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

import cirscope as cs
from cirscope.query._methods import METHODS
from cirscope.widgets._standalone_data import SCORE_SCALE, map_frame, unpacked
from cirscope.widgets._standalone_page import MAP_HELPERS, js_definitions, page_script
from tests.hostile_strings import HOSTILE, hostile_gallery

HOSTILE_TEXT = "</script><script>alert('query')</script> <img src=x onerror=alert(2)> make it blue"


def page_data(path: Path) -> dict:
    """The JSON the page embeds (what its script parses)."""
    text = path.read_text(encoding="utf-8")
    match = re.search(r"<script type='application/json' id='cs-data'>(.*?)</script>", text, re.S)
    assert match is not None
    return json.loads(match.group(1))


def settings(query: dict):
    """(point, params) for every grid point of a saved query, in the page's order."""
    sizes = [len(a["values"]) for a in query["axes"]]
    for point, index in enumerate(np.ndindex(*sizes) if sizes else [()]):
        yield point, {a["name"]: a["values"][i] for a, i in zip(query["axes"], index, strict=True)}


def results_at(query: dict, point: int) -> tuple[list[int], np.ndarray]:
    rows = unpacked(query["rows"]).reshape(query["points"], query["k"])[point]
    scores = unpacked(query["scores"]).reshape(query["points"], query["k"])[point] / SCORE_SCALE
    keep = rows != query["empty"]
    return rows[keep].tolist(), scores[keep]


@pytest.fixture(scope="module")
def explorer(toy_space):
    ex = cs.Explorer(toy_space, map="pca", reference=3, text="make it blue", k=8)
    ex.query.alpha_t = 1.2  # not on the default grid: the report adds it
    yield ex
    ex.close()


@pytest.fixture(scope="module")
def report(explorer, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("report") / "view.html"
    extra = [{"reference": 10, "text": "make it red", "method": "slerp", "label": "slerp red"},
             {"reference": str(explorer.space.gallery.ids[20]), "text": "a star", "method": "weimocir", "a": 0.5},
             "a green star", 7]
    return explorer.to_html(path, extra, alphas=[0.0, 1.0, 2.0], betas=[0.5, 0.75], weights=[0.0, 0.5, 1.0],
                            progress=False)


# ---------------------------------------------------------------------------- results
def test_every_grid_setting_holds_what_space_search_returns(report, toy_space):
    data = page_data(report)
    kinds = [(q["kind"], q["method"]) for q in data["queries"]]
    assert kinds == [("composed", "pdv"), ("composed", "slerp"), ("composed", "weimocir"), ("text", "text"),
                     ("image", "image")]
    queries = [cs.ComposedQuery(3, "make it blue"), cs.ComposedQuery(10, "make it red"),
               cs.ComposedQuery(20, "a star"), "a green star", 7]
    checked = 0
    for query, saved in zip(queries, data["queries"], strict=True):
        for point, params in settings(saved):
            expected = toy_space.search(query, method=saved["method"], k=8, **params)
            rows, scores = results_at(saved, point)
            assert rows == expected["row"].tolist(), (saved["label"], params)
            np.testing.assert_allclose(scores, expected["score"].to_numpy(), atol=0.6 / SCORE_SCALE)
            checked += 1
    assert checked == 4 * 3 * 2 + 3 + 3 + 1 + 1  # alpha_t gains the Explorer's 1.2


def test_the_grid_holds_each_querys_starting_values_and_the_page_starts_there(report):
    pdv, slerp, weimocir = page_data(report)["queries"][:3]
    axes = {a["name"]: a["values"] for a in pdv["axes"]}
    assert axes == {"alpha_t": [0.0, 1.0, 1.2, 2.0], "alpha_i": [0.0, 1.0, 2.0], "beta": [0.5, 0.75]}
    assert [pdv["axes"][a]["values"][i] for a, i in enumerate(pdv["start"])] == [1.2, 1.0, 0.75]
    assert slerp["axes"][0]["values"] == [0.0, 0.5, 1.0]
    assert slerp["start"] == [2]  # nearest to the default a = 0.8
    assert METHODS["slerp"].defaults()["a"] == 0.8
    assert weimocir["axes"][0]["values"][weimocir["start"][0]] == 0.5
    assert slerp["label"] == "slerp red" and slerp["reference_row"] == 10 and weimocir["reference_row"] == 20
    assert pdv["reference_text"] and pdv["composed_text"].endswith("make it blue")


def test_the_map_colours_and_places_come_from_the_explorer(report, explorer):
    data = page_data(report)
    coords = np.asarray(explorer.map.coords, np.float64)
    frame = data["map"]["frame"]
    assert frame == map_frame(coords)
    xy = unpacked(data["map"]["xy"]).reshape(-1, 2) * frame["span"] / frame["levels"] + [frame["x0"], frame["y0"]]
    np.testing.assert_allclose(xy, coords, atol=frame["span"] / frame["levels"])
    assert np.array_equal(unpacked(data["map"]["rgb"]).reshape(-1, 3), explorer.map.colors)
    assert data["map"]["color_by"] == explorer.map.color_by and data["map"]["legend"] == list(explorer.map.legend)
    # the query point at the Explorer's own setting is where the Explorer puts it
    pdv = data["queries"][0]
    sizes = [len(a["values"]) for a in pdv["axes"]]
    point = int(np.ravel_multi_index(pdv["start"], sizes))
    placed = unpacked(pdv["place"]).reshape(-1, 2)[point] * frame["span"] / frame["levels"] + [frame["x0"], frame["y0"]]
    np.testing.assert_allclose(placed, explorer.map.query_point, atol=2 * frame["span"] / frame["levels"])


def test_thumbnails_cover_every_image_once_and_hover_text_is_the_metadata(report, toy_space):
    data = page_data(report)
    index = unpacked(data["thumbs"]["index"])
    assert data["thumbs"]["type"] == "image/webp" and data["thumbs"]["count"] == len(toy_space) == (index >= 0).sum()
    assert len(data["thumbs"]["blobs"]) == len(set(data["thumbs"]["blobs"])) <= len(toy_space)
    assert data["ids"] == toy_space.gallery.ids.tolist()
    columns = {c["name"]: c for c in data["columns"]}
    assert "shape" in columns and "x" not in columns  # drawing parameters are left out, as on the map's menu
    shape = columns["shape"]
    assert [shape["labels"][c] for c in unpacked(shape["codes"])] == toy_space.metadata["shape"].tolist()


def test_results_only_and_budgeted_thumbnails_put_the_results_first(toy_space, tmp_path):
    query = {"reference": 0, "text": "make it blue"}
    only = page_data(cs.to_html(toy_space, tmp_path / "a.html", query, alphas=[1.0], betas=[0.75], k=5,
                                thumbs="results", map="pca", progress=False))
    shown = set(results_at(only["queries"][0], 0)[0]) | {0}
    assert set(np.flatnonzero(unpacked(only["thumbs"]["index"]) >= 0).tolist()) == shown
    budget = page_data(cs.to_html(toy_space, tmp_path / "b.html", query, alphas=[1.0], betas=[0.75], k=5,
                                  thumb_budget=1, map="pca", progress=False))
    assert budget["thumbs"]["count"] == 1 and budget["thumbs"]["over_budget"] == len(toy_space) - 1
    assert unpacked(budget["thumbs"]["index"])[0] == 0  # the reference came first
    none = page_data(cs.to_html(toy_space, tmp_path / "c.html", query, thumbs=False, map="pca", progress=False,
                                alphas=[1.0], betas=[0.75]))
    assert none["thumbs"]["count"] == 0 and none["thumbs"]["blobs"] == [] and none["thumbs"]["index"] is None


def test_an_undecodable_image_gets_no_thumbnail_and_the_report_is_still_written(toy_space, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    sources = list(toy_space.gallery.sources)
    sources[5] = broken
    gallery = cs.Gallery(toy_space.metadata, sources)
    space = cs.Space.from_embeddings(gallery, toy_space.image_embeddings, embedder=cs.Embedder.toy())
    data = page_data(cs.to_html(space, tmp_path / "r.html", 5, map="pca", progress=False))
    assert data["thumbs"]["failed"] == 1 and unpacked(data["thumbs"]["index"])[5] == -1
    assert data["thumbs"]["count"] == len(space) - 1


# ---------------------------------------------------------------------------- the file
def test_the_page_is_self_contained(report):
    text = report.read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text
    assert "Content-Security-Policy" in text and "default-src 'none'" in text
    for tag in ("<link", "<iframe", "@import", "src='", 'src="', "url("):
        assert tag not in text.replace("img-src data:", ""), tag
    assert text.count("<script") == 2 and "fetch(" not in text and "XMLHttpRequest" not in text


def test_the_script_is_the_map_widgets_code_and_the_report_module():
    script = page_script()
    for name in MAP_HELPERS:
        assert re.search(rf"^(function {name}\(|const {name} = )", script, re.M), name
    assert "function start(data, page)" in script
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "createContextualFragment"):
        assert sink not in script
    with pytest.raises(LookupError, match="no longer defines 'gone'"):
        js_definitions("function kept() {\n}\n", ["gone"])


@pytest.fixture(scope="module")
def hostile_space():
    return cs.Space(hostile_gallery(120), cs.Embedder.toy(), cache=False, progress=False)


@pytest.fixture(scope="module")
def hostile_page(hostile_space, tmp_path_factory) -> Path:
    """A report of the hostile gallery with a hostile query text and title (also used by the browser test)."""
    path = tmp_path_factory.mktemp("hostile") / "hostile.html"
    return cs.to_html(hostile_space, path, [{"reference": 2, "text": HOSTILE_TEXT, "label": HOSTILE[0]},
                                            {"reference": 4, "text": "make it red", "method": "slerp"}, HOSTILE[1]],
                      alphas=[0.0, 1.0, 2.0], betas=[0.5, 0.75, 1.0], k=6, title=HOSTILE[2], map="pca",
                      color_by="shape", progress=False)


class _Elements(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, list]] = []
        self.title = ""

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))

    def handle_data(self, data):
        if self.tags and self.tags[-1][0] == "title" and not self.title:
            self.title = data


@pytest.mark.filterwarnings("ignore::cirscope.embedding._unknown_words.UnknownWordsWarning")
def test_hostile_text_stays_data(hostile_page, hostile_space):
    text = hostile_page.read_text(encoding="utf-8")
    parser = _Elements()
    parser.feed(text)
    tags = [t for t, _ in parser.tags]
    assert tags == ["html", "head", "meta", "meta", "meta", "title", "style", "body", "div", "noscript", "script",
                    "script"]
    assert all(name in ("charset", "http-equiv", "content", "name", "lang", "id", "class", "type")
               for _, attrs in parser.tags for name, _ in attrs)
    assert parser.title == HOSTILE[2]  # shown as text
    assert re.search(r"(?:src|href|action)\s*=\s*[\"']?\s*(?:https?|javascript):", text, re.I) is None
    data = page_data(hostile_page)  # the JSON holds the strings exactly
    assert data["title"] == HOSTILE[2] and data["ids"] == hostile_space.gallery.ids.tolist()
    first = data["queries"][0]
    assert first["text"] == HOSTILE_TEXT and first["label"] == HOSTILE[0]
    assert data["queries"][2]["text"] == HOSTILE[1]
    for point, params in settings(first):
        expected = hostile_space.search(cs.ComposedQuery(2, HOSTILE_TEXT), k=6, **params)
        assert results_at(first, point)[0] == expected["row"].tolist()


# ---------------------------------------------------------------------------- errors
@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"k": 0}, ValueError, "k must be an integer from 1 to 500"),
    ({"thumbs": "all"}, ValueError, "thumbs must be True, False or 'results'"),
    ({"thumb_size": 8}, ValueError, "thumb_size must be 16..256"),
    ({"betas": [0.5, 1.5]}, ValueError, r"betas= holds \[1.5\] for 'beta', outside its range 0.0..1.0"),
    ({"alphas": ["x"]}, TypeError, "must be a sequence of numbers"),
    ({"alphas": np.linspace(-0.5, 2, 30)}, ValueError, "more than 4096; give fewer values"),
    ({"queries": {"reference": 0, "text": "x", "alpha": 1.0}}, TypeError, "unknown key 'alpha'; did you mean 'alpha_t'"),
    ({"queries": {"reference": 0, "text": "x", "method": "nope"}}, ValueError, "Unknown composing method 'nope'"),
    ({"queries": {"text": " "}}, ValueError, "needs a reference, a text or both"),
    ({"queries": 10_000}, IndexError, "outside the gallery"),
    ({"queries": {"reference": "no-such-id", "text": "x"}}, KeyError, "neither an id in the gallery"),
    ({"color_by": "nope"}, KeyError, "Cannot colour by 'nope'"),
])
def test_bad_arguments_name_the_fix(toy_space, tmp_path, kwargs, error, match):
    queries = kwargs.pop("queries", {"reference": 0, "text": "make it blue"})
    with pytest.raises(error, match=match):
        cs.to_html(toy_space, tmp_path / "r.html", queries, map="pca", progress=False, **{"thumbs": False, **kwargs})
    assert not (tmp_path / "r.html").exists()


def test_bad_source_and_missing_folder(toy_space, tmp_path):
    with pytest.raises(TypeError, match=r"takes a cs\.Space or a cs\.Explorer"):
        cs.to_html(toy_space.gallery, tmp_path / "r.html")
    with pytest.raises(FileNotFoundError, match="does not exist; create it first"):
        cs.to_html(toy_space, tmp_path / "no" / "r.html", "a star", map="pca", progress=False)


def test_a_report_without_queries_still_shows_the_map(toy_space, tmp_path):
    data = page_data(cs.to_html(toy_space, tmp_path / "r.html", map="pca", thumbs=False, progress=False))
    assert data["queries"] == [] and data["n"] == len(toy_space)

"""Hostile user data in the audit report, the diagnostics' charts, the DiagnosticsPanel and `cirscope audit`.

The gallery's ids, captions, attribute values, source labels and a column name are the
strings of :mod:`tests.hostile_strings`. Checked without a browser: every inline script of
the report carries data only as escaped JSON (no string can end the block), the HTML holds
no element or attribute that came from the data, every chart string is plotly-literal, and
the terminal never receives a control character from the data. The browser half is in
``tests/test_hostile_report_browser.py``.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import Any

import numpy as np
import pytest

import cirscope as cs
from cirscope._core.text import TERMINAL_UNSAFE
from cirscope.cli import main
from tests.hostile_strings import HOSTILE, HOSTILE_COLUMN, HOSTILE_LABELS, hostile_gallery, plotly_display

SOURCES = ("<b>real</b> &amp;", "</script>generated$x$")
#: A column whose name and values hold terminal controls (ANSI escapes, a bidi override, a bell).
ANSI_COLUMN = "tone\x1b[31m\u202e\x07"
ANSI_VALUES = ("light\x1b[2J", "dark\r\x1b]0;pwned\x07")
WEAT_A, WEAT_B = HOSTILE[8], HOSTILE[13]
COMPOSED_TEXT = "<b>turn</b> it into a star </script><script>alert('composed')</script>"
#: Substrings that only user data holds (never cirscope's own text).
SIGNATURES = ("alert", "click me", "onerror", "javascript", "big red", "after br", "not bold", "Jerry")


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def hostile_space():
    gallery = hostile_gallery(120)
    meta = gallery.metadata.copy()
    meta["source"] = [SOURCES[i % 2] for i in range(len(meta))]
    meta[ANSI_COLUMN] = [ANSI_VALUES[i % 3 == 0] for i in range(len(meta))]
    gallery = cs.Gallery(meta, list(gallery.sources))
    return cs.Space(gallery, cs.Embedder.toy(), cache=False, progress=False)


@pytest.fixture(scope="module")
def hostile_report(hostile_space):
    meta = hostile_space.metadata
    ref = int(np.flatnonzero((meta["shape"] == "circle").to_numpy())[0])
    return cs.audit(
        hostile_space, attribute=HOSTILE_COLUMN, k=(10, 30),
        composed=cs.ComposedQuery(ref, COMPOSED_TEXT),
        weat=({"shape": "star"}, {"shape": "circle"}, [WEAT_A], [WEAT_B]),
        source_column="source", source_queries={"<i>a star</i> $1$": {"shape": "star"}}, progress=False,
    )


@pytest.fixture(scope="module")
def report_html(hostile_report, tmp_path_factory) -> str:
    path = hostile_report.to_html(tmp_path_factory.mktemp("hostile") / "report.html")
    return path.read_text(encoding="utf-8")


def test_every_diagnostic_ran_on_hostile_data(hostile_report):
    assert set(hostile_report.results) == {
        "skew", "direction_sweep", "long_tail", "hubness_images", "hubness_texts", "modality_gap", "duplicates",
        "outliers", "uniqueness", "source_bias", "association"}, hostile_report.skipped


# ---------------------------------------------------------------------------- the HTML report
SCRIPT = re.compile(r"<script\b[^>]*>(.*?)</script\s*>", re.IGNORECASE | re.DOTALL)


def _scripts(text: str) -> list[str]:
    return SCRIPT.findall(text)


def test_report_scripts_carry_data_only_as_escaped_json(hostile_report, report_html):
    bodies = _scripts(report_html)
    # plotly's config, plotly.js, the data, the click handler, one per chart: nothing else opens or closes
    assert len(bodies) == 4 + len(hostile_report.results)
    assert len(re.findall(r"<script\b", report_html, re.IGNORECASE)) == len(bodies)
    assert len(re.findall(r"</script", report_html, re.IGNORECASE)) == len(bodies)
    library = [b for b in bodies if "plotly.js v" in b[:2000]]
    assert len(library) == 1 and not re.search(r"</script|<!--", library[0], re.IGNORECASE)
    for body in bodies:
        if body is library[0]:
            continue
        for unsafe in ("<", "&", "\u2028", "\u2029"):
            assert unsafe not in body, (unsafe, body[:200])


def test_report_data_round_trips_exactly(hostile_space, report_html):
    data = next(b for b in _scripts(report_html) if "var CS_IDS" in b)
    ids = json.loads(re.search(r"var CS_IDS = (\{.*?\});\n", data, re.DOTALL).group(1))
    links = json.loads(re.search(r"var CS_LINKS = (\{.*?\});\n", data, re.DOTALL).group(1))
    assert ids and links["fig-skew"]
    all_ids = hostile_space.gallery.ids
    assert all(v == all_ids[int(k)] for k, v in ids.items())  # the raw ids, not escaped copies
    assert set(ids.values()) & set(HOSTILE)  # the hostile ids really are behind the charts


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attrs: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attrs.update(a for a, _ in attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_report_html_holds_no_markup_from_the_data(hostile_report, report_html):
    parser = _Tags()
    parser.feed(SCRIPT.sub("<script></script>", report_html))
    assert parser.tags <= {"html", "head", "meta", "title", "style", "script", "body", "h1", "h2", "p", "code",
                           "table", "thead", "tbody", "tr", "th", "td", "section", "span", "pre", "div", "details",
                           "summary", "ul", "li", "b"}
    assert not [a for a in parser.attrs if a.startswith("on")]
    text = "".join(parser.text)
    # the data is there as text: the attribute's name, labels in the tables, ids of the duplicates
    assert HOSTILE_COLUMN in text
    assert any(label in text for label in HOSTILE_LABELS)


def test_report_of_a_bare_space_repr_html_escapes(hostile_report):
    parser = _Tags()
    parser.feed(hostile_report._repr_html_())
    assert "img" not in parser.tags and HOSTILE_COLUMN in "".join(parser.text)


# ---------------------------------------------------------------------------- the charts
TEXT_KEYS = {"text", "name", "ticktext", "hovertext", "x", "y", "labels", "title", "legendgrouptitle",
             "texttemplate", "hovertemplate"}
ENTITY = re.compile(r"&(amp|lt|gt|#36);")
OWN_TAGS = {"<br>", "<sup>", "</sup>", "<extra>", "</extra>"}


def chart_strings(node: Any, key: str | None = None, inside: bool = False):
    """Every string plotly would render as text: ``(key, string)``; customdata and meta are data, not text."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("customdata", "meta", "template"):
                continue
            yield from chart_strings(v, k, inside or k in TEXT_KEYS)
    elif isinstance(node, (list, tuple)):
        for v in node:
            yield from chart_strings(v, key, inside)
    elif isinstance(node, str) and inside:
        yield key, node


def assert_plotly_literal(figure_json: dict) -> int:
    """No user string in the figure is markup for plotly; returns how many strings were checked."""
    n = 0
    for key, s in chart_strings(figure_json):
        n += 1
        if key in ("hovertemplate", "texttemplate"):
            assert not any(sig in s for sig in SIGNATURES), f"user data in a template: {s[:120]!r}"
            continue
        tags = set(re.findall(r"<[^<>]*>", s))
        assert tags <= OWN_TAGS, f"{key}: markup {tags - OWN_TAGS} in {s[:120]!r}"
        assert "$" not in s, f"{key}: TeX delimiter in {s[:120]!r}"
        assert len(re.findall("&", s)) == len(ENTITY.findall(s)), f"{key}: raw & in {s[:120]!r}"
    return n


def test_every_chart_shows_user_data_literally(hostile_report):
    checked = 0
    for result in hostile_report.results.values():
        checked += assert_plotly_literal(result.figure().to_plotly_json())
    assert checked > 100
    # the skew chart's categories are the labels, shown literally, and a click still maps to the real label
    skew = hostile_report["skew"]
    fig = skew.figure()
    shown = [plotly_display(x) for x in fig.data[0].x]
    assert sorted(shown) == sorted(set(skew.desired.index))
    for point, label in enumerate(shown):
        rows = skew.rows_at(fig, 0, point)
        assert fig.data[0].customdata[point][0] == label
        assert rows.tolist() == skew.rows_for(label=label, k=10).tolist()
    labels = hostile_report.space.metadata[HOSTILE_COLUMN].to_numpy()
    some = next(p for p in range(len(shown)) if len(skew.rows_at(fig, 0, p)))
    assert set(labels[skew.rows_at(fig, 0, some)]) == {shown[some]}


def test_the_panel_sends_literal_charts(hostile_space):
    from cirscope.widgets._diagnostics_panel import DiagnosticsPanel

    meta = hostile_space.metadata
    ref = int(np.flatnonzero((meta["shape"] == "circle").to_numpy())[0])
    panel = DiagnosticsPanel(hostile_space, attribute=HOSTILE_COLUMN,
                             composed=cs.ComposedQuery(ref, COMPOSED_TEXT), options={"skew": {"k": (10,)}})
    for name in [m["name"] for m in panel.menu]:
        panel.diagnostic = name
        assert not panel.error, (name, panel.error)
        assert assert_plotly_literal(panel.figure.to_plotly_json()) > 0
        # the status travels as plain data (the front end writes it as text, never markup)
        assert _plain(panel.status), (name, panel.status)
    panel.diagnostic = "skew"
    label = HOSTILE_LABELS[1]  # the https link
    point = [plotly_display(x) for x in panel.figure.data[0].x].index(label)
    rows = panel.click(0, point)
    assert rows and panel.selection["key"]["label"] == label
    assert (meta[HOSTILE_COLUMN].to_numpy()[rows] == label).all()
    assert label in panel.caption  # the raw label, as text


def _plain(value) -> bool:
    """Whether ``value`` is built only of str, numbers, None, lists and str-keyed dicts."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, (str, int, float, bool))


# ---------------------------------------------------------------------------- the terminal
def test_cli_audit_prints_no_control_characters(hostile_space, tmp_path, capsys):
    folder = tmp_path / "space"
    hostile_space.save(folder)
    out = tmp_path / "report.html"
    for column in (HOSTILE_COLUMN, ANSI_COLUMN):
        assert main(["audit", str(folder), "--attribute", column, "--out", str(out), "--k", "10", "--quiet"]) == 0
        printed = capsys.readouterr()
        assert column[:4] in printed.out  # the column is named, escaped where needed
        for line in printed.out.split("\n") + printed.err.split("\n"):
            bad = sorted({f"U+{ord(c):04X}" for c in line if c in TERMINAL_UNSAFE})
            assert not bad, (bad, line[:200])
    # a column name with an ANSI escape in an error message reaches the terminal escaped
    assert main(["audit", str(folder), "--attribute", "\x1b[2Jwiped\u202e", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\u202e" not in err and "wiped" in err


# ---------------------------------------------------------------------------- the class, in the source
def test_user_text_reaches_html_and_charts_only_through_the_escapers():
    """A guard on the code itself: no direct ``json.dumps``/``html.escape`` in the report, panel and
    diagnostics, no inline script except through ``_script``, no user text formatted into a plotly template."""
    from pathlib import Path

    import cirscope

    root = Path(cirscope.__file__).parent
    files = [*sorted((root / "diagnostics").glob("*.py")), root / "widgets" / "_diagnostics_panel.py",
             root / "widgets" / "_snapshot.py"]
    for path in files:
        src = path.read_text(encoding="utf-8")
        assert "json.dumps(" not in src and "html.escape(" not in src, path.name
        assert not re.search(r"hovertemplate=f[\"']", src), path.name  # user text belongs in text=, escaped
        assert "pio.to_html" not in src and "to_html(fig" not in src, path.name
        if path.name != "_html.py":
            assert "<script" not in src, path.name
    html_src = (root / "diagnostics" / "_html.py").read_text(encoding="utf-8")
    # the scripts: the data slot filler (and its doctest), plotly's config and plotly.js itself
    code = "\n".join(line for line in html_src.splitlines() if not line.strip().startswith(("'", '"', ">>>")))
    assert len(re.findall(r"<script", code)) == 3, re.findall(r".*<script.*", code)

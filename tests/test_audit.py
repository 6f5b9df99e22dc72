"""cs.audit, the HTML report and `cirscope audit`, down to the report opening in Chromium without a network."""

from __future__ import annotations

import inspect
import json
import re

import numpy as np
import pytest

import cirscope as cs
from cirscope.cli import main


@pytest.fixture(scope="module")
def report(toy_space):
    meta = toy_space.metadata
    ref = int(np.flatnonzero((meta["shape"] == "circle").to_numpy())[0])
    return cs.audit(
        toy_space, attribute="color", k=(10, 50), composed=cs.ComposedQuery(ref, "turn it into a star"),
        weat=({"shape": "star"}, {"shape": "circle"}, ["a yellow shape"], ["a blue shape"]),
        source_column="source", source_queries={"a star": {"shape": "star"}}, progress=False,
    )


def test_audit_runs_a_sensible_set_and_says_what_it_skipped(report):
    expected = {"skew", "direction_sweep", "long_tail", "hubness_images", "hubness_texts", "modality_gap",
                "duplicates", "outliers", "uniqueness", "association"}
    assert set(report.results) == expected
    # the toy world has one renderer only: source bias cannot run, and the report says why
    assert list(report.skipped) == ["source_bias"] and "one source only" in report.skipped["source_bias"]
    summary = report.summary()
    assert set(summary["diagnostic"]) == expected
    skew = summary[(summary["diagnostic"] == "skew") & (summary["quantity"] == "MaxSkew@10")]["value"].iloc[0]
    assert skew == pytest.approx(report["skew"].mean().set_index("k").loc[10, "max_skew"])
    # default skew queries: one prompt per word of the other columns (shape, background, size)
    assert "a star" in report["skew"].queries and len(report["skew"].queries) == 6 + 4 + 2
    assert report.info["attribute"] == "color" and report.info["images"] == len(report.space)
    assert "skew" in report._repr_html_()
    with pytest.raises(KeyError, match="source_bias"):
        report["source_bias"]


def test_audit_without_a_text_encoder_runs_the_image_diagnostics(toy_space, tmp_path):
    bare = cs.Space.from_embeddings(toy_space.gallery, toy_space.image_embeddings, model_name="somebody's model")
    rep = cs.audit(bare, attribute="color", progress=False)
    assert set(rep.results) == {"hubness_images", "duplicates", "outliers", "uniqueness"}
    assert set(rep.skipped) == {"skew", "long_tail", "hubness_texts", "modality_gap"}
    assert all("embedder" in why for why in rep.skipped.values())
    assert rep.to_html(tmp_path / "bare.html").is_file()


def test_audit_rejects_an_unknown_attribute(toy_space):
    with pytest.raises(KeyError, match="colour"):
        cs.audit(toy_space, attribute="colour", progress=False)


def test_report_html_is_standalone(report, tmp_path):
    path = report.to_html(tmp_path / "sub" / "audit.html")
    text = path.read_text(encoding="utf-8")
    assert text.count('class="plotly-graph-div"') == len(report.results)
    assert not re.search(r"<script[^>]+src=", text) and not re.search(r"<link[^>]+href=", text)
    assert text.count("plotly.js v") == 1 and len(text) > 3_000_000  # plotly.js itself is inlined
    assert text.count("data:image/jpeg;base64,") > 10  # the images behind the numbers travel with it
    assert "Skipped" in text and "one source only" in text
    with pytest.raises(ValueError, match=r"\.html"):
        report.to_html(tmp_path / "audit.pdf")


def test_undefined_numbers_are_explained_in_the_report(report, tmp_path):
    """The toy model names every colour right, so Spearman(count, accuracy) is undefined: the report
    says why in words instead of printing nan."""
    assert np.isnan(report["long_tail"].spearman)
    why = report["long_tail"].notes()["spearman"]
    assert why.startswith("Spearman correlation undefined") and "same zero-shot accuracy" in why
    text = report.to_html(tmp_path / "nan.html", thumbnails=False).read_text(encoding="utf-8")
    body = re.sub(r"<script.*?</script>", "", text, flags=re.DOTALL)
    assert not re.search(r">\s*nan\s*<", body, flags=re.IGNORECASE)
    assert body.count("Spearman correlation undefined") >= 2  # the summary table and the section
    shown = report.summary_text()
    assert shown.loc[shown["quantity"] == "spearman", "value"].iloc[0] == why
    assert np.isnan(report.summary().set_index("quantity").loc["spearman", "value"])  # the data stays a number
    assert "Spearman correlation undefined" in report._repr_html_()
    title = report["long_tail"].figure().layout.title.text
    assert "nan" not in title and "undefined" in title


def test_report_shows_the_method_of_every_diagnostic(report, tmp_path):
    """Each section opens with the description of the function that made it (found beside its result class)."""
    from cirscope._core.text import html_text

    text = report.to_html(tmp_path / "methods.html", thumbnails=False).read_text(encoding="utf-8")
    docs = re.findall(r"<pre class='doc'>(.*?)</pre>", text, flags=re.DOTALL)
    assert len(docs) == len(report.results)
    for (name, result), doc in zip(report.results.items(), docs, strict=True):
        func = getattr(cs.diagnostics, result.name)
        first = inspect.getdoc(func).splitlines()[0]
        assert doc.startswith(html_text(first)), name
        assert "Parameters" not in doc and "Examples" not in doc


@pytest.fixture(scope="module")
def cli_report(toy_space, tmp_path_factory):
    folder = tmp_path_factory.mktemp("embedded") / "space"
    toy_space.save(folder)
    out = folder.parent / "report.html"
    return folder, out


def test_cli_audit_writes_the_report(cli_report, capsys):
    folder, out = cli_report
    code = main(["audit", str(folder), "--attribute", "color", "--out", str(out), "--k", "10", "50", "--quiet",
                 "--json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["images"] == 300 and out.is_file()
    assert data["results"]["skew"]["MaxSkew@10"] > 0 and "NDKL@50" in data["results"]["skew"]
    dup = data["results"]["duplicates"]  # the relative default: a quarter of the median neighbour distance
    assert dup["threshold_source"] == "relative"
    assert dup["threshold"] == pytest.approx(min(0.02, 0.25 * dup["median_nearest_distance"]))
    assert dup["share_in_groups"] <= 0.2 and "note" not in dup
    code = main(["audit", str(folder), "--attribute", "shape", "--out", str(out.with_name("shape.html")),
                 "--k", "10", "--quiet"])
    text = capsys.readouterr().out
    assert code == 0 and "Audited 300 images (cirscope-toy), attribute 'shape'" in text and "skew" in text


def test_cli_audit_errors(cli_report, tmp_path, capsys):
    folder, _ = cli_report
    assert main(["audit", str(folder), "--attribute", "colour", "--out", str(tmp_path / "r.html"), "--quiet"]) == 2
    assert "No column 'colour'" in capsys.readouterr().err
    assert main(["audit", str(tmp_path), "--attribute", "color", "--out", str(tmp_path / "r.html")]) == 2
    assert "cirscope embed" in capsys.readouterr().err
    assert main(["audit", str(folder), "--attribute", "color", "--out", str(tmp_path / "r.txt")]) == 2


@pytest.mark.browser
def test_report_opens_in_chromium_without_network(cli_report, capsys, browser):
    folder, out = cli_report
    if not out.is_file():
        assert main(["audit", str(folder), "--attribute", "color", "--out", str(out), "--k", "10", "50",
                     "--quiet"]) == 0
        capsys.readouterr()
    n_sections = out.read_text(encoding="utf-8").count('class="plotly-graph-div"')
    blocked: list[str] = []

    def route(r):
        if r.request.url.startswith("file://"):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.route("**/*", route)
        page.goto(out.as_uri())
        page.wait_for_selector(".js-plotly-plot .main-svg", timeout=30_000)
        rendered = page.eval_on_selector_all(
            ".js-plotly-plot", "els => els.filter(e => e.querySelector('.main-svg')).length")
        assert rendered == n_sections >= 8
        assert page.locator("#fig-skew .bars .point path").count() > 0
        assert not errors and not blocked
        # a click on a bar shows the images behind it
        page.locator("#fig-skew .bars .point path").first.click(force=True)
        page.wait_for_selector("#fig-skew-images img", timeout=10_000)
        shown = page.locator("#fig-skew-images figcaption").all_inner_texts()
        assert shown and all(s.startswith("shape-0-") for s in shown)
    finally:
        page.close()

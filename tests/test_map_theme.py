"""The map's look: columns for people, the hover card's size, selection colours and the light/dark theme.

The pure JS helpers run in node (as in ``test_map_view_js.py``); the stylesheet is checked as
text: every ``--cs-*`` variable the front end uses is defined once per theme.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

import cirscope as cs
from cirscope.widgets._map_data import (
    ROLES_KEY,
    color_columns,
    column_roles,
    default_color_column,
    hover_columns,
)
from cirscope.widgets._map_view import MapView

ROOT = Path(__file__).resolve().parents[1]
JS = ROOT / "js"
needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


def run_node(tmp_path: Path, body: str) -> dict:
    """Run ``body`` with js/map_view.js's helpers imported as ``m``; it fills ``out``."""
    module = tmp_path / "map_view.mjs"
    module.write_text((JS / "map_view.js").read_text())
    script = tmp_path / "case.mjs"
    script.write_text(f"import * as m from {json.dumps(module.as_uri())};\nlet out = {{}};\n{body}\n"
                      "console.log(JSON.stringify(out));\n")
    done = subprocess.run(["node", str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


# ---------------------------------------------------------------------- columns for people
def test_the_shapes_world_is_coloured_by_its_own_colours_and_hides_drawing_parameters():
    meta = cs.datasets.shapes(200, seed=1).metadata
    roles = column_roles(meta)
    assert roles["color_by"] == default_color_column(meta) == "color"
    assert not {"x", "y", "radius", "rotation", "id"} & set(roles["columns"])
    assert roles["columns"][:4] == ["shape", "color", "background", "size"]
    assert color_columns(meta)[:4] == ["shape", "color", "background", "size"]


def test_a_dataset_marks_its_columns_for_people_and_the_first_colour():
    table = pd.DataFrame({
        "id": [f"i{k}" for k in range(8)],
        "path": [f"/img/{k}.jpg" for k in range(8)],
        "width": [640, 480] * 4,
        "label": ["cat", "dog", "cat", "bird"] * 2,
        "split": ["train", "test"] * 4,
    })
    # unmarked: every column but id is offered; the first with 2 to 20 values colours the map
    assert column_roles(table)["color_by"] == "width"
    table.attrs[ROLES_KEY] = {"columns": ["label", "split", "nope"], "color_by": "split"}
    assert column_roles(table) == {"columns": ["label", "split"], "color_by": "split"}
    assert color_columns(table) == ["label", "split"] and default_color_column(table) == "split"
    assert hover_columns(table, "split") == ["id", "split", "label"]
    # a marked colour that is no column falls back to the first marked column with few values
    table.attrs[ROLES_KEY] = {"columns": ["label"], "color_by": "<b>nope</b>"}
    assert column_roles(table)["color_by"] == "label"
    # a mark of the wrong type is ignored, not an error
    table.attrs[ROLES_KEY] = "label"
    assert column_roles(table)["columns"] == ["path", "width", "label", "split"]


def test_a_marked_gallery_colours_the_map_and_fills_the_hover_card(tmp_path):
    shapes = cs.datasets.shapes(24, seed=2)
    meta = shapes.metadata
    meta.attrs[ROLES_KEY] = {"columns": ["shape", "background"], "color_by": "background"}
    gallery = cs.Gallery(meta, shapes.sources)
    space = cs.Space(gallery, cs.Embedder.toy(), cache=False, progress=False)
    view = MapView(space, map="pca")
    assert view.color_by == "background" and view.color_columns == ["shape", "background"]
    view.hovered = 5
    assert list(view.hover_meta) == ["id", "background", "shape"]
    assert view.hover_meta["id"] == meta["id"].iloc[5]


def test_the_hover_card_shows_a_few_facts_colouring_column_first(toy_space):
    view = MapView(toy_space, map="pca", color_by="size")
    view.hovered = 11
    assert list(view.hover_meta) == ["id", "size", "shape", "color", "background", "caption"]
    assert view.hover_meta["size"] == toy_space.metadata["size"].iloc[11]
    view.color_by = "radius"  # asked for by name: shown on the card too
    view.hovered = 12
    assert list(view.hover_meta)[:2] == ["id", "radius"] and len(view.hover_meta) == 6


# ---------------------------------------------------------------------- the stylesheet
def _theme_blocks(css: str) -> tuple[str, str]:
    light = re.search(r"^\.cirscope, [^{]*\{(.*?)^\}", css, re.M | re.S).group(1)
    dark = re.search(r"@media \(prefers-color-scheme: dark\) \{.*?\.cirscope \{(.*?)\}", css, re.S).group(1)
    return light, dark


def test_every_theme_variable_in_use_is_defined_and_follows_jupyterlab_in_both_schemes():
    css = (JS / "cirscope.css").read_text()
    light, dark = _theme_blocks(css)
    defined = dict(re.findall(r"(--cs-[\w-]+):\s*([^;]+);", light))
    used = set()
    for path in [*JS.glob("*.js"), *JS.glob("*.css")]:
        used |= set(re.findall(r"var\((--cs-[\w-]+)", path.read_text()))
    used -= {"--cs-thumb"}  # the grid's thumbnail size, set inline per grid
    assert used and used <= set(defined), sorted(used - set(defined))
    for name in ("--cs-fg", "--cs-fg2", "--cs-bg", "--cs-bg2", "--cs-border", "--cs-accent"):
        assert defined[name].startswith("var(--jp-"), name  # JupyterLab's theme wins where it is defined
    dark_defined = dict(re.findall(r"(--cs-[\w-]+):\s*([^;]+);", dark))
    for name, value in defined.items():
        if value.startswith("var(--jp-") and name != "--cs-font":  # colours: the same --jp-* variable, a dark fallback
            assert dark_defined[name].split(",")[0] == value.split(",")[0], name
            assert dark_defined[name] != value, name
    assert 'body[data-jp-theme-light="false"] .cirscope { color-scheme: dark; }' in css
    hosts = re.search(r"^body\.vscode-dark .cirscope,[^{]*\{(.*?)^\}", css, re.M | re.S).group(1)
    assert dict(re.findall(r"(--cs-[\w-]+):\s*([^;]+);", hosts)) == dark_defined  # a page marked dark: the same


def test_no_colour_literals_outside_the_theme_block():
    css = (JS / "cirscope.css").read_text()
    rest = css[css.index("body[data-jp-theme-light") :]
    literals = re.findall(r"#[0-9a-fA-F]{3,8}\b|rgba?\([^)]*\)", rest)
    assert literals == ["rgba(0,0,0,.65)", "#fff"], literals  # only the rank badge drawn over a thumbnail


# ---------------------------------------------------------------------- the JS helpers
@needs_node
def test_css_colours_parse_blend_and_pack(tmp_path):
    out = run_node(tmp_path, """
out.parsed = ["#abc", "#1e1e1e", "#11223380", "rgba(0, 0, 0, 0.54)", "rgb(10 20 30 / 50%)", "white", ""].map(m.parseColor);
out.blend = m.blendOver([0, 0, 0, 138], [255, 255, 255, 255]);
out.packed = m.packRGBA([1, 2, 3, 255], 100);
out.dark = [m.isDarkColor([17, 17, 17]), m.isDarkColor([255, 255, 255]), m.isDarkColor([33, 33, 33]), m.isDarkColor([238, 238, 238])];
""")
    assert out["parsed"][:5] == [[170, 187, 204, 255], [30, 30, 30, 255], [17, 34, 51, 128], [0, 0, 0, 138],
                                 [10, 20, 30, 128]]
    assert out["parsed"][5:] == [None, None]  # named colours come normalised by the canvas first
    assert out["blend"] == [117, 117, 117, 255]
    assert out["packed"] == (100 << 24) | (3 << 16) | (2 << 8) | 1
    assert out["dark"] == [True, False, True, False]


@needs_node
def test_canvas_theme_follows_the_background(tmp_path):
    out = run_node(tmp_path, """
out.light = m.canvasTheme({ bg: "#ffffff", fg: "rgba(0, 0, 0, 0.87)", fg2: "rgba(0, 0, 0, 0.54)", accent: "#1976d2" });
out.dark = m.canvasTheme({ bg: "#111111", fg: "rgba(255, 255, 255, 0.87)", fg2: "rgba(255, 255, 255, 0.54)", accent: "#42a5f5" });
out.bad = m.canvasTheme({ bg: "nonsense" });
""")
    light, dark = out["light"], out["dark"]
    assert light["dark"] is False and dark["dark"] is True and out["bad"]["dark"] is False
    assert light["mark"].startswith("rgba(0,0,0,") and dark["mark"].startswith("rgba(255,255,255,")
    # the veil is the background, translucent; the ring an opaque grey between text and background
    assert light["veil"] == (165 << 24) | 0xFFFFFF and dark["veil"] == (165 << 24) | 0x111111
    for theme in (light, dark):
        r = theme["ring32"] & 255
        assert theme["ring32"] >> 24 == 255 and 60 < r < 200  # never black, never the background
    assert light["dragFill"] == "rgba(25,118,210,0.14)" and dark["dragFill"] == "rgba(66,165,245,0.14)"


@needs_node
def test_a_ringed_selected_point_shows_mostly_its_own_colour_never_a_dark_square(tmp_path):
    out = run_node(tmp_path, """
const theme = m.canvasTheme({ bg: "#ffffff", fg: "#1f1f1f", fg2: "rgba(0, 0, 0, 0.54)" });
out.cases = [];
for (const [radius, dpr] of [[1.3, 1], [2.2, 1], [3.5, 1], [1.3, 2]]) {
  const discs = m.selectionDiscs(false, 3, 3, radius, dpr);
  const bw = 40, bh = 40, px = new Uint32Array(bw * bh).fill(theme.veil);
  const sxy = Float32Array.from([10, 10]), colour = m.packColors(Uint8Array.from([40, 170, 60]), 1)[0];
  m.stampPoints(px, bw, bh, sxy, dpr, m.discStamp(discs.ring), null, () => theme.ring32);
  m.stampPoints(px, bw, bh, sxy, dpr, m.discStamp(discs.fill), null, () => colour);
  let own = 0, ring = 0, dark = 0;
  for (const p of px) {
    if (p === colour) own++;
    else if (p === theme.ring32) ring++;
    const r = p & 255, g = (p >>> 8) & 255, b = (p >>> 16) & 255;
    if (p >>> 24 === 255 && r < 60 && g < 60 && b < 60) dark++;
  }
  out.cases.push({ own, ring, dark, centre: px[Math.round(10 * dpr) * bw + Math.round(10 * dpr)] === colour });
}
""")
    for case in out["cases"]:
        assert case["centre"] and case["dark"] == 0
        assert case["own"] > case["ring"] > 0  # the colour covers more pixels than the ring around it


@needs_node
def test_the_hover_card_stays_small_on_any_map(tmp_path):
    out = run_node(tmp_path, """
out.boxes = [[600, 440], [900, 600], [320, 200], [320, 120], [2000, 1000]].map(([W, H]) => ({ W, H, ...m.cardBox(W, H) }));
""")
    for box in out["boxes"]:
        assert box["width"] <= 220 and box["width"] <= box["W"] / 2
        assert box["width"] * box["height"] <= 0.15 * box["W"] * box["H"] + box["width"]
        assert box["thumb"] == 0 or 32 <= box["thumb"] <= min(64, box["height"] - 10)
        assert 1 <= box["lines"] <= 6
    assert out["boxes"][0] == {"W": 600, "H": 440, "width": 220, "height": 180, "thumb": 64, "lines": 6}
    assert out["boxes"][3]["thumb"] == 0  # a flat map: facts only


@needs_node
def test_marks_take_the_theme_and_default_to_light_for_the_kernel_free_report(tmp_path):
    out = run_node(tmp_path, """
function recorder() {
  const seen = { stroke: [], fill: [] };
  const ctx = new Proxy({}, {
    get: (t, k) => (k in t ? t[k] : () => {}),
    set: (t, k, v) => { if (k === "strokeStyle") seen.stroke.push(v); if (k === "fillStyle") seen.fill.push(v); t[k] = v; return true; },
  });
  return { ctx, seen };
}
const args = { n: 3, at: (i) => [10 * i, 10], rgb: Uint8Array.from([200, 0, 0, 0, 200, 0, 0, 0, 200]),
  highlighted: Int32Array.from([1, 2]), query: [5, 5], reference: 0, hovered: 2, drag: null };
const plain = recorder();
m.drawMarks(plain.ctx, args);
const dark = recorder();
const theme = m.canvasTheme({ bg: "#111111", fg: "rgba(255, 255, 255, 0.87)", fg2: "rgba(255, 255, 255, 0.54)" });
m.drawMarks(dark.ctx, { ...args, theme });
out.plain = plain.seen; out.dark = dark.seen; out.theme = theme;
""")
    plain, dark, theme = out["plain"], out["dark"], out["theme"]
    # highlighted results keep their own colours (fill) in both
    assert "rgb(0,200,0)" in plain["fill"] and "rgb(0,200,0)" in dark["fill"]
    assert "rgba(17,17,17,0.9)" in plain["stroke"] and "#ffffff" in plain["stroke"]  # light defaults
    assert theme["mark"] in dark["stroke"] and theme["bg"] in dark["stroke"]  # rims and the reference's halo
    assert "rgba(17,17,17,0.9)" not in dark["stroke"] and "#ffffff" not in dark["stroke"]

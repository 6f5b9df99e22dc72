"""Kernel-free report (``cs.to_html``): file size and build time at 1k / 10k images, with and without thumbnails.

Data: the shapes world (``cs.datasets.shapes(n)``, real 64 px images). Its embeddings are the
toy model's *text* embeddings of each image's caption plus a little noise, made in seconds
(embedding 10,000 images with the toy model takes minutes on a 2-core machine); the report's
size and build time do not depend on how good the embeddings are. Each report holds three
saved queries: two PDV queries on the default grid (6 x 6 x 5 = 180 settings each) and a Slerp
query (6 settings), k = 20, a PCA map.

Measured per size: build time (searches, thumbnails, the rest), file size with a breakdown by
part (thumbnails, precomputed results, map, ids and metadata text, script and styles), and
with ``--browser`` the time until the page is ready in headless Chromium (file://, network
blocked). The peer, measured in the same run: plotly's self-contained HTML of the same map
(``fig.write_html(include_plotlyjs=True)``, a scattergl with the ids as hover text, no
thumbnails, no queries), the usual way to share an interactive map without a kernel.

With ``--photos N`` the same report is also written for N crops of real photographs
(scikit-image's sample photos, cropped at random and saved as JPEG files of 96 to 256 px; random
unit embeddings, as only the thumbnails' size matters here): photographs make larger
thumbnails than the flat-coloured shapes.

Run ``python benchmarks/bench_standalone.py [--sizes 1000,10000] [--photos 10000] [--browser] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def shapes_space(n: int, seed: int = 0):
    """A shapes-world space whose embeddings are its captions' text embeddings plus noise."""
    import cirscope as cs

    gallery = cs.datasets.shapes(n, seed=seed)
    embedder = cs.Embedder.toy()
    captions = gallery.metadata["caption"].astype(str)
    unique, inverse = np.unique(captions.to_numpy(), return_inverse=True)
    text = np.asarray(embedder.encode_text(list(unique)), dtype=np.float32)[inverse]
    noisy = text + 0.05 * np.random.default_rng(seed).standard_normal(text.shape).astype(np.float32)
    return cs.Space.from_embeddings(gallery, noisy / np.linalg.norm(noisy, axis=1, keepdims=True), embedder=embedder)


def photo_space(n: int, folder: Path, seed: int = 0):
    """``n`` JPEG crops of real photographs in ``folder``, with random unit embeddings (toy-model sized)."""
    import pandas as pd
    from PIL import Image

    import cirscope as cs

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.sample_images import _bases

    rng = np.random.default_rng(seed)
    bases = _bases()
    paths = []
    for i in range(n):
        base = bases[i % len(bases)]
        h, w = base.shape[:2]
        ch, cw = int(h * rng.uniform(0.3, 1.0)), int(w * rng.uniform(0.3, 1.0))
        y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        img = Image.fromarray(base[y : y + ch, x : x + cw]).convert("RGB")
        img.thumbnail((int(rng.integers(96, 257)), int(rng.integers(96, 257))))
        paths.append(folder / f"photo_{i:05d}.jpg")
        img.save(paths[-1], quality=85)
    meta = pd.DataFrame({"id": [p.stem for p in paths], "base": [i % len(bases) for i in range(n)]})
    embedder = cs.Embedder.toy()
    dim = int(np.asarray(embedder.encode_text(["a photo"])).shape[-1])
    emb = rng.standard_normal((n, dim)).astype(np.float32)
    return cs.Space.from_embeddings(cs.Gallery(meta, paths), emb / np.linalg.norm(emb, axis=1, keepdims=True),
                                    embedder=embedder)


def parts(path: Path) -> dict[str, int]:
    """Bytes of the page by part (base64 as written)."""
    text = path.read_text(encoding="utf-8")
    data = json.loads(re.search(r"<script type='application/json' id='cs-data'>(.*?)</script>", text, re.S).group(1))
    size = lambda value: len(json.dumps(value))  # noqa: E731
    queries = size(data["queries"])
    out = {"thumbnails": size(data["thumbs"]), "results": queries, "map": size(data["map"]),
           "ids_and_text": size(data["ids"]) + size(data["columns"])}
    out["script_styles_other"] = len(text.encode("utf-8")) - sum(out.values())
    return out


def page_ready_ms(path: Path) -> float | None:
    """Milliseconds from navigation until the report is drawn, in headless Chromium with the network blocked."""
    exe = shutil.which("chromium")
    if exe is None:
        return None
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.ui._harness import launch_chromium

    with sync_playwright() as pw:
        browser = launch_chromium(pw, exe)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("file:", "data:")) else r.abort())
        start = time.perf_counter()
        page.goto(path.as_uri())
        page.wait_for_selector("#cs-report[data-ready='true']", timeout=120_000)
        ms = (time.perf_counter() - start) * 1000
        browser.close()
    return round(ms, 1)


def plotly_peer(space, coords: np.ndarray, folder: Path) -> dict:
    import plotly.graph_objects as go

    start = time.perf_counter()
    fig = go.Figure(go.Scattergl(x=coords[:, 0], y=coords[:, 1], mode="markers", text=space.gallery.ids,
                                 hoverinfo="text", marker={"size": 4}))
    path = folder / "plotly.html"
    fig.write_html(path, include_plotlyjs=True, full_html=True)
    return {"seconds": round(time.perf_counter() - start, 3), "bytes": path.stat().st_size}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=str, default="1000,10000")
    p.add_argument("--photos", type=int, default=0, help="also a report of this many photograph crops (0: none)")
    p.add_argument("--browser", action="store_true", help="also time the page opening in headless Chromium")
    p.add_argument("--out", type=str, default=None)
    args = p.parse_args(argv)

    import cirscope as cs
    from cirscope.widgets import _standalone, _standalone_data

    result: dict = {
        "benchmark": "standalone_report",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_at_start": [round(v, 2) for v in os.getloadavg()]},
        "settings": {"queries": "2 PDV (180 settings each) + 1 Slerp (6)", "k": 20, "thumb_size": 64,
                     "thumb_format": "WebP q70", "map": "pca"},
        "sizes": [],
    }
    # time the two build stages by wrapping them (the same functions to_html calls)
    clock = {"searches": 0.0, "thumbnails": 0.0}

    def timed(name, fn):
        def wrapper(*a, **kw):
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                clock[name] += time.perf_counter() - t
        return wrapper

    _standalone.grid_results = timed("searches", _standalone_data.grid_results)
    _standalone.thumbnails = timed("thumbnails", _standalone_data.thumbnails)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        spaces = [("shapes", int(s)) for s in args.sizes.split(",") if s]
        if args.photos:
            spaces.append(("photos", args.photos))
        for kind, n in spaces:
            t = time.perf_counter()
            if kind == "shapes":
                space = shapes_space(n)
            else:
                (folder / "photos").mkdir()
                space = photo_space(n, folder / "photos")
            coords = space.map("pca")
            space.search(cs.ComposedQuery(0, "make it blue"), k=1)  # builds the index (a cost of any search)
            row = {"images": kind, "n": n, "space_seconds": round(time.perf_counter() - t, 2), "runs": []}
            queries = [{"reference": 0, "text": "make it blue"}, {"reference": 7, "text": "a star", "method": "pdv"},
                       {"reference": 3, "text": "make it red", "method": "slerp"}]
            for thumbs in (False, True):
                clock.update(searches=0.0, thumbnails=0.0)
                t = time.perf_counter()
                path = cs.to_html(space, folder / f"r{kind}{n}-{thumbs}.html", queries, k=20, thumbs=thumbs,
                                  map=coords, progress=False)
                total = time.perf_counter() - t
                run = {"thumbs": thumbs, "seconds": round(total, 2), "search_seconds": round(clock["searches"], 2),
                       "thumbnail_seconds": round(clock["thumbnails"], 2), "bytes": path.stat().st_size,
                       "megabytes": round(path.stat().st_size / 1e6, 2), "parts": parts(path)}
                if args.browser:
                    run["chromium_ready_ms"] = page_ready_ms(path)
                row["runs"].append(run)
                print(f"[bench_standalone] {kind} n={n} thumbs={thumbs}: {json.dumps(run)}", file=sys.stderr,
                      flush=True)
            row["plotly_peer"] = plotly_peer(space, coords, folder)
            row["ratio_bytes_with_thumbs_vs_plotly"] = round(row["runs"][1]["bytes"] / row["plotly_peer"]["bytes"], 2)
            row["ratio_bytes_no_thumbs_vs_plotly"] = round(row["runs"][0]["bytes"] / row["plotly_peer"]["bytes"], 2)
            result["sizes"].append(row)
            if args.out:
                Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    result["machine"]["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)
    return result


if __name__ == "__main__":
    main()

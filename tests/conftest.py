"""Shared fixtures: small seeded data, a tiny real open_clip model, an isolated cache."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

FIXTURES = Path(__file__).parent / "fixtures"
TINY = "cirscope-test-tiny"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own embedding cache folder (never the user's)."""
    monkeypatch.setenv("CIRSCOPE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="session")
def tiny_model_name() -> str:
    """A tiny open_clip architecture (random weights) registered with open_clip."""
    import open_clip

    if TINY not in open_clip.list_models():
        open_clip.add_model_config(FIXTURES / f"{TINY}.json")
    return TINY


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, tiny_model_name) -> Path:
    """A local checkpoint file saved from a seeded random-initialised tiny model."""
    import open_clip
    import torch

    torch.manual_seed(0)
    model = open_clip.create_model(tiny_model_name)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    torch.save({"state_dict": model.state_dict()}, path)
    return path


@pytest.fixture(scope="session")
def toy_space():
    """The shapes world (300 items, seed 0) embedded with the shipped toy model."""
    import cirscope as cs

    return cs.Space(cs.datasets.shapes(300, seed=0), cs.Embedder.toy(), cache=False, progress=False)


def photo_bytes(seed: int, size=(80, 60), fmt="JPEG") -> bytes:
    rng = np.random.default_rng(seed)
    arr = (rng.random((size[1], size[0], 3)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture
def image_folder(tmp_path) -> Path:
    """Eight small valid images (JPEG and PNG) in a folder with a sub-folder."""
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    for i in range(6):
        (root / f"img{i}.jpg").write_bytes(photo_bytes(i))
    for i in range(2):
        (root / "sub" / f"p{i}.png").write_bytes(photo_bytes(10 + i, fmt="PNG"))
    return root


# ---------------------------------------------------------------------------- browser tests
@pytest.fixture(scope="session")
def chromium_executable() -> str:
    """Debian's chromium; its absence skips the browser tests, except under CI where it fails them."""
    from tests.ui._harness import chromium_path

    path = chromium_path()
    if path is None:
        message = "Debian's chromium is not installed (apt-get install chromium); the browser tests need it"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def browser(chromium_executable) -> Iterator[Any]:
    """One Chromium for the whole session (playwright's sync API allows one driver per process)."""
    from playwright.sync_api import sync_playwright

    from tests.ui._harness import launch_chromium

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright, chromium_executable)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def jupyter_server(chromium_executable, tmp_path_factory) -> Iterator[Any]:
    """JupyterLab (and Notebook 7) on 127.0.0.1, a free port, no token, this interpreter's kernel."""
    from tests.ui._harness import JupyterServer

    cache = tmp_path_factory.mktemp("kernel-cache")
    server = JupyterServer(tmp_path_factory.mktemp("jupyter"), env={"CIRSCOPE_CACHE_DIR": str(cache)})
    server.start()
    yield server
    server.stop()

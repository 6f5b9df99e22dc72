"""Fixtures for the browser tests (the server and browser themselves are in ``tests/conftest.py``).

Browser tests skip only when Debian's ``chromium`` is missing *and* ``CI`` is unset; in CI
a missing browser is a failure, so these tests never silently disappear there.
Screenshots go to ``artifacts/ui/`` (git-ignored); with ``CIRSCOPE_UPDATE_SCREENSHOTS=1``
the README's pictures in ``docs/`` are rewritten too.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots are saved (git-ignored)."""
    folder = Path(os.environ.get("CIRSCOPE_ARTIFACTS", REPO / "artifacts")) / "ui"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def update_docs() -> Path | None:
    """``docs/`` when ``CIRSCOPE_UPDATE_SCREENSHOTS=1`` (the README's screenshots are rewritten)."""
    if os.environ.get("CIRSCOPE_UPDATE_SCREENSHOTS") == "1":
        docs = REPO / "docs"
        docs.mkdir(exist_ok=True)
        return docs
    return None

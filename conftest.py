"""Doctest set-up: the names every docstring example may use.

``python -m pytest`` runs the examples in ``src/cirscope`` (``--doctest-modules``). They get
``cs`` and ``np``, a small shapes gallery and a toy-model ``space`` over it (built once, with
the embedding cache in a temporary folder), so examples run instead of being skipped.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest


@pytest.fixture(scope="session")
def _doctest_space():
    import cirscope as cs

    with tempfile.TemporaryDirectory() as cache:
        old = os.environ.get("CIRSCOPE_CACHE_DIR")
        os.environ["CIRSCOPE_CACHE_DIR"] = cache
        try:
            gallery = cs.datasets.shapes(120, seed=0)
            space = cs.Space(gallery, cs.Embedder.toy(), progress=False)
        finally:
            if old is None:
                os.environ.pop("CIRSCOPE_CACHE_DIR", None)
            else:
                os.environ["CIRSCOPE_CACHE_DIR"] = old
        yield space


@pytest.fixture(autouse=True)
def _doctest_names(request, doctest_namespace):
    """Only doctest items pay for the space; ordinary tests never build it."""
    if isinstance(request.node, pytest.DoctestItem):
        import cirscope as cs

        space = request.getfixturevalue("_doctest_space")
        doctest_namespace.update(cs=cs, np=np, space=space, gallery=space.gallery)

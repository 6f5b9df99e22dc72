"""The model registry: any model registers through cs.register_model, the shipped toy included."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cirscope as cs
from cirscope.embedding._models import registered_model, registered_models, unregister_model
from cirscope.embedding._shard_worker import model_spec
from cirscope.toy import WEIGHTS_PATH
from tests.conftest import FIXTURES, TINY

EMBEDDING = Path(cs.__file__).parent / "embedding"

#: The ``tiny_loader`` fixture names the tiny checkpoint here (read by the loader, also in a child process).
CHECKPOINT_VAR = "CIRSCOPE_TEST_TINY_CHECKPOINT"


def load_tiny(device: str = "cpu"):
    """A user's loader: the tiny test architecture with its local checkpoint, open_clip's way."""
    import open_clip

    if TINY not in open_clip.list_models():
        open_clip.add_model_config(FIXTURES / f"{TINY}.json")
    model, _, preprocess = open_clip.create_model_and_transforms(TINY, pretrained=os.environ[CHECKPOINT_VAR],
                                                                 device=device)
    model.eval()
    return model, preprocess, open_clip.get_tokenizer(TINY)


@pytest.fixture
def tiny_loader(tiny_model_name, tiny_checkpoint, monkeypatch):
    monkeypatch.setenv(CHECKPOINT_VAR, str(tiny_checkpoint))
    yield
    for name in ("my-tiny", "my-tiny-eager", "my-tiny-broken"):
        if registered_model(name) is not None:
            unregister_model(name)


def test_a_user_registered_model_works_through_the_embedder(tiny_loader, tiny_model_name, tiny_checkpoint, tmp_path):
    spec = cs.register_model("my-tiny", "tests.test_models:load_tiny", aliases=("mt",), weights_file=tiny_checkpoint,
                             description="the tiny test model")
    assert registered_model("mt") is spec and spec in registered_models()
    mine = cs.Embedder("my-tiny", device="cpu")  # no pretrained needed: the registration carries the weights
    assert mine.registered is spec and not mine.random_weights and mine._model is None
    direct = cs.Embedder(tiny_model_name, pretrained=str(tiny_checkpoint), device="cpu")
    assert mine.fingerprint == direct.fingerprint  # the same file, the same hash
    assert mine._model is None  # the fingerprint of a file-backed model never loads it
    texts = ["a red star", "a blue circle"]
    np.testing.assert_allclose(mine.encode_text(texts), direct.encode_text(texts), atol=1e-6)
    gallery = cs.datasets.shapes(6, seed=3)
    space = cs.Space(gallery, cs.Embedder("mt", device="cpu"), progress=False)
    assert space.image_embeddings.shape == (6, 32)
    np.testing.assert_allclose(np.linalg.norm(space.image_embeddings, axis=1), 1.0, atol=1e-5)
    assert "cs.Embedder('my-tiny'), or --model my-tiny" in _which_weights_text()


def test_a_worker_process_rebuilds_a_model_registered_on_the_driver(tiny_loader, tiny_checkpoint, tmp_path):
    """Ray workers are other processes: the run's model spec carries the registration to them."""
    cs.register_model("my-tiny", "tests.test_models:load_tiny", aliases=["mt"], weights_file=tiny_checkpoint)
    driver = cs.Embedder("mt", device="cpu")
    spec = model_spec(driver, device="cpu")
    (tmp_path / "spec.json").write_text(json.dumps(spec))  # what crosses to the worker must be plain data
    code = (
        "import json, sys\n"
        "from cirscope.embedding._shard_worker import make_embedder\n"
        "e = make_embedder(json.load(open(sys.argv[1])))\n"
        "print(e.registered.name, e.fingerprint, e.encode_text(['a red star']).shape)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "spec.json")], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parents[1]).stdout
    assert out.split() == ["my-tiny", driver.fingerprint, "(1,", "32)"]


def test_an_eager_loader_and_a_state_fingerprint(tiny_loader):
    cs.register_model("my-tiny-eager", load_tiny)  # a function; no weights file: the state dict is hashed
    emb = cs.Embedder("my-tiny-eager", device="cpu")
    assert len(emb.fingerprint) == 32 and not emb.fingerprint.startswith("file-")
    assert emb._model is not None


def test_registration_errors_are_clear(tiny_loader):
    with pytest.raises(ValueError, match="module:function"):
        cs.register_model("my-tiny", "no_colon_here")
    with pytest.raises(TypeError, match="loader must be a function"):
        cs.register_model("my-tiny", 42)
    with pytest.raises(ValueError, match="non-empty string"):
        cs.register_model(" ", load_tiny)
    with pytest.raises(ValueError, match="'cirscope-toy' is already registered"):
        cs.register_model("cirscope-toy", load_tiny)
    assert registered_model("cirscope-toy").weights_file == WEIGHTS_PATH  # the toy is untouched
    cs.register_model("my-tiny", load_tiny)
    cs.register_model("my-tiny", load_tiny)  # the same registration again is harmless
    cs.register_model("my-tiny", "tests.test_models:load_tiny", replace=True)
    assert registered_model("my-tiny").loader == "tests.test_models:load_tiny"
    cs.register_model("my-tiny-broken", "tests.test_models:no_such_loader")
    with pytest.raises(ImportError, match="no_such_loader"):
        cs.Embedder("my-tiny-broken", device="cpu").load()
    cs.register_model("my-tiny-broken", lambda device: "not a model", replace=True)
    with pytest.raises(TypeError, match=r"must return \(model, preprocess, tokenizer\)"):
        cs.Embedder("my-tiny-broken", device="cpu").load()
    with pytest.raises(KeyError):
        unregister_model("never-registered")


def test_the_toy_registers_like_any_model_and_keeps_its_fingerprint():
    spec = registered_model("cirscope-toy")
    assert spec is registered_model("toy") and spec.loader == "cirscope.toy._weights:load_toy"
    expected = "file-" + hashlib.blake2b(WEIGHTS_PATH.read_bytes(), digest_size=16).hexdigest()
    toy = cs.Embedder.toy()
    assert toy.fingerprint == expected  # caches written before the registry stay valid
    assert toy.cache_key == f"cirscope-toy-{expected[:20]}-fp32-draft"
    assert cs.Embedder("toy", device="cpu").cache_key == f"toy-{expected[:20]}-fp32-draft"
    assert toy._model is None
    assert "the toy model shipped with cirscope" in _which_weights_text()


def test_embedding_knows_nothing_of_the_toy():
    for path in EMBEDDING.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n.startswith("cirscope.toy") for n in names), f"{path.name} imports {names}"
        assert "TOY_NAMES" not in path.read_text() and "is_toy" not in path.read_text(), path.name


def test_registering_imports_nothing_heavy():
    code = (
        "import sys, cirscope as cs\n"
        "cs.register_model('lazy-one', 'some_package.somewhere:load')\n"
        "e = cs.Embedder('cirscope-toy')\n"
        "print(sorted(m for m in ('torch', 'open_clip', 'some_package') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def _which_weights_text() -> str:
    with pytest.raises(cs.ModelLoadError) as info:
        cs.Embedder("ViT-B-32")
    return str(info.value)

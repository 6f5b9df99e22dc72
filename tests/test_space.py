"""Space: construction, validation, persistence without torch, model checks, text cache."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import cirscope as cs
from cirscope._core.errors import DamagedFileError


def _gallery(n=6):
    return cs.datasets.shapes(n, seed=2)


def test_from_embeddings_validates_and_normalises():
    g = _gallery()
    v = np.random.default_rng(0).normal(size=(6, 5))
    s = cs.Space.from_embeddings(g, v * 3, model_name="mine")
    np.testing.assert_allclose(np.linalg.norm(s.image_embeddings, axis=1), 1.0, atol=1e-6)
    assert s.image_embeddings.dtype == np.float32 and len(s) == 6
    with pytest.raises(ValueError, match="one row per image"):
        cs.Space.from_embeddings(g, v[:5])
    with pytest.raises(ValueError, match=r"2-D \(N, D\)"):
        cs.Space.from_embeddings(g, v[:, 0])
    bad = v.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        cs.Space.from_embeddings(g, bad)
    with pytest.raises(RuntimeError, match="no embedder"):
        s.encode_text("a star")


def test_space_requires_gallery_and_embedder():
    with pytest.raises(TypeError, match="needs an embedder"):
        cs.Space(_gallery())
    with pytest.raises(TypeError, match="Gallery"):
        cs.Space(pd.DataFrame({"a": [1]}), cs.Embedder.toy())


def test_bad_images_are_dropped_and_rows_stay_aligned(tiny_model_name, tiny_checkpoint, image_folder):
    (image_folder / "bad.jpg").write_bytes(b"nope")
    emb = cs.Embedder(tiny_model_name, pretrained=str(tiny_checkpoint), device="cpu")
    s = cs.Space(cs.Gallery.from_folder(image_folder), emb, progress=False)
    assert len(s) == 8 and "bad.jpg" not in s.gallery.ids
    assert s.problems["id"].tolist() == ["bad.jpg"]
    row = s.gallery.row_of("img3.jpg")
    # the gallery path resizes with torch's kernel, encode_images with PIL: equal within 5e-4
    np.testing.assert_allclose(s.image_embeddings[row], emb.encode_images([image_folder / "img3.jpg"])[0], atol=5e-4)


def test_all_bad_is_a_clear_error(tiny_model_name, tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"")
    with pytest.raises(ValueError, match="None of the 1 images"):
        cs.Space(cs.Gallery.from_folder(tmp_path), cs.Embedder(tiny_model_name, pretrained="random", device="cpu"), progress=False)


def test_save_load_roundtrip_without_torch(tmp_path, tiny_model_name, tiny_checkpoint):
    emb = cs.Embedder(tiny_model_name, pretrained=str(tiny_checkpoint), device="cpu")
    s = cs.Space(_gallery(), emb, progress=False)
    s.save(tmp_path / "out")
    info = json.loads((tmp_path / "out" / "space.json").read_text())
    assert info["model"]["model"] == tiny_model_name and info["n"] == 6
    code = (
        "import sys, cirscope as cs; s = cs.Space.load(sys.argv[1]); "
        "print(s.image_embeddings.shape, s.gallery.metadata['shape'].tolist()); "
        "print([m for m in ('torch', 'open_clip', 'umap') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "out")], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out[0].startswith("(6, 32)") and out[1] == "[]"
    back = cs.Space.load(tmp_path / "out", embedder=emb)
    np.testing.assert_array_equal(back.image_embeddings, s.image_embeddings)
    np.testing.assert_allclose(back.encode_text("a star"), s.encode_text("a star"))


def test_loading_inconsistent_folder_fails(tmp_path):
    s = cs.Space.from_embeddings(_gallery(), np.eye(6), model_name="x")
    s.save(tmp_path / "o")
    np.save(tmp_path / "o" / "embeddings.npy", np.eye(5, 6, dtype=np.float32))
    with pytest.raises(DamagedFileError, match=r"embeddings\.npy is damaged: it has 248 bytes"):
        cs.Space.load(tmp_path / "o")


def test_mismatched_model_is_refused(tmp_path, tiny_model_name, tiny_checkpoint):
    emb = cs.Embedder(tiny_model_name, pretrained=str(tiny_checkpoint), device="cpu")
    cs.Space(_gallery(), emb, progress=False).save(tmp_path / "o")
    other = cs.Embedder(tiny_model_name, pretrained="random", device="cpu")  # same architecture, other weights
    with pytest.raises(ValueError, match="not the model these embeddings were made with"):
        cs.Space.load(tmp_path / "o", embedder=other).encode_text("x")


def test_text_encodings_are_cached(monkeypatch, tiny_model_name):
    emb = cs.Embedder(tiny_model_name, pretrained="random", device="cpu")
    s = cs.Space.from_embeddings(_gallery(), np.random.default_rng(1).normal(size=(6, 32)), embedder=emb)
    calls = []
    real = emb.encode_text
    monkeypatch.setattr(emb, "encode_text", lambda texts: calls.append(list(texts)) or real(texts))
    a = s.encode_text(["x", "y"])
    b = s.encode_text(["y", "x", "z"])
    assert calls == [["x", "y"], ["z"]]
    np.testing.assert_array_equal(a[::-1], b[:2])


def test_encode_image_by_row_and_id():
    s = cs.Space.from_embeddings(_gallery(), np.eye(6), model_name="x")
    np.testing.assert_array_equal(s.encode_image(2), s.image_embeddings[2])
    np.testing.assert_array_equal(s.encode_image(s.gallery.ids[4]), s.image_embeddings[4])

"""Real open_clip models (tiny, random-initialised), local checkpoints, offline errors, caching."""

from __future__ import annotations

import numpy as np
import pytest

import cirscope as cs
from cirscope._core.errors import ModelLoadError
from tests.conftest import photo_bytes


def test_text_embeddings_are_normalised_float32(tiny_model_name):
    emb = cs.Embedder(tiny_model_name, pretrained="random", device="cpu")
    out = emb.encode_text(["a red car", "a blue star"])
    assert out.shape == (2, 32) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_local_checkpoint_loads_the_saved_weights(tiny_model_name, tiny_checkpoint):
    a = cs.Embedder(tiny_model_name, pretrained=str(tiny_checkpoint), device="cpu")
    b = cs.Embedder(tiny_model_name, pretrained=tiny_checkpoint, device="cpu")
    np.testing.assert_array_equal(a.encode_text(["x"]), b.encode_text(["x"]))
    assert a.fingerprint == b.fingerprint
    assert cs.Embedder(tiny_model_name, pretrained="random", device="cpu").fingerprint != a.fingerprint  # random init differs


@pytest.fixture
def offline(monkeypatch):
    """No hub access (huggingface_hub reads its offline switch at call time from constants)."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def test_offline_tag_fails_with_instructions(offline):
    with pytest.raises(ModelLoadError, match=r"pass the local file.*pretrained='/path/to/"):
        cs.Embedder("ViT-B-32", pretrained="laion2b_s34b_b79k", device="cpu").load()


def test_offline_hf_hub_name_fails_with_instructions(offline):
    with pytest.raises(ModelLoadError, match="download the checkpoint"):
        cs.Embedder("hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K", device="cpu").load()


def test_unreachable_hub_fails_at_once_without_the_offline_switch(monkeypatch):
    """A host that cannot be reached switches the hub to offline mode instead of a minute of retries."""
    import huggingface_hub.constants

    from cirscope.embedding import _loading

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    # a port on this machine that nothing listens on: the probe fails with "connection refused"
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "https://127.0.0.1:9")
    for var in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    seen = []

    def fake_download(cfg, *args, **kwargs):
        seen.append(huggingface_hub.constants.HF_HUB_OFFLINE)
        raise FileNotFoundError("not in the local cache")

    import open_clip.pretrained

    monkeypatch.setattr(open_clip.pretrained, "download_pretrained", fake_download)
    with pytest.raises(ModelLoadError, match=r"127\.0\.0\.1 is unreachable.*pass the local file"):
        cs.Embedder("ViT-B-32", pretrained="laion2b_s34b_b79k", device="cpu").load()
    assert seen == [True] and huggingface_hub.constants.HF_HUB_OFFLINE is False
    assert _loading.unreachable("https://127.0.0.1:9") is not None


def test_bad_names_and_paths(tiny_model_name, tmp_path):
    with pytest.raises(ModelLoadError, match="Unknown open_clip model"):
        cs.Embedder("NoSuchNet", pretrained="random", device="cpu").load()
    with pytest.raises(ModelLoadError, match="neither a file nor a pretrained tag"):
        cs.Embedder("ViT-B-32", pretrained="nosuchtag", device="cpu").load()
    with pytest.raises(ModelLoadError, match="Checkpoint file not found"):
        cs.Embedder(tiny_model_name, pretrained=str(tmp_path / "missing.pt"), device="cpu").load()
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    with pytest.raises(ModelLoadError, match="Could not load the checkpoint"):
        cs.Embedder(tiny_model_name, pretrained=str(bad), device="cpu").load()


def test_embed_gallery_skips_bad_files_and_caches(tiny_model_name, tiny_checkpoint, image_folder, tmp_path):
    (image_folder / "zero.jpg").write_bytes(b"")
    (image_folder / "junk.png").write_bytes(b"\x89PNG garbage")
    emb = cs.Embedder(tiny_model_name, pretrained=str(tiny_checkpoint), device="cpu")
    g = cs.Gallery.from_folder(image_folder)
    first = emb.embed_gallery(g, cache_dir=tmp_path / "c", progress=False)
    assert len(first.rows) == 8 and first.n_embedded == 8
    assert sorted(first.problems["id"]) == ["junk.png", "zero.jpg"]
    second = emb.embed_gallery(cs.Gallery.from_folder(image_folder), cache_dir=tmp_path / "c", progress=False)
    assert second.n_cached == 8 and second.n_embedded == 0
    np.testing.assert_array_equal(first.embeddings, second.embeddings)
    # a new embedder on the same checkpoint file finds everything cached without loading the model
    fresh = cs.Embedder(tiny_model_name, pretrained=str(tiny_checkpoint), device="cpu")
    again = fresh.embed_gallery(cs.Gallery.from_folder(image_folder), cache_dir=tmp_path / "c", progress=False)
    assert again.n_cached == 8 and fresh._model is None
    np.testing.assert_array_equal(first.embeddings, again.embeddings)
    (image_folder / "new.jpg").write_bytes(photo_bytes(99))
    third = emb.embed_gallery(cs.Gallery.from_folder(image_folder), cache_dir=tmp_path / "c", progress=False)
    assert third.n_embedded == 1 and third.n_cached == 8


def test_interrupted_run_resumes_from_cache(tiny_model_name, tiny_checkpoint, tmp_path, monkeypatch):
    g = cs.datasets.shapes(40, seed=3)
    emb = cs.Embedder(tiny_model_name, pretrained=str(tiny_checkpoint), device="cpu", batch_size=8)
    real = cs.Embedder.encode_pixels
    calls = {"n": 0}

    def crash_on_third_batch(self, batch):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("simulated crash")
        return real(self, batch)

    monkeypatch.setattr(cs.Embedder, "encode_pixels", crash_on_third_batch)
    with pytest.raises(KeyboardInterrupt):
        emb.embed_gallery(g, cache_dir=tmp_path, progress=False, flush_every=8)
    monkeypatch.setattr(cs.Embedder, "encode_pixels", real)
    resumed = emb.embed_gallery(g, cache_dir=tmp_path, progress=False)
    assert resumed.n_cached == 16 and resumed.n_embedded == 24
    fresh = emb.embed_gallery(g, cache=False, progress=False)
    np.testing.assert_allclose(resumed.embeddings, fresh.embeddings, atol=1e-6)


def test_encode_images_matches_gallery_path(tiny_model_name, tiny_checkpoint):
    g = cs.datasets.shapes(5, seed=1)
    emb = cs.Embedder(tiny_model_name, pretrained=str(tiny_checkpoint), device="cpu")
    via_gallery = emb.embed_gallery(g, cache=False, progress=False).embeddings
    direct = emb.encode_images([g.load_image(i) for i in range(5)])
    np.testing.assert_allclose(via_gallery, direct, atol=5e-4)  # fast gallery decoding vs PIL preprocessing

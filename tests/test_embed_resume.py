"""An embedding run flushes to the cache by time as well as by count, and remembers only failures
that are properties of the file."""

from __future__ import annotations

import errno
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from PIL import Image

import cirscope as cs
from cirscope.embedding._cache import EmbeddingCache
from cirscope.embedding._run import FLUSH_SECONDS
from cirscope.gallery import _decode as _images
from cirscope.gallery._decode import TransientReason, is_transient
from tests.conftest import FIXTURES, photo_bytes


def _slow_photos(folder, n: int) -> None:
    """Large smooth JPEGs: cheap on disk, a noticeable fraction of a second to decode fully."""
    folder.mkdir(parents=True)
    y, x = np.mgrid[0:1400, 0:1400]
    for i in range(n):
        arr = np.stack([(x + 7 * i) % 256, (y + 13 * i) % 256, (x + y + i) % 256], axis=-1).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="JPEG", quality=80)
        (folder / f"{i:03d}.jpg").write_bytes(buf.getvalue())


_RUN = textwrap.dedent(
    """
    import sys
    import open_clip
    import cirscope as cs

    config, ckpt, folder, cache = sys.argv[1:5]
    open_clip.add_model_config(config)
    emb = cs.Embedder("cirscope-test-tiny", pretrained=ckpt, device="cpu", batch_size=2, num_workers=0,
                      fast_jpeg=False)
    emb.embed_gallery(cs.Gallery.from_folder(folder), cache_dir=cache, progress=False, flush_seconds=0.05)
    print("finished")
    """
)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_killed_run_keeps_what_was_flushed_by_time(tmp_path, tiny_model_name, tiny_checkpoint):
    assert FLUSH_SECONDS == 30.0
    n = 30
    folder = tmp_path / "photos"
    _slow_photos(folder, n)
    cache = tmp_path / "cache"
    emb = cs.Embedder(tiny_model_name, pretrained=str(tiny_checkpoint), device="cpu", batch_size=2, fast_jpeg=False)
    store_folder = EmbeddingCache(cache, emb.cache_key).folder
    proc = subprocess.Popen(
        [sys.executable, "-c", _RUN, str(FIXTURES / f"{tiny_model_name}.json"), str(tiny_checkpoint), str(folder),
         str(cache)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 240
        while not list(store_folder.glob("shard-*.npz")) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None, f"the run ended before its first flush: {proc.communicate()}"
        os.kill(proc.pid, signal.SIGKILL)  # no finally block, no atexit: only what was flushed survives
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    flushed = len(EmbeddingCache(cache, emb.cache_key))
    assert 0 < flushed < n  # flushed by time long before 2,048 images
    rerun = emb.embed_gallery(cs.Gallery.from_folder(folder), cache_dir=cache, progress=False)
    assert rerun.n_cached == flushed and rerun.n_embedded == n - flushed
    fresh = emb.embed_gallery(cs.Gallery.from_folder(folder), cache=False, progress=False)
    np.testing.assert_allclose(rerun.embeddings, fresh.embeddings, atol=1e-5)


@pytest.mark.parametrize(
    "failure",
    [MemoryError(), OSError(errno.EIO, "Input/output error"), OSError(errno.EMFILE, "Too many open files")],
    ids=["MemoryError", "EIO", "EMFILE"],
)
def test_failures_of_the_run_are_reported_but_not_remembered(
    tmp_path, tiny_model_name, tiny_checkpoint, image_folder, monkeypatch, failure
):
    (image_folder / "corrupt.jpg").write_bytes(photo_bytes(7)[:200])  # a property of the file
    emb = cs.Embedder(tiny_model_name, pretrained=str(tiny_checkpoint), device="cpu", num_workers=0)
    real = _images.decode

    def failing(source, *args, **kwargs):
        if str(source).endswith("img2.jpg"):
            raise failure
        return real(source, *args, **kwargs)

    monkeypatch.setattr(_images, "decode", failing)
    first = emb.embed_gallery(cs.Gallery.from_folder(image_folder), cache_dir=tmp_path, progress=False)
    reasons = dict(zip(first.problems["id"], first.problems["reason"], strict=True))
    assert set(reasons) == {"img2.jpg", "corrupt.jpg"}
    assert type(failure).__name__ in reasons["img2.jpg"]
    assert reasons["corrupt.jpg"] == "truncated or incomplete image data"
    recorded = json.loads((EmbeddingCache(tmp_path, emb.cache_key).folder / "problems.json").read_text())
    assert list(recorded.values()) == ["truncated or incomplete image data"]

    monkeypatch.setattr(_images, "decode", real)  # the machine recovered: the image is embedded this time
    second = emb.embed_gallery(cs.Gallery.from_folder(image_folder), cache_dir=tmp_path, progress=False)
    assert second.n_embedded == 1 and second.n_cached == 7
    assert second.problems["id"].tolist() == ["corrupt.jpg"]


def test_transient_reasons_survive_worker_processes():
    import pickle

    problem = _images.problem_from(OSError(errno.EIO, "Input/output error"))
    assert problem.transient and isinstance(problem.reason, TransientReason)
    again = pickle.loads(pickle.dumps(problem))
    assert again.transient and isinstance(again.reason, TransientReason) and again.reason == problem.reason
    assert isinstance(pickle.loads(pickle.dumps(problem.reason)), TransientReason)
    assert not is_transient(ValueError("broken data stream")) and not is_transient(OSError(errno.ENOENT, "x"))
    assert is_transient(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"))

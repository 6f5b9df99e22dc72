"""The decoding pipeline: fast paths agree with open_clip's PIL preprocessing, odd files fall back
and are counted, memory stays bounded, interrupted runs resume.

The GPU path runs here on CPU tensors (``torchvision.io.decode_jpeg`` on the CPU, the batched
resize/crop/normalise on CPU tensors): same code, other device.
"""

from __future__ import annotations

import io
import multiprocessing as mp
import time
from collections.abc import Sequence

import numpy as np
import pytest
import torch
from PIL import Image

import cirscope as cs
from cirscope.embedding._gpu_preprocess import (
    PreprocessPlan,
    decode_jpegs,
    plan_from_transform,
    resize_crop_batch,
    resize_crop_uint8,
    sniff_jpeg,
)
from cirscope.embedding._pipeline import DecodeStats, chunk_size, iterate_batches

# torchvision 0.29 deprecates its image decoders in favour of TorchCodec; they still work
pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding capabilities:DeprecationWarning")

#: Max abs difference per embedding component (L2-normalised float32 vectors) between a fast
#: path and open_clip's PIL path on the same images, without draft decoding. Measured on CPU
#: tensors: 2e-5 (GPU path) and 5e-5 (fast CPU path) with the toy model and ViT-B-32.
TOL_EXACT_DECODE = 5e-4
#: The same with JPEG draft decoding (reduced-scale DCT decode, then resize); measured 6e-3
#: with the toy model (64 px) and 9e-4 with ViT-B-32 (224 px).
TOL_DRAFT = 0.02
#: On CUDA, GPU path vs PIL path, both through the fp16 model: nvJPEG's IDCT is not
#: libjpeg-turbo's, and fp16 adds its own rounding.
TOL_CUDA_FP16 = 5e-3


def photo(seed: int, size: tuple[int, int], fmt: str = "JPEG", mode: str = "RGB", **save) -> bytes:
    """A smooth, photo-like image with mild noise, encoded as ``fmt``."""
    rng = np.random.default_rng(seed)
    w, h = size
    grid = rng.integers(0, 256, (max(2, h // 12), max(2, w // 12), 3), dtype=np.uint8)
    arr = np.asarray(Image.fromarray(grid).resize((w, h), Image.Resampling.BICUBIC), dtype=np.float32)
    arr = np.clip(arr + rng.normal(0, 4, arr.shape), 0, 255).astype(np.uint8)
    img = Image.fromarray(arr).convert(mode)
    buf = io.BytesIO()
    img.save(buf, format=fmt, **save)
    return buf.getvalue()


def exif_rotated(seed: int, size: tuple[int, int]) -> bytes:
    img = Image.open(io.BytesIO(photo(seed, size)))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif)
    return buf.getvalue()


@pytest.fixture(scope="module")
def toy():
    return cs.Embedder.toy(device="cpu").load()


def embed(emb, sources: Sequence, **kwargs) -> tuple[dict[int, np.ndarray], dict[int, str], DecodeStats]:
    """Run ``iterate_batches`` and the model; return vectors and problems by row, and the stats."""
    stats = DecodeStats()
    vectors: dict[int, np.ndarray] = {}
    problems: dict[int, str] = {}
    kwargs.setdefault("batch_size", 8)
    kwargs.setdefault("num_workers", 0)
    for rows, batch, bad in iterate_batches(sources, range(len(sources)), emb.preprocess, stats=stats, **kwargs):
        problems.update(bad)
        if batch is not None:
            assert batch.shape[0] == len(rows) <= kwargs["batch_size"]
            vectors.update(zip(rows, emb.encode_pixels(batch), strict=True))
    return vectors, problems, stats


def reference(emb, sources: Sequence) -> dict[int, np.ndarray]:
    """open_clip's own preprocessing on a full Pillow decode (the reference path)."""
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(emb.precision, torch.float32)
    vectors, _, stats = embed(emb, sources, fast=False, device=emb.device, dtype=dtype)
    assert stats.path == "reference"
    return vectors


def max_diff(a: dict[int, np.ndarray], b: dict[int, np.ndarray]) -> float:
    assert sorted(a) == sorted(b)
    return float(max(np.abs(a[k] - b[k]).max() for k in a))


# --------------------------------------------------------------------------- pixels


def test_plan_is_read_from_open_clip_transforms(toy, tiny_model_name):
    import open_clip
    from torchvision import transforms as T

    assert plan_from_transform(toy.preprocess) == PreprocessPlan(
        64, 64, "bicubic", (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
    )
    _, _, pre = open_clip.create_model_and_transforms(tiny_model_name)
    assert plan_from_transform(pre).size == 32
    _, _, longest = open_clip.create_model_and_transforms(tiny_model_name, image_resize_mode="longest")
    assert plan_from_transform(longest) is None  # letterboxing: the transform runs itself
    assert plan_from_transform(T.Compose([T.Resize(32), T.CenterCrop(32), T.ToTensor()])) is None
    assert plan_from_transform(lambda img: img) is None


SIZES = [(500, 375), (375, 500), (640, 427), (200, 150), (64, 300), (65, 64), (64, 64), (33, 1000), (1, 1), (3, 2)]


@pytest.mark.parametrize(("interpolation", "side", "levels"), [("bicubic", 64, 1), ("bicubic", 224, 2), ("bilinear", 64, 1)])
def test_tensor_resize_crop_matches_pillow(interpolation, side, levels):
    """Both tensor paths land within ``levels`` grey levels of Pillow, on at most 1% of the pixels."""
    from torchvision import transforms as T

    mode = T.InterpolationMode.BICUBIC if interpolation == "bicubic" else T.InterpolationMode.BILINEAR
    pre = T.Compose([T.Resize(side, interpolation=mode), T.CenterCrop(side), T.ToTensor(),
                     T.Normalize((0.5,) * 3, (0.5,) * 3)])
    plan = plan_from_transform(pre)
    assert plan is not None and plan.interpolation == interpolation
    for i, size in enumerate(SIZES):
        img = Image.open(io.BytesIO(photo(i, size))).convert("RGB")
        ref = np.rint(np.asarray(pre(img) * 0.5 + 0.5) * 255).astype(int)  # back to grey levels
        cpu = resize_crop_uint8(np.asarray(img), plan).numpy().astype(int)
        batch = resize_crop_batch([torch.from_numpy(np.array(img)).permute(2, 0, 1)], plan)[0].numpy().astype(int)
        for name, got in (("cpu", cpu), ("batch", batch)):
            diff = np.abs(got - ref)
            assert diff.max() <= levels, (name, size, diff.max())
            assert (diff > 0).mean() <= 0.01, (name, size, (diff > 0).mean())


def test_batched_resize_handles_mixed_sizes_and_rejects_bad_input():
    plan = PreprocessPlan(16, 16, "bicubic", (0.5,) * 3, (0.5,) * 3)
    imgs = [torch.from_numpy(np.array(Image.open(io.BytesIO(photo(i, s))))).permute(2, 0, 1)
            for i, s in enumerate([(40, 30), (30, 40), (40, 30)])]
    out = resize_crop_batch(imgs, plan)
    for img, row in zip(imgs, out, strict=True):
        torch.testing.assert_close(resize_crop_batch([img], plan)[0], row)
    with pytest.raises(ValueError, match="uint8"):
        resize_crop_batch([torch.zeros(3, 8, 8)], plan)
    with pytest.raises(ValueError, match="at least one"):
        resize_crop_batch([], plan)


def test_sniff_routes_only_plain_jpegs_to_the_device():
    assert sniff_jpeg(photo(0, (40, 30))) == (None, (30, 40))
    assert sniff_jpeg(photo(0, (40, 30), mode="L"))[0] is None
    assert sniff_jpeg(photo(0, (40, 30), progressive=True))[0] == "progressive JPEG"
    assert sniff_jpeg(photo(0, (40, 30), fmt="PNG"))[0] == "not a JPEG"
    assert sniff_jpeg(photo(0, (40, 30), mode="CMYK"))[0] == "CMYK JPEG"
    assert sniff_jpeg(exif_rotated(0, (40, 30)))[0] == "JPEG with EXIF rotation"
    assert "truncated" in sniff_jpeg(photo(0, (40, 30))[:300])[0]
    assert sniff_jpeg(b"")[0] == "not a JPEG"


def test_decode_jpegs_retries_one_by_one():
    good = torch.frombuffer(bytearray(photo(1, (40, 30))), dtype=torch.uint8)
    bad = torch.frombuffer(bytearray(b"\xff\xd8\xff" + b"\x00" * 50 + b"\xff\xd9"), dtype=torch.uint8)
    out = decode_jpegs([good, bad, good], "cpu")
    assert isinstance(out[0], torch.Tensor) and out[0].shape == (3, 30, 40)
    assert isinstance(out[1], Exception)
    torch.testing.assert_close(out[0], out[2])


# --------------------------------------------------------------------------- embeddings


@pytest.fixture(scope="module")
def photos() -> list[bytes]:
    """JPEGs whose shorter side is at most twice the toy model's 64 px (no draft decoding)."""
    sizes = [(128, 96), (96, 128), (100, 75), (80, 64), (64, 64), (127, 90), (50, 40), (128, 128), (90, 120)]
    return [photo(i, s) for i, s in enumerate(sizes)]


def test_fast_cpu_path_matches_reference(toy, photos):
    ref = reference(toy, photos)
    fast, problems, stats = embed(toy, photos, draft_size=64)
    assert stats.path == "cpu-fast" and stats.fast == len(photos) and not problems
    assert max_diff(fast, ref) <= TOL_EXACT_DECODE


def test_gpu_path_on_cpu_tensors_matches_reference(toy, photos):
    ref = reference(toy, photos)
    fast, problems, stats = embed(toy, photos, gpu_decode=True, draft_size=64)
    assert stats.path == "gpu" and stats.fast == len(photos) and stats.fallback == 0 and not problems
    assert max_diff(fast, ref) <= TOL_EXACT_DECODE


def test_draft_decoding_stays_close_to_reference(toy):
    big = [photo(20 + i, s) for i, s in enumerate([(500, 375), (375, 500), (640, 480), (1024, 768)])]
    ref = reference(toy, big)
    drafted, _, _ = embed(toy, big, draft_size=64)
    full, _, _ = embed(toy, big, draft_size=None)
    assert max_diff(full, ref) <= TOL_EXACT_DECODE
    assert max_diff(drafted, ref) <= TOL_DRAFT
    assert min(float(drafted[k] @ ref[k]) for k in ref) > 0.999


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_path_on_cuda_matches_reference_in_fp16():
    emb = cs.Embedder("ViT-B-32", pretrained="random", device="cuda", batch_size=8).load()
    assert emb.precision == "fp16"
    sources = [photo(60 + i, s) for i, s in enumerate([(500, 375), (375, 500), (640, 427), (200, 150)] * 4)]
    ref = reference(emb, sources)
    got, problems, stats = embed(emb, sources, device="cuda", dtype=torch.float16, batch_size=8)
    assert stats.path == "gpu" and stats.fast == len(sources) and not problems
    assert max_diff(got, ref) <= TOL_CUDA_FP16


@pytest.mark.slow
def test_vit_b_32_gpu_path_on_cpu_tensors_matches_reference():
    """At 224 px on 500x375 photos, with the ViT-B-32 architecture (random weights)."""
    emb = cs.Embedder("ViT-B-32", pretrained="random", device="cpu", batch_size=4).load()
    sources = [photo(40 + i, s) for i, s in enumerate([(500, 375), (375, 500), (500, 375), (640, 427)])]
    ref = reference(emb, sources)
    gpu, _, stats = embed(emb, sources, gpu_decode=True, batch_size=4)
    cpu, _, _ = embed(emb, sources, draft_size=224, batch_size=4)
    assert stats.fast == len(sources)
    assert max_diff(gpu, ref) <= TOL_EXACT_DECODE
    assert max_diff(cpu, ref) <= TOL_EXACT_DECODE


@pytest.fixture
def odd_sources(tmp_path) -> tuple[list, dict[int, str], set[int]]:
    """Good files of every awkward kind, and broken ones; returns sources, fallback kinds, broken rows."""
    files = {
        "plain.jpg": photo(1, (120, 90)),
        "grey.jpg": photo(2, (90, 120), mode="L"),
        "progressive.jpg": photo(3, (100, 100), progressive=True),
        "cmyk.jpg": photo(4, (110, 80), mode="CMYK"),
        "rotated.jpg": exif_rotated(5, (120, 80)),
        "trailing.jpg": photo(6, (100, 90)) + b"junk after the end marker",
        "picture.png": photo(7, (100, 70), fmt="PNG"),
        "alpha.png": photo(8, (70, 100), fmt="PNG", mode="RGBA"),
        "truncated.jpg": photo(9, (120, 90))[:700],
        "empty.jpg": b"",
        "text.jpg": b"this is not an image",
        "plain2.jpg": photo(10, (128, 100)),
    }
    sources: list = []
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        sources.append(str(tmp_path / name))
    sources.append(Image.open(io.BytesIO(photo(11, (100, 80)))).convert("RGB"))  # decoded, in memory
    sources.append(str(tmp_path / "missing.jpg"))
    names = [*files, "<in memory>", "missing.jpg"]
    fallback = {
        names.index("cmyk.jpg"): "CMYK JPEG",
        names.index("progressive.jpg"): "progressive JPEG",
        names.index("rotated.jpg"): "JPEG with EXIF rotation",
        names.index("trailing.jpg"): "JPEG without end marker (truncated?)",
        names.index("picture.png"): "not a JPEG",
        names.index("alpha.png"): "not a JPEG",
        names.index("<in memory>"): "decoded image in memory",
    }
    broken = {names.index(n) for n in ("truncated.jpg", "empty.jpg", "text.jpg", "missing.jpg")}
    return sources, fallback, broken


@pytest.mark.parametrize("workers", [0, 2])
def test_odd_files_fall_back_and_are_counted(toy, odd_sources, workers):
    sources, fallback, broken = odd_sources
    ref = reference(toy, sources)
    got, problems, stats = embed(toy, sources, gpu_decode=True, batch_size=4, num_workers=workers)
    assert set(problems) == broken
    assert sorted(got) == sorted(ref) == sorted(set(range(len(sources))) - broken)
    assert stats.fast == len(sources) - len(broken) - len(fallback)
    assert stats.fallback == len(fallback) and stats.problems == len(broken)
    assert dict(stats.fallback_reasons) == {r: list(fallback.values()).count(r) for r in set(fallback.values())}
    assert max_diff(got, ref) <= TOL_EXACT_DECODE


def test_device_decoder_failure_falls_back_per_file(toy, photos, monkeypatch):
    """A file the device decoder rejects (as nvJPEG may) is decoded by Pillow instead; the others stay batched."""
    import torchvision.io

    real = torchvision.io.decode_jpeg
    rejected = photos[2]
    calls = []

    def picky(data, **kwargs):
        batch = data if isinstance(data, list) else [data]
        calls.append(len(batch))
        if any(bytes(t.numpy().tobytes()) == rejected for t in batch):
            raise RuntimeError("nvjpeg: unsupported JPEG")
        return real(data, **kwargs)

    monkeypatch.setattr(torchvision.io, "decode_jpeg", picky)
    got, problems, stats = embed(toy, photos, gpu_decode=True, batch_size=len(photos))
    assert not problems and sorted(got) == list(range(len(photos)))
    assert stats.fallback == 1 and stats.fallback_reasons == {"device decoder failed": 1}
    assert calls[0] == len(photos) and calls[1:] == [1] * len(photos)  # batch, then one by one
    assert max_diff(got, reference(toy, photos)) <= TOL_EXACT_DECODE


def test_batches_keep_input_order_with_mixed_paths(toy, odd_sources):
    sources, _, _ = odd_sources
    seen: list[int] = []
    for rows, _, bad in iterate_batches(sources, range(len(sources)), toy.preprocess, batch_size=4,
                                        num_workers=0, gpu_decode=True):
        seen.extend(sorted([*rows, *(r for r, _ in bad)]))
        assert rows == sorted(rows)
    assert seen == list(range(len(sources)))


def test_embed_gallery_reports_how_images_were_decoded(toy, odd_sources):
    sources, _, broken = odd_sources
    g = cs.Gallery.from_paths([s for s in sources if isinstance(s, str)])
    res = toy.embed_gallery(g, cache=False, progress=False)
    assert res.decode["path"] == "cpu-fast"
    assert res.decode["problems"] == len(broken) == len(res.problems)
    ref = cs.Embedder.toy(device="cpu", fast_jpeg=False).embed_gallery(g, cache=False, progress=False)
    assert ref.decode["path"] == "reference"
    np.testing.assert_array_equal(res.rows, ref.rows)
    assert np.abs(res.embeddings - ref.embeddings).max() <= TOL_EXACT_DECODE


# --------------------------------------------------------------------------- memory and resume


class CountingSources(Sequence):
    """Image sources that count, across worker processes, how many were read."""

    def __init__(self, items: list[bytes]):
        self.items = items
        self.reads = mp.get_context("fork").Value("i", 0)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i):
        with self.reads.get_lock():
            self.reads.value += 1
        return self.items[i]


def test_decoded_pixels_in_flight_stay_bounded(toy):
    """However long the run, workers stay at most ~two batches ahead of the consumer."""
    n, batch, workers = 480, 16, 2
    sources = CountingSources([photo(i % 8, (100, 75)) for i in range(n)])
    consumed, ahead = 0, []
    for rows, _, bad in iterate_batches(sources, range(n), toy.preprocess, batch_size=batch, num_workers=workers):
        consumed += len(rows) + len(bad)
        time.sleep(0.02)  # a slow model: let the workers run as far ahead as they can
        ahead.append(sources.reads.value - consumed)
    assert consumed == n
    bound = workers * 2 * chunk_size(batch, workers) + batch  # prefetched chunks + the batch being built
    assert max(ahead) <= bound, (max(ahead), bound)
    assert max(ahead) <= 3 * batch


def test_interrupted_run_with_workers_resumes_from_cache(tiny_model_name, tiny_checkpoint, tmp_path, monkeypatch):
    for i in range(64):
        (tmp_path / f"p{i:02d}.jpg").write_bytes(photo(i, (120, 90)))
    g = cs.Gallery.from_folder(tmp_path)
    emb = cs.Embedder(tiny_model_name, pretrained=str(tiny_checkpoint), device="cpu", batch_size=8, num_workers=2)
    real = cs.Embedder.encode_pixels
    calls = {"n": 0}

    def crash_on_fifth_batch(self, batch):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt("simulated crash")
        return real(self, batch)

    monkeypatch.setattr(cs.Embedder, "encode_pixels", crash_on_fifth_batch)
    with pytest.raises(KeyboardInterrupt):
        emb.embed_gallery(g, cache_dir=tmp_path / "cache", progress=False, flush_every=16)
    monkeypatch.setattr(cs.Embedder, "encode_pixels", real)
    resumed = emb.embed_gallery(g, cache_dir=tmp_path / "cache", progress=False)
    assert resumed.n_cached == 32 and resumed.n_embedded == 32  # nothing embedded before the crash is lost
    fresh = emb.embed_gallery(g, cache=False, progress=False)
    np.testing.assert_allclose(resumed.embeddings, fresh.embeddings, atol=1e-6)


_KILLED_RUN = """
import os, signal, sys
import cirscope as cs
emb = cs.Embedder.toy(device="cpu", batch_size=16, num_workers=1)
real = cs.Embedder.encode_pixels
calls = {"n": 0}
def encode(self, batch):
    calls["n"] += 1
    if calls["n"] == 6:
        os.kill(os.getpid(), signal.SIGKILL)  # a hard crash: no finally blocks run
    return real(self, batch)
cs.Embedder.encode_pixels = encode
emb.embed_gallery(cs.Gallery.from_folder(sys.argv[1]), cache_dir=sys.argv[2], progress=False, flush_every=32)
"""


@pytest.mark.slow
def test_hard_killed_run_resumes_from_what_was_flushed(tmp_path):
    import subprocess
    import sys

    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(120):
        (folder / f"p{i:03d}.jpg").write_bytes(photo(i, (80, 64)))
    proc = subprocess.run([sys.executable, "-c", _KILLED_RUN, str(folder), str(tmp_path / "cache")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr
    emb = cs.Embedder.toy(device="cpu", batch_size=16)
    resumed = emb.embed_gallery(cs.Gallery.from_folder(folder), cache_dir=tmp_path / "cache", progress=False)
    assert resumed.n_cached == 64 and resumed.n_embedded == 56  # flushed after batches 2 and 4; batch 5 lost
    fresh = emb.embed_gallery(cs.Gallery.from_folder(folder), cache=False, progress=False)
    np.testing.assert_allclose(resumed.embeddings, fresh.embeddings, atol=1e-6)

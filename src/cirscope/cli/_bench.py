"""``cirscope bench embed``: images/s of cirscope's embedding pipeline against a plain DataLoader loop.

Three loops embed the same synthetic JPEG photos with the same model (random weights, or
the shipped toy model), batch size and number of worker processes, in one run:

* ``ours``: ``Embedder.embed_gallery(gallery, cache=False)`` (GPU decoding on CUDA, the fast
  CPU path otherwise; see :mod:`cirscope.embedding._pipeline`);
* ``plain``: a torch ``DataLoader`` over ``PIL.Image.open(path).convert("RGB")`` and
  open_clip's eval transform, then ``model.encode_image``;
* ``model_only``: ``model.encode_image`` on a ready tensor already on the device (the ceiling).

Each repeat runs the three in that order (on CUDA a fourth: ``ours`` with JPEG decoding
left to the CPU workers); the report gives every run and the medians, with the ratios
taken per run. Before timing, 64 photos are embedded by ``ours`` and by open_clip's PIL
path, and the largest difference between the two embeddings is reported. A single-process decode check times decoding +
preprocessing alone: open_clip's PIL path, the fast path without and with JPEG draft mode,
on the benchmark's photos and on photos four times larger.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``bench embed`` to the ``cirscope`` command line."""
    p = subparsers.add_parser("bench", help="measure cirscope's speed against plain baselines")
    sub = p.add_subparsers(dest="bench_command", metavar="WHAT")
    e = sub.add_parser(
        "embed",
        help="images/s of the embedding pipeline vs a plain DataLoader loop vs the model alone (JSON)",
        description="Embed synthetic JPEG photos three ways in one run and print images/s and ratios as JSON. "
        "Weights are random (no download); --model cirscope-toy uses the shipped toy model.",
    )
    e.add_argument("--model", default="ViT-B-32",
                   help="open_clip architecture, cirscope-toy, or an open_clip model-config JSON file")
    e.add_argument("--n", type=int, default=None, help="images per loop (default 20000 on CUDA, 256 on CPU)")
    e.add_argument("--repeats", type=int, default=3, help="runs of the three loops (medians are reported)")
    e.add_argument("--size", default="500x375", help="photo size WIDTHxHEIGHT (default 500x375)")
    e.add_argument("--batch-size", type=int, default=None)
    e.add_argument("--workers", type=int, default=None, help="worker processes for both loaders")
    e.add_argument("--device", default=None)
    e.add_argument("--precision", default=None, help="fp32, fp16 or bf16 (default fp16 on CUDA, else fp32)")
    e.add_argument("--folder", type=Path, default=None, help="write the photos here (default: a temporary folder)")
    e.add_argument("--no-decode-check", action="store_true", help="skip the single-process decode timings")
    e.add_argument("--seed", type=int, default=0)
    e.set_defaults(func=run_embed)
    p.set_defaults(func=lambda args: _usage(p))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 1


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size must look like 500x375 (WIDTHxHEIGHT), got {text!r}") from None
    if w < 1 or h < 1:
        raise ValueError(f"--size must be positive, got {text!r}")
    return w, h


def synthetic_photo(rng: np.random.Generator, width: int, height: int, quality: int = 90) -> bytes:
    """JPEG bytes of a photo-like picture: smooth colour fields, a few shapes, mild sensor noise.

    Examples
    --------
    >>> import numpy as np
    >>> synthetic_photo(np.random.default_rng(0), 50, 40)[:3]
    b'\\xff\\xd8\\xff'
    """
    import io

    from PIL import Image, ImageDraw

    grid = rng.integers(0, 256, size=(max(2, height // 40), max(2, width // 40), 3), dtype=np.uint8)
    img = Image.fromarray(grid).resize((width, height), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(img)
    for _ in range(6):
        x0, y0 = rng.integers(0, width), rng.integers(0, height)
        x1, y1 = x0 + rng.integers(1, max(2, width // 3)), y0 + rng.integers(1, max(2, height // 3))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=colour)
    arr = np.asarray(img, dtype=np.float32) + rng.normal(0.0, 5.0, size=(height, width, 3))
    buf = io.BytesIO()
    Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8)).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def write_photos(folder: Path, n: int, size: tuple[int, int], seed: int = 0, unique: int = 256) -> list[Path]:
    """Write ``n`` JPEG files (``unique`` different pictures, repeated) and return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pictures = [synthetic_photo(rng, *size) for _ in range(min(n, unique))]
    paths = []
    for i in range(n):
        path = folder / f"photo-{i:06d}.jpg"
        path.write_bytes(pictures[i % len(pictures)])
        paths.append(path)
    return paths


def _embedder(args: argparse.Namespace):
    import cirscope as cs

    name = args.model
    if name.endswith(".json"):
        import open_clip

        config = Path(name)
        if not config.is_file():
            raise ValueError(f"model config file not found: {config}")
        if config.stem not in open_clip.list_models():
            open_clip.add_model_config(config)
        name = config.stem
    kwargs = {"device": args.device, "precision": args.precision, "batch_size": args.batch_size,
              "num_workers": args.workers}
    from cirscope.embedding._models import registered_model

    if registered_model(name) is not None:  # a model that carries its weights, such as cirscope-toy
        return cs.Embedder(name, **kwargs)
    import logging

    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)  # open_clip warns that the weights are random: that is the point here
    try:
        return cs.Embedder(name, pretrained="random", **kwargs).load()
    finally:
        logger.setLevel(level)


class _PlainDataset:
    """``PIL.Image.open`` + the model's eval transform: the usual DataLoader recipe."""

    def __init__(self, paths: list[Path], preprocess: Any):
        self.paths = paths
        self.preprocess = preprocess

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        from PIL import Image

        with Image.open(self.paths[i]) as img:
            return self.preprocess(img.convert("RGB"))


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _run_plain(embedder, paths: list[Path], workers: int) -> float:
    import torch
    from torch.utils.data import DataLoader

    device, model = embedder.device, embedder.model
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(embedder.precision, torch.float32)
    loader = DataLoader(
        _PlainDataset(paths, embedder.preprocess),
        batch_size=embedder.batch_size,
        num_workers=workers,
        pin_memory=device.startswith("cuda"),
    )
    _sync(device)
    start = time.perf_counter()
    with torch.no_grad():
        for batch in loader:
            feats = model.encode_image(batch.to(device, dtype=dtype, non_blocking=True))
            torch.nn.functional.normalize(feats.float(), dim=-1).cpu()
    _sync(device)
    return len(paths) / (time.perf_counter() - start)


def _run_model_only(embedder, n: int) -> float:
    import torch

    device, model, bs = embedder.device, embedder.model, embedder.batch_size
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(embedder.precision, torch.float32)
    side = embedder.image_size
    x = torch.randn(bs, 3, side, side, device=device).to(dtype)
    sizes = [bs] * (n // bs) + ([n % bs] if n % bs else [])
    _sync(device)
    start = time.perf_counter()
    with torch.no_grad():
        for k in sizes:
            feats = model.encode_image(x[:k])
            torch.nn.functional.normalize(feats.float(), dim=-1).cpu()
    _sync(device)
    return n / (time.perf_counter() - start)


def _run_ours(embedder, gallery) -> tuple[float, dict[str, Any]]:
    _sync(embedder.device)
    start = time.perf_counter()
    res = embedder.embed_gallery(gallery, cache=False, progress=False)
    _sync(embedder.device)
    seconds = time.perf_counter() - start
    if len(res.rows) != len(gallery):
        raise RuntimeError(f"the pipeline embedded {len(res.rows)} of {len(gallery)} photos: {res.problems}")
    return len(gallery) / seconds, res.decode


def agreement(embedder, gallery) -> dict[str, Any]:
    """Max abs difference and least cosine between our pipeline's embeddings and open_clip's PIL path."""
    ours = embedder.embed_gallery(gallery, cache=False, progress=False)
    embedder.fast_jpeg = False
    try:
        ref = embedder.embed_gallery(gallery, cache=False, progress=False)
    finally:
        embedder.fast_jpeg = True
    if not np.array_equal(ours.rows, ref.rows):
        raise RuntimeError("the fast and the reference path embedded different images")
    diff = np.abs(ours.embeddings - ref.embeddings)
    return {
        "images": len(ours.rows),
        "decode_path": ours.decode.get("path"),
        "max_abs_diff": float(diff.max()),
        "min_cosine": round(float(np.min(np.sum(ours.embeddings * ref.embeddings, axis=1))), 6),
    }


def decode_check(preprocess: Any, photos: list[bytes], repeats: int = 3) -> dict[str, float]:
    """Images/s of decoding + preprocessing in this process: PIL reference, fast without and with draft."""
    import io

    from PIL import Image

    from cirscope.embedding._gpu_preprocess import plan_from_transform, resize_crop_uint8
    from cirscope.gallery._decode import decode

    plan = plan_from_transform(preprocess)
    out: dict[str, float] = {}
    loops = {
        "pil_reference": lambda d: preprocess(Image.open(io.BytesIO(d)).convert("RGB")),
    }
    if plan is not None:
        loops["fast_no_draft"] = lambda d: resize_crop_uint8(np.asarray(decode(d)), plan)
        loops["fast_draft"] = lambda d: resize_crop_uint8(np.asarray(decode(d, draft_size=plan.size)), plan)
    for name, fn in loops.items():
        rates = []
        for _ in range(repeats):
            start = time.perf_counter()
            for d in photos:
                fn(d)
            rates.append(len(photos) / (time.perf_counter() - start))
        out[f"{name}_img_s"] = round(statistics.median(rates), 1)
    if plan is not None:
        out["draft_speedup"] = round(out["fast_draft_img_s"] / out["fast_no_draft_img_s"], 3)
        out["fast_over_reference"] = round(out["fast_draft_img_s"] / out["pil_reference_img_s"], 3)
    return out


def _decode_checks(embedder, size: tuple[int, int], seed: int) -> dict[str, Any]:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a worker process
    try:
        rng = np.random.default_rng(seed + 1)
        report = {}
        for label, factor, count in (("bench_size", 1, 48), ("4x_size", 4, 12)):
            w, h = size[0] * factor, size[1] * factor
            photos = [synthetic_photo(rng, w, h) for _ in range(count)]
            report[label] = {
                "size": f"{w}x{h}",
                # Pillow's draft decodes at 1/2, 1/4 or 1/8 scale only while the short side stays >= the target
                "draft_applies": min(w, h) >= 2 * embedder.image_size,
                **decode_check(embedder.preprocess, photos),
            }
        return report
    finally:
        torch.set_num_threads(threads)


def run_embed(args: argparse.Namespace) -> int:
    """Run ``cirscope bench embed`` and print the JSON report."""
    import torch

    import cirscope as cs
    from cirscope.embedding._pipeline import default_workers

    size = _parse_size(args.size)
    if args.repeats < 1:
        raise ValueError("--repeats must be at least 1")
    embedder = _embedder(args)
    embedder.load()
    device = embedder.device
    n = args.n if args.n is not None else (20000 if device.startswith("cuda") else 256)
    if n < 1:
        raise ValueError("--n must be at least 1")
    workers = args.workers if args.workers is not None else default_workers(n, embedder.batch_size, device)
    embedder.num_workers = workers

    with tempfile.TemporaryDirectory(prefix="cirscope-bench-") as tmp:
        folder = args.folder or Path(tmp)
        t0 = time.perf_counter()
        paths = write_photos(folder, n, size, seed=args.seed)
        write_s = time.perf_counter() - t0
        gallery = cs.Gallery.from_paths(paths)
        warm = cs.Gallery.from_paths(paths[: min(n, embedder.batch_size)])
        embedder.embed_gallery(warm, cache=False, progress=False)  # model + decoder warm-up
        _run_model_only(embedder, min(n, embedder.batch_size))
        agree = agreement(embedder, cs.Gallery.from_paths(paths[: min(n, 64)]))

        runs = []
        decode_stats: dict[str, Any] = {}
        cuda = device.startswith("cuda")
        for _ in range(args.repeats):
            ours, decode_stats = _run_ours(embedder, gallery)
            plain = _run_plain(embedder, paths, workers)
            ceiling = _run_model_only(embedder, n)
            run = {
                "ours_img_s": round(ours, 1),
                "plain_dataloader_img_s": round(plain, 1),
                "model_only_img_s": round(ceiling, 1),
                "ours_over_plain": round(ours / plain, 3),
                "ours_over_model_only": round(ours / ceiling, 3),
            }
            if cuda:  # the same pipeline with JPEG decoding left to the CPU workers
                embedder.gpu_decode = False
                try:
                    run["ours_cpu_decode_img_s"] = round(_run_ours(embedder, gallery)[0], 1)
                finally:
                    embedder.gpu_decode = None
            runs.append(run)
        mean_kb = float(np.mean([p.stat().st_size for p in paths[:256]])) / 1024

    def med(key: str) -> float:
        return round(statistics.median(r[key] for r in runs), 3)

    report: dict[str, Any] = {
        "benchmark": "embed images: cirscope pipeline vs plain DataLoader loop vs model alone",
        "model": embedder.name,
        "weights": f"registered model {embedder.registered.name}" if embedder.registered else "random (no download)",
        "device": device if not device.startswith("cuda") else f"{device} ({torch.cuda.get_device_name()})",
        "precision": embedder.precision,
        "batch_size": embedder.batch_size,
        "workers": workers,
        "torch_threads": torch.get_num_threads(),
        "n": n,
        "photo_size": f"{size[0]}x{size[1]}",
        "photo_kb_mean": round(mean_kb, 1),
        "model_input": embedder.image_size,
        "write_photos_s": round(write_s, 2),
        "decode_path": decode_stats,
        "agreement_with_pil_path": agree,
        "repeats": args.repeats,
        "runs": runs,
        "ours_img_s": med("ours_img_s"),
        "plain_dataloader_img_s": med("plain_dataloader_img_s"),
        "model_only_img_s": med("model_only_img_s"),
        "ratio_ours_over_plain": med("ours_over_plain"),
        "ratio_ours_over_model_only": med("ours_over_model_only"),
        **({"ours_cpu_decode_img_s": med("ours_cpu_decode_img_s")} if cuda else {}),
        "targets": {"cuda_h100_vit_b_32_img_s": 10000, "cuda_ratio_over_plain": 5.0, "cpu_ratio_over_plain": 1.5},
    }
    if not args.no_decode_check:
        report["decode_only_single_process"] = _decode_checks(embedder, size, args.seed)
    print(json.dumps(report, indent=2))
    return 0

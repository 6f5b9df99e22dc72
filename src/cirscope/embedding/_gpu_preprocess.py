"""Tensor versions of open_clip's eval preprocessing, and batched JPEG decoding on the device.

open_clip's eval transform is ``Resize(S, bicubic) -> CenterCrop(S) -> ToTensor -> Normalize``
applied to a PIL image. This module reproduces it on tensors so that it can run

* in CPU worker processes on one image at a time (:func:`resize_crop_uint8`, torch's
  vectorised uint8 antialiased kernel: several times faster than Pillow's resampler, and
  within one grey level of it on a fraction of a percent of the pixels), and
* on the GPU on whole batches (:func:`resize_crop_batch`: two separable antialiased passes,
  horizontal then vertical, each rounded to whole grey levels like Pillow's resampler, so
  the result matches Pillow to one grey level on about 1 pixel in 10,000).

:func:`decode_jpegs` decodes a list of JPEG files at once with
``torchvision.io.decode_jpeg(list, device=...)`` (nvJPEG on CUDA) and falls back to one call
per file when a batch fails, so one odd file costs only itself. :func:`sniff_jpeg` reads
just the header, to send to the GPU only baseline RGB or grey JPEGs without EXIF
rotation; every other file goes through Pillow on the CPU.

Imported lazily (it imports torch).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from cirscope.gallery._decode import MAX_PIXELS

_EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class PreprocessPlan:
    """The parameters of an open_clip eval transform that tensors can reproduce.

    Attributes
    ----------
    size
        Target length of the shorter side after resizing (``Resize(size)``).
    crop
        Side of the square centre crop (``CenterCrop(crop)``).
    interpolation
        ``"bicubic"`` or ``"bilinear"`` (both antialiased, as Pillow does).
    mean, std
        Per-channel normalisation applied to pixel values scaled to ``[0, 1]``.

    Examples
    --------
    >>> plan = PreprocessPlan(224, 224, "bicubic", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    >>> plan.resized_size(375, 500)
    (224, 298)
    >>> plan.crop_offsets(224, 298)
    (0, 37)
    """

    size: int
    crop: int
    interpolation: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def resized_size(self, height: int, width: int) -> tuple[int, int]:
        """``(height, width)`` after ``Resize(size)``: torchvision's shorter-side rule."""
        short, long = (width, height) if width <= height else (height, width)
        new_short, new_long = self.size, int(self.size * long / short)
        return (new_long, new_short) if width <= height else (new_short, new_long)

    def crop_offsets(self, height: int, width: int) -> tuple[int, int]:
        """``(top, left)`` of torchvision's ``CenterCrop(crop)`` in an image of that size."""
        return round((height - self.crop) / 2.0), round((width - self.crop) / 2.0)


def plan_from_transform(preprocess: Callable) -> PreprocessPlan | None:
    """Read a :class:`PreprocessPlan` from open_clip's eval transform, or ``None`` if it is another kind.

    Only the standard ``Compose([Resize(S), CenterCrop(S), (convert to RGB), ToTensor, Normalize])``
    with an antialiased bicubic or bilinear resize is recognised; anything else (a custom
    transform, ``resize_mode="longest"`` or ``"squash"``, non-square crops) returns ``None`` and
    the caller must run the transform itself.

    Examples
    --------
    >>> from torchvision import transforms as T
    >>> t = T.Compose([T.Resize(64, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(64),
    ...                T.ToTensor(), T.Normalize((0.5,) * 3, (0.25,) * 3)])
    >>> plan_from_transform(t)
    PreprocessPlan(size=64, crop=64, interpolation='bicubic', mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    """
    from torchvision import transforms as T

    steps = list(getattr(preprocess, "transforms", []))
    if len(steps) < 4:
        return None
    resize, crop, *middle, normalize = steps
    if not (isinstance(resize, T.Resize) and isinstance(crop, T.CenterCrop) and isinstance(normalize, T.Normalize)):
        return None
    size = resize.size[0] if isinstance(resize.size, (list, tuple)) and len(resize.size) == 1 else resize.size
    if not isinstance(size, int) or resize.max_size is not None or resize.antialias is False:
        return None
    modes = {T.InterpolationMode.BICUBIC: "bicubic", T.InterpolationMode.BILINEAR: "bilinear"}
    if resize.interpolation not in modes:
        return None
    crop_size = tuple(crop.size)
    if len(crop_size) != 2 or crop_size[0] != crop_size[1]:
        return None
    names = [getattr(m, "__name__", type(m).__name__) for m in middle]
    if not names or names[-1] not in ("ToTensor", "MaybeToTensor"):
        return None
    if any(n not in ("ToTensor", "MaybeToTensor", "MaybeConvertMode", "_convert_to_rgb") for n in names):
        return None
    mean, std = tuple(float(v) for v in normalize.mean), tuple(float(v) for v in normalize.std)
    if len(mean) != 3 or len(std) != 3:
        return None
    return PreprocessPlan(int(size), int(crop_size[0]), modes[resize.interpolation], mean, std)  # type: ignore[arg-type]


def resize_crop_uint8(pixels: np.ndarray, plan: PreprocessPlan) -> torch.Tensor:
    """Resize and centre-crop one ``(H, W, 3)`` uint8 RGB array into a ``(3, crop, crop)`` uint8 tensor.

    Uses torch's vectorised uint8 antialiased kernel on the CPU (channels-last, no copy of
    the input) to shrink: Pillow's result differs by one grey level on well under 1% of the
    pixels. Images smaller than the target are enlarged like :func:`resize_crop_batch` does.

    Examples
    --------
    >>> import numpy as np
    >>> plan = PreprocessPlan(32, 32, "bicubic", (0.5,) * 3, (0.5,) * 3)
    >>> resize_crop_uint8(np.zeros((60, 80, 3), np.uint8), plan).shape
    torch.Size([3, 32, 32])
    """
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB array, got {pixels.dtype} {pixels.shape}")
    height, width = pixels.shape[:2]
    if not pixels.flags.writeable:  # Pillow hands out read-only arrays; torch wants writable ones
        pixels = pixels.copy()
    x = torch.from_numpy(pixels).permute(2, 0, 1).unsqueeze(0)  # channels-last view, no copy
    new_h, new_w = plan.resized_size(height, width)
    if new_h > height or new_w > width:  # enlarging a small image: cheap, so follow Pillow's two passes
        x = _resize_like_pillow(x.float(), new_h, new_w, plan.interpolation).to(torch.uint8)
    elif (new_h, new_w) != (height, width):
        x = F.interpolate(x, size=(new_h, new_w), mode=plan.interpolation, antialias=True, align_corners=False)
    top, left = plan.crop_offsets(new_h, new_w)
    return x[0, :, top : top + plan.crop, left : left + plan.crop].contiguous()


def _resize_like_pillow(x: torch.Tensor, new_h: int, new_w: int, mode: str) -> torch.Tensor:
    """Separable antialiased resize of a float ``(N, 3, H, W)`` batch, rounding after each pass as Pillow does."""
    height, width = x.shape[-2:]
    if new_w != width:
        x = F.interpolate(x, size=(height, new_w), mode=mode, antialias=True, align_corners=False)
        x = x.add_(0.5).floor_().clamp_(0, 255)  # Pillow rounds halves up
    if new_h != height:
        x = F.interpolate(x, size=(new_h, new_w), mode=mode, antialias=True, align_corners=False)
        x = x.add_(0.5).floor_().clamp_(0, 255)  # Pillow rounds halves up
    return x


def resize_crop_batch(images: Sequence[torch.Tensor], plan: PreprocessPlan) -> torch.Tensor:
    """Resize and centre-crop ``(3, H, W)`` uint8 images (any sizes, one device) into ``(N, 3, crop, crop)`` float32.

    Images of the same size are resized together in one call. Values stay in ``[0, 255]``
    (whole numbers); pass the result to :func:`normalize`.

    Examples
    --------
    >>> import torch
    >>> plan = PreprocessPlan(16, 16, "bicubic", (0.5,) * 3, (0.5,) * 3)
    >>> imgs = [torch.zeros(3, 30, 40, dtype=torch.uint8), torch.zeros(3, 20, 20, dtype=torch.uint8)]
    >>> resize_crop_batch(imgs, plan).shape
    torch.Size([2, 3, 16, 16])
    """
    if not images:
        raise ValueError("resize_crop_batch needs at least one image")
    device = images[0].device
    out = torch.empty((len(images), 3, plan.crop, plan.crop), dtype=torch.float32, device=device)
    groups: dict[tuple[int, int], list[int]] = {}
    for i, img in enumerate(images):
        if img.ndim != 3 or img.shape[0] != 3 or img.dtype != torch.uint8:
            raise ValueError(f"image {i}: expected a (3, H, W) uint8 tensor, got {img.dtype} {tuple(img.shape)}")
        groups.setdefault((int(img.shape[1]), int(img.shape[2])), []).append(i)
    for (height, width), idx in groups.items():
        new_h, new_w = plan.resized_size(height, width)
        x = torch.stack([images[i] for i in idx]).float()
        x = _resize_like_pillow(x, new_h, new_w, plan.interpolation)
        top, left = plan.crop_offsets(new_h, new_w)
        out[idx] = x[:, :, top : top + plan.crop, left : left + plan.crop]
    return out


def normalize(
    batch: torch.Tensor, plan: PreprocessPlan, *, device: str | torch.device = "cpu", dtype: torch.dtype | None = None
) -> torch.Tensor:
    """Scale ``[0, 255]`` pixels (uint8 or float, ``(N, 3, H, W)``) as ToTensor + Normalize do; cast to ``dtype``.

    Computes ``x * (1 / (255 * std)) - mean / std`` in float32 (torchvision's
    ``(x / 255 - mean) / std`` up to rounding in the last bit) in two in-place passes, then
    casts to ``dtype`` (e.g. float16 for a half-precision model). A float32 input already on
    ``device`` is modified in place.

    Examples
    --------
    >>> import torch
    >>> plan = PreprocessPlan(2, 2, "bicubic", (0.5,) * 3, (0.5,) * 3)
    >>> normalize(torch.full((1, 3, 2, 2), 255, dtype=torch.uint8), plan).max().item()
    1.0
    """
    x = batch.to(device, non_blocking=True)
    x = x if x.dtype == torch.float32 else x.float()
    std = torch.tensor(plan.std, dtype=torch.float64)
    scale = (1.0 / (255.0 * std)).to(torch.float32).view(1, 3, 1, 1).to(x.device)
    shift = (torch.tensor(plan.mean, dtype=torch.float64) / std).to(torch.float32).view(1, 3, 1, 1).to(x.device)
    x = x.mul_(scale).sub_(shift)
    return x if dtype is None or dtype == torch.float32 else x.to(dtype)


def sniff_jpeg(data: bytes, max_pixels: int = MAX_PIXELS) -> tuple[str | None, tuple[int, int]]:
    """Whether ``data`` is a JPEG that the batched decoder can take, from its header alone.

    Returns ``(None, (height, width))`` for a baseline RGB or greyscale JPEG with no EXIF
    rotation and an end-of-image marker (what nvJPEG decodes in batches, in hardware on
    A100/H100-class GPUs), else ``(reason, (0, 0))`` naming why it goes to Pillow on the
    CPU instead (not a JPEG, CMYK, progressive, rotated, truncated, too large...).

    Examples
    --------
    >>> sniff_jpeg(b"\\x89PNG....")
    ('not a JPEG', (0, 0))
    """
    if data[:3] != b"\xff\xd8\xff":
        return "not a JPEG", (0, 0)
    if not data.rstrip(b"\x00\r\n ")[-2:] == b"\xff\xd9":
        return "JPEG without end marker (truncated?)", (0, 0)
    from PIL import Image

    try:
        img = Image.open(io.BytesIO(data))
        if img.format != "JPEG":
            return "not a JPEG", (0, 0)
        if img.mode not in ("RGB", "L"):
            return f"{img.mode} JPEG", (0, 0)
        if img.width * img.height > max_pixels or min(img.size) < 1:
            return "JPEG size out of range", (0, 0)
        if img.getexif().get(_EXIF_ORIENTATION, 1) not in (1, None):
            return "JPEG with EXIF rotation", (0, 0)
        if img.info.get("progressive") or img.info.get("progression"):
            # nvJPEG decodes these one at a time with host-side Huffman decoding, holding a
            # global lock: the CPU workers, in parallel, do better
            return "progressive JPEG", (0, 0)
        return None, (img.height, img.width)
    except Exception as exc:  # unreadable header: let Pillow's full decode say what is wrong
        return f"unreadable JPEG header ({type(exc).__name__})", (0, 0)


def decode_jpegs(datas: Sequence[torch.Tensor], device: str | torch.device) -> list[torch.Tensor | Exception]:
    """Decode JPEG byte tensors into ``(3, H, W)`` uint8 RGB tensors on ``device``, all at once.

    If the batched call fails, each file is decoded on its own; a file that still fails
    yields its exception in its place (the caller decodes it with Pillow instead).

    Examples
    --------
    >>> import io, torch
    >>> from PIL import Image
    >>> buf = io.BytesIO(); Image.new("RGB", (8, 6), "red").save(buf, "JPEG")
    >>> decode_jpegs([torch.frombuffer(bytearray(buf.getvalue()), dtype=torch.uint8)], "cpu")[0].shape
    torch.Size([3, 6, 8])
    """
    import warnings

    from torchvision.io import ImageReadMode, decode_jpeg

    if not datas:
        return []
    with warnings.catch_warnings():
        # torchvision 0.29 announces a move of its decoders to TorchCodec; they still work
        warnings.filterwarnings("ignore", "The image decoding and encoding capabilities", DeprecationWarning)
        try:
            return list(decode_jpeg(list(datas), mode=ImageReadMode.RGB, device=device))
        except Exception:  # one bad file fails the whole batch: retry one by one
            pass
        results: list[torch.Tensor | Exception] = []
        for data in datas:
            try:
                results.append(decode_jpeg(data, mode=ImageReadMode.RGB, device=device))
            except Exception as exc:
                results.append(exc)
        return results


def pixel_budget_groups(sizes: Sequence[tuple[int, int]], budget: int) -> list[list[int]]:
    """Split consecutive items into groups whose total pixel count stays within ``budget``.

    Every group holds at least one item (an item larger than the budget is a group alone).

    Examples
    --------
    >>> pixel_budget_groups([(10, 10), (10, 10), (10, 10)], budget=250)
    [[0, 1], [2]]
    """
    groups: list[list[int]] = []
    total = math.inf
    for i, (h, w) in enumerate(sizes):
        if total + h * w > budget:
            groups.append([])
            total = 0
        groups[-1].append(i)
        total += h * w
    return groups

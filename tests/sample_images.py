"""A folder of real photographs (scikit-image's samples, cropped and resized) for embedding runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

_SAMPLES = ("astronaut", "coffee", "chelsea", "rocket", "camera", "coins", "moon", "page", "hubble_deep_field",
            "immunohistochemistry", "retina", "cat", "horse")


def _bases() -> list[np.ndarray]:
    from skimage import data

    out = []
    for name in _SAMPLES:
        fn = getattr(data, name, None)
        if fn is None:
            continue
        try:
            arr = np.asarray(fn())
        except Exception:  # a sample that needs a download is skipped
            continue
        if arr.dtype == bool:
            arr = arr.astype(np.uint8) * 255
        out.append(arr)
    return out


def make_sample_folder(folder: Path, n: int = 200, corrupt: int = 3, seed: int = 0) -> list[str]:
    """Write ``n`` valid images and ``corrupt`` broken ones; return the broken files' names."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    bases = _bases()
    for i in range(n):
        base = bases[i % len(bases)]
        h, w = base.shape[:2]
        ch, cw = int(h * rng.uniform(0.5, 1.0)), int(w * rng.uniform(0.5, 1.0))
        y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        img = Image.fromarray(base[y : y + ch, x : x + cw])
        img = img.resize((int(rng.integers(96, 320)), int(rng.integers(96, 320))))
        ext = "jpg" if i % 3 else "png"
        img.save(folder / f"sample_{i:03d}.{ext}")
    bad = []
    good = sorted(folder.glob("sample_*.jpg"))
    recipes = [
        ("broken_truncated.jpg", good[0].read_bytes()[:200]),
        ("broken_empty.png", b""),
        ("broken_notimage.jpg", b"this is a text file with an image extension\n" * 10),
    ]
    for name, data in recipes[:corrupt]:
        (folder / name).write_bytes(data)
        bad.append(name)
    return bad
